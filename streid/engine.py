"""Steps 2 and 3 behind the thin scripts: training the appearance model, extracting features.

``train_market.py`` / ``train_duke.py`` call :func:`train_main`, ``test_st_market.py`` /
``test_st_duke.py`` call :func:`test_main`, each with its dataset spec. The pieces (device,
data, model, one epoch, extraction) are separate functions, so benchmarks and tests use the
same code as the scripts.

A run named NAME writes to ``model/NAME/`` (relative to the working directory, as the
original): ``net_<epoch>.pth`` every 10 epochs and ``net_last.pth`` at the end (plain state
dicts with the original's keys), ``opts.json`` (the options plus what step 3 needs to rebuild
the net: ``nclasses``, ``backbone``, ``input_size``), ``train.jpg`` (curves) and
``resume.pth`` (optimizer, schedule and history for ``--resume``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from . import cli, models
from .artifacts import FEATURES_FILE, MODEL_ROOT, Split, atomic_output, run_dir, save_features
from .cli import UserError
from .datasets import DatasetSpec, image_folder
from .transforms import default_input_size, test_transform, train_transform, val_transform

RESUME_FILE = "resume.pth"
OPTS_FILE = "opts.json"
CURVES_FILE = "train.jpg"

# The original's optimizer and schedule.
BASE_LR, HEAD_LR = 0.01, 0.1
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
LR_STEP, LR_GAMMA = 40, 0.1
SAVE_EVERY = 10  # net_<epoch>.pth when epoch % 10 == 9


# -- device -------------------------------------------------------------------------------------
def select_device(gpu_ids: str) -> torch.device:
    """The device for ``--gpu_ids``, as the original: the first non-negative id is used.

    Without CUDA the run falls back to the CPU with a one-line warning; ``-1`` asks for the
    CPU. With CUDA, an id that is not a GPU of this machine is a UserError.
    """
    try:
        ids = [int(s) for s in gpu_ids.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--gpu_ids {gpu_ids!r}: expected GPU numbers such as 0 or 0,1") from None
    ids = [i for i in ids if i >= 0]
    if not ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        # Deviation from the original: it tested `torch.cuda.is_available` without calling it
        # (always true) and crashed without a GPU; today's runs may be on a laptop.
        print("warning: CUDA is not available; running on the CPU", file=sys.stderr)
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if ids[0] >= count:
        raise UserError(
            f"--gpu_ids {gpu_ids}: there is no GPU {ids[0]} (this machine has {count}: "
            f"0..{count - 1}; -1 for the CPU)"
        )
    if len(ids) > 1:
        print(f"note: --gpu_ids {gpu_ids}: only GPU {ids[0]} is used, as in the original")
    return torch.device("cuda", ids[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random`` (RandomErasing) and torch (CPU and CUDA: init, augmentation)."""
    random.seed(seed)
    torch.manual_seed(seed)


# -- data ---------------------------------------------------------------------------------------
def load_rgb(path: str) -> Image.Image:
    """Open an image as RGB (torchvision's ImageFolder loader); UserError naming a bad file."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        # PIL's message often repeats the path; keep the reason only.
        reason = str(err).replace(repr(str(path)), "").strip() or type(err).__name__
        raise UserError(f"cannot decode image {path}: {reason}") from None


class ImageList(Dataset):
    """An ImageFolder tree as listed by :func:`streid.datasets.image_folder`.

    Attributes:
        paths: image paths, in torchvision ImageFolder order.
        targets: class index of each image.
        classes: class (person id folder) names; index = position.
    """

    def __init__(self, paths, targets, classes, transform):
        self.paths, self.targets, self.classes = paths, targets, classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        return self.transform(load_rgb(self.paths[index])), self.targets[index]


def image_list(root: Path, transform, hint: str, classes: list[str] | None = None) -> ImageList:
    """List the ImageFolder tree at ``root``.

    Args:
        root: folder with one sub-folder of images per person id.
        transform: applied to each PIL image.
        hint: what to do when the folder is missing or empty, for the message.
        classes: class names to index the targets by (the training classes, for the
            validation set); images of other classes are left out.

    Raises:
        UserError: the folder is missing or holds no images.
    """
    if not root.is_dir():
        raise UserError(f"{root}/ not found: {hint}")
    paths, targets, found = image_folder(root)
    if not paths:
        raise UserError(f"{root}/ holds no images (one sub-folder per person id expected): {hint}")
    if classes is not None and found != classes:
        # Deviation from the original: it indexed the validation classes on their own, which
        # misaligns them with the training classes when an id has a single image (it goes to
        # val/ only). Index by name instead and leave out ids the net does not know.
        index = {name: i for i, name in enumerate(classes)}
        kept = [
            (p, index[found[t]]) for p, t in zip(paths, targets, strict=True) if found[t] in index
        ]
        if len(kept) < len(paths):
            print(f"note: {len(paths) - len(kept)} images of {root}/ are of untrained ids")
        paths, targets = [p for p, _ in kept], [t for _, t in kept]
        found = classes
    return ImageList(paths, targets, found, transform)


def make_loader(dataset, batch_size, *, shuffle, num_workers, device, seed=None, drop_last=False):
    """A DataLoader; pinned memory and persistent workers on CUDA; seeded when ``seed``."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
        generator=generator,
    )


def batches(loader: DataLoader, desc: str):
    """Iterate ``loader`` under a progress bar; a UserError raised in a worker process comes
    back as its one-line message (the DataLoader wraps it with the worker's traceback)."""
    try:
        yield from tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)
    except UserError as err:
        text = str(err)
        if text.startswith("Caught UserError"):
            text = text.rstrip().splitlines()[-1].split("UserError: ", 1)[-1]
            raise UserError(text) from None
        raise


# -- models -------------------------------------------------------------------------------------
def model_class(pcb: bool, use_dense: bool) -> type[nn.Module]:
    """The original's choice: PCB wins over --use_dense; else DenseNet-121 or ResNet-50."""
    if pcb:
        return models.PCB
    return models.ft_net_dense if use_dense else models.ft_net


def backbone_name(pcb: bool, use_dense: bool) -> str:
    return "densenet121" if use_dense and not pcb else "resnet50"


def build_model(pcb: bool, use_dense: bool, nclasses: int, weights: str = "none") -> nn.Module:
    """Build the net with ``nclasses`` identities.

    Args:
        weights: ``imagenet`` (torchvision's ImageNet file from the local torch cache),
            ``none`` (random initialisation) or the path of a backbone state dict.
    """
    cls = model_class(pcb, use_dense)
    source = {"imagenet": cls.imagenet_weights, "none": None}.get(weights.lower(), weights)
    return cls(nclasses, weights=source)


def place_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device``; on CUDA in channels_last layout, with cuDNN autotuning
    (the input size is fixed, so the fastest kernels are picked once)."""
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    return model


def make_optimizer(model: nn.Module) -> torch.optim.SGD:
    """The original's SGD: lr 0.01 for the backbone, 0.1 for the heads (``model.heads()``),
    momentum 0.9, Nesterov, weight decay 5e-4."""
    head_ids = {id(p) for head in model.heads() for p in head.parameters()}
    base = [p for p in model.parameters() if id(p) not in head_ids]
    groups = [{"params": base, "lr": BASE_LR}]
    groups += [{"params": list(head.parameters()), "lr": HEAD_LR} for head in model.heads()]
    return torch.optim.SGD(groups, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM, nesterov=True)


def loss_and_predictions(outputs, labels: torch.Tensor):
    """Cross-entropy and predicted ids.

    Args:
        outputs: (N, C) logits, or PCB's list of six (N, C) part logits.
        labels: (N,) class indices.

    Returns:
        loss: scalar; for PCB the sum of the six part losses.
        preds: (N,) argmax of the logits; for PCB of the summed part softmaxes.
    """
    if isinstance(outputs, torch.Tensor):
        return nn.functional.cross_entropy(outputs, labels), outputs.argmax(1)
    loss = sum(nn.functional.cross_entropy(part, labels) for part in outputs)
    score = sum(torch.softmax(part.float(), dim=1) for part in outputs)
    return loss, score.argmax(1)


def _to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    # channels_last lets cuDNN use its fastest (tensor-core) convolutions.
    return images.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else images


def run_epoch(model, loader, device, desc, optimizer=None, scaler=None, amp=False):
    """One pass over ``loader``: training when ``optimizer`` is given, else evaluation.

    Returns:
        (mean loss per image, top-1 error, number of images, seconds).
    """
    training = optimizer is not None
    model.train(training)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    with torch.set_grad_enabled(training):
        for images, labels in batches(loader, desc):
            images, labels = _to_device(images, device), labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                loss, preds = loss_and_predictions(model(images), labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            # Accumulated on the device: no synchronisation per step.
            total_loss += loss.detach().float() * len(labels)
            correct += (preds == labels).sum()
            seen += len(labels)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    if seen == 0:
        return float("nan"), float("nan"), 0, elapsed
    return total_loss.item() / seen, 1.0 - correct.item() / seen, seen, elapsed


# -- step 2: training ---------------------------------------------------------------------------
def train_parser(spec: DatasetSpec, description: str) -> argparse.ArgumentParser:
    """The flags of train_market.py / train_duke.py."""
    p = cli.parser(description)
    # The original's flags and defaults.
    p.add_argument("--gpu_ids", default="0", type=str, help="GPU id, e.g. 0 (-1: the CPU)")
    p.add_argument("--name", default="ft_ResNet50", type=str, help="run name: model/<name>/")
    p.add_argument("--data_dir", default=spec.prepared_dir, type=str, help="prepared dataset")
    p.add_argument("--train_all", action="store_true", help="train on train_all/, not train/")
    p.add_argument("--color_jitter", action="store_true", help="add ColorJitter")
    p.add_argument("--batchsize", default=32, type=int, help="batch size")
    p.add_argument("--erasing_p", default=0, type=float, help="random erasing probability")
    p.add_argument("--use_dense", action="store_true", help="DenseNet-121 instead of ResNet-50")
    p.add_argument("--PCB", action="store_true", help="the PCB part model")
    # Added: what a user of today's PyTorch expects.
    p.add_argument(
        "--weights",
        default="imagenet",
        type=str,
        help="initial backbone: imagenet (torchvision's file in the local torch cache), "
        "none (random) or the path of a .pth state dict",
    )
    p.add_argument("--epochs", default=60, type=int, help="training epochs, as the original")
    p.add_argument(
        "--input_size",
        default=None,
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="network input (default %(default)s: 384 192 with --PCB, else 256 128)",
    )
    p.add_argument(
        "--seed", default=None, type=int, help="random seed (default %(default)s: unseeded)"
    )
    p.add_argument("--resume", action="store_true", help="continue model/<name>/resume.pth")
    p.add_argument("--num_workers", default=4, type=int, help="data loading processes")
    p.add_argument("--no_amp", action="store_true", help="no mixed precision on CUDA")
    return p


def _check_opts(args: argparse.Namespace) -> None:
    if args.batchsize < 1 or args.epochs < 1 or args.num_workers < 0:
        raise UserError("--batchsize and --epochs must be at least 1, --num_workers at least 0")
    if not 0 <= args.erasing_p <= 1:
        raise UserError(f"--erasing_p {args.erasing_p}: a probability between 0 and 1")
    if args.input_size is not None and min(args.input_size) < 16:
        raise UserError(f"--input_size {args.input_size}: at least 16 x 16 pixels")


def save_state_dict(model: nn.Module, path: Path) -> None:
    """Save the CPU state dict, as the original's ``save_network``, atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def draw_curves(history: dict, path: Path) -> None:
    """train.jpg as the original: loss and top-1 error per epoch, train (blue), val (red)."""
    fig = Figure(figsize=(6.4, 4.8))
    for ax, key, title in zip(
        fig.subplots(1, 2), ("loss", "err"), ("loss", "top1err"), strict=True
    ):
        ax.set_title(title)
        for phase, style in (("train", "bo-"), ("val", "ro-")):
            values = history[phase][key]
            if values:
                ax.plot(range(len(values)), values, style, label=phase)
        ax.legend()
    with atomic_output(path, suffix=".jpg") as tmp:
        fig.savefig(tmp, format="jpg")


def train(args: argparse.Namespace, spec: DatasetSpec) -> None:
    """Step 2: train the appearance model of ``args`` on the prepared dataset."""
    _check_opts(args)
    device = select_device(args.gpu_ids)
    amp = device.type == "cuda" and not args.no_amp
    if args.seed is not None:
        seed_everything(args.seed)
    size = tuple(args.input_size) if args.input_size else default_input_size(args.PCB)

    data_dir = Path(args.data_dir)
    hint = f"run prepare.py {spec.prepare_flag} (step 1), or pass --data_dir"
    train_set = image_list(
        data_dir / ("train_all" if args.train_all else "train"),
        train_transform(args.PCB, size, args.erasing_p, args.color_jitter),
        hint,
    )
    if len(train_set) < args.batchsize:
        raise UserError(
            f"{len(train_set)} training images, fewer than --batchsize {args.batchsize}: "
            f"every batch would be incomplete (the original skips those)"
        )
    val_set = None
    if (data_dir / "val").is_dir():
        val_set = image_list(data_dir / "val", val_transform(size), hint, train_set.classes)
    loaders = {
        # As the original, the last incomplete training batch is skipped.
        "train": make_loader(
            train_set,
            args.batchsize,
            shuffle=True,
            num_workers=args.num_workers,
            device=device,
            seed=args.seed,
            drop_last=True,
        )
    }
    if val_set is not None:
        # Deviation from the original: it also skipped the last incomplete validation batch;
        # every validation image counts here (evaluation has no batch-size constraint).
        loaders["val"] = make_loader(
            val_set, args.batchsize, shuffle=False, num_workers=args.num_workers, device=device
        )

    nclasses = len(train_set.classes)
    model = place_model(build_model(args.PCB, args.use_dense, nclasses, args.weights), device)
    optimizer = make_optimizer(model)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=LR_STEP, gamma=LR_GAMMA)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    run = MODEL_ROOT / args.name
    run.mkdir(parents=True, exist_ok=True)
    history = {phase: {"loss": [], "err": []} for phase in ("train", "val")}
    start = 0
    if args.resume:
        start, history = load_resume(run, model, optimizer, scheduler, scaler)
    opts = dict(vars(args), nclasses=nclasses, backbone=backbone_name(args.PCB, args.use_dense))
    opts.update(input_size=list(size), dataset=spec.key)
    with atomic_output(run / OPTS_FILE) as tmp:
        tmp.write_text(json.dumps(opts, indent=1))

    arch = model_class(args.PCB, args.use_dense).__name__
    print(
        f"{len(train_set)} training images of {nclasses} ids, "
        f"{len(val_set) if val_set else 0} validation images; {arch} at {size[0]}x{size[1]} "
        f"on {device}{' with mixed precision' if amp else ''}"
    )
    since = time.time()
    for epoch in range(start, args.epochs):
        print(f"Epoch {epoch}/{args.epochs - 1}\n" + "-" * 10)
        for phase, loader in loaders.items():
            training = phase == "train"
            loss, err, seen, secs = run_epoch(
                model,
                loader,
                device,
                desc=f"epoch {epoch} {phase}",
                optimizer=optimizer if training else None,
                scaler=scaler,
                amp=amp,
            )
            history[phase]["loss"].append(loss)
            history[phase]["err"].append(err)
            print(f"{phase} Loss: {loss:.4f} Acc: {1 - err:.4f} ({seen / secs:.0f} images/s)")
        # Deviation from the original: the schedule steps after the epoch's optimizer steps,
        # as modern PyTorch expects. Epochs 0-39 train at lr 0.01/0.1, the drop to 0.001/0.01
        # comes at epoch 40 (the original, calling step() first under PyTorch 0.4, dropped at
        # epoch 39).
        scheduler.step()
        if epoch % SAVE_EVERY == SAVE_EVERY - 1:
            save_state_dict(model, run / f"net_{epoch}.pth")
        draw_curves(history, run / CURVES_FILE)
        save_resume(run, model, optimizer, scheduler, scaler, epoch + 1, history)
    save_state_dict(model, run / "net_last.pth")
    elapsed = time.time() - since
    print(f"Training complete in {elapsed // 60:.0f}m {elapsed % 60:.0f}s; saved {run}/")


def save_resume(run: Path, model, optimizer, scheduler, scaler, next_epoch: int, history) -> None:
    """Everything --resume needs, apart from the net_*.pth files (which stay plain)."""
    state = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": next_epoch,
        "history": history,
    }
    with atomic_output(run / RESUME_FILE) as tmp:
        torch.save(state, tmp)


def load_resume(run: Path, model, optimizer, scheduler, scaler) -> tuple[int, dict]:
    """Restore a run saved by :func:`save_resume`; returns (next epoch, history)."""
    path = run / RESUME_FILE
    if not path.is_file():
        raise UserError(f"--resume: {path} not found (it is written after each epoch)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        models.load_state_dict_checked(model, state["model"], str(path))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
    except (KeyError, ValueError, RuntimeError, OSError) as err:
        raise UserError(f"--resume: {path} does not fit this run ({err})") from None
    print(f"resuming {run}/ at epoch {state['epoch']}")
    return state["epoch"], state["history"]


def train_main(spec: DatasetSpec, description: str, argv=None) -> None:
    """train_market.py / train_duke.py."""
    train(train_parser(spec, description).parse_args(argv), spec)


# -- step 3: feature extraction -----------------------------------------------------------------
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
        images = _to_device(images, device)
        f = model.forward_features(images) + model.forward_features(torch.flip(images, dims=[3]))
        f = f / f.norm(p=2, dim=1, keepdim=True)
        chunks.append(f.flatten(1).float().cpu())
    return torch.cat(chunks).numpy()


def checkpoint_path(name: str, which_epoch: str) -> Path:
    """``model/<name>/net_<which_epoch>.pth``; UserError listing the checkpoints there."""
    run = run_dir(name)
    path = run / f"net_{which_epoch}.pth"
    if not path.is_file():
        found = sorted(p.name for p in run.glob("net_*.pth"))
        have = f"it has {', '.join(found)}" if found else "it has no net_*.pth (step 2 makes them)"
        raise UserError(f"--which_epoch {which_epoch}: {path} not found; {have}")
    return path


def _head_classes(state: dict) -> int | None:
    """The class count of a checkpoint: rows of its (first) classifier layer."""
    for key in ("classifier.classifier.0.weight", "classifier0.classifier.0.weight"):
        if key in state:
            return int(state[key].shape[0])
    return None


def load_trained(args: argparse.Namespace) -> tuple[nn.Module, bool, tuple[int, int]]:
    """Rebuild the net of run ``args.name`` and load ``net_<which_epoch>.pth``.

    The architecture comes from ``opts.json`` when the run has one (it wins over flags that
    disagree, with a note); else from --PCB / --use_dense, as the original. The class count
    comes from ``opts.json`` or, for the original's runs, from the checkpoint itself.

    Returns:
        (model on the CPU, PCB or not, input (height, width)).
    """
    path = checkpoint_path(args.name, args.which_epoch)
    state = models.read_state_dict(path)
    pcb, use_dense, size, nclasses = args.PCB, args.use_dense, None, None
    opts_path = path.parent / OPTS_FILE
    if opts_path.is_file():
        try:
            opts = json.loads(opts_path.read_text())
        except ValueError as err:
            raise UserError(f"{opts_path} is not valid JSON ({err})") from None
        for flag in ("PCB", "use_dense"):
            saved = bool(opts.get(flag, getattr(args, flag)))
            if saved != getattr(args, flag):
                print(f"note: {opts_path} says {flag}={saved}; using that")
        pcb, use_dense = bool(opts.get("PCB", pcb)), bool(opts.get("use_dense", use_dense))
        size, nclasses = opts.get("input_size"), opts.get("nclasses")
    nclasses = nclasses or _head_classes(state)
    if nclasses is None:
        raise UserError(f"{path} has no classifier layer: cannot tell its number of classes")
    model = build_model(pcb, use_dense, int(nclasses))
    try:
        models.load_state_dict_checked(model, state, str(path))
    except UserError as err:
        if opts_path.is_file():
            raise
        raise UserError(f"{err} (a {type(model).__name__}: check --PCB / --use_dense)") from None
    return model, pcb, tuple(size) if size else default_input_size(pcb)


def test_parser(spec: DatasetSpec, description: str) -> argparse.ArgumentParser:
    """The flags of test_st_market.py / test_st_duke.py."""
    p = cli.parser(description)
    # The original's flags and defaults.
    p.add_argument("--gpu_ids", default="0", type=str, help="GPU id, e.g. 0 (-1: the CPU)")
    p.add_argument("--which_epoch", default="last", type=str, help="net_<which_epoch>.pth")
    p.add_argument("--test_dir", default=spec.prepared_dir, type=str, help="prepared dataset")
    p.add_argument("--name", default="ft_ResNet50", type=str, help="run name: model/<name>/")
    p.add_argument("--batchsize", default=32, type=int, help="batch size")
    p.add_argument("--use_dense", action="store_true", help="DenseNet-121 (if no opts.json)")
    p.add_argument("--PCB", action="store_true", help="the PCB part model (if no opts.json)")
    # Added.
    p.add_argument("--num_workers", default=4, type=int, help="data loading processes")
    return p


def extract(args: argparse.Namespace, spec: DatasetSpec) -> None:
    """Step 3: write ``model/<name>/pytorch_result.mat`` for the query and gallery sets."""
    if args.batchsize < 1 or args.num_workers < 0:
        raise UserError("--batchsize must be at least 1, --num_workers at least 0")
    device = select_device(args.gpu_ids)
    model, pcb, size = load_trained(args)
    model = place_model(model, device)
    test_dir = Path(args.test_dir)
    hint = f"run prepare.py {spec.prepare_flag} (step 1), or pass --test_dir"
    splits = {}
    for split in ("gallery", "query"):
        images = image_list(test_dir / split, test_transform(pcb, size), hint)
        # Names are checked before the (long) extraction.
        labels, cams, frames = spec.parse_names(images.paths)
        loader = make_loader(
            images, args.batchsize, shuffle=False, num_workers=args.num_workers, device=device
        )
        features = extract_features(model, loader, device, desc=split)
        splits[split] = Split(features, labels, cams, frames)
        print(f"{split}: {features.shape[0]} images, {features.shape[1]} features each")
    out = MODEL_ROOT / args.name / FEATURES_FILE
    save_features(out, query=splits["query"], gallery=splits["gallery"])
    print(f"saved {out}")


def test_main(spec: DatasetSpec, description: str, argv=None) -> None:
    """test_st_market.py / test_st_duke.py."""
    extract(test_parser(spec, description).parse_args(argv), spec)
