"""What the benchmarks share: timing a call, and timing a whole process with its peak memory."""

from __future__ import annotations

import subprocess
import sys
import time

# Runs the command and reports its peak resident memory. A process started from the
# benchmark itself would report the benchmark's own peak too: Linux carries the high-water
# mark of the parent's memory over fork/vfork and exec. Started from this small launcher, the
# command's figure is its own.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(f"maxrss_kb {usage.ru_maxrss}", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(fn, *args, **kwargs):
    """(the result of ``fn(*args, **kwargs)``, its wall seconds)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def run_process(command: list[str], cwd) -> tuple[float, float, list[str]]:
    """Run ``command`` in ``cwd``; return its wall seconds, its peak RSS in GB and its
    standard output lines.

    Raises:
        SystemExit: the command failed.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], cwd=cwd, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {proc.returncode})")
    kb = next(int(line.split()[1]) for line in proc.stderr.splitlines() if "maxrss_kb" in line)
    return elapsed, kb / 2**20, proc.stdout.strip().splitlines()
