"""Step 1: split a raw Market-1501 or DukeMTMC-reID folder into ImageFolder trees.

    python3 prepare.py --Market --download_path /data/Market-1501-v15.09.15
    python3 prepare.py --Duke --download_path /data/DukeMTMC-reID

Reads ``bounding_box_train/``, ``bounding_box_test/`` and ``query/`` of the raw folder and
writes, with one sub-folder per person id:

    <save_path>/query/       from query/
    <save_path>/gallery/     from bounding_box_test/
    <save_path>/train_all/   from bounding_box_train/
    <save_path>/train/ + val/   the same images, the first of each id (in name order) in val/

``<save_path>`` defaults to ``dataset/market_rename`` (Market-1501, whose names are renamed
to global frames, ``PPPP_cC_fGGGGGGG_BB.jpg``) or ``dataset/DukeMTMC_prepare`` (names kept).
Files are hard links to the raw images (copies where a link cannot be made), and running the
script again leaves what is already in place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tqdm import tqdm

from streid import cli
from streid.cli import entry_point
from streid.datasets import DUKE, MARKET, DatasetSpec
from streid.errors import UserError

# Raw folder -> the prepared split(s) it feeds.
RAW_SPLITS = {"query": "query", "bounding_box_test": "gallery", "bounding_box_train": "train_all"}


def raw_images(folder: Path, spec: DatasetSpec) -> list[str]:
    """The image names of a raw split folder, sorted, checked against the raw pattern.

    As the original, only names ending in 'jpg' count (Market-1501 ships Thumbs.db files).

    Raises:
        UserError: the folder is missing or empty, or a name does not fit the pattern.
    """
    if not folder.is_dir():
        raise UserError(f"{folder}/ not found: --download_path must hold {', '.join(RAW_SPLITS)}")
    names = sorted(e.name for e in os.scandir(folder) if e.is_file() and e.name.endswith("jpg"))
    if not names:
        raise UserError(f"{folder}/ holds no .jpg images")
    for name in names:
        spec.check_raw_name(os.path.join(folder, name))
    return names


def place(src: Path, dst: Path) -> None:
    """Make ``dst`` a hard link to ``src`` (a copy where links cannot be made).

    An existing ``dst`` that already is ``src``, or a copy of it of the same size and
    modification time, is left alone; anything else there is replaced.
    """
    if dst.exists():
        if os.path.samefile(src, dst):
            return
        s, d = src.stat(), dst.stat()
        if (s.st_size, s.st_mtime_ns) == (d.st_size, d.st_mtime_ns):
            return
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Link or copy under a temporary name, then rename: a rerun after an interruption never
    # finds a half-copied file under the final name.
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not allowed: copy (keeps the mtime)
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def plan(spec: DatasetSpec, download_path: Path) -> list[tuple[Path, str, str]]:
    """Every (raw file, prepared split, prepared relative path) of the dataset.

    Raises:
        UserError: see :func:`raw_images`; all raw folders are checked before anything is
            written.
    """
    jobs = []
    for raw, split in RAW_SPLITS.items():
        seen_ids = set()
        for name in raw_images(download_path / raw, spec):
            pid = name.split("_")[0]
            target = f"{pid}/{spec.prepared_name(name)}"
            jobs.append((download_path / raw / name, split, target))
            if split == "train_all":
                # Deviation from the original: the first image of each id in sorted order is
                # the validation image (the original took the file system's order); the
                # others are for training.
                jobs.append(
                    (download_path / raw / name, "train" if pid in seen_ids else "val", target)
                )
                seen_ids.add(pid)
    return jobs


def prepare(spec: DatasetSpec, download_path: Path, save_path: Path) -> dict[str, int]:
    """Write the ImageFolder trees of ``spec`` from the raw folder; returns images per split."""
    if not download_path.is_dir():
        raise UserError(f"--download_path {download_path}/ not found")
    jobs = plan(spec, download_path)
    counts: dict[str, int] = {}
    for src, split, target in tqdm(jobs, desc=f"prepare {spec.title}", dynamic_ncols=True):
        place(src, save_path / split / target)
        counts[split] = counts.get(split, 0) + 1
    return counts


@entry_point
def main(argv=None):
    p = cli.parser(__doc__)
    # The original's flags: which dataset.
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--Market", action="store_true", help="Market-1501")
    which.add_argument("--Duke", action="store_true", help="DukeMTMC-reID")
    # Added: the original hard-coded both paths.
    p.add_argument(
        "--download_path",
        required=True,
        type=str,
        help="the raw dataset folder (holding bounding_box_train/, bounding_box_test/, query/)",
    )
    p.add_argument(
        "--save_path",
        default=None,
        type=str,
        help=f"output folder (default: {MARKET.prepared_dir} or {DUKE.prepared_dir})",
    )
    args = p.parse_args(argv)

    spec = MARKET if args.Market else DUKE
    save_path = Path(args.save_path or spec.prepared_dir)
    counts = prepare(spec, Path(args.download_path), save_path)
    summary = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(f"{spec.title} prepared in {save_path}/: {summary} images")


if __name__ == "__main__":
    main()
