"""The embedded demo: its dataset, its pictures, and a tiny run of the whole pipeline."""

import re

import numpy as np
import pytest
from PIL import Image

import demo
import plot_rank_list
import plot_st_distribution
from benchmarks.simulate import write_run
from streid.datasets import MARKET
from streid.demo import choose_names, look_of, write_dataset
from streid.interchange import FeatureSet, Split
from tests.helpers import run_fails


def test_demo_names_are_a_real_subset():
    names = choose_names()
    real = {folder: set(MARKET.name_list(split)) for folder, split in [
        ("bounding_box_train", "train"), ("query", "query"), ("bounding_box_test", "gallery")
    ]}  # fmt: skip
    for folder, files in names.items():
        assert set(files) <= real[folder] and len(set(files)) == len(files)
    train_ids = {n.split("_")[0] for n in names["bounding_box_train"]}
    assert len(train_ids) == 100 and len(names["bounding_box_train"]) <= 100 * 10
    query_ids = {n.split("_")[0] for n in names["query"]}
    gallery_ids = {n.split("_")[0] for n in names["bounding_box_test"]}
    assert len(query_ids) == 100 and query_ids < gallery_ids and {"-1", "0000"} < gallery_ids
    assert choose_names() == names  # deterministic


def test_rendering_is_deterministic_and_people_look_like_themselves(tmp_path):
    names = {
        "query": ["0016_c1s1_001351_00.jpg"],
        "bounding_box_test": ["0016_c2s1_078346_01.jpg", "0016_c1s1_001376_02.jpg"]
        + ["-1_c1s1_000401_03.jpg", "0000_c1s1_000151_01.jpg"],
    }
    for run in ("a", "b"):
        assert write_dataset(tmp_path / run, names) == 5
    files = sorted((tmp_path / "a").rglob("*.jpg"))
    for path in files:
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert path.read_bytes() == twin.read_bytes()
        assert Image.open(path).size == (64, 128)

    def pixels(name):
        folder = "query" if name.endswith("_00.jpg") else "bounding_box_test"
        return np.asarray(Image.open(tmp_path / "a" / folder / name), dtype=float)

    query = pixels("0016_c1s1_001351_00.jpg")
    same_passage = np.abs(query - pixels("0016_c1s1_001376_02.jpg")).mean()
    stranger = np.abs(query - pixels("0000_c1s1_000151_01.jpg")).mean()
    assert same_passage < stranger
    # Look-alikes share the outfit, each keeps their own features.
    assert look_of(16) == look_of(16) and look_of(16) != look_of(17)


@pytest.mark.slow
def test_the_whole_pipeline_on_a_tiny_demo(tmp_path, capsys):
    tiny = ["--epochs", "1", "--train_ids", "12", "--query_ids", "10"]
    demo.main(["--out", str(tmp_path / "demo"), *tiny])
    out = capsys.readouterr().out
    rows = re.findall(r"\| (appearance only|\+ spatial-temporal|\+ re-ranking)\s+\|(.*)\|", out)
    assert [r[0] for r in rows] == ["appearance only", "+ spatial-temporal", "+ re-ranking"]
    table = {title: [float(v) for v in cells.split("|")] for title, cells in rows}
    for values in table.values():
        assert len(values) == 4 and all(0 <= v <= 100 for v in values)
    # The paper's effect, even after one epoch: when and where people were seen beats
    # appearance alone (mAP), and ranks at least as many true matches first.
    visual, joint = table["appearance only"], table["+ spatial-temporal"]
    assert joint[3] > visual[3] and joint[0] >= visual[0], table
    run = tmp_path / "demo/model/demo"
    for picture in ("st_distribution.png", "rank_list.png"):
        assert Image.open(run / picture).format == "PNG"
        assert str(run / picture) in out
    assert (run / "all_scores.mat").is_file() and (run / "net_last.pth").is_file()
    # A second run replaces its own folder, but never a folder it did not make.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/thesis.tex").write_text("precious")
    with pytest.raises(SystemExit, match="not a demo folder"):
        demo.main(["--out", str(tmp_path / "mine"), *tiny])
    assert (tmp_path / "mine/thesis.tex").read_text() == "precious"


def test_picture_scripts_report_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model/run").mkdir(parents=True)
    err = run_fails(plot_st_distribution.main, ["--name", "run"], capsys)
    assert "pytorch_result2.mat not found" in err
    one = Split(np.ones((1, 4), np.float32), np.array([2]), np.array([1]), np.array([451]))
    write_run(tmp_path, FeatureSet(one, one), np.ones((8, 8, 5)))
    for split in ("query", "gallery"):
        (tmp_path / f"data/{split}/0003").mkdir(parents=True)
        (tmp_path / f"data/{split}/0003/0003_c1_f0000451_00.jpg").write_bytes(b"")
    err = run_fails(plot_rank_list.main, ["--name", "run", "--test_dir", "data"], capsys)
    assert "do not match" in err and "step 3's order" in err
