"""A 2-D matrix in a MAT v5 file, written and read one block of columns at a time.

Step 6.1's ``all_scores.mat`` holds an N x N matrix (2.1 GB at Market-1501 scale): it is
streamed to disk as it is computed and streamed back by step 6.2, so neither step holds it
whole. The file is a standard, uncompressed MAT v5 file (MathWorks, "MAT-File Format",
level 5) that MATLAB and ``scipy.io.loadmat`` read. Its layout, for one real 2-D matrix:

=========  ============================================================================
offset     content
=========  ============================================================================
0          header: 116 bytes of text, 8 bytes subsystem offset, version, ``IM``
128        miMATRIX tag: data type, number of bytes that follow
136        array flags: tag (miUINT32, 8), flags word (class in the low byte), 0
152        dimensions: tag (miINT32, 8), rows, columns
168        name: tag (miINT8, length) and the name padded to 8 bytes, or, for a name of
           at most 4 bytes, one 8-byte "small element" (length << 16 | type, then the name)
...        real part: tag (miSINGLE or miDOUBLE, bytes), column-major data padded to 8
=========  ============================================================================

Both the writer and the reader use the structures and offsets defined here.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .artifacts import loadmat_checked
from .errors import UserError
from .files import atomic_output, check_free_space

# Data types and array classes of the format.
MI_INT8, MI_INT32, MI_UINT32, MI_SINGLE, MI_DOUBLE, MI_MATRIX = 1, 5, 6, 7, 9, 14
MX_DOUBLE_CLASS, MX_SINGLE_CLASS = 6, 7
COMPLEX_FLAG = 0x800  # bit of the flags word
CLASS_OF = {np.dtype(np.float32): (MX_SINGLE_CLASS, MI_SINGLE),
            np.dtype(np.float64): (MX_DOUBLE_CLASS, MI_DOUBLE)}  # fmt: skip
DTYPE_OF = {MI_SINGLE: np.dtype("<f4"), MI_DOUBLE: np.dtype("<f8")}

# The structures, little-endian, in file order.
HEADER = struct.Struct("<116s8sH2s")  # text, subsystem data offset, version, endian indicator
TAG = struct.Struct("<II")  # data type, number of bytes
ARRAY_FLAGS = struct.Struct("<IIII")  # tag (MI_UINT32, 8), flags word, reserved
DIMENSIONS = struct.Struct("<IIii")  # tag (MI_INT32, 8), rows, columns
VERSION, LITTLE_ENDIAN = 0x0100, b"IM"

MATRIX_AT = HEADER.size  # 128
FLAGS_AT = MATRIX_AT + TAG.size  # 136
DIMENSIONS_AT = FLAGS_AT + ARRAY_FLAGS.size  # 152
NAME_AT = DIMENSIONS_AT + DIMENSIONS.size  # 168
SMALL_ELEMENT_MAX = 4  # bytes of data that fit in a small element's tag


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


def _name_element(name: bytes) -> bytes:
    return TAG.pack(MI_INT8, len(name)) + name.ljust(_pad8(len(name)), b"\x00")


def write_matrix_by_columns(
    path, key: str, shape: tuple[int, int], dtype, blocks, alternative: str = ""
) -> None:
    """Stream a 2-D matrix into an uncompressed MAT v5 file, one block of columns at a time.

    MATLAB stores matrices column-major, so column block ``[j0, j1)`` is the C-ordered array
    ``M[:, j0:j1].T``. The whole matrix never has to be in memory; the file is written
    atomically.

    Args:
        key: the variable name.
        shape: (rows, cols) of the matrix.
        dtype: float32 or float64.
        blocks: iterable of (b, rows) arrays, the transposed column blocks, in order.
        alternative: what to do instead, appended to the message of a matrix too large for
            the format or the free space.

    Raises:
        UserError: the matrix exceeds the format's 4 GB per-variable limit or the free space
            of the destination, or a write fails.
    """
    dtype = np.dtype(dtype)
    mx_class, mi_type = CLASS_OF[dtype]
    rows, cols = shape
    nbytes = rows * cols * dtype.itemsize
    name = _name_element(key.encode("ascii"))
    body = ARRAY_FLAGS.size + DIMENSIONS.size + len(name) + TAG.size + _pad8(nbytes)
    if body >= 2**32:
        raise UserError(
            f"{key} of shape {shape} ({nbytes / 1e9:.1f} GB) exceeds the 4 GB variable limit "
            f"of the MAT v5 format{alternative}"
        )
    check_free_space(path, HEADER.size + TAG.size + body, alternative)
    text = f"MATLAB 5.0 MAT-file, written by st-reid, Created on: {time.asctime()}".encode()
    head = HEADER.pack(text.ljust(116, b" "), b"\x00" * 8, VERSION, LITTLE_ENDIAN)
    head += TAG.pack(MI_MATRIX, body)
    head += ARRAY_FLAGS.pack(MI_UINT32, 8, mx_class, 0)
    head += DIMENSIONS.pack(MI_INT32, 8, rows, cols)
    head += name + TAG.pack(mi_type, nbytes)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(head)
        written = 0
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=dtype.newbyteorder("<"))
            if block.ndim != 2 or block.shape[1] != rows:
                raise ValueError(f"column block of shape {block.shape}, expected (b, {rows})")
            f.write(memoryview(block).cast("B"))  # a full disk raises ENOSPC (tofile: no errno)
            written += block.shape[0]
        if written != cols:
            raise ValueError(f"wrote {written} columns, expected {cols}")
        f.write(b"\x00" * (_pad8(nbytes) - nbytes))


@runtime_checkable
class ColumnSource(Protocol):
    """A 2-D matrix that hands out blocks of columns: what re-ranking reads.

    Attributes:
        shape: (rows, columns).
        dtype: the matrix's floating type.
    """

    shape: tuple[int, int]
    dtype: np.dtype

    def columns_t(self, j0: int, j1: int) -> np.ndarray:
        """``M[:, j0:j1].T`` as a C-contiguous (j1 - j0, rows) array."""
        ...

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``M[rows, cols]``: single entries, for index arrays of one length."""
        ...


class ArrayColumns:
    """A :class:`ColumnSource` over an in-memory matrix."""

    def __init__(self, array: np.ndarray):
        self.array = np.asarray(array)
        self.shape, self.dtype = self.array.shape, self.array.dtype

    def columns_t(self, j0: int, j1: int) -> np.ndarray:
        return np.ascontiguousarray(self.array[:, j0:j1].T)

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.array[rows, cols]


class MatColumns:
    """A :class:`ColumnSource` over a 2-D matrix stored in a .mat file.

    For an uncompressed MAT v5 file holding the matrix as its first variable (what
    :func:`write_matrix_by_columns` and ``scipy.io.savemat`` write), blocks are read straight
    from disk, so memory stays bounded by the block size. Any other .mat layout (compressed,
    other variables first) falls back to loading the whole matrix with scipy.

    Attributes:
        path, key: the file and the variable.
        shape, dtype: of the stored matrix.
        streamed: whether blocks are read from disk (False: the matrix was loaded whole).
    """

    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key
        self._array = None
        # Opened once: a step that replaces the file meanwhile (an atomic rename) leaves this
        # reader on the file it started with, never on a mix of the two.
        try:
            self._file = open(self.path, "rb")  # held for the reader's life
        except OSError as err:
            raise UserError(f"cannot read {self.path}: {err.strerror or err}") from None
        self._offset = self._locate()
        self.streamed = self._offset is not None
        if not self.streamed:
            self._file.seek(0)
            arr = loadmat_checked(self._file, (key,), source=self.path)[key]
            self.close()
            if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
                raise UserError(f"{path}: {key} must be a 2-D floating matrix, found {arr.shape}")
            self._array = np.asfortranarray(arr)
            self.shape, self.dtype = arr.shape, arr.dtype

    def close(self) -> None:
        """Close the file (also when the reader is garbage-collected)."""
        self._file.close()

    def __del__(self):
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()

    def _locate(self) -> int | None:
        """Offset of the data if the file has the layout above, else None."""
        f = self._file
        head = f.read(NAME_AT + TAG.size)
        if len(head) < NAME_AT + TAG.size:
            return None
        *_, endian = HEADER.unpack_from(head, 0)
        matrix_type, _ = TAG.unpack_from(head, MATRIX_AT)
        flags_type, _, flags, _ = ARRAY_FLAGS.unpack_from(head, FLAGS_AT)
        dims_type, dims_bytes, rows, cols = DIMENSIONS.unpack_from(head, DIMENSIONS_AT)
        if endian != LITTLE_ENDIAN or matrix_type != MI_MATRIX or flags_type != MI_UINT32:
            return None
        if flags & 0xFF not in (MX_DOUBLE_CLASS, MX_SINGLE_CLASS) or flags & COMPLEX_FLAG:
            return None
        if dims_type != MI_INT32 or dims_bytes != 8:  # 2-D
            return None
        name_type, name_bytes = TAG.unpack_from(head, NAME_AT)
        if name_type >> 16:  # a small element: the name is packed into its tag
            name_len = name_type >> 16
            name = head[NAME_AT + SMALL_ELEMENT_MAX : NAME_AT + SMALL_ELEMENT_MAX + name_len]
            data_at = NAME_AT + TAG.size
        else:
            f.seek(NAME_AT + TAG.size)
            name = f.read(name_bytes)
            data_at = NAME_AT + TAG.size + _pad8(name_bytes)
        if name.decode("ascii", "replace") != self.key:
            return None
        f.seek(data_at)
        data_tag = f.read(TAG.size)
        if len(data_tag) < TAG.size:
            return None
        data_type, data_bytes = TAG.unpack(data_tag)
        dtype = DTYPE_OF.get(data_type)
        if dtype is None or data_bytes != rows * cols * dtype.itemsize:
            return None
        self.shape, self.dtype = (rows, cols), dtype
        return data_at + TAG.size

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``M[rows, cols]``, read one by one from the file (column-major).

        Single reads rather than a memory map: mapping pages of a file of several GB for a
        few thousand entries would count whole neighbourhoods of them as resident memory.
        """
        if self._array is not None:
            return self._array[rows, cols]
        size = self.dtype.itemsize
        offsets = self._offset + (np.asarray(cols) * self.shape[0] + np.asarray(rows)) * size
        fd = self._file.fileno()
        data = b"".join(os.pread(fd, size, int(o)) for o in offsets)
        if len(data) != len(offsets) * size:
            raise UserError(f"{self.path} is truncated: {self.key} has fewer values than its shape")
        return np.frombuffer(data, dtype=self.dtype).copy()

    def columns_t(self, j0: int, j1: int) -> np.ndarray:
        """``M[:, j0:j1].T`` as a C-contiguous (j1 - j0, rows) array."""
        if self._array is not None:
            return np.ascontiguousarray(self._array[:, j0:j1].T)
        rows = self.shape[0]
        count = (j1 - j0) * rows
        block = np.empty(count, dtype=self.dtype)
        self._file.seek(self._offset + j0 * rows * self.dtype.itemsize)
        if self._file.readinto(memoryview(block).cast("B")) != block.nbytes:
            block = block[:0]
        if block.size != count:
            raise UserError(f"{self.path} is truncated: {self.key} has fewer values than its shape")
        return block.reshape(j1 - j0, rows)
