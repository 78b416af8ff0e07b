"""What every step script shares: the user-facing error type and the entry-point wrapper.

A user mistake (a missing file, a malformed name, a bad .mat) raises :class:`UserError` with a
one-line message that names the thing and what was expected. The scripts' ``main`` functions
are wrapped in :func:`entry_point`, which prints that line to stderr and exits with status 2,
without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input or files, reported as one line without a traceback."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the docstring's layout (the README command) and shows every default."""


def parser(description: str) -> argparse.ArgumentParser:
    """The argument parser of a step script, described by its docstring."""
    return argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)


def entry_point(main: Callable) -> Callable:
    """Wrap a script's ``main(argv=None)`` so that a :class:`UserError` exits cleanly."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
