"""Step 6: the all-pairs joint-score matrix and k-reciprocal re-ranking in bounded memory.

Re-ranking (Zhong et al., CVPR 2017) as the original's ``re_ranking.py`` does it on the joint
SIMILARITY matrix ``S`` of the concatenated [query; gallery] set:

1. ``dist = 2 - 2 S``; each column divided by its maximum; transposed: ``O[i, j] =
   (2 - 2 S[j, i]) / max_r (2 - 2 S[r, i])``.
2. ``initial_rank``: the k1 + 1 smallest of each row of O, in order (``np.argpartition`` with
   ``kth = range(1, k1 + 1)``, exactly the original's call, so ties resolve the same way).
3. ``R(i, k)``: the j among the first k + 1 of row i that have i among their first k + 1.
   ``E(i)`` = ``R(i, k1)`` plus, for each j in it, ``R(j, round(k1 / 2))`` when more than
   2/3 of that set lies in ``R(i, k1)``.
4. ``V[i, E(i)] = exp(-O[i, E(i)])``, normalised to sum 1; if k2 != 1, each row is replaced by
   the mean of the rows of its k2 nearest.
5. For query rows: ``jaccard[i, j] = 1 - m / (2 - m)`` with ``m = sum_c min(V[i, c], V[j, c])``;
   ``final = (1 - lambda) jaccard + lambda O``, query rows by gallery columns.

The original holds O, V and the Jaccard matrix densely, (Nq + Ng)^2 each (well over 10 GB at
Market scale). Here S is read in blocks of columns (straight from ``all_scores.mat`` when it
comes from a file), V is sparse (it has at most a few hundred non-zeros per row), and only the
query rows of the Jaccard distance are formed, so memory is the (Nq x Ng) result plus blocks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from tqdm import tqdm

from .errors import UserError
from .interchange import Split
from .matfile import ArrayColumns, ColumnSource
from .st_model import normalize_rows, pair_scores

BLOCK = 512  # columns of S handled at a time
QUERY_BLOCK = 128  # query rows of the Jaccard distance formed at a time


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


def _distance_rows(block_t: np.ndarray) -> np.ndarray:
    """Rows j0..j1 of O from ``block_t`` = S[:, j0:j1].T, with the original's arithmetic."""
    dist = 2.0 - 2 * block_t
    return 1.0 * dist / dist.max(axis=1)[:, None]


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


def _jaccard_min_sums(v_query, v_gallery_csc, num_gallery: int) -> np.ndarray:
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


def re_ranking_columns(
    columns: ColumnSource,
    query_num: int,
    k1=20,
    k2=6,
    lambda_value=0.3,
    progress=True,
    block: int = BLOCK,
    query_block: int = QUERY_BLOCK,
):
    """k-reciprocal re-ranking of a similarity matrix given by column blocks.

    Args:
        columns: the (N, N) joint similarity S of the [query; gallery] set, queries first
            (:class:`streid.matfile.MatColumns` for a file, ``ArrayColumns`` for an array).
        query_num: number of queries Nq.
        k1, k2, lambda_value: the method's parameters (paper: 20, 6, 0.3).
        progress: show a progress bar (on a terminal).
        block, query_block: columns of S read at a time, query rows of the Jaccard
            distance formed at a time; they bound memory and do not change the result.

    Returns:
        (Nq, Ng) re-ranked distances: float32 for a float32 S (step 6.1's file), float64 for
        a float64 S (the original's file), as the original's arithmetic gives.
    """
    num = columns.shape[0]
    if columns.shape != (num, num):
        raise UserError(f"the score matrix must be square, got shape {columns.shape}")
    check_parameters(num, query_num, k1, k2, lambda_value)
    blocks = [(j, min(j + block, num)) for j in range(0, num, block)]
    disable = None if progress else True  # None: a bar only on a terminal
    with tqdm(total=2 * len(blocks) + 2, desc="re-ranking", leave=False, disable=disable) as bar:
        initial_rank = _nearest(columns, k1, blocks, bar)
        members = [_expansion_sets(initial_rank, k1, np.arange(j0, j1)) for j0, j1 in blocks]
        indptr, indices = _csr(members, num)
        bar.update()
        v, final = _weights(columns, query_num, indptr, indices, blocks, bar)
        if k2 != 1:
            v = _query_expansion(v, initial_rank, k2)
        _blend_jaccard(v, final, query_num, lambda_value, query_block)
        bar.update()
    return final


def _nearest(columns, k1: int, blocks, bar) -> np.ndarray:
    """Pass 1 over S: the k1 + 1 nearest of every row of O, (N, k1 + 1)."""
    initial_rank = np.empty((columns.shape[0], k1 + 1), dtype=np.int64)
    for j0, j1 in blocks:
        block_t = columns.columns_t(j0, j1)
        finite = np.isfinite(block_t).all(axis=1)
        if not finite.all():
            column = j0 + int(np.argmin(finite))
            raise UserError(f"the score matrix holds NaN or inf values (column {column})")
        rows = _distance_rows(block_t)
        initial_rank[j0:j1] = np.argpartition(rows, range(1, k1 + 1), axis=1)[:, : k1 + 1]
        bar.update()
    return initial_rank


def _weights(columns, query_num: int, indptr, indices, blocks, bar):
    """Pass 2 over S: V on the expansion sets, and O for the query rows (Nq, Ng)."""
    num = columns.shape[0]
    data = np.empty(len(indices), dtype=np.float32)  # V is float32 whatever S is, as the original
    final = np.empty((query_num, num - query_num), dtype=columns.dtype)
    for j0, j1 in blocks:
        rows = _distance_rows(columns.columns_t(j0, j1))
        lo, hi = indptr[j0], indptr[j1]
        local_row = np.repeat(np.arange(j1 - j0), np.diff(indptr[j0 : j1 + 1]))
        weight = np.exp(-rows[local_row, indices[lo:hi]])
        # np.sum per row, as the original, for bit-identical weights.
        pieces = np.split(weight, indptr[j0 + 1 : j1] - lo)
        sums = np.array([np.sum(piece) for piece in pieces], dtype=weight.dtype)
        data[lo:hi] = 1.0 * weight / sums[local_row]
        if j0 < query_num:
            q1 = min(j1, query_num)
            final[j0:q1] = rows[: q1 - j0, query_num:]
        bar.update()
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(num, num)), final


def _blend_jaccard(v, final: np.ndarray, query_num: int, lambda_value: float, step: int):
    """``final = (1 - lambda) jaccard + lambda final``, in place, for the query rows, ``step``
    rows at a time."""
    v.sort_indices()
    v_gallery = v[query_num:].tocsc()  # for each column c, the gallery rows j with V[j, c] > 0
    for q0 in range(0, query_num, step):
        q1 = min(q0 + step, query_num)
        m = _jaccard_min_sums(v[q0:q1], v_gallery, final.shape[1])
        jaccard = 1 - m / (2.0 - m)  # float32, as the original's jaccard_dist
        final[q0:q1] = jaccard * (1 - lambda_value) + final[q0:q1] * lambda_value


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


def all_scores_blocks(features, st, alpha: float, block: int = 128):
    """Step 6.1: the joint score of every pair of the [query; gallery] set, by column blocks.

    ``S[r, c]`` is the joint score with r in the query role and c in the gallery role, as the
    original's ``evaluate2(all_features[r], ...)`` row by row; the same function as step 5
    (:func:`streid.st_model.pair_scores`) computes it.

    Args:
        features: :class:`streid.interchange.FeatureSet`.
        st: the smoothed spatial-temporal model.

    Yields:
        float32 blocks ``S[:, j0:j1].T`` of shape (j1 - j0, N), in column order.
    """
    everyone = Split.concatenate([features.query, features.gallery])
    del features  # the concatenation is all we need: big PCB features are not held twice
    normalize_rows(everyone.features, out=everyone.features)
    num = len(everyone)
    for j0 in range(0, num, block):
        scores = pair_scores(everyone, everyone[j0 : j0 + block], st, alpha)
        yield scores.T.astype(np.float32)
