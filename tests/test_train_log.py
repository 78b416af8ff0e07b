"""Step 2's log as on a cluster: no progress bars in a redirected log, one line per epoch and
phase; model/<name>/train_log.csv, written whole and atomically, continued by --resume."""

from __future__ import annotations

import csv
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import train_market
from streid import train_log
from streid.errors import UserError
from streid.train_log import COLUMNS, EpochRow, from_state, history_of, read_log, write_log
from tests.helpers_images import torch_threads, write_jpeg

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--data_dir", "data", "--name", "run", "--batchsize", "4", "--input_size", "32", "16"]
ARGS += ["--weights", "none", "--gpu_ids", "-1", "--num_workers", "0", "--seed", "0"]
PHASE_LINE = re.compile(r"^(train|val) Loss: (\S+) Acc: (\S+) \((\d+) images/s\)$")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


def write_data(root: Path) -> None:
    """Two people: four training images and one validation image each."""
    for p in range(2):
        for k in range(5):
            split = "val" if k == 4 else "train"
            name = f"{p + 1:04d}_c{k % 2 + 1}_f{k:07d}_01.jpg"
            write_jpeg(root / split / f"{p + 1:04d}" / name, (150 * p, 90, 90), k)


def test_a_redirected_training_log_has_lines_not_bars_and_resume_continues_the_csv(
    tmp_path, monkeypatch
):
    write_data(tmp_path / "data")
    log = tmp_path / "out.log"
    with open(log, "w") as out:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        command = [sys.executable, str(ROOT / "train_market.py"), *ARGS, "--epochs", "1"]
        done = subprocess.run(command, cwd=tmp_path, stdout=out, stderr=out, env=env)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text and "it/s" not in text and "%|" not in text
    printed = [PHASE_LINE.match(line) for line in text.splitlines()]
    printed = [m.groups() for m in printed if m]
    assert [phase for phase, *_ in printed] == ["train", "val"]

    run = tmp_path / "model/run"
    rows = read_log(run / "train_log.csv")
    assert [(r.epoch, r.phase) for r in rows] == [(0, "train"), (0, "val")]
    for row, (phase, loss, acc, speed) in zip(rows, printed, strict=True):
        assert f"{row.loss:.4f}" == loss and f"{row.accuracy:.4f}" == acc
        assert (row.lr_backbone, row.lr_heads) == (0.01, 0.1)
        assert row.seconds > 0 and abs(row.images_per_s - int(speed)) <= 1
        # The seconds are written to 3 decimals: the speed lies within that rounding.
        images = 8 if phase == "train" else 2
        fastest, slowest = images / max(row.seconds - 5e-4, 1e-9), images / (row.seconds + 5e-4)
        assert slowest - 0.05 <= row.images_per_s <= fastest + 0.05

    # A kill between resume.pth and the log leaves the log behind: --resume completes it.
    (run / "train_log.csv").write_text(",".join(COLUMNS) + "\n")
    monkeypatch.chdir(tmp_path)
    train_market.main([*ARGS, "--epochs", "2", "--resume"])
    resumed = read_log(run / "train_log.csv")
    assert [(r.epoch, r.phase) for r in resumed] == [
        (e, p) for e in (0, 1) for p in ("train", "val")
    ]
    assert [f"{r.loss:.6f}" for r in resumed[:2]] == [f"{r.loss:.6f}" for r in rows]
    history = torch.load(run / "resume.pth", weights_only=True)["history"]
    for phase in ("train", "val"):
        for key in ("loss", "err"):
            assert history_of(resumed)[phase][key] == pytest.approx(history[phase][key], abs=1e-6)
    assert Image.open(run / "train.jpg").format == "JPEG"
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


def rows_of(n: int) -> list[EpochRow]:
    return [
        EpochRow(e, phase, 1.0 / (e + 1), 0.5 + e / 10, 0.01, 0.1, 123.4, 5.67)
        for e in range(n)
        for phase in ("train", "val")
    ]


def test_the_csv_round_trips_with_its_columns(tmp_path):
    path = tmp_path / "train_log.csv"
    rows = rows_of(2) + [EpochRow(2, "train", math.nan, math.nan, 0.001, 0.01, 50.0, 1.0)]
    write_log(rows, path)
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == list(COLUMNS) == [
        "epoch", "phase", "loss", "accuracy", "lr_backbone", "lr_heads", "images_per_s", "seconds"
    ]  # fmt: skip
    assert table[1] == ["0", "train", "1.000000", "0.500000", "0.01", "0.1", "123.4", "5.670"]
    back = read_log(path)
    assert back[:-1] == rows[:-1]
    assert math.isnan(back[-1].loss) and back[-1].lr_heads == 0.01


def test_a_failed_write_keeps_the_old_log_whole(tmp_path, monkeypatch):
    path = tmp_path / "train_log.csv"
    write_log(rows_of(1), path)
    before = path.read_bytes()

    class Broken:
        def __init__(self, out):
            self.rows = 0

        def writerow(self, values):
            self.rows += 1
            if self.rows == 3:
                raise KeyboardInterrupt  # a stop in the middle of the rows

    monkeypatch.setattr(train_log.csv, "writer", Broken)
    with pytest.raises(KeyboardInterrupt):
        write_log(rows_of(3), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["train_log.csv"]


def test_a_resume_pth_from_before_the_log_gives_its_rows():
    history = {"train": {"loss": [2.0, 1.0], "err": [0.5, 0.25]}, "val": {"loss": [], "err": []}}
    rows = from_state({"history": history})
    assert [(r.epoch, r.phase, r.loss, r.accuracy) for r in rows] == [
        (0, "train", 2.0, 0.5),
        (1, "train", 1.0, 0.75),
    ]
    assert all(math.isnan(r.lr_backbone) and math.isnan(r.seconds) for r in rows)
    assert history_of(rows) == history


@pytest.mark.parametrize(
    "content, message",
    [
        ("epoch,phase,loss\n0,train,1\n", "expected the columns epoch, phase, loss, accuracy"),
        (",".join(COLUMNS) + "\n0,test,1,1,1,1,1,1\n", "phase 'test': expected train or val"),
        (",".join(COLUMNS) + "\n0,train,x,1,1,1,1,1\n", "could not convert string to float"),
    ],
)
def test_a_file_that_is_no_log_is_one_line(tmp_path, content, message):
    path = tmp_path / "train_log.csv"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(message)):
        read_log(path)
