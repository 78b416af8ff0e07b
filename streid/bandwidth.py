"""``--smooth auto``: the Parzen width chosen from the training names alone.

The paper fixes sigma at 50 bins of 100 frames; a camera network of one's own has its own
time units, and even on Market-1501 and DukeMTMC-reID other widths rank better. Here sigma
is the standard bandwidth choice of a Parzen window: the one that maximises the held-out
log-likelihood of the training time gaps. The identities are split into ``FOLDS`` folds;
each fold's gaps are scored by the smoothed histograms of the others (as step 5 would smooth
them), and the mean log-probability is taken over every gap. It uses no features and never
touches the test split; step 4 runs it and records the choice in ``pytorch_result2.mat``.
"""

from __future__ import annotations

import numpy as np

from .st_model import gap_histograms, smooth_histograms, walk_gaps

FOLDS = 5
# The widths tried, in bins: from a few bins to a fifth of the histograms' span.
CANDIDATES = (1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500)
# The probability a gap gets where the smoothed histogram is 0 (beyond 3 sigma of every
# training gap): a floor, so that one such gap counts against a width without making the
# likelihood -inf.
FLOOR = 1e-9


def held_out_log_likelihood(fold_of, later, earlier, bins, num_cameras, num_bins, sigmas):
    """The mean held-out log-probability of the gaps, for each sigma of ``sigmas``."""
    total = np.zeros(len(sigmas))
    for fold in np.unique(fold_of):
        train, test = fold_of != fold, fold_of == fold
        hist = gap_histograms(later[train], earlier[train], bins[train], num_cameras, num_bins)
        for s, sigma in enumerate(sigmas):
            p = smooth_histograms(hist, sigma)[later[test], earlier[test], bins[test]]
            total[s] += np.log(np.maximum(p, FLOOR)).sum()
    return total / len(bins)


def choose_sigma(labels, cams, frames, num_cameras, num_bins, interval, sessions=None,
                 folds: int = FOLDS, seed: int = 0):  # fmt: skip
    """The Parzen sigma (in bins) that maximises the held-out log-likelihood of the
    training gaps, over :data:`CANDIDATES` up to a fifth of ``num_bins``.

    Args:
        labels, cams, frames, sessions: the training images, as for step 4.
        num_cameras, num_bins, interval: the dataset's.
        folds: identities are split into this many folds (fewer if there are fewer).

    Returns:
        (sigma, {sigma: mean held-out log-likelihood}), or (None, {}) when there are too few
        identities with a gap to hold any out.
    """
    persons, later, earlier, gap = walk_gaps(labels, cams, frames, num_cameras, sessions)
    bins = np.minimum((gap / interval).astype(np.int64), num_bins - 1)
    people = np.unique(persons)
    if len(people) < 2:
        return None, {}
    order = np.random.default_rng(seed).permutation(len(people))
    fold_of_person = np.empty(len(people), dtype=np.int64)
    fold_of_person[order] = np.arange(len(people)) % min(folds, len(people))
    fold_of = fold_of_person[np.searchsorted(people, persons)]
    sigmas = [s for s in CANDIDATES if s <= max(1, num_bins / 5)]
    scores = held_out_log_likelihood(fold_of, later, earlier, bins, num_cameras, num_bins, sigmas)
    best = sigmas[int(np.argmax(scores))]
    return best, dict(zip(sigmas, scores.tolist(), strict=True))
