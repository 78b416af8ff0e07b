"""Step 6 without the N x N file: re-ranking straight from the features (--from_features)."""

import re

import numpy as np
import pytest
import scipy.io

import evaluate_rerank
import evaluate_rerank_market
import gen_rerank_all_scores_mat
from benchmarks import reference as ref
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.all_scores import CHUNK, FeatureColumns, all_scores_blocks
from streid.datasets import MARKET
from streid.fusion import STREAMS, pair_scores
from streid.interchange import FeatureSet, Split
from streid.matfile import ArrayColumns, MatColumns, write_matrix_by_columns
from streid.rerank import re_ranking_columns
from streid.st_model import SpatialTemporalModel, smooth_histograms
from tests.helpers import run_fails


def one_hot_case(seed, num=300, query_num=70):
    """Features of +-one-hot vectors: every dot product is exactly -1, 0 or 1, however it is
    summed, and ties are everywhere. Sessions, cameras and frames from a small grid."""
    rng = np.random.default_rng(seed)
    feats = np.eye(6, dtype=np.float32)[rng.integers(0, 6, num)] * rng.choice([-1, 1], (num, 1))
    split = Split(feats.astype(np.float32), rng.integers(0, 9, num), rng.integers(1, 4, num),
                  rng.integers(0, 8, num) * 10, rng.integers(0, 2, num))  # fmt: skip
    st = SpatialTemporalModel(smooth_histograms(rng.random((3, 3, 6)), 1.0), interval=10)
    return FeatureSet(split[:query_num], split[query_num:]), st


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cache, k1, k2", [(64, 20, 6), (5, 3, 2), (22, 20, 1)])
def test_from_features_equals_the_file_path_bit_for_bit(dtype, cache, k1, k2):
    features, st = one_hot_case(cache)
    columns = FeatureColumns(features, st, 5.0, dtype=dtype)
    matrix = np.concatenate([columns.chunk(c) for c in range(0, 300, CHUNK)]).T
    assert matrix.dtype == dtype and matrix.shape == (300, 300)
    # A small cache leaves expansion-set members to be recomputed one by one; one-hot
    # features make those exact, so every bit must agree with the dense original.
    fast = re_ranking_columns(columns, 70, k1, k2, 0.3, cache=cache, block=96, query_block=40)
    np.testing.assert_array_equal(fast, ref.re_ranking(70, matrix, k1, k2, 0.3))
    np.testing.assert_array_equal(
        fast, re_ranking_columns(ArrayColumns(matrix), 70, k1, k2, 0.3, cache=cache)
    )


def test_feature_columns_are_step_6_1s_scores_wherever_they_are_cut():
    features = real_feature_set(MARKET, dim=32, seed=2, num_queries=50)
    features = FeatureSet(features.query, features.gallery[:400])
    st = SpatialTemporalModel(smooth_histograms(real_histograms(MARKET), 50), 100)
    written = np.concatenate(list(all_scores_blocks(features, st, 5.0)))  # S.T, (450, 450)
    columns = FeatureColumns(features, st, 5.0)
    for j0, j1 in [(0, 450), (3, 131), (128, 256), (250, 449), (449, 450)]:
        np.testing.assert_array_equal(columns.columns_t(j0, j1), written[j0:j1])
    rows, cols = np.array([0, 17, 449, 200]), np.array([5, 17, 0, 333])
    np.testing.assert_allclose(columns.entries(rows, cols), written[cols, rows], atol=2e-7)


def test_the_file_reads_single_entries(tmp_path):
    matrix = np.random.default_rng(0).random((50, 50)).astype(np.float32)
    path = tmp_path / "all_scores.mat"
    write_matrix_by_columns(path, "all_scores", (50, 50), "float32", [matrix.T])
    columns = MatColumns(path, "all_scores")
    rows, cols = np.array([0, 49, 3, 3]), np.array([49, 0, 7, 3])
    np.testing.assert_array_equal(columns.entries(rows, cols), matrix[rows, cols])
    fast = re_ranking_columns(columns, 10, 6, 3, 0.3, cache=8)
    np.testing.assert_array_equal(fast, ref.re_ranking(10, matrix, 6, 3, 0.3))


@pytest.fixture
def market_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    full = real_feature_set(MARKET, seed=9, num_queries=150)
    pick = np.sort(np.random.default_rng(9).choice(len(full.gallery), 1200, replace=False))
    return write_run(tmp_path, FeatureSet(full.query, full.gallery[pick]), real_histograms(MARKET))


def test_the_printed_line_is_the_file_paths(market_run, capsys):
    gen_rerank_all_scores_mat.main(["--name", "run"])
    evaluate_rerank_market.main(["--name", "run"])
    with_file = capsys.readouterr().out.splitlines()[-1]
    (market_run / "all_scores.mat").unlink()
    evaluate_rerank.main(["--name", "run", "--from_features"])
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"Reranking complete in \d+m \d+s", out[-2])
    assert out[-1] == with_file
    assert sorted(p.name for p in market_run.iterdir()) == [
        "pytorch_result.mat",
        "pytorch_result2.mat",
    ]
    # Other scores give another line: --alpha and --smooth reach the scores.
    evaluate_rerank.main(["--name", "run", "--from_features", "--alpha", "2", "--smooth", "10"])
    assert capsys.readouterr().out.splitlines()[-1] != with_file


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--alpha", "3"], "--lambda0/1 and --smooth go with --from_features"),
        (["--from_features", "--k1", "0"], "k1 must be between 1 and"),
        (["--from_features", "--lambda_value", "2"], "lambda must be between 0 and 1"),
    ],
)
def test_bad_input_one_line(market_run, capsys, argv, message):
    assert message in run_fails(evaluate_rerank.main, ["--name", "run", *argv], capsys)


def test_bad_features(market_run, capsys):
    data = {k: v for k, v in scipy.io.loadmat(market_run / "pytorch_result.mat").items()
            if not k.startswith("__")}  # fmt: skip
    data["gallery_f"][11] = np.nan
    scipy.io.savemat(market_run / "pytorch_result.mat", data)
    err = run_fails(evaluate_rerank.main, ["--name", "run", "--from_features"], capsys)
    assert "gallery_f has NaN or inf values (row 11)" in err
    data["gallery_f"][11] = 1
    data["query_cam"] = data["query_cam"][:, :-1]
    scipy.io.savemat(market_run / "pytorch_result.mat", data)
    err = run_fails(evaluate_rerank.main, ["--name", "run", "--from_features"], capsys)
    assert "query_cam has 149 values but query_f has 150 rows" in err


def test_missing_model_file(market_run, capsys):
    (market_run / "pytorch_result2.mat").unlink()
    err = run_fails(evaluate_rerank.main, ["--name", "run", "--from_features"], capsys)
    assert "pytorch_result2.mat not found" in err and "step 4" in err


@pytest.mark.parametrize("stream", STREAMS)
def test_a_chunk_of_s_is_step_5s_scores_transposed_bit_for_bit(stream):
    # Step 6 takes each chunk's product as (chunk x everyone), in the orientation it writes
    # S[:, chunk].T, where step 5's blocks are (queries x gallery): every entry is the same
    # dot product, which must come out with the same bits. Real names, 512-d features.
    features = real_feature_set(MARKET, dim=512, seed=2, num_queries=300)
    features = FeatureSet(features.query, features.gallery[:3000])
    st = SpatialTemporalModel(smooth_histograms(real_histograms(MARKET), 50.0), 100)
    columns = FeatureColumns(features, st, 5.0, stream=stream)
    everyone = columns.everyone
    for c0 in (0, 1280, 3200):  # the last chunk has 100 columns
        chunk = everyone[c0 : c0 + CHUNK]
        expected = pair_scores(everyone, chunk, st, 5.0, stream).T.astype(np.float32)
        np.testing.assert_array_equal(columns.chunk(c0), expected)
