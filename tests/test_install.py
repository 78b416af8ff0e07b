"""The package installs: a wheel built from the sources, installed into a fresh venv, runs step 4
(``gen_st_model_market.py``) on the name lists it ships, from a folder with no checkout in
reach. Offline: the wheel is built without build isolation and the fresh venv sees the
dependencies of this interpreter's environment through a ``.pth`` line (its ``.pth`` files,
among them the editable install's finder, are not run)."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from benchmarks import reference as ref
from benchmarks.simulate import real_split, train_targets
from streid.datasets import MARKET

ROOT = Path(__file__).resolve().parent.parent

# Run by the fresh venv's python: the installed streid's place and its Market-1501 training
# names, laid out as step 1 leaves them (empty files; step 4 reads only the names).
MAKE_TREE = """
import sys
from pathlib import Path
import streid
from streid.datasets import MARKET, NAME_LIST_DIR
print(streid.__file__)
print(NAME_LIST_DIR)
for name in (MARKET.prepared_name(n) for n in MARKET.name_list("train")):
    folder = Path(sys.argv[1]) / name.split("_")[0]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).touch()
"""


def run(*command, cwd):
    """Run ``command`` without this process's PYTHON* settings; its stdout lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of the sources (the checkout gets no build/ folder)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "streid", src / "streid", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", "wheel", "./src",
        cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "wheel").glob("st_reid-*.whl")
    return wheel


def fresh_venv(tmp: Path, wheel: Path) -> tuple[Path, Path]:
    """(python, site-packages) of a new venv holding the wheel and seeing the dependencies."""
    run(sys.executable, "-m", "venv", "--without-pip", "venv", cwd=tmp)
    python = tmp / "venv/bin/python"
    (site,) = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(*pip, "install", "--no-deps", "--no-index", "--target", site, wheel, cwd=tmp)
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python, Path(site)


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_runs_step_4_on_the_shipped_names(tmp_path):
    wheel = build_wheel(tmp_path)
    python, site = fresh_venv(tmp_path, wheel)
    # A user with the wheel and a copy of the step's scripts (the Market alias and the
    # neutral script it calls), in a folder of their own: no data/, no streid/ of a checkout
    # next to the scripts or the current folder.
    (tmp_path / "scripts").mkdir()
    for script in ("gen_st_model_market.py", "gen_st_model.py"):
        shutil.copy(ROOT / script, tmp_path / "scripts")
    work = tmp_path / "work"
    work.mkdir()
    tree = work / "dataset/market_rename/train_all"
    streid_file, names = run(python, "-I", "-c", MAKE_TREE, tree, cwd=work)
    assert Path(streid_file) == site / "streid/__init__.py"
    assert Path(names) == site / "streid/names"

    run(python, "-E", "-s", tmp_path / "scripts/gen_st_model_market.py", cwd=work)  # the defaults

    saved = scipy.io.loadmat(work / "model/ft_ResNet50/pytorch_result2.mat")
    _, labels, cams, frames = real_split(MARKET, "train")
    targets = train_targets(labels)
    expected = ref.histograms(targets, cams, frames, targets.max() + 1, 8, MARKET.num_bins, 100.0)
    np.testing.assert_array_equal(saved["distribution"], expected)
    assert sorted(os.listdir(work)) == ["dataset", "model"]
