"""The shape of the code (docs/architecture.md): modules of 360 lines at most, functions of 60,
except where a comment above the function says why it is longer."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    p
    for folder in (ROOT, ROOT / "streid", ROOT / "tests", ROOT / "benchmarks")
    for p in folder.glob("*.py")
)
MAX_MODULE_LINES = 360
MAX_FUNCTION_LINES = 60
EXCUSE = "# Longer than usual:"  # the comment that explains a longer function


def long_functions(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            excused = first >= 2 and lines[first - 2].strip().startswith(EXCUSE)
            if length > MAX_FUNCTION_LINES and not excused:
                found.append(f"{node.name} ({length} lines)")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES
    assert long_functions(path) == []


def test_the_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "a.py").write_text(f"def f():\n{body}\n")
    assert long_functions(tmp_path / "a.py") == [f"f ({MAX_FUNCTION_LINES + 1} lines)"]
    (tmp_path / "b.py").write_text(f"{EXCUSE} a table.\ndef f():\n{body}\n")
    assert long_functions(tmp_path / "b.py") == []


def test_make_mutate_copies_every_script():
    # mutmut runs the tests from a copy of the repository; a script missing from the copy
    # breaks every test module that imports it.
    text = (ROOT / "pyproject.toml").read_text()
    listed = re.search(r"\nalso_copy = \[(.*?)\]", text, re.S).group(1)
    scripts = {p.name for p in ROOT.glob("*.py")}
    assert scripts <= set(re.findall(r'"([^"]+)"', listed))
