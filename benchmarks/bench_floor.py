"""Steps 5 and 6 against the machine's floor (issue 20's yardstick), in one run.

    python -m benchmarks.bench_floor                 # Market-1501 and MSMT17, step 5
    python -m benchmarks.bench_floor --rerank        # also step 6 from the features (long)

Every exact method computes every query x gallery similarity (a matrix product) and takes
one ``exp`` per pair for the logistic. The floor is those alone, measured in the same run:
the products with NumPy's BLAS, in blocks of queries, and one float32 ``torch.exp`` per pair
(torch's CPU ops use every core). A step's time is the wall time of the whole process a user
runs (``python evaluate_st.py``, ``python evaluate_rerank.py --from_features``), on the real
names with simulated 512-d features; the ratio step / floor is what to compare across
machines. Step 6's floor counts the N x N products of [query; gallery] once; with
``--rerank`` step 6.1 (``gen_rerank_all_scores_mat.py``, which also writes the N x N file)
is timed at Market-1501 scale against the same floor. Each step runs once on a small run
first, so that no timed run includes numba's one-time compilation.

The floor is measured in a process of its own, started as the steps are, with the same
BLAS settings: ``OPENBLAS_THREAD_TIMEOUT``, which importing ``streid`` sets in this process's
environment before NumPy loads, and which every process started from here inherits
(OpenBLAS's threads would otherwise spin after each product on the cores the ``exp``
needs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import run_process
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.artifacts import FEATURES_FILE
from streid.datasets import MARKET, MSMT17
from streid.interchange import FeatureSet

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 1024  # query rows per product: (1024 x 82,161) float32 is 0.34 GB


def floor_seconds(rows, columns) -> tuple[float, float]:
    """(matmul seconds, exp seconds) of every row x column similarity and one float32 exp
    of each, block by block."""
    import torch  # only in the floor's own process

    matmul = exp = 0.0
    for r0 in range(0, len(rows), BLOCK):
        start = time.perf_counter()
        scores = rows[r0 : r0 + BLOCK] @ columns.T
        middle = time.perf_counter()
        torch.exp(torch.from_numpy(scores).mul_(-5.0))
        matmul, exp = matmul + middle - start, exp + time.perf_counter() - middle
    return matmul, exp


def measure_floor(run: Path, everyone: bool) -> None:
    """The floor of the run's features (``--floor``), printed as ``matmul exp`` seconds."""
    import numpy as np

    from streid.fusion import normalize_rows
    from streid.interchange import load_features

    features = load_features(run / FEATURES_FILE)
    query = normalize_rows(features.query.features.astype(np.float32))
    gallery = normalize_rows(features.gallery.features.astype(np.float32))
    if everyone:
        query = gallery = np.concatenate([query, gallery])
    print(*floor_seconds(query, gallery))


def floor_of(run: Path, everyone: bool) -> tuple[float, float]:
    """(matmul seconds, exp seconds) of the run's floor, measured in a process of its own."""
    command = [sys.executable, "-m", "benchmarks.bench_floor", "--floor", str(run)]
    command += ["--everyone"] if everyone else []
    _, _, lines = run_process(command, ROOT)
    matmul, exp = map(float, lines[-1].split())
    return matmul, exp


def warm_up() -> None:
    """Each step once on a small run, so that numba's compiled loops are in its cache (the
    first run after an install or a change compiles them, a few seconds, once)."""
    features = real_feature_set(MARKET, dim=512, seed=1, num_queries=40)
    features = FeatureSet(features.query, features.gallery[:400])
    with tempfile.TemporaryDirectory() as tmp:
        write_run(Path(tmp), features, real_histograms(MARKET), "warm")
        for script in (["evaluate_st.py"], ["evaluate_rerank.py", "--from_features"],
                       ["gen_rerank_all_scores_mat.py"]):  # fmt: skip
            command = [sys.executable, str(ROOT / script[0]), *script[1:], "--name", "warm"]
            run_process(command, tmp)


def compare(title: str, spec, rerank: bool) -> None:
    features = real_feature_set(spec, dim=512, seed=1)
    nq, ng = len(features.query), len(features.gallery)
    print(f"\n{title}: {nq:,} queries x {ng:,} gallery, 512-d", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(Path(tmp), features, real_histograms(spec), "bench", spec.interval,
                        spec.smooth)  # fmt: skip
        del features
        runs = [("5, evaluate_st.py", ["evaluate_st.py"], False)]
        if rerank:
            runs.append(("6, evaluate_rerank.py --from_features",
                         ["evaluate_rerank.py", "--from_features"], True))  # fmt: skip
            if spec is MARKET:  # MSMT17's N x N file would take 35 GB
                runs.append(("6.1, gen_rerank_all_scores_mat.py (and its file)",
                             ["gen_rerank_all_scores_mat.py"], True))  # fmt: skip
        for label, script, everyone in runs:
            command = [sys.executable, str(ROOT / script[0]), *script[1:], "--name", "bench"]
            wall, rss, lines = run_process(command, tmp)
            matmul, exp = floor_of(run, everyone)
            floor = matmul + exp
            print(
                f"step {label}: {wall:.1f} s (peak {rss:.2f} GB); floor {floor:.1f} s "
                f"(matmul {matmul:.1f} s + exp {exp:.1f} s); ratio {wall / floor:.2f}x\n"
                f"    {lines[0] if 'top1' in lines[0] else lines[-1]}",
                flush=True,
            )
            (run / "all_scores.mat").unlink(missing_ok=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rerank", action="store_true", help="step 6 from the features too")
    parser.add_argument("--skip_msmt17", action="store_true", help="Market-1501 only")
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)  # the floor's process
    parser.add_argument("--everyone", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        measure_floor(args.floor, args.everyone)
        return 0
    blas = os.environ["OPENBLAS_THREAD_TIMEOUT"]  # set by importing streid, or the user's
    print(f"cores {len(os.sched_getaffinity(0))}, OPENBLAS_THREAD_TIMEOUT {blas}")
    warm_up()
    compare("Market-1501", MARKET, args.rerank)
    if not args.skip_msmt17:
        compare("MSMT17", MSMT17, args.rerank)
    return 0


if __name__ == "__main__":
    main()
