"""Step 4 without identity labels as a user runs it: gen_st_model*.py --unlabeled on a
pytorch_result_train.mat, then step 5; its one-line errors; manifests whose training
persons are unknown."""

from dataclasses import replace

import numpy as np
import pytest
import scipy.io
import yaml

import evaluate_st
import gen_st_model
import gen_st_model_market
import prepare
import train
from benchmarks.simulate import real_feature_set, train_targets
from streid.dataset_yaml import write_spec
from streid.datasets import MARKET, MSMT17
from streid.interchange import save_features, save_train_features
from streid.st_model import camera_pair_histograms
from tests.helpers import run_fails
from tests.test_label_free import identities_of, same_partition
from tests.test_manifest import ROWS, write_manifest

FLAGS = ["--name", "run", "--unlabeled", "--k1", "7", "--k2", "2"]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """model/run/ with step 3's two files: 40 well-separated training identities of 8
    images each, and simulated query and gallery features."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "model" / "run"
    folder.mkdir(parents=True)
    test = real_feature_set(MARKET, num_queries=60, seed=2)
    pick = np.random.default_rng(2).choice(len(test.gallery), 600, replace=False)
    save_features(folder / "pytorch_result.mat", test.query, test.gallery[np.sort(pick)])
    save_train_features(folder / "pytorch_result_train.mat", identities_of(8, 40))
    return folder


def rewrite_train(folder, **changes):
    """pytorch_result_train.mat with some of its keys replaced."""
    path = folder / "pytorch_result_train.mat"
    data = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    scipy.io.savemat(path, {**data, **changes})


def test_steps_4_and_5_without_labels(run, capsys):
    gen_st_model_market.main(FLAGS)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[:4]] == [f"round {n}/4" for n in (1, 2, 3, 4)]
    assert "40 pseudo-identities, 0 images unclustered" in out[3]
    assert "pairwise precision 1.000, recall 1.000" in out[3]
    assert out[4].startswith("wrote model/run/pytorch_result2.mat: 8x8 camera pairs x 5000 ")
    assert "from 320 images: 40 pseudo-identities, 0 images left alone" in out[4]
    saved = scipy.io.loadmat(run / "pytorch_result2.mat")
    train = identities_of(8, 40)
    targets = train_targets(train.labels)
    expected = camera_pair_histograms(targets, train.cams, train.frames, 8, 5000, 100)
    np.testing.assert_array_equal(saved["distribution"], expected)
    assert saved["pseudo_labels"].shape == (1, 320)
    assert same_partition(saved["pseudo_labels"][0], targets)
    metrics = evaluate_st.main(["--name", "run"])
    assert capsys.readouterr().out.startswith("top1:") and metrics.mAP > 0


def test_the_labels_in_the_file_change_nothing(run, capsys):
    # Bins of 1,000 frames: --smooth auto's choice, which step 4 makes each run, is quick.
    write_spec(replace(MARKET, interval=1000, num_bins=500), run.parent.parent)
    argv = [*FLAGS, "--data_dir", "."]
    gen_st_model.main(argv)
    first = scipy.io.loadmat(run / "pytorch_result2.mat")
    labels = scipy.io.loadmat(run / "pytorch_result_train.mat")["train_label"]
    for other in (np.full_like(labels, -1), labels[:, ::-1]):
        capsys.readouterr()
        rewrite_train(run, train_label=other)
        gen_st_model.main(argv)
        again = scipy.io.loadmat(run / "pytorch_result2.mat")
        for key in ("distribution", "pseudo_labels", "smooth_auto"):
            np.testing.assert_array_equal(again[key], first[key])
        # Labels -1 are unknown: nothing to compare the pseudo-identities with.
        assert ("precision" in capsys.readouterr().out) == (other >= 0).all()


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_file", "model/run/pytorch_result_train.mat not found: it is made by step 3 with "
                    "--train"),
        ("lengths", "train_cam has 319 values but train_f has 320 rows"),
        ("nan", "train_f has NaN or inf values (row 3)"),
        ("camera", "train_cam holds camera id 9, but the spatial-temporal histogram has rows "
                   "for cameras 1-8 only"),
        ("one_camera", "every training image is of camera 1; the spatial-temporal model needs "
                       "images of two cameras or more"),
        ("nobody", "round 1: no pseudo-identity was seen by two cameras (0 pseudo-identities, "
                   "320 of 320 images unclustered)"),
        ("sessions", "has no train_session, but MSMT17 has recording sessions"),
        ("eps", "--eps must be between 0 and 1 (a Jaccard distance), got 1.5"),
        ("k1", "--k1 must be between 1 and 319 (the training images minus one)"),
    ],
)  # fmt: skip
def test_bad_input_one_line_and_no_file(run, capsys, case, message):
    train = scipy.io.loadmat(run / "pytorch_result_train.mat")
    argv, main = FLAGS, gen_st_model_market.main
    if case == "no_file":
        (run / "pytorch_result_train.mat").unlink()
    elif case == "lengths":
        rewrite_train(run, train_cam=train["train_cam"][:, 1:])
    elif case == "nan":
        feats = train["train_f"].copy()
        feats[3, 5] = np.nan
        rewrite_train(run, train_f=feats)
    elif case in ("camera", "one_camera"):
        cams = train["train_cam"].copy()
        cams[:] = 1
        cams[0, 0] = 9 if case == "camera" else 1
        rewrite_train(run, train_cam=cams)
    elif case == "nobody":  # no two images alike, and the default neighbourhoods
        noise = np.random.default_rng(0).standard_normal((320, 512))
        rewrite_train(run, train_f=noise.astype(np.float32))
        argv = FLAGS[:3]
    elif case == "sessions":
        write_spec(MSMT17, run.parent.parent)
        argv, main = [*FLAGS, "--data_dir", "."], gen_st_model.main
    else:
        argv = [*FLAGS, "--eps", "1.5"] if case == "eps" else [*FLAGS, "--k1", "320"]
    err = run_fails(main, argv, capsys)
    assert message in err
    assert not (run / "pytorch_result2.mat").exists()


def test_unknown_training_persons_from_a_manifest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [(p, "" if split == "train" else who, *rest) for p, who, *rest in ROWS
            for split in [rest[2]]]  # fmt: skip
    write_manifest(tmp_path, rows)
    prepare.main(["--manifest", "cameras.csv", "--download_path", "images"])
    capsys.readouterr()
    data = tmp_path / "dataset/cameras"
    record = yaml.safe_load((data / "dataset.yaml").read_text())
    # No identity: the longest gap there can be, Tuesday's 3031.0 - 3000.5 or Monday's
    # 120.0 - 12.5 = 107.5 s, stands in for the longest training gap.
    assert (record["interval"], record["num_bins"]) == (0.05, 4300)
    assert record["persons"] == {"carol": 1, "dave": 2}
    assert sorted(p.name for p in (data / "train_all").iterdir()) == ["-1"]
    argv = ["--data_dir", str(data), "--weights", "none", "--gpu_ids", "-1"]
    err = run_fails(train.main, argv, capsys)
    assert "7 training images have no identity label (folder -1/): step 2 learns from " in err
    err = run_fails(gen_st_model.main, ["--data_dir", str(data), "--name", "mine"], capsys)
    assert err.endswith("holds 8 images of unknown identity (person -1): learn without "
                        "identity labels with --unlabeled, from the training features of "
                        "step 3 --train")  # fmt: skip
    assert not (tmp_path / "model/mine/pytorch_result2.mat").exists()


def test_a_junk_training_row_says_how_to_mark_an_unknown_person(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path, [*ROWS, ("z.jpg", "-1", "gate", "9.0", "train", "mon")])
    err = run_fails(prepare.main, ["--manifest", "cameras.csv", "--download_path", "images"],
                    capsys)  # fmt: skip
    assert err.endswith("a training image cannot be junk (-1); leave the person empty where "
                        "the identity is unknown")  # fmt: skip


def test_a_query_needs_its_person(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [(p, "" if p == "c1.jpg" else who, *rest) for p, who, *rest in ROWS]
    write_manifest(tmp_path, rows)
    err = run_fails(prepare.main, ["--manifest", "cameras.csv", "--download_path", "images"],
                    capsys)  # fmt: skip
    assert err.endswith("line 10: the person is empty")
