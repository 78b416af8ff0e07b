"""Steps 4 and 5 as a user runs them: the scripts, their files, their errors."""

import os
import re
import stat

import numpy as np
import pytest
import scipy.io

import evaluate_st
import gen_st_model_duke
import gen_st_model_market
from benchmarks import reference as ref
from benchmarks.simulate import (
    real_feature_set,
    real_histograms,
    real_split,
    train_targets,
    write_run,
)
from streid.datasets import DUKE, MARKET
from streid.interchange import Split, save_features
from streid.st_model import smooth_histograms
from tests.helpers import run_fails


def make_tree(root, names, split="train_all"):
    """Empty placeholder files in the ImageFolder layout prepare.py writes."""
    for name in names:
        folder = root / split / name.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")


@pytest.mark.parametrize(
    "spec, script",
    [(MARKET, gen_st_model_market), (DUKE, gen_st_model_duke)],
    ids=["market", "duke"],
)
def test_gen_st_model_reads_names_only_and_equals_reference(tmp_path, monkeypatch, spec, script):
    monkeypatch.chdir(tmp_path)
    names, labels, cams, frames = real_split(spec, "train")
    make_tree(tmp_path / "data", names)
    script.main(["--data_dir", "data", "--name", "run"])
    out = tmp_path / "model/run/pytorch_result2.mat"
    saved = scipy.io.loadmat(out)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # an ordinary file's mode
    targets = train_targets(labels)
    expected = ref.histograms(targets, cams, frames, targets.max() + 1, 8, spec.num_bins, 100.0)
    np.testing.assert_array_equal(saved["distribution"], expected)
    assert saved["interval"].item() == 100


def test_gen_st_model_default_data_dir_is_the_prepare_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_tree(
        tmp_path / "dataset/market_rename", ["0002_c1_f0000451_03.jpg", "0002_c2_f0000999_01.jpg"]
    )
    gen_st_model_market.main([])
    dist = scipy.io.loadmat(tmp_path / "model/ft_ResNet50/pytorch_result2.mat")["distribution"]
    assert dist[1, 0, 5] == pytest.approx(1.0)  # seen in camera 2 548 frames after camera 1


@pytest.fixture(scope="module")
def market_inputs():
    """Step 3's features (real names, simulated) and step 4's histograms, computed once."""
    features = real_feature_set(MARKET, num_queries=50, seed=3)
    return features, real_histograms(MARKET)


@pytest.fixture
def market_run(tmp_path, monkeypatch, market_inputs):
    """model/run/ holding pytorch_result.mat and pytorch_result2.mat."""
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path, *market_inputs)
    return market_inputs[0]


@pytest.mark.parametrize(
    "stream, cmc_file",
    [
        ("joint", "CMC_duke_two_stream_add5.mat"),
        ("visual", "CMC_duke_vis_stream.mat"),
        ("st", "CMC_duke_st_stream.mat"),
    ],
)
def test_evaluate_st_prints_the_original_line(market_run, tmp_path, capsys, stream, cmc_file):
    argv = ["--name", "run"] + ([] if stream == "joint" else ["--stream", stream])
    evaluate_st.main(argv)
    out = capsys.readouterr().out.splitlines()
    match = re.fullmatch(r"top1:(\S+) top5:(\S+) top10:(\S+) mAP:(\S+)", out[0])
    assert match and out[1] == "alpha,smooth: 5 50"
    # The printed digits are the reference's.
    dist = scipy.io.loadmat(tmp_path / "model/run/pytorch_result2.mat")["distribution"]
    cmc, mAP, _ = ref.evaluate(
        market_run.query, market_run.gallery, smooth_histograms(dist, 50), 5, stream
    )
    expected = "top1:%f top5:%f top10:%f mAP:%f" % (cmc[0], cmc[4], cmc[9], mAP)  # noqa: UP031
    assert out[0] == expected
    saved = scipy.io.loadmat(tmp_path / "model/run" / cmc_file)["CMC"]
    assert saved.shape == (1, 19732) and saved.dtype == np.float32


@pytest.mark.parametrize("stream", ["joint", "st"])
def test_evaluate_st_alpha_and_smooth_flags(market_run, tmp_path, capsys, stream):
    evaluate_st.main(["--name", "run", "--alpha", "2.5", "--smooth", "20", "--stream", stream])
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "alpha,smooth: 2.5 20.0"
    # The digits are the reference's at these settings, not at the defaults.
    dist = scipy.io.loadmat(tmp_path / "model/run/pytorch_result2.mat")["distribution"]
    query, gallery = market_run.query, market_run.gallery
    cmc, mAP, _ = ref.evaluate(query, gallery, smooth_histograms(dist, 20), 2.5, stream)
    assert out[0] == "top1:%f top5:%f top10:%f mAP:%f" % (cmc[0], cmc[4], cmc[9], mAP)  # noqa: UP031
    cmc, mAP, _ = ref.evaluate(query, gallery, smooth_histograms(dist, 50), 5, stream)
    assert not out[0].endswith("mAP:%f" % mAP)  # noqa: UP031
    cmc_file = "CMC_duke_two_stream_add2.5.mat" if stream == "joint" else "CMC_duke_st_stream.mat"
    assert (tmp_path / "model/run" / cmc_file).is_file()


def corrupt(path, **changes):
    data = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value(data[key])
    scipy.io.savemat(path, data)


def set_row(row, value):
    return lambda f: np.where(np.arange(len(f))[:, None] == row, value, f)


def empty(v):  # (N, D) features lose their rows, 1 x N vectors their columns
    return v[:0] if v.shape[0] > 1 else v[:, :0]


EMPTY_QUERY = dict.fromkeys(("query_f", "query_label", "query_cam", "query_frames"), empty)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"query_cam": None}, "has no key 'query_cam'"),
        ({"gallery_label": lambda v: v[:, :-1]}, "gallery_label has 19731 values but gallery_f"),
        ({"query_f": set_row(3, np.nan)}, "query_f has NaN or inf values \\(row 3\\)"),
        ({"gallery_f": set_row(8, 0)}, "gallery_f row 8 is all zeros"),
        (EMPTY_QUERY, "the query set is empty"),
        (
            {"query_cam": lambda v: np.where(np.arange(v.size) == 0, 9, v)},
            "query_cam holds camera id 9",
        ),
        (
            {"gallery_cam": lambda v: np.where(np.arange(v.size) == 5, 9, v)},
            "gallery_cam holds camera id 9",
        ),
        ({"gallery_f": lambda f: f[:, :10]}, "query_f has 64 columns but gallery_f has 10"),
        (
            {"query_frames": lambda v: np.where(np.arange(v.size) == 2, -1e308, v)},
            "query_frames holds -1e[+]308, beyond the ±2\\^53",
        ),
        (
            {"gallery_frames": lambda v: np.where(np.arange(v.size) == 2, 2**62, v)},
            "gallery_frames holds 4.61169e[+]18, beyond",
        ),
        (
            {"gallery_frames": lambda v: np.where(np.arange(v.size) == 4, np.nan, v)},
            "gallery_frames holds NaN or inf values",
        ),
    ],
)
def test_evaluate_st_bad_features(market_run, tmp_path, capsys, changes, message):
    corrupt(tmp_path / "model/run/pytorch_result.mat", **changes)
    err = run_fails(evaluate_st.main, ["--name", "run"], capsys)
    assert re.search(message, err), err
    assert not list((tmp_path / "model/run").glob("CMC*")), "no output after an error"


def test_evaluate_st_missing_files_name_their_step(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert "model/run/ does not exist" in run_fails(evaluate_st.main, ["--name", "run"], capsys)
    (tmp_path / "model/run").mkdir(parents=True)
    err = run_fails(evaluate_st.main, ["--name", "run"], capsys)
    assert "pytorch_result.mat not found" in err and "step 3" in err
    one = Split(np.ones((1, 4), np.float32), np.array([1]), np.array([1]), np.array([5]))
    save_features(tmp_path / "model/run/pytorch_result.mat", one, one)
    err = run_fails(evaluate_st.main, ["--name", "run"], capsys)
    assert "pytorch_result2.mat not found" in err and "step 4" in err
    (tmp_path / "model/run/pytorch_result2.mat").write_bytes(b"not a mat file")
    assert "could not be read" in run_fails(evaluate_st.main, ["--name", "run"], capsys)


def test_gen_st_model_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    err = run_fails(gen_st_model_market.main, ["--data_dir", "data"], capsys)
    assert "has no train_all/" in err and "prepare.py --Market" in err
    make_tree(tmp_path / "data", ["0002_c1_f0000451_03.jpg", "0002_c1s1_000451_03.jpg"])
    err = run_fails(gen_st_model_market.main, ["--data_dir", "data"], capsys)
    assert "0002_c1s1_000451_03.jpg" in err and "PPPP_cC_fGGGGGGG_BB.jpg" in err
    (tmp_path / "data/train_all/0002/0002_c1s1_000451_03.jpg").unlink()
    make_tree(tmp_path / "data", ["0003_c9_f0000451_03.jpg"])
    err = run_fails(gen_st_model_market.main, ["--data_dir", "data"], capsys)
    assert "camera id 9" in err and "0003_c9_f0000451_03.jpg" in err
    assert not (tmp_path / "model").exists()
