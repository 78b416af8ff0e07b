"""Picture of the spatial-temporal model: time-gap distributions of every camera pair.

    python plot_st_distribution.py --name ft_ResNet50_pcb_market_e

Reads model/<name>/pytorch_result2.mat (step 4) and writes model/<name>/st_distribution.png:
one panel per ordered camera pair, the raw histogram and its Parzen smoothing (step 5's).
With --data_dir (the prepared dataset), its dataset.yaml's time unit and camera labels.
"""

from pathlib import Path

from streid import cli
from streid.artifacts import Run
from streid.cli import entry_point
from streid.dataset_yaml import read_spec
from streid.errors import UserError
from streid.plots import plot_st_distribution


@entry_point
def main(argv=None):
    parser = cli.parser(__doc__)
    cli.add_name_argument(parser)
    cli.add_score_arguments(parser, alpha=False)  # --smooth 50
    parser.add_argument(
        "--out", default=None, help="PNG path (default: model/<name>/st_distribution.png)"
    )
    parser.add_argument(
        "--data_dir",
        default=None,
        help="prepared dataset (step 1): its dataset.yaml's time unit and camera labels "
        "(default: frames, camera ids)",
    )
    args = parser.parse_args(argv)

    st, sigma, dist = cli.st_model_of(args)  # --smooth auto as steps 5-6 take it
    out = args.out or Run(args.name).st_picture
    smoothed = st.table[:-1].reshape(dist.histograms.shape)
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UserError(f"--data_dir {args.data_dir}/ is not a folder")
    spec = read_spec(args.data_dir) if args.data_dir else None  # None: no dataset.yaml
    unit = spec.unit if spec else "frames"
    cameras = {v: k for k, v in spec.extra.get("cameras", {}).items()} if spec else None
    plot_st_distribution(dist.histograms, smoothed, dist.interval, sigma, out, unit, cameras)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
