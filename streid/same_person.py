"""The odds that two training images show one person, from their look and their time gap:
the similarity step 4 ``--unlabeled`` clusters by in its rounds after the first.

Bayes' rule in odds, with the two streams taken as independent given the person (as the
paper's joint metric does):

    logit P(same | s, gap) = a + b s + log( p(gap | same) / p(gap | chance) )

- ``a + b s``: the log-odds from the cosine similarity s alone, a logistic regression
  (scikit-learn) of "same pseudo-identity" on s over image pairs of two cameras, fitted to
  the last round's pseudo-identities, its intercept corrected from the sampled pairs to the
  share of same-identity pairs among all pairs (King and Zeng, 2001);
- ``p(gap | same)``: the last round's spatial-temporal model (the smoothed histograms of its
  pseudo-identities);
- ``p(gap | chance)``: the same histograms of every pair of images of two cameras, whoever
  they show, smoothed alike (TFusion's random-pair distribution, Lv et al., CVPR 2018).

Fitted to the data, the visual term keeps its weight whatever the features' scale: with
features that tell everyone apart, ``b`` is large and no time gap overrules them; with weak
ones, the time gap decides more. A fixed mix such as Eqn. 9's cannot do both (its visual
factor saturates where cosines are high). Pairs of one camera, of two sessions or with a gap
past the last bin get no time evidence (a ratio of 1).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .all_scores import CHUNK
from .fusion import pair_index
from .interchange import Split
from .st_model import EPS, SpatialTemporalModel, smooth_histograms

PAIRS = 200_000  # image pairs of each class the visual term is fitted on, at most (drawn
# with replacement: no more than the pairs of one pseudo-identity there are)
FLOOR = 0.01  # a bin's floor, as a share of a uniform bin: a gap no pseudo-identity made
# is at most about 100 times less likely than by chance


def chance_histograms(cams, frames, sessions, num_cameras: int, num_bins: int, interval):
    """Step 4's histograms of every pair of images of two cameras (within a session), each
    ordered camera pair's normalised to sum 1: the time gaps of people met by chance.

    A pair's bin is the difference of the two images' time bins (within one bin of step 4's
    ``int(gap / interval)``), counted for all pairs at once as a cross-correlation (FFT).

    Returns:
        (num_cameras, num_cameras, num_bins) float64; ``[a][b][k]``: images of camera a
        about k bins after images of camera b. The diagonal (one camera) is 0.
    """
    hist = np.zeros((num_cameras, num_cameras, num_bins))
    keys = np.zeros(len(cams), dtype=np.int64) if sessions is None else np.asarray(sessions)
    for key in np.unique(keys):
        mine = keys == key
        times = np.asarray(frames[mine], dtype=np.float64)
        bins = ((times - times.min()) / interval).astype(np.int64)
        counts = np.zeros((num_cameras, int(bins.max()) + 1))
        np.add.at(counts, (np.asarray(cams[mine]) - 1, bins), 1)
        size = scipy.fft.next_fast_len(2 * counts.shape[1])
        spectrum = scipy.fft.rfft(counts, size)
        # corr[a, b, k] = sum_t counts[a, t + k] counts[b, t]
        corr = scipy.fft.irfft(spectrum[:, None, :] * np.conj(spectrum[None, :, :]), size)
        width = min(num_bins, counts.shape[1])
        hist[:, :, :width] += np.maximum(np.rint(corr[:, :, :width]), 0)
    hist[np.arange(num_cameras), np.arange(num_cameras)] = 0
    return hist / (hist.sum(axis=2, keepdims=True) + EPS)


def log_ratio_table(st: SpatialTemporalModel, chance: np.ndarray, sigma: float) -> np.ndarray:
    """``log p(gap | same) / p(gap | chance)`` for every entry of ``st.table`` (the trailing
    entry, no evidence, is 0); ``chance`` smoothed with ``sigma`` as ``st`` was."""
    floor = FLOOR / st.num_bins
    same = st.table[:-1]
    by_chance = smooth_histograms(chance, sigma).ravel()
    return np.append(np.log((same + floor) / (by_chance + floor)), 0.0)


def _pairs(pseudo: np.ndarray, cams: np.ndarray, rng, limit: int):
    """(i, j) index pairs, both of two cameras: up to ``limit`` of one pseudo-identity (no
    more than there are), and as many of any two images. Also the share of same-identity
    pairs among all pairs of two cameras."""
    kept = np.flatnonzero(pseudo >= 0)
    sizes = np.bincount(pseudo[kept])
    # The counts of pairs of two cameras: of one pseudo-identity, and of any two images.
    cell = np.unique(np.stack([pseudo[kept], cams[kept]]), axis=1, return_counts=True)[1]
    same_pairs = ((sizes**2).sum() - (cell**2).sum()) / 2
    per_camera = np.bincount(cams - 1)
    all_pairs = (len(cams) ** 2 - (per_camera**2).sum()) / 2
    limit = int(min(limit, same_pairs))
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    members = kept[np.argsort(pseudo[kept], kind="stable")]
    # Random members of one identity: the image i, then j among the members of its identity.
    i = rng.choice(kept, 4 * limit)
    j = members[start[pseudo[i]] + (rng.random(len(i)) * sizes[pseudo[i]]).astype(np.int64)]
    same = np.stack([i, j])[:, cams[i] != cams[j]][:, :limit]
    anyone = rng.integers(0, len(pseudo), (2, 4 * limit))
    anyone = anyone[:, cams[anyone[0]] != cams[anyone[1]]][:, : same.shape[1]]
    return same, anyone, same_pairs / all_pairs


def visual_log_odds(features: np.ndarray, pseudo, cams, seed: int = 0) -> tuple[float, float]:
    """(a, b) of the log-odds ``a + b s`` that two images of two cameras show one person,
    fitted to pseudo-identities (``features`` L2-normalised rows; ``pseudo`` -1 alone)."""
    if not (pseudo >= 0).any():
        return 0.0, 0.0  # no evidence either way: the time gap decides alone
    same, anyone, share = _pairs(pseudo, cams, np.random.default_rng(seed), PAIRS)
    if same.shape[1] == 0 or anyone.shape[1] == 0:
        return 0.0, 0.0  # no evidence either way: the time gap decides alone
    from sklearn.linear_model import LogisticRegression  # slow to import: where it is used

    s = [np.einsum("ij,ij->i", features[p[0]], features[p[1]]) for p in (same, anyone)]
    y = np.concatenate([np.ones(len(s[0])), np.zeros(len(s[1]))])
    fit = LogisticRegression().fit(np.concatenate(s)[:, None], y)
    b, a = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    # From the sampled odds of a same pair to their odds among all pairs of two cameras.
    share = min(max(share, 1e-12), 1 - 1e-12)
    return a + np.log(share / (1 - share)) - np.log(len(s[0]) / len(s[1])), b


def same_person_columns(train: Split, pseudo, histograms, chance, sigma, interval):
    """:class:`SamePersonColumns` of a round's pseudo-identities and histograms, and
    ``chance``, the :func:`chance_histograms` of the training images (``train``'s features
    L2-normalised)."""
    st = SpatialTemporalModel.from_histograms(histograms, sigma, interval)
    a, b = visual_log_odds(train.features, pseudo, train.cams)
    return SamePersonColumns(train, st, log_ratio_table(st, chance, sigma), a, b)


class SamePersonColumns:
    """A :class:`streid.matfile.ColumnSource` over the log-odds ``logit P(same | s, gap)`` of
    every pair of training images (module docstring), ``CHUNK`` columns per matrix product.

    The log-odds are handed out divided by twice the largest magnitude any pair can have,
    ``|a| + |b| + max |log ratio|`` (as ``|s| <= 1``), so that they lie in [-1/2, 1/2], where
    the re-ranking's ``2 - 2 S`` expects a similarity. The probability itself would not do: it
    rounds to 1 for every pair the model is sure of, and these would tie.

    Args:
        train: the training images, features L2-normalised.
        st: the last round's smoothed spatial-temporal model; ``log_ratio``: its
            :func:`log_ratio_table`; ``a``, ``b``: :func:`visual_log_odds`.
    """

    def __init__(self, train: Split, st: SpatialTemporalModel, log_ratio, a: float, b: float):
        self.train, self.st, self.log_ratio, self.a, self.b = train, st, log_ratio, a, b
        self.shape, self.dtype = (len(train), len(train)), np.dtype(np.float32)
        self.scale = 0.5 / (abs(a) + abs(b) + float(np.abs(log_ratio).max()) or 1.0)

    def _scores(self, similarity, index):
        logit = self.a + self.b * similarity + self.log_ratio[index]
        return (logit * self.scale).astype(np.float32)

    def columns_t(self, j0: int, j1: int) -> np.ndarray:
        out = np.empty((j1 - j0, len(self.train)), dtype=np.float32)
        for c0 in range(j0, j1, CHUNK):
            block = self.train[c0 : min(c0 + CHUNK, j1)]
            similarity = block.features @ self.train.features.T
            # S[r, c]: r in the query role, as the other column sources (ties of time differ)
            index = pair_index(self.train, block, self.st).T
            out[c0 - j0 : c0 - j0 + len(block)] = self._scores(similarity, index)
        return out

    def entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        a, b = self.train[rows], self.train[cols]
        similarity = np.einsum("ij,ij->i", a.features, b.features)
        sessions = (None, None) if a.sessions is None else (a.sessions, b.sessions)
        index = self.st.table_index(a.cams, a.frames, b.cams, b.frames, *sessions)
        return self._scores(similarity, index)
