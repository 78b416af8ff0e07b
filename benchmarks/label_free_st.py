"""The spatial-temporal model learnt without identity labels, against the supervised one.

    python -m benchmarks.label_free_st              # the three datasets; about 50 minutes
    python -m benchmarks.label_free_st --datasets market --strengths weak \\
        --eps 0.5 0.6 0.7 --min_samples 2 4       # a sweep of the method's settings

On the real names of Market-1501, DukeMTMC-reID and MSMT17 (its train_all: list_train and
list_val, with sessions; 3,000 of its queries), appearance is simulated for the query,
gallery and training images alike (512-d: identity centre + camera shift + noise,
``benchmarks/simulate.py``), at four strengths (the noise). For each dataset, strength and
setting it prints rank-1 and mAP of the joint score and of the spatial-temporal stream
alone, ranked by:

- ``visual``: appearance alone;
- ``supervised``: step 4 from the training identities;
- ``label-free r1, r2, ...``: step 4 ``--unlabeled`` (:mod:`streid.label_free`), round by
  round, with the pseudo-identities' pairwise precision and recall and the round's time;
- ``mutual nearest``: for reference, every pair of training images of two cameras that are
  each other's most similar image in the other's camera, taken as one identity.

``gain`` is the share of the supervised model's mAP gain over appearance alone that a model
recovers. Then step 4 ``--unlabeled`` runs as a user runs it, on each dataset's weak features,
and its wall time and peak memory are printed. The seed (10) is neither one the tests use
nor one the defaults were chosen on (0 and 1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import run_process
from benchmarks.simulate import real_names, simulated_features, train_targets
from streid.artifacts import FEATURES_FILE, TRAIN_FEATURES_FILE
from streid.dataset_yaml import write_spec
from streid.datasets import DUKE, MARKET, MSMT17, Names
from streid.errors import UserError
from streid.evaluation import evaluate_features
from streid.fusion import Fusion, normalize_rows
from streid.interchange import FeatureSet, Split, save_features, save_train_features
from streid.label_free import Clustering, clustered, learn_rounds
from streid.st_model import SpatialTemporalModel, camera_pair_histograms

ROOT = Path(__file__).resolve().parent.parent
SPECS = {"market": MARKET, "duke": DUKE, "msmt17": MSMT17}
STRENGTHS = {"strong": 2.0, "moderate": 2.7, "weak": 3.0, "very-weak": 4.5}  # noise
STEP = {"market": "gen_st_model_market.py", "duke": "gen_st_model_duke.py"}
# MSMT17's rankings are of this many of its 11,659 queries (against all 82,161 gallery
# images): the spatial-temporal stream alone ties so much that each of its rows is sorted
# whole, minutes per ranking at full size.
MSMT17_QUERIES = 3000


def simulated(spec, noise: float, seed: int, dim: int = 512) -> tuple[FeatureSet, Split]:
    """Query, gallery and training images of ``spec`` with simulated features; for MSMT17,
    :data:`MSMT17_QUERIES` of its queries (picked by ``seed``)."""
    loners = (-1, 0) if spec.key in ("market", "duke") else (-1,)  # MSMT17's person 0 is real
    parts = {"train": ("train", "val") if spec.key == "msmt17" else ("train",)}
    splits = {}
    # split_seed 1-3: 0 would replay the centres' random stream as the noise.
    for k, split in enumerate(("query", "gallery", "train"), 1):
        parsed = [real_names(spec, part)[1] for part in parts.get(split, (split,))]
        names = Names(*(np.concatenate(field) if field[0] is not None else None
                        for field in zip(*parsed, strict=True)))  # fmt: skip
        feats = simulated_features(names.labels, names.cams, dim=dim, noise=noise, seed=seed,
                                   split_seed=k, loners=loners)  # fmt: skip
        splits[split] = Split(feats, *names)
    query = splits["query"]
    if spec.key == "msmt17":
        pick = np.random.default_rng(seed).choice(len(query), MSMT17_QUERIES, replace=False)
        query = query[np.sort(pick)]
    return FeatureSet(query, splits["gallery"]), splits["train"]


def histograms(spec, labels, train: Split) -> np.ndarray:
    """Step 4's histograms of the training images under ``labels`` (-1: left out)."""
    labels, cams, frames, sessions = clustered(labels, train)
    return camera_pair_histograms(labels, cams, frames, spec.num_cameras, spec.num_bins,
                                  spec.interval, sessions)  # fmt: skip


def mutual_nearest(train: Split, block: int = 1024) -> np.ndarray:
    """Pseudo-identities of two images: pairs of two cameras each the other's most similar
    image among the other camera's images (-1 for every other image)."""
    feats = normalize_rows(train.features)
    num, cams = len(train), train.cams
    best = np.empty((num, int(cams.max()) + 1), dtype=np.int64)  # best image in each camera
    for r0 in range(0, num, block):
        scores = feats[r0 : r0 + block] @ feats.T
        for c in np.unique(cams):
            in_c = np.flatnonzero(cams == c)
            best[r0 : r0 + block, c] = in_c[np.argmax(scores[:, in_c], axis=1)]
    i = np.arange(num)
    pseudo = np.full(num, -1, dtype=np.int64)
    for c in np.unique(cams):
        j = best[:, c]
        mutual = (cams != c) & (best[j, cams] == i) & (i < j)
        ids = np.arange(mutual.sum()) + pseudo.max() + 1
        pseudo[i[mutual]], pseudo[j[mutual]] = ids, ids
    return pseudo


class Table:
    """Evaluates and prints one row per ranking of a dataset and strength."""

    def __init__(self, spec, features: FeatureSet):
        self.spec, self.features = spec, features
        self.visual = self.supervised = None

    def metrics(self, hist, stream):
        st = SpatialTemporalModel.from_histograms(hist, self.spec.smooth, self.spec.interval)
        m = evaluate_features(self.features, st, Fusion(), stream)
        return 100 * float(m.cmc[0]), 100 * m.mAP

    def row(self, label: str, hist, extra: str = "") -> None:
        joint, st = self.metrics(hist, "joint"), self.metrics(hist, "st")
        if self.visual is None:
            self.visual = self.metrics(hist, "visual")
            print(f"  {'visual':<22} joint {self.visual[0]:5.1f} / {self.visual[1]:5.2f}")
        if self.supervised is None:
            self.supervised = joint
        gain = (joint[1] - self.visual[1]) / (self.supervised[1] - self.visual[1])
        print(f"  {label:<22} joint {joint[0]:5.1f} / {joint[1]:5.2f}   ST {st[0]:5.1f} / "
              f"{st[1]:5.2f}   gain {100 * gain:4.0f}%{extra}", flush=True)  # fmt: skip


def compare(spec, strength: str, seed: int, settings: list[Clustering]) -> None:
    """Every row of one dataset and strength."""
    features, train = simulated(spec, STRENGTHS[strength], seed)
    print(f"{spec.title}, {strength} appearance (noise {STRENGTHS[strength]}), seed {seed}")
    table = Table(spec, features)
    table.row("supervised", histograms(spec, train_targets(train.labels), train))
    table.row("mutual nearest", histograms(spec, mutual_nearest(train), train))
    for clustering in settings:
        print(f"  label-free: {clustering}")
        copy = replace(train, features=train.features.copy())
        try:
            for r in learn_rounds(copy, spec.num_cameras, spec.num_bins, spec.interval,
                                  spec.smooth, clustering):  # fmt: skip
                identities = int(r.pseudo.max()) + 1
                extra = (f"   {identities} ids, precision {r.precision:.3f}, recall "
                         f"{r.recall:.3f}, {r.seconds:.0f} s")  # fmt: skip
                table.row(f"label-free r{r.number}", r.histograms, extra)
        except UserError as err:  # the step's own message, e.g. no pseudo-identity
            print(f"  label-free: step 4 stops: {err}")


def as_a_user(spec, seed: int) -> None:
    """Step 4 --unlabeled as the process a user starts, on the weak features: time, memory."""
    features, train = simulated(spec, STRENGTHS["weak"], seed)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "model" / "bench"
        run.mkdir(parents=True)
        save_features(run / FEATURES_FILE, features.query, features.gallery)
        save_train_features(run / TRAIN_FEATURES_FILE, train)
        del features, train
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        write_spec(spec, data_dir)
        script = ROOT / STEP.get(spec.key, "gen_st_model.py")
        command = [sys.executable, str(script), "--name", "bench", "--data_dir", str(data_dir),
                   "--unlabeled"]  # fmt: skip
        seconds, gb, lines = run_process(command, cwd=tmp)
    print(f"{spec.title}: {script.name} --unlabeled, weak features: {seconds:.0f} s, peak "
          f"{gb:.2f} GB; {lines[-1]}")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--strengths", nargs="+", default=list(STRENGTHS), choices=STRENGTHS)
    parser.add_argument("--seed", type=int, default=10)
    default = Clustering()
    parser.add_argument("--eps", type=float, nargs="+", default=[default.eps])
    parser.add_argument("--min_samples", type=int, nargs="+", default=[default.min_samples])
    parser.add_argument("--rounds", type=int, default=default.rounds)
    parser.add_argument("--no_step", action="store_true", help="skip the step's own timing")
    args = parser.parse_args(argv)

    settings = [
        Clustering(rounds=args.rounds, eps=eps, min_samples=ms)
        for eps in args.eps for ms in args.min_samples
    ]  # fmt: skip
    start = time.perf_counter()
    for key in args.datasets:
        for strength in args.strengths:
            compare(SPECS[key], strength, args.seed, settings)
    if not args.no_step:
        for key in args.datasets:
            as_a_user(SPECS[key], args.seed)
    print(f"({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
