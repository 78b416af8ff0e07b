"""Planted bugs in the compiled kernels, each of which a test must catch.

    .venv/bin/python -m tests.kernel_mutants        # make mutate-kernels, about 10 minutes

mutmut (``make mutate``) leaves streid/kernels.py alone: it does not mutate decorated
functions, and numba compiles these. Here each bug below is written into a copy of the
repository, one at a time, and the tests of the kernels and of what they compute (the
rankings, CMC/mAP and re-ranking against the plain references) run on it; a bug that no
test catches is listed and the exit status is 1. The bugs are the kinds mutmut plants: a
comparison, an operand, a boundary, a dropped statement.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNELS = "streid/kernels.py"
TESTS = ["tests/test_kernels.py", "tests/test_evaluation.py", "tests/test_rerank.py",
         "tests/test_properties.py"]  # fmt: skip

# (what the code says, the bug planted in its place)
MUTANTS = [
    ("col_later = other >= t if", "col_later = other > t if"),
    ("if line_is_query else other > t", "if line_is_query else other >= t"),
    ("gap = other - t if col_later else t - other", "gap = t - other if col_later else t - other"),
    ("base = col_cb[j] + b if col_later", "base = col_b[j] + cb if col_later"),
    ("inside = (bins < num_bins)", "inside = (bins <= num_bins)"),
    ("& (col_s[j] == session)", "& (col_s[j] >= session)"),
    ("index[j] = base + np.int32(bins) if", "index[j] = base + np.int32(bins) + 1 if"),
    ("one / (one + lam0 * expo[j]) / denom[j]", "one / (one + expo[j]) / denom[j]"),
    ("hits += row[j] >= bound", "hits += row[j] > bound"),
    ("hits += row[j] <= worst", "hits += row[j] < worst"),
    ("bound = -worst", "bound = worst"),
    ("return hits > 0", "return hits > 1"),
    ("t1 = min(t0 + SKIP, row.size)", "t1 = min(t0 + SKIP - 1, row.size)"),
    ("if key <= worst and not junk[j]:", "if key < worst and not junk[j]:"),
    ("if key <= worst and not junk[j]:", "if key <= worst:"),
    ('below[np.searchsorted(goods, key, side="right")] += 1',
     'below[np.searchsorted(goods, key, side="left")] += 1'),
    ('below[np.searchsorted(goods, key, side="right")] -= 1', "pass"),
    ('upto[np.searchsorted(goods, key, side="left")] -= 1', "pass"),
    ("positions[g0 + m] = below[m] + m - good_below", "positions[g0 + m] = below[m]"),
    ("ambiguous |= upto[m] - below[m] > good_upto - good_below", "ambiguous |= False"),
    ("ambiguous = np.isnan(worst)", "ambiguous = False"),
    ("key = -row[j] if negate else row[j]", "key = row[j]"),
    ("if maxima[t] >= threshold:", "if maxima[t] > threshold:"),
    ("if row[j] >= threshold:", "if row[j] > threshold:"),
    ("[tiles - size] if tiles >= size", "[tiles - size + 1] if tiles >= size"),
    ("for j in range(t, num, tiles):", "for j in range(t + tiles, num, tiles):"),
    ("for start in range(tiles, whole, tiles):", "for start in range(2 * tiles, whole, tiles):"),
    ("np.maximum(row[start : start + tiles], maxima, maxima)",
     "np.minimum(row[start : start + tiles], maxima, maxima)"),
    ("for j in range(whole, num):", "for j in range(whole + 1, num):"),
    ("np.isfinite(row_min[i]) and", "True and"),
    ("and np.isfinite(maxima).all()", "and True"),
    ("peak = -two * row_min[i] + two", "peak = -two * maxima.min() + two"),
    ("order = np.argsort(-kept_s[:count])[:size]", "order = np.argsort(kept_s[:count])[:size]"),
    ("dist = (-two * kept_s[order] + two) / peak", "dist = (-two * kept_s[order] + two) / two"),
    ("initial[i] = kept_j[order[: k1 + 1]]", "initial[i] = kept_j[order[1 : k1 + 2]]"),
    ("tied[i] = (dist[1 : k1 + 2] == dist[: k1 + 1]).any()",
     "tied[i] = (dist[1 : k1 + 1] == dist[: k1]).any()"),
]  # fmt: skip


def copy_repository(to: Path) -> None:
    """What the tests need: the package, the tests, the benchmarks' references, the scripts."""
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis")
    for folder in ("streid", "tests", "benchmarks"):
        shutil.copytree(ROOT / folder, to / folder, ignore=ignore)
    for path in ROOT.glob("*.py"):
        shutil.copy(path, to / path.name)
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")


def killed(copy: Path, original: str, mutant: str) -> bool:
    """Whether a test fails with ``mutant`` in place of ``original`` (its first occurrence)."""
    source = (ROOT / KERNELS).read_text()
    if original and original not in source:
        raise SystemExit(f"{KERNELS} no longer says {original!r}: update {__file__}")
    (copy / KERNELS).write_text(source.replace(original, mutant, 1))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow",
               "-p", "no:cacheprovider", *TESTS]  # fmt: skip
    return subprocess.run(command, cwd=copy, capture_output=True).returncode != 0


def main() -> int:
    survivors = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        copy_repository(copy)
        if killed(copy, "", ""):  # the copy as it is must pass, or nothing is measured
            raise SystemExit(f"the tests fail on an unchanged copy: {' '.join(TESTS)}")
        for number, (original, mutant) in enumerate(MUTANTS, 1):
            caught = killed(copy, original, mutant)
            print(f"{number:2}/{len(MUTANTS)} {'killed ' if caught else 'SURVIVED'} {mutant}",
                  flush=True)  # fmt: skip
            survivors += [] if caught else [mutant]
    print(f"{len(MUTANTS) - len(survivors)} of {len(MUTANTS)} planted bugs caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
