"""Dataset specs and file-name parsing: the one place that knows Market-1501 and DukeMTMC-reID.

Every size the pipeline needs (histogram cameras, time-gap bins, frames per bin) and every
file-name format lives in a :class:`DatasetSpec`. The step scripts for the two datasets call
the same code with a different spec.

File names carry the metadata (``PPPP`` person, ``C`` camera, ``S`` sequence, ``F`` frame,
``BB`` box):

- Market-1501 as shipped: ``0002_c1s1_000451_03.jpg`` (24 real names end in ``.jpg.jpg``).
- Market-1501 after ``prepare.py``: ``0002_c1_f0000451_03.jpg``, the frame made global over the
  camera's sequences with :data:`MARKET_SEQUENCE_FRAMES`.
- DukeMTMC-reID (unchanged by ``prepare.py``): ``0001_c2_f0046182.jpg``.

Person ``-1`` is junk (ignored by the evaluation), ``0000`` a distractor.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
NAME_LIST_DIR = REPO_ROOT / "data"

# The image extensions torchvision's ImageFolder accepts; the listing below follows its rules.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# Market-1501: (camera * 10 + sequence) -> number of frames of that sequence, from the
# original prepare.py. Missing entries count 0. The table is approximate (5 sequences hold
# frames beyond their listed length), but the published numbers depend on it, so it is kept.
MARKET_SEQUENCE_FRAMES = {
    11: 72681, 12: 74546, 13: 74881, 14: 74661, 15: 74891, 16: 54346,
    21: 163691, 22: 164677, 23: 98102,
    31: 161708, 32: 161769, 33: 104469,
    41: 72107, 42: 72373, 43: 74810, 44: 74541, 45: 74910, 46: 50616,
    51: 161095, 52: 161724, 53: 103487,
    61: 87551, 62: 131268, 63: 95817, 64: 30952,
}  # fmt: skip

# Frames per time-gap bin, the same for both datasets; ``pytorch_result2.mat`` records it.
FRAMES_PER_BIN = 100


@dataclass(frozen=True)
class NameInfo:
    """Metadata of one image, parsed from its file name."""

    label: int  # person id; -1 for junk, 0 for distractors
    camera: int  # 1-based camera id
    frame: int  # frame number used by the spatial-temporal model


@dataclass(frozen=True)
class DatasetSpec:
    """Everything dataset-specific, in one object.

    Attributes:
        key: short name used on command lines and in messages ("market", "duke").
        title: human-readable name.
        num_cameras: side of the camera-pair histogram. The original uses 8 for both
            datasets (Market-1501 has 6 cameras; its rows 7 and 8 stay empty).
        num_bins: time-gap bins per camera pair.
        interval: frames per time-gap bin.
        prepared_dir: where ``prepare.py`` writes the ImageFolder trees (the default
            ``--data_dir`` / ``--test_dir`` of the later steps).
        raw_format / prepared_format: the file-name patterns, as shown in error messages.
        list_dir: folder under ``data/`` with the real split name lists.
    """

    key: str
    title: str
    num_cameras: int
    num_bins: int
    interval: int
    prepared_dir: str
    raw_format: str
    raw_regex: re.Pattern
    prepared_format: str
    prepared_regex: re.Pattern
    list_dir: str

    @property
    def prepare_flag(self) -> str:
        """prepare.py's flag for this dataset: ``--Market`` or ``--Duke``."""
        return "--" + self.key.capitalize()

    # -- parsing -------------------------------------------------------------------------
    def parse_name(self, filename: str) -> NameInfo:
        """Parse a prepared file name (what the ImageFolder trees hold).

        Raises:
            UserError: the name does not match :attr:`prepared_format`.
        """
        base = os.path.basename(filename)
        m = self.prepared_regex.match(base)
        if m is None:
            raise UserError(
                f"file name {filename!r} does not match the {self.title} pattern "
                f"{self.prepared_format!r}"
            )
        return NameInfo(_label(m["pid"]), int(m["cam"]), int(m["frame"]))

    def parse_names(self, filenames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Parse many prepared names into (labels, cameras, frames) int64 arrays."""
        infos = [self.parse_name(f) for f in filenames]
        labels = np.fromiter((i.label for i in infos), dtype=np.int64, count=len(infos))
        cams = np.fromiter((i.camera for i in infos), dtype=np.int64, count=len(infos))
        frames = np.fromiter((i.frame for i in infos), dtype=np.int64, count=len(infos))
        return labels, cams, frames

    def check_raw_name(self, filename: str) -> re.Match:
        """Match a name as the dataset ships it; UserError naming the file if it does not."""
        m = self.raw_regex.match(os.path.basename(filename))
        if m is None:
            raise UserError(
                f"file name {filename!r} does not match the {self.title} pattern "
                f"{self.raw_format!r}"
            )
        return m

    def prepared_name(self, raw_name: str) -> str:
        """The name ``prepare.py`` gives a raw file: Market is renamed to global frames."""
        m = self.check_raw_name(raw_name)
        if self.key != "market":
            return os.path.basename(raw_name)
        frame = market_global_frame(int(m["cam"]), int(m["seq"]), int(m["frame"]))
        # The box field keeps whatever followed it, ".jpg" or the real ".jpg.jpg".
        return f"{m['pid']}_c{m['cam']}_f{frame:07d}_{m['box']}{m['ext']}"

    def name_list(self, split: str) -> list[str]:
        """The real file names of a split ("train", "query" or "gallery"), as shipped."""
        path = NAME_LIST_DIR / self.list_dir / f"{split}.txt"
        return path.read_text().split()


def _label(pid: str) -> int:
    # As the original: the first four characters, -1 for the junk images.
    return -1 if pid.startswith("-1") else int(pid)


def market_global_frame(camera: int, sequence: int, frame: int) -> int:
    """Market-1501 frame made global: the frame plus the lengths of the camera's earlier
    sequences (:data:`MARKET_SEQUENCE_FRAMES`)."""
    offset = sum(MARKET_SEQUENCE_FRAMES.get(camera * 10 + s, 0) for s in range(1, sequence))
    return offset + frame


MARKET = DatasetSpec(
    key="market",
    title="Market-1501",
    num_cameras=8,
    num_bins=5000,
    interval=FRAMES_PER_BIN,
    prepared_dir="dataset/market_rename",
    raw_format="PPPP_cCsS_FFFFFF_BB.jpg",
    raw_regex=re.compile(
        r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)s(?P<seq>\d)_(?P<frame>\d{6})_(?P<box>\d{2})"
        r"(?P<ext>\.jpg(?:\.jpg)?)$"
    ),
    prepared_format="PPPP_cC_fGGGGGGG_BB.jpg",
    prepared_regex=re.compile(
        r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)_f(?P<frame>\d{7,})_(?P<box>\d{2})\.jpg(?:\.jpg)?$"
    ),
    list_dir="market1501",
)

DUKE = DatasetSpec(
    key="duke",
    title="DukeMTMC-reID",
    num_cameras=8,
    num_bins=3000,
    interval=FRAMES_PER_BIN,
    prepared_dir="dataset/DukeMTMC_prepare",
    raw_format="PPPP_cC_fFFFFFFF.jpg",
    raw_regex=re.compile(r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)_f(?P<frame>\d{7})\.jpg$"),
    prepared_format="PPPP_cC_fFFFFFFF.jpg",
    prepared_regex=re.compile(r"^(?P<pid>-1|\d{4})_c(?P<cam>\d)_f(?P<frame>\d{7})\.jpg$"),
    list_dir="dukemtmc",
)

SPECS = {spec.key: spec for spec in (MARKET, DUKE)}


# -- ImageFolder-compatible listing ------------------------------------------------------------
def image_folder(root: str | os.PathLike) -> tuple[list[str], list[int], list[str]]:
    """List an ImageFolder tree the way ``torchvision.datasets.ImageFolder`` does.

    Classes are the sorted sub-folder names; files are walked per class in sorted order and
    kept if their extension is an image extension. No image is opened, so this works on
    empty placeholder files and does not need torch.

    Returns:
        (paths, targets, classes): file paths, each file's class index, the class names.

    Raises:
        UserError: ``root`` is not a folder.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise UserError(f"folder {root!r} does not exist")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    paths: list[str] = []
    targets: list[int] = []
    for index, cls in enumerate(classes):
        for dirpath, _, fnames in sorted(os.walk(os.path.join(root, cls), followlinks=True)):
            for fname in sorted(fnames):
                if fname.lower().endswith(IMG_EXTENSIONS):
                    paths.append(os.path.join(dirpath, fname))
                    targets.append(index)
    return paths, targets, classes
