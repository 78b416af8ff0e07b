"""The appearance models of the original (layumi/Person_reID_baseline_pytorch, 2018).

Every model keeps its ImageNet trunk as ``self.model`` and its heads under the original's
attribute names (``classifier``, ``classifier0`` .. ``classifier5``), so the state-dict keys
are those of the original and its released ``net_last.pth`` files load unchanged.

Each model has two paths, as in timm:

- ``forward(x)``: the training logits (a list of six for PCB);
- ``forward_features(x)``: what step 3 extracts, (N, 2048) for ResNet-50, (N, 1024) for
  DenseNet-121, (N, 3072) for the middle model, (N, 2048, 6) for PCB. The original got these
  by replacing layers with ``nn.Sequential()``; a second path leaves the module intact.

Pooled maps are flattened with ``flatten(1)``, never ``squeeze()``, which in the original
turned a batch of one into a vector and broke the classifier.

The registry (:data:`ARCHITECTURES`) names each net (``resnet50``, ``densenet121``,
``resnet50_middle``, ``pcb``): the training options record that name, and step 3 rebuilds the
net from it with :func:`build_model`.

Weights: ``weights=None`` is random initialisation (torchvision's own for the trunk, with
``zero_init_residual`` for ResNet-50, see :func:`resnet50`), a
torchvision ``WeightsEnum`` (what the original's ``pretrained=True`` gave) is read from the
torch hub cache, downloaded into it first when missing, a path loads a trunk state dict from
that file.
The heads always get the original's initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.models import DenseNet121_Weights, ResNet50_Weights
from torchvision.models._api import WeightsEnum

from .errors import UserError
from .weights import cached_weights_file, load_state_dict_checked, read_state_dict

__all__ = [
    "ARCHITECTURES",
    "PCB",
    "Architecture",
    "ClassBlock",
    "PCB_test",
    "architecture",
    "build_model",
    "ft_net",
    "ft_net_dense",
    "ft_net_middle",
    "weights_init_classifier",
    "weights_init_kaiming",
]

NUM_PARTS = 6  # PCB cuts the last feature map into 6 horizontal stripes


# -- initialisation, as the original -------------------------------------------------------------
def weights_init_kaiming(m: nn.Module) -> None:
    """Kaiming-normal for Conv (fan_in) and Linear (fan_out, bias 0); BatchNorm1d N(1, 0.02)."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.kaiming_normal_(m.weight.data, a=0, mode="fan_in")
    elif classname.find("Linear") != -1:
        nn.init.kaiming_normal_(m.weight.data, a=0, mode="fan_out")
        nn.init.constant_(m.bias.data, 0.0)
    elif classname.find("BatchNorm1d") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0.0)


def weights_init_classifier(m: nn.Module) -> None:
    """N(0, 0.001) for the last Linear layer, bias 0."""
    if m.__class__.__name__.find("Linear") != -1:
        nn.init.normal_(m.weight.data, std=0.001)
        nn.init.constant_(m.bias.data, 0.0)


class ClassBlock(nn.Module):
    """Bottleneck and classifier: Linear -> BatchNorm1d -> [LeakyReLU(0.1)] -> [Dropout(0.5)]
    as ``add_block``, then Linear as ``classifier``.

    Args:
        input_dim: feature size D of the input (N, D).
        class_num: number of identities, the size of the output logits (N, class_num).
        dropout, relu: include the Dropout(0.5) / LeakyReLU(0.1) layers.
        num_bottleneck: width of the bottleneck.
    """

    def __init__(self, input_dim, class_num, dropout=True, relu=True, num_bottleneck=512):
        super().__init__()
        add_block = [nn.Linear(input_dim, num_bottleneck), nn.BatchNorm1d(num_bottleneck)]
        if relu:
            add_block += [nn.LeakyReLU(0.1)]
        if dropout:
            add_block += [nn.Dropout(p=0.5)]
        self.add_block = nn.Sequential(*add_block)
        self.add_block.apply(weights_init_kaiming)
        self.classifier = nn.Sequential(nn.Linear(num_bottleneck, class_num))
        self.classifier.apply(weights_init_classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.add_block(x))


def _backbone(builder, weights, default_enum: type[WeightsEnum], **scratch) -> nn.Module:
    """Build a torchvision trunk and load ``weights`` into it (see the module docstring).

    ``scratch`` holds the builder's options for random initialisation (``weights=None``).
    """
    if weights is None:
        return builder(weights=None, **scratch)
    net = builder(weights=None)
    if isinstance(weights, WeightsEnum):
        if not isinstance(weights, default_enum):
            raise UserError(f"{weights} are not weights for {builder.__name__}")
        path = cached_weights_file(weights)
    else:
        path = Path(weights)
    load_state_dict_checked(net, read_state_dict(path), str(path))
    return net


def resnet50(weights=None) -> nn.Module:
    """torchvision ResNet-50; ``weights``: None, a ``ResNet50_Weights`` or a file path.

    From scratch (None), the last BatchNorm of every residual branch starts at zero, so each
    block starts as the identity (``zero_init_residual``; Goyal et al., 2017). Deviation from
    the original: it always started from ImageNet (whose weights overwrite the zeros); from a
    standard random start, training at its learning rates does not get going (the loss
    rises), from this one it does.
    """
    return _backbone(
        torchvision.models.resnet50, weights, ResNet50_Weights, zero_init_residual=True
    )


def densenet121(weights=None) -> nn.Module:
    """torchvision DenseNet-121; ``weights``: None, a ``DenseNet121_Weights`` or a file path."""
    return _backbone(torchvision.models.densenet121, weights, DenseNet121_Weights)


def _resnet_layer3(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ResNet up to layer3: (N, 3, H, W) images -> (N, 1024, H/16, W/16)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer3(model.layer2(model.layer1(x)))


def _pcb_parts(model: nn.Module, avgpool: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """PCB trunk: (N, 3, H, W) images -> (N, 2048, 6) part features."""
    return avgpool(model.layer4(_resnet_layer3(model, x))).flatten(2)


# -- the models ---------------------------------------------------------------------------------
class ft_net(nn.Module):  # the original's class names, kept for `from model import ...`
    """ResNet-50 with global average pooling and a ClassBlock(2048) head.

    torchvision's 1000-way ``model.fc`` stays in the module, as in the original (its keys are
    in the released checkpoints), but is not used.
    """

    imagenet_weights = ResNet50_Weights.IMAGENET1K_V1
    feature_dim = 2048

    def __init__(self, class_num, weights=None):
        super().__init__()
        # torchvision's avgpool is already the global AdaptiveAvgPool2d((1, 1)) that the
        # original put in place of the fixed 7x7 pool of its day.
        self.model = resnet50(weights)
        self.classifier = ClassBlock(2048, class_num)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images -> (N, 2048) pooled features."""
        # Deviation from the original: a features path beside the logits, where it replaced
        # the classifier by an empty Sequential; flatten(1), not squeeze(), so a batch of one
        # stays (1, D). The numbers are the same.
        return self.model.avgpool(self.model.layer4(_resnet_layer3(self.model, x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, class_num) logits."""
        return self.classifier(self.forward_features(x))

    def heads(self) -> list[nn.Module]:
        """The modules trained at the higher learning rate (the original's optimizer groups)."""
        return [self.model.fc, self.classifier]


class ft_net_dense(nn.Module):
    """DenseNet-121 with global average pooling and a ClassBlock(1024) head.

    As in the original, the features are pooled straight after ``norm5`` (no ReLU), and
    torchvision's 1000-way ``model.classifier`` stays in the module, unused.
    """

    imagenet_weights = DenseNet121_Weights.IMAGENET1K_V1
    feature_dim = 1024

    def __init__(self, class_num, weights=None):
        super().__init__()
        self.model = densenet121(weights)
        self.classifier = ClassBlock(1024, class_num)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images -> (N, 1024) pooled features."""
        return F.adaptive_avg_pool2d(self.model.features(x), (1, 1)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, class_num) logits."""
        return self.classifier(self.forward_features(x))

    def heads(self) -> list[nn.Module]:
        # The original's `model.fc = nn.Sequential()` has no parameters: only the ClassBlock.
        return [self.classifier]


class ft_net_middle(nn.Module):
    """ResNet-50 whose pooled layer3 (1024) and layer4 (2048) outputs are concatenated,
    with a ClassBlock(3072) head."""

    imagenet_weights = ResNet50_Weights.IMAGENET1K_V1
    feature_dim = 3072

    def __init__(self, class_num, weights=None):
        super().__init__()
        # torchvision's avgpool is already the global AdaptiveAvgPool2d((1, 1)) that the
        # original put in place of the fixed 7x7 pool of its day.
        self.model = resnet50(weights)
        self.classifier = ClassBlock(2048 + 1024, class_num)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images -> (N, 3072): pooled layer3 then pooled layer4."""
        x = _resnet_layer3(self.model, x)
        x0 = self.model.avgpool(x)
        x1 = self.model.avgpool(self.model.layer4(x))
        return torch.cat((x0, x1), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, class_num) logits."""
        return self.classifier(self.forward_features(x))

    def heads(self) -> list[nn.Module]:
        return [self.model.fc, self.classifier]


class PCB(nn.Module):
    """Part-based Convolutional Baseline (Sun et al., ECCV 2018) on ResNet-50.

    layer4's first block has stride 1 (conv2 and the downsample), so the last map is twice as
    tall; it is average-pooled into 6 horizontal parts, each with its own
    ClassBlock(2048, class_num, dropout=True, relu=False, num_bottleneck=256) as
    ``classifier0`` .. ``classifier5``.
    """

    imagenet_weights = ResNet50_Weights.IMAGENET1K_V1
    feature_dim = 2048

    def __init__(self, class_num, weights=None):
        super().__init__()
        self.part = NUM_PARTS
        self.model = resnet50(weights)
        self.avgpool = nn.AdaptiveAvgPool2d((self.part, 1))
        self.dropout = nn.Dropout(p=0.5)
        # Remove the final downsample.
        self.model.layer4[0].downsample[0].stride = (1, 1)
        self.model.layer4[0].conv2.stride = (1, 1)
        for i in range(self.part):
            setattr(self, f"classifier{i}", ClassBlock(2048, class_num, True, False, 256))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images -> (N, 2048, 6) part features (no dropout)."""
        return _pcb_parts(self.model, self.avgpool, x)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> list of 6 (N, class_num) part logits, top to bottom."""
        x = self.dropout(self.forward_features(x))
        return [getattr(self, f"classifier{i}")(x[:, :, i]) for i in range(self.part)]

    def heads(self) -> list[nn.Module]:
        return [self.model.fc] + [getattr(self, f"classifier{i}") for i in range(self.part)]


class PCB_test(nn.Module):
    """The original's test-time PCB: the trunk of a trained PCB, returning (N, 2048, 6)."""

    def __init__(self, model: PCB):
        super().__init__()
        self.part = NUM_PARTS
        self.model = model.model
        # The trunk's layer4 already has stride 1: PCB set it (the original set it again).
        self.avgpool = nn.AdaptiveAvgPool2d((self.part, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images -> (N, 2048, 6) part features."""
        return _pcb_parts(self.model, self.avgpool, x)


# -- the registry ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Architecture:
    """A net of the registry.

    Attributes:
        name: the registry key, recorded in ``opts.json``.
        net: the class, built as ``net(class_num, weights=...)``.
        backbone: the torchvision trunk it is built on.
        part_based: PCB's pipeline (its transforms and 384x192 input) instead of the
            global models' (random crop, 256x128).
    """

    name: str
    net: type[nn.Module]
    backbone: str
    part_based: bool = False

    def flags(self) -> dict[str, bool]:
        """The original's flags (``--PCB``, ``--use_dense``) that select this net."""
        return {"PCB": self.part_based, "use_dense": self.backbone == "densenet121"}


ARCHITECTURES = {
    a.name: a
    for a in (
        Architecture("resnet50", ft_net, "resnet50"),
        Architecture("densenet121", ft_net_dense, "densenet121"),
        Architecture("resnet50_middle", ft_net_middle, "resnet50"),
        Architecture("pcb", PCB, "resnet50", part_based=True),
    )
}


def architecture(name: str) -> Architecture:
    """The registry entry ``name``; UserError listing the names if there is none."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UserError(
            f"unknown architecture {name!r}: expected one of {', '.join(ARCHITECTURES)}"
        ) from None


def architecture_for_flags(pcb: bool, use_dense: bool) -> Architecture:
    """The original's choice: ``--PCB`` wins over ``--use_dense``; else ResNet-50."""
    return ARCHITECTURES["pcb" if pcb else "densenet121" if use_dense else "resnet50"]


def build_model(arch: Architecture, nclasses: int, weights: str = "none") -> nn.Module:
    """Build ``arch`` with ``nclasses`` identities.

    Args:
        weights: ``imagenet`` (torchvision's ImageNet file from the torch hub cache,
            downloaded when missing),
            ``none`` (random initialisation) or the path of a backbone state dict.
    """
    net = arch.net
    source = {"imagenet": net.imagenet_weights, "none": None}.get(weights.lower(), weights)
    return net(nclasses, weights=source)
