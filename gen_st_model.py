"""Step 4 (any dataset): the spatial-temporal model, camera-pair histograms of time gaps.

    python gen_st_model.py --name ft_ResNet50_pcb_msmt17 --data_dir dataset/MSMT17_prepare

Reads <data_dir>/dataset.yaml (written by prepare.py: cameras, bins, time units per bin,
the file-name pattern, sessions) and only the file names under <data_dir>/train_all/, and
writes model/<name>/pytorch_result2.mat (key `distribution`, cameras x cameras x bins).
With --unlabeled, learns from pseudo-identities of model/<name>/pytorch_result_train.mat
(step 3 --train) instead, and never reads an identity label.
"""

from pathlib import Path

from streid import cli
from streid.artifacts import DISTRIBUTION_FILE, TRAIN_FEATURES_FILE, Run
from streid.cli import entry_point
from streid.dataset_yaml import resolve_spec
from streid.datasets import DatasetSpec
from streid.distribution import labelled_walks, unlabeled_walks, write_distribution
from streid.label_free import Clustering


def step_main(builtin: DatasetSpec | None, description: str, argv=None) -> Path:
    """Step 4 for this script and its aliases gen_st_model_market.py / _duke.py.

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
    run = Run(args.name, family="" if builtin is None else f"_{builtin.key}")
    with run.lock(DISTRIBUTION_FILE):
        spec = resolve_spec(args.data_dir, builtin, "--data_dir")
        if args.unlabeled:
            clustering = Clustering(
                rounds=args.rounds, eps=args.eps, min_samples=args.min_samples, k1=args.k1,
                k2=args.k2,
            )  # fmt: skip
            walks = unlabeled_walks(run.existing(TRAIN_FEATURES_FILE), spec, clustering)
        else:
            walks = labelled_walks(args.data_dir, spec)
        return write_distribution(run.distribution, spec, walks)


@entry_point
def main(argv=None):
    return step_main(None, __doc__, argv)


if __name__ == "__main__":
    main()
