r"""Step 3 (any dataset): extract the appearance features of the query and gallery images.

    python3 test_st.py --PCB --gpu_ids 0 --name ft_ResNet50_pcb_msmt17 \
        --test_dir dataset/MSMT17_prepare

The dataset is described by <test_dir>/dataset.yaml (written by prepare.py). Writes
model/<name>/pytorch_result.mat (query_f, query_label, query_cam, query_frames, and
query_session for a dataset with sessions; the same for gallery).
With --train, also writes model/<name>/pytorch_result_train.mat (train_f, train_label,
train_cam, train_frames) from <test_dir>/train_all/, for step 4 --unlabeled.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from streid import cli
from streid.artifacts import LAST_EPOCH
from streid.datasets import DatasetSpec
from streid.extraction import ExtractOptions, extract


def parser(builtin: DatasetSpec | None, description: str) -> argparse.ArgumentParser:
    """The flags of test_st.py, test_st_market.py and test_st_duke.py (``builtin``: the
    dataset of the last two, whose folder is the default ``--test_dir``)."""
    p = cli.parser(description)
    # The original's flags and defaults.
    cli.add_name_argument(p)
    p.add_argument("--which_epoch", default=LAST_EPOCH, type=str, help="net_<which_epoch>.pth")
    cli.add_data_dir_argument(p, builtin, "holding query/ and gallery/", flag="--test_dir")
    cli.add_architecture_arguments(p, when=" (if no opts.json)")
    cli.add_device_arguments(p)  # --gpu_ids 0, --batchsize 32, --num_workers 4 (or #CPUs)
    # Added: the training images' features, for the spatial-temporal model without labels.
    p.add_argument(
        "--train",
        action="store_true",
        help="also extract train_all/ into model/<name>/pytorch_result_train.mat, for step 4 "
        "--unlabeled (gen_st_model*.py)",
    )
    return p


def options(argv, builtin: DatasetSpec | None, description: str) -> ExtractOptions:
    """The command line ``argv`` as options."""
    args = vars(parser(builtin, description).parse_args(argv))
    return ExtractOptions(**{f.name: args[f.name] for f in fields(ExtractOptions)})


def run(argv=None, builtin: DatasetSpec | None = None, description: str = __doc__) -> None:
    """Step 3 on the command line ``argv``: test_st.py (``builtin`` None), test_st_market.py,
    test_st_duke.py (their dataset and docstring)."""
    extract(options(argv, builtin, description), builtin)


@cli.entry_point
def main(argv=None):
    run(argv)


if __name__ == "__main__":
    main()
