"""Step 6's scores through torch (--from_features --gpu_ids), checked here on torch's CPU."""

import numpy as np
import pytest
import torch

import evaluate_rerank
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.all_scores import FeatureColumns
from streid.datasets import MARKET
from streid.device_scores import DeviceScores
from streid.fusion import Fusion
from streid.interchange import FeatureSet, Split
from streid.metrics import RankingEvaluator
from streid.rerank import rerank_blocks
from streid.st_model import SpatialTemporalModel, smooth_histograms
from tests.helpers import run_fails


def random_case(seed, whole: bool, sessions: bool, num=260, interval=10, step=5, bins=12):
    """Random features; frames on a coarse grid (of ``step``), so that equal frames (which
    decide which camera is the later one) and gaps exactly at a bin edge or past the last
    bin occur."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(num, 16)).astype(np.float32)
    frames = 10**6 + rng.integers(0, 40, num) * step
    frames = frames if whole else frames + rng.choice([0, 0.25, 0.5], num)
    split = Split(feats, rng.integers(0, 30, num), rng.integers(1, 5, num), frames,
                  rng.integers(0, 3, num) if sessions else None)  # fmt: skip
    st = SpatialTemporalModel(smooth_histograms(rng.random((4, 4, bins)), 2.0), interval)
    return FeatureSet(split[:60], split[60:]), st


@pytest.mark.parametrize(
    "whole, sessions, interval",
    [(True, True, 10), (True, False, 10), (False, True, 10), (False, False, 10),
     (True, False, 0.3), (False, False, 0.3)],
)  # fmt: skip
def test_table_index_is_the_numpy_lookup(whole, sessions, interval):
    # Whole frames and a fractional interval: float32 would put 9 / 0.3 into bin 29.
    step, bins = (1, 80) if interval == 0.3 else (5, 12)
    features, st = random_case(3, whole, sessions, interval=interval, step=step, bins=bins)
    everyone = Split.concatenate([features.query, features.gallery])
    device = DeviceScores(everyone, st, 5, "cpu")
    e = everyone
    s = (None, None) if e.sessions is None else (e.sessions[None, :], e.sessions[:, None])
    expected = st.table_index(e.cams[None, :], e.frames[None, :], e.cams[:, None],
                              e.frames[:, None], *s)  # fmt: skip
    for c0, c1 in [(0, 260), (7, 8), (100, 260)]:
        np.testing.assert_array_equal(device.table_index(c0, c1).numpy(), expected[c0:c1])
    assert (expected == st.table.size - 1).any() and (expected < st.table.size - 1).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fusion", [Fusion(), Fusion(gamma0=2, gamma1=7, lambda0=0.5)])
def test_columns_agree_with_numpys(dtype, fusion):
    features, st = random_case(4, whole=False, sessions=True)
    cpu = FeatureColumns(features, st, fusion, dtype=dtype)
    features, st = random_case(4, whole=False, sessions=True)
    torch_cpu = FeatureColumns(features, st, fusion, dtype=dtype, device="cpu")
    for j0, j1 in [(0, 260), (130, 131)]:
        got = torch_cpu.columns_t(j0, j1)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, cpu.columns_t(j0, j1), rtol=2e-6)


def reranked_summary(features, st, device):
    columns = FeatureColumns(features, st, 5, device=device)
    evaluator = RankingEvaluator(features.gallery.labels, features.gallery.cams, descending=False)
    for q0, q1, final in rerank_blocks(columns, len(features.query), progress=False, block=200):
        evaluator.add(final, features.query.labels[q0:q1], features.query.cams[q0:q1])
    return evaluator.result().summary()


def test_reranking_prints_the_same_digits():
    def case():
        full = real_feature_set(MARKET, dim=32, seed=5, num_queries=80)
        return FeatureSet(full.query, full.gallery[:700])

    st = SpatialTemporalModel(smooth_histograms(real_histograms(MARKET), 50), 100)
    assert reranked_summary(case(), st, "cpu") == reranked_summary(case(), st, None)


def test_gpu_ids_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    full = real_feature_set(MARKET, seed=9, num_queries=40)
    write_run(tmp_path, FeatureSet(full.query, full.gallery[:500]), real_histograms(MARKET))
    evaluate_rerank.main(["--name", "run", "--from_features"])
    on_cpu = capsys.readouterr().out.splitlines()[-1]
    evaluate_rerank.main(["--name", "run", "--from_features", "--gpu_ids", "0"])
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == on_cpu
    if not torch.cuda.is_available():  # the run falls back to the CPU, and says so
        assert "warning: CUDA is not available; running on the CPU" in captured.err
    err = run_fails(evaluate_rerank.main, ["--name", "run", "--gpu_ids", "0"], capsys)
    assert "--gpu_ids goes with --from_features" in err
