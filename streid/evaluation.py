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

from dataclasses import dataclass, replace

import numpy as np
from tqdm import tqdm

from .st_model import SpatialTemporalModel, normalize_rows, pair_scores


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


class RankingEvaluator:
    """Accumulates CMC and AP over blocks of queries.

    Args:
        gallery_labels: (G,) person ids (-1 junk, 0 distractor).
        gallery_cams: (G,) camera ids.
        descending: rank by descending score (step 5) or ascending distance (step 6).
    """

    def __init__(self, gallery_labels, gallery_cams, descending: bool = True):
        self.g_labels = np.asarray(gallery_labels)
        self.g_cams = np.asarray(gallery_cams)
        self.descending = descending
        self._cmc_counts = np.zeros(len(self.g_labels), dtype=np.int64)
        self._ap: list[np.ndarray] = []
        self._first: list[np.ndarray] = []

    def add(self, scores: np.ndarray, query_labels, query_cams) -> None:
        """Evaluate one block of queries.

        Args:
            scores: (B, G) scores (or distances) of B queries against the whole gallery.
            query_labels, query_cams: (B,) the queries' person and camera ids.
        """
        order = np.argsort(-scores if self.descending else scores, axis=1)
        good, junk = good_and_junk(
            query_labels, query_cams, self.g_labels[order], self.g_cams[order]
        )
        position = np.cumsum(~junk, axis=1, dtype=np.int64) - 1  # rank after junk removal

        rows, cols = np.nonzero(good)  # row-major: each query's good images in rank order
        r = position[rows, cols]
        n_block = scores.shape[0]
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
    """
    evaluator = RankingEvaluator(gallery_labels, gallery_cams, descending=descending)
    num_queries = len(query_labels)
    starts = range(0, num_queries, block_size)
    with tqdm(starts, desc=desc, unit="block", leave=False, disable=None) as bar:
        for start in bar:
            block = slice(start, min(start + block_size, num_queries))
            evaluator.add(score_block(block), query_labels[block], query_cams[block])
    return evaluator.result()


def evaluate_features(
    features, st: SpatialTemporalModel, alpha: float, stream: str = "joint", block_size=256
):
    """Step 5: rank the gallery for every query by ``stream`` and compute CMC and mAP.

    Args:
        features: :class:`streid.artifacts.FeatureSet` from ``pytorch_result.mat``; the
            features are L2-normalised here, as the original does.
        st: the smoothed spatial-temporal model.
        alpha: logistic smoothing weight of the joint score (``--alpha``).
        stream: "joint", "visual" or "st" (see :func:`streid.st_model.pair_scores`).
        block_size: queries ranked at a time; bounds memory, does not change the result.
    """
    st.check_cameras(features.query.cams, "query_cam")
    st.check_cameras(features.gallery.cams, "gallery_cam")
    query = replace(features.query, features=normalize_rows(features.query.features))
    gallery = replace(features.gallery, features=normalize_rows(features.gallery.features))
    return evaluate(
        lambda block: pair_scores(query[block], gallery, st, alpha, stream),
        query.labels,
        query.cams,
        gallery.labels,
        gallery.cams,
        block_size=block_size,
        desc=f"ranking ({stream})",
    )


def top_matches(query, gallery, st: SpatialTemporalModel, alpha: float, stream: str, k: int):
    """The first ``k`` gallery images of each query's ranking, junk left out, as evaluated.

    Args:
        query, gallery: :class:`streid.artifacts.Split` (features not yet normalised).

    Returns:
        One (indices, good) pair per query: gallery indices in rank order and whether each
        is a true match.
    """
    q = replace(query, features=normalize_rows(query.features))
    g = replace(gallery, features=normalize_rows(gallery.features))
    scores = pair_scores(q, g, st, alpha, stream)
    good, junk = good_and_junk(q.labels, q.cams, g.labels, g.cams)
    matches = []
    for i in range(len(q)):
        ranked = np.argsort(-scores[i])
        ranked = ranked[~junk[i, ranked]][:k]
        matches.append((ranked, good[i, ranked]))
    return matches
