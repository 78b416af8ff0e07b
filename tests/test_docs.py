"""The documentation stays true to the code: the module index of streid/__init__.py, the
README's length, every relative link and anchor of the Markdown pages, and the list of
deviations against the markers in the code (docs/deviations.md)."""

import re
from pathlib import Path

import pytest

import streid

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted(
    [README, ROOT / "benchmarks" / "README.md", ROOT / "tests" / "README.md"]
    + list((ROOT / "docs").glob("*.md"))
)
DEVIATIONS = ROOT / "docs" / "deviations.md"
MARKER = "Deviation from the original"
MAX_README_LINES = 250


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# -- the module index ---------------------------------------------------------------------------
def indexed_modules() -> list[str]:
    return re.findall(r":mod:`streid\.(\w+)`", streid.__doc__)


def package_modules() -> set[str]:
    return {p.stem for p in (ROOT / "streid").glob("*.py") if p.stem != "__init__"}


def test_every_module_is_in_the_index():
    missing = sorted(package_modules() - set(indexed_modules()))
    assert not missing, f"streid/__init__.py's module index lacks: {', '.join(missing)}"


def test_the_index_names_only_modules_once_each():
    names = indexed_modules()
    unknown = sorted(set(names) - package_modules())
    assert not unknown, f"streid/__init__.py's index names no such module: {', '.join(unknown)}"
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"streid/__init__.py's index names these twice: {', '.join(twice)}"


# -- the README ---------------------------------------------------------------------------------
def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_readme_names_the_original_and_the_published_results():
    text = README.read_text(encoding="utf-8")
    assert "https://github.com/Wanggcong/Spatial-Temporal-Re-identification" in text
    for row in ("| Market-1501 | 98.1 | 87.6 | 98.0 | 95.5 |", "| 94.4 | 83.9 | 94.5 | 92.7 |"):
        assert row in text
    assert "@inproceedings{" in text and "source .venv/bin/activate" in text


# -- links and anchors --------------------------------------------------------------------------
def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code, where links are links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped,
    spaces made hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, with GitHub's -1, -2 for repeated ones."""
    found: set[str] = set()
    code = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    for heading in re.findall(r"^#{1,6} (.+)$", code, flags=re.M):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def links(page: Path) -> list[str]:
    targets = re.findall(r"\]\(([^)\s]+)\)", prose(page.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"[a-z]+:", t)]  # http:, https:, mailto:


def test_slug_follows_githubs_rule():
    assert slug("The paper's Figure 4") == "the-papers-figure-4"
    assert slug("dataset.yaml: a prepared dataset describes itself") == (
        "datasetyaml-a-prepared-dataset-describes-itself"
    )
    assert slug("What step 4 `--unlabeled` does") == "what-step-4---unlabeled-does"
    assert slug("Steps 2-3 on a GPU") == "steps-2-3-on-a-gpu"


def test_the_pages_have_links_to_check():
    assert len(PAGES) >= 10
    assert sum(len(links(p)) for p in PAGES) > 30


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no file {path})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {rel(file)})")
    assert not broken, f"{rel(page)}: broken links: {'; '.join(broken)}"


# -- deviations and their markers ---------------------------------------------------------------
def code_files() -> list[Path]:
    """The scripts, the library and the benchmarks (the tests only describe deviations)."""
    found = list(ROOT.glob("*.py")) + list((ROOT / "streid").rglob("*.py"))
    return sorted(found + list((ROOT / "benchmarks").rglob("*.py")))


def marked_files() -> set[str]:
    return {rel(p) for p in code_files() if MARKER in p.read_text(encoding="utf-8")}


def deviation_bullets() -> list[str]:
    """The bullets of docs/deviations.md above its section of unmarked ones, one line each."""
    text = DEVIATIONS.read_text(encoding="utf-8")
    bullets = re.split(r"^- ", text, flags=re.M)[1:]
    return [" ".join(b.split("\n\n")[0].split()) for b in bullets]


def named_files(bullet: str) -> list[str]:
    match = re.search(r"Marked in: ((?:`[^`]+`(?:, | and )?)+)", bullet)
    return re.findall(r"`([^`]+)`", match.group(1)) if match else []


def test_every_deviation_names_the_files_of_its_markers():
    bullets = deviation_bullets()
    assert len(bullets) >= 10
    unnamed = [b[:70] for b in bullets if not named_files(b)]
    assert not unnamed, f"docs/deviations.md: bullets without 'Marked in: `file`': {unnamed}"


def test_every_named_file_holds_a_marker():
    named = {f for b in deviation_bullets() for f in named_files(b)}
    wrong = sorted(named - marked_files())
    assert not wrong, (
        f"docs/deviations.md names {', '.join(wrong)} in 'Marked in:', but no such file holds "
        f"a '# {MARKER}' marker: name the file that holds it now"
    )


def test_every_marker_is_named_in_the_list():
    named = {f for b in deviation_bullets() for f in named_files(b)}
    missing = sorted(marked_files() - named)
    assert not missing, (
        f"{', '.join(missing)} holds a '# {MARKER}' marker that no bullet of "
        f"docs/deviations.md names: add the file to its bullet's 'Marked in:' list"
    )
