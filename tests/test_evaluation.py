"""Step 5 ranking, CMC and mAP against the plain per-query reference."""

from dataclasses import replace

import numpy as np
import pytest

from benchmarks import reference as ref
from benchmarks.simulate import real_feature_set, real_histograms
from streid.datasets import DUKE, MARKET
from streid.evaluation import evaluate_features, top_matches
from streid.fusion import normalize_rows, pair_scores
from streid.interchange import FeatureSet, Split
from streid.metrics import RankingEvaluator
from streid.st_model import SpatialTemporalModel, smooth_histograms


def assert_same_as_reference(
    features, st, smoothed, stream, alpha=5.0, shared_similarity=True, block_size=256
):
    fast = evaluate_features(features, st, alpha, stream, block_size=block_size)
    sim = None
    if shared_similarity:
        sim = normalize_rows(features.query.features) @ normalize_rows(features.gallery.features).T
    cmc, mAP, aps = ref.evaluate(
        features.query, features.gallery, smoothed, alpha, stream, st.interval, similarity=sim
    )
    np.testing.assert_array_equal(fast.cmc, cmc)
    np.testing.assert_array_equal(fast.ap, aps)
    assert fast.mAP == mAP
    return fast


def tiny_case(seed):
    """A small gallery full of ties: one-hot features make every similarity 0 or 1 exactly,
    frames are coarse (equal frames, equal bins), cameras repeat, labels -1 and 0 appear,
    some queries have no true match and one query is labelled -1."""
    rng = np.random.default_rng(seed)
    dim, ng, nq = 4, 60, 12

    def split(n, label_choices):
        feats = np.eye(dim, dtype=np.float32)[rng.integers(0, dim, n)]
        labels = rng.choice(label_choices, n)
        return Split(feats, labels, rng.integers(1, 4, n), rng.integers(0, 6, n) * 10)

    gallery = split(ng, [-1, 0, 1, 2, 3, 4])
    query = split(nq, [1, 2, 3, 4, 5, -1])  # 5 never appears in the gallery
    dist = rng.random((3, 3, 4)) * (rng.random((3, 3, 4)) > 0.4)  # some empty bins
    return FeatureSet(query, gallery), dist


@pytest.mark.parametrize("stream", ["joint", "visual", "st"])
@pytest.mark.parametrize("seed", range(6))
def test_tiny_cases_with_ties_equal_reference(seed, stream):
    features, dist = tiny_case(seed)
    smoothed = smooth_histograms(dist, 1.0)
    st = SpatialTemporalModel(smoothed, interval=10)  # gaps of 40-50 fall beyond the 4 bins
    # Blocks of 5 queries: the 12 queries span three blocks, the last one partial.
    alpha = 2.5 if seed % 2 else 5.0
    assert_same_as_reference(
        features, st, smoothed, stream, alpha, shared_similarity=False, block_size=5
    )


@pytest.mark.parametrize("alpha", [1.0, 2.5, 9.0])
def test_alpha_weighs_the_two_streams(alpha):
    # The reference at another alpha gives other rankings than at 5, and the project follows.
    smoothed = smooth_histograms(real_histograms(MARKET), 50)
    st = SpatialTemporalModel(smoothed, MARKET.interval)
    features = real_feature_set(MARKET, num_queries=40, seed=7)
    fast = assert_same_as_reference(features, st, smoothed, "joint", alpha, block_size=16)
    assert fast.mAP != evaluate_features(features, st, 5.0).mAP


@pytest.mark.parametrize("spec", [MARKET, DUKE], ids=lambda s: s.key)
@pytest.mark.parametrize("stream", ["joint", "visual", "st"])
def test_real_names_with_simulated_features_equal_reference(spec, stream):
    smoothed = smooth_histograms(real_histograms(spec), 50)
    st = SpatialTemporalModel(smoothed, spec.interval)
    features = real_feature_set(spec, num_queries=40, seed=7)
    fast = assert_same_as_reference(features, st, smoothed, stream)
    if stream == "joint":  # the spatial-temporal stream helps, as in the paper
        visual = evaluate_features(features, st, 5.0, "visual")
        assert fast.mAP > visual.mAP


def test_end_to_end_with_per_query_dot_products_agrees():
    # Without shared similarities, only last-bit rounding of float32 dot products differs.
    spec = MARKET
    smoothed = smooth_histograms(real_histograms(spec), 50)
    features = real_feature_set(spec, num_queries=60, seed=11)
    fast = evaluate_features(features, SpatialTemporalModel(smoothed, 100), 5.0)
    cmc, mAP, _ = ref.evaluate(features.query, features.gallery, smoothed)
    np.testing.assert_allclose(fast.cmc, cmc, atol=1e-6)
    assert fast.mAP == pytest.approx(mAP, abs=1e-5)


def test_average_precision_by_hand():
    # Gallery ranked by score (the default: descending): [good, junk(-1), distractor(0),
    # good(same cam: junk), good, distractor]. After junk removal the good images sit at
    # ranks 0 and 2: AP = 1/2 * (1 + 1)/2 + 1/2 * (1/2 + 2/3)/2 = 0.7916...
    # (Ascending, they would sit at ranks 1 and 3.)
    evaluator = RankingEvaluator(
        gallery_labels=np.array([7, -1, 0, 7, 7, 0]), gallery_cams=np.array([2, 2, 2, 1, 3, 1])
    )
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]])
    evaluator.add(scores, [7], [1])
    # A second query with no true match: skipped, but it counts in the denominators.
    evaluator.add(scores, [8], [1])
    metrics = evaluator.result()
    assert metrics.ap[0] == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert metrics.mAP == pytest.approx(metrics.ap[0] / 2)
    np.testing.assert_allclose(metrics.cmc, [0.5] * 6)
    np.testing.assert_array_equal(metrics.first_good, [0, -1])
    assert metrics.summary() == "top1:0.500000 top5:0.500000 top10:0.500000 mAP:0.395833"


def test_no_queries_is_an_error():
    with pytest.raises(ValueError, match="^no queries were evaluated$"):
        RankingEvaluator(np.array([1]), np.array([1])).result()


def test_an_unknown_stream_is_an_error():
    features, dist = tiny_case(0)
    st = SpatialTemporalModel(dist, interval=10)
    with pytest.raises(ValueError, match="unknown stream 'both'"):
        pair_scores(features.query, features.gallery, st, 5.0, "both")


@pytest.mark.parametrize("stream", ["joint", "visual"])
def test_top_matches_are_the_evaluated_ranking_without_junk(stream):
    # The rank-list picture shows what the evaluation ranks: the first k after junk removal,
    # on normalised features (here of other lengths than 1).
    features, dist = tiny_case(1)
    rng = np.random.default_rng(1)
    query, gallery = (
        replace(s, features=rng.normal(size=s.features.shape).astype(np.float32))
        for s in (features.query, features.gallery)
    )
    st = SpatialTemporalModel(smooth_histograms(dist, 1.0), interval=10)
    matches = top_matches(query, gallery, st, 2.5, stream, k=7)
    scores = pair_scores(
        replace(query, features=normalize_rows(query.features)),
        replace(gallery, features=normalize_rows(gallery.features)),
        st,
        2.5,
        stream,
    )
    for i, (indices, good) in enumerate(matches):
        good_i, junk_i = ref.good_and_junk(
            query.labels[i], query.cams[i], gallery.labels, gallery.cams
        )
        ranked = [j for j in np.argsort(-scores[i]) if j not in junk_i][:7]
        assert indices.tolist() == ranked
        assert good.tolist() == [j in good_i for j in ranked]


def test_ascending_distances_rank_the_other_way():
    evaluator = RankingEvaluator(np.array([1, 2, 3]), np.array([2, 2, 2]), descending=False)
    evaluator.add(np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]), [1, 3], [1, 1])
    np.testing.assert_array_equal(evaluator.result().first_good, [0, 2])


def test_float32_features_are_scored_in_float32():
    # Two gallery images, the true match first, whose similarities with the query are
    # adjacent float32 numbers: the original's float32 logistic gives both the same visual
    # factor (a tie, which np.argsort breaks for the first image); in float64 the wrong image
    # would come first. Same camera and frame: the same spatial-temporal factor.
    a, b = np.float32(0.99), np.float32(np.sqrt(1 - 0.99**2))
    g_feats = np.array([[a, b, 0], [np.nextafter(a, np.float32(1)), b, 0]], np.float32)
    query = Split(np.array([[1, 0, 0]], np.float32), np.array([1]), np.array([1]), np.array([0]))
    gallery = Split(g_feats, np.array([1, 2]), np.array([2, 2]), np.array([500, 500]))
    sims = normalize_rows(query.features) @ normalize_rows(g_feats).T
    assert sims.dtype == np.float32 and sims[0, 0] < sims[0, 1]
    st = SpatialTemporalModel(smooth_histograms(np.ones((2, 2, 10)), 2.0), 100)
    features = FeatureSet(query, gallery)
    assert evaluate_features(features, st, 5.0, "visual").cmc[0] == 0  # the wrong one first
    assert evaluate_features(features, st, 5.0, "joint").cmc[0] == 1  # the tie: in order
