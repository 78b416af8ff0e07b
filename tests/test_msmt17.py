"""MSMT17: name parsing on all 126,441 real names, step 4 with sessions on the real training
names, step 1 from the dataset as shipped, and person 0000 as the real person it is."""

import numpy as np
import pytest

import gen_st_model
import prepare
from benchmarks import reference as ref
from benchmarks import simulate
from benchmarks.simulate import real_names
from streid.dataset_yaml import read_spec, spec_to_dict
from streid.datasets import MSMT17, MSMT17_SESSIONS, NAME_LIST_DIR
from streid.errors import UserError
from streid.interchange import load_distribution
from streid.metrics import RankingEvaluator
from streid.st_model import camera_pair_histograms
from tests.helpers import run_fails

LISTS = tuple(simulate.MSMT17_LISTS)  # train, val, query, gallery
MSMT17_LIST_DIR = NAME_LIST_DIR / MSMT17.list_dir


def sliced(name: str):
    """What a name says, by plain string slicing of PPPP_III_CC_DDDDslot_FFFF_B[_ex].jpg."""
    fields = name.split("_")
    return int(name[:4]), int(fields[2]), MSMT17_SESSIONS.index(fields[3]), int(fields[4])


def test_every_real_name_parses_as_sliced():
    counts = {}
    for split in LISTS:
        names, parsed = real_names(MSMT17, split)
        counts[split] = len(names)
        expected = np.array([sliced(n) for n in names])
        got = np.stack([parsed.labels, parsed.cams, parsed.sessions, parsed.frames], axis=1)
        np.testing.assert_array_equal(got, expected)
        assert parsed.frames.dtype == np.int64
    assert counts == {"train": 30248, "val": 2373, "query": 11659, "gallery": 82161}
    assert sum(counts.values()) == 126441
    # Ids restart at 0 in the test lists, and 0 is a person with images in both.
    query, gallery = real_names(MSMT17, "query")[1], real_names(MSMT17, "gallery")[1]
    assert 0 in query.labels and 0 in gallery.labels and -1 not in gallery.labels


def test_a_session_the_spec_does_not_know_is_named():
    message = "file name '0000_045_12_0304morning_0006_2.jpg': session '0304morning' is not"
    with pytest.raises(UserError, match=message):
        MSMT17.parse_names(["0000_045_12_0304morning_0006_2.jpg"])
    with pytest.raises(UserError, match="sessions 0113morning, 0113noon, 0113afternoon, "):
        MSMT17.parse_names(["0000_045_12_0304morning_0006_2.jpg"])


def test_real_training_histograms_equal_the_session_reference():
    labels, sessions, cams, frames = [], [], [], []
    for split in ("train", "val"):
        parsed = real_names(MSMT17, split)[1]
        labels += [parsed.labels]
        sessions += [parsed.sessions]
        cams += [parsed.cams]
        frames += [parsed.frames]
    labels, sessions, cams, frames = map(np.concatenate, (labels, sessions, cams, frames))
    targets = np.unique(labels, return_inverse=True)[1]
    spec = MSMT17
    fast = camera_pair_histograms(
        targets, cams, frames, spec.num_cameras, spec.num_bins, spec.interval, sessions
    )
    slow = ref.histograms_with_sessions(
        targets, sessions, cams, frames, spec.num_cameras, spec.num_bins, spec.interval
    )
    np.testing.assert_array_equal(fast, slow)
    # Without sessions, people seen on two days would mix their days' frames.
    assert not np.array_equal(
        fast, camera_pair_histograms(targets, cams, frames, 15, 40, 50, sessions=None)
    )


def test_person_0_is_evaluated_like_any_other():
    # Gallery: person 0 in camera 2 (a true match), person 0 in camera 1 (same camera: junk),
    # person 5. Market's distractors are 0 too, and are no different: wrong for every other
    # query, right for a query of person 0.
    evaluator = RankingEvaluator(np.array([0, 0, 5]), np.array([2, 1, 2]))
    evaluator.add(np.array([[0.2, 0.9, 0.8]]), [0], [1])
    metrics = evaluator.result()
    # After junk removal: [person 5, person 0]; AP = (0/1 + 1/2) / 2.
    assert metrics.first_good.tolist() == [1] and metrics.ap[0] == 0.25


@pytest.fixture(scope="module")
def msmt17_raw(tmp_path_factory):
    """MSMT17_V1 as shipped, for a few identities: the four lists and empty image files."""
    return simulate.msmt17_raw(tmp_path_factory.mktemp("msmt17"), {"0000", "0001", "0002"})


def test_prepare_msmt17_and_step_4(msmt17_raw, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    prepare.main(["--MSMT17", "--download_path", str(msmt17_raw)])
    out = tmp_path / MSMT17.prepared_dir
    assert spec_to_dict(read_spec(out)) == spec_to_dict(MSMT17)
    lists = {s: (msmt17_raw / f"list_{s}.txt").read_text().split()[::2] for s in LISTS}
    for split, expected in [
        ("train_all", lists["train"] + lists["val"]),
        ("train", lists["train"]),
        ("val", lists["val"]),
        ("query", lists["query"]),
        ("gallery", lists["gallery"]),
    ]:
        got = sorted(str(p.relative_to(out / split)) for p in (out / split).rglob("*.jpg"))
        assert got == sorted(expected), split
    gen_st_model.main(["--name", "run", "--data_dir", str(out)])
    # Identities 0-2 of the training lists were each seen in one session.
    assert "from 143 images of 3 identities (3 walks in 1 session)" in capsys.readouterr().out
    dist = load_distribution("model/run/pytorch_result2.mat")
    assert dist.histograms.shape == (15, 15, 40)
    assert (dist.interval, dist.smooth) == (50, 5)


def test_msmt17_folder_without_its_lists(msmt17_raw, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    err = run_fails(prepare.main, ["--MSMT17", "--download_path", "raw"], capsys)
    assert "raw/list_train.txt not found" in err and "MSMT17_V1 folder as shipped" in err
    assert not (tmp_path / "dataset").exists()
