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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import atomic_output
from .errors import UserError
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
