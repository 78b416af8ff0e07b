"""Name parsing and Market renaming on all 72,447 real names, against the original's slicing."""

import numpy as np
import pytest
import torchvision

from benchmarks import reference as ref
from streid.datasets import DUKE, MARKET, image_folder, market_global_frame
from streid.errors import UserError

SPLITS = ("train", "query", "gallery")


def original_metadata(name, spec):
    """The original's get_id: label, camera and frame by string slicing."""
    label = -1 if name[0:2] == "-1" else int(name[0:4])
    camera = int(name.split("c")[1][0])
    frame = int(name.split("_")[2][1:]) if spec is MARKET else int(name[9:16])
    return label, camera, frame


def test_the_name_lists_are_complete():
    counts = {(s.key, split): len(s.name_list(split)) for s in (MARKET, DUKE) for split in SPLITS}
    assert sum(counts.values()) == 72447
    assert counts[("market", "gallery")] == 19732 and counts[("duke", "train")] == 16522


@pytest.mark.parametrize("split", SPLITS)
def test_market_renaming_and_parsing_match_the_original(split):
    raw = MARKET.name_list(split)
    renamed = [MARKET.prepared_name(n) for n in raw]
    assert renamed == [ref.market_rename(n) for n in raw]
    labels, cams, frames, sessions = MARKET.parse_names(renamed)
    assert sessions is None
    assert labels.dtype == cams.dtype == frames.dtype == np.int64
    expected = np.array([original_metadata(n, MARKET) for n in renamed])
    np.testing.assert_array_equal(np.stack([labels, cams, frames], axis=1), expected)


@pytest.mark.parametrize("split", SPLITS)
def test_duke_parsing_matches_the_original(split):
    names = DUKE.name_list(split)
    assert [DUKE.prepared_name(n) for n in names] == names  # Duke keeps its names
    labels, cams, frames, sessions = DUKE.parse_names(names)
    assert sessions is None
    expected = np.array([original_metadata(n, DUKE) for n in names])
    np.testing.assert_array_equal(np.stack([labels, cams, frames], axis=1), expected)


def test_junk_distractors_and_double_extensions():
    gallery = MARKET.name_list("gallery")
    labels = MARKET.parse_names([MARKET.prepared_name(n) for n in gallery]).labels
    assert (labels == -1).sum() == 3819 and (labels == 0).sum() == 2798
    doubled = [n for s in SPLITS for n in MARKET.name_list(s) if n.endswith(".jpg.jpg")]
    assert len(doubled) == 24
    assert all(MARKET.prepared_name(n).endswith(".jpg.jpg") for n in doubled)
    assert MARKET.prepared_name("0002_c1s1_000451_03.jpg") == "0002_c1_f0000451_03.jpg"
    # Camera 2, sequence 3: the frame follows sequences 1 and 2 (163691 + 164677 frames).
    assert MARKET.prepared_name("-1_c2s3_000451_03.jpg") == "-1_c2_f0328819_03.jpg"
    # Sequences the table does not list count 0 frames (camera 2 has three).
    assert market_global_frame(2, 5, 451) == 163691 + 164677 + 98102 + 451
    train = [MARKET.prepared_name(n) for n in MARKET.name_list("train")]
    assert len(np.unique(MARKET.parse_names(train)[0])) == 751


@pytest.mark.parametrize(
    "spec, name",
    [
        (MARKET, "0002_c1s1_000451.jpg"),
        (MARKET, "0002_c1_000451_03.jpg"),
        (DUKE, "0001_c2_f46182.jpg"),
        (DUKE, "Thumbs.db"),
    ],
)
def test_malformed_names_name_the_file_and_the_pattern(spec, name):
    with pytest.raises(UserError, match=f"{name}.*{spec.title} pattern") as err:
        spec.parse_names([name])
    assert spec.pattern_format in str(err.value)
    with pytest.raises(UserError, match=spec.raw_format):
        spec.prepared_name(name)


def test_image_folder_lists_like_torchvision(tmp_path):
    for cls, files in {
        "0002": ["b.jpg", "a.JPG", "skip.txt"],
        "0001": ["z.png"],
        "0010": [],
    }.items():
        (tmp_path / cls).mkdir()
        for f in files:
            (tmp_path / cls / f).write_bytes(b"")
    (tmp_path / "0002" / "sub").mkdir()
    (tmp_path / "0002" / "sub" / "c.jpg").write_bytes(b"")
    # A linked folder is followed, as torchvision does (a dataset assembled from links).
    (tmp_path.parent / "elsewhere").mkdir()
    (tmp_path.parent / "elsewhere" / "d.jpg").write_bytes(b"")
    (tmp_path / "0001" / "linked").symlink_to(tmp_path.parent / "elsewhere")
    paths, targets, classes = image_folder(tmp_path)
    assert str(tmp_path / "0001" / "linked" / "d.jpg") in paths
    dataset = torchvision.datasets.ImageFolder(tmp_path, allow_empty=True)
    assert classes == dataset.classes
    assert list(zip(paths, targets, strict=True)) == dataset.samples
    with pytest.raises(UserError, match="does not exist"):
        image_folder(tmp_path / "missing")
