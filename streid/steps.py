"""Command-line bodies of the steps that exist in a Market-1501 and a DukeMTMC-reID version.

``gen_st_model_market.py`` and ``gen_st_model_duke.py`` differ only by their dataset spec;
the two ``evaluate_rerank_*`` scripts are one step for any dataset. Each pair calls the
function here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import cli
from .all_scores import FeatureColumns
from .artifacts import ALL_SCORES_FILE, DISTRIBUTION_FILE, TRAIN_FEATURES_FILE, Run
from .bandwidth import choose_sigma
from .dataset_yaml import resolve_spec
from .datasets import PAPER_SMOOTH, DatasetSpec, image_folder
from .errors import UserError, note, warning
from .evaluation import RankingEvaluator, count_unmatched
from .fusion import Fusion
from .interchange import (
    AUTO,
    Split,
    load_features,
    load_train_features,
    save_distribution,
)
from .label_free import Clustering, clustered, learn_rounds
from .matfile import ColumnSource, MatColumns
from .rerank import rerank_blocks
from .st_model import (
    SpatialTemporalModel,
    camera_pair_histograms,
    check_cameras,
    walks,
)


def gen_st_model_main(builtin: DatasetSpec | None, description: str, argv=None) -> Path:
    """Step 4: learn the camera-pair time-gap histograms from the names under train_all/
    (their identities), or with ``--unlabeled`` from pseudo-identities of the training
    features.

    Args:
        builtin: the Market/Duke script's dataset, for a folder without ``dataset.yaml``;
            None for gen_st_model.py, which needs one.
        description: the script's docstring, for --help.
    """
    parser = cli.parser(description)
    cli.add_data_dir_argument(parser, builtin, "holding train_all/")
    cli.add_name_argument(parser)
    cli.add_label_free_arguments(parser)  # --unlabeled, --rounds, --eps, ...
    args = parser.parse_args(argv)
    with Run(args.name).lock(DISTRIBUTION_FILE):
        return _gen_st_model(args, builtin)


def _gen_st_model(args, builtin: DatasetSpec | None) -> Path:
    spec = resolve_spec(args.data_dir, builtin, "--data_dir")
    if args.unlabeled:
        return _gen_st_model_unlabeled(args, spec)
    train_dir = Path(args.data_dir) / "train_all"
    if not train_dir.is_dir():
        raise UserError(
            f"{args.data_dir} has no train_all/ folder: run step 1 (prepare.py "
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
    return _write_distribution(
        args.name, spec, targets, names.cams, names.frames, names.sessions,
        f"{len(paths)} images of {len(classes)} identities",
    )  # fmt: skip


def warn_unmatched(query_labels, query_cams, gallery_labels, gallery_cams) -> None:
    """Steps 5 and 6: one warning line for the queries without a good gallery image, which
    the metric counts as the original does."""
    unmatched = count_unmatched(query_labels, query_cams, gallery_labels, gallery_cams)
    if unmatched:
        warning(
            f"{unmatched} of {len(query_labels)} queries have no gallery image of their "
            f"person from another camera: they count as in the original (no CMC hit, AP 0, "
            f"and one query in both averages)"
        )


def warn_oddities(query, gallery, st: SpatialTemporalModel | None = None) -> None:
    """A ranking step's warnings on its input: queries without a true match, and (with
    ``st``) histograms of more cameras than the images use."""
    if st is not None:
        st.warn_unused_cameras(query.cams, gallery.cams)
    warn_unmatched(query.labels, query.cams, gallery.labels, gallery.cams)


def _write_distribution(name, spec, labels, cams, frames, sessions, source, histograms=None,
                        pseudo_labels=None) -> Path:  # fmt: skip
    """Step 4's output for the training images' identities (or pseudo-identities):
    ``pytorch_result2.mat``, with the sigma ``--smooth auto`` will use, and its line."""
    if histograms is None:
        histograms = camera_pair_histograms(labels, cams, frames, spec.num_cameras,
                                            spec.num_bins, spec.interval, sessions)  # fmt: skip
    auto, _ = choose_sigma(
        labels, cams, frames, spec.num_cameras, spec.num_bins, spec.interval, sessions
    )
    smooth = spec.smooth if spec.smooth != AUTO else auto or PAPER_SMOOTH
    if auto is None:
        why = "too few training identities with a time gap between two cameras"
        note(
            f"step 4 could not choose a Parzen sigma from the training gaps ({why}): steps "
            f"5-6 refuse --smooth auto on this run; sigma {smooth} bins by default"
        )
    out = Run(name).distribution
    save_distribution(out, histograms, spec.interval, smooth, auto, pseudo_labels)
    in_sessions = ""
    if sessions is not None:
        count = len(np.unique(walks(labels, sessions)))
        sessions = len(np.unique(sessions))
        in_sessions = f" ({count} walks in {sessions} session{'' if sessions == 1 else 's'})"
    print(
        f"wrote {out}: {spec.num_cameras}x{spec.num_cameras} camera pairs x {spec.num_bins} "
        f"bins of {spec.interval} {spec.unit}, from {source}{in_sessions}; sigma {smooth} "
        f"bins by default (auto: {auto})"
    )
    return out


def _gen_st_model_unlabeled(args, spec: DatasetSpec) -> Path:
    """Step 4 ``--unlabeled``: the histograms of pseudo-identities found in
    ``pytorch_result_train.mat`` (:mod:`streid.label_free`); no identity label is read."""
    path = Run(args.name).existing(TRAIN_FEATURES_FILE)
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
    clustering = Clustering(rounds=args.rounds, eps=args.eps, min_samples=args.min_samples,
                            k1=args.k1, k2=args.k2)  # fmt: skip
    for done in learn_rounds(train, spec.num_cameras, spec.num_bins, spec.interval,
                             spec.smooth, clustering):  # fmt: skip
        print(done.summary(clustering.rounds), flush=True)
    identities, alone = int(done.pseudo.max()) + 1, int((done.pseudo < 0).sum())
    return _write_distribution(
        args.name, spec, *clustered(done.pseudo, train),
        f"{len(train)} images: {identities} pseudo-identities, {alone} images left alone",
        histograms=done.histograms, pseudo_labels=done.pseudo,
    )  # fmt: skip


def _score_source(args) -> tuple[ColumnSource, Split, Split, SpatialTemporalModel | None]:
    """The joint scores to re-rank (``all_scores.mat``, or computed from the features with
    ``--from_features``), the query and gallery sets, and the spatial-temporal model (None
    for ``all_scores.mat``)."""
    if not args.from_features:
        if cli.fusion_of(args) != Fusion() or args.smooth is not None:
            raise UserError(
                "--alpha, --gamma0/1, --lambda0/1 and --smooth go with --from_features "
                "(step 6.1 fixed them in all_scores.mat)"
            )
        if args.gpu_ids.strip() != "-1":
            raise UserError("--gpu_ids goes with --from_features (all_scores.mat is read)")
        features = load_features(args.name, with_features=False)
        query, gallery = features.query, features.gallery
        scores = MatColumns(Run(args.name).existing(ALL_SCORES_FILE), "all_scores")
        num = len(query) + len(gallery)
        if scores.shape != (num, num):
            raise UserError(
                f"all_scores in {scores.path} has shape {scores.shape}, but pytorch_result.mat "
                f"holds {len(query)} queries + {len(gallery)} gallery images: expected "
                f"({num}, {num}); run step 6.1 (gen_rerank_all_scores_mat.py) again"
            )
        return scores, query, gallery, None
    features = load_features(args.name)
    st, _, _ = cli.st_model_of(args)
    st.check_query_gallery(features.query.cams, features.gallery.cams)
    query, gallery = features.query, features.gallery
    device = None
    if args.gpu_ids.strip() != "-1":
        from .device import select_device  # torch only where a device is asked for

        device = select_device(args.gpu_ids)
        device = None if device.type == "cpu" else device  # the CPU: NumPy, step 6.1's bits
    return FeatureColumns(features, st, cli.fusion_of(args), device=device), query, gallery, st


def evaluate_rerank_main(description: str, argv=None):
    """Step 6.2: re-rank the joint scores and evaluate, one block of queries at a time.

    The scores are step 6.1's ``all_scores.mat`` (the original's path), or, with
    ``--from_features``, computed from ``pytorch_result.mat`` and ``pytorch_result2.mat`` as
    step 6.1 computes them. The Market and Duke scripts are the same step (as in the
    original): labels and cameras come from ``pytorch_result.mat``, whatever the dataset.

    Args:
        description: the script's docstring, for --help.
    """
    parser = cli.parser(description)
    cli.add_name_argument(parser)
    cli.add_rerank_arguments(parser)  # --k1 20, --k2 6, --lambda_value 0.3
    parser.add_argument(
        "--from_features",
        action="store_true",
        help="compute the joint scores from pytorch_result.mat and pytorch_result2.mat "
        "instead of reading all_scores.mat (step 6.1): no N x N file, bounded memory",
    )
    # Added: the original's step 6 has no device. The CPU stays the default.
    parser.add_argument(
        "--gpu_ids",
        default="-1",
        type=str,
        help="with --from_features: compute the scores on this GPU (-1: the CPU, "
        "with step 6.1's bits; a GPU gives the same printed digits)",
    )
    cli.add_score_arguments(parser)  # --alpha 5, --smooth: with --from_features
    args = parser.parse_args(argv)

    columns, query, gallery, st = _score_source(args)
    start = time.perf_counter()
    evaluator = RankingEvaluator(gallery.labels, gallery.cams, descending=False)
    for q0, q1, final in rerank_blocks(columns, len(query), args.k1, args.k2, args.lambda_value):
        evaluator.add(final, query.labels[q0:q1], query.cams[q0:q1])
    elapsed = time.perf_counter() - start
    warn_oddities(query, gallery, st)  # once every input has been read and checked
    print(f"Reranking complete in {elapsed // 60:.0f}m {elapsed % 60:.0f}s")
    metrics = evaluator.result()
    print(metrics.summary())
    return metrics
