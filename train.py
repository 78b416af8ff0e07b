r"""Step 2 (any dataset): train the appearance model on a folder prepared by prepare.py.

    python3 train.py --PCB --gpu_ids 0 --name ft_ResNet50_pcb_msmt17 --erasing_p 0.5 \
        --train_all --data_dir dataset/MSMT17_prepare

The dataset is described by <data_dir>/dataset.yaml (written by prepare.py); the class count
comes from the data. Writes model/<name>/: net_<epoch>.pth every 10 epochs, net_last.pth,
opts.json, train.jpg, train_log.csv (a row per epoch and phase). The flags are
train_market.py's; --config model/<name>/opts.json replays a run's, the flags given override.
A folder holding a run is refused unless --resume (the same net) or --overwrite.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import fields
from pathlib import Path

from streid import cli, distributed
from streid.datasets import DatasetSpec
from streid.errors import UserError
from streid.files import missing
from streid.options import RunOptions
from streid.training import TrainOptions, train

# What --config does not replay: what to do with the folder, not how the run was made.
NOT_REPLAYED = ("resume", "overwrite")


def parser(builtin: DatasetSpec | None, description: str) -> argparse.ArgumentParser:
    """The flags of train.py, train_market.py and train_duke.py (``builtin``: the dataset
    of the last two, whose folder is the default ``--data_dir``)."""
    p = cli.parser(description)
    # The original's flags and defaults.
    cli.add_name_argument(p)
    cli.add_data_dir_argument(p, builtin, "holding train/, val/ or train_all/")
    p.add_argument("--train_all", action="store_true", help="train on train_all/, not train/")
    p.add_argument("--color_jitter", action="store_true", help="add ColorJitter")
    p.add_argument("--erasing_p", default=0, type=float, help="random erasing probability")
    cli.add_architecture_arguments(p)
    cli.add_device_arguments(p)  # --gpu_ids 0, --batchsize 32, --num_workers 4 (or #CPUs)
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
        help="network input (default: 384 192 with --PCB, else 256 128)",
    )
    p.add_argument("--seed", default=None, type=int, help="random seed (default: unseeded)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue model/<name>/resume.pth (with the same net: architecture, input size, "
        "classes)",
    )
    # Deviation from the original: it wrote over model/<name>/ silently, so a second run
    # (or one that died) left one run's weights described by another's opts.json.
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in model/<name>/ (its opts.json, train_log.csv, "
        "net_*.pth and resume.pth go once the first epoch has finished); without it or "
        "--resume, a folder holding a run is refused",
    )
    p.add_argument("--no_amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument(
        "--sync_bn",
        action="store_true",
        help="under torchrun, BatchNorm statistics over the batches of all processes "
        "(SyncBatchNorm); one process: no effect",
    )
    p.add_argument(
        "--config",
        metavar="OPTS_JSON",
        help="replay the flags of a run's model/<name>/opts.json (all but --resume and "
        "--overwrite); the flags given here override them",
    )
    return p


def replay(p: argparse.ArgumentParser, config: str) -> None:
    """Make the flags recorded in ``config`` (an opts.json) the defaults of ``p``, as timm's
    ``--config args.yaml``; the run's resolved input size stands for its --input_size."""
    path = Path(config)
    if why := missing(path):
        raise UserError(f"--config {path} {why}: give a run's model/<name>/opts.json")
    recorded = RunOptions.load(path)
    flags = {**recorded.flags, "input_size": list(recorded.input_size)}
    for action in p._actions:
        if action.dest in flags and action.dest not in NOT_REPLAYED:
            action.default, action.required = flags[action.dest], False


def options(argv, builtin: DatasetSpec | None, description: str) -> TrainOptions:
    """The command line ``argv`` (``--config`` first, then the flags given) as options."""
    p = parser(builtin, description)
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config", nargs="?")  # a missing value: p says so, below
    config = first.parse_known_args(argv)[0].config
    if config is not None:
        replay(p, config)
    args = vars(p.parse_args(argv))
    return TrainOptions(**{f.name: args[f.name] for f in fields(TrainOptions)})


def run(argv=None, builtin: DatasetSpec | None = None, description: str = __doc__) -> None:
    """Step 2 on the command line ``argv``: train.py (``builtin`` None), train_market.py,
    train_duke.py (their dataset and docstring)."""
    try:
        train(options(argv, builtin, description), builtin)
    except distributed.PeerFailed:
        raise SystemExit(2) from None  # the failing process said why
    except KeyboardInterrupt as stop:
        if distributed.env_rank() != 0:  # under torchrun, rank 0 says how to start again
            raise SystemExit(128 + signal.Signals[getattr(stop, "signal", "SIGINT")]) from None
        # How to start again, read by cli.entry_point: --resume once an epoch has finished.
        stop.rerun = cli.RESUME if getattr(stop, "resumable", False) else cli.RERUN
        raise


@cli.entry_point(rerun=cli.RESUME)
def main(argv=None):
    run(argv)


if __name__ == "__main__":
    main()
