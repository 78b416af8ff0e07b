"""Dataset specs and file-name parsing: the one place that knows each dataset.

Every size the pipeline needs (histogram cameras, time-gap bins, time units per bin, the
default Parzen width) and every file-name format lives in a :class:`DatasetSpec`. Built-in
specs describe Market-1501, DukeMTMC-reID and MSMT17; ``prepare.py`` writes the spec of the
folder it prepares into ``dataset.yaml`` (:mod:`streid.dataset_yaml`), which steps 2-4 read.

File names carry the metadata (``PPPP`` person, ``C`` camera, ``S`` sequence, ``F`` frame,
``BB`` box):

- Market-1501 as shipped: ``0002_c1s1_000451_03.jpg`` (24 real names end in ``.jpg.jpg``).
- Market-1501 after ``prepare.py``: ``0002_c1_f0000451_03.jpg``, the frame made global over the
  camera's sequences with :data:`MARKET_SEQUENCE_FRAMES`.
- DukeMTMC-reID (unchanged by ``prepare.py``): ``0001_c2_f0046182.jpg``.
- MSMT17 (unchanged): ``0000_045_12_0303morning_0006_2.jpg``: person, index, camera 01-15,
  the recording session (date and morning/noon/afternoon), the frame within the session, and
  a last field (``_ex`` may follow).

Person ``-1`` is junk (ignored by the evaluation). In Market-1501 and DukeMTMC-reID person
``0000`` is a distractor of the gallery; in MSMT17 it is a real person. The evaluation gives
neither any special treatment: a distractor is simply a person no query looks for.

Sessions: times are only comparable within one recording session (MSMT17's 12 (date, slot)
pairs, a camera network's days). A spec whose pattern has a ``session`` group gives every
image a session id; the spatial-temporal model only relates sightings of one session.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import NamedTuple

import numpy as np

from .errors import UserError

# The real split name lists (``streid/names/``), package data read through importlib.resources:
# found wherever the package is installed, whatever the current folder.
NAME_LIST_DIR = resources.files(__package__) / "names"

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

# Frames per time-gap bin of Market-1501 and DukeMTMC-reID; ``pytorch_result2.mat`` records it.
FRAMES_PER_BIN = 100
# The paper's Parzen width, in bins; the default of ``--smooth``.
PAPER_SMOOTH = 50

# The named groups of a prepared file-name pattern (``session`` is optional).
REQUIRED_GROUPS = ("person", "camera", "frame")


class Names(NamedTuple):
    """Metadata parsed from file names, one entry per image.

    Attributes:
        labels: (N,) int64 person ids; -1 for junk.
        cams: (N,) int64 1-based camera ids.
        frames: (N,) int64 frame numbers, or float64 times where a name has decimals.
        sessions: (N,) int64 session ids, or None for a dataset without sessions.
    """

    labels: np.ndarray
    cams: np.ndarray
    frames: np.ndarray
    sessions: np.ndarray | None


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """Everything dataset-specific, in one object.

    Attributes:
        key: short name used in messages and ``dataset.yaml`` ("market", "msmt17", ...).
        title: human-readable name.
        num_cameras: side of the camera-pair histogram. The original uses 8 for Market-1501
            and DukeMTMC-reID (Market-1501 has 6 cameras; its rows 7 and 8 stay empty).
        num_bins: time-gap bins per camera pair.
        interval: time units (frames) per time-gap bin.
        smooth: the default Parzen sigma, in bins, or "auto" (chosen by step 4 from the
            training gaps).
        unit: what the times count ("frames", "seconds"), for messages.
        pattern: regex of a prepared file name, with the named groups ``person``,
            ``camera``, ``frame`` and optionally ``session``.
        pattern_format: the same, as shown in error messages.
        sessions: the session keys the names carry, in id order; empty where the names
            carry the session id itself (a manifest) or no session at all.
        prepare_flag: how prepare.py makes this dataset, for messages.
        prepared_dir: the default ``--data_dir`` / ``--test_dir`` of the dataset's scripts.
        raw_format, raw_regex: the names as the dataset ships them (Market, Duke).
        list_dir: folder under ``streid/names/`` with the real split name lists.
        extra: other ``dataset.yaml`` entries kept for the record (a manifest's camera and
            session labels).
    """

    key: str
    title: str
    num_cameras: int
    num_bins: int
    interval: float
    smooth: float | str = PAPER_SMOOTH
    unit: str = "frames"
    pattern: re.Pattern
    pattern_format: str
    sessions: tuple[str, ...] = ()
    prepare_flag: str = ""
    prepared_dir: str = ""
    raw_format: str = ""
    raw_regex: re.Pattern | None = None
    list_dir: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def has_sessions(self) -> bool:
        return "session" in self.pattern.groupindex

    # -- parsing -------------------------------------------------------------------------
    def _match(self, filename: str) -> re.Match:
        m = self.pattern.match(os.path.basename(filename))
        if m is None:
            raise UserError(
                f"file name {filename!r} does not match the {self.title} pattern "
                f"{self.pattern_format!r}"
            )
        return m

    def _session(self, filename: str, key: str) -> int:
        if not self.sessions:
            return int(key)
        try:
            return self.sessions.index(key)
        except ValueError:
            raise UserError(
                f"file name {filename!r}: session {key!r} is not one of the {self.title} "
                f"sessions {', '.join(self.sessions)}"
            ) from None

    def parse_names(self, filenames) -> Names:
        """Parse prepared file names (what the ImageFolder trees hold).

        Raises:
            UserError: a name does not match :attr:`pattern_format`, or names a session the
                spec does not list.
        """
        matches = [(f, self._match(f)) for f in filenames]
        n = len(matches)
        labels = np.fromiter((_label(m["person"]) for _, m in matches), np.int64, count=n)
        cams = np.fromiter((int(m["camera"]) for _, m in matches), np.int64, count=n)
        times = [m["frame"] for _, m in matches]
        if all(_is_integer(t) for t in times):
            frames = np.fromiter((int(t) for t in times), np.int64, count=n)
        else:
            frames = np.array([float(t) for t in times], dtype=np.float64)
        sessions = None
        if self.has_sessions:
            keys = ((f, m["session"]) for f, m in matches)
            sessions = np.fromiter((self._session(f, k) for f, k in keys), np.int64, count=n)
        return Names(labels, cams, frames, sessions)

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
        """The name ``prepare.py`` gives a raw file: Market is renamed to global frames, the
        others keep their names (checked against their pattern)."""
        if self.raw_regex is None:
            self._match(raw_name)
            return os.path.basename(raw_name)
        m = self.check_raw_name(raw_name)
        if self.key != "market":
            return os.path.basename(raw_name)
        frame = market_global_frame(int(m["camera"]), int(m["seq"]), int(m["frame"]))
        # The box field keeps whatever followed it, ".jpg" or the real ".jpg.jpg".
        return f"{m['person']}_c{m['camera']}_f{frame:07d}_{m['box']}{m['ext']}"

    def name_list(self, split: str) -> list[str]:
        """The real file names of a split as shipped ("train", "query", "gallery"; MSMT17
        also "val"), from ``streid/names/``."""
        if self.key == "msmt17":
            lines = (NAME_LIST_DIR / self.list_dir / f"list_{split}.txt").read_text()
            return [line.split()[0].split("/")[-1] for line in lines.splitlines() if line]
        return (NAME_LIST_DIR / self.list_dir / f"{split}.txt").read_text().split()


def _label(person: str) -> int:
    # As the original: -1 for the junk images, else the number.
    return -1 if person.startswith("-1") else int(person)


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


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
    pattern=re.compile(
        r"^(?P<person>-1|\d{4})_c(?P<camera>\d)_f(?P<frame>\d{7,})_(?P<box>\d{2})"
        r"\.jpg(?:\.jpg)?$"
    ),
    pattern_format="PPPP_cC_fGGGGGGG_BB.jpg",
    prepare_flag="--Market",
    prepared_dir="dataset/market_rename",
    raw_format="PPPP_cCsS_FFFFFF_BB.jpg",
    raw_regex=re.compile(
        r"^(?P<person>-1|\d{4})_c(?P<camera>\d)s(?P<seq>\d)_(?P<frame>\d{6})_(?P<box>\d{2})"
        r"(?P<ext>\.jpg(?:\.jpg)?)$"
    ),
    list_dir="market1501",
)

DUKE = DatasetSpec(
    key="duke",
    title="DukeMTMC-reID",
    num_cameras=8,
    num_bins=3000,
    interval=FRAMES_PER_BIN,
    pattern=re.compile(r"^(?P<person>-1|\d{4})_c(?P<camera>\d)_f(?P<frame>\d{7})\.jpg$"),
    pattern_format="PPPP_cC_fFFFFFFF.jpg",
    prepare_flag="--Duke",
    prepared_dir="dataset/DukeMTMC_prepare",
    raw_format="PPPP_cC_fFFFFFFF.jpg",
    raw_regex=re.compile(r"^(?P<person>-1|\d{4})_c(?P<camera>\d)_f(?P<frame>\d{7})\.jpg$"),
    list_dir="dukemtmc",
)

# MSMT17's 12 recording sessions, in time order: 4 days x morning, noon, afternoon.
MSMT17_SESSIONS = tuple(
    f"{day}{slot}"
    for day in ("0113", "0114", "0302", "0303")
    for slot in ("morning", "noon", "afternoon")
)

MSMT17 = DatasetSpec(
    key="msmt17",
    title="MSMT17",
    num_cameras=15,
    # Chosen on held-out training identities (benchmarks/msmt17_settings.py; the README has
    # the figures): 40 bins of 50 frames cover every gap within a session (frames 0-1985).
    num_bins=40,
    interval=50,
    smooth=5,
    pattern=re.compile(
        r"^(?P<person>\d{4})_(?P<index>\d{3})_(?P<camera>\d{2})_"
        r"(?P<session>\d{4}(?:morning|noon|afternoon))_(?P<frame>\d{4})_\d+(?:_ex)?\.jpg$"
    ),
    pattern_format="PPPP_III_CC_DDDDslot_FFFF_B[_ex].jpg",
    sessions=MSMT17_SESSIONS,
    prepare_flag="--MSMT17",
    prepared_dir="dataset/MSMT17_prepare",
    list_dir="msmt17",
)

SPECS = {spec.key: spec for spec in (MARKET, DUKE, MSMT17)}


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
