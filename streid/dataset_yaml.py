"""``dataset.yaml``: a prepared dataset describes itself.

``prepare.py`` writes it into the folder it prepares; steps 2-4 read it from ``--data_dir`` /
``--test_dir``, so the same code serves Market-1501, DukeMTMC-reID, MSMT17 and any camera
network prepared from a manifest. A prepared folder without one (made before this file
existed) keeps working with the Market and Duke scripts' built-in specs.

The keys (all times in the dataset's own unit, ``unit``):

- ``key``, ``title``: the dataset's short and long names;
- ``num_cameras``: cameras 1..C of the camera-pair histograms;
- ``interval``: time units per time-gap bin; ``num_bins``: bins per camera pair;
- ``smooth``: the default Parzen sigma of steps 5-6, in bins, or ``auto``: the one step 4
  chooses from the training gaps (:mod:`streid.bandwidth`);
- ``unit``: what the times count ("frames", "seconds", ...);
- ``pattern``: regex of a prepared file name with the named groups ``person``, ``camera``,
  ``frame`` and optionally ``session``; ``pattern_format``: the same for people;
- ``sessions``: the session keys the names carry, in id order (MSMT17), where they are not
  the session ids themselves;
- for a manifest, ``cameras`` and ``persons`` (label -> id) and ``session_labels`` (in id
  order): the record of how the CSV's labels were numbered.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from .artifacts import atomic_output
from .datasets import REQUIRED_GROUPS, SPECS, DatasetSpec
from .errors import UserError, check_memory
from .files import missing

DATASET_FILE = "dataset.yaml"
# The marker of a tree prepare.py has not finished (it names what it was doing); an
# interrupted prepare.py leaves it, and steps 2-4 refuse such a folder.
UNFINISHED_FILE = "prepare.unfinished"
# Key -> (type, description) of the required entries.
REQUIRED = {
    "key": (str, "a short name"),
    "num_cameras": (int, "a positive whole number"),
    "interval": ((int, float), "a positive number of time units per bin"),
    "num_bins": (int, "a positive whole number"),
    "smooth": ((int, float, str), "a positive Parzen sigma in bins, or auto"),
    "pattern": (str, "a regex of the prepared file names"),
}
RECORD_KEYS = ("cameras", "session_labels", "persons")
# The first bytes of files that are not text: a zip (.xlsx, .ods), an old Office file (.xls).
BINARY_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


def spec_to_dict(spec: DatasetSpec) -> dict:
    """The ``dataset.yaml`` content of ``spec``."""
    data = {
        "key": spec.key,
        "title": spec.title,
        "num_cameras": spec.num_cameras,
        "interval": spec.interval,
        "num_bins": spec.num_bins,
        "smooth": spec.smooth,
        "unit": spec.unit,
        "pattern": spec.pattern.pattern,
        "pattern_format": spec.pattern_format,
    }
    if spec.sessions:
        data["sessions"] = list(spec.sessions)
    data.update({k: spec.extra[k] for k in RECORD_KEYS if k in spec.extra})
    return data


def write_spec(spec: DatasetSpec, folder: Path) -> Path:
    """Write ``folder/dataset.yaml`` atomically; returns its path. prepare.py writes it
    last, into a tree that is complete but for it."""
    path = Path(folder) / DATASET_FILE
    text = "# Written by prepare.py: this dataset's settings for steps 2-6 (see the README).\n"
    text += yaml.safe_dump(spec_to_dict(spec), sort_keys=False, allow_unicode=True)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")  # read_spec reads UTF-8 whatever the locale
    return path


def spec_from_dict(data, source: str) -> DatasetSpec:
    """Check ``data`` (a parsed ``dataset.yaml``) and build its spec.

    Raises:
        UserError: a key is missing or has the wrong type or value, the pattern is not a
            regex or lacks a required group.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source} must hold a mapping of settings (key: value)")
    for key, (kind, what) in REQUIRED.items():
        value = data.get(key)
        if value is None:
            raise UserError(f"{source} has no {key!r}: expected {what}")
        bad = not isinstance(value, kind) or isinstance(value, bool)
        if isinstance(value, str):
            bad = bad or (key == "smooth" and value != "auto")
        elif not bad:  # YAML's .nan fails "> 0"; .inf is a float that is not finite
            bad = not value > 0 or (isinstance(value, float) and not math.isfinite(value))
        if bad:
            raise UserError(f"{source}: {key} is {value!r}, expected {what}")
    cameras, bins = data["num_cameras"], data["num_bins"]
    check_memory((cameras, cameras, bins), 3 * 8, f"{source}: {cameras} x {cameras} camera-pair "
                 f"histograms of {bins:,} bins", "check num_cameras and num_bins")  # fmt: skip
    try:
        pattern = re.compile(data["pattern"])
    except re.error as err:
        raise UserError(f"{source}: pattern is not a valid regex ({err})") from None
    missing = [g for g in REQUIRED_GROUPS if g not in pattern.groupindex]
    if missing:
        raise UserError(
            f"{source}: pattern lacks the named group {missing[0]!r} (it needs "
            f"(?P<person>...), (?P<camera>...), (?P<frame>...), optionally (?P<session>...))"
        )
    sessions = data.get("sessions") or ()
    if not isinstance(sessions, list | tuple) or not all(isinstance(s, str) for s in sessions):
        raise UserError(f"{source}: sessions must be a list of the session keys in names")
    return DatasetSpec(
        key=data["key"],
        title=str(data.get("title") or data["key"]),
        num_cameras=data["num_cameras"],
        num_bins=data["num_bins"],
        interval=data["interval"],
        smooth=data["smooth"],
        unit=str(data.get("unit") or "frames"),
        pattern=pattern,
        pattern_format=str(data.get("pattern_format") or data["pattern"]),
        sessions=tuple(sessions),
        prepare_flag=SPECS[data["key"]].prepare_flag if data["key"] in SPECS else "--manifest",
        extra={k: data[k] for k in RECORD_KEYS if k in data},
    )


def read_user_text(path: Path, advice: str) -> str:
    """The text of a file the user gives, read as UTF-8 (a UTF-8 byte order mark is accepted).

    Args:
        advice: what to do instead, for the message ("save it as UTF-8 CSV").

    Raises:
        UserError: the file cannot be read, or is not UTF-8 text (a spreadsheet, a file in
            Latin-1 or UTF-16): where it is cheap, the offending byte and its line.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UserError(f"{path} could not be read ({err.strerror or err})") from None
    if data.startswith(BINARY_MAGIC):
        raise UserError(
            f"{path} is not UTF-8 text (a spreadsheet? it is a zip or Office file): {advice}"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{path} is not UTF-8 text (it is UTF-16): {advice}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError(
            f"{path} is not UTF-8 text (a spreadsheet, or Latin-1?): byte 0x{data[err.start]:02x} "
            f"at offset {err.start}, line {line}; {advice}"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise UserError(f"{path} is not text (a spreadsheet?): a NUL byte on line {line}; {advice}")
    return text


def read_spec(folder: Path) -> DatasetSpec | None:
    """The spec of ``folder/dataset.yaml``, or None if the folder has none.

    Raises:
        UserError: the file is not YAML or not a valid spec.
    """
    path = Path(folder) / DATASET_FILE
    if not path.is_file():
        return None
    text = read_user_text(path, "write it as UTF-8, or run prepare.py (step 1) again")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        reason = str(err).splitlines()[0]
        raise UserError(f"{path} could not be read as YAML ({reason})") from None
    return spec_from_dict(data, str(path))


def resolve_spec(folder: str | Path, builtin: DatasetSpec | None, flag: str) -> DatasetSpec:
    """The dataset of a prepared folder: its ``dataset.yaml``, else the script's built-in spec
    (a Market-1501 or DukeMTMC-reID folder prepared by the original code).

    Args:
        folder: ``--data_dir`` or ``--test_dir``.
        builtin: the Market/Duke script's spec; None for the dataset-neutral scripts.
        flag: the flag that named ``folder``, for the message.

    Raises:
        UserError: neither exists, or prepare.py did not finish the folder.
    """
    marker = Path(folder) / UNFINISHED_FILE
    if marker.is_file():
        stage = marker.read_text(errors="replace").strip() or "its start"
        raise UserError(
            f"{folder}/ was not finished by prepare.py (stopped at {stage}?): run prepare.py again"
        )
    spec = read_spec(Path(folder))
    if spec is not None:
        return spec
    if builtin is not None:
        return builtin
    if why := missing(Path(folder), folder=True):
        raise UserError(f"{flag} {folder}/ {why}: run prepare.py (step 1) to make it")
    raise UserError(
        f"{folder}/{DATASET_FILE} not found: {flag} must be a folder made by prepare.py "
        f"(step 1), which writes it; for a Market-1501 or DukeMTMC-reID folder prepared "
        f"before, use the _market / _duke scripts"
    )
