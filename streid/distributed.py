"""Step 2 on several GPUs or machines, under ``torchrun`` (DistributedDataParallel).

Added: not in the original, which trained on one GPU. ``torchrun --nproc_per_node N
train_market.py ...`` starts N processes, each told its place by the environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); a plain ``python train_market.py`` has no
``WORLD_SIZE`` and is the one-process run, untouched (:class:`Processes` with ``active``
False makes every function here a no-op).

Each process trains on the GPU of its ``LOCAL_RANK`` (NCCL), or on the CPU with
``--gpu_ids -1`` (gloo; gloo also carries the CPU tensors of a GPU run). Each takes its
share of the training images (a :class:`~torch.utils.data.DistributedSampler` reshuffled
every epoch from ``--seed``) and ``--batchsize`` of them per step, so the global batch is N
times ``--batchsize``; the validation images are split without repeats. Losses and
accuracies are summed over the processes before they are printed, so they mean what they
mean in one process. Rank 0 alone prints and writes the run's files (and holds the run's
lock); the others print nothing but their errors. A failure while the run is being set up
(a missing folder, a refused ``model/<name>/``) is agreed on by all processes
(:func:`agreed`): the first failing rank reports it in one line, the others stop quietly.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler, Sampler

from .errors import UserError

# Deviation from the original: it trained on one GPU (the first of --gpu_ids); under torchrun
# step 2 trains on several, each process on its share of the images.


class PeerFailed(Exception):
    """Another process of the run failed while it was set up, and reported it: stop quietly."""


@dataclass(frozen=True)
class Processes:
    """This process's place among the run's processes.

    Attributes:
        rank: its rank, 0 to ``world - 1`` (0 writes the files).
        world: how many processes train together.
        local_rank: its rank on this machine: the GPU it trains on.
        active: whether a process group is initialised (under torchrun).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    active: bool = False

    @property
    def main(self) -> bool:
        """Whether this process prints and writes the run's files."""
        return self.rank == 0


def env_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


@contextlib.contextmanager
def processes():
    """The run's :class:`Processes`: under torchrun (``WORLD_SIZE`` set) the process group,
    initialised from the environment and destroyed after; otherwise one inactive process."""
    if "WORLD_SIZE" not in os.environ:
        yield Processes()
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    procs = Processes(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), True
    )
    yield procs
    dist.destroy_process_group()


@contextlib.contextmanager
def quiet(procs: Processes):
    """Silence the prints, notes and progress bars of every process but rank 0 (their
    errors are printed by the script, after the block)."""
    if procs.main:
        yield
        return
    with (
        open(os.devnull, "w") as null,
        contextlib.redirect_stdout(null),
        contextlib.redirect_stderr(null),
    ):
        yield


@contextlib.contextmanager
def agreed(procs: Processes):
    """Around the setting up of a run: where any process fails in the block, all stop. The
    lowest failing rank raises its own error; the others raise :class:`PeerFailed`."""
    if not procs.active:
        yield
        return
    failed = None
    try:
        yield
    except Exception as err:  # a bug too: its process keeps its traceback
        failed = err
    first = torch.tensor([procs.rank if failed is not None else procs.world])
    dist.all_reduce(first, op=dist.ReduceOp.MIN)
    if failed is not None and first.item() == procs.rank:
        raise failed
    if first.item() < procs.world:
        raise PeerFailed(f"rank {first.item()} failed")


def device_of(procs: Processes, device: torch.device) -> torch.device:
    """The device this process trains on: ``device`` (of ``--gpu_ids``), or under torchrun
    with a GPU, the GPU of its ``LOCAL_RANK``."""
    if not procs.active or device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if procs.local_rank >= count:
        raise UserError(
            f"LOCAL_RANK {procs.local_rank}: this machine has {count} GPUs; start at most "
            f"{count} processes per machine (torchrun --nproc_per_node {count})"
        )
    torch.cuda.set_device(procs.local_rank)
    return torch.device("cuda", procs.local_rank)


def common_seed(procs: Processes, seed: int | None) -> int:
    """``seed``, or where it is None a random one drawn by rank 0 and shared by all."""
    if seed is not None:
        return seed
    drawn = torch.tensor([random.SystemRandom().randrange(2**31)])
    if procs.active:
        dist.broadcast(drawn, src=0)
    return int(drawn.item())


class Shard(Sampler):
    """Every ``world``-th index from ``rank``: the processes' shards cover each item once."""

    def __init__(self, size: int, procs: Processes):
        self.indices = range(procs.rank, size, procs.world)

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def train_sampler(procs: Processes, size: int, seed: int | None) -> Sampler | None:
    """Under torchrun, this process's share of ``size`` training images, reshuffled every
    epoch (:func:`set_epoch`) from ``seed``; None for one process."""
    if not procs.active:
        return None
    seed = common_seed(procs, seed)
    return DistributedSampler(range(size), procs.world, procs.rank, shuffle=True, seed=seed)


def shard(procs: Processes, size: int) -> Sampler | None:
    """Under torchrun, this process's :class:`Shard` of ``size`` images; None for one."""
    return Shard(size, procs) if procs.active else None


def set_epoch(loader, epoch: int) -> None:
    """Reshuffle a distributed loader for ``epoch`` (the same order on every process)."""
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


def summed(procs: Processes, *values: torch.Tensor) -> list[torch.Tensor]:
    """``values`` (scalars on one device) summed over the processes, in float64."""
    if not procs.active:
        return list(values)
    stacked = torch.stack([v.double() for v in values])
    dist.all_reduce(stacked)
    return list(stacked)


def wrap(model: nn.Module, procs: Processes, device: torch.device, sync_bn: bool) -> nn.Module:
    """``model`` (on ``device``) as trained by this process: under torchrun in
    DistributedDataParallel (with ``sync_bn``, its BatchNorm layers synchronised); else as is.
    The wrapper shares the model's parameters; save and evaluate the model itself."""
    if not procs.active:
        return model
    if sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif sync_bn:  # torch's SyncBatchNorm takes GPU tensors only
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.__class__ = CpuSyncBatchNorm
    ids = [device.index] if device.type == "cuda" else None
    # static_graph: torchvision's 1000-way fc stays in the nets, unused.
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, static_graph=True)


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A BatchNorm layer whose training statistics are those of all processes' batches, on
    the CPU (gloo): they are summed in an all_reduce that autograd goes back through, so the
    gradients are those of one process's BatchNorm on the whole batch. The layer's
    parameters and buffers are the BatchNorm layer's it replaces (its ``__class__``)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or dist.get_world_size() < 2:
            return super().forward(input)
        self._check_input_dim(input)
        dims, shape = [0, *range(2, input.dim())], [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor([input.numel() / input.size(1)], dtype=input.dtype)
        total = _Summed.apply(torch.cat([input.sum(dims), count]))
        n = total[-1].detach()
        centred = input - (total[:-1] / n).view(shape)
        var = _Summed.apply(centred.square().sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = (
                    self.momentum
                    if self.momentum is not None
                    else 1 / float(self.num_batches_tracked)
                )
                self.running_mean.lerp_(total[:-1] / n, f)
                self.running_var.lerp_(var * n / (n - 1), f)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        return out * self.weight.view(shape) + self.bias.view(shape) if self.affine else out


class _Summed(torch.autograd.Function):
    """A tensor summed over the processes; its gradient too, on the way back."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total
