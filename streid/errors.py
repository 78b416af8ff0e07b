"""What the library tells a user: the one-line error, notes and warnings.

A user mistake (a missing file, a malformed name, a bad .mat) raises :class:`UserError` with a
one-line message that names the thing and what was expected; the step scripts print that
line and exit (see :func:`streid.cli.entry_point`). Notes and warnings go to stderr, so that
stdout holds only a step's results (the original's ``top1:... mAP:...`` line and the like).
A stop (Ctrl-C, SIGTERM, SIGHUP) is a KeyboardInterrupt (:class:`Interrupted`), which
:func:`stops_deferred` holds back over statements that must not be split.

This module has no dependencies: every part of the library can raise and warn without
depending on the command line.
"""

from __future__ import annotations

import contextlib
import decimal
import math
import os
import signal
import sys
import threading


class UserError(Exception):
    """A problem with the user's input or files, reported as one line without a traceback."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM, SIGHUP): raised in the main thread, so that
    every ``finally`` and cleanup runs as for Ctrl-C.

    Attributes:
        signal: the signal's name.
    """

    def __init__(self, signal: str):
        super().__init__(signal)
        self.signal = signal


# Ctrl-C, and the signals streid.cli turns into Interrupted.
STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stops_deferred():
    """Ctrl-C, SIGTERM and SIGHUP that come during the block are raised as it ends (by the
    handler they had before), never half-way through it. For a few statements that must not
    be split: a stop handler raises in the main thread between any two, and numba's, BLAS's
    and the pool's threads can take a signal that a mask on the main thread would hold.
    Elsewhere than in the main thread, where Python runs no handler, the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _: came.append(signum)) for s in STOPS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if came:
            signal.raise_signal(came[0])  # to the handler it had, now restored


def note(message: str) -> None:
    """Tell the user about a choice made for them (stderr, prefixed ``note:``)."""
    print(f"note: {message}", file=sys.stderr)


def warning(message: str) -> None:
    """Tell the user about something that may not be what they want (stderr)."""
    print(f"warning: {message}", file=sys.stderr)


def memory_bytes() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(shape, itemsize: int, what: str, hint: str) -> None:
    """UserError, before allocating, if arrays of ``shape`` (whole numbers) with ``itemsize``
    bytes per element (all the arrays of one element together) would not fit in this
    machine's memory: "``what`` would take N GB, more than this machine's M GB of memory:
    ``hint``" (``hint``: what to change)."""
    nbytes = math.prod(int(n) for n in shape) * int(itemsize)  # Python ints: no overflow
    memory = memory_bytes()
    if nbytes > memory:
        gb = decimal.Decimal(nbytes).scaleb(-9)  # exact for any size; a float could overflow
        size = f"{float(gb):,.1f}" if gb < 10**12 else f"{gb:.3g}"
        raise UserError(
            f"{what} would take {size} GB, more than this machine's {memory / 1e9:,.1f} GB "
            f"of memory: {hint}"
        )
