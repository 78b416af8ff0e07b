"""CMC and mAP exactly as the original computes them, vectorised over blocks of queries.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .fusion import normalized, pair_scores
from .st_model import SpatialTemporalModel


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


def _search(flat, lo, hi, needles, right):
    """Vectorised binary search: per needle, the first index in ``flat[lo:hi]`` (sorted, NaN
    last) whose entry is >= needle (``right``: > needle), as an index into ``flat``."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(int(np.max(hi - lo, initial=0)).bit_length()):
        mid = (lo + hi) // 2
        entry = flat[np.minimum(mid, len(flat) - 1)]
        active = lo < hi
        before = entry <= needles if right else entry < needles
        lo = np.where(active & before, mid + 1, lo)
        hi = np.where(active & ~before, mid, hi)
    return lo


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


def _sorted_positions(keys, rows, cols):
    """The positions of the good images (``rows``, ``cols``) without ``np.argsort``.

    ``keys``: a writable copy of the rows that have a good image, lower is better, junk set
    to NaN (sorted last, never counted). Once the rows are sorted, a good image with key v
    sits after the non-junk images with a key < v and after the good images of its row
    tied with it. Where another non-junk image has exactly the key v, the position depends
    on how ``np.argsort`` orders ties: those rows are returned apart, for
    :func:`_full_sort_positions`. Ties with junk or between good images change no position
    (junk is not counted, tied good images take the same positions in either order), so
    they need no full sort.

    Returns (rows, r, tied): rows and positions in rank order, and the rows left out.
    """
    values = keys[rows, cols]
    keys.sort(axis=1)
    n, flat = keys.shape[1], keys.reshape(-1)
    lo = rows * n  # each row's segment of flat
    below = _search(flat, lo, lo + n, values, right=False) - lo
    upto = _search(flat, lo, lo + n, values, right=True) - lo
    order = np.lexsort((values, rows))  # each row's good images by key
    rows, values, below, upto = rows[order], values[order], below[order], upto[order]
    start, end = np.searchsorted(rows, rows, "left"), np.searchsorted(rows, rows, "right")
    good_below = _search(values, start, end, values, right=False)
    good_upto = _search(values, start, end, values, right=True)
    r = below + np.arange(len(rows)) - good_below  # tied good images: consecutive positions
    ambiguous = (upto - below > good_upto - good_below) | np.isnan(values)
    tied = np.unique(rows[ambiguous])
    keep = ~np.isin(rows, tied)
    return rows[keep], r[keep], tied


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
        self._junk_cols = np.flatnonzero(self.g_labels == -1)
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

        The positions are those of ``np.argsort`` of each row (see :func:`_sorted_positions`
        for how they are found without it); rows without a good image are not ranked.

        Args:
            scores: (B, G) scores (or distances) of B queries against the whole gallery.
            query_labels, query_cams: (B,) the queries' person and camera ids.
        """
        scores = np.asarray(scores)
        query_labels, query_cams = np.asarray(query_labels), np.asarray(query_cams)
        rows, cols, junk_rows, junk_cols = self._pairs(query_labels, query_cams)
        live = np.unique(rows)  # the queries with a good image
        if np.issubdtype(scores.dtype, np.floating):
            keys = scores[live]  # a copy
            if self.descending:
                np.negative(keys, out=keys)
            keys[:, self._junk_cols] = np.nan  # junk: NaN, sorted last, never counted
            in_live = np.isin(junk_rows, live)
            keys[np.searchsorted(live, junk_rows[in_live]), junk_cols[in_live]] = np.nan
            rows, r, tied = _sorted_positions(keys, np.searchsorted(live, rows), cols)
            rows, tied = live[rows], live[tied]
        else:  # no NaN to mark junk with: every row by the full sort
            rows, r, tied = rows[:0], rows[:0], live
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


TIES = ("argsort", "expected")


def make_evaluator(gallery_labels, gallery_cams, descending: bool = True, ties="argsort"):
    """A :class:`RankingEvaluator`, or for ``ties="expected"`` a
    :class:`streid.ties.ExpectedEvaluator`."""
    if ties == "argsort":
        return RankingEvaluator(gallery_labels, gallery_cams, descending=descending)
    if ties != "expected":
        raise ValueError(f"unknown ties {ties!r}, expected one of {TIES}")
    from .ties import ExpectedEvaluator  # it builds on this module

    return ExpectedEvaluator(gallery_labels, gallery_cams, descending=descending)


def evaluate(
    score_block,
    query_labels,
    query_cams,
    gallery_labels,
    gallery_cams,
    *,
    descending: bool = True,
    block_size: int = 256,
    desc: str = "evaluating",
    ties: str = "argsort",
) -> Metrics:
    """Rank the gallery for every query, block by block, and compute CMC and mAP.

    Args:
        score_block: callable taking a slice of the queries and returning their (B, G)
            scores (or distances), so the full (Q, G) matrix never has to exist at once.
        query_labels, query_cams: (Q,) person and camera ids of the queries.
        gallery_labels, gallery_cams: (G,) the same for the gallery.
        descending: True for scores (step 5), False for distances (step 6).
        block_size: queries per block.
        desc: label of the progress bar.
        ties: "argsort", the original's order of tied scores, or "expected": CMC and AP
            averaged over every order of them (:mod:`streid.ties`).
    """
    evaluator = make_evaluator(gallery_labels, gallery_cams, descending, ties)
    num_queries = len(query_labels)
    starts = range(0, num_queries, block_size)
    with tqdm(starts, desc=desc, unit="block", leave=False, disable=None) as bar:
        for start in bar:
            block = slice(start, min(start + block_size, num_queries))
            evaluator.add(score_block(block), query_labels[block], query_cams[block])
    return evaluator.result()


def evaluate_features(
    features, st: SpatialTemporalModel, fusion, stream="joint", block_size=256, ties="argsort"
):
    """Step 5: rank the gallery for every query by ``stream`` and compute CMC and mAP.

    Args:
        features: :class:`streid.interchange.FeatureSet` from ``pytorch_result.mat``; the
            features are L2-normalised here, as the original does.
        st: the smoothed spatial-temporal model.
        fusion: the joint metric's parameters (:class:`streid.fusion.Fusion`, or alpha).
        stream: "joint", "visual", "st" or "product" (:func:`streid.fusion.pair_scores`).
        block_size: queries ranked at a time; bounds memory, does not change the result.
        ties: "argsort" (the original's) or "expected" (see :func:`evaluate`).
    """
    st.check_query_gallery(features.query.cams, features.gallery.cams)
    query, gallery = normalized(features.query), normalized(features.gallery)
    return evaluate(
        lambda block: pair_scores(query[block], gallery, st, fusion, stream),
        query.labels,
        query.cams,
        gallery.labels,
        gallery.cams,
        block_size=block_size,
        desc=f"ranking ({stream})",
        ties=ties,
    )


def top_matches(query, gallery, st: SpatialTemporalModel, fusion, stream: str, k: int):
    """The first ``k`` gallery images of each query's ranking, junk left out, as evaluated.

    Args:
        query, gallery: :class:`streid.interchange.Split` (features not yet normalised).

    Returns:
        One (indices, good) pair per query: gallery indices in rank order and whether each
        is a true match.
    """
    q, g = normalized(query), normalized(gallery)
    scores = pair_scores(q, g, st, fusion, stream)
    good, junk = good_and_junk(q.labels, q.cams, g.labels, g.cams)
    matches = []
    for i in range(len(q)):
        ranked = np.argsort(-scores[i])
        ranked = ranked[~junk[i, ranked]][:k]
        matches.append((ranked, good[i, ranked]))
    return matches
