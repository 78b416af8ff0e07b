"""The interchange files of a run, read and checked: ``pytorch_result.mat`` (step 3, or a
user's own features) and ``pytorch_result2.mat`` (step 4).

``pytorch_result.mat`` holds, for ``query`` and ``gallery``:

- ``<split>_f``: N x D features;
- ``<split>_label``: person ids (-1 junk);
- ``<split>_cam``: camera ids, starting at 1;
- ``<split>_frames``: times (the original's frame numbers; whole numbers are kept as
  integers, other times as floats);
- optionally ``<split>_session``: recording session ids, for datasets with sessions
  (absent: every image is of one session).

The vectors are stored as 1 x N rows. ``pytorch_result_train.mat`` (step 3 ``--train``, or a
user's own training features) holds the same for the ``train`` split: ``train_f``,
``train_label`` (-1 where the identity is unknown), ``train_cam``, ``train_frames`` and
optionally ``train_session``; step 4 ``--unlabeled`` learns from it without the labels.
``pytorch_result2.mat`` holds ``distribution``, the (cameras, cameras, bins) histograms, and
the ``interval`` and default ``smooth`` of the dataset they were learnt on (and, learnt
without labels, the ``pseudo_labels`` of the training images).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.io

from .artifacts import loadmat_checked, savemat_atomic
from .datasets import FRAMES_PER_BIN, PAPER_SMOOTH
from .errors import UserError, note
from .st_model import SpatialTemporalModel

SPLITS = ("query", "gallery")
FIELDS = ("f", "label", "cam", "frames")  # the original's keys: <split>_<field>
FEATURE_KEYS = tuple(f"{split}_{field}" for split in SPLITS for field in FIELDS)
SESSION_KEYS = tuple(f"{split}_session" for split in SPLITS)
TRAIN = "train"  # pytorch_result_train.mat: train_f, train_label, train_cam, train_frames
TRAIN_KEYS = tuple(f"{TRAIN}_{field}" for field in FIELDS)
AUTO = "auto"  # --smooth auto


@dataclass
class Split:
    """Features and metadata of one split (query or gallery).

    Attributes:
        features: (N, D) floating array, one row per image.
        labels: (N,) int64 person ids (-1 junk).
        cams: (N,) int64 camera ids, starting at 1.
        frames: (N,) int64 frame numbers (or float64 times).
        sessions: (N,) int64 session ids, or None: all of one session.
    """

    features: np.ndarray
    labels: np.ndarray
    cams: np.ndarray
    frames: np.ndarray
    sessions: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> Split:
        """The images selected by ``index`` (a slice or an index array)."""
        sessions = None if self.sessions is None else self.sessions[index]
        return Split(
            self.features[index],
            self.labels[index],
            self.cams[index],
            self.frames[index],
            sessions,
        )

    @staticmethod
    def concatenate(splits) -> Split:
        """One split holding ``splits`` in order (step 6's [query; gallery] set)."""
        fields = ("features", "labels", "cams", "frames")
        parts = [np.concatenate([getattr(s, f) for s in splits]) for f in fields]
        sessions = [s.sessions for s in splits]
        if any(v is None for v in sessions):
            return Split(*parts)
        return Split(*parts, np.concatenate(sessions))


@dataclass
class FeatureSet:
    query: Split
    gallery: Split


MAX_EXACT = 2.0**53  # the largest id or time a .mat file may hold


def _vector(data: dict, key: str, n: int, source: str, whole: bool = True) -> np.ndarray:
    """A 1 x N (or N x 1, or N) numeric vector; int64 if its values are whole numbers."""
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
    if not np.issubdtype(arr.dtype, np.integer) and not np.all(np.isfinite(arr)):
        raise UserError(f"{source}: {key} holds NaN or inf values")
    # Ids and times beyond 2**53 are not exact in float64, and their differences (the time
    # gaps) would overflow int64 near 2**63.
    if arr.size and np.abs(arr.astype(np.float64)).max() > MAX_EXACT:
        worst = arr[np.argmax(np.abs(arr.astype(np.float64)))]
        raise UserError(f"{source}: {key} holds {worst:g}, beyond the ±2^53 (9.0e15) that ids "
                        f"and times may reach")  # fmt: skip
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    if np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    if whole:
        raise UserError(f"{source}: {key} must hold whole numbers")
    return arr.astype(np.float64)


def _features(data: dict, split: str, source: str) -> np.ndarray:
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
    return feats


def _split_from(data: dict, split: str, source: str) -> Split:
    feats = _features(data, split, source)
    n = feats.shape[0]
    labels = _vector(data, f"{split}_label", n, source)
    cams = _vector(data, f"{split}_cam", n, source)
    frames = _vector(data, f"{split}_frames", n, source, whole=False)
    sessions = None
    if f"{split}_session" in data:
        sessions = _vector(data, f"{split}_session", n, source)
    if cams.min() < 1:
        raise UserError(
            f"{source}: {split}_cam holds camera id {cams.min()}; camera ids start at 1"
        )
    return Split(feats, labels, cams, frames, sessions)


def load_features(path: str | os.PathLike, with_features: bool = True) -> FeatureSet:
    """Read and validate a ``pytorch_result.mat`` (step 3's; the scripts find a run's with
    ``Run(name).existing(FEATURES_FILE)``).

    Args:
        with_features: False to read only the labels, cameras, times and sessions (step 6.2
            needs no features, which for PCB are 12,288 floats per image); ``features`` is
            then an empty (N, 0) array.

    Raises:
        UserError: the file is missing, a key is missing, lengths disagree, features are
            NaN/inf or all-zero, a split is empty, camera ids are below 1, one split has
            sessions and the other not.
    """
    if with_features:
        data = loadmat_checked(path, FEATURE_KEYS, optional=SESSION_KEYS)
    else:
        keys = tuple(k for k in FEATURE_KEYS if not k.endswith("_f"))
        data = loadmat_checked(path, keys, optional=SESSION_KEYS)
        shapes = {n: shape for n, shape, _ in scipy.io.whosmat(path)}
        for split in SPLITS:
            if f"{split}_f" not in shapes:
                raise UserError(f"{path} has no key '{split}_f'")
            data[f"{split}_f"] = np.ones((shapes[f"{split}_f"][0], 0), dtype=np.float32)
    present = [k for k in SESSION_KEYS if k in data]
    if len(present) == 1:
        other = SESSION_KEYS[1 - SESSION_KEYS.index(present[0])]
        raise UserError(f"{path} has {present[0]} but no {other}: give both or neither")
    fs = FeatureSet(*(_split_from(data, split, str(path)) for split in SPLITS))
    dq, dg = fs.query.features.shape[1], fs.gallery.features.shape[1]
    if dq != dg:
        raise UserError(f"{path}: query_f has {dq} columns but gallery_f has {dg}")
    return fs


def _split_dict(split: str, s: Split) -> dict:
    """The keys ``<split>_f``, ``_label``, ``_cam``, ``_frames`` (and ``_session`` where the
    split has them) of ``s``, vectors as 1 x N rows."""
    mdict = {
        f"{split}_f": np.asarray(s.features),
        f"{split}_label": np.asarray(s.labels, dtype=np.int64).reshape(1, -1),
        f"{split}_cam": np.asarray(s.cams, dtype=np.int64).reshape(1, -1),
    }
    frames = np.asarray(s.frames)
    frames = frames.astype(np.int64 if np.issubdtype(frames.dtype, np.integer) else float)
    mdict[f"{split}_frames"] = frames.reshape(1, -1)
    if s.sessions is not None:
        mdict[f"{split}_session"] = np.asarray(s.sessions, dtype=np.int64).reshape(1, -1)
    return mdict


def save_features(path: str | os.PathLike, query: Split, gallery: Split) -> None:
    """Write a ``pytorch_result.mat`` with the original's keys (vectors as 1 x N rows), and
    the session ids where the splits have them."""
    savemat_atomic(path, {**_split_dict("query", query), **_split_dict("gallery", gallery)})


def save_train_features(path: str | os.PathLike, train: Split) -> None:
    """Write a ``pytorch_result_train.mat``: the keys of :func:`save_features` for the
    ``train`` split (labels as the folders give them, -1 where unknown)."""
    savemat_atomic(path, _split_dict(TRAIN, train))


def load_train_features(path: str | os.PathLike) -> Split:
    """Read and validate a ``pytorch_result_train.mat`` (step 3 ``--train``).

    Raises:
        UserError: a key is missing, lengths disagree, features are NaN/inf or all-zero, the
            split is empty, camera ids are below 1.
    """
    data = loadmat_checked(path, TRAIN_KEYS, optional=(f"{TRAIN}_session",))
    return _split_from(data, TRAIN, str(path))


# -- pytorch_result2.mat: the spatial-temporal histograms --------------------------------------
class Distribution(NamedTuple):
    """Step 4's output.

    Attributes:
        histograms: (cameras, cameras, bins) float64.
        interval: time units per bin (files from the original, without it, used 100).
        smooth: the dataset's default Parzen sigma in bins (files without it: 50); an int
            when whole, so that step 5 prints it as the original did.
        smooth_auto: the sigma chosen from the training gaps (:mod:`streid.bandwidth`),
            or None (files written before it existed).
    """

    histograms: np.ndarray
    interval: float
    smooth: float
    smooth_auto: float | None = None


def load_distribution(path: str | os.PathLike) -> Distribution:
    """Read and check a ``pytorch_result2.mat`` (step 4's; the scripts find a run's with
    ``Run(name).existing(DISTRIBUTION_FILE)``)."""
    data = loadmat_checked(path, ("distribution",), optional=("interval", "smooth", "smooth_auto"))
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
    smooth, auto = (
        _bins(path, key, data.get(key, default))
        for key, default in (("smooth", PAPER_SMOOTH), ("smooth_auto", None))
    )
    return Distribution(dist, interval, smooth, auto)


def _bins(path, key: str, value):
    """A recorded sigma: a positive number of bins, an int when whole; None stays None."""
    if value is None:
        return None
    value = float(np.ravel(value)[0])
    if not value > 0:
        raise UserError(f"{path}: {key} must be a positive number of bins, got {value}")
    return int(value) if value.is_integer() else value


def save_distribution(
    path, distribution: np.ndarray, interval, smooth, smooth_auto=None, pseudo_labels=None
):
    """Write ``pytorch_result2.mat``: the original's ``distribution`` key, plus ``interval``,
    ``smooth`` and, where chosen, ``smooth_auto``; learnt without labels, the
    ``pseudo_labels`` of the training images (1 x N, -1 for an image left alone), for
    inspection."""
    # Deviation from the original: the time units per bin, the dataset's Parzen width and the
    # width chosen from the training gaps are recorded beside the histograms, so steps 5-6
    # need not assume them; files without the keys are read with the original's 100 frames
    # and 50 bins.
    mdict = {"distribution": distribution, "interval": float(interval), "smooth": float(smooth)}
    if smooth_auto is not None:
        mdict["smooth_auto"] = float(smooth_auto)
    if pseudo_labels is not None:
        mdict["pseudo_labels"] = np.asarray(pseudo_labels, dtype=np.int64).reshape(1, -1)
    savemat_atomic(path, mdict)


def load_st_model(path: str | os.PathLike, smooth=None) -> tuple[SpatialTemporalModel, float]:
    """The smoothed spatial-temporal model of a ``pytorch_result2.mat``.

    Args:
        smooth: the Parzen sigma in bins (``--smooth``); None for the dataset's, as step 4
            recorded it; ``"auto"`` for the one step 4 chose from the training gaps.

    Returns:
        (model, the sigma used).
    """
    dist = load_distribution(path)
    sigma = resolve_smooth(dist, smooth, path)
    return SpatialTemporalModel.from_histograms(dist.histograms, sigma, dist.interval), sigma


def resolve_smooth(dist: Distribution, smooth, path: str | os.PathLike):
    """The sigma ``--smooth`` asks for: a number, the dataset's (None) or step 4's choice
    (``"auto"``, announced with a note); ``path`` is ``dist``'s file, for the message."""
    if smooth is None:
        return dist.smooth
    if smooth != AUTO:
        return smooth
    if dist.smooth_auto is None:
        raise UserError(
            f"--smooth auto: {path} has no sigma chosen from the training "
            f"gaps: step 4 could not choose one (it needs two training identities or more "
            f"with a time gap between two cameras), or wrote the file before it recorded the "
            f"choice (then run step 4 again); give --smooth a number of bins instead, e.g. "
            f"the dataset's {dist.smooth}"
        )
    note(f"--smooth auto: sigma {dist.smooth_auto} bins, chosen by step 4 from the training gaps")
    return dist.smooth_auto
