"""Step 5: rank the gallery by the joint visual + spatial-temporal score; CMC and mAP.

    python evaluate_st.py --name ft_ResNet50_pcb_market_e

Reads model/<name>/pytorch_result.mat (step 3, or your own features) and
model/<name>/pytorch_result2.mat (step 4), prints the original's line
``top1:%f top5:%f top10:%f mAP:%f`` and writes the CMC curve to model/<name>/.
``--stream visual`` or ``--stream st`` ranks by one stream alone (the paper's ablations).
"""

from streid import cli
from streid.artifacts import load_distribution, load_features, run_dir, savemat_atomic
from streid.cli import entry_point
from streid.evaluation import evaluate_features
from streid.st_model import STREAMS, SpatialTemporalModel
from streid.steps import DEFAULT_NAME, add_score_arguments

# The original's CMC file names (the last two were commented-out alternatives there).
CMC_FILES = {
    "joint": "CMC_duke_two_stream_add{alpha}.mat",
    "visual": "CMC_duke_vis_stream.mat",
    "st": "CMC_duke_st_stream.mat",
}


@entry_point
def main(argv=None):
    parser = cli.parser(__doc__)
    parser.add_argument("--name", default=DEFAULT_NAME, help="run name")
    add_score_arguments(parser)  # --alpha 5, --smooth 50
    parser.add_argument(
        "--stream",
        default="joint",
        choices=STREAMS,
        help="rank by the joint score, or by the visual or the spatial-temporal stream alone",
    )
    args = parser.parse_args(argv)

    features = load_features(args.name)
    distribution, interval = load_distribution(args.name)
    st = SpatialTemporalModel.from_histograms(distribution, args.smooth, interval)
    metrics = evaluate_features(features, st, args.alpha, args.stream)
    print(metrics.summary())
    print("alpha,smooth:", args.alpha, args.smooth)
    out = run_dir(args.name) / CMC_FILES[args.stream].format(alpha=args.alpha)
    savemat_atomic(out, {"CMC": metrics.cmc})
    return metrics


if __name__ == "__main__":
    main()
