"""Step 6: all-pairs scores, streamed .mat files and re-ranking against the dense reference."""

import numpy as np
import pytest
import scipy.io
from tqdm import tqdm

from benchmarks import reference as ref
from benchmarks.simulate import real_feature_set, real_histograms
from streid.all_scores import all_scores_blocks
from streid.datasets import MARKET
from streid.errors import UserError
from streid.evaluation import evaluate
from streid.interchange import FeatureSet
from streid.matfile import ArrayColumns, MatColumns, write_matrix_by_columns
from streid.nearest import find_nearest
from streid.rerank import k_reciprocal_weights, re_ranking, re_ranking_columns
from streid.st_model import SpatialTemporalModel, smooth_histograms


@pytest.fixture(scope="module")
def small_market():
    """60 queries and 400 gallery images with real Market names, simulated features, the
    real histograms: (features, smoothed histograms, the all-pairs scores)."""
    smoothed = smooth_histograms(real_histograms(MARKET), 50)
    full = real_feature_set(MARKET, seed=5, num_queries=60)
    pick = np.sort(np.random.default_rng(5).choice(len(full.gallery), 400, replace=False))
    features = FeatureSet(full.query, full.gallery[pick])
    st = SpatialTemporalModel(smoothed, 100)
    scores = np.concatenate(list(all_scores_blocks(features, st, 5.0))).T
    return features, smoothed, scores


def test_all_scores_equal_the_row_by_row_reference(small_market):
    features, smoothed, scores = small_market
    expected = ref.all_scores(features.query, features.gallery, smoothed)
    assert scores.dtype == np.float32 and scores.shape == (460, 460)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=2e-7)  # float32 rounding


@pytest.mark.parametrize(
    "k1, k2, lambda_value", [(20, 6, 0.3), (5, 1, 0.5), (10, 3, 0.0), (3, 4, 1.0), (1, 2, 0.3)]
)
def test_re_ranking_equals_the_dense_reference(small_market, k1, k2, lambda_value):
    features, _, scores = small_market
    fast = re_ranking(60, scores, k1, k2, lambda_value)
    dense = ref.re_ranking(60, scores, k1, k2, lambda_value)
    assert fast.shape == (60, 400) and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, dense)  # bit for bit, so ties rank the same
    query, gallery = features.query, features.gallery
    metrics = evaluate(
        lambda b: fast[b], query.labels, query.cams, gallery.labels, gallery.cams, descending=False
    )
    cmc, mAP = ref.evaluate_distances(dense, query, gallery)
    np.testing.assert_array_equal(metrics.cmc, cmc)
    assert metrics.mAP == mAP


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block, query_block", [(16, 8), (7, 13), (460, 60)])
def test_re_ranking_over_many_blocks_equals_the_dense_reference(
    small_market, dtype, block, query_block
):
    # Column blocks that straddle the query/gallery boundary and query blocks after the
    # first: every block's rows must land where the dense computation puts them.
    scores = small_market[2].astype(dtype)
    fast = re_ranking_columns(
        ArrayColumns(scores), 60, 20, 6, 0.3, block=block, query_block=query_block
    )
    assert fast.dtype == dtype
    np.testing.assert_array_equal(fast, ref.re_ranking(60, scores, 20, 6, 0.3))


def test_the_defaults_are_the_papers(small_market):
    # k1 = 20, k2 = 6, lambda = 0.3, in the original's API and in the block-wise one.
    scores = small_market[2]
    expected = ref.re_ranking(60, scores, 20, 6, 0.3)
    np.testing.assert_array_equal(re_ranking(60, scores), expected)
    np.testing.assert_array_equal(re_ranking_columns(ArrayColumns(scores), 60), expected)
    v = k_reciprocal_weights(ArrayColumns(scores))  # and V alone, as step 4 --unlabeled uses it
    assert (v != k_reciprocal_weights(ArrayColumns(scores), 20, 6)).nnz == 0


def test_re_ranking_with_heavy_ties_and_float64_input():
    # Quantised scores tie everywhere; a float64 matrix (the original's all_scores) works too.
    rng = np.random.default_rng(2)
    scores = np.round(rng.random((90, 90)) * 8) / 8
    for dtype in (np.float64, np.float32):
        s = scores.astype(dtype)
        np.testing.assert_array_equal(re_ranking(30, s, 6, 3), ref.re_ranking(30, s, 6, 3))


def test_re_ranking_reads_the_matrix_from_disk_in_blocks(small_market, tmp_path):
    _, _, scores = small_market
    path = tmp_path / "all_scores.mat"
    blocks = (scores[:, j : j + 100].T for j in range(0, 460, 100))
    write_matrix_by_columns(path, "all_scores", scores.shape, "float32", blocks)
    assert np.array_equal(scipy.io.loadmat(path)["all_scores"], scores)  # a standard .mat
    columns = MatColumns(path, "all_scores")
    assert columns.streamed  # not loaded whole
    np.testing.assert_array_equal(re_ranking(60, columns, 20, 6), re_ranking(60, scores, 20, 6))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_mat_columns_read_files_written_by_scipy(tmp_path, dtype, compress):
    matrix = np.random.default_rng(0).random((37, 37)).astype(dtype)
    for key in ("all_scores", "abc"):  # a long name and one packed in its tag
        path = tmp_path / f"{key}.mat"
        scipy.io.savemat(path, {key: matrix}, do_compression=compress)
        columns = MatColumns(path, key)
        assert columns.shape == (37, 37) and columns.dtype == dtype
        np.testing.assert_array_equal(columns.columns_t(5, 9), matrix[:, 5:9].T)
        assert columns.streamed != compress  # compressed files are loaded whole


def test_bad_parameters_and_scores_are_rejected():
    scores = np.random.default_rng(0).random((10, 10))
    for kwargs, message in [
        ({"k1": 10}, "k1 must be between 1 and 9"),
        ({"k1": 0}, "k1 must be between 1 and 9"),
        ({"k1": 3, "k2": 5}, "k2 must be between 1 and k1 \\+ 1 = 4"),
        ({"lambda_value": 1.5}, "lambda must be between 0 and 1"),
    ]:
        with pytest.raises(UserError, match=message):
            re_ranking(4, scores, **{"k1": 3, "k2": 2, **kwargs})
    for query_num in (0, 10):
        with pytest.raises(UserError, match=f"^query_num must be between 1 and 9, got {query_num}"):
            re_ranking(query_num, scores, 3, 2)
    with pytest.raises(UserError, match="^the score matrix must be square, got shape \\(10, 9\\)$"):
        re_ranking(4, scores[:, :9], 3, 2)
    scores[2, 7] = np.nan
    with pytest.raises(UserError, match="NaN or inf values \\(column 7\\)"):
        re_ranking(4, scores, 3, 2)


def test_only_the_members_beyond_the_cache_are_read_one_by_one(small_market):
    # V needs O on each row's expansion set; pass 1 keeps each row's `cache` smallest entries
    # of O, and exactly the members outside those are read from S one by one (S[x, i] for
    # O[i, x]). A lookup that missed the cache would still give the right V, only slower.
    _, _, scores = small_market
    read = []

    class Counted(ArrayColumns):
        def entries(self, rows, cols):
            read.extend(zip(np.asarray(rows).tolist(), np.asarray(cols).tolist(), strict=True))
            return super().entries(rows, cols)

    k1, cache = 20, 24
    num = len(scores)
    v = k_reciprocal_weights(Counted(scores), k1, 1, 128, cache)  # k2 = 1: V on E(i) itself
    blocks = [(j, min(j + 128, num)) for j in range(0, num, 128)]
    nearest = find_nearest(ArrayColumns(scores), k1, blocks, cache, tqdm(disable=True))
    members = np.split(v.indices, v.indptr[1:-1])
    expected = {
        (x, i) for i in range(num) for x in np.setdiff1d(members[i], nearest.cached[i]).tolist()
    }
    assert 0 < len(expected) < len(v.indices) // 2  # some members beyond the cache, most in it
    assert sorted(read) == sorted(expected)
