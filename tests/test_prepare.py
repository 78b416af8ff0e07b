"""Step 1, prepare.py, on small raw trees built from real Market-1501 and Duke names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import prepare
from benchmarks import reference as ref
from streid.dataset_yaml import read_spec, spec_to_dict
from streid.datasets import DUKE, MARKET
from tests.helpers_images import write_raw_dataset


def market_sample() -> dict[str, list[str]]:
    """Real names: two training ids, queries with '.jpg.jpg' names, junk and distractors."""
    train = [n for n in MARKET.name_list("train") if n.startswith(("0002_", "0007_"))]
    query = [n for n in MARKET.name_list("query") if n.startswith(("0001_", "1488_"))]
    gallery = MARKET.name_list("gallery")
    gallery = [n for n in gallery if n.startswith(("-1_c4", "0000_c1s6", "0001_"))]
    return {"bounding_box_train": train, "query": query, "bounding_box_test": gallery}


def tree(root: Path) -> dict[str, list[str]]:
    """{'<split>/<id>': sorted file names} of a prepared folder (dataset.yaml aside)."""
    out = {}
    for split in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for pid in sorted(os.listdir(root / split)):
            out[f"{split}/{pid}"] = sorted(os.listdir(root / split / pid))
    return out


def expected_tree(raw: dict[str, list[str]], rename) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for folder, split in (("query", "query"), ("bounding_box_test", "gallery")):
        for name in raw[folder]:
            out.setdefault(f"{split}/{name.split('_')[0]}", []).append(rename(name))
    for name in sorted(raw["bounding_box_train"]):
        pid = name.split("_")[0]
        out.setdefault(f"train_all/{pid}", []).append(rename(name))
        split = "train" if f"val/{pid}" in out else "val"
        out.setdefault(f"{split}/{pid}", []).append(rename(name))
    return {k: sorted(v) for k, v in out.items()}


def test_market_tree_names_and_links(tmp_path, monkeypatch):
    raw = market_sample()
    assert any(n.endswith(".jpg.jpg") for n in raw["query"] + raw["bounding_box_test"])
    write_raw_dataset(tmp_path / "raw", raw, images=False)
    (tmp_path / "raw/query/Thumbs.db").write_bytes(b"skipped")  # Market ships these
    monkeypatch.chdir(tmp_path)

    prepare.main(["--Market", "--download_path", "raw"])

    out = tmp_path / MARKET.prepared_dir  # the original's default location
    got = tree(out)
    assert got == expected_tree(raw, ref.market_rename)
    # One value worked out by hand: camera 1, sequence 6 starts after 371,660 frames.
    assert "0007_c1_f0400206_01.jpg" in got["val/0007"]
    assert got["query/1488"][0].endswith(".jpg.jpg")
    assert "gallery/-1" in got and "gallery/0000" in got
    # Hard links, not copies.
    src = tmp_path / "raw/bounding_box_train/0007_c1s6_028546_01.jpg"
    assert os.path.samefile(src, out / "train_all/0007/0007_c1_f0400206_01.jpg")

    # The folder describes itself: Market-1501's built-in settings.
    assert spec_to_dict(read_spec(out)) == spec_to_dict(MARKET)

    # Running it again is safe and changes nothing.
    prepare.main(["--Market", "--download_path", "raw"])
    assert tree(out) == got


def test_duke_keeps_names(tmp_path, monkeypatch):
    raw = {
        "bounding_box_train": [n for n in DUKE.name_list("train") if n.startswith("0001_")],
        "query": DUKE.name_list("query")[:3],
        "bounding_box_test": DUKE.name_list("gallery")[:4],
    }
    write_raw_dataset(tmp_path / "raw", raw, images=False)
    monkeypatch.chdir(tmp_path)
    prepare.main(["--Duke", "--download_path", "raw", "--save_path", "out"])
    assert tree(tmp_path / "out") == expected_tree(raw, lambda n: n)


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_folder", "--download_path nowhere/ not found"),
        ("no_split", "query/ not found"),
        ("empty_split", "query/ holds no .jpg images"),
        ("bad_name", "does not match the Market-1501 pattern 'PPPP_cCsS_FFFFFF_BB.jpg'"),
    ],
)
def test_bad_raw_folders(tmp_path, monkeypatch, capsys, case, message):
    raw = {"bounding_box_train": ["0002_c1s1_000451_03.jpg"], "bounding_box_test": []}
    raw["query"] = ["0001_c1s1_001051_00.jpg"]
    if case == "bad_name":
        raw["query"] = ["0001_c1_f0001051.jpg"]  # a Duke name in a Market folder
    if case != "no_split":
        raw["bounding_box_test"] = ["0001_c2s1_000301_00.jpg"]
    if case == "empty_split":
        raw["query"] = []
    if case == "no_split":
        del raw["query"]
    write_raw_dataset(tmp_path / "raw", raw, images=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["--Market", "--download_path", "nowhere" if case == "no_folder" else "raw"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / MARKET.prepared_dir).exists()  # checked before anything is written
