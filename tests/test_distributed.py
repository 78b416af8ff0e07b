"""Step 2 under torchrun, on the CPU (gloo, 2 processes): one step of 2 processes x batch B is
one step of 1 process x batch 2B, weight for weight (--sync_bn); a run writes its files once,
from rank 0, and --resume continues it; a bad folder stops both processes in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing

from streid import distributed
from streid.models import architecture, build_model
from streid.optimization import Optimization
from streid.train_log import read_log
from streid.training import run_epoch
from tests.helpers_images import torch_threads
from tests.test_train_log import write_data

ROOT = Path(__file__).resolve().parent.parent
B, CLASSES, VAL = 2, 3, 5  # per process; the validation images: an odd count, unevenly split
CPU = torch.device("cpu")
ARGS = ["--data_dir", "data", "--name", "run", "--batchsize", "2", "--input_size", "32", "16"]
ARGS += ["--weights", "none", "--gpu_ids", "-1", "--num_workers", "0", "--seed", "0"]
RECORD = ["net_last.pth", "opts.json", "resume.pth", "train.jpg", "train_log.csv"]


def samples():
    """2B training and VAL validation images with their labels, the same in every process."""
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2 * B + VAL, 3, 32, 16, generator=g)
    labels = torch.randint(0, CLASSES, (2 * B + VAL,), generator=g)
    return (images[: 2 * B], labels[: 2 * B]), (images[2 * B :], labels[2 * B :])


def one_step(procs: distributed.Processes):
    """One optimizer step (and a validation) on this process's share of :func:`samples`:
    (the train and val (loss, error, images), the net's state dict)."""
    (images, labels), (val_images, val_labels) = samples()
    torch.manual_seed(0)
    model = build_model(architecture("resnet50"), CLASSES, "none")
    for module in model.modules():  # dropout draws per image: other draws for other batches
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    net = distributed.wrap(model, procs, CPU, sync_bn=True)
    opt = Optimization.for_model(model, CPU, amp=False)
    share = slice(procs.rank * B, (procs.rank + 1) * B) if procs.active else slice(None)
    batch = [(images[share], labels[share])]
    trained = run_epoch(net, batch, CPU, "train", opt.optimizer, opt.scaler, procs=procs)
    shard = list(distributed.shard(procs, VAL) or range(VAL))
    validated = run_epoch(model, [(val_images[shard], val_labels[shard])], CPU, "val", procs=procs)
    return trained[:3], validated[:3], model.state_dict()


def _process(rank: int, port: int, out: str) -> None:
    """A process of a 2-process group, as torchrun would start it."""
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with distributed.processes() as procs:
        result = one_step(procs)
    torch.save(result, f"{out}.{rank}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_of_batch_b_make_the_step_of_one_of_batch_2b(tmp_path):
    out = str(tmp_path / "step")
    torch.multiprocessing.spawn(_process, args=(free_port(), out), nprocs=2)
    with torch_threads(1):
        trained, validated, state = one_step(distributed.Processes())
    for rank in (0, 1):
        their_trained, their_validated, theirs = torch.load(f"{out}.{rank}", weights_only=True)
        assert their_trained[2] == 2 * B and their_validated[2] == VAL
        assert their_trained == pytest.approx(trained, abs=1e-6)
        assert their_validated == pytest.approx(validated, abs=1e-6)
        assert theirs.keys() == state.keys()
        for key, value in state.items():
            assert torch.allclose(theirs[key].double(), value.double(), rtol=0, atol=1e-5), key
    # The step changed the net: equal weights are not those of two untouched nets.
    torch.manual_seed(0)
    untouched = build_model(architecture("resnet50"), CLASSES, "none").state_dict()
    key = "classifier.classifier.0.weight"
    assert (untouched[key] - state[key]).abs().max() > 1e-4


def torchrun(args, cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """train_market.py under ``torchrun --standalone --nproc_per_node 2``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env = {k: v for k, v in env.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(ROOT / "train_market.py"), *args]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_torchrun_writes_the_run_once_and_resume_continues_it(tmp_path):
    write_data(tmp_path / "data")  # 8 training images: 4 per process, 2 steps of 2 each
    done = torchrun([*ARGS, "--epochs", "1", "--sync_bn"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("Epoch 0/0") == 1
    assert "2 processes x --batchsize 2: global batch 4, SyncBatchNorm" in lines
    assert sum(line.startswith("train Loss: ") for line in lines) == 1
    assert sum(line.startswith("Training complete in ") for line in lines) == 1
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["run"]  # lock gone
    run = tmp_path / "model/run"
    assert sorted(p.name for p in run.iterdir()) == RECORD  # no temporary file either
    rows = read_log(run / "train_log.csv")
    assert [(r.epoch, r.phase) for r in rows] == [(0, "train"), (0, "val")]

    resumed = torchrun([*ARGS, "--epochs", "2", "--sync_bn", "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines().count("resuming model/run/ at epoch 1") == 1
    again = read_log(run / "train_log.csv")
    assert [(r.epoch, r.phase) for r in again] == [(e, p) for e in (0, 1) for p in ("train", "val")]
    assert again[:2] == rows
    assert torch.load(run / "resume.pth", weights_only=True)["epoch"] == 2


@pytest.mark.slow
def test_a_missing_folder_stops_both_processes_in_one_line(tmp_path):
    done = torchrun([*ARGS, "--data_dir", "nowhere"], tmp_path, timeout=120)
    assert done.returncode != 0
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "error: " in line]
    assert errors == [
        "error: nowhere/train/ not found: run prepare.py --Market (step 1), or pass --data_dir"
    ]
    assert not (tmp_path / "model").exists()
