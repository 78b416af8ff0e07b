"""Weights files: state dicts read onto the CPU, loaded strictly with the original's
tolerances, and torchvision's ImageNet files found in the local torch cache (never downloaded).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn
from torchvision.models._api import WeightsEnum

from .errors import UserError

# torchvision < 0.3 named DenseNet layers 'norm.1', 'conv.2', ...; its ImageNet file and the
# original's DenseNet checkpoints still use those names (torchvision renames them the same way).
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _describe(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_state_dict_checked(module: nn.Module, state_dict: dict, source: str) -> None:
    """Load ``state_dict`` into ``module`` strictly, except for two historical differences.

    Tolerated: legacy DenseNet key names (renamed), and missing BatchNorm
    ``num_batches_tracked`` buffers (PyTorch 0.3 checkpoints have none; they are left at 0,
    which only matters for BatchNorm with ``momentum=None``, not used here).

    Raises:
        UserError: any other missing or unexpected key, or a tensor of another shape, named.
    """
    state_dict = {_LEGACY_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state_dict.items()}
    expected = module.state_dict()
    missing = [
        k for k in expected if k not in state_dict and not k.endswith(".num_batches_tracked")
    ]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_describe(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_describe(unexpected)}")
        raise UserError(f"{source} does not fit the model: {'; '.join(parts)}")
    wrong = [
        f"{k} {tuple(v.shape)} (the model has {tuple(expected[k].shape)})"
        for k, v in state_dict.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise UserError(f"{source} does not fit the model: shape of {_describe(wrong, 3)}")
    module.load_state_dict(state_dict, strict=False)


def read_state_dict(path: str | os.PathLike) -> dict:
    """``torch.load`` a state dict onto the CPU; UserError if the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise UserError(f"{path} could not be read as a PyTorch state dict ({err})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state


def cached_weights_file(weights: WeightsEnum) -> Path:
    """The local torch hub cache file of torchvision weights; never downloads.

    Raises:
        UserError: the file is not there, naming it, the folder and the alternatives.
    """
    filename = os.path.basename(weights.url)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / filename
    if not path.is_file():
        raise UserError(
            f"ImageNet weights {filename} not found in {folder}/: download {weights.url} "
            f"into that folder, or pass --weights PATH (a .pth state dict of the backbone) "
            f"or --weights none (random initialisation)"
        )
    return path
