"""Step 2 keeps model/<name>/ describing one net: a retry that dies, a --resume with another
net or a second run never leave old weights under new flags; a stop says truly how to go on;
a full disk while saving is one line."""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest
import torch

import train_market
from streid import training, weights
from streid.cli import RERUN, RESUME
from streid.errors import UserError
from streid.extraction import ExtractOptions, load_trained
from streid.weights import save_checked
from tests.helpers_images import torch_threads, write_jpeg

CPU = ["--gpu_ids", "-1", "--num_workers", "0", "--weights", "none", "--seed", "0"]
OLD = ["--data_dir", "data", "--name", "old", "--epochs", "1", "--batchsize", "4", *CPU]
OLD += ["--input_size", "32", "16"]
RECORD = ["net_last.pth", "opts.json", "resume.pth", "train.jpg", "train_log.csv"]
TORCH_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
REAL_RUN_EPOCH, REAL_SAVE = training.run_epoch, torch.save
TORCH_FAILED = "PytorchStreamWriter failed writing file data/0: file write failed"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


def write_people(root: Path, people: int = 2) -> None:
    for p in range(people):
        for k in range(4):
            name = f"{p + 1:04d}_c{k % 2 + 1}_f{k:07d}_01.jpg"
            write_jpeg(root / "train" / f"{p + 1:04d}" / name, (90 * p, 90, 90), k)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 1-epoch run model/old/ (ResNet-50 at 32x16, 2 classes) and its data."""
    root = tmp_path_factory.mktemp("trained")
    write_people(root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        train_market.main(OLD)
    assert sorted(p.name for p in (root / "model/old").iterdir()) == RECORD
    return root


@pytest.fixture
def old(trained, tmp_path, monkeypatch) -> Path:
    """A copy of the trained run and its data in the test's own folder (its cwd)."""
    shutil.copytree(trained / "data", tmp_path / "data")
    shutil.copytree(trained / "model", tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "model/old"


def fails(argv, capsys) -> str:
    """Step 2 stops with a user error (after any notes): its line."""
    with pytest.raises(SystemExit) as exit_info:
        train_market.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def step_3_builds(name: str):
    """Step 3's loader on the run: (its net's input size, whether net_last.pth loaded into
    the net that opts.json describes)."""
    model, arch, size = load_trained(ExtractOptions(name=name, test_dir="data"))
    saved = torch.load(Path("model", name, "net_last.pth"), weights_only=True)
    same = all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    return size, arch.name, same


def corrupt_one_image() -> None:
    Path("data/train/0002/0002_c2_f0000009_01.jpg").write_bytes(b"\xff\xd8 not a jpeg")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--input_size", "64", "32"], ["--PCB"]])
def test_a_second_run_into_the_folder_is_refused_before_writing(old, capsys, extra):
    before = snapshot(old)
    err = fails([*OLD, *extra], capsys)
    assert err == (
        "error: model/old/ already holds a training run (opts.json, resume.pth, train_log.csv, "
        "net_last.pth): pass --resume to continue it, --overwrite to replace it, or another --name"
    )
    assert snapshot(old) == before


@pytest.mark.slow
def test_a_folder_of_weights_alone_is_refused_too(old, capsys):
    for name in ("opts.json", "resume.pth", "train_log.csv"):
        (old / name).unlink()
    err = fails(OLD, capsys)
    assert err.endswith("(net_last.pth): pass --overwrite to replace it, or another --name")


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--input_size", "64", "32"], "records --input_size 32 16, this command has 64 32"),
        (["--PCB"], "records neither --PCB nor --use_dense (resnet50), this command has --PCB"),
        (["--use_dense"], "(resnet50), this command has --use_dense (densenet121)"),
        ([], "records 2 classes (dataset market), the training images of this command have 3"),
        (["--overwrite"], "--resume continues the run in model/old/, --overwrite replaces it"),
    ],
)
def test_resume_refuses_another_net(old, capsys, extra, message):
    if not extra:
        write_people(Path("data"), people=3)
    before = snapshot(old)
    err = fails([*OLD, "--resume", *extra], capsys)
    assert message in err
    if extra != ["--overwrite"]:
        assert err.startswith("error: --resume: model/old/opts.json records ")
        assert err.endswith("resume with the recorded flags, or train the new net under "
                            "another --name (or with --overwrite instead of --resume)")  # fmt: skip
    assert snapshot(old) == before


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        ["--overwrite", "--input_size", "64", "32"],
        ["--overwrite", "--PCB"],
        ["--resume", "--epochs", "2"],
    ],
)
def test_a_retry_dying_in_its_first_epoch_keeps_the_old_record(old, capsys, extra):
    before = snapshot(old)
    corrupt_one_image()  # 9 images in 3 batches: decoded in the first epoch
    err = fails([*OLD, "--batchsize", "3", *extra], capsys)
    assert err.startswith("error: cannot decode image data/train/0002/0002_c2_f0000009_01.jpg")
    assert snapshot(old) == before
    assert step_3_builds("old") == ((32, 16), "resnet50", True)


@pytest.mark.slow
def test_a_new_run_dying_in_its_first_epoch_writes_nothing(old, capsys):
    corrupt_one_image()
    fails([*OLD, "--name", "new", "--batchsize", "3"], capsys)
    assert sorted(p.name for p in Path("model").iterdir()) == ["old"]


@pytest.mark.slow
def test_overwrite_replaces_the_whole_record_after_the_first_epoch(old, capsys):
    old_net = (old / "net_last.pth").read_bytes()
    (old / "net_9.pth").write_bytes(old_net)
    (old / "pytorch_result.mat").write_bytes(b"features of the old net")
    train_market.main([*OLD, "--overwrite", "--input_size", "64", "32"])
    err = capsys.readouterr().err
    assert "note: --overwrite: model/old/ (opts.json, resume.pth, train_log.csv, net_9.pth, " \
        "net_last.pth) is replaced after the first epoch" in err  # fmt: skip
    assert "warning: model/old/ still holds pytorch_result.mat of the replaced run: run the " \
        "later steps (3-6) again" in err  # fmt: skip
    assert sorted(p.name for p in old.iterdir()) == sorted([*RECORD, "pytorch_result.mat"])
    assert (old / "net_last.pth").read_bytes() != old_net
    assert step_3_builds("old") == ((64, 32), "resnet50", True)


def stop_in_call(monkeypatch, stop_at: int) -> None:
    """run_epoch raises KeyboardInterrupt (Ctrl-C) on its ``stop_at``-th call (one per epoch
    here: there is no val/)."""
    real, calls = REAL_RUN_EPOCH, []

    def run_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "run_epoch", run_epoch)


def stopped(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        train_market.main(argv)
    assert exit_info.value.code == 130
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_stop_before_the_first_epoch_says_run_it_again(old, capsys, monkeypatch):
    stop_in_call(monkeypatch, 1)
    line = stopped([*OLD, "--name", "new", "--epochs", "3"], capsys)
    assert line == (
        "interrupted by SIGINT: train_market.py stopped before it finished and left no partial "
        f"file; {RERUN}"
    )
    assert not Path("model/new").exists()
    before = snapshot(old)
    stop_in_call(monkeypatch, 1)
    assert stopped([*OLD, "--overwrite", "--epochs", "3"], capsys).endswith(f"; {RERUN}")
    assert snapshot(old) == before


@pytest.mark.slow
def test_a_stop_after_an_epoch_says_resume_and_resume_works(old, capsys, monkeypatch):
    stop_in_call(monkeypatch, 2)
    line = stopped([*OLD, "--name", "new", "--epochs", "3"], capsys)
    assert line.endswith(f"; {RESUME}")
    assert sorted(p.name for p in Path("model/new").iterdir()) == RECORD[1:]
    before = snapshot(old)
    stop_in_call(monkeypatch, 1)  # the first epoch of a resumed run: its resume.pth is there
    assert stopped([*OLD, "--resume", "--epochs", "3"], capsys).endswith(f"; {RESUME}")
    assert snapshot(old) == before
    monkeypatch.setattr(training, "run_epoch", REAL_RUN_EPOCH)
    train_market.main([*OLD, "--name", "new", "--epochs", "2", "--resume"])
    assert "resuming model/new/ at epoch 1" in capsys.readouterr().out
    assert '"epochs": 2' in Path("model/new/opts.json").read_text()
    assert step_3_builds("new") == ((32, 16), "resnet50", True)


# -- a full disk --------------------------------------------------------------------------------
def fail_writing(monkeypatch, error: BaseException, free: int = 0) -> None:
    """torch.save writes part of its file, then fails as ``error``; ``free`` bytes left."""

    def save(obj, path):
        Path(path).write_bytes(b"half a checkpoint")
        raise error

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(weights.shutil, "disk_usage", lambda _: usage(10**9, 10**9 - free, free))


@pytest.mark.parametrize(
    "error, free, said",
    [
        (RuntimeError(TORCH_FULL), 0, f"disk full ({TORCH_FULL})"),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            10**9,
            "disk full (No space left on device)",
        ),
        (RuntimeError(TORCH_FAILED), 10**9, f"torch.save failed ({TORCH_FAILED})"),
        (RuntimeError("iostream error\nNo space left"), 10**9, "disk full (iostream error)"),
    ],
)
def test_a_failed_torch_save_is_one_line(tmp_path, monkeypatch, error, free, said):
    fail_writing(monkeypatch, error, free)
    path = tmp_path / "net_last.pth"
    with pytest.raises(UserError) as info:
        save_checked({"w": torch.zeros(2)}, path)
    assert str(info.value) == f"could not write {path}: {said}"
    assert list(tmp_path.iterdir()) == []


def test_another_torch_save_error_keeps_its_traceback(tmp_path, monkeypatch):
    fail_writing(monkeypatch, RuntimeError("Can't pickle local object"), 0)
    with pytest.raises(RuntimeError, match="Can't pickle"):
        save_checked({"w": torch.zeros(2)}, tmp_path / "net_last.pth")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_full_disk_in_the_first_epoch_leaves_no_record(old, capsys, monkeypatch):
    fail_writing(monkeypatch, RuntimeError(TORCH_FULL))
    err = fails([*OLD, "--name", "new"], capsys)
    assert err == f"error: could not write model/new/resume.pth: disk full ({TORCH_FULL})"
    assert sorted(p.name for p in Path("model/new").iterdir()) == ["train.jpg"]
    before = snapshot(old)
    err = fails([*OLD, "--resume", "--epochs", "2"], capsys)
    assert err == f"error: could not write model/old/resume.pth: disk full ({TORCH_FULL})"
    assert {k: v for k, v in snapshot(old).items() if k != "train.jpg"} == {
        k: v for k, v in before.items() if k != "train.jpg"
    }
    monkeypatch.setattr(torch, "save", REAL_SAVE)
    train_market.main([*OLD, "--name", "new"])  # the same command, once there is room
    assert sorted(p.name for p in Path("model/new").iterdir()) == RECORD


def test_a_second_training_of_one_run_is_refused_while_the_first_runs(old, capsys):
    script = Path(__file__).resolve().parent.parent / "train_market.py"
    first = subprocess.Popen([sys.executable, str(script), *OLD, "--overwrite", "--epochs", "50"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    lock = old.parent / ".old.opts.json.lock"
    try:
        deadline = time.monotonic() + 120
        while not (lock.is_file() and f"process {first.pid} " in lock.read_text()):
            assert first.poll() is None and time.monotonic() < deadline, "never took its lock"
            time.sleep(0.05)
        line = fails([*OLD, "--overwrite"], capsys)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)  # a step that hangs after its stop fails here
    assert line.startswith(f"error: model/old/opts.json is being trained by process {first.pid} ")
    assert line.endswith(": wait for it to end, or give another --name")
