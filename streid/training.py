"""Step 2: train the appearance model (``train.py``, ``train_market.py``, ``train_duke.py``,
which parse the command line into :class:`TrainOptions`).

The original's recipe: cross-entropy (summed over PCB's six parts), SGD with lr 0.01 for the
backbone and 0.1 for the heads, momentum 0.9, Nesterov, weight decay 5e-4, x0.1 after 40
epochs, 60 epochs. A run named NAME writes to ``model/NAME/`` (:class:`streid.artifacts.Run`):
``net_<epoch>.pth`` every 10 epochs and ``net_last.pth`` at the end (plain state dicts with
the original's keys), ``opts.json`` (:mod:`streid.options`), ``train.jpg`` (curves),
``train_log.csv`` (a row per epoch and phase: :mod:`streid.train_log`) and ``resume.pth``
(optimizer, schedule and log for ``--resume``: :mod:`streid.optimization`). ``opts.json``
is written with the first ``resume.pth`` of the run, and a folder holding another run's
record is refused before anything is written (:class:`streid.options.RunRecord`). Under
torchrun, each process trains its share (:mod:`streid.distributed`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from . import distributed
from .artifacts import DEFAULT_NAME, LAST_EPOCH, OPTS_FILE, SAVE_EVERY, Run
from .data import DEFAULT_WORKERS, batches, image_list, make_loader
from .dataset_yaml import resolve_spec
from .datasets import DatasetSpec
from .device import place_model, seed_everything, select_device, to_device
from .errors import UserError
from .models import Architecture, architecture_for_flags, build_model
from .optimization import Optimization, load_resume, save_resume, save_state_dict
from .options import RunOptions, RunRecord
from .plots import draw_curves
from .train_log import EpochRow, write_log
from .transforms import default_input_size, train_transform, val_transform

UNKNOWN_ID = "-1"  # the folder of training images nobody labelled (a manifest's empty person)


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Step 2's options: the flags of train*.py, in their order (``opts.json`` records them
    as ``flags``). The defaults are the command line's, ``data_dir`` excepted.

    Raises:
        UserError: a value out of range (at construction).
    """

    name: str = DEFAULT_NAME
    data_dir: str
    train_all: bool = False  # train on train_all/, not train/
    color_jitter: bool = False
    erasing_p: float = 0  # random erasing probability; an int, as the original's default
    use_dense: bool = False
    PCB: bool = False
    gpu_ids: str = "0"  # -1: the CPU
    batchsize: int = 32
    num_workers: int = DEFAULT_WORKERS
    weights: str = "imagenet"  # imagenet, none or the path of a .pth state dict
    epochs: int = 60
    input_size: tuple[int, int] | None = None  # (H, W); None: 384 192 with PCB, else 256 128
    seed: int | None = None
    resume: bool = False  # continue model/<name>/resume.pth
    overwrite: bool = False  # replace the run in model/<name>/
    no_amp: bool = False  # no mixed precision on CUDA
    sync_bn: bool = False  # under torchrun, BatchNorm statistics over all processes

    def __post_init__(self):
        if self.batchsize < 1 or self.epochs < 1 or self.num_workers < 0:
            raise UserError("--batchsize and --epochs must be at least 1, --num_workers at least 0")
        if not 0 <= self.erasing_p <= 1:
            raise UserError(f"--erasing_p {self.erasing_p}: a probability between 0 and 1")
        if self.input_size is not None and min(self.input_size) < 16:
            raise UserError(f"--input_size {self.input_size}: at least 16 x 16 pixels")


# -- one epoch ----------------------------------------------------------------------------------
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


def run_epoch(model, loader, device, desc, optimizer=None, scaler=None, amp=False, procs=None):
    """One pass over ``loader``: training when ``optimizer`` is given, else evaluation.

    Returns:
        (mean loss per image, top-1 error, number of images, seconds); under torchrun
        (``procs``), of the images of all processes.
    """
    training = optimizer is not None
    model.train(training)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    with torch.set_grad_enabled(training):
        for images, labels in batches(loader, desc):
            images, labels = to_device(images, device), labels.to(device, non_blocking=True)
            # Deviation from the original: mixed precision on CUDA (--no_amp turns it off),
            # about twice as fast with the same accuracy; extraction stays in fp32.
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
    if procs is not None and procs.active:
        total_loss, correct, seen = distributed.summed(
            procs, total_loss, correct, torch.tensor(seen, device=device)
        )
        seen = int(seen.item())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    if seen == 0:
        return float("nan"), float("nan"), 0, elapsed
    return total_loss.item() / seen, 1.0 - correct.item() / seen, seen, elapsed


# -- the run ------------------------------------------------------------------------------------
def training_loaders(options: TrainOptions, spec: DatasetSpec, arch: Architecture, size, device,
                     procs: distributed.Processes):  # fmt: skip
    """The loaders of the training images and, where the dataset has ``val/``, the
    validation images (indexed by the training classes); under torchrun (``procs``), of this
    process's share of them."""
    data_dir = Path(options.data_dir)
    hint = f"run prepare.py {spec.prepare_flag} (step 1), or pass --data_dir"
    train_set = image_list(
        data_dir / ("train_all" if options.train_all else "train"),
        train_transform(arch.part_based, size, options.erasing_p, options.color_jitter),
        hint,
    )
    # Deviation from the original: it would take the folder -1 for one more person.
    if UNKNOWN_ID in train_set.classes:
        unknown = train_set.targets.count(train_set.classes.index(UNKNOWN_ID))
        raise UserError(
            f"{data_dir}: {unknown} training images have no identity label (folder "
            f"{UNKNOWN_ID}/): step 2 learns from identities; without them, extract features "
            f"with a model trained elsewhere (step 3 --train) and run step 4 --unlabeled"
        )
    if len(train_set) < options.batchsize:
        raise UserError(
            f"{len(train_set)} training images, fewer than --batchsize {options.batchsize}: "
            f"every batch would be incomplete (the original skips those)"
        )
    sampler = distributed.train_sampler(procs, len(train_set), options.seed)
    if sampler is not None and len(sampler) < options.batchsize:
        raise UserError(
            f"{len(train_set)} training images, {len(sampler)} for each of {procs.world} "
            f"processes: fewer than --batchsize {options.batchsize} (it is per process)"
        )
    workers = {"num_workers": options.num_workers, "device": device}
    # As the original, the last incomplete training batch is skipped.
    loaders = {
        "train": make_loader(
            train_set,
            options.batchsize,
            shuffle=True,
            seed=options.seed,
            drop_last=True,
            sampler=sampler,
            **workers,
        )  # fmt: skip
    }
    if (data_dir / "val").is_dir():
        val_set = image_list(data_dir / "val", val_transform(size), hint, train_set.classes)
        # Deviation from the original: it also skipped the last incomplete validation batch;
        # every validation image counts here (evaluation has no batch-size constraint).
        shard = distributed.shard(procs, len(val_set))
        loaders["val"] = make_loader(val_set, options.batchsize, shuffle=False, sampler=shard,
                                     **workers)  # fmt: skip
    return loaders


@contextlib.contextmanager
def stop_hint(record: RunRecord):
    """A stop (Ctrl-C, SIGTERM, SIGHUP) carries whether ``--resume`` would continue the run
    now, as its ``resumable`` attribute: once the run has a resume.pth of its own (after its
    first finished epoch). The script says how to start again from it."""
    try:
        yield
    except KeyboardInterrupt as stop:
        stop.resumable = record.resumable
        raise


def train(options: TrainOptions, builtin: DatasetSpec | None) -> None:
    """Step 2: train the appearance model of ``options`` on the prepared dataset (described
    by its ``dataset.yaml``, else by ``builtin``); under torchrun, this process's part.

    Raises:
        distributed.PeerFailed: another process failed to set up the run, and said so.
    """
    record = RunRecord(Run(options.name), resume=options.resume, overwrite=options.overwrite)
    with distributed.processes() as procs, distributed.quiet(procs), contextlib.ExitStack() as held:
        with distributed.agreed(procs):
            if procs.main:  # the others would be refused: it is held
                # One training per run folder: a second one would mix its record with this one's.
                held.enter_context(record.run.lock(OPTS_FILE, "trained"))
            held.enter_context(stop_hint(record))
            run = _setup(options, builtin, record, procs)
        fit(**run, record=record, procs=procs)


def _setup(options: TrainOptions, builtin: DatasetSpec | None, record: RunRecord, procs):
    """The run, up to its first epoch: :func:`fit`'s arguments but ``record`` and ``procs``."""
    spec = resolve_spec(options.data_dir, builtin, "--data_dir")
    device = distributed.device_of(procs, select_device(options.gpu_ids))
    amp = device.type == "cuda" and not options.no_amp
    if options.seed is not None:
        seed_everything(options.seed + procs.rank)  # rank 0's: the net (DDP copies it)
    arch = architecture_for_flags(options.PCB, options.use_dense)
    size = tuple(options.input_size or default_input_size(arch.part_based))
    loaders = training_loaders(options, spec, arch, size, device, procs)
    nclasses = len(loaders["train"].dataset.classes)
    # Deviation from the original: it wrote opts.json before training; here it is written
    # with the run's first resume.pth (RunRecord.saving), once the folder has been checked.
    record.check(RunOptions(arch, nclasses, size, spec.key, flags=asdict(options)))
    model = place_model(build_model(arch, nclasses, options.weights), device)
    net = distributed.wrap(model, procs, device, options.sync_bn)
    opt = Optimization.for_model(model, device, amp)

    start, rows = 0, []
    if options.resume:
        start, rows = load_resume(record.run, model, opt)

    val = loaders.get("val")
    print(
        f"{len(loaders['train'].dataset)} training images of {nclasses} ids, "
        f"{len(val.dataset) if val else 0} validation images; {arch.net.__name__} at "
        f"{size[0]}x{size[1]} on {device}{' with mixed precision' if amp else ''}"
    )
    if procs.active:
        sync = ", SyncBatchNorm" if options.sync_bn else ""
        print(f"{procs.world} processes x --batchsize {options.batchsize}: global batch "
              f"{procs.world * options.batchsize}{sync}")  # fmt: skip
    epochs = range(start, options.epochs)
    return dict(model=model, loaders=loaders, device=device, opt=opt, epochs=epochs, rows=rows,
                amp=amp, net=net)  # fmt: skip


def fit(model, loaders: dict, device, opt: Optimization, record, epochs: range, rows, amp,
        net=None, procs=None):  # fmt: skip
    """The epochs ``epochs`` of training (and validation), with the run's files after each
    (the first time with its opts.json: ``record``, a :class:`RunRecord`); ``rows``: the
    log of the epochs before, extended here. Under torchrun (``procs``) ``net`` trains
    ``model`` (DistributedDataParallel), and rank 0 alone prints and writes."""
    procs, run = procs or distributed.Processes(), record.run
    since = time.time()
    for epoch in epochs:
        print(f"Epoch {epoch}/{epochs.stop - 1}\n" + "-" * 10)
        lrs = [group["lr"] for group in opt.optimizer.param_groups]  # backbone, heads
        for phase, loader in loaders.items():
            training = phase == "train"
            distributed.set_epoch(loader, epoch)
            loss, err, seen, secs = run_epoch(
                (net or model) if training else model,
                loader,
                device,
                desc=f"epoch {epoch} {phase}",
                optimizer=opt.optimizer if training else None,
                scaler=opt.scaler,
                amp=amp,
                procs=procs,
            )
            rows.append(EpochRow(epoch, phase, loss, 1 - err, lrs[0], lrs[1], seen / secs, secs))
            print(f"{phase} Loss: {loss:.4f} Acc: {1 - err:.4f} ({seen / secs:.0f} images/s)")
        # Deviation from the original: the schedule steps after the epoch's optimizer steps,
        # as modern PyTorch expects. Epochs 0-39 train at lr 0.01/0.1, the drop to 0.001/0.01
        # comes at epoch 40 (the original, calling step() first under PyTorch 0.4, dropped at
        # epoch 39).
        opt.scheduler.step()
        if procs.main:
            save_epoch(model, opt, record, epoch, rows)
    if procs.main:
        save_state_dict(model, run.checkpoint(LAST_EPOCH))
    elapsed = time.time() - since
    print(f"Training complete in {elapsed // 60:.0f}m {elapsed % 60:.0f}s; saved {run.path}/")


def save_epoch(model, opt: Optimization, record, epoch: int, rows) -> None:
    """The run's files after ``epoch`` (the first time with its opts.json)."""
    run = record.run
    with record.saving():
        # Deviation from the original: it saved in its validation phase, so a run without
        # val/ saved nothing; here the end of each epoch saves, with or without val/.
        if epoch % SAVE_EVERY == SAVE_EVERY - 1:
            save_state_dict(model, run.checkpoint(epoch))
        draw_curves(rows, run.curves)
        save_resume(run, model, opt, epoch + 1, rows)
        write_log(rows, run.train_log)  # after resume.pth, which holds its rows
