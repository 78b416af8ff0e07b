"""Step 6.2: k-reciprocal re-ranking of the joint scores, in bounded memory, one pass.

Re-ranking (Zhong et al., CVPR 2017) as the original's ``re_ranking.py`` does it on the joint
SIMILARITY matrix ``S`` of the concatenated [query; gallery] set:

1. ``dist = 2 - 2 S``; each column divided by its maximum; transposed: ``O[i, j] =
   (2 - 2 S[j, i]) / max_r (2 - 2 S[r, i])``.
2. ``initial_rank``: the k1 + 1 smallest of each row of O, in order (the original's
   ``np.argpartition`` with ``kth = range(1, k1 + 1)``).
3. ``R(i, k)``: the j among the first k + 1 of row i that have i among their first k + 1.
   ``E(i)`` = ``R(i, k1)`` plus, for each j in it, ``R(j, round(k1 / 2))`` when more than
   2/3 of that set lies in ``R(i, k1)``.
4. ``V[i, E(i)] = exp(-O[i, E(i)])``, normalised to sum 1; if k2 != 1, each row is replaced by
   the mean of the rows of its k2 nearest.
5. For query rows: ``jaccard[i, j] = 1 - m / (2 - m)`` with ``m = sum_c min(V[i, c], V[j, c])``;
   ``final = (1 - lambda) jaccard + lambda O``, query rows by gallery columns.

The original holds O, V and the Jaccard matrix densely, (Nq + Ng)^2 each (well over 10 GB at
Market scale). Here S comes in blocks of columns from a :class:`streid.matfile.ColumnSource`
(``all_scores.mat`` read from disk, or the scores computed from the features,
:mod:`streid.all_scores`), and is passed over once:

- pass 1 (:mod:`streid.nearest`) keeps, per row of O, its maximum and its ``CACHE``
  smallest entries, from which the k1 + 1 nearest follow in the original's order (rows
  where a tie makes that order depend on ``np.argpartition``'s own order are given to the
  original's call);
- V needs O only on the expansion sets; the few entries beyond a row's cached ones are read
  (or recomputed) one by one;
- V is sparse (a few hundred non-zeros per row), and the final distances are formed for one
  block of queries at a time (:func:`rerank_blocks` yields them), so memory stays bounded
  by the blocks, whatever the number of images.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse
from tqdm import tqdm

from .errors import UserError
from .matfile import ArrayColumns, ColumnSource
from .nearest import Nearest, distance_rows, find_nearest
from .parallel import for_ranges

BLOCK = 128  # columns of S handled at a time: a chunk of the scores, still in the cache
QUERY_BLOCK = 128  # query rows of the final distance formed at a time
CACHE = 64  # smallest entries of each row of O kept by pass 1


def _square(columns: ColumnSource) -> int:
    """N, the side of the square matrix ``columns``; UserError if it is not square."""
    num = columns.shape[0]
    if columns.shape != (num, num):
        raise UserError(f"the score matrix must be square, got shape {columns.shape}")
    return num


def check_parameters(num: int, query_num: int, k1: int, k2: int, lambda_value: float):
    """UserError for re-ranking parameters the method cannot use."""
    if not 0 < query_num < num:
        raise UserError(f"query_num must be between 1 and {num - 1}, got {query_num}")
    if not 1 <= k1 < num:
        raise UserError(f"k1 must be between 1 and {num - 1} (the images minus one), got {k1}")
    if not 1 <= k2 <= k1 + 1:
        raise UserError(f"k2 must be between 1 and k1 + 1 = {k1 + 1}, got {k2}")
    if not 0 <= lambda_value <= 1:
        raise UserError(f"lambda must be between 0 and 1, got {lambda_value}")


def _distance(scores: np.ndarray, row_max) -> np.ndarray:
    """O from scores S (transposed) and each row's maximum of ``2 - 2 S``, with the
    original's arithmetic: ``1.0 * (2.0 - 2 S) / max``."""
    return 1.0 * (2.0 - 2 * scores) / row_max


def _reciprocal(ranks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mask of ``ranks[rows]``: which neighbours j of i have i among their own neighbours."""
    neighbours = ranks[rows]
    return (ranks[neighbours] == rows[:, None, None]).any(axis=2)


def _expansion_sets(initial_rank: np.ndarray, k1: int, rows: np.ndarray):
    """E(i) for the rows ``rows``: a (len(rows), width) array, sorted, -1 where unused."""
    half = int(np.around(k1 / 2))
    forward = initial_rank[rows, : k1 + 1]
    recip = _reciprocal(initial_rank[:, : k1 + 1], rows)  # R(i, k1) as a mask on forward
    r_vals = np.where(recip, forward, -1)

    small = initial_rank[:, : half + 1]
    cand = small[forward]  # (rows, k1+1, half+1): the candidates' own first half+1
    cand_recip = (small[cand] == forward[:, :, None, None]).any(axis=3)  # R(j, half) masks
    cand_vals = np.where(cand_recip, cand, -2)
    common = (cand_vals[..., None] == r_vals[:, None, None, :]).any(axis=3).sum(axis=2)
    accept = recip & (common > 2.0 / 3 * cand_recip.sum(axis=2))

    members = np.concatenate(
        [r_vals, np.where(accept[..., None] & cand_recip, cand, -1).reshape(len(rows), -1)],
        axis=1,
    )
    members.sort(axis=1)
    duplicate = np.zeros_like(members, dtype=bool)
    duplicate[:, 1:] = members[:, 1:] == members[:, :-1]
    members[duplicate] = -1
    return members


def _csr(rows_members: list[np.ndarray], num: int):
    """CSR structure (indptr, indices) of the per-row sorted member arrays (-1 = none)."""
    counts = np.concatenate([(m >= 0).sum(axis=1) for m in rows_members])
    indices = np.concatenate([m[m >= 0] for m in rows_members])
    indptr = np.zeros(num + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, indices


def jaccard_min_sums(v_query, v_gallery_csc, num_gallery: int) -> np.ndarray:
    """``m[i, j] = sum_c min(Vq[i, c], Vg[j, c])`` for a block of query rows (dense).

    Accumulated in V's precision with c ascending, the original's order, so the sums are
    bit-identical to its dense loop (``np.add.at`` adds in the order given).
    """
    q = v_query.tocoo()  # row-major with sorted columns: c ascending within each row
    col_start = v_gallery_csc.indptr[q.col]
    col_count = v_gallery_csc.indptr[q.col + 1] - col_start
    sums = np.zeros(q.shape[0] * num_gallery, dtype=v_query.dtype)
    total = int(col_count.sum())
    if total:
        entry = np.repeat(np.arange(len(q.row)), col_count)
        # Position of every (query entry, gallery entry of the same column) pair in the CSC.
        offset = np.arange(total) - np.repeat(np.cumsum(col_count) - col_count, col_count)
        pos = col_start[entry] + offset
        mins = np.minimum(q.data[entry], v_gallery_csc.data[pos])
        flat = q.row[entry].astype(np.int64) * num_gallery + v_gallery_csc.indices[pos]
        np.add.at(sums, flat, mins)
    return sums.reshape(q.shape[0], num_gallery)


def _query_expansion(v, initial_rank: np.ndarray, k2: int):
    """Each row of V replaced by the mean of the rows of its k2 nearest, summed one neighbour
    at a time and divided by k2 in V's precision, as ``np.mean(V[rank[i, :k2]], axis=0)``."""
    total = v[initial_rank[:, 0]]
    for t in range(1, k2):
        total = total + v[initial_rank[:, t]]
    total.data = total.data / total.dtype.type(k2)
    return total


def _weights(columns: ColumnSource, nearest: Nearest, indptr, indices):
    """V on the expansion sets: ``exp(-O)`` normalised per row, as the original. O comes from
    pass 1's cache, or, for the few members beyond it, from ``columns.entries``."""
    num = len(indptr) - 1
    row = np.repeat(np.arange(num), np.diff(indptr))
    # Look every member up among its row's cached entries.
    keys = np.arange(num)[:, None] * num + nearest.cached
    order = np.argsort(keys, axis=None)
    sorted_keys = keys.ravel()[order]
    wanted = row * num + indices
    at = np.minimum(np.searchsorted(sorted_keys, wanted), sorted_keys.size - 1)
    hit = sorted_keys[at] == wanted
    o = np.empty(len(indices), dtype=nearest.values.dtype)
    o[hit] = nearest.values.ravel()[order[at[hit]]]
    miss = ~hit
    if miss.any():  # O[i, x] = (2 - 2 S[x, i]) / max_i
        scores = columns.entries(indices[miss], row[miss]).astype(o.dtype, copy=False)
        o[miss] = _distance(scores, nearest.row_max[row[miss]])
    weight = np.exp(-o)
    sums = row_sums(weight, indptr)
    data = (1.0 * weight / sums[row]).astype(np.float32)  # V is float32, as the original
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(num, num))


def row_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """``np.sum`` of each row ``values[indptr[i]:indptr[i + 1]]``, to the bit, as the
    original sums each row: the rows of one length are stacked and summed along their
    length, which NumPy adds as it adds one row (pairwise, in the row's order)."""
    lengths = np.diff(indptr)
    sums = np.empty(len(lengths), dtype=values.dtype)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        sums[rows] = values[indptr[rows][:, None] + np.arange(length)].sum(axis=1)
    return sums


def rerank_blocks(
    columns: ColumnSource,
    query_num: int,
    k1=20,
    k2=6,
    lambda_value=0.3,
    progress=True,
    block: int = BLOCK,
    query_block: int = QUERY_BLOCK,
    cache: int = CACHE,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """k-reciprocal re-ranking of a similarity matrix given by column blocks, one block of
    queries at a time.

    Args:
        columns: the (N, N) joint similarity S of the [query; gallery] set, queries first
            (:class:`streid.matfile.MatColumns` for a file, ``ArrayColumns`` for an array,
            :class:`streid.all_scores.FeatureColumns` for the scores of features).
        query_num: number of queries Nq.
        k1, k2, lambda_value: the method's parameters (paper: 20, 6, 0.3).
        progress: show a progress bar (on a terminal).
        block, query_block: columns of S read at a time, query rows of the final distance
            formed at a time; with ``cache`` (the entries of each row of O that pass 1
            keeps) they bound memory and do not change the result.

    Yields:
        (q0, q1, final): the re-ranked distances of queries q0..q1 to the gallery,
        (q1 - q0, Ng): float32 for a float32 S (step 6.1's file), float64 for a float64 S
        (the original's file), as the original's arithmetic gives.
    """
    num = _square(columns)
    check_parameters(num, query_num, k1, k2, lambda_value)
    queries = [(q, min(q + query_block, query_num)) for q in range(0, query_num, query_block)]
    disable = None if progress else True  # None: a bar only on a terminal
    total = -(-num // block) + len(queries) + 2
    with tqdm(total=total, desc="re-ranking", leave=False, disable=disable) as bar:
        v = k_reciprocal_weights(columns, k1, k2, block, cache, bar)
        v_gallery = v[query_num:].tocsc()  # for each column c, the gallery rows j with V[j, c]
        for q0, q1 in queries:
            m = jaccard_min_sums(v[q0:q1], v_gallery, num - query_num)
            final = _final_distances(columns.columns_t(q0, q1), m, query_num, lambda_value)
            bar.update()
            yield q0, q1, final


def _final_distances(block_t: np.ndarray, m: np.ndarray, query_num: int, lambda_value: float):
    """``(1 - lambda) jaccard + lambda O`` of a block of queries, from their columns of S
    (``block_t``) and the sums of minima ``m``, with the original's operations, in threads."""
    final = np.empty(m.shape, dtype=np.result_type(m, block_t))

    def rows(r0: int, r1: int) -> None:
        dist, _ = distance_rows(block_t[r0:r1])
        jaccard = 1 - m[r0:r1] / (2.0 - m[r0:r1])  # float32, as the original's jaccard_dist
        final[r0:r1] = jaccard * (1 - lambda_value) + dist[:, query_num:] * lambda_value

    for_ranges(rows, len(m), 16)
    return final


def k_reciprocal_weights(
    columns: ColumnSource, k1=20, k2=6, block: int = BLOCK, cache: int = CACHE, bar=None
) -> scipy.sparse.csr_matrix:
    """V, the k-reciprocal encoding of every image (steps 1-4 of the module docstring), in
    one pass over the similarity ``columns`` (see :func:`rerank_blocks` for the arguments).

    Returns:
        (N, N) float32 CSR matrix with sorted indices: row i is V[i], ``exp(-O)`` on the
        expansion set E(i) normalised to sum 1, then averaged over the k2 nearest rows.
    """
    num = _square(columns)
    blocks = [(j, min(j + block, num)) for j in range(0, num, block)]
    bar = bar if bar is not None else tqdm(disable=True)
    nearest = find_nearest(columns, k1, blocks, cache, bar)
    members = [None] * len(blocks)

    def expand(b: int, _: int) -> None:  # block b
        members[b] = _expansion_sets(nearest.initial_rank, k1, np.arange(*blocks[b]))

    for_ranges(expand, len(blocks), 1)
    indptr, indices = _csr(members, num)
    v = _weights(columns, nearest, indptr, indices)
    if k2 != 1:
        v = _query_expansion(v, nearest.initial_rank, k2)
    v.sort_indices()
    bar.update(2)
    return v


def re_ranking_columns(columns: ColumnSource, query_num: int, *args, **kwargs) -> np.ndarray:
    """The whole (Nq, Ng) re-ranked distance of :func:`rerank_blocks` (same arguments)."""
    parts = [final for _, _, final in rerank_blocks(columns, query_num, *args, **kwargs)]
    return np.concatenate(parts)


def re_ranking(query_num: int, all_dist, k1=20, k2=6, lambda_value=0.3):
    """The original's API: re-rank the (Nq + Ng)^2 similarity matrix ``all_dist``.

    Args:
        query_num: number of queries Nq (the first Nq rows/columns of ``all_dist``).
        all_dist: (N, N) joint similarity of the [query; gallery] set (step 6.1's
            ``all_scores``): an array, or a :class:`streid.matfile.ColumnSource` such as
            a :class:`streid.matfile.MatColumns` that reads it from a file.
        k1, k2, lambda_value: k-reciprocal neighbours, query-expansion neighbours, weight
            of the original distance.

    Returns:
        (Nq, Ng) re-ranked distances: lower is better.
    """
    columns = all_dist if isinstance(all_dist, ColumnSource) else ArrayColumns(all_dist)
    return re_ranking_columns(columns, query_num, k1, k2, lambda_value)
