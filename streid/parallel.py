"""Threads for the elementwise work of steps 5 and 6: NumPy's ufuncs and the compiled kernels
(:mod:`streid.kernels`) release the GIL, so plain threads run them on every core, as BLAS
runs the matrix products.

The number of threads is ``OMP_NUM_THREADS`` where it is set (the variable BLAS and torch
read too), else the cores this process may run on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .errors import stops_deferred


def num_threads() -> int:
    """The threads :func:`for_ranges` uses: ``OMP_NUM_THREADS``, else the usable cores."""
    setting = os.environ.get("OMP_NUM_THREADS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@functools.cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="streid")


def ranges(total: int, step: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive pieces of ``0..total``, ``step`` long (the last one
    shorter)."""
    return [(start, min(start + step, total)) for start in range(0, total, step)]


def for_ranges(work: Callable[[int, int], object], total: int, step: int) -> None:
    """``work(start, stop)`` for the pieces of ``0..total`` (:func:`ranges`), in threads.

    The pieces must be independent (each writes its own part of an output). An exception in
    one is raised here once the others have finished.
    """
    pieces = ranges(total, step)
    threads = min(num_threads(), len(pieces))
    if threads <= 1:
        for start, stop in pieces:
            work(start, stop)
        return
    futures = []
    try:
        # A stop raised in the pool as it starts a thread, before it has noted the thread,
        # left that thread waiting for work at exit, and the process with it: stops wait
        # until every piece is submitted.
        with stops_deferred():
            futures += [_pool(threads).submit(work, start, stop) for start, stop in pieces]
        for future in futures:
            future.result()
    finally:  # Ctrl-C or an error: drop what has not started, wait for what has
        for future in futures:
            future.cancel()
        for future in futures:
            if not future.cancelled():
                future.exception()
