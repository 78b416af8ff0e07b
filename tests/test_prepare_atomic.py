"""Step 1 never leaves a tree that looks finished, and never mixes two inputs: prepare.py
processes stopped by real signals (at a point held open for the test), killed half-way
through replacing an old tree, two at once into one folder, and a re-run with an edited
input."""

from __future__ import annotations

import csv
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gen_st_model_market
import prepare
from benchmarks import reference as ref
from streid import files
from streid.dataset_yaml import resolve_spec
from streid.datasets import MARKET
from streid.manifest import manifest_dataset
from tests.helpers import run_fails
from tests.helpers_images import write_raw_dataset
from tests.test_prepare import expected_tree, market_sample, tree

ROOT = Path(__file__).resolve().parent.parent
# prepare.py as a user runs it, with two hooks: HOLD_READY (touched when the first gallery
# image is reached, where it then waits for HOLD_GO, at most a minute) and SIGNAL_IN_SWAP
# (the signal it sends itself once the new query/ has replaced the old one).
DRIVER = r"""
import os, runpy, signal, sys, time
from pathlib import Path
import streid.preparation as p
ready, go, kill = (os.environ.get(k) for k in ("HOLD_READY", "HOLD_GO", "SIGNAL_IN_SWAP"))
place, rename, held = p.place, os.rename, []
def held_place(*job):
    if ready and "gallery" in job[1].parts and not held:
        held.append(job)
        Path(ready).touch()
        deadline = time.monotonic() + 60
        while not (go and os.path.exists(go)) and time.monotonic() < deadline:
            time.sleep(0.01)
    place(*job)
def killing_rename(src, dst):
    rename(src, dst)
    if Path(dst).name == "query":
        os.kill(os.getpid(), int(kill))
p.place = held_place
if kill:
    os.rename = killing_rename
sys.argv[0] = "prepare.py"
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def start(args: list[str], cwd: Path, **hooks: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **hooks}
    command = [sys.executable, "-c", DRIVER, *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(path: Path, proc: subprocess.Popen, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"finished before the point: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "never reached the point"
        time.sleep(0.01)


def half_gallery(raw: dict[str, list[str]], start: int = 0) -> dict[str, list[str]]:
    """``raw`` with every second gallery image dropped (from ``start``): an edited input."""
    return {**raw, "bounding_box_test": raw["bounding_box_test"][start::2]}


def args(raw: Path, out: Path) -> list[str]:
    return ["--Market", "--download_path", str(raw), "--save_path", str(out)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_stopped_run_leaves_no_half_tree(tmp_path, monkeypatch, capsys, signum):
    raw = market_sample()
    write_raw_dataset(tmp_path / "raw", raw, images=False)
    out, ready = tmp_path / "data/out", tmp_path / "ready"
    proc = start(args(tmp_path / "raw", out), tmp_path, HOLD_READY=str(ready))
    wait_for(ready, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert not out.exists()  # nothing at --save_path that a step could take for a tree
    left = list((tmp_path / "data").iterdir())
    monkeypatch.chdir(tmp_path)
    if signum == signal.SIGTERM:
        assert proc.returncode == 128 + signum and left == []
        assert err.splitlines()[-1] == (
            "interrupted by SIGTERM: prepare.py stopped before it finished and left no "
            "partial file; run the same command again"
        )
    else:
        # The killed run's folder, by the naming rule of temporary files: steps 2-4 refuse it.
        assert proc.returncode == -signum and len(left) == 1
        assert files.TEMPORARY.fullmatch(left[0].name)
        message = run_fails(gen_st_model_market.main, ["--data_dir", str(left[0])], capsys)
        assert message == (
            f"error: {left[0]}/ was not finished by prepare.py (stopped at gallery/?): run "
            f"prepare.py again"
        )
    message = run_fails(gen_st_model_market.main, ["--data_dir", "data/out"], capsys)
    assert "data/out has no train_all/ folder: run step 1" in message

    prepare.main(["--Market", "--download_path", "raw", "--save_path", "data/out"])
    removed = "removed 1 temporary file(s) of stopped runs from data/"
    assert (removed in capsys.readouterr().err) == (signum == signal.SIGKILL)
    assert os.listdir(tmp_path / "data") == ["out"]
    assert tree(out) == expected_tree(raw, ref.market_rename)
    assert resolve_spec(out, None, "--data_dir").key == MARKET.key


def test_a_killed_run_keeps_the_old_tree_whole(tmp_path):
    old, new = half_gallery(market_sample()), market_sample()
    write_raw_dataset(tmp_path / "old", old, images=False)
    write_raw_dataset(tmp_path / "new", new, images=False)
    out, ready = tmp_path / "out", tmp_path / "ready"
    prepare.main(args(tmp_path / "old", out))
    before = tree(out)
    proc = start(args(tmp_path / "new", out), tmp_path, HOLD_READY=str(ready))
    wait_for(ready, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    # The new tree was being built in a hidden folder of out/: the old one is as it was.
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert len(hidden) == 1 and files.TEMPORARY.fullmatch(hidden[0])
    visible = {
        f"{split}/{pid}": sorted(os.listdir(out / split / pid))
        for split in sorted(p.name for p in out.iterdir() if p.is_dir() and p.name[0] != ".")
        for pid in sorted(os.listdir(out / split))
    }
    assert visible == before
    assert resolve_spec(out, MARKET, "--data_dir").key == MARKET.key

    prepare.main(args(tmp_path / "new", out))
    assert tree(out) == expected_tree(new, ref.market_rename)  # no hidden folder either
    # The copies of the raw images are hard links still, the raw images untouched.
    assert sorted(os.listdir(tmp_path / "new/bounding_box_test")) == sorted(
        new["bounding_box_test"]
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_a_run_stopped_while_replacing_the_old_tree(tmp_path, monkeypatch, capsys, signum):
    old, new = half_gallery(market_sample()), market_sample()
    write_raw_dataset(tmp_path / "old", old, images=False)
    write_raw_dataset(tmp_path / "new", new, images=False)
    monkeypatch.chdir(tmp_path)
    prepare.main(args(Path("old"), Path("out")))
    proc = start(args(tmp_path / "new", tmp_path / "out"), tmp_path, SIGNAL_IN_SWAP=str(signum))
    _, err = proc.communicate(timeout=60)
    capsys.readouterr()
    if signum == signal.SIGTERM:  # waits for the replacing to end: the new tree, whole
        assert proc.returncode == 128 + signum and "interrupted by SIGTERM" in err
        assert tree(tmp_path / "out") == expected_tree(new, ref.market_rename)
        return
    assert proc.returncode == -signum
    # Half replaced (the new query/, the old gallery/ and dataset.yaml): refused, not used.
    message = run_fails(gen_st_model_market.main, ["--data_dir", "out"], capsys)
    assert message == (
        "error: out/ was not finished by prepare.py (stopped at replacing the old tree?): "
        "run prepare.py again"
    )
    prepare.main(args(Path("new"), Path("out")))
    assert tree(tmp_path / "out") == expected_tree(new, ref.market_rename)
    assert sorted(os.listdir("out")) == ["dataset.yaml", "gallery", "query", "train",
                                         "train_all", "val"]  # fmt: skip
    assert resolve_spec("out", None, "--data_dir").key == MARKET.key


def test_two_runs_into_one_folder_end_with_one_whole_tree(tmp_path):
    # Different gallery images: a tree of both inputs would be neither's.
    inputs = {"a": half_gallery(market_sample()), "b": half_gallery(market_sample(), 1)}
    procs = []
    for key, raw in inputs.items():
        write_raw_dataset(tmp_path / key, raw, images=False)
        hooks = {"HOLD_READY": str(tmp_path / f"ready_{key}"), "HOLD_GO": str(tmp_path / "go")}
        procs.append(start(args(tmp_path / key, tmp_path / "out"), tmp_path, **hooks))
    for key, proc in zip(inputs, procs, strict=True):
        wait_for(tmp_path / f"ready_{key}", proc)
    (tmp_path / "go").touch()  # both are building now: let them finish together
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    got = tree(tmp_path / "out")  # hidden folders would show here
    assert got in [expected_tree(raw, ref.market_rename) for raw in inputs.values()]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert resolve_spec(tmp_path / "out", None, "--data_dir").key == MARKET.key


def test_a_second_run_waits_to_replace_the_tree(tmp_path):
    write_raw_dataset(tmp_path / "raw", market_sample(), images=False)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a first run does while it replaces out/
        proc = start(args(tmp_path / "raw", tmp_path / "out"), tmp_path)
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.*.tmp/dataset.yaml")):  # built, and waiting
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.5)
        assert proc.poll() is None and not (tmp_path / "out").exists()
    finally:
        os.close(fd)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert tree(tmp_path / "out") == expected_tree(market_sample(), ref.market_rename)


def write_csv(path: Path, rows: list[tuple]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "person", "camera", "time", "split"])
        writer.writerows(rows)


def prepared_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_an_edited_manifest_gives_exactly_its_files(tmp_path, monkeypatch, capsys):
    rows = [(f"t{k}.jpg", f"p{k % 3}", "ab"[k % 2], str(10 * k), "train") for k in range(12)]
    rows += [(f"q{k}.jpg", f"p{k}", "a", str(5 + k), "query") for k in range(3)]
    rows += [(f"g{k}.jpg", f"p{k % 3}", "b", str(7 * k), "gallery") for k in range(20)]
    (tmp_path / "images").mkdir()
    for row in rows:
        (tmp_path / "images" / row[0]).write_bytes(b"not decoded")
    monkeypatch.chdir(tmp_path)
    command = ["--manifest", "cams.csv", "--download_path", "images"]
    write_csv(tmp_path / "cams.csv", rows)
    prepare.main(command)
    first = prepared_files(tmp_path / "dataset/cams")

    edited = rows[:20] + rows[25:]  # five gallery rows dropped: later line numbers change
    write_csv(tmp_path / "cams.csv", edited)
    capsys.readouterr()
    prepare.main(command)
    assert "gallery 15 images" in capsys.readouterr().out
    _, jobs = manifest_dataset(Path("cams.csv"), Path("images"), None, None, None)
    wanted = {f"{split}/{target}" for _, split, target in jobs} | {"dataset.yaml"}
    assert prepared_files(tmp_path / "dataset/cams") == wanted != first
    assert len([f for f in wanted if f.startswith("gallery/")]) == 15


def test_the_raw_data_and_other_files_are_never_replaced(tmp_path, monkeypatch, capsys):
    raw = market_sample()
    write_raw_dataset(tmp_path / "data/Market", raw, images=False)
    (tmp_path / "data/notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    # Market-1501's own query/ would be replaced by the prepared one: refused.
    message = run_fails(prepare.main, args(Path("data/Market"), Path("data/Market")), capsys)
    assert message == (
        "error: the raw images in data/Market/query/ are inside --save_path's query/, which "
        "prepare.py replaces: give a --save_path outside the raw data"
    )
    # The raw folder inside --save_path, beside the trees: left alone, run after run.
    for _ in range(2):
        prepare.main(args(Path("data/Market"), Path("data")))
        assert (tmp_path / "data/notes.txt").read_text() == "mine"
        assert {k: sorted(os.listdir(f"data/Market/{k}")) for k in raw} == {
            k: sorted(v) for k, v in raw.items()
        }
    got = {k: v for k, v in tree(tmp_path / "data").items() if not k.startswith("Market/")}
    assert got == expected_tree(raw, ref.market_rename)


def test_a_folder_prepared_by_the_original_code_keeps_its_builtin_spec(tmp_path):
    (tmp_path / "train_all/0002").mkdir(parents=True)  # no dataset.yaml, no marker
    assert resolve_spec(tmp_path, MARKET, "--data_dir") is MARKET
