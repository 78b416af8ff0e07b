"""Step 1: a raw dataset becomes ImageFolder trees (one folder per person id) plus its
``dataset.yaml``.

Every dataset is turned into a plan, a list of (raw file, prepared split, relative target)
jobs, checked whole before anything is written; the trees are then made of hard links to the
raw images (copies where a link cannot be made) in a temporary folder, which replaces the
prepared folder's trees once it is complete (:func:`write_trees`).

- Market-1501 / DukeMTMC-reID: ``bounding_box_train/``, ``bounding_box_test/``, ``query/``;
  the first image of each id (in name order) is the validation image.
- MSMT17 (``MSMT17_V1`` as shipped): the official lists; ``train_all`` = list_train +
  list_val, ``train`` and ``val`` as the lists say.
- A manifest (a CSV of path, person, camera, time, split[, session]): see
  :mod:`streid.manifest`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from pathlib import Path

from tqdm import tqdm

from .dataset_yaml import DATASET_FILE, UNFINISHED_FILE, write_spec
from .datasets import MSMT17, DatasetSpec
from .errors import UserError, stops_deferred
from .files import atomic_output, describe, remove_stale_temporaries, temporary_affixes

# Market/Duke raw folder -> the prepared split it feeds.
RAW_SPLITS = {"query": "query", "bounding_box_test": "gallery", "bounding_box_train": "train_all"}
# MSMT17 list -> (raw image folder, the prepared splits it feeds).
MSMT17_LISTS = {
    "list_train.txt": ("train", ("train_all", "train")),
    "list_val.txt": ("train", ("train_all", "val")),
    "list_query.txt": ("test", ("query",)),
    "list_gallery.txt": ("test", ("gallery",)),
}

# The entries of a prepared folder that prepare.py makes, and replaces on a new run.
SPLITS = ("query", "gallery", "train_all", "train", "val")
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


def place(src: Path, dst: Path, old: Path | None = None) -> None:
    """Make ``dst`` a hard link to ``src``; where links cannot be made, a hard link to ``old``
    (the previous tree's copy of ``src``) if it is one, of the same size and modification
    time, else a copy. A file already at ``dst`` is replaced, never written into."""
    dst.unlink(missing_ok=True)  # a hard link to another raw image must not be written into
    try:
        os.link(src, dst)
        return
    except OSError:  # another file system, or links not allowed
        pass
    if old is not None:
        with contextlib.suppress(OSError):
            s, o = src.stat(), old.stat()
            if (s.st_size, s.st_mtime_ns) == (o.st_size, o.st_mtime_ns):
                os.link(old, dst)
                return
    shutil.copy2(src, dst)  # keeps the mtime


def write_trees(spec: DatasetSpec, jobs: list[Job], save_path: Path) -> dict[str, int]:
    """Build every job's tree and ``dataset.yaml`` in a new temporary folder, then put it at
    ``save_path`` (:func:`swap_in`); returns the images per split.

    The temporary folder is ``save_path``'s own (hidden) sub-folder where ``save_path``
    exists, so that an old tree can lend its copies and stays whole until the new one is
    complete, else ``save_path``'s sibling, renamed to it. Stopped by an error or a signal,
    it is removed; left by a killed process, the next run removes it.

    Raises:
        UserError: a raw image lies inside a tree that would be replaced, ``save_path`` is
            a file, or writing failed (a full disk, a read-only folder).
    """
    save_path = Path(save_path)
    check_outside(jobs, save_path)
    home = save_path if save_path.is_dir() else save_path.parent
    try:
        home.mkdir(parents=True, exist_ok=True)
        for folder in {save_path.parent, home}:
            remove_stale_temporaries(folder)
        prefix, suffix = temporary_affixes(save_path)
        new = home / f"{prefix}{secrets.token_hex(4)}{suffix}"
        new.mkdir()  # not mkdtemp: the tree keeps the usual permissions
    except OSError as err:
        raise UserError(f"cannot write {home}/: {describe(err)}") from None
    # Deviation from the original: it copied into save_path directly, so a stopped run left
    # a tree that looked finished and a run with an edited input added to the old files.
    aside: list[Path] = []
    try:
        counts = build(spec, jobs, new, save_path)
        swap_in(new, save_path, aside)
        for path in (new, *aside):
            remove(path)
    except BaseException as err:
        for path in (new, *aside):
            remove(path)
        if isinstance(err, OSError):
            raise UserError(f"could not write {save_path}/: {describe(err)}") from None
        raise
    return counts


def check_outside(jobs: list[Job], save_path: Path) -> None:
    """UserError if a raw image lies inside one of the trees of ``save_path`` that a new run
    replaces (as Market-1501's own query/ with --save_path the raw folder)."""
    trees = [(save_path / split).resolve() for split in SPLITS]
    for folder in {src.parent for src, _, _ in jobs}:
        real = folder.resolve()
        for tree in trees:
            if real == tree or tree in real.parents:
                raise UserError(
                    f"the raw images in {folder}/ are inside --save_path's {tree.name}/, "
                    f"which prepare.py replaces: give a --save_path outside the raw data"
                )


def mark_unfinished(folder: Path, stage: str) -> None:
    """Write ``folder``'s marker of an unfinished tree, naming what is being done."""
    with atomic_output(folder / UNFINISHED_FILE) as tmp:
        tmp.write_text(f"{stage}\n")


def build(spec: DatasetSpec, jobs: list[Job], new: Path, save_path: Path) -> dict[str, int]:
    """Place every job under ``new`` (reusing ``save_path``'s copies), then write its
    ``dataset.yaml`` and remove its marker of an unfinished tree."""
    counts: dict[str, int] = {}
    made: set[Path] = set()
    for src, split, target in tqdm(jobs, desc=f"prepare {spec.title}", dynamic_ncols=True):
        if split not in counts:
            mark_unfinished(new, f"{split}/")
            counts[split] = 0
        dst = new / split / target
        if dst.parent not in made:
            dst.parent.mkdir(parents=True, exist_ok=True)
            made.add(dst.parent)
        place(src, dst, save_path / split / target)
        counts[split] += 1
    write_spec(spec, new)
    (new / UNFINISHED_FILE).unlink()
    return counts


def swap_in(new: Path, save_path: Path, aside: list[Path]) -> None:
    """Put the complete tree ``new`` at ``save_path``, one run at a time, never stopped
    half-way by Ctrl-C, SIGTERM or SIGHUP (they take effect once it is done).

    Renamed to ``save_path`` where that is free; otherwise ``save_path``'s split folders
    and its ``dataset.yaml`` (last) are replaced by the new ones, the old ones renamed into
    ``aside`` for the caller to remove, and nothing else in ``save_path`` is touched. A
    marker covers the replacing: a process killed meanwhile leaves a folder that steps 2-4
    refuse (:func:`streid.dataset_yaml.resolve_spec`).
    """
    with locked(save_path.parent), stops_deferred():
        if new.parent == save_path.parent:
            try:
                os.rename(new, save_path)  # also onto an empty folder
                return
            except OSError:
                if not (save_path.is_dir() and any(os.scandir(save_path))):
                    raise  # not another run's tree, made meanwhile
        mark_unfinished(save_path, "replacing the old tree")
        for name in (*SPLITS, DATASET_FILE):
            old, fresh = save_path / name, new / name
            if old.exists() or old.is_symlink():
                prefix, suffix = temporary_affixes(old)
                aside.append(save_path / f"{prefix}{secrets.token_hex(4)}{suffix}")
                os.rename(old, aside[-1])
            if fresh.exists():
                os.rename(fresh, old)
        (save_path / UNFINISHED_FILE).unlink()


def remove(path: Path) -> None:
    """Remove the file or folder ``path``, if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def locked(folder: Path):
    """An exclusive ``flock`` on the folder ``folder``, waiting for another holder."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without locks: go on unlocked
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
