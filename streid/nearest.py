"""Step 6's pass 1 over the joint scores S: for every row of the distance
``O[i, j] = (2 - 2 S[j, i]) / max_r (2 - 2 S[r, i])``, the k1 + 1 nearest in the original's
order (its ``np.argpartition`` with ``kth = range(1, k1 + 1)``), and what V will need of O.

The original forms O whole and partitions every row. Here each block of columns of S is
read once: a row keeps its maximum of ``2 - 2 S`` and its ``CACHE`` smallest entries of O,
selected in one compiled pass (:func:`streid.kernels.nearest_rows`) that reads only the
tiles of the row whose maximum can reach them; the k1 + 1 nearest follow from those, and a
row where a tie makes their order depend on ``np.argpartition``'s own is given to the
original's call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .kernels import nearest_rows
from .matfile import ColumnSource
from .parallel import for_ranges

STRIPES = 64  # scores per tile of the selection (a tile is read only if its maximum is high)


def distance_rows(block_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows j0..j1 of O from ``block_t`` = S[:, j0:j1].T, and each row's maximum of
    ``2 - 2 S``.

    The original's ``1.0 * (2.0 - 2 S) / max`` in one array: ``-2 S + 2.0`` is ``2.0 - 2 S``
    to the bit (IEEE defines ``a - b`` as ``a + (-b)``, and doubling is exact), and
    ``1.0 *`` changes no value.
    """
    dist = np.multiply(block_t, -2)
    dist += 2.0
    row_max = dist.max(axis=1)
    dist /= row_max[:, None]
    return dist, row_max


@dataclass
class Nearest:
    """What pass 1 keeps of O.

    Attributes:
        initial_rank: (N, k1 + 1) the nearest of each row, in the original's order.
        row_max: (N,) each row's maximum of ``2 - 2 S``, its divisor.
        cached: (N, M) indices of each row's M smallest entries (in no order), and
        values: (N, M) those entries of O.
    """

    initial_rank: np.ndarray
    row_max: np.ndarray
    cached: np.ndarray
    values: np.ndarray


def _nearest_block(block_t: np.ndarray, j0: int, k1: int, row_max, initial, cached, values):
    """Pass 1 on rows j0.. of O, from ``block_t`` = S[:, j0:j1].T: writes each row's maximum
    of ``2 - 2 S`` (``row_max``), its k1 + 1 nearest in the original's order (``initial``)
    and its M smallest entries (``cached`` indices, ``values``), M = ``cached.shape[1]``.

    ``np.argpartition(rows, range(1, k1 + 1))[:, :k1 + 1]`` puts the k1 + 1 smallest first,
    in ascending order; where they are distinct, and distinct from the next one, that is the
    only possible answer, found here by :func:`streid.kernels.nearest_rows` in one pass over
    the scores. A row with a tie among them is given to the original's call, which decides
    the tie as it always did.
    """
    n, num = block_t.shape
    if cached.shape[1] >= num:  # too few columns to look past the k1 + 1 nearest:
        _check_finite(np.isfinite(block_t).all(axis=1), j0)  # the original's call
        values[:], row_max[:] = distance_rows(block_t)
        initial[:] = np.argpartition(values, range(1, k1 + 1), axis=1)[:, : k1 + 1]
        cached[:] = np.arange(num)
        return
    tied, finite = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    out = (row_max, initial, cached, values, tied, finite)
    two = block_t.dtype.type(2)

    def select(r0: int, r1: int) -> None:
        rows = block_t[r0:r1]
        nearest_rows(rows, rows.min(axis=1), STRIPES, two, k1, *(a[r0:r1] for a in out))

    for_ranges(select, n, 16)
    _check_finite(finite, j0)
    if tied.any():
        rows, _ = distance_rows(block_t[tied])
        initial[tied] = np.argpartition(rows, range(1, k1 + 1), axis=1)[:, : k1 + 1]


def _check_finite(finite: np.ndarray, j0: int) -> None:
    """UserError naming the first column of S (row of ``finite``, from j0) with NaN or inf."""
    if not finite.all():
        column = j0 + int(np.argmin(finite))
        raise UserError(f"the score matrix holds NaN or inf values (column {column})")


def find_nearest(columns: ColumnSource, k1: int, blocks, cache: int, bar) -> Nearest:
    """Pass 1 over S: the k1 + 1 nearest of every row of O, and what V will need of O."""
    num = columns.shape[0]
    cache = min(max(cache, k1 + 2), num)
    initial_rank = np.empty((num, k1 + 1), dtype=np.int64)
    row_max = np.empty(num, dtype=columns.dtype)
    cached = np.empty((num, cache), dtype=np.int64)
    values = np.empty((num, cache), dtype=columns.dtype)
    for j0, j1 in blocks:  # each block writes its rows of the outputs
        rows = (row_max[j0:j1], initial_rank[j0:j1], cached[j0:j1], values[j0:j1])
        _nearest_block(columns.columns_t(j0, j1), j0, k1, *rows)
        bar.update()
    return Nearest(initial_rank, row_max, cached, values)
