"""Step 5 at Market-1501 scale: the project's evaluation against a plain per-query loop.

    python -m benchmarks.bench_evaluate_st            # about 2 minutes on 2 cores

3,368 queries x 19,732 gallery images with the real Market-1501 names (so the real
camera/frame structure) and simulated features of 512 and 12,288 dimensions. Prints the
seconds of the project's ranking + CMC/mAP, of the original-style loop (one query at a time,
a Python loop over the gallery for the spatial-temporal lookup, tests/reference.py), their
ratio, the agreement of the two, and the wall time of the whole `python evaluate_st.py`
process. The loop runs on a subset of the queries where it would take minutes, and its time
is scaled to all queries (said so in the output).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from streid.datasets import MARKET
from streid.evaluation import evaluate_features
from streid.st_model import (
    SpatialTemporalModel,
    smooth_histograms,
)
from tests import reference as ref
from tests.simulate import real_feature_set, real_histograms, write_run

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 12288])
    parser.add_argument(
        "--loop_queries",
        type=int,
        default=400,
        help="queries the plain loop runs on for the larger features (all of them for 512-d)",
    )
    args = parser.parse_args(argv)

    distribution = real_histograms(MARKET)
    smoothed = smooth_histograms(distribution, 50)
    st = SpatialTemporalModel(smoothed, MARKET.interval)
    print("Step 5 at Market-1501 scale: 3,368 queries x 19,732 gallery, real names")
    print(f"{'features':>9} {'project':>9} {'plain loop':>11} {'ratio':>7}  agreement")
    for dim in args.dims:
        features = real_feature_set(MARKET, dim=dim, seed=1)
        fast, t_fast = timed(evaluate_features, features, st, 5.0)
        n_loop = len(features.query) if dim <= 512 else args.loop_queries
        subset = features.query[:n_loop]
        (cmc, mAP, _), t_loop = timed(ref.evaluate, subset, features.gallery, smoothed)
        t_loop_all = t_loop * len(features.query) / n_loop
        if n_loop == len(features.query):
            agree = f"|d top1| {abs(fast.cmc[0] - cmc[0]):.1e}, |d mAP| {abs(fast.mAP - mAP):.1e}"
            note = ""
        else:
            sub = evaluate_features(type(features)(subset, features.gallery), st, 5.0)
            agree = f"|d mAP| {abs(sub.mAP - mAP):.1e} on the {n_loop} queries"
            note = f" (loop timed on {n_loop} queries, scaled)"
        print(
            f"{dim:>7}-d {t_fast:>8.1f}s {t_loop_all:>10.1f}s {t_loop_all / t_fast:>6.1f}x  "
            f"{agree}{note}"
        )
        print(f"{'':>9} {fast.summary()}")

    # The whole process a user runs, with 512-d features.
    with tempfile.TemporaryDirectory() as tmp:
        features = real_feature_set(MARKET, dim=512, seed=1)
        write_run(Path(tmp), features, distribution, name="bench")
        command = [sys.executable, str(ROOT / "evaluate_st.py"), "--name", "bench"]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(command, cwd=tmp, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        print(
            f"whole `python evaluate_st.py` process, 512-d: best of 3 {min(times):.1f}s "
            f"(goal < 8 s; the original takes about 115 s)"
        )
    return 0


if __name__ == "__main__":
    main()
