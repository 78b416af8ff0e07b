"""Steps 2 and 3 on the CPU: tiny generated images, random initialisation, the real scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision
from PIL import Image

import evaluate_st
import gen_st_model_duke
import gen_st_model_market
import prepare
import test_st_duke
import test_st_market
import train_market
from streid import transforms
from streid.datasets import DUKE, MARKET
from streid.models import PCB, ft_net
from tests.helpers_images import torch_threads, write_jpeg, write_raw_dataset

pytestmark = pytest.mark.slow  # builds ResNet-50s; left out of `make mutate`

SIZE = ["--input_size", "64", "32"]
CPU = ["--gpu_ids", "-1", "--num_workers", "0"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """A prepared Market-1501 tree from real names: 3 training ids (one colour each), query
    and gallery with '.jpg.jpg' names, junk (-1) and distractors (0000)."""
    root = tmp_path_factory.mktemp("market")
    train = [n for n in MARKET.name_list("train") if n.startswith(("0002_", "0007_", "0010_"))]
    train = [n for n in train if not n.startswith("0002_")] + [
        n for n in train if n.startswith("0002_")
    ][:6]
    query = [n for n in MARKET.name_list("query") if n.startswith(("0001_", "1488_c1"))]
    gallery = [n for n in MARKET.name_list("gallery") if n.startswith("0001_")][:5]
    gallery += ["-1_c1s1_000401_03.jpg", "0000_c1s6_023071_04.jpg.jpg"]
    raw = {"bounding_box_train": train, "query": query, "bounding_box_test": gallery}
    write_raw_dataset(root / "raw", raw)
    prepare.main(["--Market", "--download_path", str(root / "raw"), "--save_path", str(root)])
    return root


def original_metadata(folder: Path):
    """(labels, cameras, frames) in torchvision ImageFolder order, parsed as the original's
    test script did (``get_id``)."""
    labels, cams, frames = [], [], []
    for path, _ in torchvision.datasets.ImageFolder(str(folder)).imgs:
        name = Path(path).name
        labels.append(-1 if name[0:2] == "-1" else int(name[0:4]))
        cams.append(int(name.split("c")[1][0]))
        frames.append(int(name.split("_")[2][1:]))
    return labels, cams, frames


def last_line(text: str) -> str:
    return re.split(r"[\r\n]+", text.strip())[-1]


def test_transforms_keep_the_original_sizes():
    def sizes(transform):
        return [tuple(t.size) for t in transform.transforms if hasattr(t, "size")]

    assert sizes(transforms.train_transform(True, (384, 192))) == [(384, 192)]
    assert sizes(transforms.train_transform(False, (256, 128))) == [(288, 144), (256, 128)]
    assert sizes(transforms.val_transform((256, 128))) == [(256, 128)]
    assert sizes(transforms.test_transform(False, (256, 128))) == [(288, 144)]
    assert sizes(transforms.test_transform(True, (384, 192))) == [(384, 192)]
    assert sizes(transforms.train_transform(False, (64, 32))) == [(72, 36), (64, 32)]
    names = [
        type(t).__name__ for t in transforms.train_transform(True, (64, 32), 0.5, True).transforms
    ]
    assert names == [
        "ColorJitter",
        "Resize",
        "RandomHorizontalFlip",
        "ToTensor",
        "Normalize",
        "RandomErasing",
    ]


def test_easy_case_learns_saves_and_extracts(market, tmp_path, monkeypatch, capsys):
    """ResNet-50 on 3 colours: the loss falls; checkpoints, curves and features are written."""
    monkeypatch.chdir(tmp_path)
    # From scratch (--weights none) at the original's learning rates: the zero-init-residual
    # trunk is what makes this train.
    torch.manual_seed(0)
    train_market.main(
        ["--data_dir", str(market), "--name", "easy", "--weights", "none"]
        + ["--epochs", "10", "--batchsize", "8", "--seed", "0", "--num_workers", "0", *SIZE]
    )
    err = capsys.readouterr().err
    assert err.count("warning: CUDA is not available; running on the CPU") == 1

    run = tmp_path / "model/easy"
    history = torch.load(run / "resume.pth", weights_only=True)["history"]
    losses = history["train"]["loss"]
    assert len(losses) == 10 and len(history["val"]["err"]) == 10
    assert max(losses[-3:]) < losses[0] / 4, losses
    assert history["train"]["err"][-1] == 0.0

    assert sorted(p.name for p in run.glob("net_*.pth")) == ["net_9.pth", "net_last.pth"]
    state = torch.load(run / "net_last.pth", weights_only=True)
    assert set(state) == set(ft_net(3).state_dict()) and "model.fc.weight" in state
    assert all(v.device.type == "cpu" for v in state.values())
    opts = json.loads((run / "opts.json").read_text())
    assert (opts["nclasses"], opts["backbone"], opts["input_size"]) == (3, "resnet50", [64, 32])
    assert (opts["PCB"], opts["batchsize"], opts["name"]) == (False, 8, "easy")
    assert Image.open(run / "train.jpg").format == "JPEG"

    test_st_market.main(["--name", "easy", "--test_dir", str(market), *CPU, "--batchsize", "4"])
    result = scipy.io.loadmat(run / "pytorch_result.mat")
    for split in ("query", "gallery"):
        labels, cams, frames = original_metadata(market / split)
        assert result[f"{split}_f"].shape == (len(labels), 2048)
        assert result[f"{split}_f"].dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(result[f"{split}_f"], axis=1), 1, rtol=1e-5)
        assert result[f"{split}_label"].tolist() == [labels]
        assert result[f"{split}_cam"].tolist() == [cams]
        assert result[f"{split}_frames"].tolist() == [frames]
    assert -1 in result["gallery_label"] and 0 in result["gallery_label"]
    # 1488_c1s6_023021_00.jpg.jpg: camera 1, sequence 6 starts after 371,660 frames.
    assert 371660 + 23021 in result["query_frames"]


def test_pcb_trains_resumes_and_extracts_parts(market, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--data_dir", str(market), "--name", "pcb", "--PCB", "--weights", "none"]
    args += ["--train_all", "--erasing_p", "0.5", "--color_jitter", "--batchsize", "8"]
    args += ["--seed", "0", *CPU, *SIZE]
    train_market.main([*args, "--epochs", "1"])
    run = tmp_path / "model/pcb"
    assert not (run / "net_0.pth").exists() and (run / "net_last.pth").is_file()
    first = torch.load(run / "net_last.pth", weights_only=True)

    train_market.main([*args, "--epochs", "2", "--resume"])
    assert "resuming model/pcb/ at epoch 1" in capsys.readouterr().out
    assert len(torch.load(run / "resume.pth", weights_only=True)["history"]["train"]["loss"]) == 2
    second = torch.load(run / "net_last.pth", weights_only=True)
    assert not torch.equal(
        first["classifier0.classifier.0.weight"], second["classifier0.classifier.0.weight"]
    )

    # No --PCB flag: the run's opts.json says PCB and wins, with a note.
    test_st_market.main(["--name", "pcb", "--test_dir", str(market), *CPU])
    assert "note: model/pcb/opts.json says PCB=True; using that" in capsys.readouterr().err
    result = scipy.io.loadmat(run / "pytorch_result.mat")
    labels, cams, frames = original_metadata(market / "query")
    query_f = result["query_f"]
    assert query_f.shape == (len(labels), 12288)
    assert result["query_cam"].tolist() == [cams] and result["query_frames"].tolist() == [frames]
    # Each of the 6 parts is unit length over its 2048 channels, in (channel, part) order.
    np.testing.assert_allclose(np.linalg.norm(query_f.reshape(-1, 2048, 6), axis=1), 1, rtol=1e-5)

    # The first query row, recomputed by hand: image plus flip, parts normalised, flattened.
    net = PCB(3).eval()
    net.load_state_dict(second)
    path = torchvision.datasets.ImageFolder(str(market / "query")).imgs[0][0]
    x = transforms.test_transform(True, (64, 32))(Image.open(path).convert("RGB"))[None]
    with torch.no_grad():
        f = net.forward_features(x) + net.forward_features(x.flip(3))
    f = (f / f.norm(dim=1, keepdim=True)).view(1, -1)
    np.testing.assert_allclose(query_f[0], f[0].numpy(), atol=1e-5)


def _broken_image_tree(root: Path) -> Path:
    for i, pid in enumerate(("0002", "0007")):
        for k in range(4):
            write_jpeg(root / "train" / pid / f"{pid}_c1_f000000{k}_01.jpg", (200 * i, 90, 90), k)
    bad = root / "train/0007/0007_c2_f0000009_01.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    return bad


@pytest.mark.parametrize("workers", ["0", "1"])
def test_undecodable_image_is_named(tmp_path, monkeypatch, capsys, workers):
    monkeypatch.chdir(tmp_path)
    bad = _broken_image_tree(tmp_path / "data")
    with pytest.raises(SystemExit) as exit_info:
        train_market.main(
            ["--data_dir", "data", "--weights", "none", "--epochs", "1", "--batchsize", "9"]
            + ["--gpu_ids", "-1", "--num_workers", workers, *SIZE]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert last_line(err).startswith(f"error: cannot decode image data/train/0007/{bad.name}")
    assert "Traceback" not in err


def _fake_run(name: str, files: dict[str, object]) -> Path:
    run = Path("model") / name
    run.mkdir(parents=True)
    for filename, content in files.items():
        if isinstance(content, dict) and filename.endswith(".pth"):
            torch.save(content, run / filename)
        else:
            (run / filename).write_text(json.dumps(content))
    return run


@pytest.mark.parametrize(
    "case, message",
    [
        ("train_no_data", "dataset/market_rename/train/ not found: run prepare.py --Market"),
        ("train_empty", "data/train/ holds no images"),
        ("train_no_gpu", "--gpu_ids 3: there is no GPU 3 (this machine has 1: 0..0"),
        ("train_no_imagenet", "ImageNet weights resnet50-0676ba61.pth not found in"),
        ("train_no_resume", "--resume: model/ft_ResNet50/resume.pth not found"),
        ("test_no_run", "model/absent/ does not exist"),
        ("test_no_epoch", "--which_epoch 7: model/run/net_7.pth not found; it has "),
        ("test_wrong_net", "does not fit the model: missing keys classifier0.add_block.0.weight"),
        ("test_no_query", "data/query/ not found: run prepare.py --Market (step 1)"),
    ],
)
def test_bad_input_one_line(tmp_path, monkeypatch, capsys, case, message):
    monkeypatch.chdir(tmp_path)
    for split in ("train", "gallery"):
        (tmp_path / "data" / split).mkdir(parents=True)
    write_jpeg(tmp_path / "data/gallery/0001/0001_c1_f0000001_01.jpg", (9, 9, 9), 0)
    train = ["--data_dir", "data", "--weights", "none", *CPU]
    test = ["--name", "run", "--test_dir", "data", *CPU]
    if case in ("train_no_imagenet", "train_no_resume"):
        _broken_image_tree(tmp_path / "data")  # a training set (never decoded here)
        monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    if case == "train_no_gpu":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    if case == "test_no_epoch":
        _fake_run("run", {"net_9.pth": {}, "net_last.pth": {}})
    if case in ("test_wrong_net", "test_no_query"):
        # A ResNet-50 checkpoint of the original (no opts.json) tested with --PCB.
        _fake_run("run", {"net_last.pth": ft_net(3).state_dict()})
    argv = {
        "train_no_data": ["--weights", "none", *CPU],
        "train_empty": train,
        "train_no_gpu": [*train, "--gpu_ids", "3"],
        "train_no_imagenet": ["--data_dir", "data", "--batchsize", "4", *CPU],
        "train_no_resume": [*train, "--batchsize", "4", "--resume"],
        "test_no_run": ["--name", "absent", *CPU],
        "test_no_epoch": [*test, "--which_epoch", "7"],
        "test_wrong_net": [*test, "--PCB"],
        "test_no_query": test,
    }[case]
    main = train_market.main if case.startswith("train") else test_st_market.main
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in last_line(err) and "Traceback" not in err
    if case == "test_no_epoch":
        assert last_line(err).endswith("it has net_9.pth, net_last.pth")


@pytest.fixture(scope="module")
def walkers(tmp_path_factory) -> Path:
    """A prepared Market-1501 tree of three training people seen by all six cameras (one
    colour each), and a fourth person's six queries, one per camera."""
    root = tmp_path_factory.mktemp("walkers")
    train = [n for n in MARKET.name_list("train") if n.startswith(("0048_", "0065_", "0110_"))]
    query = [n for n in MARKET.name_list("query") if n.startswith("0001_")]
    gallery = [n for n in MARKET.name_list("gallery") if n.startswith("0001_")][:8]
    raw = {"bounding_box_train": train, "query": query, "bounding_box_test": gallery}
    write_raw_dataset(root / "raw", raw)
    prepare.main(["--Market", "--download_path", str(root / "raw"), "--save_path", str(root)])
    return root


def test_steps_3_to_5_without_identity_labels(walkers, market, tmp_path, monkeypatch, capsys):
    """Step 3 --train, step 4 --unlabeled and step 5 on rendered images; then the same net,
    trained on this Market-1501 tree, extracts a DukeMTMC-reID tree (the cross-domain
    protocol): its class count comes from its own opts.json."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    args = ["--data_dir", str(walkers), "--name", "lf", "--weights", "none", "--epochs", "1"]
    train_market.main([*args, "--batchsize", "8", "--seed", "0", "--num_workers", "0", *SIZE])
    test_st_market.main(["--name", "lf", "--test_dir", str(walkers), "--train", *CPU])
    assert "saved model/lf/pytorch_result_train.mat" in capsys.readouterr().out
    saved = scipy.io.loadmat(tmp_path / "model/lf/pytorch_result_train.mat")
    labels, cams, frames = original_metadata(walkers / "train_all")
    assert saved["train_f"].shape == (len(labels), 2048) and saved["train_f"].dtype == np.float32
    assert saved["train_label"].tolist() == [labels] and saved["train_cam"].tolist() == [cams]
    assert saved["train_frames"].tolist() == [frames] and "train_session" not in saved
    gen_st_model_market.main(["--data_dir", str(walkers), "--name", "lf", "--unlabeled"])
    out = capsys.readouterr().out
    assert "round 4/4: " in out and "pairwise precision 1.000" in out, out
    evaluate_st.main(["--name", "lf"])
    assert capsys.readouterr().out.startswith("top1:")
    duke = tmp_path / "duke"
    train = [n for n in DUKE.name_list("train") if n.startswith(("0008_", "0022_"))]
    raw = {"bounding_box_train": train, "query": DUKE.name_list("query")[:3]}
    write_raw_dataset(duke / "raw", {**raw, "bounding_box_test": DUKE.name_list("gallery")[:4]})
    prepare.main(["--Duke", "--download_path", str(duke / "raw"), "--save_path", str(duke)])
    test_st_duke.main(["--name", "lf", "--test_dir", str(duke), "--train", *CPU, "--PCB"])
    err = capsys.readouterr().err
    assert "note: model/lf/opts.json says PCB=False; using that" in err
    saved = scipy.io.loadmat(tmp_path / "model/lf/pytorch_result_train.mat")
    assert saved["train_f"].shape == (55, 2048)
    assert sorted(set(saved["train_label"][0])) == [8, 22]  # Duke's persons, not the net's
    gen_st_model_duke.main(["--data_dir", str(duke), "--name", "lf", "--unlabeled"])
    pseudo = scipy.io.loadmat(tmp_path / "model/lf/pytorch_result2.mat")["pseudo_labels"][0]
    assert (pseudo >= 0).sum() > 27
    persons = {(p, person) for p, person in zip(pseudo, saved["train_label"][0], strict=True)}
    assert len({p for p, _ in persons if p >= 0}) == len([p for p, _ in persons if p >= 0])
