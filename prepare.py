"""Step 1: split a raw dataset into ImageFolder trees, and describe it in dataset.yaml.

    python3 prepare.py --Market --download_path /data/Market-1501-v15.09.15
    python3 prepare.py --Duke --download_path /data/DukeMTMC-reID
    python3 prepare.py --MSMT17 --download_path /data/MSMT17_V1
    python3 prepare.py --manifest cameras.csv --download_path /data/my_images

Writes, with one sub-folder per person id:

    <save_path>/query/       the query images
    <save_path>/gallery/     the gallery images
    <save_path>/train_all/   the training images
    <save_path>/train/ + val/   the same, split for validation during training
    <save_path>/dataset.yaml    cameras, bins, time units per bin, the default Parzen width,
                                the file-name pattern, sessions (read by steps 2-4)

Market-1501 and DukeMTMC-reID come from bounding_box_train/, bounding_box_test/ and query/
(the first image of each id, in name order, goes to val/); Market-1501 names are renamed to
global frames, ``PPPP_cC_fGGGGGGG_BB.jpg``. MSMT17 comes from its four lists (train_all =
list_train + list_val). A manifest is a CSV with the header path,person,camera,time,split
and optionally session (see the README). ``<save_path>`` defaults to dataset/market_rename,
dataset/DukeMTMC_prepare, dataset/MSMT17_prepare or dataset/<manifest name>. Files are hard
links to the raw images (copies where a link cannot be made). The trees are built in a hidden
temporary folder and replace those of ``<save_path>`` (its split folders and dataset.yaml,
nothing else) only once complete, so a stopped run leaves the old trees or none, and a run
with an edited input leaves exactly that input's files.
"""

from __future__ import annotations

from pathlib import Path

from streid import cli
from streid.cli import entry_point, smooth_value
from streid.datasets import DUKE, MARKET, MSMT17
from streid.errors import UserError
from streid.files import missing
from streid.manifest import manifest_dataset
from streid.preparation import plan_market_duke, plan_msmt17, write_trees


@entry_point
def main(argv=None):
    p = cli.parser(__doc__)
    # The original's flags: which dataset.
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--Market", action="store_true", help="Market-1501")
    which.add_argument("--Duke", action="store_true", help="DukeMTMC-reID")
    # Added: the datasets beyond the paper, and the original's hard-coded paths as flags.
    which.add_argument("--MSMT17", action="store_true", help="MSMT17 (the MSMT17_V1 folder)")
    which.add_argument("--manifest", type=str, help="a CSV of your own cameras' images")
    p.add_argument(
        "--download_path",
        required=True,
        type=str,
        help="the raw dataset folder (for a manifest: the folder its paths are relative to)",
    )
    p.add_argument("--save_path", default=None, type=str, help="output folder")
    manifest = p.add_argument_group("a manifest's spatial-temporal settings")
    manifest.add_argument(
        "--interval", type=float, help="time units per bin (default: from the training gaps)"
    )
    manifest.add_argument("--num_bins", type=int, help="bins (default: from the training gaps)")
    manifest.add_argument(
        "--smooth", type=smooth_value, help="default Parzen sigma in bins (default: auto)"
    )
    args = p.parse_args(argv)

    download = Path(args.download_path)
    if why := missing(download, folder=True):
        raise UserError(f"--download_path {download}/ {why}")
    settings = (args.interval, args.num_bins, args.smooth)
    if args.manifest is None and any(v is not None for v in settings):
        raise UserError("--interval, --num_bins and --smooth go with --manifest only")
    if any(v is not None and v <= 0 for v in settings[:2]):
        raise UserError("--interval and --num_bins must be positive")
    if args.manifest:
        interval = int(args.interval) if args.interval and args.interval.is_integer() else None
        spec, jobs = manifest_dataset(
            Path(args.manifest), download, interval or args.interval, args.num_bins, args.smooth
        )
        default = f"dataset/{Path(args.manifest).stem}"
    else:
        spec = MARKET if args.Market else DUKE if args.Duke else MSMT17
        jobs = plan_msmt17(download) if spec is MSMT17 else plan_market_duke(spec, download)
        default = spec.prepared_dir
    save_path = Path(args.save_path or default)
    counts = write_trees(spec, jobs, save_path)
    summary = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(f"{spec.title} prepared in {save_path}/: {summary} images")
    print(
        f"{save_path}/dataset.yaml: {spec.num_cameras} cameras, {spec.num_bins} bins of "
        f"{spec.interval:g} {spec.unit}, smooth {spec.smooth} (sigma, in bins)"
    )


if __name__ == "__main__":
    main()
