"""Images for steps 2-3: decoding, ImageFolder trees as datasets, loaders and batches.

An image that cannot be decoded stops the run with a UserError naming the file. In a
DataLoader worker process the failure travels back to the main process as data (an
:class:`UnreadableImage` in place of the batch), so its message arrives as it was written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, default_collate
from tqdm import tqdm

from .datasets import image_folder
from .errors import UserError, note
from .files import missing

# --num_workers' default: 4, or fewer on a machine of fewer CPUs (one process per CPU at most;
# more only compete for them). cli.add_device_arguments says the same without importing torch.
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


def load_rgb(path: str) -> Image.Image:
    """Open an image as RGB (torchvision's ImageFolder loader); UserError naming a bad file."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        # PIL's message often repeats the path; keep the reason only.
        reason = str(err).replace(repr(str(path)), "").strip() or type(err).__name__
        raise UserError(f"cannot decode image {path}: {reason}") from None


@dataclass(frozen=True)
class UnreadableImage:
    """What :class:`ImageList` yields for an image it cannot decode: the user's message."""

    message: str


class ImageList(Dataset):
    """An ImageFolder tree as listed by :func:`streid.datasets.image_folder`.

    Attributes:
        paths: image paths, in torchvision ImageFolder order.
        targets: class index of each image.
        classes: class (person id folder) names; index = position.
    """

    def __init__(self, paths, targets, classes, transform):
        self.paths, self.targets, self.classes = paths, targets, classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        """(transformed image, class index), or an :class:`UnreadableImage`."""
        try:
            image = load_rgb(self.paths[index])
        except UserError as err:
            return UnreadableImage(str(err))
        return self.transform(image), self.targets[index]


def collate(samples: list):
    """``default_collate``, unless a sample is an :class:`UnreadableImage`: then that."""
    for sample in samples:
        if isinstance(sample, UnreadableImage):
            return sample
    return default_collate(samples)


def image_list(root: Path, transform, hint: str, classes: list[str] | None = None) -> ImageList:
    """List the ImageFolder tree at ``root``.

    Args:
        root: folder with one sub-folder of images per person id.
        transform: applied to each PIL image.
        hint: what to do when the folder is missing or empty, for the message.
        classes: class names to index the targets by (the training classes, for the
            validation set); images of other classes are left out.

    Raises:
        UserError: the folder is missing or holds no images.
    """
    if why := missing(root, folder=True):
        raise UserError(f"{root}/ {why}: {hint}")
    paths, targets, found = image_folder(root)
    if not paths:
        raise UserError(f"{root}/ holds no images (one sub-folder per person id expected): {hint}")
    if classes is not None and found != classes:
        # Deviation from the original: it indexed the validation classes on their own, which
        # misaligns them with the training classes when an id has a single image (it goes to
        # val/ only). Index by name instead and leave out ids the net does not know.
        index = {name: i for i, name in enumerate(classes)}
        kept = [
            (p, index[found[t]]) for p, t in zip(paths, targets, strict=True) if found[t] in index
        ]
        if len(kept) < len(paths):
            note(f"{len(paths) - len(kept)} images of {root}/ are of untrained ids")
        paths, targets = [p for p, _ in kept], [t for _, t in kept]
        found = classes
    return ImageList(paths, targets, found, transform)


def make_loader(
    dataset, batch_size, *, shuffle, num_workers, device, seed=None, drop_last=False, sampler=None
):
    """A DataLoader; pinned memory and persistent workers on CUDA; seeded when ``seed``;
    ``sampler``: the order of the items instead of ``shuffle`` (a process's share of them)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        generator=generator,
    )


def batches(loader: DataLoader, desc: str):
    """Iterate ``loader`` under a progress bar, on a terminal only: where stderr is
    redirected (a batch job's log), no bar, so the log holds the steps' own lines alone.

    Raises:
        UserError: a batch held an image that could not be decoded (its message).
    """
    # disable=None: tqdm leaves the bar out where its stream (stderr) is not a terminal.
    for batch in tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=None):
        if isinstance(batch, UnreadableImage):
            raise UserError(batch.message)
        yield batch
