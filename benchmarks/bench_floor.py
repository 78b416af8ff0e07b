"""Steps 5 and 6 against the machine's floor (issue 20's yardstick), in one run.

    python -m benchmarks.bench_floor                 # Market-1501 and MSMT17, step 5
    python -m benchmarks.bench_floor --rerank        # also step 6 from the features (long)

Every exact method computes every query x gallery similarity (a matrix product) and takes
one ``exp`` per pair for the logistic. The floor is those alone, measured in the same run:
the products with NumPy's BLAS, in blocks of queries, and one float32 ``torch.exp`` per pair
(torch's CPU ops use every core). A step's time is the wall time of the whole process a user
runs (``python evaluate_st.py``, ``python evaluate_rerank.py --from_features``), on the real
names with simulated 512-d features; the ratio step / floor is what to compare across
machines. Step 6's floor counts the N x N products of [query; gallery] once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import run_process
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.datasets import MARKET, MSMT17
from streid.fusion import normalize_rows

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 1024  # query rows per product: (1024 x 82,161) float32 is 0.34 GB


def floor_seconds(rows: np.ndarray, columns: np.ndarray) -> tuple[float, float]:
    """(matmul seconds, exp seconds) of every row x column similarity and one float32 exp
    of each, block by block."""
    matmul = exp = 0.0
    for r0 in range(0, len(rows), BLOCK):
        start = time.perf_counter()
        scores = rows[r0 : r0 + BLOCK] @ columns.T
        middle = time.perf_counter()
        torch.exp(torch.from_numpy(scores).mul_(-5.0))
        matmul, exp = matmul + middle - start, exp + time.perf_counter() - middle
    return matmul, exp


def compare(title: str, spec, rerank: bool) -> None:
    features = real_feature_set(spec, dim=512, seed=1)
    query = normalize_rows(features.query.features.astype(np.float32))
    gallery = normalize_rows(features.gallery.features.astype(np.float32))
    print(f"\n{title}: {len(query):,} queries x {len(gallery):,} gallery, 512-d")
    with tempfile.TemporaryDirectory() as tmp:
        write_run(Path(tmp), features, real_histograms(spec), "bench", spec.interval, spec.smooth)
        del features
        runs = [("5, evaluate_st.py", ["evaluate_st.py"], (query, gallery))]
        if rerank:
            everyone = np.concatenate([query, gallery])
            label = "6, evaluate_rerank.py --from_features"
            runs.append((label, ["evaluate_rerank.py", "--from_features"], (everyone, everyone)))
        for label, script, (rows, columns) in runs:
            command = [sys.executable, str(ROOT / script[0]), *script[1:], "--name", "bench"]
            wall, rss, _ = run_process(command, tmp)
            matmul, exp = floor_seconds(rows, columns)
            floor = matmul + exp
            print(
                f"step {label}: {wall:.1f} s (peak {rss:.2f} GB); floor {floor:.1f} s "
                f"(matmul {matmul:.1f} s + exp {exp:.1f} s); ratio {wall / floor:.2f}x"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rerank", action="store_true", help="step 6 from the features too")
    parser.add_argument("--skip_msmt17", action="store_true", help="Market-1501 only")
    args = parser.parse_args(argv)
    print(f"torch threads {torch.get_num_threads()}")
    compare("Market-1501", MARKET, args.rerank)
    if not args.skip_msmt17:
        compare("MSMT17", MSMT17, args.rerank)
    return 0


if __name__ == "__main__":
    main()
