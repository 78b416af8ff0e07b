"""Step 5: rank the gallery by the joint visual + spatial-temporal score; CMC and mAP.

    python evaluate_st.py --name ft_ResNet50_pcb_market_e

Reads model/<name>/pytorch_result.mat (step 3, or your own features) and
model/<name>/pytorch_result2.mat (step 4), prints the original's line
``top1:%f top5:%f top10:%f mAP:%f`` and writes the CMC curve to model/<name>/.
``--stream visual`` or ``--stream st`` ranks by one stream alone (the paper's ablations).
``--save_ranking K`` also writes model/<name>/ranking.csv, the first K matches of each query.
"""

from streid import cli
from streid.artifacts import FEATURES_FILE, Run, savemat_atomic
from streid.cli import entry_point
from streid.evaluation import TIES, evaluate_features, warn_oddities
from streid.fusion import STREAMS
from streid.interchange import load_features
from streid.ranking import TopK, save_ranking


@entry_point
def main(argv=None):
    parser = cli.parser(__doc__)
    cli.add_name_argument(parser)
    cli.add_score_arguments(parser)  # --alpha 5, --smooth 50
    parser.add_argument(
        "--stream",
        default="joint",
        choices=STREAMS,
        help="rank by the joint score, by the visual or the spatial-temporal stream alone, or "
        "by the product of the two (Eqn. 5)",
    )
    parser.add_argument(
        "--ties",
        default="argsort",
        choices=TIES,
        help="tied scores in np.argsort's order, as the original, or CMC and mAP expected "
        "over every order of them",
    )
    cli.add_save_ranking_argument(parser, "score")
    args = parser.parse_args(argv)

    run = Run(args.name)
    features = load_features(run.existing(FEATURES_FILE))
    st, smooth, _ = cli.st_model_of(args, run)
    gallery = features.gallery
    top = args.save_ranking and TopK(args.save_ranking, gallery.labels, gallery.cams)
    metrics = evaluate_features(features, st, cli.fusion_of(args), args.stream, ties=args.ties,
                                observers=[top] if top else [])  # fmt: skip
    print(metrics.summary())
    print("alpha,smooth:", args.alpha, smooth)
    savemat_atomic(run.cmc(args.stream, args.alpha), {"CMC": metrics.cmc})
    if top:
        rows = save_ranking(run.ranking, top, features.query, gallery)
        print(f"wrote {run.ranking}: {rows} rows, the first {top.k} of each query")
    warn_oddities(features.query, features.gallery, st)  # once every input has been checked
    return metrics


if __name__ == "__main__":
    main()
