"""figure4.py: the paper's Figure 4 and its fifth panel, on a run."""

import csv

import numpy as np
import pytest
from PIL import Image

import figure4
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.datasets import DUKE
from streid.evaluation import evaluate_features
from streid.figure4 import GAMMAS, LAMBDAS, SIGMAS, Pairs, figure4_points, scorer
from streid.fusion import Fusion
from streid.interchange import FeatureSet
from streid.st_model import SpatialTemporalModel, smooth_histograms
from tests.test_evaluation import tiny_case


def same(a, b) -> bool:
    return np.array_equal(a.cmc, b.cmc) and np.array_equal(a.ap, b.ap) and a.mAP == b.mAP


@pytest.mark.parametrize("seed", range(3))
def test_each_extreme_collapses_to_one_stream(seed):
    # One-hot features: similarities are 0 or 1 exactly, so the logistic maps keep every tie
    # and every order, and a single stream's ranking must come back exactly.
    features, dist = tiny_case(seed)
    st = SpatialTemporalModel(smooth_histograms(dist, 1.0), interval=10)
    pairs = Pairs(features, st)
    visual = pairs.rank(scorer("visual", st, Fusion()), "argsort")
    st_only = pairs.rank(scorer("st", st, Fusion()), "argsort")
    for extreme, alone in [
        (Fusion(lambda1=0), visual),  # f(p; 0, gamma1) = 1
        (Fusion(gamma1=0), visual),  # f(p; lambda1, 0) = 1 / (1 + lambda1)
        (Fusion(gamma0=0), st_only),  # f(s; lambda0, 0) = 1 / (1 + lambda0)
        (Fusion(lambda0=0), st_only),  # f(s; 0, gamma0) = 1
    ]:
        assert same(pairs.rank(scorer("joint", st, extreme), "argsort"), alone), extreme


def test_the_default_points_are_evaluate_sts():
    full = real_feature_set(DUKE, num_queries=50, seed=2)
    features = FeatureSet(full.query, full.gallery[:1500])
    hist = real_histograms(DUKE)
    points = figure4_points(features, hist, 100, 50, Fusion())
    st = SpatialTemporalModel.from_histograms(hist, 50, 100)
    by_curve = {(p.panel, p.curve): p.metrics for p in points}
    for stream in ("st", "visual", "joint"):
        assert same(by_curve["a", stream], evaluate_features(features, st, 5, stream))
    assert same(by_curve["b", "product"], evaluate_features(features, st, 5, "product"))
    # Panel (c) at the paper's lambda0 = 1 is the joint metric; (e) at sigma 50 too.
    c = {p.value: p.metrics for p in points if p.curve == "lambda0"}
    e = {p.value: p.metrics for p in points if p.curve == "sigma"}
    assert same(c[1.0], by_curve["a", "joint"]) and same(e[50], by_curve["a", "joint"])
    # Another sigma is another model: panel (e) at 10 is evaluate_st.py --smooth 10.
    st10 = SpatialTemporalModel.from_histograms(hist, 10, 100)
    assert same(e[10], evaluate_features(features, st10, 5, "joint"))


def test_the_script_writes_the_picture_and_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    full = real_feature_set(DUKE, num_queries=40, seed=1)
    write_run(tmp_path, FeatureSet(full.query, full.gallery[:800]), real_histograms(DUKE))
    figure4.main(["--name", "run"])
    out = capsys.readouterr().out
    assert "(a)   joint" in out and "(e)   sigma" in out and "94.0" in out
    run = tmp_path / "model/run"
    with open(run / "figure4.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["panel", "curve", "parameter", "value", "rank1", "rank5",
                             "rank10", "mAP"]  # fmt: skip
    counts = {panel: sum(r["panel"] == panel for r in rows) for panel in "abcde"}
    assert counts == {"a": 3, "b": 3, "c": 2 * len(LAMBDAS), "d": 2 * len(GAMMAS),
                      "e": len(SIGMAS)}  # fmt: skip
    assert all(0 <= float(r[k]) <= 1 for r in rows for k in ("rank1", "rank5", "rank10", "mAP"))
    assert Image.open(run / "figure4.png").size[0] > 1000
