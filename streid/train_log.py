"""``model/<name>/train_log.csv``: step 2's log, one row per epoch and phase.

Added: not in the original, which kept its curves in memory and drew ``train.jpg`` only. The
columns are :data:`COLUMNS`: the epoch, the phase (``train`` or ``val``), the mean loss per
image, the top-1 accuracy, the learning rates of the backbone and of the heads during the
epoch, the images per second and the seconds of the phase. An epoch without images (an
empty ``val/``) has ``nan`` loss and accuracy.

The rows also travel in ``resume.pth``, which is written first: the CSV is then rewritten
whole, atomically, from them, so a kill never leaves a half line and a log that a kill left
one epoch behind is complete again after the next epoch of ``--resume``. ``train.jpg`` is
drawn from the same rows (:func:`streid.plots.draw_curves`).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import UserError
from .files import atomic_output


@dataclass(frozen=True)
class EpochRow:
    """One phase of one epoch.

    Attributes:
        epoch: from 0.
        phase: ``train`` or ``val``.
        loss: mean cross-entropy per image (PCB: summed over the parts).
        accuracy: top-1 accuracy, between 0 and 1.
        lr_backbone, lr_heads: the learning rates during the epoch (nan where unknown: a
            run resumed from a resume.pth written before the log existed).
        images_per_s, seconds: the phase's speed and duration (nan where unknown).
    """

    epoch: int
    phase: str
    loss: float
    accuracy: float
    lr_backbone: float
    lr_heads: float
    images_per_s: float
    seconds: float


COLUMNS = tuple(f.name for f in fields(EpochRow))
# Each column's CSV form: enough digits to redraw the curves, no more.
_FORMATS = {
    "loss": ".6f",
    "accuracy": ".6f",
    "lr_backbone": "g",
    "lr_heads": "g",
    "images_per_s": ".1f",
    "seconds": ".3f",
}


def to_state(rows: list[EpochRow]) -> list[dict]:
    """The rows as plain dicts, for ``resume.pth`` (``torch.load(weights_only=True)``)."""
    return [asdict(row) for row in rows]


def from_state(state: dict) -> list[EpochRow]:
    """The rows saved in a resume.pth; for one written before the log existed, rebuilt from
    its history (loss and error per phase), with the unknown columns nan."""
    if "log" in state:
        return [EpochRow(**row) for row in state["log"]]
    nan = float("nan")
    rows = []
    for phase, curves in state["history"].items():
        for epoch, (loss, err) in enumerate(zip(curves["loss"], curves["err"], strict=True)):
            rows.append(EpochRow(epoch, phase, loss, 1 - err, nan, nan, nan, nan))
    return sorted(rows, key=lambda row: (row.epoch, row.phase != "train"))


def history_of(rows: list[EpochRow]) -> dict:
    """``{"train" | "val": {"loss": [...], "err": [...]}}``, one value per epoch: the
    history resume.pth has always held."""
    history = {phase: {"loss": [], "err": []} for phase in ("train", "val")}
    for row in rows:
        history[row.phase]["loss"].append(row.loss)
        history[row.phase]["err"].append(1.0 - row.accuracy)
    return history


def write_log(rows: list[EpochRow], path: Path) -> None:
    """Write the CSV whole, atomically."""
    with atomic_output(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in rows:
            values = asdict(row)
            writer.writerow(
                format(values[c], _FORMATS[c]) if c in _FORMATS else values[c] for c in COLUMNS
            )


def read_log(path: Path) -> list[EpochRow]:
    """The rows of a train_log.csv; UserError where it is not one."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise UserError(f"{path}: expected the columns {', '.join(COLUMNS)}")
            return [_row(record) for record in reader]
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"cannot read {path}: {err}") from None


def _row(record: dict) -> EpochRow:
    if record["phase"] not in ("train", "val"):
        raise ValueError(f"phase {record['phase']!r}: expected train or val")
    numbers = {c: float(record[c]) for c in COLUMNS[2:]}
    return EpochRow(int(record["epoch"]), record["phase"], **numbers)
