"""Picture of the spatial-temporal model: time-gap distributions of every camera pair.

    python plot_st_distribution.py --name ft_ResNet50_pcb_market_e

Reads model/<name>/pytorch_result2.mat (step 4) and writes model/<name>/st_distribution.png:
one panel per ordered camera pair, the raw histogram and its Parzen smoothing (step 5's).
"""

from streid import cli
from streid.artifacts import Run
from streid.cli import entry_point
from streid.plots import plot_st_distribution


@entry_point
def main(argv=None):
    parser = cli.parser(__doc__)
    cli.add_name_argument(parser)
    cli.add_score_arguments(parser, alpha=False)  # --smooth 50
    parser.add_argument(
        "--out", default=None, help="PNG path (default: model/<name>/st_distribution.png)"
    )
    args = parser.parse_args(argv)

    st, sigma, dist = cli.st_model_of(args)  # --smooth auto as steps 5-6 take it
    out = args.out or Run(args.name).st_picture
    smoothed = st.table[:-1].reshape(dist.histograms.shape)
    plot_st_distribution(dist.histograms, smoothed, dist.interval, sigma, out)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
