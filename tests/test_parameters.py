"""The parameters of steps 4-6 and the pictures, checked where they enter: nan, inf and
out-of-range values refused with one line before anything is written, arrays too large for
the machine refused with their size, and the one-line warnings on odd input."""

import dataclasses
import math

import numpy as np
import pytest
import scipy.io
import scipy.ndimage
from PIL import Image

import evaluate_rerank
import evaluate_st
import figure4
import gen_rerank_all_scores_mat
import gen_st_model
import gen_st_model_market
import plot_rank_list
import plot_st_distribution
from benchmarks import reference as ref
from benchmarks.simulate import write_run
from streid import errors, st_model
from streid.dataset_yaml import write_spec
from streid.datasets import MARKET
from streid.errors import UserError
from streid.interchange import FeatureSet, Split, save_distribution
from streid.metrics import count_unmatched, good_and_junk
from streid.st_model import camera_pair_histograms, smooth_histograms
from tests.helpers import run_fails

# A small run: 2 cameras, 3 queries (persons 1, 2, 3), 5 gallery images; person 3 has no
# gallery image from another camera (only one from its own: junk).
Q_LABELS, Q_CAMS, Q_FRAMES = [1, 2, 3], [1, 1, 2], [100, 300, 500]
# Both in step 3's (ImageFolder's) order of their file names.
G_LABELS, G_CAMS, G_FRAMES = [0, 1, 1, 2, 3], [1, 1, 2, 2, 2], [200, 90, 150, 380, 520]


def tiny_features(num_cameras_used=2, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 8))

    def split(labels, cams, frames):
        feats = centres[labels] + 0.1 * rng.standard_normal((len(labels), 8))
        cams = np.minimum(np.array(cams), num_cameras_used)
        return Split(feats.astype(np.float32), np.array(labels), cams, np.array(frames))

    return FeatureSet(split(Q_LABELS, Q_CAMS, Q_FRAMES), split(G_LABELS, G_CAMS, G_FRAMES))


def tiny_histograms(num_cameras=2, num_bins=10):
    hist = np.zeros((num_cameras, num_cameras, num_bins))
    hist[1, 0, 0], hist[0, 1, 0], hist[1, 0, 1] = 0.5, 1.0, 0.5
    return hist


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return write_run(tmp_path, tiny_features(), tiny_histograms())


def refused(main, argv, capsys, flag):
    """argparse's refusal: status 2, no traceback, the last line names the flag."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


SCORE_FLAGS = ["--alpha", "--gamma0", "--gamma1", "--lambda0", "--lambda1"]


@pytest.mark.parametrize("script", [evaluate_st, gen_rerank_all_scores_mat, figure4])
@pytest.mark.parametrize("flag", SCORE_FLAGS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_bad_score_parameters_are_refused_before_anything_is_written(
    tiny_run, capsys, script, flag, value
):
    (tiny_run / "all_scores.mat").write_bytes(b"a good one")
    before = sorted(p.name for p in tiny_run.iterdir())
    line = refused(script.main, ["--name", "run", f"{flag}={value}"], capsys, flag)
    assert f"argument {flag}: '{value}': expected a" in line
    assert ("finite" in line) == ("inf" in value or value == "nan")
    assert sorted(p.name for p in tiny_run.iterdir()) == before
    assert (tiny_run / "all_scores.mat").read_bytes() == b"a good one"


@pytest.mark.parametrize("script", [evaluate_st, plot_st_distribution, figure4])
@pytest.mark.parametrize(
    "value, says", [("nan", "finite"), ("inf", "finite"), ("0", "positive"), ("x", "or 'auto'")]
)
def test_bad_smooth_is_refused(tiny_run, capsys, script, value, says):
    line = refused(script.main, ["--name", "run", "--smooth", value], capsys, "--smooth")
    assert line.endswith(f"argument --smooth: '{value}': " + {
        "finite": "sigma must be a finite number of bins",
        "positive": "sigma must be positive",
        "or 'auto'": "a number of bins or 'auto'",
    }[says])  # fmt: skip


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--lambda_value", "nan"], "argument --lambda_value: 'nan': expected a finite number"),
        (["--from_features", "--alpha", "nan"], "argument --alpha: 'nan': expected a finite"),
    ],
)
def test_bad_rerank_parameters_are_refused(tiny_run, capsys, argv, says):
    assert says in refused(evaluate_rerank.main, ["--name", "run", *argv], capsys, argv[-2])


def test_plot_rank_list_queries_must_be_positive(tiny_run, capsys):
    argv = ["--name", "run", "--test_dir", "data", "--queries", "0"]
    assert "'0': expected a whole number >= 1" in refused(plot_rank_list.main, argv, capsys, "")


def test_zero_gamma_and_lambda_are_accepted_as_figure_4_sweeps_them(tiny_run, capsys):
    evaluate_st.main(["--name", "run", "--lambda1", "0", "--gamma0", "0"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("top1:") and "nan" not in out[0]
    assert out[1] == "alpha,smooth: 5 50"


def untruncated_smoothing(hist, sigma):
    """The smoothing with the original's full kernel of 2 floor(3 sigma) + 1 terms."""
    half = math.floor(3 * sigma)
    d = np.arange(half + 1, dtype=np.float64)
    g = 1.0 / (sigma * math.sqrt(2 * math.pi)) * np.exp(-np.power(d, 2) / (2 * np.power(sigma, 2)))
    kernel = np.concatenate([g[:0:-1], g])
    out = scipy.ndimage.correlate1d(hist, kernel, axis=2, mode="constant", cval=0.0)
    return out / (out.sum(axis=2, keepdims=True) + 1e-7)


@pytest.mark.parametrize("num_bins", [1, 3, 10, 40])
@pytest.mark.parametrize("sigma", [0.3, 2, 5.5, 13.4, 50, 1e4])
def test_a_kernel_cut_at_the_histograms_length_smooths_the_same(num_bins, sigma):
    rng = np.random.default_rng(num_bins)
    hist = rng.random((2, 2, num_bins)) * (rng.random((2, 2, num_bins)) < 0.4)
    hist /= hist.sum(axis=2, keepdims=True) + 1e-7
    assert len(st_model.gaussian_kernel(sigma, num_bins)) <= 2 * num_bins - 1
    # Bit for bit: the terms beyond the histogram never meet a bin.
    smoothed = smooth_histograms(hist, sigma)
    np.testing.assert_array_equal(smoothed, untruncated_smoothing(hist, sigma))
    np.testing.assert_allclose(smoothed, ref.smooth(hist, sigma), rtol=1e-12, atol=1e-300)


def test_a_huge_smooth_runs_without_a_huge_kernel(tiny_run, capsys):
    plot_st_distribution.main(["--name", "run", "--smooth", "1e15"])  # one display bin
    assert capsys.readouterr().out == "wrote model/run/st_distribution.png\n"
    evaluate_st.main(["--name", "run", "--smooth", "1e15"])
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0].startswith("top1:")
        and "nan" not in out[0]
        and out[1] == "alpha,smooth: 5 1000000000000000.0"
    )
    assert len(st_model.gaussian_kernel(1e15, 10)) == 19


def test_arrays_beyond_memory_are_refused_with_their_size(monkeypatch):
    monkeypatch.setattr(errors, "memory_bytes", lambda: 10**8)  # a 0.1 GB machine
    camera_pair_histograms([0, 0], [1, 2], [0, 50], 2, 10**6, 100)  # 2 x 2 x 10^6: 0.06 GB
    with pytest.raises(UserError) as err:
        camera_pair_histograms([0, 0], [1, 2], [0, 50], 2, 10**7, 100)
    assert str(err.value) == (
        "2 x 2 camera-pair histograms of 10,000,000 bins would take 0.6 GB, more than this "
        "machine's 0.1 GB of memory: check num_cameras and num_bins in the dataset's "
        "dataset.yaml"
    )
    with pytest.raises(
        UserError, match=r"^the Parzen kernel of sigma 1e\+08 bins would take 9\.6 GB"
    ):
        st_model.gaussian_kernel(1e8)  # 6 * 10^8 + 1 entries of 2 x 8 bytes
    assert len(st_model.gaussian_kernel(1e8, num_bins=100)) == 199  # cut: no such array


@pytest.mark.parametrize(
    "change, says",
    [
        (
            {"num_bins": 10**13},
            "8 x 8 camera-pair histograms of 10,000,000,000,000 bins would take",
        ),
        ({"interval": float("nan")}, "data/dataset.yaml: interval is nan, expected a positive"),
        ({"interval": float("inf")}, "data/dataset.yaml: interval is inf, expected a positive"),
    ],
)
def test_step_4_refuses_time_bins_it_cannot_use(tmp_path, monkeypatch, capsys, change, says):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data/train_all/0002"
    folder.mkdir(parents=True)
    for name in ("0002_c1_f0000451_03.jpg", "0002_c2_f0000999_01.jpg"):
        (folder / name).write_bytes(b"")
    write_spec(dataclasses.replace(MARKET, **change), tmp_path / "data")
    err = run_fails(gen_st_model.main, ["--data_dir", "data", "--name", "run"], capsys)
    assert says in err
    assert not (tmp_path / "model").exists()


def test_smooth_auto_where_step_4_could_not_choose_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "dataset/market_rename/train_all/0002"
    folder.mkdir(parents=True)
    for name in ("0002_c1_f0000451_03.jpg", "0002_c2_f0000999_01.jpg"):  # one person: no choice
        (folder / name).write_bytes(b"")
    gen_st_model_market.main(["--name", "run"])
    captured = capsys.readouterr()
    assert "(auto: None)" in captured.out
    assert captured.err == (
        "note: step 4 could not choose a Parzen sigma from the training gaps (too few training "
        "identities with a time gap between two cameras): steps 5-6 refuse --smooth auto on "
        "this run; sigma 50 bins by default\n"
    )
    saved = scipy.io.loadmat(tmp_path / "model/run/pytorch_result2.mat")
    assert "smooth_auto" not in saved
    write_run(tmp_path, tiny_features(), saved["distribution"][:2, :2])
    for script in (evaluate_st, figure4, plot_st_distribution):
        err = run_fails(script.main, ["--name", "run", "--smooth", "auto"], capsys)
        assert err == (
            "error: --smooth auto: model/run/pytorch_result2.mat has no sigma chosen from the "
            "training gaps: step 4 could not choose one (it needs two training identities or "
            "more with a time gap between two cameras), or wrote the file before it recorded "
            "the choice (then run step 4 again); give --smooth a number of bins instead, e.g. "
            "the dataset's 50"
        )
    assert sorted(p.name for p in (tmp_path / "model/run").iterdir()) == [
        "pytorch_result.mat",
        "pytorch_result2.mat",
    ]


def test_plot_st_distribution_takes_smooth_auto(tiny_run, capsys):
    save_distribution(tiny_run / "pytorch_result2.mat", tiny_histograms(), 100, 50, 3)
    plot_st_distribution.main(["--name", "run", "--smooth", "auto"])
    assert "--smooth auto: sigma 3 bins" in capsys.readouterr().err
    assert (tiny_run / "st_distribution.png").is_file()


def test_queries_without_a_match_are_counted_once_and_scored_as_before(tiny_run, capsys):
    evaluate_st.main(["--name", "run"])
    captured = capsys.readouterr()
    assert captured.err == (
        "warning: 1 of 3 queries have no gallery image of their person from another camera: "
        "they count as in the original (no CMC hit, AP 0, and one query in both averages)\n"
    )
    # The reference's digits: the unmatched query counts in the denominators.
    feats = tiny_features()
    cmc, mAP, _ = ref.evaluate(feats.query, feats.gallery, smooth_histograms(tiny_histograms(), 50))
    assert cmc[0] <= 2 / 3 + 1e-6
    assert captured.out.splitlines()[0] == "top1:%f top5:%f top10:%f mAP:%f" % (  # noqa: UP031
        cmc[0], cmc[4], cmc[4], mAP
    )  # fmt: skip


def test_the_unmatched_count_is_the_good_masks(capsys):
    rng = np.random.default_rng(5)
    for _ in range(30):
        ql, qc = rng.integers(-1, 6, 20), rng.integers(1, 4, 20)
        gl, gc = rng.integers(-1, 6, 15), rng.integers(1, 4, 15)
        good, _ = good_and_junk(ql, qc, gl, gc)
        assert count_unmatched(ql, qc, gl, gc) == int((~good.any(axis=1)).sum())
    assert count_unmatched([1], [1], [], []) == 1


def test_histograms_of_more_cameras_than_the_images_use_get_a_warning(tmp_path, monkeypatch,
                                                                      capsys):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path, tiny_features(), tiny_histograms(num_cameras=4))
    evaluate_st.main(["--name", "run"])
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "warning: the spatial-temporal histograms have rows for 4 cameras, but the query and "
        "gallery images are of cameras 1-2 only: is pytorch_result2.mat (step 4) of this "
        "dataset?"
    )
    write_run(tmp_path, tiny_features(), tiny_histograms(num_cameras=2))
    evaluate_st.main(["--name", "run"])
    assert "rows for" not in capsys.readouterr().err


def test_rank_list_of_placeholder_images_draws_grey_tiles(tiny_run, tmp_path, capsys):
    feats = tiny_features()
    for split, data in (("query", feats.query), ("gallery", feats.gallery)):
        for label, cam, frame in zip(data.labels, data.cams, data.frames, strict=True):
            folder = tmp_path / f"data/{split}/{label:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{label:04d}_c{cam}_f{frame:07d}_00.jpg"
            (folder / name).write_bytes(b"" if split == "query" else b"not a JPEG at all")
    plot_rank_list.main(["--name", "run", "--test_dir", "data", "--out", "ranks.png"])
    captured = capsys.readouterr()
    assert captured.out == "wrote ranks.png\n"
    assert "images could not be read as images (placeholder files?)" in captured.err
    assert "drawn as grey tiles with their names" in captured.err
    with Image.open(tmp_path / "ranks.png") as img:
        picture = np.asarray(img.convert("RGB"))
    # The query's tile (the first column, below the header): grey, with dark name text.
    tile = picture[18 : 18 + 128, :64].reshape(-1, 3)
    assert (tile == 160).all(axis=1).mean() > 0.8
    assert (tile.max(axis=1) < 60).any()
