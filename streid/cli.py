"""The step scripts' command line: parsers, the flags they share, and the entry-point wrapper.

Every flag that more than one script takes is declared once here, in an argument group
(``--name``; ``--gpu_ids``, ``--batchsize``, ``--num_workers``; ``--PCB``, ``--use_dense``;
``--alpha``, ``--smooth``; ``--k1``, ``--k2``, ``--lambda_value``), with the original's
default.

The scripts' ``main`` functions are wrapped in :func:`entry_point`: a
:class:`streid.errors.UserError` prints its one line to stderr and exits with status 2,
without a traceback; Ctrl-C, SIGTERM and SIGHUP stop the step with one line, after every
temporary file has been removed. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import math
import os
import signal
import sys
import threading
from collections.abc import Callable

from .artifacts import DEFAULT_NAME, DISTRIBUTION_FILE, Run
from .errors import Interrupted, UserError
from .fusion import Fusion
from .interchange import Distribution, load_distribution, resolve_smooth
from .label_free import Clustering
from .st_model import SpatialTemporalModel


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the docstring's layout (the README command) and shows every default once:
    not for a required flag, a flag without a default (None) or one whose help already says
    its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if action.required or action.default in (None, argparse.SUPPRESS) or "default" in help:
            return help
        return super()._get_help_string(action)


def parser(description: str) -> argparse.ArgumentParser:
    """The argument parser of a step script, described by its docstring."""
    return argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)


RERUN = "run the same command again"
RESUME = "run the same command with --resume to continue from the last finished epoch"
# What a batch scheduler at its time limit, `timeout` or a closed terminal sends.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_signals_interrupt():
    """SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread while the step runs,
    so that it stops as on Ctrl-C: every temporary file is removed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def entry_point(main: Callable | None = None, *, rerun: str = RERUN) -> Callable:
    """Wrap a script's ``main(argv=None)``: a :class:`UserError` prints its line and exits
    with status 2; Ctrl-C, SIGTERM and SIGHUP stop the step, which leaves no partial file,
    and print one line saying so and how to start again, with status 128 + the signal's
    number. How to start again is ``rerun``, unless the step knew better when it stopped and
    set it as the ``rerun`` attribute of the KeyboardInterrupt (training: --resume only once
    an epoch has finished). Use as ``@entry_point`` or ``@entry_point(rerun=RESUME)``."""
    if main is None:
        return functools.partial(entry_point, rerun=rerun)
    script = os.path.basename(inspect.getfile(main))

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            with _stop_signals_interrupt():
                return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt as err:
            name = err.signal if isinstance(err, Interrupted) else "SIGINT"
            print(
                f"interrupted by {name}: {script} stopped before it finished and left no "
                f"partial file; {getattr(err, 'rerun', rerun)}",
                file=sys.stderr,
            )
            raise SystemExit(128 + signal.Signals[name].value) from None

    return wrapper


# -- shared flags ---------------------------------------------------------------------------
def add_name_argument(p: argparse.ArgumentParser) -> None:
    """``--name``: the run, whose files live in ``model/<name>/``."""
    p.add_argument("--name", default=DEFAULT_NAME, type=str, help="run name: model/<name>/")


def add_data_dir_argument(p: argparse.ArgumentParser, builtin, what: str, flag="--data_dir"):
    """``--data_dir`` (or ``--test_dir``): a folder made by prepare.py.

    Args:
        builtin: the Market/Duke script's dataset spec, whose folder is the default; None
            for the dataset-neutral scripts, where the flag is required.
        what: what the folder holds, for the help.
    """
    help = f"prepared dataset (step 1), {what}"
    if builtin is None:
        p.add_argument(flag, required=True, type=str, help=help)
    else:
        p.add_argument(flag, default=builtin.prepared_dir, type=str, help=help)


def add_device_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how fast steps 2-3 run: ``--gpu_ids``, ``--batchsize``, ``--num_workers``."""
    group = p.add_argument_group("device and data loading")
    group.add_argument("--gpu_ids", default="0", type=str, help="GPU id, e.g. 0 (-1: the CPU)")
    group.add_argument("--batchsize", default=32, type=int, help="batch size")
    # Added: the original loaded with a fixed number of processes. 4, or one per CPU where
    # there are fewer (streid.data.DEFAULT_WORKERS, which imports torch).
    workers = min(4, os.cpu_count() or 1)
    group.add_argument("--num_workers", default=workers, type=int, help="data loading processes")


def add_architecture_arguments(p: argparse.ArgumentParser, when: str = "") -> None:
    """The original's choice of net: ``--PCB`` (wins) or ``--use_dense``, else ResNet-50.

    Args:
        when: appended to the help, e.g. " (if no opts.json)".
    """
    group = p.add_argument_group("architecture (streid.models registry)")
    group.add_argument(
        "--use_dense", action="store_true", help=f"DenseNet-121 instead of ResNet-50{when}"
    )
    group.add_argument("--PCB", action="store_true", help=f"the PCB part model{when}")


def finite_float(text: str) -> float:
    """A flag's number: any finite float (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0: a gamma or lambda of Eqn. 9 (0 switches a stream's factor off,
    as Figure 4 (c) and (d) do; a negative one inverts or breaks the logistic)."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 0")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def smooth_value(text: str):
    """A ``--smooth`` value: a positive, finite number of bins, or ``auto``."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of bins or 'auto'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: sigma must be a finite number of bins")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: sigma must be positive")
    return value


def add_score_arguments(p: argparse.ArgumentParser, alpha: bool = True) -> None:
    """The joint score's parameters, shared by steps 5 and 6, the pictures and figure4.py."""
    # joint = f(s; lambda0, gamma0) * f(p; lambda1, gamma1), f(x) = 1/(1 + lambda exp(-gamma x)),
    # p smoothed with sigma = --smooth; the original: 1/(1+exp(-alpha s)) * 1/(1+2 exp(-alpha p)).
    group = p.add_argument_group("joint score (Eqn. 9)")
    if alpha:
        # As the original: an int default, so the default prints "5" and names the file add5.
        # Deviation from the original: nan, inf and negative values are refused here (the
        # original wrote an all-NaN ranking, and a file named ...addnan.mat).
        number = non_negative_float
        group.add_argument(
            "--alpha", default=5, type=number, help="logistic shrinking factor of both streams"
        )
        group.add_argument("--gamma0", type=number, help="gamma of the visual stream (--alpha)")
        group.add_argument("--gamma1", type=number, help="gamma of the ST stream (--alpha)")
        group.add_argument("--lambda0", default=1, type=number, help="lambda of the visual stream")
        group.add_argument("--lambda1", default=2, type=number, help="lambda of the ST stream")
    group.add_argument(
        "--smooth",
        default=None,
        type=smooth_value,
        help="Parzen window: Gaussian sigma, in bins, or 'auto' for the one step 4 chose from "
        "the training gaps (default %(default)s: the dataset's, recorded by step 4; 50 for "
        "Market-1501 and DukeMTMC-reID, as the paper)",
    )


def fusion_of(args: argparse.Namespace) -> Fusion:
    """The joint metric of ``add_score_arguments``' flags: ``--alpha`` sets both gammas,
    ``--gamma0`` / ``--gamma1`` override one."""
    return Fusion(
        gamma0=args.alpha if args.gamma0 is None else args.gamma0,
        gamma1=args.alpha if args.gamma1 is None else args.gamma1,
        lambda0=args.lambda0,
        lambda1=args.lambda1,
    )


def st_model_of(
    args: argparse.Namespace, run: Run | None = None
) -> tuple[SpatialTemporalModel, float, Distribution]:
    """Run ``--name``'s spatial-temporal model smoothed at ``--smooth``: (model, sigma, step
    4's file). ``run``: ``Run(--name)`` with the running script's family, where it has one."""
    path = (run or Run(args.name)).existing(DISTRIBUTION_FILE)
    dist = load_distribution(path)
    sigma = resolve_smooth(dist, args.smooth, path)
    return SpatialTemporalModel.from_histograms(dist.histograms, sigma, dist.interval), sigma, dist


def add_save_ranking_argument(p: argparse.ArgumentParser, score: str) -> None:
    """``--save_ranking K`` of steps 5 and 6.2 (:mod:`streid.ranking`; added: not in the
    original). ``score``: what the file's score column holds, for the help."""
    p.add_argument(
        "--save_ranking",
        default=None,
        type=positive_int,
        metavar="K",
        help="also write model/<name>/ranking.csv: the first K gallery images of every "
        f"query as ranked (junk left out), with their person, camera, time and {score}",
    )


def add_label_free_arguments(p: argparse.ArgumentParser) -> None:
    """Step 4 without identity labels (:mod:`streid.label_free`); the defaults are the
    measured ones of :class:`streid.label_free.Clustering`."""
    default = Clustering()
    group = p.add_argument_group("without identity labels (added: not in the original)")
    group.add_argument(
        "--unlabeled",
        action="store_true",
        help="learn from pseudo-identities of the training features (pytorch_result_train.mat, "
        "step 3 --train), never from identity labels",
    )
    group.add_argument("--rounds", default=default.rounds, type=int, help="clustering rounds")
    group.add_argument(
        "--eps", default=default.eps, type=float, help="DBSCAN radius, in Jaccard distance"
    )
    group.add_argument(
        "--min_samples", default=default.min_samples, type=int, help="DBSCAN core size"
    )
    group.add_argument(
        "--k1", default=default.k1, type=int, help="k-reciprocal neighbours of the Jaccard"
    )
    group.add_argument("--k2", default=default.k2, type=int, help="its query expansion")


def add_rerank_arguments(p: argparse.ArgumentParser) -> None:
    """k-reciprocal re-ranking's parameters: the paper's and the original's defaults."""
    group = p.add_argument_group("re-ranking")
    group.add_argument("--k1", default=20, type=int, help="k-reciprocal neighbours")
    group.add_argument("--k2", default=6, type=int, help="neighbours of the query expansion")
    group.add_argument(
        "--lambda_value", default=0.3, type=finite_float, help="weight of the original distance"
    )
