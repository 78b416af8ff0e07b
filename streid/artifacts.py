"""The ``model/<name>/`` folder contract: paths, validated .mat reading and atomic writing.

Files of a run named NAME (relative to the working directory, as in the original):

=========================  ======  ==========================================================
``net_<epoch>.pth``        step 2  state dicts (``net_last.pth`` at the end); ``opts.json``
``pytorch_result.mat``     step 3  features + metadata: the interchange file (schema below)
``pytorch_result2.mat``    step 4  ``distribution``: camera-pair time-gap histograms
``CMC_*.mat``              step 5  the CMC curve
``all_scores.mat``         step 6  ``all_scores``: joint scores of [query; gallery] pairs
=========================  ======  ==========================================================

``pytorch_result.mat`` holds, for ``query`` and ``gallery``: ``<split>_f`` (N x D features),
``<split>_label`` (person ids, -1 junk, 0 distractor), ``<split>_cam`` (1-based camera ids),
``<split>_frames`` (frame numbers); the vectors as 1 x N rows.

Every writer goes through a temporary file in the destination folder and an atomic rename,
so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from .cli import UserError
from .datasets import FRAMES_PER_BIN

MODEL_ROOT = Path("model")

FEATURES_FILE = "pytorch_result.mat"
DISTRIBUTION_FILE = "pytorch_result2.mat"
ALL_SCORES_FILE = "all_scores.mat"

# Which step writes each file, for the "missing file" messages.
MADE_BY = {
    FEATURES_FILE: "step 3 (test_st_market.py / test_st_duke.py, or your own features "
    "in the same format, see the README)",
    DISTRIBUTION_FILE: "step 4 (gen_st_model_market.py / gen_st_model_duke.py)",
    ALL_SCORES_FILE: "step 6.1 (gen_rerank_all_scores_mat.py)",
}


def run_dir(name: str) -> Path:
    """``model/<name>/``; UserError if it does not exist."""
    path = MODEL_ROOT / name
    if not path.is_dir():
        raise UserError(
            f"{path}/ does not exist: run the earlier steps with --name {name} first "
            f"(it is made by step 2, training, or by step 3 for your own features)"
        )
    return path


def artifact_path(name: str, filename: str) -> Path:
    """Path of an existing artifact of run ``name``; UserError naming its step if missing."""
    path = run_dir(name) / filename
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
    path = artifact_path(name, FEATURES_FILE)
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
    path = artifact_path(name, DISTRIBUTION_FILE)
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


# -- all_scores.mat: a large matrix, written and read in column blocks -------------------------
# MAT-file level 5 constants (MathWorks, "MAT-File Format", level 5).
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_SINGLE, _MI_DOUBLE, _MI_MATRIX = 1, 5, 6, 7, 9, 14
_MX_CLASS = {np.dtype(np.float32): (7, _MI_SINGLE), np.dtype(np.float64): (6, _MI_DOUBLE)}
_MI_DTYPE = {_MI_SINGLE: np.dtype("<f4"), _MI_DOUBLE: np.dtype("<f8")}
_MAT_HEADER = 128


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


def write_matrix_by_columns(path, key: str, shape: tuple[int, int], dtype, blocks) -> None:
    """Stream a 2-D matrix into an uncompressed MAT v5 file, one block of columns at a time.

    MATLAB stores matrices column-major, so column block ``[j0, j1)`` is the C-ordered array
    ``M[:, j0:j1].T``. The whole matrix never has to be in memory.

    Args:
        key: the variable name.
        shape: (rows, cols) of the matrix.
        dtype: float32 or float64.
        blocks: iterable of (b, rows) arrays, the transposed column blocks, in order.

    Raises:
        UserError: the matrix exceeds the format's 4 GB per-variable limit.
    """
    dtype = np.dtype(dtype)
    mx_class, mi_type = _MX_CLASS[dtype]
    rows, cols = shape
    nbytes = rows * cols * dtype.itemsize
    name = key.encode("ascii")
    body = 16 + 16 + 8 + _pad8(len(name)) + 8 + _pad8(nbytes)
    if body >= 2**32:
        raise UserError(
            f"{key} of shape {shape} ({nbytes / 1e9:.1f} GB) exceeds the 4 GB variable limit "
            f"of the MAT v5 format"
        )
    text = f"MATLAB 5.0 MAT-file, written by st-reid, Created on: {time.asctime()}".encode()
    header = text.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"
    tags = struct.pack("<II", _MI_MATRIX, body)
    tags += struct.pack("<IIII", _MI_UINT32, 8, mx_class, 0)
    tags += struct.pack("<IIii", _MI_INT32, 8, rows, cols)
    tags += struct.pack("<II", _MI_INT8, len(name)) + name.ljust(_pad8(len(name)), b"\x00")
    tags += struct.pack("<II", mi_type, nbytes)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(header + tags)
        written = 0
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=dtype.newbyteorder("<"))
            if block.ndim != 2 or block.shape[1] != rows:
                raise ValueError(f"column block of shape {block.shape}, expected (b, {rows})")
            block.tofile(f)
            written += block.shape[0]
        if written != cols:
            raise ValueError(f"wrote {written} columns, expected {cols}")
        f.write(b"\x00" * (_pad8(nbytes) - nbytes))


class MatColumns:
    """Read access, by blocks of columns, to a 2-D matrix stored in a .mat file.

    For an uncompressed MAT v5 file holding the matrix as its first variable (what
    :func:`write_matrix_by_columns` and ``scipy.io.savemat`` write), blocks are read straight
    from disk, so memory stays bounded by the block size. Any other .mat layout (compressed,
    other variables first) falls back to loading the whole matrix with scipy.

    Attributes:
        shape, dtype: of the stored matrix.
    """

    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key
        self._array = None
        self._offset = self._locate()
        if self._offset is None:
            arr = loadmat_checked(self.path, (key,))[key]
            if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
                raise UserError(f"{path}: {key} must be a 2-D floating matrix, found {arr.shape}")
            self._array = np.asfortranarray(arr)
            self.shape, self.dtype = arr.shape, arr.dtype

    def _locate(self) -> int | None:
        """Offset of the data if the file has the simple streamable layout, else None."""
        with open(self.path, "rb") as f:
            head = f.read(_MAT_HEADER + 8 + 16 + 16 + 8)
            if len(head) < 176 or head[126:128] != b"IM":
                return None
            mi, _ = struct.unpack_from("<II", head, 128)
            flag_type, _, flags, _ = struct.unpack_from("<IIII", head, 136)
            dim_type, dim_bytes = struct.unpack_from("<II", head, 152)
            if mi != _MI_MATRIX or flag_type != _MI_UINT32 or flags & 0xFF not in (6, 7):
                return None
            if dim_type != _MI_INT32 or dim_bytes != 8 or flags & 0x800:  # 2-D, real
                return None
            rows, cols = struct.unpack_from("<ii", head, 160)
            pos = 168
            f.seek(pos)
            ntag = f.read(8)
            ntype, nlen = struct.unpack("<II", ntag)
            if ntype >> 16:  # small data element: name packed in the tag
                name_len, pos = ntype >> 16, pos + 8
                name = ntag[4 : 4 + name_len]
            else:
                name = f.read(nlen)
                pos += 8 + _pad8(nlen)
            if name.decode("ascii", "replace") != self.key:
                return None
            f.seek(pos)
            dtype_tag = f.read(8)
            if len(dtype_tag) < 8:
                return None
            data_type, data_bytes = struct.unpack("<II", dtype_tag)
            dtype = _MI_DTYPE.get(data_type)
            if dtype is None or data_bytes != rows * cols * dtype.itemsize:
                return None
        self.shape, self.dtype = (rows, cols), dtype
        return pos + 8

    def columns_t(self, j0: int, j1: int) -> np.ndarray:
        """``M[:, j0:j1].T`` as a C-contiguous (j1 - j0, rows) array."""
        if self._array is not None:
            return np.ascontiguousarray(self._array[:, j0:j1].T)
        rows = self.shape[0]
        count = (j1 - j0) * rows
        with open(self.path, "rb") as f:
            f.seek(self._offset + j0 * rows * self.dtype.itemsize)
            block = np.fromfile(f, dtype=self.dtype, count=count)
        if block.size != count:
            raise UserError(f"{self.path} is truncated: {self.key} has fewer values than its shape")
        return block.reshape(j1 - j0, rows)
