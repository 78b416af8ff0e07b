"""The paper's Figure 4 (and a fifth panel) from a run's features and spatial-temporal model.

- (a) CMC curves (ranks 1-20): the spatial-temporal stream alone, the visual stream alone,
  the joint metric;
- (b) the visual stream, the Eqn. 5 baseline (``--stream product``), the joint metric;
- (c) rank-1 as lambda0 or lambda1 goes from 0 to 3 in steps of 0.2;
- (d) rank-1 as gamma0 or gamma1 goes from 0 to 10 in steps of 1;
- (e) beyond the paper: rank-1 and mAP against the Parzen sigma (2 to 100 bins).

Every ranking shares what does not change between settings: the similarities and the
spatial-temporal table indices of all pairs are computed once; a setting only recombines them
(and panel (e) only swaps the smoothed table), then ranks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tqdm import tqdm

from .errors import check_memory
from .evaluation import make_evaluator
from .fusion import Fusion, normalized, pair_index, stream_scores
from .interchange import FeatureSet
from .metrics import Metrics
from .st_model import SpatialTemporalModel

LAMBDAS = tuple(round(0.2 * i, 1) for i in range(16))  # 0, 0.2, ..., 3
GAMMAS = tuple(range(11))  # 0, 1, ..., 10
SIGMAS = (2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)
CMC_RANKS = 20
# The paper's published points (DukeMTMC-reID, rank-1 in %): (panel, curve) -> value.
PAPER = {
    ("a", "st"): 5.5,
    ("a", "visual"): 83.8,
    ("a", "joint"): 94.0,
    ("b", "visual"): 83.8,
    ("b", "product"): 86.9,
    ("b", "joint"): 94.0,
}
BLOCK = 256  # queries per block of the precomputed pairs


@dataclass
class Point:
    """One ranking of the figure: a row of figure4.csv."""

    panel: str
    curve: str
    parameter: str
    value: float | str
    metrics: Metrics

    def row(self) -> dict:
        cmc = self.metrics.cmc
        top = [float(cmc[min(k, len(cmc)) - 1]) for k in (1, 5, 10)]
        return {
            "panel": self.panel,
            "curve": self.curve,
            "parameter": self.parameter,
            "value": self.value,
            "rank1": f"{top[0]:.6f}",
            "rank5": f"{top[1]:.6f}",
            "rank10": f"{top[2]:.6f}",
            "mAP": f"{self.metrics.mAP:.6f}",
        }


class Pairs:
    """The similarities and table indices of every (query, gallery) pair, by query blocks."""

    def __init__(self, features: FeatureSet, st: SpatialTemporalModel):
        # Every pair's similarity (float32) and table index (int32, or int64) at once.
        check_memory(
            (len(features.query), len(features.gallery)),
            4 + 8,
            "figure 4's similarities and time-gap bins of every query-gallery pair",
            "run it on fewer queries (a pytorch_result.mat of a sample of them)",
        )
        q, g = normalized(features.query), normalized(features.gallery)
        self.query, self.gallery = q, g
        self.blocks = []
        for start in range(0, len(q), BLOCK):
            b = q[start : start + BLOCK]
            index = pair_index(b, g, st)
            self.blocks.append((slice(start, start + len(b)), b.features @ g.features.T, index))

    def rank(self, score, ties: str) -> Metrics:
        """CMC and mAP of the ranking by ``score(similarity, index)`` of each block."""
        evaluator = make_evaluator(self.gallery.labels, self.gallery.cams, True, ties)
        for rows, similarity, index in self.blocks:
            scores = score(similarity, index)
            evaluator.add(scores, self.query.labels[rows], self.query.cams[rows])
        return evaluator.result()


def scorer(stream: str, st: SpatialTemporalModel, fusion: Fusion):
    """The score of ``stream`` from a block's similarities and table indices, as
    :func:`streid.fusion.pair_scores` computes it."""
    return lambda similarity, index: stream_scores(stream, similarity, index, st, fusion)


def figure4_points(features, histograms, interval, sigma, fusion: Fusion, ties="argsort"):
    """Every point of panels (a)-(e).

    Args:
        features: the run's :class:`streid.interchange.FeatureSet`.
        histograms, interval: step 4's histograms and time units per bin.
        sigma: the Parzen width of panels (a)-(d), in bins.
        fusion: the joint metric's parameters of panels (a), (b), and the base of (c), (d).
        ties: "argsort" or "expected" (see :func:`streid.evaluation.evaluate`).
    """
    st = SpatialTemporalModel.from_histograms(histograms, sigma, interval)
    st.check_query_gallery(features.query.cams, features.gallery.cams)
    pairs = Pairs(features, st)
    jobs = [("a", s, "", "", st, fusion, s) for s in ("st", "visual", "joint")]
    jobs += [("b", "product", "", "", st, fusion, "product")]
    for panel, names, values in (("c", ("lambda0", "lambda1"), LAMBDAS),
                                 ("d", ("gamma0", "gamma1"), GAMMAS)):  # fmt: skip
        for name in names:
            jobs += [(panel, name, name, v, st, replace(fusion, **{name: v}), "joint")
                     for v in values]  # fmt: skip
    for value in SIGMAS:
        smoothed = SpatialTemporalModel.from_histograms(histograms, value, interval)
        jobs += [("e", "sigma", "smooth", value, smoothed, fusion, "joint")]
    points, done = [], {}
    for panel, curve, parameter, value, model, params, stream in tqdm(
        jobs, desc="figure 4", leave=False
    ):
        key = (stream, id(model), params)
        if key not in done:  # panel (b)'s visual and joint are panel (a)'s
            done[key] = pairs.rank(scorer(stream, model, params), ties)
        points.append(Point(panel, curve, parameter, value, done[key]))
    st_only, visual, joint, product = points[:4]  # (b) shares (a)'s visual and joint
    return [st_only, visual, joint, replace(visual, panel="b"), product,
            replace(joint, panel="b"), *points[4:]]  # fmt: skip
