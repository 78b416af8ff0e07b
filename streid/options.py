"""``opts.json``: the options of a training run, and what step 3 rebuilds the net from.

Step 2 writes the command line's flags as given plus four derived fields; step 3 reads the
derived ones back (as nanoGPT's checkpoints carry their model arguments), so a run is tested
with the net it was trained with whatever flags ``test_st_*.py`` gets:

- ``arch``: the registry name of the net (:data:`streid.models.ARCHITECTURES`);
- ``nclasses``: the number of training identities (the classifier's rows);
- ``input_size``: the network input, [height, width];
- ``dataset``: the dataset spec's key;
- ``backbone``: the torchvision trunk, for the reader (derived from ``arch``).

Files written before ``arch`` was recorded name the net by their ``PCB`` and ``use_dense``
flags, as the original's command line did; they load the same net.

:class:`RunRecord` keeps a run's folder describing one net: step 2 refuses a folder holding
another run's record (``opts.json``, ``resume.pth``, ``train_log.csv``, ``net_*.pth``) unless
``--resume`` with the same net or ``--overwrite``, and writes ``opts.json`` with the first
``resume.pth`` of the run (after its first finished epoch), so a retry that dies leaves the
old record as it was. ``train*.py --config opts.json`` replays a run's flags.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import CURVES_FILE, OPTS_FILE, RESUME_FILE, Run, atomic_output
from .errors import UserError, note, warning
from .models import Architecture, architecture, architecture_for_flags

# The fields step 3 needs, with their JSON types.
REQUIRED: dict[str, type] = {"arch": str, "nclasses": int, "input_size": list}
# Every derived field; everything else in the file is the command line.
DERIVED = ("arch", "nclasses", "input_size", "dataset", "backbone")


@dataclass(frozen=True)
class RunOptions:
    """A run's ``opts.json``.

    Attributes:
        arch: the net.
        nclasses: training identities.
        input_size: (height, width) of the network input.
        dataset: the dataset spec's key ("market", "duke").
        flags: the training script's flags as given (``name``, ``batchsize``, ``PCB``, ...).
    """

    arch: Architecture
    nclasses: int
    input_size: tuple[int, int]
    dataset: str
    flags: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The file's content: the flags, then the derived fields (the resolved input size
        replaces the flag's value)."""
        # Deviation from the original: the derived fields (arch, nclasses, backbone,
        # input_size, dataset) are recorded, so step 3 rebuilds the net from them; it kept
        # only the flags, and copies of the training script and model.py.
        derived = {
            "nclasses": self.nclasses,
            "backbone": self.arch.backbone,
            "input_size": list(self.input_size),
            "dataset": self.dataset,
            "arch": self.arch.name,
        }
        return {**self.flags, **derived}

    def save(self, path: Path) -> None:
        """Write ``opts.json`` atomically."""
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, path: Path) -> RunOptions:
        """Read and check ``opts.json``.

        Raises:
            UserError: not JSON, not an object, ``arch``, ``nclasses`` or ``input_size``
                missing or of another type, or an unknown architecture.
        """
        try:
            data = json.loads(Path(path).read_text())
        except ValueError as err:
            raise UserError(f"{path} is not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path} must hold a JSON object of options")
        if "arch" not in data:  # written before the name was recorded: the original's flags
            data["arch"] = architecture_for_flags(
                bool(data.get("PCB")), bool(data.get("use_dense"))
            ).name
        for key, kind in REQUIRED.items():
            value = data.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise UserError(
                    f"{path}: {key} must be a JSON {kind.__name__}, found {value!r}; "
                    f"it is written by step 2 (train_*.py)"
                )
        size = data["input_size"]
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise UserError(f"{path}: input_size must be [height, width], found {size!r}")
        flags = {k: v for k, v in data.items() if k not in DERIVED}
        dataset = str(data.get("dataset") or "")
        return cls(architecture(data["arch"]), data["nclasses"], tuple(size), dataset, flags)


# -- the record of a run in model/<name>/ -------------------------------------------------------
def record_files(run: Run) -> list[str]:
    """The run's files that describe a trained net: opts.json, resume.pth, train_log.csv,
    net_*.pth."""
    own = (run.opts, run.resume, run.train_log)
    return [p.name for p in own if p.is_file()] + run.checkpoints()


def _net_flags(arch: Architecture) -> str:
    on = [f"--{flag}" for flag, value in arch.flags().items() if value]
    return f"{' '.join(on) or 'neither --PCB nor --use_dense'} ({arch.name})"


def check_same_net(recorded: RunOptions, given: RunOptions, path: Path) -> None:
    """UserError naming the first flag of ``given`` that builds another net than ``recorded``:
    the architecture, the input size, the number of classes."""
    if recorded.arch != given.arch:
        what = f"records {_net_flags(recorded.arch)}, this command has {_net_flags(given.arch)}"
    elif tuple(recorded.input_size) != tuple(given.input_size):
        sizes = [" ".join(map(str, s)) for s in (recorded.input_size, given.input_size)]
        what = f"records --input_size {sizes[0]}, this command has {sizes[1]}"
    elif recorded.nclasses != given.nclasses:
        what = (
            f"records {recorded.nclasses} classes (dataset {recorded.dataset or '?'}), the "
            f"training images of this command have {given.nclasses} (dataset {given.dataset})"
        )
    else:
        return
    raise UserError(
        f"--resume: {path} {what}: that is another net; resume with the recorded flags, or "
        f"train the new net under another --name (or with --overwrite instead of --resume)"
    )


@dataclass
class RunRecord:
    """A training run's record in its folder (``--resume``, ``--overwrite``).

    Attributes:
        run: the folder.
        resume: ``--resume``: continue the run whose record is there.
        overwrite: ``--overwrite``: replace it, once the first epoch has finished.
        options: this run's opts.json, set by :meth:`check`.
        replaced: the old run's files that go at the first save (``--overwrite``).
        started: whether this run has begun writing its own record.
    """

    run: Run
    resume: bool = False
    overwrite: bool = False
    options: RunOptions | None = None
    replaced: list[str] = field(default_factory=list)
    started: bool = False

    def check(self, options: RunOptions) -> None:
        """Before anything is written: UserError where the folder holds another run's record
        and neither ``--resume`` with the same net nor ``--overwrite`` was given."""
        found, path = record_files(self.run), self.run.path
        if self.resume and self.overwrite:
            raise UserError(
                f"--resume continues the run in {path}/, --overwrite replaces it: give one"
            )
        if self.resume:
            if not self.run.resume.is_file():
                raise UserError(
                    f"--resume: {self.run.resume} not found (it is written after each epoch)"
                )
            if self.run.opts.is_file():
                check_same_net(RunOptions.load(self.run.opts), options, self.run.opts)
        elif found and not self.overwrite:
            how = "--resume to continue it, " if RESUME_FILE in found else ""
            raise UserError(
                f"{path}/ already holds a training run ({', '.join(found)}): pass {how}"
                f"--overwrite to replace it, or another --name"
            )
        elif found:
            note(f"--overwrite: {path}/ ({', '.join(found)}) is replaced after the first epoch")
            self.replaced = found
        self.options = options

    @property
    def resumable(self) -> bool:
        """Whether ``--resume`` would continue this run now."""
        return self.run.resume.is_file() and (self.resume or self.started)

    @contextlib.contextmanager
    def saving(self):
        """Around the files saved after an epoch; the first time, this run's opts.json too.

        A new run (``--overwrite`` included) writes it first, once the replaced run's files
        are gone, and removes it again where the epoch's files fail before resume.pth is
        there (it would describe no net). A resumed run, whose net is the recorded one,
        writes it after them, so that a failure leaves the old record as it was.
        """
        first = not self.started
        if first and not self.resume:
            self._remove_replaced()
            self.started = True
            self.options.save(self.run.opts)
        try:
            yield
        except BaseException:
            if first and not self.resume and not self.run.resume.is_file():
                self.run.opts.unlink(missing_ok=True)
            raise
        if first and self.resume:
            self.started = True
            self.options.save(self.run.opts)

    def _remove_replaced(self) -> None:
        # The weights first; opts.json is then replaced (atomically) by this run's.
        for name in self.replaced:
            if name != OPTS_FILE:
                (self.run.path / name).unlink(missing_ok=True)
        if self.replaced:
            step2 = {*self.replaced, CURVES_FILE}
            later = [
                p.name
                for p in sorted(self.run.path.iterdir())
                if p.is_file() and not p.name.startswith(".") and p.name not in step2
            ]
            if later:
                warning(
                    f"{self.run.path}/ still holds {', '.join(later)} of the replaced run: "
                    f"run the later steps (3-6) again"
                )
