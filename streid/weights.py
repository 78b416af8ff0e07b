"""Weights files: state dicts read onto the CPU, loaded strictly with the original's
tolerances, written atomically with a one-line error, and torchvision's ImageNet files from
the torch hub cache, downloaded into it when missing (as torchvision does).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import itertools
import os
import re
import shutil
from pathlib import Path
from urllib.error import HTTPError, URLError

import torch
from torch import nn
from torchvision.models._api import WeightsEnum

from .artifacts import atomic_output
from .errors import UserError
from .files import describe, missing

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
    # Deviation from the original: checkpoints of PyTorch 0.3 (no num_batches_tracked) and old
    # DenseNet key names load; any other mismatch is an error naming the keys.
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
    if why := missing(path):
        raise UserError(f"weights file {path} {why}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged or foreign file
        raise UserError(f"{path} could not be read as a PyTorch state dict ({err})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state


# What torch.save's C++ writer says when the file cannot be written (it loses the errno):
# "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598", "PytorchStreamWriter
# failed writing file data/0: file write failed", "File x cannot be opened.", ...
_WRITE_FAILURE = re.compile(
    r"unexpected pos|write failed|failed writing|cannot be opened|iostream error|"
    r"no space left|disk full|enospc|quota",
    re.IGNORECASE,
)
_DISK_FULL = re.compile(r"no space left|disk full|enospc|quota", re.IGNORECASE)
NEARLY_FULL = 1 << 20  # bytes free below which a failed write is put down to a full disk


def _write_error(err: Exception, tmp: Path) -> OSError:
    """The OSError of a failed ``torch.save`` to ``tmp``: ENOSPC where its errno or message
    says so, or the file system of ``tmp`` has (almost) nothing left."""
    text = getattr(err, "strerror", None) or str(err).strip() or type(err).__name__
    detail = text.splitlines()[0]
    codes = {getattr(e, "errno", None) for e in (err, err.__cause__, err.__context__)}
    try:
        full = shutil.disk_usage(tmp.parent).free < NEARLY_FULL
    except OSError:
        full = False
    if codes & {errno.ENOSPC, errno.EDQUOT} or _DISK_FULL.search(str(err)) or full:
        return OSError(errno.ENOSPC, detail)  # said "disk full (detail)" by files.describe
    return OSError(errno.EIO, f"torch.save failed ({detail})")


def save_checked(obj, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (:func:`streid.artifacts.atomic_output`);
    a write failure is the one line of any other write error: "could not write PATH: ..."."""
    with atomic_output(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:  # torch's writer raises RuntimeError, not OSError
            if not _WRITE_FAILURE.search(str(err)):
                raise  # not a write failure: a bug, with its traceback
            raise _write_error(err, tmp) from None
        except OSError as err:
            raise _write_error(err, tmp) from None


# A torchvision file name carries the start of its SHA-256 (resnet50-0676ba61.pth), as
# torch.hub's check_hash reads it.
_HASH_PREFIX = re.compile(r"-([a-f0-9]+)\.")


def cached_weights_file(weights: WeightsEnum) -> Path:
    """The torch hub cache file of torchvision weights (``$TORCH_HOME/hub/checkpoints/``),
    downloaded into the cache when it is not there, with its hash checked, as torchvision's
    ``weights.get_state_dict()`` and the original's ``pretrained=True`` do.

    Raises:
        UserError: the file is not there and cannot be downloaded (offline, refused, broken),
            saying why and naming the file, the folder and the alternatives.
    """
    filename = os.path.basename(weights.url)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / filename
    if path.is_file():
        return path
    print(f'Downloading: "{weights.url}" to {path}')  # as torch.hub does, on stdout
    match = _HASH_PREFIX.search(filename)
    made = list(itertools.takewhile(lambda p: not p.exists(), (folder, *folder.parents)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights.url, str(path), match and match[1], progress=True)
    except (OSError, http.client.HTTPException, RuntimeError) as err:
        if isinstance(err, RuntimeError) and "invalid hash value" not in str(err):
            raise  # not a damaged download: a bug, with its traceback
        for new in made:  # the folders made for the file, deepest first
            with contextlib.suppress(OSError):
                new.rmdir()
        # Deviation from the original: offline, one line says which file to put where (and
        # the other --weights) instead of urllib's traceback.
        raise UserError(
            f"ImageNet weights {filename} not found in {folder}/ and could not be downloaded "
            f"({_download_failure(err)}): download {weights.url} into that folder, or pass "
            f"--weights PATH (a .pth state dict of the backbone) or --weights none (random "
            f"initialisation)"
        ) from None
    return path


def _download_failure(err: Exception) -> str:
    """Why a download failed, in a few words: "HTTP Error 404: Not Found", "Temporary failure
    in name resolution", "timed out", ..."""
    if isinstance(err, URLError) and not isinstance(err, HTTPError):
        err = err.reason
    if isinstance(err, OSError) and not isinstance(err, HTTPError):
        return describe(err)
    return str(err).splitlines()[0] if str(err).strip() else type(err).__name__
