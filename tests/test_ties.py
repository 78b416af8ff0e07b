"""--ties expected: CMC and AP averaged over every order of tied scores, against brute force."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import evaluate_st
from benchmarks import reference as ref
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.datasets import DUKE
from streid.evaluation import evaluate_features
from streid.fusion import pair_scores
from streid.metrics import ExpectedEvaluator, RankingEvaluator
from streid.st_model import SpatialTemporalModel


def every_order(scores):
    """Every ranking (descending) that breaks the ties of ``scores`` some way."""
    levels = sorted(set(scores.tolist()), reverse=True)
    groups = [np.flatnonzero(scores == v) for v in levels]
    for parts in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield np.concatenate(parts)


def brute_force(scores, q_labels, q_cams, g_labels, g_cams):
    """Per-query AP and the CMC summed over queries, averaged over every tie order."""
    aps, cmc = [], np.zeros(len(g_labels))
    for row, ql, qc in zip(scores, q_labels, q_cams, strict=True):
        good, junk = ref.good_and_junk(ql, qc, g_labels, g_cams)
        orders = list(every_order(row))
        results = [ref.compute_ap_cmc(order, good, junk) for order in orders]
        aps.append(np.mean([ap for ap, _ in results]))
        if good.size:
            cmc += np.mean([c for _, c in results], axis=0)
    return np.array(aps), cmc


@given(data=st.data(), num_queries=st.integers(1, 4), num_gallery=st.integers(1, 7))
def test_expected_values_equal_the_average_over_every_order(data, num_queries, num_gallery):
    def draw_ints(n, lo, hi):
        return np.array(data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)))

    scores = draw_ints(num_queries * num_gallery, 0, 2).reshape(num_queries, num_gallery) / 2
    q_labels, q_cams = draw_ints(num_queries, -1, 3), draw_ints(num_queries, 1, 2)
    g_labels, g_cams = draw_ints(num_gallery, -1, 3), draw_ints(num_gallery, 1, 2)
    evaluator = ExpectedEvaluator(g_labels, g_cams)
    evaluator.add(scores, q_labels, q_cams)
    got = evaluator.result()
    aps, cmc = brute_force(scores, q_labels, q_cams, g_labels, g_cams)
    np.testing.assert_allclose(got.ap, aps, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.cmc, cmc / num_queries, rtol=0, atol=1e-12)
    assert got.mAP == pytest.approx(aps.mean(), abs=1e-12)


def test_a_hand_worked_tie():
    # Gallery: a good image tied with a wrong one, both first. Half the orders rank it
    # first (AP 1), half second (AP (0/1 + 1/2)/2 = 1/4): expected AP 5/8, CMC 1/2 then 1.
    evaluator = ExpectedEvaluator(np.array([1, 2, 1]), np.array([2, 2, 1]))
    evaluator.add(np.array([[0.9, 0.9, 0.1]]), [1], [1])  # the third is junk (same camera)
    metrics = evaluator.result()
    assert metrics.ap[0] == pytest.approx(5 / 8)
    np.testing.assert_allclose(metrics.cmc, [0.5, 1.0, 1.0])


def test_without_ties_expected_is_the_argsort_result():
    rng = np.random.default_rng(0)
    scores = rng.random((20, 50))
    labels, cams = rng.integers(0, 6, 50), rng.integers(1, 4, 50)
    q_labels, q_cams = rng.integers(0, 6, 20), rng.integers(1, 4, 20)
    plain, expected = RankingEvaluator(labels, cams), ExpectedEvaluator(labels, cams)
    for evaluator in (plain, expected):
        evaluator.add(scores, q_labels, q_cams)
    a, b = plain.result(), expected.result()
    np.testing.assert_allclose(b.ap, a.ap, atol=1e-12)
    np.testing.assert_allclose(b.cmc, a.cmc, atol=1e-6)
    np.testing.assert_array_equal(b.first_good, a.first_good)


def test_evaluate_st_ties_flag(tmp_path, monkeypatch, capsys):
    # The ST stream alone on real Duke names: ties everywhere, so the two differ; the
    # expected values do not depend on the sort.
    monkeypatch.chdir(tmp_path)
    features = real_feature_set(DUKE, num_queries=60, seed=3)
    write_run(tmp_path, features, real_histograms(DUKE))
    lines = {}
    for ties in ("argsort", "expected"):
        evaluate_st.main(["--name", "run", "--stream", "st", "--ties", ties])
        lines[ties] = capsys.readouterr().out.splitlines()[0]
    assert lines["argsort"] != lines["expected"]
    st = SpatialTemporalModel.from_histograms(real_histograms(DUKE), 50, 100)
    expected = evaluate_features(features, st, 5, "st", ties="expected")
    assert lines["expected"] == expected.summary()
    # The same from the evaluator itself (by descending score, same-camera matches junk).
    query, gallery = features.query, features.gallery
    evaluator = ExpectedEvaluator(gallery.labels, gallery.cams)
    evaluator.add(pair_scores(query, gallery, st, 5, "st"), query.labels, query.cams)
    assert lines["expected"] == evaluator.result().summary()
