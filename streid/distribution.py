"""Step 4's learning: the camera-pair time-gap histograms of the training images' identities
(the names under ``train_all/``) or pseudo-identities (:mod:`streid.label_free`), and
``pytorch_result2.mat`` written with the sigma ``--smooth auto`` will use.

gen_st_model*.py parse the flags and call :func:`labelled_walks` or :func:`unlabeled_walks`,
then :func:`write_distribution`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bandwidth import choose_sigma
from .datasets import PAPER_SMOOTH, DatasetSpec, image_folder
from .errors import UserError, note
from .interchange import AUTO, load_train_features, save_distribution
from .label_free import Clustering, clustered, learn_rounds
from .st_model import camera_pair_histograms, check_cameras, walks


@dataclass
class Walks:
    """What step 4 learns from: one (pseudo-)identity, camera, time and session per image.

    Attributes:
        source: what the images are, for the result line ("12936 images of 751 identities").
        histograms: already learnt (``--unlabeled``: the last round's), else None.
        pseudo_labels: the pseudo-identities (-1: alone), recorded in the file, or None.
    """

    labels: np.ndarray
    cams: np.ndarray
    frames: np.ndarray
    sessions: np.ndarray | None
    source: str
    histograms: np.ndarray | None = None
    pseudo_labels: np.ndarray | None = None


def labelled_walks(data_dir: str | os.PathLike, spec: DatasetSpec) -> Walks:
    """The identities of the images under ``<data_dir>/train_all/`` (``--data_dir``)."""
    train_dir = Path(data_dir) / "train_all"
    if not train_dir.is_dir():
        raise UserError(
            f"{data_dir} has no train_all/ folder: run step 1 (prepare.py "
            f"{spec.prepare_flag}) or point --data_dir at its output"
        )
    # Only the names are read (the label of an image is its ImageFolder class index, as in
    # the original), so the images themselves may be empty placeholder files.
    paths, targets, classes = image_folder(train_dir)
    if not paths:
        raise UserError(f"{train_dir} holds no images")
    names = spec.parse_names(paths)
    # Deviation from the original: it would count the unknown (-1) as one person's walk.
    if (names.labels < 0).any():
        raise UserError(
            f"{train_dir} holds {int((names.labels < 0).sum())} images of unknown identity "
            f"(person -1): learn without identity labels with --unlabeled, from the training "
            f"features of step 3 --train"
        )
    check_cameras(names.cams, spec.num_cameras, str(train_dir), names=paths)
    return Walks(targets, names.cams, names.frames, names.sessions,
                 f"{len(paths)} images of {len(classes)} identities")  # fmt: skip


def unlabeled_walks(path: str | os.PathLike, spec: DatasetSpec, clustering: Clustering) -> Walks:
    """``--unlabeled``: the pseudo-identities found in a ``pytorch_result_train.mat`` (step 3
    ``--train``), round by round (one line each); no identity label is read."""
    train = load_train_features(path)
    check_cameras(train.cams, spec.num_cameras, f"{path}: train_cam")
    if len(np.unique(train.cams)) < 2:
        raise UserError(
            f"{path}: every training image is of camera {int(train.cams[0])}; the "
            f"spatial-temporal model needs images of two cameras or more"
        )
    if spec.has_sessions and train.sessions is None:
        raise UserError(
            f"{path} has no train_session, but {spec.title} has recording sessions (times "
            f"of two sessions cannot be compared): write the session of each image"
        )
    for done in learn_rounds(train, spec.num_cameras, spec.num_bins, spec.interval,
                             spec.smooth, clustering):  # fmt: skip
        print(done.summary(clustering.rounds), flush=True)
    identities, alone = int(done.pseudo.max()) + 1, int((done.pseudo < 0).sum())
    return Walks(
        *clustered(done.pseudo, train),
        f"{len(train)} images: {identities} pseudo-identities, {alone} images left alone",
        histograms=done.histograms, pseudo_labels=done.pseudo,
    )  # fmt: skip


def write_distribution(out: str | os.PathLike, spec: DatasetSpec, w: Walks) -> Path:
    """Write ``pytorch_result2.mat`` at ``out`` (histograms, interval, the default sigma and
    the one chosen from the training gaps) and print its line."""
    histograms = w.histograms
    if histograms is None:
        histograms = camera_pair_histograms(w.labels, w.cams, w.frames, spec.num_cameras,
                                            spec.num_bins, spec.interval, w.sessions)  # fmt: skip
    auto, _ = choose_sigma(
        w.labels, w.cams, w.frames, spec.num_cameras, spec.num_bins, spec.interval, w.sessions
    )
    smooth = spec.smooth if spec.smooth != AUTO else auto or PAPER_SMOOTH
    if auto is None:
        why = "too few training identities with a time gap between two cameras"
        note(
            f"step 4 could not choose a Parzen sigma from the training gaps ({why}): steps "
            f"5-6 refuse --smooth auto on this run; sigma {smooth} bins by default"
        )
    save_distribution(out, histograms, spec.interval, smooth, auto, w.pseudo_labels)
    in_sessions = ""
    if w.sessions is not None:
        count = len(np.unique(walks(w.labels, w.sessions)))
        sessions = len(np.unique(w.sessions))
        in_sessions = f" ({count} walks in {sessions} session{'' if sessions == 1 else 's'})"
    print(
        f"wrote {out}: {spec.num_cameras}x{spec.num_cameras} camera pairs x {spec.num_bins} "
        f"bins of {spec.interval} {spec.unit}, from {w.source}{in_sessions}; sigma {smooth} "
        f"bins by default (auto: {auto})"
    )
    return Path(out)
