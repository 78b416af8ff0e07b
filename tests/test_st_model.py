"""Step 4 histograms and step 5 smoothing/lookup against the plain-loop reference."""

import numpy as np
import pytest

from benchmarks import reference as ref
from benchmarks.simulate import real_histograms, real_split, train_targets
from streid.datasets import DUKE, MARKET
from streid.errors import UserError
from streid.st_model import (
    SpatialTemporalModel,
    camera_pair_histograms,
    gaussian_kernel,
    smooth_histograms,
)


@pytest.mark.parametrize("spec", [MARKET, DUKE], ids=lambda s: s.key)
def test_histograms_equal_reference_on_real_training_names(spec):
    _, labels, cams, frames = real_split(spec, "train")
    targets = train_targets(labels)
    fast = camera_pair_histograms(
        targets, cams, frames, spec.num_cameras, spec.num_bins, spec.interval
    )
    slow = ref.histograms(
        targets, cams, frames, targets.max() + 1, spec.num_cameras, spec.num_bins, 100.0
    )
    assert fast.shape == (8, 8, spec.num_bins)
    np.testing.assert_array_equal(fast, slow)
    # Each non-empty histogram is normalised; same-camera pairs stay empty.
    sums = fast.sum(axis=2)
    assert np.all((np.abs(sums - 1) < 1e-6) | (sums == 0))
    assert np.all(np.diagonal(sums) == 0)


def test_histograms_equal_reference_on_ties_and_missing_cameras():
    rng = np.random.default_rng(3)
    n = 400
    labels = rng.integers(0, 25, n)
    cams = rng.integers(1, 5, n)
    # Coarse frames make equal means (ties go to [k][j]) and exact multiples of a bin common.
    frames = rng.integers(0, 40, n) * 50
    fast = camera_pair_histograms(labels, cams, frames, 6, 30, 100)
    slow = ref.histograms(labels, cams, frames, 25, 6, 30, 100.0)
    np.testing.assert_array_equal(fast, slow)


def test_an_exact_tie_goes_to_the_later_camera_of_the_pair():
    # Identity 0 seen once in camera 2 and once in camera 3, both at frame 100: equal sums
    # and counts give bit-equal means, so j_later is False and the pair counts in [k][j].
    # (Means of different counts are never equal: the 1e-7 guard makes 200 / 2 < 100 / 1.)
    tie = camera_pair_histograms(
        np.array([0, 0]), np.array([2, 3]), np.array([100, 100]), 4, 5, 100
    )
    assert tie[2, 1, 0] == pytest.approx(1.0) and tie[1, 2].sum() == 0
    np.testing.assert_array_equal(
        tie,
        ref.histograms(np.array([0, 0]), np.array([2, 3]), np.array([100, 100]), 1, 4, 5, 100.0),
    )


def test_the_last_bin_holds_gaps_up_to_bins_times_interval():
    # 10 bins of 100 frames. One image per camera, so each mean is frame / (1 + 1e-7): a gap
    # of 1000 frames is 999.9999 (bin 9, the last), 1001 frames is 1000.9999 (bin 10: none).
    labels, cams = np.array([0, 0]), np.array([1, 2])
    last = camera_pair_histograms(labels, cams, np.array([0, 1000]), 8, 10, 100)
    assert last[1, 0, 9] == pytest.approx(1.0)
    with pytest.raises(UserError, match="gap of 1001 falls beyond the last of 10 bins"):
        camera_pair_histograms(labels, cams, np.array([0, 1001]), 8, 10, 100)


def test_histograms_reject_bad_input():
    with pytest.raises(UserError, match="^the training set holds camera id 9, but"):
        camera_pair_histograms(np.array([0, 0]), np.array([1, 9]), np.array([0, 5]), 8, 10, 100)
    with pytest.raises(UserError, match="^training labels must be class indices 0..K-1, found"):
        camera_pair_histograms(np.array([0, -1]), np.array([1, 2]), np.array([0, 5]), 8, 10, 100)
    with pytest.raises(UserError, match="beyond the last of 10 bins"):
        camera_pair_histograms(np.array([0, 0]), np.array([1, 2]), np.array([0, 5000]), 8, 10, 100)
    with pytest.raises(UserError, match="^no training images: the spatial-temporal model"):
        camera_pair_histograms(np.array([]), np.array([]), np.array([]), 8, 10, 100)


@pytest.mark.parametrize("sigma", [50, 7.5, 2])
def test_smoothing_equals_reference(sigma):
    hist = real_histograms(MARKET)
    if sigma != 50:  # smaller cases: a short histogram, shorter than the kernel for sigma 7.5
        hist = hist[:, :, :20] + np.random.default_rng(0).random((8, 8, 20))
    np.testing.assert_allclose(
        smooth_histograms(hist, sigma), ref.smooth(hist, sigma), rtol=1e-12, atol=1e-18
    )


def test_gaussian_kernel_is_truncated_at_three_sigma():
    assert len(gaussian_kernel(50)) == 2 * 150 + 1
    assert len(gaussian_kernel(33.3)) == 2 * 99 + 1
    k = gaussian_kernel(50)
    assert k[150] == pytest.approx(1 / (50 * np.sqrt(2 * np.pi)))
    np.testing.assert_array_equal(k, k[::-1])
    with pytest.raises(UserError, match="--smooth must be positive"):
        gaussian_kernel(0)


def test_probability_lookup_equals_reference_loop():
    rng = np.random.default_rng(1)
    dist = rng.random((4, 4, 12))
    st = SpatialTemporalModel(dist, interval=10)
    g_cams, g_frames = rng.integers(1, 5, 300), rng.integers(0, 200, 300)
    for q_cam, q_frame in [(1, 0), (2, 57), (3, 120), (4, 199), (2, 60)]:
        fast = st.probability(q_cam, q_frame, g_cams, g_frames)
        slow = ref.st_probability(q_cam, q_frame, g_cams, g_frames, dist, interval=10)
        np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("start", [2**31 - 512, 2**40])
def test_large_frame_numbers_keep_their_order(start):
    # Frames around 2**31 and beyond (times in milliseconds, say): which sighting is later
    # decides the camera order of the lookup, so no frame may wrap around.
    dist = np.random.default_rng(0).random((3, 3, 6))
    st = SpatialTemporalModel(dist, interval=100)
    g_cams, g_frames = np.array([2] * 5), start + np.array([0, 400, 600, 800, 1000])
    np.testing.assert_array_equal(
        st.probability(1, start + 100, g_cams, g_frames),
        ref.st_probability(1, start + 100, g_cams, g_frames, dist, interval=100),
    )


def test_gap_beyond_last_bin_has_probability_zero():
    # Deviation from the original, which raises IndexError here.
    st = SpatialTemporalModel(np.ones((2, 2, 3)), interval=100)
    p = st.probability(1, 1000, np.array([2, 2, 2, 2]), np.array([1000, 701, 700, 699]))
    np.testing.assert_array_equal(p, [1.0, 1.0, 0.0, 0.0])  # gaps 0, 299 (bin 2), 300, 301


def test_camera_without_histogram_row_is_rejected():
    st = SpatialTemporalModel(np.ones((8, 8, 3)), interval=100)
    with pytest.raises(UserError, match="^query_cam holds camera id 9, but .* cameras 1-8 only$"):
        st.check_cameras(np.array([1, 9]), "query_cam")


def test_which_cameras_count_as_trained():
    # Camera 2 is only ever the earlier camera of a pair, with little mass; cameras 3 and 4
    # never appear in training.
    table = np.zeros((4, 4, 5))
    table[0, 1, 2] = 0.25
    st = SpatialTemporalModel(table, 10)
    st.check_cameras(np.array([1, 2, 1]), "query_cam", queries=True)
    st.check_cameras(np.array([3, 4]), "gallery_cam")  # only a query camera must be trained
    with pytest.raises(UserError, match="query_cam holds camera id 3, which never appears"):
        st.check_cameras(np.array([1, 3, 4]), "query_cam", queries=True)
