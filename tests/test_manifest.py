"""A camera network of one's own: prepare.py --manifest, and the steps after it."""

import csv
import re

import numpy as np
import pytest
import scipy.io
import yaml
from PIL import Image

import evaluate_st
import gen_st_model
import gen_st_model_market
import prepare
import test_st
import train
from benchmarks import reference as ref
from streid.bandwidth import CANDIDATES
from streid.dataset_yaml import DATASET_FILE, read_spec
from streid.datasets import MARKET, image_folder
from streid.demo import look_of, render
from streid.interchange import load_distribution
from streid.manifest import nice_interval
from tests.helpers import run_fails
from tests.helpers_images import torch_threads, write_raw_dataset

HEADER = ["path", "person", "camera", "time", "split", "session"]
# Four people walking past three cameras on two days, times in seconds with decimals.
ROWS = [
    ("a1.jpg", "alice", "gate", "12.5", "train", "mon"),
    ("a2.jpg", "alice", "lobby", "40.25", "train", "mon"),
    ("a3.jpg", "alice", "stairs", "61.0", "train", "mon"),
    ("a4.jpg", "alice", "gate", "3000.5", "train", "tue"),
    ("a5.jpg", "alice", "lobby", "3031.0", "train", "tue"),
    ("b1.jpg", "bob", "lobby", "100.0", "train", "mon"),
    ("b2.jpg", "bob", "stairs", "118.75", "train", "mon"),
    ("b3.jpg", "bob", "stairs", "120.0", "train", "mon"),
    ("c1.jpg", "carol", "gate", "7.0", "query", "tue"),
    ("c2.jpg", "carol", "lobby", "35.5", "gallery", "tue"),
    ("c3.jpg", "carol", "stairs", "66.0", "gallery", "mon"),
    ("d1.jpg", "dave", "lobby", "200.0", "query", "mon"),
    ("d2.jpg", "dave", "gate", "171.5", "gallery", "mon"),
    ("x1.jpg", "-1", "gate", "50.0", "gallery", "mon"),
]


def write_manifest(root, rows=ROWS, header=HEADER, files=True):
    """``root/images/`` (placeholder files) and ``root/cameras.csv``."""
    (root / "images").mkdir(exist_ok=True)
    if files:
        for row in rows:
            (root / "images" / row[0]).parent.mkdir(parents=True, exist_ok=True)
            (root / "images" / row[0]).write_bytes(b"not decoded by step 1")
    with open(root / "cameras.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return root / "cameras.csv"


def test_labels_times_and_sessions_come_through(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path)
    prepare.main(["--manifest", "cameras.csv", "--download_path", "images"])
    out = tmp_path / "dataset/cameras"
    record = yaml.safe_load((out / DATASET_FILE).read_text())
    assert record["cameras"] == {"gate": 1, "lobby": 2, "stairs": 3}
    assert record["persons"] == {"alice": 1, "bob": 2, "carol": 3, "dave": 4}
    assert record["session_labels"] == ["mon", "tue"] and record["unit"] == "seconds"
    # The longest training gap is alice's, gate to stairs on Monday: 48.5 s, so
    # 48.5 / 2000 -> 0.02 s per bin and 2 x 48.5 / 0.02 = 4850 bins.
    assert (record["interval"], record["num_bins"], record["smooth"]) == (0.02, 4850, "auto")
    spec = read_spec(out)
    expected = {}
    for _, person, camera, time, split, session in ROWS:
        pid = -1 if person == "-1" else record["persons"][person]
        prepared = {"train": "train_all"}.get(split, split)
        ids = (pid, record["cameras"][camera], float(time), ["mon", "tue"].index(session))
        expected.setdefault(prepared, []).append(ids)
    for split, rows in expected.items():
        paths, _, _ = image_folder(out / split)
        names = spec.parse_names(paths)
        got = list(zip(names.labels, names.cams, names.frames, names.sessions, strict=True))
        assert sorted(got) == sorted(rows), split
        assert names.frames.dtype == np.float64
    assert sorted(p.name for p in (out / "val").iterdir()) == ["0001", "0002"]

    # Step 4 from the yaml: the histograms of the session reference.
    gen_st_model.main(["--name", "run", "--data_dir", str(out)])
    train = [r for r in ROWS if r[4] == "train"]
    labels = np.array([record["persons"][r[1]] - 1 for r in train])
    cams = np.array([record["cameras"][r[2]] for r in train])
    times = np.array([float(r[3]) for r in train])
    sessions = np.array([["mon", "tue"].index(r[5]) for r in train])
    dist = load_distribution("model/run/pytorch_result2.mat")
    np.testing.assert_array_equal(
        dist.histograms,
        ref.histograms_with_sessions(labels, sessions, cams, times, 3, 4850, 0.02),
    )
    # The network's own time units: the default sigma is the one chosen from its gaps.
    assert dist.interval == 0.02 and dist.smooth == dist.smooth_auto in CANDIDATES


def test_number_labels_sort_as_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        ("a.jpg", "7", "10", "5", "train"),
        ("b.jpg", "7", "9", "105", "train"),
        ("c.jpg", "12", "9", "50", "query"),
        ("d.jpg", "12", "10", "80", "gallery"),
    ]
    write_manifest(tmp_path, rows, HEADER[:5])
    prepare.main(["--manifest", "cameras.csv", "--download_path", "images"])
    record = yaml.safe_load((tmp_path / "dataset/cameras" / DATASET_FILE).read_text())
    assert record["cameras"] == {"9": 1, "10": 2} and record["persons"] == {"7": 1, "12": 2}
    # Integer times are frames; without sessions there is no session group.
    assert record["unit"] == "frames" and "session" not in record["pattern"]
    assert (record["interval"], record["num_bins"]) == (1, 200)


def test_the_interval_rule():
    assert nice_interval(253850, integer=True) == 100  # Market-1501's longest training gap
    assert nice_interval(200603, integer=True) == 100  # DukeMTMC-reID's
    assert nice_interval(1293, integer=True) == 1  # MSMT17's: never below one frame
    assert nice_interval(5, integer=False) == 0.002
    assert nice_interval(9000, integer=True) == 2


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_column", "has no column 'time': the header must be path,person,camera,time,split"),
        ("bad_split", "line 3: split 'test' is not one of train, query, gallery"),
        ("bad_time", "line 2: time 'noon' is not a number"),
        ("no_file", "line 7: images/b1.jpg not found"),
        ("not_image", "line 2: a1.txt is not an image"),
        ("unseen_camera", "line 10: camera 'roof' of the query split never appears in the train"),
        ("junk_training", "line 2: a training image cannot be junk (-1)"),
        ("no_pairs", "no training person was seen by two cameras"),
        ("empty", "lists no images"),
    ],
)
def test_bad_manifests(tmp_path, monkeypatch, capsys, case, message):
    monkeypatch.chdir(tmp_path)
    rows, header = [list(r) for r in ROWS], list(HEADER)
    if case == "no_column":
        header[3], rows = "when", rows
    if case == "bad_split":
        rows[1][4] = "test"
    if case == "bad_time":
        rows[0][3] = "noon"
    if case == "not_image":
        rows[0][0] = "a1.txt"
    if case == "unseen_camera":
        rows[8][2] = "roof"
    if case == "junk_training":
        rows[0][1] = "-1"
    if case == "no_pairs":  # alice only at the gate, bob only in the lobby
        for r in rows[:8]:
            r[2] = "gate" if r[1] == "alice" else "lobby"
        rows[10][2] = "lobby"  # no gallery camera without training images either
    if case == "empty":
        rows = []
    write_manifest(tmp_path, rows, header)
    if case == "no_file":
        (tmp_path / "images/b1.jpg").unlink()
    err = run_fails(
        prepare.main, ["--manifest", "cameras.csv", "--download_path", "images"], capsys
    )
    assert message in err, err
    assert not (tmp_path / "dataset").exists()


def test_market_through_the_new_path_gives_the_same_model(tmp_path, monkeypatch):
    # prepare.py now writes dataset.yaml; gen_st_model.py reads it. The result is the one of
    # gen_st_model_market.py on a folder prepared before (no dataset.yaml), bit for bit.
    monkeypatch.chdir(tmp_path)
    train = MARKET.name_list("train")[:2000]
    write_raw_dataset(tmp_path / "raw", {"bounding_box_train": train, "query": train[:3],
                      "bounding_box_test": train[3:9]}, images=False)  # fmt: skip
    prepare.main(["--Market", "--download_path", "raw"])
    gen_st_model.main(["--name", "new", "--data_dir", MARKET.prepared_dir])
    (tmp_path / MARKET.prepared_dir / DATASET_FILE).unlink()
    gen_st_model_market.main(["--name", "old"])
    new, old = (
        load_distribution("model/new/pytorch_result2.mat"),
        load_distribution("model/old/pytorch_result2.mat"),
    )
    np.testing.assert_array_equal(new.histograms, old.histograms)
    assert new[1:] == old[1:] == (100, 50, 150)  # 150: the sigma chosen from these gaps
    assert type(new.smooth) is int  # so that step 5 prints "alpha,smooth: 5 50"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("num_bins"), "has no 'num_bins': expected a positive whole number"),
        (lambda d: d.update(interval=0), "interval is 0, expected a positive number"),
        (
            lambda d: d.update(pattern=r"^(?P<person>\d+)_c(?P<camera>\d)\.jpg$"),
            "pattern lacks the named group 'frame'",
        ),
        (lambda d: d.update(pattern="(unclosed"), "pattern is not a valid regex"),
    ],
)
def test_bad_dataset_yaml(tmp_path, monkeypatch, capsys, change, message):
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path)
    prepare.main(["--manifest", "cameras.csv", "--download_path", "images"])
    path = tmp_path / "dataset/cameras" / DATASET_FILE
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    err = run_fails(gen_st_model.main, ["--data_dir", "dataset/cameras"], capsys)
    assert re.search(re.escape(message), err), err
    path.write_text("key: [unclosed")
    err = run_fails(gen_st_model.main, ["--data_dir", "dataset/cameras"], capsys)
    assert "could not be read as YAML" in err
    path.unlink()
    err = run_fails(gen_st_model.main, ["--data_dir", "dataset/cameras"], capsys)
    assert "dataset.yaml not found" in err and "prepare.py" in err
    assert not (tmp_path / "model").exists()


def write_rendered_manifest(root) -> None:
    """``root/cameras.csv`` and ``root/images/``: rendered people (the demo's renderer) seen
    by three cameras on two days, string labels and times in seconds."""
    rows, cameras = [], ("north", "east", "south")
    for person in range(10):
        split = "train" if person < 6 else "query/gallery"
        for day in ("day 1", "day 2") if person % 3 == 0 else ("day 1",):
            start = 30.0 * person + (7 if day == "day 2" else 0)
            for k, camera in enumerate(cameras):
                for shot in range(2):
                    name = f"img/p{person}_{camera}_{day[-1]}_{shot}.jpg"
                    time = f"{start + 41.5 * k + 0.25 * shot:.2f}"
                    if split == "train":
                        use = "train"
                    else:
                        use = "query" if (k, shot) == (0, 0) else "gallery"
                    rows.append((name, f"person {person}", camera, time, use, day))
    rng = np.random.default_rng(0)
    for name, person, camera, *_ in rows:
        look = look_of(int(person.split()[1]) + 1)
        view = np.random.default_rng([int(person.split()[1]), cameras.index(camera)])
        pixels = render(look, cameras.index(camera) + 1, view, rng)
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / "images" / name)
    write_manifest(root, rows, files=False)


@pytest.mark.slow
def test_steps_1_to_5_from_a_manifest(tmp_path, monkeypatch, capsys):
    """Rendered people (the demo's renderer) seen by three cameras on two days; a manifest
    with string labels and times in seconds; then every step script up to step 5."""
    monkeypatch.chdir(tmp_path)
    write_rendered_manifest(tmp_path)
    cpu = ["--gpu_ids", "-1", "--num_workers", "0"]
    with torch_threads(1):
        prepare.main(["--manifest", "cameras.csv", "--download_path", "images"])
        data = "dataset/cameras"
        small = ["--epochs", "1", "--input_size", "64", "32", "--batchsize", "8", "--seed", "0"]
        train.main(["--data_dir", data, "--name", "mine", "--weights", "none", *small, *cpu])
        test_st.main(["--test_dir", data, "--name", "mine", *cpu])
    gen_st_model.main(["--data_dir", data, "--name", "mine"])
    capsys.readouterr()
    evaluate_st.main(["--name", "mine"])
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"top1:\S+ top5:\S+ top10:\S+ mAP:\S+", out[0])
    # The manifest's sigma is the one step 4 chose from its training gaps.
    assert (
        out[1]
        == f"alpha,smooth: 5 {load_distribution('model/mine/pytorch_result2.mat').smooth_auto}"
    )
    saved = scipy.io.loadmat(tmp_path / "model/mine/pytorch_result.mat")
    assert saved["query_session"].shape == (1, 6) and saved["gallery_frames"].dtype == float
    assert set(saved["query_label"].ravel()) == {7, 8, 9, 10}
