"""Choosing MSMT17's spatial-temporal settings without touching its test split.

    python -m benchmarks.msmt17_settings            # about 2 minutes on 2 cores

The 1,041 training identities are split into two halves (a seeded permutation). The
histograms are learnt from one half's training names (list_train + list_val, with sessions);
the other half's list_val images are the queries and its list_train images the gallery; then
the halves swap, and the two folds are averaged. For every (interval, sigma) of the grid it
prints rank-1 and mAP of the spatial-temporal stream alone and of the joint score with
simulated 512-d appearance features (identity centre + camera shift + noise, as
benchmarks/simulate.py). num_bins always covers a whole session (frames 0-1985).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from benchmarks.simulate import real_names, simulated_features
from streid.datasets import MSMT17
from streid.evaluation import evaluate_features
from streid.interchange import FeatureSet, Split
from streid.st_model import SpatialTemporalModel, camera_pair_histograms

FRAMES_PER_SESSION = 1986


def folds(seed: int):
    """Two (fit, held-out) splits of the training names: (names, ids) of each part."""
    train = real_names(MSMT17, "train")[1]
    val = real_names(MSMT17, "val")[1]
    ids = np.unique(train.labels)
    half = set(np.random.default_rng(seed).permutation(ids)[: len(ids) // 2].tolist())
    for fit_half in (True, False):
        fit = [np.array([(lab in half) == fit_half for lab in n.labels]) for n in (train, val)]
        yield train, val, fit


def subset(names, mask):
    sessions = None if names.sessions is None else names.sessions[mask]
    return names.labels[mask], names.cams[mask], names.frames[mask], sessions


def evaluate_fold(train, val, fit, interval, sigma, noise, seed):
    """(ST rank-1, ST mAP, joint rank-1, joint mAP, visual mAP) of one fold and setting."""
    parts = [subset(train, fit[0]), subset(val, fit[1])]
    labels, cams, frames, sessions = (np.concatenate(v) for v in zip(*parts, strict=True))
    targets = np.unique(labels, return_inverse=True)[1]
    num_bins = math.ceil(FRAMES_PER_SESSION / interval)
    hist = camera_pair_histograms(targets, cams, frames, 15, num_bins, interval, sessions)
    st = SpatialTemporalModel.from_histograms(hist, sigma, interval)
    out = []
    q, g = subset(val, ~fit[1]), subset(train, ~fit[0])
    feats = [
        simulated_features(s[0], s[1], dim=512, noise=noise, seed=seed, split_seed=k)
        for k, s in enumerate((q, g))
    ]
    features = FeatureSet(Split(feats[0], *q), Split(feats[1], *g))
    for stream in ("st", "joint", "visual"):
        m = evaluate_features(features, st, 5.0, stream)
        out += [float(m.cmc[0]), m.mAP]
    return np.array(out[:4] + [out[5]])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=float, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[1, 2, 5, 10, 20, 50])
    parser.add_argument("--noise", type=float, default=2.0, help="appearance noise")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = list(folds(args.seed))
    print(f"{'interval':>8} {'sigma':>6} {'sigma x interval':>16} | {'ST r1':>6} {'ST mAP':>6} "
          f"| {'joint r1':>8} {'joint mAP':>9} | visual mAP")  # fmt: skip
    for interval in args.intervals:
        for sigma in args.sigmas:
            r = np.mean(
                [evaluate_fold(*d, interval, sigma, args.noise, args.seed) for d in data], 0
            )
            print(
                f"{interval:8g} {sigma:6g} {interval * sigma:16g} | {100 * r[0]:6.1f} "
                f"{100 * r[1]:6.1f} | {100 * r[2]:8.1f} {100 * r[3]:9.1f} | {100 * r[4]:6.1f}"
            )


if __name__ == "__main__":
    main()
