"""Tiny generated images and ImageFolder trees for the CPU tests of steps 1-3."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# Distinct colours, one per identity: an easy case a randomly initialised net learns quickly.
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 40)]


def write_jpeg(path: Path, colour, seed: int, size=(16, 32)) -> None:
    """A (width, height) = ``size`` JPEG of ``colour`` with a little noise, at ``path``."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)


def write_raw_dataset(root: Path, names: dict[str, list[str]], images: bool = True) -> None:
    """A raw dataset folder: ``names`` maps raw folders (query, ...) to file names.

    With ``images``, each file is a small JPEG coloured by its person id (ids met in order get
    COLOURS[0], [1], ...); otherwise a few placeholder bytes (prepare.py never decodes).
    """
    colour_of: dict[str, tuple] = {}
    seed = 0
    for folder, files in names.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in files:
            path = root / folder / name
            if images:
                pid = name.split("_")[0]
                colour = colour_of.setdefault(pid, COLOURS[len(colour_of) % len(COLOURS)])
                write_jpeg(path, colour, seed)
                seed += 1
            else:
                path.write_bytes(b"raw " + name.encode())


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` threads: tiny CPU nets are fastest on one, and two OpenMP threads
    slow down a hundredfold when another process holds a core of a 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
