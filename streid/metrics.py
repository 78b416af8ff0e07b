"""CMC and mAP, the metrics alone: exactly as the original computes them, vectorised over
blocks of queries (:class:`RankingEvaluator`), or expected over the orders of tied scores
(:class:`ExpectedEvaluator`, ``--ties expected``). A leaf: it ranks given (B, G) scores and
knows nothing of the spatial-temporal stream (step 5's orchestration: :mod:`streid.evaluation`).

Per query, the gallery is ranked by score (descending) or distance (ascending) with
``np.argsort``, as in the original. Then:

- good: same person, other camera;
- junk: same person and same camera, and every gallery image labelled -1; junk is removed
  from the ranking, distractors (label 0) stay;
- a query with no good image is skipped, but still counts in the denominators;
- AP sums, over the good images at 0-based positions ``r_i`` (after junk removal, i from 1),
  ``(1 / ngood) * (old_precision + precision) / 2`` with ``precision = i / (r_i + 1)`` and
  ``old_precision = (i - 1) / r_i``, or 1 when ``r_i = 0``;
- ``CMC[k] = 1`` from the first good position on; averaged over all queries.

The accumulation follows the original's order (AP terms in rank order, queries in order) and
its float32 CMC, so the printed numbers are the same, not just close.

Expected over ties: The original ranks the gallery with ``np.argsort``, and where scores tie (the
spatial-temporal stream alone is full of exact ties: many gallery images share a camera pair
and a time bin) the digits depend on the order the sort kernel happens to give them, which
varies between NumPy versions and machines. Here every order within each group of tied
scores is taken as equally likely, and CMC and AP are their expected values, computed
exactly (McSherry and Najork, "Computing Information Retrieval Performance Measures
Efficiently in the Presence of Tied Scores", ECIR 2008), for the original's definitions:

- junk is removed first; a query without a good image counts 0 in both;
- within a group of n non-junk images with g good ones, placed after o non-junk images of
  which c are good, a good image lands on each slot j = 1..n with probability g / n, and the
  good images before it in the group then number (j - 1)(g - 1)/(n - 1) on average. The
  original's AP term of a good image, ``((i - 1) / r + i / (r + 1)) / 2`` at 0-based
  position r = o + j - 1 with i = 1 + the good images before it, is linear in that number,
  so its expectation is the term at the average;
- the CMC at rank k is the probability that the first good image is within the first k:
  ``1 - C(n - g, t) / C(n, t)`` for the t = k - o first slots of the first group holding one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import good_positions
from .parallel import for_ranges


def good_and_junk(query_labels, query_cams, gallery_labels, gallery_cams):
    """The original's good and junk gallery images of each query, as (Q, G) masks.

    Args:
        query_labels, query_cams: (Q,) ids.
        gallery_labels, gallery_cams: (G,) ids, or (Q, G) (each query's ranked gallery).
    """
    ql = np.asarray(query_labels)[:, None]
    qc = np.asarray(query_cams)[:, None]
    same = gallery_labels == ql
    junk = (same & (gallery_cams == qc)) | (gallery_labels == -1)
    # Deviation from the original: good excludes junk. This only matters for a query
    # labelled -1, whose "good" images are all junk: the original then crashes with an
    # IndexError, here the query has no good match and is skipped.
    return same & ~junk, junk


@dataclass
class Metrics:
    """Results over all queries.

    Attributes:
        cmc: (num_gallery,) float32, the fraction of queries with a good match in the top k+1.
        mAP: mean average precision.
        ap: (num_queries,) float64, the AP of each query (0 for skipped ones).
        first_good: (num_queries,) int64, rank of the first good match after junk
            removal, -1 for skipped queries.
    """

    cmc: np.ndarray
    mAP: float
    ap: np.ndarray
    first_good: np.ndarray

    def summary(self) -> str:
        """The original's result line, ``top1:%f top5:%f top10:%f mAP:%f``."""
        # A gallery smaller than 10 has reached its final CMC value by its last rank.
        top1, top5, top10 = (float(self.cmc[min(k, len(self.cmc)) - 1]) for k in (1, 5, 10))
        return f"top1:{top1:f} top5:{top5:f} top10:{top10:f} mAP:{self.mAP:f}"


def _full_sort_positions(keys, query_labels, query_cams, gallery_labels, gallery_cams):
    """The ranking by ``np.argsort`` of whole rows (``keys``: lower is better), as the original.

    Returns (rows, r): each row's good images in rank order, and their positions after junk
    removal. Kept as the fallback for rows with ties that matter, and as the plain version.
    """
    order = np.argsort(keys, axis=1)
    good, junk = good_and_junk(query_labels, query_cams, gallery_labels[order], gallery_cams[order])
    position = np.cumsum(~junk, axis=1, dtype=np.int64) - 1  # rank after junk removal
    rows, cols = np.nonzero(good)  # row-major: each query's good images in rank order
    return rows, position[rows, cols]


def _counted_positions(scores, descending, junk, rows, cols, junk_rows, junk_cols):
    """The positions of the good images (``rows``, ``cols``; rows ascending) without
    ``np.argsort``, counted by :func:`streid.kernels.good_positions` in threads.

    Once a row is sorted, a good image with key v sits after the non-junk images with a key
    below v and after the good images of its row tied with it. Where another non-junk
    image has exactly the key v, the position depends on how ``np.argsort`` orders ties:
    those rows are returned apart, for :func:`_full_sort_positions`. Ties with junk or
    between good images change no position (junk is not counted, tied good images take the
    same positions in either order), so they need no full sort.

    Returns (rows, r, tied): rows and positions in rank order, and the rows left out.
    """
    num_rows = scores.shape[0]
    keys = scores[rows, cols]
    if descending:
        keys = -keys
    order = np.lexsort((keys, rows))  # each row's good images by key
    rows, keys = rows[order], keys[order]
    good_ptr = np.searchsorted(rows, np.arange(num_rows + 1))
    junk_ptr = np.searchsorted(junk_rows, np.arange(num_rows + 1))
    positions = np.empty(len(rows), dtype=np.int64)
    tied = np.zeros(num_rows, dtype=bool)
    args = (scores, descending, junk, good_ptr, keys, junk_ptr, junk_cols)
    for_ranges(lambda r0, r1: good_positions(*args, r0, r1, positions, tied), num_rows,
               max(1, 2**18 // max(scores.shape[1], 1)))  # fmt: skip
    keep = ~tied[rows]
    return rows[keep], positions[keep], np.flatnonzero(tied)


class RankingEvaluator:
    """Accumulates CMC and AP over blocks of queries.

    Args:
        gallery_labels: (G,) person ids (-1 junk, 0 distractor).
        gallery_cams: (G,) camera ids.
        descending: rank by descending score (step 5) or ascending distance (step 6).

    Attributes:
        full_sorts: rows ranked by a full ``np.argsort`` so far (ties at a good image).
    """

    def __init__(self, gallery_labels, gallery_cams, descending: bool = True):
        self.g_labels = np.asarray(gallery_labels)
        self.g_cams = np.asarray(gallery_cams)
        self.descending = descending
        self._cmc_counts = np.zeros(len(self.g_labels), dtype=np.int64)
        self._ap: list[np.ndarray] = []
        self._first: list[np.ndarray] = []
        self._by_label = np.argsort(self.g_labels, kind="stable")
        self._junk = self.g_labels == -1
        self.full_sorts = 0

    def _pairs(self, query_labels, query_cams):
        """Good and same-camera junk images of each query as (row, col) pairs (the gallery's
        -1 images, junk for every query, are not listed)."""
        sorted_labels = self.g_labels[self._by_label]
        lo = np.searchsorted(sorted_labels, query_labels, "left")
        count = np.searchsorted(sorted_labels, query_labels, "right") - lo
        rows = np.repeat(np.arange(len(query_labels)), count)
        cols = self._by_label[
            np.arange(len(rows)) + np.repeat(lo - np.cumsum(count) + count, count)
        ]
        same_cam = self.g_cams[cols] == query_cams[rows]
        real = query_labels[rows] != -1
        good, junk = real & ~same_cam, real & same_cam
        return rows[good], cols[good], rows[junk], cols[junk]

    def add(self, scores: np.ndarray, query_labels, query_cams) -> None:
        """Evaluate one block of queries.

        The positions are those of ``np.argsort`` of each row (see :func:`_counted_positions`
        for how they are found without it); rows without a good image are not ranked.

        Args:
            scores: (B, G) scores (or distances) of B queries against the whole gallery.
            query_labels, query_cams: (B,) the queries' person and camera ids.
        """
        scores = np.asarray(scores)
        query_labels, query_cams = np.asarray(query_labels), np.asarray(query_cams)
        rows, cols, junk_rows, junk_cols = self._pairs(query_labels, query_cams)
        if scores.dtype in (np.float32, np.float64):
            pairs = (rows, cols, junk_rows, junk_cols)
            rows, r, tied = _counted_positions(scores, self.descending, self._junk, *pairs)
        else:  # other types: every row by the full sort
            rows, r, tied = rows[:0], rows[:0], np.unique(rows)
        if len(tied):
            keys = -scores[tied] if self.descending else scores[tied]
            labels = (query_labels[tied], query_cams[tied], self.g_labels, self.g_cams)
            tied_rows, tied_r = _full_sort_positions(keys, *labels)
            rows, r = np.concatenate([rows, tied[tied_rows]]), np.concatenate([r, tied_r])
            order = np.argsort(rows, kind="stable")  # back to query order, rank order kept
            rows, r = rows[order], r[order]
            self.full_sorts += len(tied)
        self._accumulate(rows, r, scores.shape[0])

    def _accumulate(self, rows, r, n_block):
        """AP, first good position and CMC counts of a block from each query's good images in
        rank order (``rows`` ascending) and their positions ``r``, as the original sums them."""
        ngood = np.bincount(rows, minlength=n_block)
        start = np.cumsum(ngood) - ngood
        i = np.arange(1, len(rows) + 1) - start[rows]  # 1-based index among the good
        precision = i / (r + 1)
        old_precision = np.ones_like(precision)
        np.divide(i - 1, r, out=old_precision, where=r != 0)
        terms = 1.0 / ngood[rows] * (old_precision + precision) / 2
        self._ap.append(np.bincount(rows, weights=terms, minlength=n_block))

        first = np.full(n_block, -1, dtype=np.int64)
        has_good = ngood > 0
        first[has_good] = r[start[has_good]]
        self._first.append(first)
        self._cmc_counts += np.bincount(first[has_good], minlength=len(self._cmc_counts))

    def result(self) -> Metrics:
        """CMC and mAP over every query added so far."""
        ap = np.concatenate(self._ap) if self._ap else np.zeros(0)
        first = np.concatenate(self._first) if self._first else np.zeros(0, dtype=np.int64)
        num_queries = len(ap)
        if num_queries == 0:
            raise ValueError("no queries were evaluated")
        # As the original: per-query CMCs summed as integers, one float32 division.
        cmc = np.cumsum(self._cmc_counts).astype(np.float32) / np.float32(num_queries)
        total = 0.0
        for value in ap.tolist():  # the original's sequential sum, for identical digits
            total += value
        return Metrics(cmc=cmc, mAP=total / num_queries, ap=ap, first_good=first)


def count_unmatched(query_labels, query_cams, gallery_labels, gallery_cams) -> int:
    """The queries without a good gallery image (same person, other camera; a query
    labelled -1 has none), counted without the (Q, G) masks."""
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    base = int(max(np.max(query_cams, initial=0), np.max(gallery_cams, initial=0))) + 1
    pair = np.asarray(gallery_labels, np.int64) * base + np.asarray(gallery_cams)
    q_pair = np.asarray(query_labels, np.int64) * base + np.asarray(query_cams)
    good = _count_in(gallery_labels, query_labels) - _count_in(pair, q_pair)
    return int(((good == 0) | (query_labels == -1)).sum())


def _count_in(values, needles) -> np.ndarray:
    """How often each needle occurs in ``values``."""
    unique, counts = np.unique(values, return_counts=True)
    if unique.size == 0:
        return np.zeros(len(needles), dtype=np.int64)
    i = np.minimum(np.searchsorted(unique, needles), len(unique) - 1)
    return np.where(unique[i] == needles, counts[i], 0)


def _groups(keys: np.ndarray, good: np.ndarray):
    """The groups of equal ``keys`` (sorted ascending): their sizes, good counts, and the
    non-junk images and good images before each."""
    order = np.argsort(keys, kind="stable")
    _, start, size = np.unique(keys[order], return_index=True, return_counts=True)
    goods = np.add.reduceat(good[order].astype(np.int64), start)
    before = start  # every image here is non-junk
    goods_before = np.cumsum(goods) - goods
    return size, goods, before, goods_before


def expected_query(keys: np.ndarray, good: np.ndarray, num_gallery: int):
    """Expected AP and CMC (over ranks 0..num_gallery-1) of one query.

    Args:
        keys: (M,) the non-junk images' keys, lower ranks first.
        good: (M,) which of them are good.
    """
    cmc = np.zeros(num_gallery)
    total = int(good.sum())
    if total == 0:
        return 0.0, cmc
    size, goods, before, goods_before = _groups(keys, good)
    ap = 0.0
    for n, g, o, c in zip(size, goods, before, goods_before, strict=True):
        if g == 0:
            continue
        j = np.arange(1, n + 1, dtype=np.float64)
        earlier = (j - 1) * (g - 1) / (n - 1) if n > 1 else np.zeros(1)
        r = o + j - 1  # 0-based positions of the group's slots
        old = np.divide(c + earlier, r, out=np.ones_like(r), where=r != 0)
        ap += float(np.sum(g / n * (old + (c + 1 + earlier) / (r + 1)) / 2)) / total
    first = int(np.argmax(goods > 0))
    n, g, o = int(size[first]), int(goods[first]), int(before[first])
    t = np.arange(1, n + 1)
    miss = np.cumprod((n - g - t + 1).clip(min=0) / (n - t + 1))  # no good in the t first
    cmc[o : o + n] = 1 - miss
    cmc[o + n :] = 1
    return ap, cmc


class ExpectedEvaluator:
    """:class:`RankingEvaluator`'s interface, with expected values over
    the orders of tied scores."""

    def __init__(self, gallery_labels, gallery_cams, descending: bool = True):
        self.g_labels = np.asarray(gallery_labels)
        self.g_cams = np.asarray(gallery_cams)
        self.descending = descending
        self._cmc = np.zeros(len(self.g_labels))
        self._ap: list[float] = []
        self._first: list[int] = []

    def add(self, scores: np.ndarray, query_labels, query_cams) -> None:
        """Evaluate one block of queries, (B, G) scores."""
        good, junk = good_and_junk(query_labels, query_cams, self.g_labels, self.g_cams)
        for row, g, j in zip(scores, good, junk, strict=True):
            keys = -row[~j] if self.descending else row[~j]
            ap, cmc = expected_query(keys, g[~j], len(self.g_labels))
            self._ap.append(ap)
            self._cmc += cmc
            self._first.append(int(np.argmax(cmc > 0)) if cmc.any() else -1)

    def result(self) -> Metrics:
        if not self._ap:
            raise ValueError("no queries were evaluated")
        count = len(self._ap)
        ap = np.array(self._ap)
        first = np.array(self._first, dtype=np.int64)
        return Metrics(
            cmc=self._cmc / count, mAP=float(np.sum(ap)) / count, ap=ap, first_good=first
        )
