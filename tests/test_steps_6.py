"""Step 6 as a user runs it: gen_rerank_all_scores_mat.py, evaluate_rerank_*.py, errors."""

import re

import numpy as np
import pytest
import scipy.io

import evaluate_rerank_duke
import evaluate_rerank_market
import gen_rerank_all_scores_mat
from benchmarks import reference as ref
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.datasets import MARKET
from streid.interchange import FeatureSet
from streid.st_model import smooth_histograms
from tests.helpers import run_fails


@pytest.fixture(scope="module")
def inputs():
    full = real_feature_set(MARKET, seed=9, num_queries=40)
    pick = np.sort(np.random.default_rng(9).choice(len(full.gallery), 300, replace=False))
    return FeatureSet(full.query, full.gallery[pick]), real_histograms(MARKET)


@pytest.fixture
def run(tmp_path, monkeypatch, inputs):
    monkeypatch.chdir(tmp_path)
    return write_run(tmp_path, *inputs)


def test_step_6_end_to_end_equals_the_reference(run, inputs, capsys):
    features, distribution = inputs
    gen_rerank_all_scores_mat.main(["--name", "run"])
    scores = scipy.io.loadmat(run / "all_scores.mat")["all_scores"]
    assert scores.shape == (340, 340) and scores.dtype == np.float32
    expected = ref.all_scores(features.query, features.gallery, smooth_histograms(distribution, 50))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=2e-7)

    capsys.readouterr()
    evaluate_rerank_market.main(["--name", "run"])
    out = capsys.readouterr().out.splitlines()
    cmc, mAP = ref.evaluate_distances(ref.re_ranking(40, scores), features.query, features.gallery)
    assert out[-1] == "top1:%f top5:%f top10:%f mAP:%f" % (cmc[0], cmc[4], cmc[9], mAP)  # noqa: UP031
    assert re.fullmatch(r"Reranking complete in \d+m \d+s", out[-2])
    # The Duke script is the same step with another dataset spec, and other parameters work.
    evaluate_rerank_duke.main(["--name", "run", "--k1", "10", "--k2", "1", "--lambda_value", "0.5"])
    cmc, mAP = ref.evaluate_distances(
        ref.re_ranking(40, scores, 10, 1, 0.5), features.query, features.gallery
    )
    assert capsys.readouterr().out.splitlines()[-1].endswith("mAP:%f" % mAP)  # noqa: UP031


def test_evaluate_rerank_errors(run, capsys):
    err = run_fails(evaluate_rerank_market.main, ["--name", "run"], capsys)
    assert "all_scores.mat not found" in err and "step 6.1" in err
    scipy.io.savemat(run / "all_scores.mat", {"all_scores": np.ones((339, 339), np.float32)})
    err = run_fails(evaluate_rerank_market.main, ["--name", "run"], capsys)
    assert "shape (339, 339)" in err and "40 queries + 300 gallery" in err and "(340, 340)" in err
    nan = np.ones((340, 340), np.float32)
    nan[5, 17] = np.nan
    scipy.io.savemat(run / "all_scores.mat", {"all_scores": nan})
    assert "NaN or inf" in run_fails(evaluate_rerank_market.main, ["--name", "run"], capsys)
    scipy.io.savemat(
        run / "all_scores.mat", {"all_scores": np.random.default_rng(0).random((340, 340))}
    )
    for flags, message in [
        (["--k1", "0"], "k1 must be between"),
        (["--k2", "30"], "k2 must be between 1 and k1 \\+ 1 = 21"),
        (["--lambda_value", "-0.1"], "lambda must be between 0 and 1"),
    ]:
        assert re.search(
            message, run_fails(evaluate_rerank_market.main, ["--name", "run", *flags], capsys)
        )
    scipy.io.savemat(run / "all_scores.mat", {"something_else": np.ones((2, 2))})
    err = run_fails(evaluate_rerank_market.main, ["--name", "run"], capsys)
    assert "has no key 'all_scores'" in err


def test_gen_rerank_writes_nothing_when_it_fails(run, capsys, monkeypatch):
    features = {
        k: v for k, v in scipy.io.loadmat(run / "pytorch_result.mat").items() if k[0] != "_"
    }
    features["gallery_cam"][0, 3] = 9
    scipy.io.savemat(run / "pytorch_result.mat", features)
    assert "camera id 9" in run_fails(gen_rerank_all_scores_mat.main, ["--name", "run"], capsys)
    assert sorted(p.name for p in run.iterdir()) == ["pytorch_result.mat", "pytorch_result2.mat"]
    # An interruption half-way through the matrix leaves no file behind either.
    features["gallery_cam"][0, 3] = 1
    scipy.io.savemat(run / "pytorch_result.mat", features)

    def interrupted(*args, **kwargs):
        yield np.zeros((1, 340), np.float32)
        raise KeyboardInterrupt

    monkeypatch.setattr(gen_rerank_all_scores_mat, "all_scores_blocks", interrupted)
    with pytest.raises(SystemExit):
        gen_rerank_all_scores_mat.main(["--name", "run"])
    assert sorted(p.name for p in run.iterdir()) == ["pytorch_result.mat", "pytorch_result2.mat"]
