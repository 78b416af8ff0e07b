"""The inner loops of steps 5 and 6, compiled with numba: one pass over each block of pairs,
no per-pair temporaries, no sort of whole rows.

- :func:`joint_scores`: Eqn. 9 with the spatial-temporal lookup of every pair of a block,
  from the block's ``exp(-gamma0 s)``;
- :func:`good_positions`: where a query's true matches land in its ranking, counted
  instead of sorted (step 5's and step 6's CMC and mAP);
- :func:`nearest_rows`: each row's nearest of step 6's distance O, selected in one pass.

Each gives the bits of the NumPy expressions it replaces (``tests/test_kernels.py`` checks
them against those, ties included): the same IEEE operations in the same order, no
``fastmath``, so no reassociation or fused multiply-add. NumPy's own ``exp`` stays outside
(:func:`streid.fusion.joint_block`): numba's would round otherwise in the last bit.

The kernels release the GIL; :mod:`streid.parallel` runs them in threads, a range of rows
each. They are compiled on first use and cached on disk (numba's ``cache=True``: in
``streid/__pycache__``, or in the user's cache folder where that is not writable).
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}
TILE = 1024  # columns per inner pass: a tile's indices and denominators stay in L1
SKIP = 256  # entries that good_positions passes over at once where none is counted


@numba.njit(**_JIT)
def joint_scores(expo, one, lam0, lines, columns, lines_are_queries, denominator, num_bins,
                 interval, out):  # fmt: skip
    """``out[i, j] = one / (one + lam0 * expo[i, j]) / denominator[k]``: Eqn. 9 of the pair
    (line i, column j), with k its flat table index as
    :meth:`streid.st_model.SpatialTemporalModel.table_index` gives it.

    Args:
        expo: (L, J) ``exp(-gamma0 s)`` of each pair, float32 or float64.
        one, lam0: 1 and lambda0 in ``expo``'s precision.
        lines, columns: (cams * C * B, cams * B, times, sessions) of the L line images and
            of the J column images: 0-based cameras times the table's strides (int32),
            times as float64, sessions (int32; all 0 without sessions).
        lines_are_queries: True if the lines are the queries, False if the columns are.
        denominator: the flat table of ``1 + lambda1 exp(-gamma1 p)``, its last entry the
            one of every pair outside the table (a gap past the last bin, or two sessions).
        num_bins, interval: the table's bins and time units per bin.
        out: (L, J) float32 or float64, written.
    """
    line_cb, line_b, line_t, line_s = lines
    col_cb, col_b, col_t, col_s = columns
    num_lines, num_cols = expo.shape
    index = np.empty(TILE, np.int32)
    denom = np.empty(TILE, np.float64)
    limits = (np.int32(denominator.size - 1), np.float64(num_bins), np.float64(interval))
    # A tile of columns for every line, in passes that each vectorise.
    for c0 in range(0, num_cols, TILE):
        c1 = min(num_cols, c0 + TILE)
        tile = (col_cb[c0:c1], col_b[c0:c1], col_t[c0:c1], col_s[c0:c1])
        k, d = index[: c1 - c0], denom[: c1 - c0]
        for i in range(num_lines):
            line = (line_cb[i], line_b[i], line_t[i], line_s[i])
            _table_index(line, tile, lines_are_queries, limits, k)
            for j in range(k.size):
                d[j] = denominator[k[j]]
            _fuse(expo[i, c0:c1], one, lam0, d, out[i, c0:c1])


@numba.njit(**_JIT)
def _table_index(line, columns, line_is_query, limits, index):
    """The flat table index of the pairs of one line image with each column image."""
    cb, b, t, session = line
    col_cb, col_b, col_t, col_s = columns
    outside, num_bins, interval = limits
    for j in range(col_t.size):
        other = col_t[j]
        # The query is the later image only if its time is strictly the later.
        col_later = other >= t if line_is_query else other > t
        gap = other - t if col_later else t - other
        base = col_cb[j] + b if col_later else cb + col_b[j]
        bins = gap / interval
        inside = (bins < num_bins) & (col_s[j] == session)
        index[j] = base + np.int32(bins) if inside else outside


@numba.njit(**_JIT)
def _fuse(expo, one, lam0, denom, out):
    """Eqn. 9: the visual factor in ``expo``'s precision, divided by the denominator."""
    for j in range(expo.size):
        out[j] = one / (one + lam0 * expo[j]) / denom[j]


@numba.njit(**_JIT)
def _any_at_most(row, t0, t1, negate, worst) -> bool:
    """Whether a key of ``row[t0:t1]`` (``-row`` with ``negate``) is at most ``worst``: a
    count of comparisons, which vectorises (``-x <= w`` is ``x >= -w`` in IEEE arithmetic,
    NaN false in both)."""
    hits = 0
    if negate:
        bound = -worst
        for j in range(t0, t1):
            hits += row[j] >= bound
    else:
        for j in range(t0, t1):
            hits += row[j] <= worst
    return hits > 0


@numba.njit(**_JIT)
def good_positions(scores, negate, junk, good_ptr, good_keys, junk_ptr, junk_cols, r0, r1,
                   positions, tied):  # fmt: skip
    """The 0-based position, after junk removal, of each good image in the ranking of its
    row by ascending key (``key = -score`` with ``negate``), as ``np.argsort`` would place it.

    A good image with key v comes after every non-junk entry with a key below v and after
    the good images of its row tied with it and listed before it; where an entry that is
    not good has exactly the key v, the position depends on how the sort orders ties, and
    the row is marked ``tied`` (for the original's full sort). NaN keys are never counted
    (they sort last); a NaN good key marks its row.

    Args:
        scores: (B, G) scores or distances.
        negate: rank by descending score.
        junk: (G,) bool, the columns junk for every row (label -1).
        good_ptr, good_keys: each row's good keys, ascending, in
            ``good_keys[good_ptr[i]:good_ptr[i + 1]]``.
        junk_ptr, junk_cols: each row's own junk columns (same person, same camera).
        r0, r1: the rows to do.
        positions: (len(good_keys),) int64, written for the rows done.
        tied: (B,) bool, written for the rows done.
    """
    for i in range(r0, r1):
        g0, g1 = good_ptr[i], good_ptr[i + 1]
        if g0 == g1:
            tied[i] = False
            continue
        goods = good_keys[g0:g1]
        worst = goods[-1]
        # counts[0, m]: entries whose key is below good m and not below good m - 1, etc.
        below = np.zeros(g1 - g0 + 1, np.int64)
        upto = np.zeros(g1 - g0 + 1, np.int64)
        row = scores[i]
        for t0 in range(0, row.size, SKIP):
            t1 = min(t0 + SKIP, row.size)
            if not _any_at_most(row, t0, t1, negate, worst):
                continue
            for j in range(t0, t1):
                key = -row[j] if negate else row[j]
                if key <= worst and not junk[j]:
                    below[np.searchsorted(goods, key, side="right")] += 1
                    upto[np.searchsorted(goods, key, side="left")] += 1
        for c in junk_cols[junk_ptr[i] : junk_ptr[i + 1]]:
            key = -row[c] if negate else row[c]
            if key <= worst:
                below[np.searchsorted(goods, key, side="right")] -= 1
                upto[np.searchsorted(goods, key, side="left")] -= 1
        below, upto = np.cumsum(below), np.cumsum(upto)
        ambiguous = np.isnan(worst)
        for m in range(g1 - g0):
            good_below = np.searchsorted(goods, goods[m], side="left")
            good_upto = np.searchsorted(goods, goods[m], side="right")
            positions[g0 + m] = below[m] + m - good_below
            ambiguous |= upto[m] - below[m] > good_upto - good_below
        tied[i] = ambiguous


@numba.njit(**_JIT)
def nearest_rows(block_t, row_min, stripes, two, k1, row_max, initial, cached, values, tied,
                 finite):  # fmt: skip
    """Step 6's pass 1 on the rows of ``block_t`` (columns of S, transposed): for each row
    of O = ``(2 - 2 S) / max``, its maximum of ``2 - 2 S``, its M smallest entries and the
    k1 + 1 nearest in order.

    The M largest scores are the M smallest entries of O (O does not grow with S). A row is
    cut into ``stripes`` consecutive stripes of T scores; tile t holds the t-th score of
    each stripe, and an elementwise maximum over the stripes gives every tile's maximum. The
    M largest of those maxima are M scores, so the M-th of them is a threshold that the M
    largest scores reach: only the tiles whose maximum reaches it are read again. The O of
    the M kept is formed with the original's operations. A row whose k1 + 2 smallest
    entries hold a tie is marked ``tied``: the order of the nearest then depends on
    ``np.argpartition``, which decides it (as in the original).

    Args:
        block_t: (R, N) float32 or float64 scores S[:, j0:j1].T, N > M.
        row_min: (R,) each row's minimum (NaN for a row holding NaN).
        stripes: how many stripes a row is cut into (the scores per tile).
        two: 2 in ``block_t``'s precision.
        k1: the method's k1 (k1 + 2 <= M).
        row_max, initial, cached, values, tied, finite: (R,), (R, k1 + 1), (R, M), (R, M),
            (R,), (R,) outputs; ``finite`` is False for a row holding NaN or inf (nothing
            else of it is then meaningful).
    """
    size = cached.shape[1]
    num = block_t.shape[1]
    tiles = -(-num // stripes)
    whole = num // tiles * tiles  # the last stripe may be shorter
    maxima = np.empty(tiles, block_t.dtype)
    kept_s = np.empty(num, block_t.dtype)
    kept_j = np.empty(num, np.int64)
    for i in range(block_t.shape[0]):
        row = block_t[i]
        maxima[:] = row[:tiles]
        for start in range(tiles, whole, tiles):  # NaN, where there is one, is kept
            np.maximum(row[start : start + tiles], maxima, maxima)
        for j in range(whole, num):
            maxima[j - whole] = np.maximum(maxima[j - whole], row[j])
        finite[i] = np.isfinite(row_min[i]) and np.isfinite(maxima).all()
        if not finite[i]:
            continue
        threshold = np.partition(maxima, tiles - size)[tiles - size] if tiles >= size else -np.inf
        count = 0
        for t in range(tiles):
            if maxima[t] >= threshold:
                for j in range(t, num, tiles):
                    if row[j] >= threshold:
                        kept_s[count], kept_j[count] = row[j], j
                        count += 1
        order = np.argsort(-kept_s[:count])[:size]  # the largest scores first
        peak = -two * row_min[i] + two  # the largest 2 - 2 S, with the original's operations
        dist = (-two * kept_s[order] + two) / peak  # ascending, as O does not grow with S
        row_max[i] = peak
        cached[i], values[i] = kept_j[order], dist
        initial[i] = kept_j[order[: k1 + 1]]
        tied[i] = (dist[1 : k1 + 2] == dist[: k1 + 1]).any()
