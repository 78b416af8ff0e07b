"""Step 2's optimisation state: the original's optimizer and schedule, the plain
``net_<epoch>.pth`` state dicts, and ``resume.pth`` (everything ``--resume`` needs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .artifacts import Run
from .errors import UserError
from .train_log import EpochRow, from_state, history_of, to_state
from .weights import load_state_dict_checked, save_checked

# The original's optimizer and schedule.
BASE_LR, HEAD_LR = 0.01, 0.1
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
LR_STEP, LR_GAMMA = 40, 0.1


@dataclass
class Optimization:
    """The optimizer, its schedule and the mixed-precision scaler of a run."""

    optimizer: torch.optim.SGD
    scheduler: torch.optim.lr_scheduler.StepLR
    scaler: torch.amp.GradScaler

    @classmethod
    def for_model(cls, model: nn.Module, device: torch.device, amp: bool) -> Optimization:
        """The original's SGD: lr 0.01 for the backbone, 0.1 for the heads
        (``model.heads()``), momentum 0.9, Nesterov, weight decay 5e-4; x0.1 every 40 epochs."""
        head_ids = {id(p) for head in model.heads() for p in head.parameters()}
        base = [p for p in model.parameters() if id(p) not in head_ids]
        groups = [{"params": base, "lr": BASE_LR}]
        groups += [{"params": list(head.parameters()), "lr": HEAD_LR} for head in model.heads()]
        optimizer = torch.optim.SGD(
            groups, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM, nesterov=True
        )
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=LR_STEP, gamma=LR_GAMMA)
        return cls(optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=amp))

    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


def save_state_dict(model: nn.Module, path: Path) -> None:
    """Save the CPU state dict, as the original's ``save_network``, atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_checked(state, path)


def save_resume(run: Run, model, opt: Optimization, next_epoch: int, rows) -> None:
    """Everything --resume needs, apart from the net_*.pth files (which stay plain): the
    log's rows too, and the history (loss and error per phase) that resume.pth always held."""
    state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    state.update(opt.state_dict(), epoch=next_epoch, history=history_of(rows))
    save_checked({**state, "log": to_state(rows)}, run.resume)


def load_resume(run: Run, model, opt: Optimization) -> tuple[int, list[EpochRow]]:
    """Restore a run saved by :func:`save_resume`; returns (next epoch, the log's rows)."""
    path = run.resume
    if not path.is_file():
        raise UserError(f"--resume: {path} not found (it is written after each epoch)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        load_state_dict_checked(model, state["model"], str(path))
        opt.load_state_dict(state)
        rows = from_state(state)
    except (KeyError, ValueError, TypeError, RuntimeError, OSError) as err:
        raise UserError(f"--resume: {path} does not fit this run ({err})") from None
    print(f"resuming {run.path}/ at epoch {state['epoch']}")
    return state["epoch"], rows
