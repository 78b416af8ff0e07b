"""The paper's Figure 4, panels (a)-(d), and a fifth, (e), on a run's features.

    python figure4.py --name ft_ResNet50_pcb_duke_e

Reads model/<name>/pytorch_result.mat (step 3) and pytorch_result2.mat (step 4) and writes
model/<name>/figure4.png (the five panels, with the paper's published DukeMTMC-reID points)
and model/<name>/figure4.csv (one row per ranking: panel,curve,parameter,value,rank1,rank5,
rank10,mAP), and prints a short table:

    (a) CMC of the spatial-temporal stream alone, the visual stream alone, the joint metric
    (b) the visual stream, the Eqn. 5 baseline (the product), the joint metric
    (c) rank-1 as lambda0 or lambda1 goes from 0 to 3, (d) as gamma0 or gamma1 goes 0 to 10
    (e) rank-1 and mAP as the Parzen sigma goes from 2 to 100 bins
"""

import csv
import io

from streid import cli
from streid.artifacts import DISTRIBUTION_FILE, FEATURES_FILE, Run, atomic_output
from streid.cli import entry_point
from streid.evaluation import TIES, warn_oddities
from streid.figure4 import PAPER, figure4_points
from streid.interchange import load_distribution, load_features, resolve_smooth
from streid.plots import plot_figure4
from streid.st_model import SpatialTemporalModel

COLUMNS = ("panel", "curve", "parameter", "value", "rank1", "rank5", "rank10", "mAP")


def summary(points) -> list[str]:
    """The table printed: the streams, then each sweep's best and the paper's setting."""
    lines = [f"{'panel':<6}{'curve':<10}{'setting':<16}{'rank-1':>8}{'mAP':>8}  paper rank-1"]
    for p in points:
        if p.panel in "ab":
            paper = PAPER.get((p.panel, p.curve), "")
            r1, mAP = 100 * p.metrics.cmc[0], 100 * p.metrics.mAP
            lines.append(f"({p.panel})   {p.curve:<10}{'':<16}{r1:>8.1f}{mAP:>8.1f}  {paper}")
    for panel, curves in (("c", ("lambda0", "lambda1")), ("d", ("gamma0", "gamma1")),
                          ("e", ("sigma",))):  # fmt: skip
        for curve in curves:
            ps = [p for p in points if p.panel == panel and p.curve == curve]
            best = max(ps, key=lambda p: (p.metrics.cmc[0], p.metrics.mAP))
            setting = f"best {best.value:g}"
            lines.append(f"({panel})   {curve:<10}{setting:<16}{100 * best.metrics.cmc[0]:>8.1f}"
                         f"{100 * best.metrics.mAP:>8.1f}")  # fmt: skip
    return lines


@entry_point
def main(argv=None):
    parser = cli.parser(__doc__)
    cli.add_name_argument(parser)
    cli.add_score_arguments(parser)  # --alpha 5, --gamma0/1, --lambda0 1 --lambda1 2, --smooth
    parser.add_argument("--ties", default="argsort", choices=TIES, help="as evaluate_st.py's")
    args = parser.parse_args(argv)

    run = Run(args.name)
    features = load_features(run.existing(FEATURES_FILE))
    dist_path = run.existing(DISTRIBUTION_FILE)
    dist = load_distribution(dist_path)
    sigma = resolve_smooth(dist, args.smooth, dist_path)
    fusion = cli.fusion_of(args)
    points = figure4_points(features, dist.histograms, dist.interval, sigma, fusion, args.ties)

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(p.row() for p in points)
    with atomic_output(run.figure4_csv) as tmp:
        tmp.write_text(text.getvalue())
    title = (
        f"Figure 4 of the paper on model/{args.name}/: {len(features.query):,} queries, "
        f"{len(features.gallery):,} gallery images; sigma {sigma} bins, {fusion}; ties: "
        f"{args.ties}.\nCrosses and dotted lines: the paper's DukeMTMC-reID figures."
    )
    plot_figure4(points, run.figure4_png, title, PAPER)
    print("\n".join(summary(points)))
    print(f"wrote {run.figure4_png} and {run.figure4_csv}")
    warn_oddities(features.query, features.gallery, SpatialTemporalModel(dist.histograms, 1))
    return points


if __name__ == "__main__":
    main()
