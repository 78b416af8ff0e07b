"""What a manifest's rows are checked for beyond one column's own value: the range of a time,
a time column that mixes whole numbers and decimals, an image listed twice, a training image
that is also tested, and a time so far from the others that the derived bins say nothing.

The checks that find something odd but legal return warning lines; :mod:`streid.manifest`
prints them once every check has passed, so that a refused manifest gets its one error line
alone.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import UserError

# Beyond 2^53 float64 (which step 4 computes the gaps in) no longer counts single units, and
# at 2^63 the int64 frames of the prepared names overflow: such a time is a wrong time.
MAX_TIME = 2**53
SIGHTING = ("person", "camera", "time", "session")  # what one image has exactly one of
GAP_BINS = 2000  # about this many bins span the longest training gap


def parse_time(where: str, text: str) -> float:
    """The time of one row, checked: a finite number within +-:data:`MAX_TIME`.

    Raises:
        UserError: naming ``where`` (the CSV line) and the value.
    """
    try:
        time = float(text)
    except ValueError:
        raise UserError(f"{where}: time {text!r} is not a number") from None
    if not math.isfinite(time):
        raise UserError(f"{where}: time {text!r} is not a finite number")
    if abs(time) > MAX_TIME:
        raise UserError(
            f"{where}: time {text!r} is out of range: a time must lie within +-2^53 "
            f"(about 9.0e15), beyond which float64 cannot count single frames or seconds"
        )
    return time


def whole_number(text: str) -> bool:
    """Whether a time is written as a whole number (frames) rather than with decimals."""
    return text.lstrip("+-").isdigit()


def mixed_times(rows, csv_path: Path) -> list[str]:
    """A warning where whole numbers and decimals mix in the time column: one decimal time
    makes every time seconds, the frames too."""
    whole = [whole_number(r.time) for r in rows]
    if all(whole) or not any(whole):
        return []
    first = next(r for r, w in zip(rows, whole, strict=True) if not w)
    return [
        f"{csv_path} line {first.line}: time {first.time!r} has decimals while {sum(whole)} "
        f"of the {len(rows)} times are whole numbers: every time is taken as seconds, not "
        f"frames (write the times as whole numbers if they count frames)"
    ]


def _same(column: str, a, b) -> bool:
    x, y = getattr(a, column), getattr(b, column)
    if column == "time":
        return float(x) == float(y)
    # An empty person (a training image nobody labelled) does not contradict a label.
    return x == y or (column == "person" and "" in (x, y))


def repeated_images(rows, csv_path: Path) -> list[str]:
    """Warnings for an image listed more than once, and for training images that are also
    in the query or gallery split.

    Raises:
        UserError: one image listed with two persons, cameras, times or sessions. An image
            shows one sighting of one person, so one of the two rows is wrong; which one, only
            the user knows, and either way the model would learn or be tested on a wrong
            label, so this is refused rather than warned about.
    """
    by_path: dict[str, list] = {}
    for row in rows:
        by_path.setdefault(os.path.normpath(row.path), []).append(row)
    repeated = [group for group in by_path.values() if len(group) > 1]
    for group in repeated:
        for row in group[1:]:
            for column in SIGHTING:
                if not _same(column, group[0], row):
                    raise UserError(
                        f"{csv_path} line {row.line}: {row.path} is listed on line "
                        f"{group[0].line} with {column} {getattr(group[0], column)!r} and "
                        f"here with {getattr(row, column)!r}: an image shows one sighting "
                        f"of one person"
                    )
    warnings = []
    if repeated:
        lines = " and ".join(str(r.line) for r in repeated[0])
        warnings.append(
            f"{csv_path}: {len(repeated)} image(s) listed more than once, first "
            f"{repeated[0][0].path} on lines {lines}: each row is prepared as an image of its own"
        )
    splits = [{r.split for r in group} for group in repeated]
    leaked = [g for g, s in zip(repeated, splits, strict=True) if "train" in s and len(s) > 1]
    if leaked:
        lines = " and ".join(str(r.line) for r in leaked[0])
        warnings.append(
            f"{csv_path}: {len(leaked)} training image(s) also in query/gallery, first "
            f"{leaked[0][0].path} (lines {lines}): the evaluation would test on training images"
        )
    return warnings


def coarse_bins(rows, sessions, interval: float, gap: float, unit: str, csv_path: Path):
    """A warning where the bins derived from the longest training gap are so wide that most
    gaps fall into the first: the longest gap is that of a time far from all others.

    The typical spread of the training times, half of them within it of their session's
    median time, stands in for the typical gap (it is known whether or not the training
    images are labelled). A time far away is legal (the histograms are still those of the
    times given), so this warns, naming the training time farthest from its session's.

    Returns:
        The warning line, or None.
    """
    train = [i for i, r in enumerate(rows) if r.split == "train"]
    times = np.array([float(rows[i].time) for i in train])
    keys = np.zeros(len(train)) if sessions is None else np.array([sessions[i] for i in train])
    deviation = np.empty_like(times)
    for key in np.unique(keys):
        mask = keys == key
        deviation[mask] = np.abs(times[mask] - np.median(times[mask]))
    spread = float(np.median(deviation))
    if not (spread < interval and spread * GAP_BINS < gap):
        return None
    far = rows[train[int(np.argmax(deviation))]]
    return (
        f"{csv_path} line {far.line}: time {far.time!r} is far from the other training "
        f"times (half of them lie within {spread:g} {unit} of their session's median): the "
        f"longest training gap, {gap:g} {unit}, makes bins of {interval:g} {unit}, and most "
        f"gaps fall into the first; check that time, or choose --interval and --num_bins"
    )
