"""Files written safely (streid.files): temporary files that killed processes left are removed
by the next writer, writer locks name their holder, readers of all_scores.mat keep the file
they opened, and a full disk is called one."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import prepare
from streid import files
from streid.artifacts import Run, savemat_atomic
from streid.errors import UserError
from streid.matfile import MatColumns, write_matrix_by_columns
from tests.helpers import run_fails

ROOT = Path(__file__).resolve().parent.parent
HOLD = """
import sys, time
from pathlib import Path
from streid.artifacts import Run, atomic_output
run = Run(sys.argv[1])
with run.lock("pytorch_result2.mat"), atomic_output(run.path / "x.mat") as t:
    t.write_bytes(b"half")
    print("ready", flush=True)
    time.sleep(60)
"""


def holder(cwd: Path, name: str = "run") -> subprocess.Popen:
    """A process that holds the step-4 lock of run ``name`` in ``cwd`` and a temporary file
    in its folder, until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, name], cwd=cwd, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.stdout.readline() == "ready\n"
    return proc


def hidden(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.name.startswith(".") and "lock" not in p.name
    )


def test_a_killed_writer_leaves_a_temporary_that_the_next_writer_removes(tmp_path, capsys):
    proc = holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = tmp_path / "model" / "run"
    (left,) = hidden(run)
    assert files.TEMPORARY.fullmatch(left)["pid"] == str(proc.pid)
    savemat_atomic(run / "pytorch_result2.mat", {"distribution": np.zeros(3)})
    assert hidden(run) == []
    assert capsys.readouterr().err == (
        f"note: removed 1 temporary file(s) of stopped runs from {run}/ (0.00 GB)\n"
    )


def test_a_step_taking_its_lock_removes_the_stale_temporaries(tmp_path, monkeypatch, capsys):
    proc = holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    monkeypatch.chdir(tmp_path)
    with Run("run").lock("all_scores.mat"):
        assert hidden(tmp_path / "model" / "run") == []
    assert "note: removed 1 temporary file(s)" in capsys.readouterr().err
    with Run("new").lock("opts.json"):  # the lock makes no run folder
        assert (
            (tmp_path / "model" / ".new.opts.json.lock")
            .read_text()
            .startswith(f"process {os.getpid()} on ")
        )
    # The killed holder's lock file stays until the next lock of its file takes it over.
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        ".run.pytorch_result2.mat.lock",
        "run",
    ]
    with Run("run").lock("pytorch_result2.mat"):
        pass
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["run"]


def test_only_the_temporaries_of_ended_processes_go(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    prefix, suffix = files.temporary_affixes(tmp_path / "a.mat")
    mine = tmp_path / f"{prefix}abc{suffix}"
    theirs = tmp_path / mine.name.replace(f"-{os.getpid()}.", f"-{ended.stdout.strip()}.")
    elsewhere = tmp_path / theirs.name.replace(files._HOST, "another-host")
    foreign = tmp_path / ".a.mat.abcdefgh.tmp"  # no owner recorded: left alone
    folder = tmp_path / theirs.name.replace(".mat.", ".dir.")
    for path in (mine, theirs, elsewhere, foreign):
        path.write_bytes(b"x")
    folder.mkdir()
    (folder / "inside.jpg").write_bytes(b"x")
    assert files.remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (mine, elsewhere, foreign)
    )


def test_a_second_writer_is_told_who_holds_the_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = holder(tmp_path)
    try:
        with pytest.raises(UserError) as err, Run("run").lock("pytorch_result2.mat"):
            pass
        assert str(err.value).startswith(
            f"model/run/pytorch_result2.mat is being written by process {proc.pid} on "
        )
        assert str(err.value).endswith(": wait for it to end, or give another --name")
        with Run("run").lock("all_scores.mat"):  # another file of the run: no conflict
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with Run("run").lock("pytorch_result2.mat"):  # kill -9 released it
        pass


def test_a_reader_keeps_the_file_it_opened_while_it_is_replaced(tmp_path):
    path = tmp_path / "all_scores.mat"
    old, new = np.arange(12.0).reshape(3, 4), -np.arange(12.0).reshape(3, 4)
    write_matrix_by_columns(path, "all_scores", (3, 4), np.float64, iter([old.T]))
    reader = MatColumns(path, "all_scores")
    assert reader.streamed
    write_matrix_by_columns(path, "all_scores", (3, 4), np.float64, iter([new.T]))
    np.testing.assert_array_equal(reader.columns_t(1, 3), old[:, 1:3].T)
    np.testing.assert_array_equal(reader.entries(np.array([2]), np.array([3])), [11.0])
    np.testing.assert_array_equal(MatColumns(path, "all_scores").columns_t(0, 4), new.T)


def test_a_compressed_file_is_read_whole_and_closed(tmp_path):
    path = tmp_path / "all_scores.mat"
    scipy.io.savemat(path, {"all_scores": np.eye(3)}, do_compression=True)
    reader = MatColumns(path, "all_scores")
    assert not reader.streamed and reader._file.closed
    np.testing.assert_array_equal(reader.columns_t(0, 3), np.eye(3))


def test_a_full_disk_is_called_one(tmp_path):
    def blocks():
        yield np.zeros((1, 3))
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "all_scores.mat"
    with pytest.raises(UserError, match=r"^could not write .*all_scores.mat: disk full \(No space"):
        write_matrix_by_columns(path, "all_scores", (3, 2), np.float64, blocks())
    assert list(tmp_path.iterdir()) == []


def test_a_half_written_block_is_a_truncated_file(tmp_path):
    path = tmp_path / "all_scores.mat"
    write_matrix_by_columns(path, "all_scores", (3, 4), np.float64, iter([np.ones((4, 3))]))
    size = path.stat().st_size
    os.truncate(path, size - 16)
    with pytest.raises(UserError, match="is truncated"):
        MatColumns(path, "all_scores").columns_t(0, 4)


def test_a_folder_where_a_file_is_expected_is_called_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model" / "run" / "pytorch_result.mat").mkdir(parents=True)
    with pytest.raises(
        UserError, match=r"^model/run/pytorch_result.mat is a folder, not the file made by step 3 "
    ):
        Run("run").existing("pytorch_result.mat")


def test_a_file_where_a_folder_is_expected_and_the_reverse(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cameras.csv").write_text("path,person,camera,time,split\n")
    (tmp_path / "images").mkdir()
    for argv, said in [
        (["--manifest", "images", "--download_path", "images"], "--manifest images is a folder"),
        (["--manifest", "cameras.csv", "--download_path", "cameras.csv"],
         "--download_path cameras.csv/ is a file, expected a folder"),
        (["--manifest", "nothing.csv", "--download_path", "images"], "nothing.csv not found"),
    ]:  # fmt: skip
        assert said in run_fails(prepare.main, argv, capsys)
    assert files.missing(tmp_path / "images", folder=True) is None
    assert files.missing(tmp_path / "cameras.csv") is None


def test_a_missing_run_names_the_folder_it_was_looked_for_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as err:
        Run("mine").require()
    assert str(err.value).startswith(
        f"model/mine/ does not exist (runs are looked for in the current folder, {tmp_path}/)"
    )


def test_a_stop_as_the_temporary_file_is_made_leaves_none(tmp_path, monkeypatch):
    # SIGTERM delivered just after mkstemp made the file, before the block that removes it
    # on a stop: it waits until that block is entered, which then removes the file.
    from streid.cli import Interrupted, _stop_signals_interrupt

    make = files.tempfile.mkstemp

    def make_then_stop(**kwargs):
        made = make(**kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return made

    monkeypatch.setattr(files.tempfile, "mkstemp", make_then_stop)
    with _stop_signals_interrupt(), pytest.raises(Interrupted):
        with files.atomic_output(tmp_path / "a.csv") as tmp:
            tmp.write_text("never")
    assert list(tmp_path.iterdir()) == []
