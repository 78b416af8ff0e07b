"""Stopped runs leave nothing behind and end: signals sent to real step processes, stops that
come as a thread starts or a temporary file is made, and full disks."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import gen_rerank_all_scores_mat
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid import files
from streid.artifacts import atomic_output
from streid.datasets import MARKET
from streid.errors import UserError
from streid.interchange import FeatureSet
from tests.helpers import run_fails
from tests.helpers_images import write_jpeg

ROOT = Path(__file__).resolve().parent.parent


def start(script: str, args: list[str], cwd: Path) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / script), *args]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def stop_when(proc: subprocess.Popen, ready, signum, timeout=120) -> tuple[int, str]:
    """Send ``signum`` once ``ready()``; return the exit status and the last stderr line."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be stopped: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "never got ready"
        time.sleep(0.01)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, [line for line in err.splitlines() if line.strip()][-1]


def handles(proc: subprocess.Popen, signum) -> bool:
    """Whether ``proc`` has installed its handler for ``signum`` yet (Linux: the SigCgt mask
    of /proc/PID/status; elsewhere, after a second, by when the imports are done)."""
    status = Path(f"/proc/{proc.pid}/status")
    try:
        mask = next(line for line in status.read_text().splitlines() if line.startswith("SigCgt"))
    except OSError:
        time.sleep(1.0)
        return True
    return bool(int(mask.split()[1], 16) >> (signum - 1) & 1)


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    """A run whose all_scores.mat (8,000^2 floats, 256 MB) takes a while to write."""
    root = tmp_path_factory.mktemp("big")
    full = real_feature_set(MARKET, dim=32, seed=1, num_queries=1000)
    features = FeatureSet(full.query, full.gallery[:7000])
    write_run(root, features, real_histograms(MARKET))
    return root


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopped_step_6_1_removes_its_temporary_file(big_run, signum):
    run = big_run / "model/run"
    proc = start("gen_rerank_all_scores_mat.py", ["--name", "run"], big_run)
    status, line = stop_when(proc, lambda: any(run.glob(".all_scores.mat.*")), signum)
    name = signal.Signals(signum).name
    assert status == 128 + signum
    assert line == (
        f"interrupted by {name}: gen_rerank_all_scores_mat.py stopped before it finished and "
        f"left no partial file; run the same command again"
    )
    assert sorted(p.name for p in run.iterdir()) == ["pytorch_result.mat", "pytorch_result2.mat"]


def test_a_second_step_6_1_on_one_run_is_refused(big_run, monkeypatch, capsys):
    run = big_run / "model/run"
    proc = start("gen_rerank_all_scores_mat.py", ["--name", "run"], big_run)
    deadline = time.monotonic() + 120
    while not any(run.glob(".all_scores.mat.*")):
        assert proc.poll() is None and time.monotonic() < deadline, "never started writing"
        time.sleep(0.01)
    monkeypatch.chdir(big_run)
    try:
        err = run_fails(gen_rerank_all_scores_mat.main, ["--name", "run"], capsys)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)  # a step that hangs after its stop fails here
    assert err.startswith(
        f"error: model/run/all_scores.mat is being written by process {proc.pid} on "
    )
    assert sorted(p.name for p in run.iterdir()) == ["pytorch_result.mat", "pytorch_result2.mat"]


def test_a_stopped_re_ranking_from_the_features(big_run):
    proc = start("evaluate_rerank.py", ["--name", "run", "--from_features"], big_run)
    # It writes nothing, whenever it stops: stop it as soon as it can say so (about a second
    # before it would finish).
    status, line = stop_when(proc, lambda: handles(proc, signal.SIGTERM), signal.SIGTERM)
    assert status == 128 + signal.SIGTERM and line.startswith("interrupted by SIGTERM")
    assert len(list((big_run / "model/run").iterdir())) == 2


@pytest.mark.slow
def test_a_stopped_training_resumes(tmp_path):
    from tests.test_train_extract import write_raw_dataset  # noqa: F401 (the same fixture data)

    for person in range(3):
        for k in range(12):
            name = f"{person + 1:04d}_c{k % 2 + 1}_f{k:07d}_01.jpg"
            write_jpeg(
                tmp_path / "data/train" / f"{person + 1:04d}" / name, (80 * person, 90, 90), k
            )
    args = ["--data_dir", "data", "--weights", "none", "--epochs", "50", "--batchsize", "4"]
    args += ["--input_size", "32", "16", "--gpu_ids", "-1", "--num_workers", "0", "--seed", "0"]
    proc = start("train_market.py", args, tmp_path)
    run = tmp_path / "model/ft_ResNet50"
    status, line = stop_when(proc, lambda: (run / "resume.pth").is_file(), signal.SIGTERM)
    assert status == 128 + signal.SIGTERM
    assert line.endswith("run the same command with --resume to continue from the last "
                         "finished epoch")  # fmt: skip
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    done = subprocess.run(
        [sys.executable, str(ROOT / "train_market.py"), *args[:5], "2", *args[6:], "--resume"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and "resuming model/ft_ResNet50/ at epoch" in done.stdout


def test_step_6_1_checks_the_free_space_first(big_run, monkeypatch, capsys):
    monkeypatch.chdir(big_run)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda _: usage(10**9, 10**9, 52 * 10**6))
    err = run_fails(gen_rerank_all_scores_mat.main, ["--name", "run"], capsys)
    assert "all_scores.mat needs 0.26 GB but its file system has 0.05 GB free" in err
    assert "evaluate_rerank.py --from_features" in err
    assert len(list((big_run / "model/run").iterdir())) == 2


def test_a_write_error_names_the_file(tmp_path):
    with pytest.raises(
        UserError, match=r"^could not write .*/out.mat: disk full \(No space left on device\)$"
    ):
        with atomic_output(tmp_path / "out.mat") as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="could not write .*2956800 requested"):
        with atomic_output(tmp_path / "out.mat"):
            raise OSError("2956800 requested and 1779662 written")  # numpy's tofile
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_during_a_deferred_block_is_raised_as_it_ends(signum):
    # Sent to the main thread and to another one (a signal may land on any thread): the block
    # runs to its end, then the stop is raised by the handler the signal had before.
    from streid.cli import _stop_signals_interrupt
    from streid.errors import stops_deferred

    other = threading.Thread(target=time.sleep, args=(0.5,))
    other.start()
    done = []
    with _stop_signals_interrupt(), pytest.raises(KeyboardInterrupt) as stop:
        with stops_deferred():
            signal.pthread_kill(threading.main_thread().ident, signum)
            signal.pthread_kill(other.ident, signum)
            time.sleep(0.1)  # the handler has run by then
            done.append("the block's end")
    other.join()
    assert done == ["the block's end"]
    name = signal.Signals(signum).name
    assert getattr(stop.value, "signal", "SIGINT") == name
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # each handler restored
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# A stop that comes as the pool starts a thread, before the pool has noted it: the process
# used to hang at exit, waiting for a thread nobody would tell to end. The signal lands on
# the new thread, as it may on any of a process's threads (BLAS's, numba's).
STOPPED_AS_A_THREAD_STARTS = """
import signal, threading, time
from streid import parallel
from streid.cli import _stop_signals_interrupt
from streid.errors import Interrupted

start = threading.Thread.start

def start_then_stop(self):
    start(self)
    signal.pthread_kill(self.ident, signal.SIGTERM)
    time.sleep(0.2)  # the main thread runs the handler by then

threading.Thread.start = start_then_stop
try:
    with _stop_signals_interrupt():
        parallel.for_ranges(lambda a, b: None, 4, 1)
except Interrupted:
    print("interrupted")
"""


def test_a_stop_as_a_thread_starts_still_lets_the_process_end():
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-c", STOPPED_AS_A_THREAD_STARTS], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the process did not end after its stop")
    assert (proc.returncode, out) == (0, "interrupted\n")
