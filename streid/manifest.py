"""A camera network of one's own: a CSV manifest becomes a prepared dataset.

The CSV has the header ``path,person,camera,time,split`` and optionally ``session``:

- ``path``: the image, relative to ``--download_path``;
- ``person``, ``camera``, ``session``: any labels. Cameras are numbered 1..C and sessions
  0..S-1 in the sorted order of their labels (numerically when every label is a number);
  persons 1..P the same way, except the label ``-1``, which marks junk (ignored by the
  evaluation, as Market-1501's). The numbering is saved in ``dataset.yaml``. A ``train``
  row may leave ``person`` empty, an identity nobody labelled: it goes to ``train_all/-1/``,
  and the training images can then only be used without labels (step 3 ``--train``, step 4
  ``--unlabeled``); step 2 needs every training image labelled.
- ``time``: integer frames, or seconds with decimals; only times of one session are compared.
- ``split``: ``train``, ``query`` or ``gallery``.

Unless ``--interval`` and ``--num_bins`` are given, they are derived from the training gaps
(the gaps step 4 counts: between the mean times of a walk in two cameras): ``interval`` is
the largest of 1, 2, 5 x 10^k at most the longest gap / 2000 (at least 1 for integer times),
and ``num_bins`` covers twice the longest gap. Where a training image is unlabelled, the
gaps are not known yet, and the longest one possible stands in: the time span of the
training images within a session. For Market-1501 this rule gives its 100 frames
per bin, and 5,077 bins where the original has 5,000. Unless ``--smooth`` is given, the
default Parzen width is ``auto``: step 4 chooses it from the training gaps.

The CSV is read as UTF-8 (a byte order mark is accepted); a spreadsheet or another encoding
is refused with one line. A time must be a finite number within +-2^53. Legal but odd, and
warned about (:mod:`streid.manifest_checks`): whole numbers and decimals mixed in the time
column, an image listed twice (with two persons, cameras, times or sessions: refused), a
training image also in query/gallery, and one time so far from the others that the bins
derived from the longest gap hold nearly every gap in the first.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset_yaml import read_user_text
from .datasets import IMG_EXTENSIONS, DatasetSpec
from .errors import UserError, check_memory, note, warning
from .files import missing
from .manifest_checks import (
    GAP_BINS,
    coarse_bins,
    mixed_times,
    parse_time,
    repeated_images,
    whole_number,
)
from .preparation import Job, with_validation
from .st_model import mean_frames, walks

COLUMNS = ("path", "person", "camera", "time", "split")
SPLITS = ("train", "query", "gallery")
PREPARED_SPLIT = {"train": "train_all", "query": "query", "gallery": "gallery"}


@dataclass
class Row:
    """One image of the manifest."""

    line: int
    path: str
    person: str
    camera: str
    time: str
    split: str
    session: str


def read_manifest(csv_path: Path, images: Path) -> tuple[list[Row], bool]:
    """The rows of ``csv_path``, checked; and whether it has a session column.

    Raises:
        UserError: a file that is not UTF-8 text (a spreadsheet) or not CSV, a missing column,
            an unknown split, a time that is not a number or out of range, an empty label, a
            file that is not there or not an image, no row at all.
    """
    if why := missing(csv_path):
        raise UserError(f"--manifest {csv_path} {why}")
    # utf-8-sig: a byte order mark (Excel's "CSV UTF-8") is not part of the first column.
    text = read_user_text(csv_path, "save it as UTF-8 CSV")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [c.strip() for c in reader.fieldnames or []]
        for column in COLUMNS:
            if column not in header:
                raise UserError(
                    f"{csv_path} has no column {column!r}: the header must be "
                    f"{','.join(COLUMNS)} (and optionally session), found {','.join(header)}"
                )
        reader.fieldnames = header
        sessions = "session" in header
        rows = [_row(csv_path, n, r, images, sessions) for n, r in enumerate(reader, 2)]
    except csv.Error as err:
        line = reader.line_num + 1  # the line being read when the error came
        raise UserError(f"{csv_path} line {line}: not CSV ({err})") from None
    if not rows:
        raise UserError(f"{csv_path} lists no images")
    return rows, sessions


def _row(csv_path: Path, line: int, record: dict, images: Path, sessions: bool) -> Row:
    where = f"{csv_path} line {line}"
    values = {k: (record.get(k) or "").strip() for k in (*COLUMNS, "session")}
    for column in COLUMNS + (("session",) if sessions else ()):
        if not values[column] and not (column == "person" and values["split"] == "train"):
            raise UserError(f"{where}: the {column} is empty")
    if values["split"] not in SPLITS:
        raise UserError(f"{where}: split {values['split']!r} is not one of {', '.join(SPLITS)}")
    parse_time(where, values["time"])
    if not values["path"].lower().endswith(IMG_EXTENSIONS):
        raise UserError(f"{where}: {values['path']} is not an image ({', '.join(IMG_EXTENSIONS)})")
    if not (images / values["path"]).is_file():
        raise UserError(f"{where}: {images / values['path']} not found")
    return Row(line, values["path"], values["person"], values["camera"], values["time"],
               values["split"], values["session"])  # fmt: skip


def numbering(labels, start: int) -> dict[str, int]:
    """Labels -> consecutive ids from ``start``, in numeric order if all are numbers."""
    unique = set(labels)
    try:
        ordered = sorted(unique, key=float)
    except ValueError:
        ordered = sorted(unique)
    return {label: start + i for i, label in enumerate(ordered)}


def nice_interval(longest_gap: float, integer: bool) -> float:
    """The largest of 1, 2, 5 x 10^k at most ``longest_gap / 2000`` (at least 1 when the
    times are integers)."""
    target = longest_gap / GAP_BINS
    if target <= 0:
        return 1
    power = 10.0 ** math.floor(math.log10(target))
    best = max(m * power for m in (1, 2, 5) if m * power <= target * (1 + 1e-12))
    if integer:
        return max(1, int(round(best)))
    return float(f"{best:.12g}")


def longest_training_gap(rows: list[Row], ids, cams, sessions) -> float:
    """The longest gap step 4 will count: between the mean times of one walk (person and
    session) in two cameras, over the training rows; where a training row is unlabelled,
    the longest one there can be (:func:`_longest_span`).

    Raises:
        UserError: no training person was seen by two cameras within one session.
    """
    train = [i for i, r in enumerate(rows) if r.split == "train"]
    if any(not rows[i].person for i in train):  # unlabelled: the longest gap there can be
        return _longest_span(rows, train, sessions)
    persons = np.unique([ids[i] for i in train], return_inverse=True)[1]
    times = np.array([float(rows[i].time) for i in train])
    walk = walks(persons, None if sessions is None else np.array([sessions[i] for i in train]))
    num_cameras = max(cams)
    mean, counts = mean_frames(walk, np.array([cams[i] for i in train]), times, num_cameras)
    j, k = np.triu_indices(num_cameras, k=1)
    seen = (counts[:, j] > 0) & (counts[:, k] > 0)
    if not seen.any():
        raise UserError(
            "no training person was seen by two cameras (within one session): the "
            "spatial-temporal model would have no time gap to learn from"
        )
    return float(np.abs(mean[:, j] - mean[:, k])[seen].max())


def _longest_span(rows: list[Row], train: list[int], sessions) -> float:
    """The longest time gap two training images of one session can have: an upper bound of
    step 4's gaps when the identities are unknown.

    Raises:
        UserError: no session holds training images of two cameras.
    """
    times = np.array([float(rows[i].time) for i in train])
    cams = np.array([rows[i].camera for i in train])
    keys = (
        np.zeros(len(train), dtype=np.int64)
        if sessions is None
        else np.array([sessions[i] for i in train])
    )
    spans = [np.ptp(times[keys == k]) for k in np.unique(keys) if len(set(cams[keys == k])) > 1]
    if not spans:
        raise UserError(
            "no session holds training images of two cameras: the spatial-temporal model "
            "would have no time gap to learn from"
        )
    return float(max(spans))


def _pattern(sessions: bool) -> re.Pattern:
    session = r"_s(?P<session>\d+)" if sessions else ""
    return re.compile(
        rf"^(?P<person>-1|\d+)_c(?P<camera>\d+){session}_t(?P<frame>[-+.0-9eE]+)_(?P<row>\d+)"
        r"\.[^.]+$"
    )


def _check_cameras(rows: list[Row], csv_path: Path) -> None:
    """UserError for a query camera without training images; a note for such a gallery one."""
    trained = {r.camera for r in rows if r.split == "train"}
    for split in ("query", "gallery"):
        unseen = sorted({r.camera for r in rows if r.split == split} - trained)
        if not unseen:
            continue
        row = next(r for r in rows if r.split == split and r.camera == unseen[0])
        message = (
            f"{csv_path} line {row.line}: camera {unseen[0]!r} of the {split} split never "
            f"appears in the train split, so no time gap of it can be learnt"
        )
        if split == "query":
            raise UserError(message)
        note(f"{message} (its gallery images get p = 0)")


def manifest_dataset(
    csv_path: Path, images: Path, interval=None, num_bins=None, smooth=None
) -> tuple[DatasetSpec, list[Job]]:
    """The spec and the prepare jobs of a manifest (see the module docstring).

    Args:
        interval, num_bins, smooth: the dataset's settings; derived where None (smooth:
            "auto", chosen by step 4 from the training gaps, since the times are the
            network's own).
    """
    rows, has_sessions = read_manifest(csv_path, images)
    if any(r.person == "-1" for r in rows if r.split == "train"):
        row = next(r for r in rows if r.split == "train" and r.person == "-1")
        raise UserError(
            f"{csv_path} line {row.line}: a training image cannot be junk (-1); leave the "
            f"person empty where the identity is unknown"
        )
    _check_cameras(rows, csv_path)
    warnings = repeated_images(rows, csv_path) + mixed_times(rows, csv_path)
    persons = numbering([r.person for r in rows if r.person not in ("-1", "")], 1)
    cameras = numbering([r.camera for r in rows], 1)
    session_ids = numbering([r.session for r in rows], 0) if has_sessions else {}
    ids = [persons.get(r.person, -1) for r in rows]  # -1: junk, or unknown (train)
    cams = [cameras[r.camera] for r in rows]
    sessions = [session_ids[r.session] for r in rows] if has_sessions else None
    integer = all(whole_number(r.time) for r in rows)
    unit = "frames" if integer else "seconds"
    interval, num_bins, odd = _bins(rows, (ids, cams, sessions), unit, interval, num_bins, csv_path)
    warnings += odd
    size = (
        f"{csv_path}: {len(cameras)} x {len(cameras)} camera-pair histograms of {num_bins:,} bins"
    )
    check_memory((len(cameras), len(cameras), num_bins), 3 * 8, size,
                 "give a larger --interval or fewer --num_bins")  # fmt: skip
    spec = DatasetSpec(
        key="manifest",
        title=csv_path.stem,
        num_cameras=len(cameras),
        num_bins=int(num_bins),
        interval=interval,
        smooth=smooth or "auto",
        unit=unit,
        pattern=_pattern(has_sessions),
        pattern_format="P_cC_sS_tT_R.ext" if has_sessions else "P_cC_tT_R.ext",
        prepare_flag="--manifest",
        extra={
            "cameras": cameras,
            "session_labels": list(session_ids),
            "persons": persons,
        },
    )
    for line in warnings:  # once every check has passed: a refusal is one line alone
        warning(line)
    return spec, _jobs(rows, ids, cams, session_ids, integer, images)


def _bins(rows: list[Row], numbered, unit: str, interval, num_bins, csv_path: Path):
    """``(interval, num_bins, warnings)``: the settings given, or derived from the training
    gaps (see the module docstring); ``numbered``: the rows' ``(ids, cams, sessions)``.

    Raises:
        UserError: an interval given that is not a positive finite number.
    """
    if interval is not None and not (interval > 0 and math.isfinite(interval)):
        raise UserError(f"--interval {interval} is not a positive finite number")
    if interval is None or num_bins is None:
        gap = longest_training_gap(rows, *numbered)
        warnings = []
        if interval is None:  # the bins are ours: say where the longest gap makes them wide
            interval = nice_interval(gap, unit == "frames")
            odd = coarse_bins(rows, numbered[2], interval, gap, unit, csv_path)
            warnings += [odd] if odd else []
        num_bins = num_bins or max(1, math.ceil(2 * gap / interval))
        return interval, num_bins, warnings
    return interval, num_bins, []


def _jobs(rows: list[Row], ids, cams, session_ids: dict, integer: bool, images: Path):
    """The prepare jobs of the rows: each image under its prepared name."""
    jobs = []
    for row, pid, cam in zip(rows, ids, cams, strict=True):
        folder = "-1" if pid == -1 else f"{pid:04d}"
        time = str(int(row.time)) if integer else repr(float(row.time))
        session = f"_s{session_ids[row.session]}" if session_ids else ""
        ext = os.path.splitext(row.path)[1]
        name = f"{folder}_c{cam}{session}_t{time}_{row.line:06d}{ext}"
        jobs.append((images / row.path, PREPARED_SPLIT[row.split], f"{folder}/{name}"))
    return with_validation(sorted(jobs, key=lambda job: (job[1] != "train_all", job[2])))
