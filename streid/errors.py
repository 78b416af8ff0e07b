"""What the library tells a user: the one-line error, notes and warnings.

A user mistake (a missing file, a malformed name, a bad .mat) raises :class:`UserError` with a
one-line message that names the thing and what was expected; the step scripts print that
line and exit (see :func:`streid.cli.entry_point`). Notes and warnings go to stderr, so that
stdout holds only a step's results (the original's ``top1:... mAP:...`` line and the like).

This module has no dependencies: every part of the library can raise and warn without
depending on the command line.
"""

from __future__ import annotations

import sys


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


def note(message: str) -> None:
    """Tell the user about a choice made for them (stderr, prefixed ``note:``)."""
    print(f"note: {message}", file=sys.stderr)


def warning(message: str) -> None:
    """Tell the user about something that may not be what they want (stderr)."""
    print(f"warning: {message}", file=sys.stderr)
