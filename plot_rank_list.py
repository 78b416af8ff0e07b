"""Picture of rank lists: a few queries and their top 10, appearance only and joint.

    python plot_rank_list.py --name ft_ResNet50_pcb_market_e --test_dir dataset/market_rename

Reads model/<name>/pytorch_result.mat (step 3), pytorch_result2.mat (step 4) and the query
and gallery images under --test_dir (in step 3's order), and writes
model/<name>/rank_list.png: each query, then its first 10 gallery images ranked by appearance
alone and by the joint score, green when the same person, red when not (junk left out, as in
the evaluation). Queries where the spatial-temporal stream fixes the first match come first.
"""

import numpy as np

from streid import cli
from streid.artifacts import FEATURES_FILE, Run
from streid.cli import entry_point
from streid.dataset_yaml import resolve_spec
from streid.datasets import SPECS, image_folder
from streid.errors import UserError
from streid.evaluation import top_matches
from streid.interchange import load_features
from streid.plots import plot_rank_lists

TITLES = {"visual": "appearance only", "joint": "joint: appearance + spatial-temporal"}


def _image_paths(test_dir: str, builtin, features) -> dict[str, list[str]]:
    """The query and gallery images of ``--test_dir``, checked to be pytorch_result.mat's."""
    spec = resolve_spec(test_dir, builtin, "--test_dir")
    paths = {}
    for split, data in (("query", features.query), ("gallery", features.gallery)):
        paths[split], _, _ = image_folder(f"{test_dir}/{split}")
        names = spec.parse_names(paths[split])
        if not (
            np.array_equal(names.labels, data.labels)
            and np.array_equal(names.cams, data.cams)
            and np.array_equal(names.frames, data.frames)
        ):
            raise UserError(
                f"the images in {test_dir}/{split}/ do not match {split}_label/cam/frames "
                f"of pytorch_result.mat (made from another folder, or not in step 3's order)"
            )
    return paths


@entry_point
def main(argv=None):
    parser = cli.parser(__doc__)
    cli.add_name_argument(parser)
    parser.add_argument("--test_dir", required=True, help="prepared dataset with query/, gallery/")
    parser.add_argument(
        "--dataset",
        default="market",
        choices=sorted(SPECS),
        help="name format, for a folder without dataset.yaml",
    )
    parser.add_argument("--queries", default=4, type=cli.positive_int, help="queries shown")
    cli.add_score_arguments(parser)  # --alpha 5, --smooth 50
    parser.add_argument(
        "--out", default=None, help="image path (default: model/<name>/rank_list.png)"
    )
    args = parser.parse_args(argv)

    run = Run(args.name)
    features = load_features(run.existing(FEATURES_FILE))
    st, _, _ = cli.st_model_of(args, run)
    paths = _image_paths(args.test_dir, SPECS[args.dataset], features)
    rankings = {
        s: top_matches(features.query, features.gallery, st, cli.fusion_of(args), s, 10)
        for s in TITLES
    }
    first_good = {
        s: np.array([len(good) > 0 and good[0] for _, good in rankings[s]]) for s in TITLES
    }
    has_match = np.array([good.any() for _, good in rankings["joint"]])
    # Queries the spatial-temporal stream fixes first, then the others, in order.
    fixed = first_good["joint"] & ~first_good["visual"]
    order = np.concatenate([np.flatnonzero(fixed), np.flatnonzero(~fixed & has_match)])
    rows = []
    for i in order[: args.queries]:
        lists = {}
        for stream, title in TITLES.items():
            indices, good = rankings[stream][i]
            lists[title] = [
                (paths["gallery"][j], bool(g)) for j, g in zip(indices, good, strict=True)
            ]
        rows.append((paths["query"][i], lists))
    if not rows:
        raise UserError("no query has a true match in the gallery: nothing to show")
    out = args.out or run.rank_list
    plot_rank_lists(rows, out)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
