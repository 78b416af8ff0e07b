"""model.py: the original's architectures, key names, checkpoint tolerance and weights."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision

from model import PCB, ClassBlock, PCB_test, ft_net, ft_net_dense, ft_net_middle
from streid.errors import UserError
from streid.models import ARCHITECTURES, architecture_for_flags, build_model
from streid.weights import load_state_dict_checked
from tests.helpers_images import torch_threads

pytestmark = pytest.mark.slow  # builds ResNet-50s; left out of `make mutate`

NCLASSES = 5


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with torch_threads(1):
        yield


def _no_counters(keys):
    return {k for k in keys if not k.endswith("num_batches_tracked")}


def original_keys(kind: str) -> set[str]:
    """The state-dict keys of the original's models under PyTorch 0.3 (no BatchNorm counters),
    written from docs/original.md: the torchvision trunk under ``model.``, then the heads."""
    trunk = torchvision.models.densenet121() if kind == "dense" else torchvision.models.resnet50()
    keys = {f"model.{k}" for k in _no_counters(trunk.state_dict())}
    block = ["add_block.0.weight", "add_block.0.bias", "add_block.1.weight", "add_block.1.bias"]
    block += ["add_block.1.running_mean", "add_block.1.running_var"]
    block += ["classifier.0.weight", "classifier.0.bias"]
    heads = [f"classifier{i}" for i in range(6)] if kind == "pcb" else ["classifier"]
    return keys | {f"{h}.{k}" for h in heads for k in block}


@pytest.fixture(scope="module")
def pcb():
    torch.manual_seed(0)
    return PCB(NCLASSES).eval()


def test_pcb_batch_of_one(pcb):
    with torch.no_grad():
        logits = pcb(torch.randn(1, 3, 64, 32))
        parts = pcb.forward_features(torch.randn(1, 3, 64, 32))
        test_parts = PCB_test(pcb)(torch.randn(1, 3, 64, 32))
    assert len(logits) == 6 and all(t.shape == (1, NCLASSES) for t in logits)
    assert parts.shape == (1, 2048, 6) and test_parts.shape == (1, 2048, 6)
    # layer4 keeps the resolution (stride 1): 64 px high -> 4 rows, not 2.
    assert pcb.model.layer4[0].conv2.stride == (1, 1)
    assert pcb.model.layer4[0].downsample[0].stride == (1, 1)


@pytest.mark.parametrize(
    "cls, dim",
    [(ft_net, 2048), (ft_net_dense, 1024), (ft_net_middle, 3072)],
    ids=["ft_net", "ft_net_dense", "ft_net_middle"],
)
def test_global_models_batch_of_one(cls, dim):
    net = cls(NCLASSES).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 32)).shape == (1, NCLASSES)
        assert net.forward_features(torch.randn(1, 3, 64, 32)).shape == (1, dim)


def test_classblock_layers_and_init():
    torch.manual_seed(0)
    block = ClassBlock(2048, 700, dropout=True, relu=False, num_bottleneck=256)
    assert [type(m).__name__ for m in block.add_block] == ["Linear", "BatchNorm1d", "Dropout"]
    assert [type(m).__name__ for m in ClassBlock(8, 3).add_block] == [
        "Linear",
        "BatchNorm1d",
        "LeakyReLU",
        "Dropout",
    ]
    linear, bn = block.add_block[0], block.add_block[1]
    # kaiming_normal_ fan_out: std = sqrt(2 / out_features).
    assert linear.weight.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.05)
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert bn.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert block.classifier[0].weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert not block.classifier[0].bias.any() and not linear.bias.any() and not bn.bias.any()


@pytest.mark.parametrize("kind", ["pcb", "resnet", "dense"])
def test_original_checkpoint_keys_load(kind, pcb):
    """A PyTorch 0.3 checkpoint: the original's key names, no num_batches_tracked buffers."""
    net = (
        pcb
        if kind == "pcb"
        else build_model(architecture_for_flags(False, kind == "dense"), NCLASSES)
    )
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert set(state) == original_keys(kind)
    if kind == "dense":  # torchvision < 0.3 named these 'norm.1', 'conv.2', ...
        state = {re.sub(r"(denselayer\d+\.(norm|relu|conv))([12])", r"\1.\3", k): v
                 for k, v in state.items()}  # fmt: skip
        assert "model.features.denseblock1.denselayer1.norm.1.weight" in state
    fresh = build_model(architecture_for_flags(kind == "pcb", kind == "dense"), NCLASSES)
    load_state_dict_checked(fresh, state, "net_last.pth")
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_mismatching_checkpoint_names_keys(pcb):
    state = dict(pcb.state_dict())
    state["classifier6.add_block.0.weight"] = state.pop("classifier5.add_block.0.weight")
    with pytest.raises(UserError) as err:
        load_state_dict_checked(PCB(NCLASSES), state, "net_last.pth")
    message = str(err.value)
    assert "net_last.pth does not fit the model" in message
    assert "missing keys classifier5.add_block.0.weight" in message
    assert "unexpected keys classifier6.add_block.0.weight" in message
    with pytest.raises(UserError, match=r"classifier0\.classifier\.0\.weight \(7, 256\)"):
        load_state_dict_checked(pcb, PCB(7).state_dict(), "net_last.pth")


def test_imagenet_weights_from_the_local_cache_only(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(UserError) as err:
        build_model(ARCHITECTURES["pcb"], NCLASSES, weights="imagenet")
    message = str(err.value)
    assert "resnet50-0676ba61.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "--weights PATH" in message and "--weights none" in message

    # With the file in place (here a random ResNet-50, with legacy-free keys) it is loaded.
    trunk = torchvision.models.resnet50()
    (tmp_path / "hub/checkpoints").mkdir(parents=True)
    torch.save(trunk.state_dict(), tmp_path / "hub/checkpoints/resnet50-0676ba61.pth")
    net = build_model(ARCHITECTURES["resnet50"], NCLASSES, weights="imagenet")
    assert torch.equal(net.model.conv1.weight, trunk.conv1.weight)
    # --weights PATH: the same file given by path.
    net = build_model(
        ARCHITECTURES["pcb"],
        NCLASSES,
        weights=str(tmp_path / "hub/checkpoints/resnet50-0676ba61.pth"),
    )
    assert torch.equal(net.model.layer4[0].conv2.weight, trunk.layer4[0].conv2.weight)


def test_densenet_imagenet_file_with_legacy_keys(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    trunk = torchvision.models.densenet121()
    # The file as torchvision publishes it: legacy names, no num_batches_tracked (PyTorch 0.3).
    legacy = {re.sub(r"(denselayer\d+\.(norm|relu|conv))([12])", r"\1.\3", k): v
              for k, v in trunk.state_dict().items()
              if not k.endswith("num_batches_tracked")}  # fmt: skip
    (tmp_path / "checkpoints").mkdir()
    torch.save(legacy, tmp_path / "checkpoints/densenet121-a639ec97.pth")
    net = ft_net_dense(NCLASSES, weights=torchvision.models.DenseNet121_Weights.IMAGENET1K_V1)
    layer = net.model.features.denseblock4.denselayer16
    assert torch.equal(layer.conv2.weight, trunk.features.denseblock4.denselayer16.conv2.weight)


def test_weights_file_that_is_not_a_state_dict(tmp_path):
    (tmp_path / "w.pth").write_text("not a checkpoint")
    with pytest.raises(UserError, match="could not be read as a PyTorch state dict"):
        build_model(ARCHITECTURES["resnet50"], NCLASSES, weights=str(tmp_path / "w.pth"))
    with pytest.raises(UserError, match="not found"):
        build_model(ARCHITECTURES["resnet50"], NCLASSES, weights=str(tmp_path / "missing.pth"))


def test_resnet_from_scratch_starts_its_blocks_as_the_identity():
    net = build_model(ARCHITECTURES["pcb"], NCLASSES, weights="none")
    for layer in (net.model.layer1, net.model.layer4):
        assert all(not block.bn3.weight.detach().any() for block in layer)
    assert net.model.bn1.weight.detach().all()
