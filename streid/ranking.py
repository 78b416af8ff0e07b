"""``ranking.csv`` (``--save_ranking K``, steps 5 and 6.2): the first K gallery images of
every query's ranking, as the evaluation ranks them.

Each query's gallery is sorted with ``np.argsort`` (descending scores, or ascending distances
for step 6.2), as the original and :class:`streid.metrics.RankingEvaluator` do, and its junk
(same person and camera, and person -1) is left out, as the metric leaves it out; ranks then
count from 1. ``pytorch_result.mat`` holds no image paths, so the images are named by their
0-based row in it (``query_index``, ``gallery_index``), with their person, camera and time.
"""

from __future__ import annotations

import csv

import numpy as np

from .files import atomic_output
from .metrics import good_and_junk

COLUMNS = (
    "query_index", "query_person", "query_camera", "query_time", "rank",
    "gallery_index", "gallery_person", "gallery_camera", "gallery_time", "{score}", "match",
)  # fmt: skip


class TopK:
    """The first ``k`` non-junk gallery images of each query, collected block by block with
    the evaluators' interface (``add(scores, query_labels, query_cams)``).

    Attributes:
        indices: (Q, k') gallery indices in rank order, k' = min(k, gallery size); -1 past
            the end of a query's non-junk gallery.
        scores: (Q, k') their scores (or distances).
    """

    def __init__(self, k: int, gallery_labels, gallery_cams, descending: bool = True):
        self.k = min(k, len(gallery_labels))
        self.g_labels, self.g_cams = np.asarray(gallery_labels), np.asarray(gallery_cams)
        self.descending = descending
        self._indices: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []

    def add(self, scores: np.ndarray, query_labels, query_cams) -> None:
        scores = np.asarray(scores)
        _, junk = good_and_junk(query_labels, query_cams, self.g_labels, self.g_cams)
        order = np.argsort(-scores if self.descending else scores, axis=1)
        kept = ~np.take_along_axis(junk, order, axis=1)
        slot = np.cumsum(kept, axis=1) - 1  # the rank of each kept image, from 0
        take = kept & (slot < self.k)
        rows, cols = np.nonzero(take)
        indices = np.full((len(scores), self.k), -1, dtype=np.int64)
        indices[rows, slot[rows, cols]] = order[rows, cols]
        self._indices.append(indices)
        self._scores.append(np.take_along_axis(scores, np.maximum(indices, 0), axis=1))

    @property
    def indices(self) -> np.ndarray:
        return np.concatenate(self._indices) if self._indices else np.zeros((0, self.k), int)

    @property
    def scores(self) -> np.ndarray:
        return np.concatenate(self._scores) if self._scores else np.zeros((0, self.k))


def _number(value) -> str:
    """A label, camera or time as the .mat holds it: whole numbers without a decimal point."""
    value = value.item()
    return repr(value) if isinstance(value, float) else str(value)


def save_ranking(path, top: TopK, query, gallery, score: str = "score") -> int:
    """Write ``ranking.csv`` atomically: one row per query and rank, in query then rank order.

    Args:
        top: the collected :class:`TopK` of every query of ``query``.
        query, gallery: :class:`streid.interchange.Split` (only labels, cams, frames read).
        score: the name of the score column ("score", or "distance" for step 6.2).

    Returns:
        The number of rows written.
    """
    indices, scores = top.indices, top.scores
    count = 0
    with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([c.format(score=score) for c in COLUMNS])
        for q, (row, values) in enumerate(zip(indices, scores, strict=True)):
            q_cols = [q, _number(query.labels[q]), _number(query.cams[q]),
                      _number(query.frames[q])]  # fmt: skip
            for rank, (g, value) in enumerate(zip(row, values, strict=True), start=1):
                if g < 0:
                    break
                match = int(gallery.labels[g] == query.labels[q])  # junk is left out
                writer.writerow(q_cols + [rank, g, _number(gallery.labels[g]),
                                          _number(gallery.cams[g]), _number(gallery.frames[g]),
                                          repr(float(value)), match])  # fmt: skip
                count += 1
    return count
