"""Step 1: a raw dataset becomes ImageFolder trees (one folder per person id) plus its
``dataset.yaml``.

Every dataset is turned into a plan, a list of (raw file, prepared split, relative target)
jobs, checked whole before anything is written; the trees are then made of hard links to the
raw images (copies where a link cannot be made), and running again leaves what is in place.

- Market-1501 / DukeMTMC-reID: ``bounding_box_train/``, ``bounding_box_test/``, ``query/``;
  the first image of each id (in name order) is the validation image.
- MSMT17 (``MSMT17_V1`` as shipped): the official lists; ``train_all`` = list_train +
  list_val, ``train`` and ``val`` as the lists say.
- A manifest (a CSV of path, person, camera, time, split[, session]): see
  :mod:`streid.manifest`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tqdm import tqdm

from .dataset_yaml import write_spec
from .datasets import MSMT17, DatasetSpec
from .errors import UserError
from .files import removed_on_failure

# Market/Duke raw folder -> the prepared split it feeds.
RAW_SPLITS = {"query": "query", "bounding_box_test": "gallery", "bounding_box_train": "train_all"}
# MSMT17 list -> (raw image folder, the prepared splits it feeds).
MSMT17_LISTS = {
    "list_train.txt": ("train", ("train_all", "train")),
    "list_val.txt": ("train", ("train_all", "val")),
    "list_query.txt": ("test", ("query",)),
    "list_gallery.txt": ("test", ("gallery",)),
}

Job = tuple[Path, str, str]  # (raw file, prepared split, "<id folder>/<prepared name>")


def raw_images(folder: Path, spec: DatasetSpec) -> list[str]:
    """The image names of a raw Market/Duke split folder, sorted, checked against the raw
    pattern. As the original, only names ending in 'jpg' count (Market-1501 ships Thumbs.db
    files).

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


def with_validation(jobs: list[Job]) -> list[Job]:
    """``jobs`` plus, for each ``train_all`` image, the same image in ``val`` if it is the
    first of its id (in the order given) and in ``train`` otherwise."""
    out, seen = [], set()
    for src, split, target in jobs:
        out.append((src, split, target))
        if split == "train_all":
            person = target.split("/")[0]
            # Deviation from the original: the first image of each id in sorted order is the
            # validation image (the original took the file system's order); the others are
            # for training.
            out.append((src, "train" if person in seen else "val", target))
            seen.add(person)
    return out


def plan_market_duke(spec: DatasetSpec, download_path: Path) -> list[Job]:
    """Every job of Market-1501 or DukeMTMC-reID; all raw folders are checked first."""
    jobs = []
    for raw, split in RAW_SPLITS.items():
        for name in raw_images(download_path / raw, spec):
            pid = name.split("_")[0]
            jobs.append((download_path / raw / name, split, f"{pid}/{spec.prepared_name(name)}"))
    return with_validation(jobs)


def plan_msmt17(download_path: Path) -> list[Job]:
    """Every job of MSMT17 from its four lists (lines ``PPPP/name.jpg label``).

    Raises:
        UserError: a list is missing, a line is malformed or names a missing file, or a
            name does not fit the MSMT17 pattern.
    """
    jobs = []
    for list_name, (folder, splits) in MSMT17_LISTS.items():
        path = download_path / list_name
        if not path.is_file():
            raise UserError(
                f"{path} not found: --download_path must be the MSMT17_V1 folder as shipped "
                f"(train/, test/, {', '.join(MSMT17_LISTS)})"
            )
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            where = f"{path} line {number}"
            if len(fields) != 2 or fields[0].count("/") != 1:
                raise UserError(f"{where}: expected 'PPPP/name.jpg label', found {line!r}")
            person, name = fields[0].split("/")
            MSMT17.prepared_name(name)  # checks the pattern
            if name[:4] != person:
                raise UserError(f"{where}: {name} is not in its person's folder {person}/")
            src = download_path / folder / person / name
            if not src.is_file():
                raise UserError(f"{where}: {src} not found")
            jobs += [(src, split, f"{person}/{name}") for split in splits]
    return jobs


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
    with removed_on_failure(tmp, dst):  # stopped or failed half-way: no temporary file left
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed: copy (keeps the mtime)
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)


def write_trees(spec: DatasetSpec, jobs: list[Job], save_path: Path) -> dict[str, int]:
    """Place every job under ``save_path``, then write its ``dataset.yaml``; returns the
    images per split."""
    counts: dict[str, int] = {}
    for src, split, target in tqdm(jobs, desc=f"prepare {spec.title}", dynamic_ncols=True):
        place(src, save_path / split / target)
        counts[split] = counts.get(split, 0) + 1
    write_spec(spec, save_path)
    return counts
