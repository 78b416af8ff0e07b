"""Step 5's ranking: score blocks of queries against the gallery, rank them, and evaluate
with :mod:`streid.metrics`; the first matches of each query, for pictures and ranking.csv;
the warnings of a ranking step on its input.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from .errors import warning
from .fusion import normalized, pair_scores
from .metrics import ExpectedEvaluator, Metrics, RankingEvaluator, count_unmatched, good_and_junk
from .st_model import SpatialTemporalModel

TIES = ("argsort", "expected")


def make_evaluator(gallery_labels, gallery_cams, descending: bool = True, ties="argsort"):
    """A :class:`RankingEvaluator`, or for ``ties="expected"`` a
    :class:`streid.metrics.ExpectedEvaluator`."""
    if ties == "argsort":
        return RankingEvaluator(gallery_labels, gallery_cams, descending=descending)
    if ties != "expected":
        raise ValueError(f"unknown ties {ties!r}, expected one of {TIES}")
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
    observers=(),
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
            averaged over every order of them (:class:`streid.metrics.ExpectedEvaluator`).
        observers: more consumers of each block, with the evaluators' ``add`` (e.g.
            :class:`streid.ranking.TopK`).
    """
    evaluator = make_evaluator(gallery_labels, gallery_cams, descending, ties)
    num_queries = len(query_labels)
    starts = range(0, num_queries, block_size)
    with tqdm(starts, desc=desc, unit="block", leave=False, disable=None) as bar:
        for start in bar:
            block = slice(start, min(start + block_size, num_queries))
            scores = score_block(block)
            for consumer in (evaluator, *observers):
                consumer.add(scores, query_labels[block], query_cams[block])
    return evaluator.result()


def evaluate_features(
    features,
    st: SpatialTemporalModel,
    fusion,
    stream="joint",
    block_size=256,
    ties="argsort",
    observers=(),
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
        observers: see :func:`evaluate`.
    """
    st.check_query_gallery(features.query.cams, features.gallery.cams)
    query, gallery = normalized(features.query), normalized(features.gallery)
    # One block's similarities and scores, reused from block to block.
    shape = (min(block_size, len(query)), len(gallery))
    similarity = np.empty(shape, dtype=np.result_type(query.features, gallery.features))
    scores = np.empty(shape)

    def score_block(block: slice) -> np.ndarray:
        rows = block.stop - block.start
        return pair_scores(query[block], gallery, st, fusion, stream,
                           similarity=similarity[:rows], out=scores[:rows])  # fmt: skip

    return evaluate(
        score_block,
        query.labels,
        query.cams,
        gallery.labels,
        gallery.cams,
        block_size=block_size,
        desc=f"ranking ({stream})",
        ties=ties,
        observers=observers,
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


def warn_unmatched(query_labels, query_cams, gallery_labels, gallery_cams) -> None:
    """Steps 5 and 6: one warning line for the queries without a good gallery image, which
    the metric counts as the original does."""
    unmatched = count_unmatched(query_labels, query_cams, gallery_labels, gallery_cams)
    if unmatched:
        warning(
            f"{unmatched} of {len(query_labels)} queries have no gallery image of their "
            f"person from another camera: they count as in the original (no CMC hit, AP 0, "
            f"and one query in both averages)"
        )


def warn_oddities(query, gallery, st: SpatialTemporalModel | None = None) -> None:
    """A ranking step's warnings on its input: queries without a true match, and (with
    ``st``) histograms of more cameras than the images use."""
    if st is not None:
        st.warn_unused_cameras(query.cams, gallery.cams)
    warn_unmatched(query.labels, query.cams, gallery.labels, gallery.cams)
