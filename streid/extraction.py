"""Step 3: extract the appearance features of the query and gallery images
(``test_st.py``, ``test_st_market.py``, ``test_st_duke.py``, which parse the command line
into :class:`ExtractOptions`) into ``model/<name>/pytorch_result.mat``; with
``--train``, those of ``train_all/`` too, into ``pytorch_result_train.mat`` (for step 4
``--unlabeled``).

The net may have been trained on another dataset than ``--test_dir`` (a cross-domain
transfer): it is rebuilt from its own run's ``opts.json`` (class count, architecture, input
size), and only the names of ``--test_dir`` are parsed with that dataset's spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from .artifacts import DEFAULT_NAME, FEATURES_FILE, LAST_EPOCH, Run
from .data import DEFAULT_WORKERS, batches, image_list, make_loader
from .dataset_yaml import resolve_spec
from .datasets import DatasetSpec
from .device import place_model, select_device, to_device
from .errors import UserError, note
from .interchange import Split, save_features, save_train_features
from .models import Architecture, architecture_for_flags, build_model
from .options import RunOptions
from .transforms import default_input_size, test_transform
from .weights import load_state_dict_checked, read_state_dict

TRAIN_FOLDER = "train_all"  # every training image, as step 4 reads them


@dataclass(frozen=True, kw_only=True)
class ExtractOptions:
    """Step 3's options: the flags of test_st*.py. The defaults are the command line's,
    ``test_dir`` excepted.

    Raises:
        UserError: a value out of range (at construction).
    """

    name: str = DEFAULT_NAME
    which_epoch: str = LAST_EPOCH  # net_<which_epoch>.pth
    test_dir: str  # holding query/ and gallery/ (and train_all/ for ``train``)
    use_dense: bool = False  # the net, where the run has no opts.json
    PCB: bool = False
    gpu_ids: str = "0"  # -1: the CPU
    batchsize: int = 32
    num_workers: int = DEFAULT_WORKERS
    train: bool = False  # also extract train_all/ into pytorch_result_train.mat

    def __post_init__(self):
        if self.batchsize < 1 or self.num_workers < 0:
            raise UserError("--batchsize must be at least 1, --num_workers at least 0")


@torch.no_grad()
def extract_features(model: nn.Module, loader: DataLoader, device: torch.device, desc: str):
    """Features of each image plus its horizontal flip, L2-normalised, as the original.

    ``model.forward_features`` gives (N, D) or, for PCB, (N, 2048, 6). The two are summed and
    normalised over dim 1: each PCB part on its own, then flattened to N x 12288 in
    (channel, part) order, the original's ``view(N, -1)``.

    Returns:
        (N, D) float32 array, rows in loader order.
    """
    model.eval()
    chunks = []
    for images, _ in batches(loader, desc):
        images = to_device(images, device)
        # Deviation from the original: the nets' forward_features path rather than layers
        # replaced by empty ones; the features are the same.
        f = model.forward_features(images) + model.forward_features(torch.flip(images, dims=[3]))
        f = f / f.norm(p=2, dim=1, keepdim=True)
        chunks.append(f.flatten(1).float().cpu())
    return torch.cat(chunks).numpy()


def checkpoint_path(run: Run, which_epoch: str) -> Path:
    """``model/<name>/net_<which_epoch>.pth``; UserError listing the checkpoints there."""
    path = run.require().checkpoint(which_epoch)
    if not path.is_file():
        found = run.checkpoints()
        have = f"it has {', '.join(found)}" if found else "it has no net_*.pth (step 2 makes them)"
        raise UserError(f"--which_epoch {which_epoch}: {path} not found; {have}")
    return path


def _head_classes(state: dict) -> int | None:
    """The class count of a checkpoint: rows of its (first) classifier layer."""
    for key in ("classifier.classifier.0.weight", "classifier0.classifier.0.weight"):
        if key in state:
            return int(state[key].shape[0])
    return None


def load_trained(options: ExtractOptions) -> tuple[nn.Module, Architecture, tuple[int, int]]:
    """Rebuild the net of run ``options.name`` and load ``net_<which_epoch>.pth``.

    The architecture comes from ``opts.json`` when the run has one (it wins over flags that
    disagree, with a note); else from --PCB / --use_dense, as the original. The class count
    comes from ``opts.json`` or, for the original's runs, from the checkpoint itself.

    Returns:
        (model on the CPU, its architecture, input (height, width)).
    """
    run = Run(options.name)
    path = checkpoint_path(run, options.which_epoch)
    state = read_state_dict(path)
    arch, size, nclasses = architecture_for_flags(options.PCB, options.use_dense), None, None
    if run.opts.is_file():
        opts = RunOptions.load(run.opts)
        for flag, saved in opts.arch.flags().items():
            if saved != getattr(options, flag):
                note(f"{run.opts} says {flag}={saved}; using that")
        arch, size, nclasses = opts.arch, opts.input_size, opts.nclasses
    nclasses = nclasses or _head_classes(state)
    if nclasses is None:
        raise UserError(f"{path} has no classifier layer: cannot tell its number of classes")
    model = build_model(arch, nclasses)
    try:
        load_state_dict_checked(model, state, str(path))
    except UserError as err:
        if run.opts.is_file():
            raise
        raise UserError(f"{err} (a {arch.net.__name__}: check --PCB / --use_dense)") from None
    return model, arch, tuple(size) if size else default_input_size(arch.part_based)


def extract(options: ExtractOptions, builtin: DatasetSpec | None) -> None:
    """Step 3: write ``model/<name>/pytorch_result.mat`` for the query and gallery sets of
    the prepared dataset (described by its ``dataset.yaml``, else by ``builtin``)."""
    with Run(options.name).lock(FEATURES_FILE):
        _extract(options, builtin)


def _extract(options: ExtractOptions, builtin: DatasetSpec | None) -> None:
    spec = resolve_spec(options.test_dir, builtin, "--test_dir")
    device = select_device(options.gpu_ids)
    model, arch, size = load_trained(options)
    model = place_model(model, device)
    test_dir = Path(options.test_dir)
    hint = f"run prepare.py {spec.prepare_flag} (step 1), or pass --test_dir"
    folders = ("gallery", "query") + ((TRAIN_FOLDER,) if options.train else ())
    splits = {}
    for split in folders:
        images = image_list(test_dir / split, test_transform(arch.part_based, size), hint)
        # Names are checked before the (long) extraction.
        names = spec.parse_names(images.paths)
        loader = make_loader(
            images, options.batchsize, shuffle=False, num_workers=options.num_workers, device=device
        )
        features = extract_features(model, loader, device, desc=split)
        splits[split] = Split(features, names.labels, names.cams, names.frames, names.sessions)
        print(f"{split}: {features.shape[0]} images, {features.shape[1]} features each")
    run = Run(options.name)
    save_features(run.features, query=splits["query"], gallery=splits["gallery"])
    print(f"saved {run.features}")
    if options.train:
        save_train_features(run.train_features, splits[TRAIN_FOLDER])
        print(f"saved {run.train_features}")
