"""Step 6 at Market-1501 scale (and, with --msmt17, at MSMT17 scale): time and peak memory
of steps 6.1 and 6.2 and of re-ranking straight from the features, against the
original-style loops.

    python -m benchmarks.bench_rerank            # about 3 minutes on 2 cores, 2.2 GB of disk
    python -m benchmarks.bench_rerank --msmt17   # and MSMT17: about 7 minutes more
    python -m benchmarks.bench_rerank --msmt17 --gpu_ids 0   # --from_features's scores on GPU 0

N = 3,368 queries + 19,732 gallery = 23,100 images with the real Market-1501 names and
simulated 512-d features. Steps 6.1 (`gen_rerank_all_scores_mat.py`) and 6.2
(`evaluate_rerank_market.py`), and `evaluate_rerank_market.py --from_features`, run as the
processes a user starts; their wall time and peak resident memory are measured by the
operating system, and the printed lines of the two paths are compared. The original-style
references (benchmarks/reference.py) cannot run at this scale in reasonable time and memory: the
row-by-row 6.1 loop is timed on a few rows and scaled to N, and the dense 6.2 re-ranking is
compared with the project's on a smaller N in the same run.

MSMT17: N = 11,659 + 82,161 = 93,820 with the real names and sessions, 512-d: only
`evaluate_rerank.py --from_features` can run (all_scores.mat would be 35 GB): its time, its
peak memory and the largest file it wrote (goals 15 minutes, 6 GB, no file over 100 MB).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import reference as ref
from benchmarks.common import run_process, timed
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.datasets import MARKET, MSMT17
from streid.interchange import FeatureSet
from streid.rerank import re_ranking
from streid.st_model import smooth_histograms

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop_rows", type=int, default=40, help="rows of the 6.1 loop timed")
    parser.add_argument("--dense_n", type=int, default=7000, help="N for the dense 6.2 reference")
    parser.add_argument("--msmt17", action="store_true", help="also at MSMT17 scale")
    parser.add_argument("--gpu_ids", default="-1", help="--from_features's device (-1: CPU)")
    args = parser.parse_args(argv)

    distribution = real_histograms(MARKET)
    smoothed = smooth_histograms(distribution, 50)
    features = real_feature_set(MARKET, dim=512, seed=1)
    n = len(features.query) + len(features.gallery)

    print(f"Step 6 at Market-1501 scale: N = {n:,} images, 512-d features, real names")
    (t61, rss61, size), (t62, rss62, lines), (t_ff, rss_ff, lines_ff) = market_processes(
        features, distribution, args.gpu_ids
    )

    # The original's 6.1: one row at a time, a Python loop over N for the spatial-temporal
    # probability; timed on a few rows.
    rows = FeatureSet(features.query[: args.loop_rows], features.query[:0])
    everyone = FeatureSet(features.query, features.gallery)
    _, t_rows = timed(loop_rows, rows, everyone, smoothed)
    t_loop61 = t_rows * n / args.loop_rows

    # The original's 6.2 is dense (O, V and Jaccard are N x N): compare on a smaller N.
    small = FeatureSet(features.query[: args.dense_n // 7], features.gallery[: args.dense_n])
    small_n = len(small.query) + len(small.gallery)
    scores = ref.all_scores(small.query, small.gallery, smoothed).astype(np.float32)
    fast, t_fast = timed(re_ranking, len(small.query), scores)
    dense, t_dense = timed(ref.re_ranking, len(small.query), scores)

    print(f"{'':<34}{'seconds':>9}{'peak RSS':>10}  notes")
    print(
        f"{'6.1 gen_rerank_all_scores_mat.py':<34}{t61:>8.1f}s{rss61:>8.2f}GB  "
        f"goal < 30 s, < 4 GB; all_scores.mat {size:.2f} GB; original-style loop "
        f"{t_loop61 / 60:.0f} min (timed on {args.loop_rows} rows), {t_loop61 / t61:.0f}x"
    )
    print(
        f"{'6.2 evaluate_rerank_market.py':<34}{t62:>8.1f}s{rss62:>8.2f}GB  "
        f"goal < 60 s, < 4 GB; dense reference > 10 GB at this N"
    )
    print(f"{'':<34}{lines[-1]}")
    agree = "the same line" if lines_ff[-1] == lines[-1] else "ANOTHER LINE"
    print(
        f"{'6.2 --from_features' + gpu_label(args.gpu_ids):<34}{t_ff:>8.1f}s{rss_ff:>8.2f}GB  "
        f"{agree} as 6.1 + 6.2 ({t61 + t62:.1f}s together)"
    )
    same = "identical result" if np.array_equal(fast, dense) else "RESULTS DIFFER"
    print(
        f"re-ranking at N = {small_n:,}: project {t_fast:.2f}s, dense original-style "
        f"{t_dense:.1f}s, {t_dense / t_fast:.0f}x, {same}"
    )
    if args.msmt17:
        msmt17_scale(args.gpu_ids)
    return 0


def msmt17_scale(gpu_ids: str) -> None:
    """``evaluate_rerank.py --from_features`` at MSMT17 scale: time, memory, files."""
    features = real_feature_set(MSMT17, dim=512, seed=1)
    n = len(features.query) + len(features.gallery)
    print(f"\nStep 6 at MSMT17 scale: N = {n:,} images, 512-d features, real names, sessions")
    with tempfile.TemporaryDirectory() as tmp:
        write_run(Path(tmp), features, real_histograms(MSMT17), "bench", MSMT17.interval,
                  MSMT17.smooth)  # fmt: skip
        del features
        before = {p: p.stat().st_mtime_ns for p in Path(tmp).rglob("*")}
        command = [sys.executable, str(ROOT / "evaluate_rerank.py"), "--name", "bench"]
        wall, rss, lines = run_process([*command, "--from_features", "--gpu_ids", gpu_ids], tmp)
        written = [p for p in Path(tmp).rglob("*") if before.get(p) != p.stat().st_mtime_ns]
        largest = max((p.stat().st_size for p in written if p.is_file()), default=0)
    print(
        f"{'6.2 --from_features' + gpu_label(gpu_ids):<34}{wall / 60:>7.1f}min{rss:>7.2f}GB  "
        "goals < 15 min, < 6 GB; "
        f"{len(written)} files written, the largest {largest / 1e6:.1f} MB\n{'':<34}{lines[-1]}"
    )


def gpu_label(gpu_ids: str) -> str:
    """How a --from_features row names its device."""
    return "" if gpu_ids == "-1" else f" (GPU {gpu_ids})"


def market_processes(features, distribution, gpu_ids: str):
    """Steps 6.1 and 6.2, then 6.2 --from_features, as processes: (seconds, peak RSS in GB,
    and the size of all_scores.mat in GB or the output lines) of each."""
    python = [sys.executable]
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(Path(tmp), features, distribution, name="bench")
        t61, rss61, _ = run_process(
            [*python, str(ROOT / "gen_rerank_all_scores_mat.py"), "--name", "bench"], tmp
        )
        size = (run / "all_scores.mat").stat().st_size / 1e9
        rerank = [*python, str(ROOT / "evaluate_rerank_market.py"), "--name", "bench"]
        step62 = run_process(rerank, tmp)
        (run / "all_scores.mat").unlink()
        from_features = run_process([*rerank, "--from_features", "--gpu_ids", gpu_ids], tmp)
    return (t61, rss61, size), step62, from_features


def loop_rows(rows: FeatureSet, everyone: FeatureSet, smoothed):
    """The original 6.1's loop body for the rows in ``rows.query`` against everyone."""
    feats = ref.normalise(np.concatenate([everyone.query.features, everyone.gallery.features]))
    cams = np.concatenate([everyone.query.cams, everyone.gallery.cams])
    frames = np.concatenate([everyone.query.frames, everyone.gallery.frames])
    mine = ref.normalise(rows.query.features)
    for i in range(len(mine)):
        s = np.dot(feats, mine[i])
        p = ref.st_probability(rows.query.cams[i], rows.query.frames[i], cams, frames, smoothed)
        _ = 1 / (1 + np.exp(-5.0 * s)) * 1 / (1 + 2 * np.exp(-5.0 * p))


if __name__ == "__main__":
    main()
