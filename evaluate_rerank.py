"""Step 6.2 (any dataset): k-reciprocal re-ranking of the joint scores; CMC and mAP.

    python evaluate_rerank.py --name ft_ResNet50_pcb_msmt17

Reads model/<name>/all_scores.mat (step 6.1) and the labels and cameras of
model/<name>/pytorch_result.mat, and prints the original's line
``top1:%f top5:%f top10:%f mAP:%f``. The same step as evaluate_rerank_market.py and
evaluate_rerank_duke.py.
"""

import time

from streid import cli
from streid.all_scores import FeatureColumns
from streid.artifacts import ALL_SCORES_FILE, FEATURES_FILE, Run
from streid.cli import entry_point
from streid.errors import UserError
from streid.evaluation import warn_oddities
from streid.fusion import Fusion
from streid.interchange import load_features
from streid.matfile import MatColumns
from streid.metrics import RankingEvaluator
from streid.ranking import TopK, save_ranking
from streid.rerank import rerank_blocks


def step_main(description: str, argv=None, family: str = ""):
    """Step 6.2 for this script and its aliases evaluate_rerank_market.py / _duke.py: re-rank
    the joint scores and evaluate, one block of queries at a time.

    The scores are step 6.1's ``all_scores.mat`` (the original's path), or, with
    ``--from_features``, computed from ``pytorch_result.mat`` and ``pytorch_result2.mat`` as
    step 6.1 computes them. The Market and Duke scripts are the same step (as in the
    original): labels and cameras come from ``pytorch_result.mat``, whatever the dataset.

    Args:
        description: the script's docstring, for --help.
        family: the script's ("_market", "_duke", ""), for the "made by" messages.
    """
    args = _parser(description).parse_args(argv)
    run = Run(args.name, family=family)
    columns, query, gallery, st = _score_source(args, run)
    start = time.perf_counter()
    evaluator = RankingEvaluator(gallery.labels, gallery.cams, descending=False)
    top = args.save_ranking and TopK(args.save_ranking, gallery.labels, gallery.cams, False)
    for q0, q1, final in rerank_blocks(columns, len(query), args.k1, args.k2, args.lambda_value):
        evaluator.add(final, query.labels[q0:q1], query.cams[q0:q1])
        if top:
            top.add(final, query.labels[q0:q1], query.cams[q0:q1])
    elapsed = time.perf_counter() - start
    warn_oddities(query, gallery, st)  # once every input has been read and checked
    print(f"Reranking complete in {elapsed // 60:.0f}m {elapsed % 60:.0f}s")
    metrics = evaluator.result()
    print(metrics.summary())
    if top:
        rows = save_ranking(run.ranking, top, query, gallery, score="distance")
        print(f"wrote {run.ranking}: {rows} rows, the first {top.k} of each query")
    return metrics


def _parser(description: str):
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
    cli.add_save_ranking_argument(parser, "re-ranked distance")
    return parser


def _score_source(args, run: Run):
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
        features = load_features(run.existing(FEATURES_FILE), with_features=False)
        query, gallery = features.query, features.gallery
        scores = MatColumns(run.existing(ALL_SCORES_FILE), "all_scores")
        num = len(query) + len(gallery)
        if scores.shape != (num, num):
            raise UserError(
                f"all_scores in {scores.path} has shape {scores.shape}, but pytorch_result.mat "
                f"holds {len(query)} queries + {len(gallery)} gallery images: expected "
                f"({num}, {num}); run step 6.1 (gen_rerank_all_scores_mat.py) again"
            )
        return scores, query, gallery, None
    features = load_features(run.existing(FEATURES_FILE))
    st, _, _ = cli.st_model_of(args, run)
    st.check_query_gallery(features.query.cams, features.gallery.cams)
    query, gallery = features.query, features.gallery
    device = None
    if args.gpu_ids.strip() != "-1":
        from streid.device import select_device  # torch only where a device is asked for

        device = select_device(args.gpu_ids)
        device = None if device.type == "cpu" else device  # the CPU: NumPy, step 6.1's bits
    return FeatureColumns(features, st, cli.fusion_of(args), device=device), query, gallery, st


@entry_point
def main(argv=None):
    return step_main(__doc__, argv)


if __name__ == "__main__":
    main()
