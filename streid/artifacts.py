"""The ``model/<name>/`` folder contract: every file name, validated .mat reading, atomic
writing.

Files of a run named NAME (relative to the working directory, as in the original), all named
here and nowhere else (:class:`Run` gives their paths):

=========================  ========  ========================================================
``net_<epoch>.pth``        step 2    state dicts, every 10 epochs and ``net_last.pth``
``opts.json``              step 2    the run's options (:mod:`streid.options`)
``train.jpg``              step 2    training curves
``resume.pth``             step 2    optimizer, schedule and history for ``--resume``
``pytorch_result.mat``     step 3    features + metadata: the interchange file (schema below)
``pytorch_result2.mat``    step 4    ``distribution``: camera-pair time-gap histograms
``CMC_*.mat``              step 5    the CMC curve (:data:`CMC_FILES`)
``all_scores.mat``         step 6.1  ``all_scores``: joint scores of [query; gallery] pairs
``st_distribution.png``    picture   the time-gap distributions (plot_st_distribution.py)
``rank_list.png``          picture   rank lists of a few queries (plot_rank_list.py)
=========================  ========  ========================================================

``pytorch_result.mat`` holds, for ``query`` and ``gallery``: ``<split>_f`` (N x D features),
``<split>_label`` (person ids, -1 junk, 0 distractor), ``<split>_cam`` (1-based camera ids),
``<split>_frames`` (frame numbers); the vectors as 1 x N rows.

Every writer goes through a temporary file in the destination folder and an atomic rename,
so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from .datasets import FRAMES_PER_BIN
from .errors import UserError

MODEL_ROOT = Path("model")

# Deviation from the original: every step defaults to the run name of its steps 2-3; its later
# scripts each had a different default left over from the authors' own runs.
DEFAULT_NAME = "ft_ResNet50"

CHECKPOINT_FILE = "net_{epoch}.pth"
LAST_EPOCH = "last"  # net_last.pth, the end of training
SAVE_EVERY = 10  # net_<epoch>.pth when epoch % 10 == 9, as the original
OPTS_FILE = "opts.json"
CURVES_FILE = "train.jpg"
RESUME_FILE = "resume.pth"
FEATURES_FILE = "pytorch_result.mat"
DISTRIBUTION_FILE = "pytorch_result2.mat"
# Step 5's CMC curve per ranking stream: the original's names (the last two were
# commented-out alternatives there), Duke in the name whatever the dataset.
CMC_FILES = {
    "joint": "CMC_duke_two_stream_add{alpha}.mat",
    "visual": "CMC_duke_vis_stream.mat",
    "st": "CMC_duke_st_stream.mat",
}
ALL_SCORES_FILE = "all_scores.mat"
ST_PICTURE_FILE = "st_distribution.png"
RANK_LIST_FILE = "rank_list.png"

# Which step writes each file, for the "missing file" messages.
MADE_BY = {
    FEATURES_FILE: "step 3 (test_st_market.py / test_st_duke.py, or your own features "
    "in the same format, see the README)",
    DISTRIBUTION_FILE: "step 4 (gen_st_model_market.py / gen_st_model_duke.py)",
    ALL_SCORES_FILE: "step 6.1 (gen_rerank_all_scores_mat.py)",
}


@dataclass(frozen=True)
class Run:
    """The folder ``model/<name>/`` of a run, and the path of each of its files.

    The path properties do not check that a file exists; :meth:`existing` does.
    """

    name: str

    @property
    def path(self) -> Path:
        return MODEL_ROOT / self.name

    def checkpoint(self, epoch: int | str) -> Path:
        """``net_<epoch>.pth``: an epoch number, or ``last``."""
        return self.path / CHECKPOINT_FILE.format(epoch=epoch)

    def checkpoints(self) -> list[str]:
        """The names of the run's existing ``net_*.pth`` files, sorted."""
        return sorted(p.name for p in self.path.glob(CHECKPOINT_FILE.format(epoch="*")))

    @property
    def opts(self) -> Path:
        return self.path / OPTS_FILE

    @property
    def curves(self) -> Path:
        return self.path / CURVES_FILE

    @property
    def resume(self) -> Path:
        return self.path / RESUME_FILE

    @property
    def features(self) -> Path:
        return self.path / FEATURES_FILE

    @property
    def distribution(self) -> Path:
        return self.path / DISTRIBUTION_FILE

    def cmc(self, stream: str, alpha) -> Path:
        """Step 5's CMC file of ``stream`` (the joint one is named after ``--alpha``)."""
        return self.path / CMC_FILES[stream].format(alpha=alpha)

    @property
    def all_scores(self) -> Path:
        return self.path / ALL_SCORES_FILE

    @property
    def st_picture(self) -> Path:
        return self.path / ST_PICTURE_FILE

    @property
    def rank_list(self) -> Path:
        return self.path / RANK_LIST_FILE

    def require(self) -> Run:
        """This run; UserError if its folder does not exist."""
        if not self.path.is_dir():
            raise UserError(
                f"{self.path}/ does not exist: run the earlier steps with --name {self.name} "
                f"first (it is made by step 2, training, or by step 3 for your own features)"
            )
        return self

    def existing(self, filename: str) -> Path:
        """The path of an existing file of the run; UserError naming its step if missing."""
        path = self.require().path / filename
        if not path.is_file():
            raise UserError(
                f"{path} not found: it is made by {MADE_BY.get(filename, 'an earlier step')}"
            )
        return path


# -- atomic writing --------------------------------------------------------------------------
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp"):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def savemat_atomic(path: str | os.PathLike, mdict: dict) -> None:
    """``scipy.io.savemat`` through a temporary file and an atomic rename."""
    with atomic_output(path) as tmp:
        scipy.io.savemat(tmp, mdict)


def loadmat_checked(path: Path, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """Load ``keys`` (and ``optional`` keys, where present) from a .mat file; UserError if it
    cannot be read or lacks one of ``keys``."""
    try:
        data = scipy.io.loadmat(path, variable_names=keys + optional)
    except Exception as err:  # scipy raises several types for a damaged or foreign file
        raise UserError(f"{path} could not be read as a MATLAB .mat file ({err})") from None
    missing = [k for k in keys if k not in data]
    if missing:
        found = sorted(name for name, _, _ in scipy.io.whosmat(path))
        raise UserError(f"{path} has no key {missing[0]!r} (expected {list(keys)}, found {found})")
    return data


# -- pytorch_result.mat: features and metadata -------------------------------------------------
@dataclass
class Split:
    """Features and metadata of one split (query or gallery).

    Attributes:
        features: (N, D) floating array, one row per image.
        labels: (N,) int64 person ids (-1 junk, 0 distractor).
        cams: (N,) int64 camera ids, starting at 1.
        frames: (N,) int64 frame numbers.
    """

    features: np.ndarray
    labels: np.ndarray
    cams: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> Split:
        """The images selected by ``index`` (a slice or an index array)."""
        return Split(self.features[index], self.labels[index], self.cams[index], self.frames[index])

    @staticmethod
    def concatenate(splits) -> Split:
        """One split holding ``splits`` in order (step 6's [query; gallery] set)."""
        fields = ("features", "labels", "cams", "frames")
        return Split(*(np.concatenate([getattr(s, f) for s in splits]) for f in fields))


@dataclass
class FeatureSet:
    query: Split
    gallery: Split


FEATURE_KEYS = tuple(
    f"{split}_{field}"
    for split in ("query", "gallery")
    for field in ("f", "label", "cam", "frames")
)


def _integer_vector(data: dict, key: str, n: int, source: str) -> np.ndarray:
    arr = np.asarray(data[key])
    if arr.size == 0 and n == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) != 1):
        raise UserError(f"{source}: {key} has shape {arr.shape}, expected a vector of {n} values")
    arr = arr.ravel()
    if arr.size != n:
        split = key.split("_")[0]
        raise UserError(f"{source}: {key} has {arr.size} values but {split}_f has {n} rows")
    if not np.issubdtype(arr.dtype, np.number):
        raise UserError(f"{source}: {key} must hold numbers, found dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise UserError(f"{source}: {key} must hold whole numbers")
    return arr.astype(np.int64)


def _split_from(data: dict, split: str, source: str) -> Split:
    feats = np.asarray(data[f"{split}_f"])
    if feats.ndim != 2:
        raise UserError(f"{source}: {split}_f has shape {feats.shape}, expected (N, D)")
    if not np.issubdtype(feats.dtype, np.floating):
        feats = feats.astype(np.float32)
    n = feats.shape[0]
    if n == 0:
        raise UserError(f"{source}: the {split} set is empty ({split}_f has 0 rows)")
    bad = ~np.isfinite(feats).all(axis=1)
    if bad.any():
        raise UserError(f"{source}: {split}_f has NaN or inf values (row {int(np.argmax(bad))})")
    zero = ~feats.any(axis=1) if feats.shape[1] else np.zeros(n, dtype=bool)
    if zero.any():
        raise UserError(
            f"{source}: {split}_f row {int(np.argmax(zero))} is all zeros "
            f"(an all-zero feature cannot be L2-normalised)"
        )
    labels = _integer_vector(data, f"{split}_label", n, source)
    cams = _integer_vector(data, f"{split}_cam", n, source)
    frames = _integer_vector(data, f"{split}_frames", n, source)
    if cams.min() < 1:
        raise UserError(
            f"{source}: {split}_cam holds camera id {cams.min()}; camera ids start at 1"
        )
    return Split(feats, labels, cams, frames)


def load_features(name: str, with_features: bool = True) -> FeatureSet:
    """Read and validate ``model/<name>/pytorch_result.mat``.

    Args:
        with_features: False to read only the labels, cameras and frames (step 6.2 needs no
            features, which for PCB are 12,288 floats per image); ``features`` is then an
            empty (N, 0) array.

    Raises:
        UserError: the file is missing, a key is missing, lengths disagree, features are
            NaN/inf or all-zero, a split is empty, camera ids are below 1.
    """
    path = Run(name).existing(FEATURES_FILE)
    if with_features:
        data = loadmat_checked(path, FEATURE_KEYS)
    else:
        keys = tuple(k for k in FEATURE_KEYS if not k.endswith("_f"))
        data = loadmat_checked(path, keys)
        shapes = {n: shape for n, shape, _ in scipy.io.whosmat(path)}
        for split in ("query", "gallery"):
            if f"{split}_f" not in shapes:
                raise UserError(f"{path} has no key '{split}_f'")
            data[f"{split}_f"] = np.ones((shapes[f"{split}_f"][0], 0), dtype=np.float32)
    fs = FeatureSet(_split_from(data, "query", str(path)), _split_from(data, "gallery", str(path)))
    dq, dg = fs.query.features.shape[1], fs.gallery.features.shape[1]
    if dq != dg:
        raise UserError(f"{path}: query_f has {dq} columns but gallery_f has {dg}")
    return fs


def save_features(path: str | os.PathLike, query: Split, gallery: Split) -> None:
    """Write a ``pytorch_result.mat`` with the original's keys (vectors as 1 x N rows)."""
    mdict = {}
    for split, s in (("query", query), ("gallery", gallery)):
        mdict[f"{split}_f"] = np.asarray(s.features)
        mdict[f"{split}_label"] = np.asarray(s.labels, dtype=np.int64).reshape(1, -1)
        mdict[f"{split}_cam"] = np.asarray(s.cams, dtype=np.int64).reshape(1, -1)
        mdict[f"{split}_frames"] = np.asarray(s.frames, dtype=np.int64).reshape(1, -1)
    savemat_atomic(path, mdict)


# -- pytorch_result2.mat: the spatial-temporal histograms --------------------------------------
def load_distribution(name: str) -> tuple[np.ndarray, float]:
    """Read ``model/<name>/pytorch_result2.mat``.

    Returns:
        (distribution, interval): the (cameras, cameras, bins) histograms and the frames per
        bin (recorded by step 4; files from the original, without it, used 100).
    """
    path = Run(name).existing(DISTRIBUTION_FILE)
    data = loadmat_checked(path, ("distribution",), optional=("interval",))
    dist = np.asarray(data["distribution"], dtype=np.float64)
    if dist.ndim != 3 or dist.shape[0] != dist.shape[1] or 0 in dist.shape:
        raise UserError(
            f"{path}: distribution has shape {dist.shape}, expected (cameras, cameras, bins)"
        )
    if not np.all(np.isfinite(dist)) or dist.min() < 0:
        raise UserError(f"{path}: distribution must hold finite, non-negative values")
    interval = float(np.ravel(data.get("interval", FRAMES_PER_BIN))[0])
    if not interval > 0:
        raise UserError(f"{path}: interval must be a positive number of frames, got {interval}")
    return dist, interval


def save_distribution(path: str | os.PathLike, distribution: np.ndarray, interval: float):
    """Write ``pytorch_result2.mat``: the original's ``distribution`` key, plus ``interval``."""
    # Deviation from the original: the frames per bin are recorded beside the histograms, so
    # step 5 need not assume them; files without the key are read with the original's 100.
    savemat_atomic(path, {"distribution": distribution, "interval": float(interval)})
