"""The ``model/<name>/`` folder contract: every file name, validated .mat reading, atomic
writing.

Files of a run named NAME (relative to the working directory, as in the original), all named
here and nowhere else (:class:`Run` gives their paths):

=============================  ========  ====================================================
``net_<epoch>.pth``            step 2    state dicts, every 10 epochs and ``net_last.pth``
``opts.json``                  step 2    the run's options (:mod:`streid.options`)
``train.jpg``                  step 2    training curves
``train_log.csv``              step 2    one row per epoch and phase (:mod:`streid.train_log`)
``resume.pth``                 step 2    optimizer, schedule and history for ``--resume``
``pytorch_result.mat``         step 3    features + metadata: the interchange file
``pytorch_result_train.mat``   step 3    the same for ``train_all/`` (``--train``), for step 4
``pytorch_result2.mat``        step 4    ``distribution``: camera-pair time-gap histograms
                                         (``pseudo_labels`` too with ``--unlabeled``)
``CMC_*.mat``                  step 5    the CMC curve (:data:`CMC_FILES`)
``all_scores.mat``             step 6.1  ``all_scores``: joint scores of [query; gallery] pairs
``ranking.csv``                step 5/6  the first K matches per query (``--save_ranking K``)
``st_distribution.png``        picture   the time-gap distributions (plot_st_distribution.py)
``rank_list.png``              picture   rank lists of a few queries (plot_rank_list.py)
``figure4.png``, ``.csv``      picture   the paper's Figure 4 on the run (figure4.py)
=============================  ========  ====================================================

The schemas of the interchange files ``pytorch_result.mat``, ``pytorch_result_train.mat`` and
``pytorch_result2.mat`` and their validated reading are in :mod:`streid.interchange`.

Every writer goes through a temporary file in the destination folder and an atomic rename
(:mod:`streid.files`), so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import scipy.io

from .errors import UserError
from .files import atomic_output, locked, remove_stale_temporaries

MODEL_ROOT = Path("model")

# Deviation from the original: every step defaults to the run name of its steps 2-3; its later
# scripts each had a different default left over from the authors' own runs.
DEFAULT_NAME = "ft_ResNet50"

CHECKPOINT_FILE = "net_{epoch}.pth"
LAST_EPOCH = "last"  # net_last.pth, the end of training
SAVE_EVERY = 10  # net_<epoch>.pth when epoch % 10 == 9, as the original
OPTS_FILE = "opts.json"
CURVES_FILE = "train.jpg"
TRAIN_LOG_FILE = "train_log.csv"  # not in the original
RESUME_FILE = "resume.pth"
FEATURES_FILE = "pytorch_result.mat"
TRAIN_FEATURES_FILE = "pytorch_result_train.mat"  # step 3 --train: not in the original
DISTRIBUTION_FILE = "pytorch_result2.mat"
# Step 5's CMC curve per ranking stream: the original's names (the last two were
# commented-out alternatives there), Duke in the name whatever the dataset.
CMC_FILES = {
    "joint": "CMC_duke_two_stream_add{alpha}.mat",
    "visual": "CMC_duke_vis_stream.mat",
    "st": "CMC_duke_st_stream.mat",
    "product": "CMC_duke_product_stream.mat",  # the Eqn. 5 baseline: not in the original
}
ALL_SCORES_FILE = "all_scores.mat"
RANKING_FILE = "ranking.csv"  # --save_ranking K of steps 5 and 6.2: not in the original
ST_PICTURE_FILE = "st_distribution.png"
RANK_LIST_FILE = "rank_list.png"
FIGURE4_FILES = ("figure4.png", "figure4.csv")  # figure4.py

# Which step writes each file, for the "missing file" messages; {test_st} and {gen_st_model}
# name the scripts of the running script's family (:func:`made_by`).
MADE_BY = {
    FEATURES_FILE: "step 3 ({test_st}, or your own features in the same format, see the README)",
    TRAIN_FEATURES_FILE: "step 3 with --train ({test_st_train}), or your own training "
    "features in the same format, see the README",
    DISTRIBUTION_FILE: "step 4 ({gen_st_model})",
    ALL_SCORES_FILE: "step 6.1 (gen_rerank_all_scores_mat.py)",
}
# A script of no family (evaluate_st.py, the pictures) names the Market and Duke scripts.
ANY_FAMILY = {
    "test_st": "test_st_market.py / test_st_duke.py",
    "test_st_train": "test_st_market.py / test_st_duke.py / test_st.py --train",
    "gen_st_model": "gen_st_model_market.py / gen_st_model_duke.py",
}


def made_by(filename: str, family: str | None = None) -> str:
    """The step (and its script) that writes ``filename``, for a "missing file" message.

    Args:
        family: the running script's: "_market", "_duke", "" for the dataset-neutral
            scripts (gen_st_model.py, evaluate_rerank.py: then test_st.py, gen_st_model.py),
            or None where the script serves every dataset.
    """
    if family is None:
        names = ANY_FAMILY
    else:
        names = {"test_st": f"test_st{family}.py", "test_st_train": f"test_st{family}.py --train",
                 "gen_st_model": f"gen_st_model{family}.py"}  # fmt: skip
    return MADE_BY.get(filename, "an earlier step").format(**names)


@dataclass(frozen=True)
class Run:
    """The folder ``model/<name>/`` of a run, and the path of each of its files.

    The path properties do not check that a file exists; :meth:`existing` does.

    Attributes:
        family: the running script's family, for the "made by" messages (:func:`made_by`).
    """

    name: str
    family: str | None = None

    @property
    def path(self) -> Path:
        return MODEL_ROOT / self.name

    def checkpoint(self, epoch: int | str) -> Path:
        """``net_<epoch>.pth``: an epoch number, or ``last``."""
        return self.path / CHECKPOINT_FILE.format(epoch=epoch)

    def checkpoints(self) -> list[str]:
        """The names of the run's existing ``net_*.pth`` files, sorted."""
        return sorted(p.name for p in self.path.glob(CHECKPOINT_FILE.format(epoch="*")))

    @property
    def opts(self) -> Path:
        return self.path / OPTS_FILE

    @property
    def curves(self) -> Path:
        return self.path / CURVES_FILE

    @property
    def resume(self) -> Path:
        return self.path / RESUME_FILE

    @property
    def train_log(self) -> Path:
        return self.path / TRAIN_LOG_FILE

    @property
    def features(self) -> Path:
        return self.path / FEATURES_FILE

    @property
    def train_features(self) -> Path:
        return self.path / TRAIN_FEATURES_FILE

    @property
    def distribution(self) -> Path:
        return self.path / DISTRIBUTION_FILE

    def cmc(self, stream: str, alpha) -> Path:
        """Step 5's CMC file of ``stream`` (the joint one is named after ``--alpha``)."""
        return self.path / CMC_FILES[stream].format(alpha=alpha)

    @property
    def all_scores(self) -> Path:
        return self.path / ALL_SCORES_FILE

    @property
    def ranking(self) -> Path:
        return self.path / RANKING_FILE

    @property
    def st_picture(self) -> Path:
        return self.path / ST_PICTURE_FILE

    @property
    def rank_list(self) -> Path:
        return self.path / RANK_LIST_FILE

    @property
    def figure4_png(self) -> Path:
        return self.path / FIGURE4_FILES[0]

    @property
    def figure4_csv(self) -> Path:
        return self.path / FIGURE4_FILES[1]

    @contextlib.contextmanager
    def lock(self, filename: str, activity: str = "written"):
        """Hold this run's writer lock of ``filename`` (its step's output) while the block
        runs; UserError naming the holder if another process holds it ("<file> is being
        ``activity`` by process ..."). Stale temporary files of the run are removed on the
        way in.

        Advisory (``fcntl.flock``), so only st-reid's steps heed it; released however the
        process ends, even by kill -9. The lock file lies beside the run's folder
        (``model/.<name>.<file>.lock``), which it does not create; where the file system has
        no locks, nothing is held.
        """
        root = self.path.parent
        made = not root.is_dir()
        root.mkdir(parents=True, exist_ok=True)
        try:
            with locked(root / f".{self.path.name}.{filename}.lock",
                        f"{self.path / filename} is being {activity}"):  # fmt: skip
                if self.path.is_dir():
                    remove_stale_temporaries(self.path)
                yield
        finally:
            if made:  # a step that failed before writing leaves no empty model/ behind
                with contextlib.suppress(OSError):
                    root.rmdir()

    def require(self) -> Run:
        """This run; UserError if its folder does not exist."""
        if not self.path.is_dir():
            raise UserError(
                f"{self.path}/ does not exist (runs are looked for in the current folder, "
                f"{Path.cwd()}/): run the earlier steps with --name {self.name} first, from "
                f"the same folder (it is made by step 2, training, or by step 3 for your own "
                f"features)"
            )
        return self

    def existing(self, filename: str) -> Path:
        """The path of an existing file of the run; UserError naming its step if missing."""
        path = self.require().path / filename
        step = made_by(filename, self.family)
        if path.is_dir():
            raise UserError(f"{path} is a folder, not the file made by {step}")
        if not path.is_file():
            raise UserError(f"{path} not found: it is made by {step}")
        return path


def savemat_atomic(path: str | os.PathLike, mdict: dict) -> None:
    """``scipy.io.savemat`` through a temporary file and an atomic rename."""
    with atomic_output(path) as tmp:
        scipy.io.savemat(tmp, mdict)


def loadmat_checked(
    path, keys: tuple[str, ...], optional: tuple[str, ...] = (), source: Path | None = None
) -> dict:
    """Load ``keys`` (and ``optional`` keys, where present) from a .mat file (a path, or a
    file open for reading, named ``source``); UserError if it cannot be read or lacks one of
    ``keys``."""
    opened = not isinstance(path, (str, os.PathLike))
    name = source if opened else path
    try:
        data = scipy.io.loadmat(path, variable_names=keys + optional)
    except Exception as err:  # scipy raises several types for a damaged or foreign file
        raise UserError(f"{name} could not be read as a MATLAB .mat file ({err})") from None
    missing = [k for k in keys if k not in data]
    if missing:
        if opened:
            path.seek(0)
        found = sorted(key for key, _, _ in scipy.io.whosmat(path))
        raise UserError(f"{name} has no key {missing[0]!r} (expected {list(keys)}, found {found})")
    return data
