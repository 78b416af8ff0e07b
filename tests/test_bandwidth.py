"""--smooth auto: sigma chosen by held-out log-likelihood of the training gaps."""

import numpy as np
import pytest

import evaluate_st
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.bandwidth import CANDIDATES, choose_sigma
from streid.datasets import MARKET
from streid.interchange import save_distribution
from tests.helpers import run_fails


def walkers(spread: float, people=300, seed=0):
    """Each person seen in camera 1, then in camera 2 about 100 bins (of 10 frames) later,
    the delay spread by ``spread`` bins."""
    rng = np.random.default_rng(seed)
    delay = np.clip(rng.normal(100, spread, people), 0, 390) * 10
    start = rng.integers(0, 10_000, people)
    labels = np.repeat(np.arange(people), 2)
    cams = np.tile([1, 2], people)
    frames = np.stack([start, start + delay], axis=1).ravel().round().astype(np.int64)
    return labels, cams, frames


def test_a_wider_spread_of_delays_gets_a_wider_window():
    chosen = [choose_sigma(*walkers(s), 2, 400, 10)[0] for s in (2, 10, 40)]
    assert chosen[0] < chosen[1] < chosen[2], chosen
    assert all(c in CANDIDATES for c in chosen)
    # The choice is the argmax of the held-out likelihoods it reports, and reproducible.
    best, table = choose_sigma(*walkers(10), 2, 400, 10)
    assert best == max(table, key=table.get) and choose_sigma(*walkers(10), 2, 400, 10)[0] == best
    assert max(table) <= 400 / 5  # no wider than a fifth of the histograms


def test_too_few_people_choose_nothing():
    assert choose_sigma(np.array([0, 0]), np.array([1, 2]), np.array([0, 50]), 2, 10, 10) == (
        None,
        {},
    )


def test_steps_5_and_6_take_the_recorded_choice(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = write_run(tmp_path, real_feature_set(MARKET, num_queries=30, seed=1),
                    real_histograms(MARKET))  # fmt: skip
    err = run_fails(evaluate_st.main, ["--name", "run", "--smooth", "auto"], capsys)
    assert "has no sigma chosen from the training gaps" in err and "run step 4 again" in err
    save_distribution(run / "pytorch_result2.mat", real_histograms(MARKET), 100, 50, 10)
    evaluate_st.main(["--name", "run", "--smooth", "auto"])
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == "alpha,smooth: 5 10"
    assert "--smooth auto: sigma 10 bins, chosen by step 4" in captured.err
    evaluate_st.main(["--name", "run", "--smooth", "10"])
    assert capsys.readouterr().out.splitlines()[0] == captured.out.splitlines()[0]


@pytest.mark.parametrize("value", ["0", "-3", "wide"])
def test_bad_smooth_values(tmp_path, monkeypatch, capsys, value):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        evaluate_st.main(["--name", "run", "--smooth", value])
    assert "--smooth" in capsys.readouterr().err
