"""CMC and AP as expected values over the orders of tied scores (``--ties expected``).

The original ranks the gallery with ``np.argsort``, and where scores tie (the
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

import numpy as np

from .evaluation import Metrics, good_and_junk


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
    """:class:`streid.evaluation.RankingEvaluator`'s interface, with expected values over
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
