"""Where steps 2-3 run: the device of ``--gpu_ids``, seeding, and placing nets and batches."""

from __future__ import annotations

import random

import torch
from torch import nn

from .errors import UserError, note, warning


def select_device(gpu_ids: str) -> torch.device:
    """The device for ``--gpu_ids``, as the original: the first non-negative id is used.

    Without CUDA the run falls back to the CPU with a one-line warning; ``-1`` asks for the
    CPU. With CUDA, an id that is not a GPU of this machine is a UserError.
    """
    try:
        ids = [int(s) for s in gpu_ids.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--gpu_ids {gpu_ids!r}: expected GPU numbers such as 0 or 0,1") from None
    ids = [i for i in ids if i >= 0]
    if not ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        # Deviation from the original: it tested `torch.cuda.is_available` without calling it
        # (always true) and crashed without a GPU; today's runs may be on a laptop.
        warning("CUDA is not available; running on the CPU")
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if ids[0] >= count:
        raise UserError(
            f"--gpu_ids {gpu_ids}: there is no GPU {ids[0]} (this machine has {count}: "
            f"0..{count - 1}; -1 for the CPU)"
        )
    if len(ids) > 1:
        note(f"--gpu_ids {gpu_ids}: only GPU {ids[0]} is used, as in the original")
    return torch.device("cuda", ids[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random`` (RandomErasing) and torch (CPU and CUDA: init, augmentation)."""
    random.seed(seed)
    torch.manual_seed(seed)


def place_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device``; on CUDA in channels_last layout, with cuDNN autotuning
    (the input size is fixed, so the fastest kernels are picked once)."""
    model = model.to(device)
    if device.type == "cuda":  # Deviation from the original: cuDNN autotuning, channels_last
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    return model


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of images on ``device``; channels_last on CUDA, where cuDNN's fastest
    (tensor-core) convolutions want it."""
    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else images
