"""Sessions: times of two recording sessions are never compared (steps 4-6, the files)."""

import numpy as np
import pytest
import scipy.io

import evaluate_st
import gen_rerank_all_scores_mat
from benchmarks import reference as ref
from benchmarks.simulate import real_feature_set, real_names, write_run
from streid.all_scores import all_scores_blocks
from streid.datasets import MSMT17
from streid.errors import UserError
from streid.evaluation import evaluate_features
from streid.interchange import FeatureSet, Split, load_features, save_features
from streid.st_model import (
    SpatialTemporalModel,
    camera_pair_histograms,
    smooth_histograms,
    walk_gaps,
)
from tests.helpers import run_fails


def test_one_session_per_image():
    with pytest.raises(ValueError, match="^one session id per image expected$"):
        walk_gaps(np.array([0, 0]), np.array([1, 2]), np.array([5, 9]), 2, np.array([0]))


def test_two_sessions_are_not_one_walk():
    # Person 0 seen in camera 1 at frame 100 and camera 2 at frame 300 of session 0, and in
    # camera 2 at frame 5000 of session 1: one gap of 200 frames, not a mean over both days.
    labels, cams = np.array([0, 0, 0]), np.array([1, 2, 2])
    frames, sessions = np.array([100, 300, 5000]), np.array([0, 0, 1])
    hist = camera_pair_histograms(labels, cams, frames, 3, 10, 100, sessions)
    assert hist[1, 0, 1] == pytest.approx(1.0) and hist.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(
        hist, ref.histograms_with_sessions(labels, sessions, cams, frames, 3, 10, 100)
    )
    # One session for all: the mean frame in camera 2 is 2650, a gap of 25 bins: too long.
    with pytest.raises(UserError, match="beyond the last of 10 bins"):
        camera_pair_histograms(labels, cams, frames, 3, 10, 100)


def test_pairs_of_two_sessions_get_probability_zero():
    st = SpatialTemporalModel(np.ones((2, 2, 4)), interval=10)
    g_cams, g_frames, g_sessions = np.array([2, 2, 2]), np.array([5, 5, 5]), np.array([0, 1, 2])
    np.testing.assert_array_equal(st.probability(1, 5, g_cams, g_frames, 1, g_sessions), [0, 1, 0])
    np.testing.assert_array_equal(st.probability(1, 5, g_cams, g_frames), [1, 1, 1])


def session_case(seed):
    """A small case full of ties, in three sessions whose frames overlap."""
    rng = np.random.default_rng(seed)

    def split(n, label_choices):
        feats = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
        frames = rng.integers(0, 6, n) * 10
        return Split(feats, rng.choice(label_choices, n), rng.integers(1, 4, n), frames,
                     rng.integers(0, 3, n))  # fmt: skip

    dist = rng.random((3, 3, 8))
    return FeatureSet(split(12, [1, 2, 3, -1]), split(60, [-1, 0, 1, 2, 3])), dist


@pytest.mark.parametrize("stream", ["joint", "st"])
@pytest.mark.parametrize("seed", range(4))
def test_ranking_with_sessions_equals_the_reference(seed, stream):
    features, dist = session_case(seed)
    smoothed = smooth_histograms(dist, 1.0)
    st = SpatialTemporalModel(smoothed, interval=10)
    fast = evaluate_features(features, st, 5.0, stream, block_size=5)
    q, g = features.query, features.gallery
    cmc, mAP, aps = ref.evaluate(
        q, g, smoothed, 5.0, stream, 10, similarity=q.features @ g.features.T
    )
    np.testing.assert_array_equal(fast.cmc, cmc)
    np.testing.assert_array_equal(fast.ap, aps)
    assert fast.mAP == mAP
    # The sessions change the ranking: without them, the scores are others.
    plain = FeatureSet(*(Split(s.features, s.labels, s.cams, s.frames) for s in (q, g)))
    assert not np.array_equal(evaluate_features(plain, st, 5.0, stream).ap, fast.ap)


def msmt17_subset(num_gallery=500):
    full = real_feature_set(MSMT17, dim=32, seed=4, num_queries=40)
    pick = np.random.default_rng(4).choice(len(full.gallery), num_gallery, replace=False)
    return FeatureSet(full.query, full.gallery[np.sort(pick)])


def msmt17_histograms():
    parsed = real_names(MSMT17, "train")[1]
    targets = np.unique(parsed.labels, return_inverse=True)[1]
    return camera_pair_histograms(targets, parsed.cams, parsed.frames, 15, 40, 50, parsed.sessions)


def test_steps_5_and_6_on_msmt17_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    features, dist = msmt17_subset(), msmt17_histograms()
    run = write_run(tmp_path, features, dist)
    saved = scipy.io.loadmat(run / "pytorch_result.mat")
    assert saved["query_session"].shape == (1, 40) and saved["gallery_session"].shape == (1, 500)
    assert (
        load_features("model/run/pytorch_result.mat").gallery.sessions.tolist()
        == features.gallery.sessions.tolist()
    )

    evaluate_st.main(["--name", "run", "--smooth", "5"])
    line = capsys.readouterr().out.splitlines()[0]
    smoothed = smooth_histograms(dist, 5)
    cmc, mAP, _ = ref.evaluate(features.query, features.gallery, smoothed, 5, "joint", 100)
    assert line == "top1:%f top5:%f top10:%f mAP:%f" % (cmc[0], cmc[4], cmc[9], mAP)  # noqa: UP031

    st = SpatialTemporalModel(smoothed, 100)
    scores = np.concatenate(list(all_scores_blocks(features, st, 5.0))).T
    expected = ref.all_scores(features.query, features.gallery, smoothed, 5.0, 100)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=2e-7)
    gen_rerank_all_scores_mat.main(["--name", "run", "--smooth", "5"])
    written = scipy.io.loadmat(run / "all_scores.mat")["all_scores"]
    np.testing.assert_allclose(written, expected, rtol=0, atol=2e-7)


def test_sessions_for_one_split_only_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    features = msmt17_subset(50)
    run = write_run(tmp_path, features, msmt17_histograms())
    query = features.query
    save_features(run / "pytorch_result.mat", Split(query.features, query.labels, query.cams,
                  query.frames), features.gallery)  # fmt: skip
    err = run_fails(evaluate_st.main, ["--name", "run"], capsys)
    assert "has gallery_session but no query_session: give both or neither" in err


def test_a_query_camera_never_seen_in_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    features, dist = msmt17_subset(50), msmt17_histograms()
    dist[2], dist[:, 2] = 0, 0  # camera 3 never appears in training
    features.query.cams[5] = 3
    write_run(tmp_path, features, dist)
    err = run_fails(evaluate_st.main, ["--name", "run"], capsys)
    assert "query_cam holds camera id 3, which never appears in training" in err
