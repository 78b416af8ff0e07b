"""Step 5's ranking at MSMT17 scale: RankingEvaluator against the full sort of every row.

    python -m benchmarks.bench_ranking            # about 1-2 minutes on 2 cores

11,659 queries x 82,161 gallery images with the real MSMT17 labels and cameras
(streid/names/msmt17/list_query.txt and list_gallery.txt) and simulated 512-d float32 features
(identity centre + camera shift + noise, benchmarks/simulate.py), L2-normalised; the scores are
cosine similarities, computed per block of queries. Prints the seconds of the similarity
blocks, of the project's ranking + CMC/mAP (RankingEvaluator.add) over all queries, of the
full ``np.argsort`` of every row that it replaced (:class:`FullSortEvaluator`, which
tests/test_ranking.py also compares with RankingEvaluator; timed on a sample of blocks and
scaled to all queries, as said in the output), their ratio, the fraction of rows that still
needed a full sort (a good image tied with a wrong match), whether the two agree exactly on
the sampled queries, and the peak memory.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from benchmarks.simulate import real_names, simulated_features
from streid.datasets import MSMT17
from streid.fusion import normalize_rows
from streid.metrics import RankingEvaluator, good_and_junk


class FullSortEvaluator(RankingEvaluator):
    """``RankingEvaluator.add`` as it was before: ``np.argsort`` of every full row, then the
    same accumulation of AP and CMC."""

    def add(self, scores, query_labels, query_cams):
        order = np.argsort(-scores if self.descending else scores, axis=1)
        good, junk = good_and_junk(
            query_labels, query_cams, self.g_labels[order], self.g_cams[order]
        )
        position = np.cumsum(~junk, axis=1, dtype=np.int64) - 1  # rank after junk removal

        rows, cols = np.nonzero(good)  # row-major: each query's good images in rank order
        self._accumulate(rows, position[rows, cols], scores.shape[0])


def features(labels, cams, split_seed, dim):
    """Simulated features, L2-normalised; MSMT17's person 0000 is a real person, so only -1
    would get a random feature (there is none in MSMT17)."""
    feats = simulated_features(labels, cams, dim=dim, seed=1, split_seed=split_seed, loners=(-1,))
    return normalize_rows(feats, out=feats)


def compare(fast, slow) -> str:
    same = (
        np.array_equal(fast.cmc, slow.cmc)
        and fast.ap.tobytes() == slow.ap.tobytes()
        and fast.mAP == slow.mAP
        and np.array_equal(fast.first_good, slow.first_good)
    )
    return "identical" if same else "DIFFERENT"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--block_size", type=int, default=256)
    parser.add_argument(
        "--old_blocks", type=int, default=8, help="blocks the full sort is timed on (spread out)"
    )
    args = parser.parse_args(argv)

    query, gallery = (real_names(MSMT17, split)[1] for split in ("query", "gallery"))
    q_labels, q_cams, g_labels, g_cams = query.labels, query.cams, gallery.labels, gallery.cams
    qf, gf = features(q_labels, q_cams, 0, args.dim), features(g_labels, g_cams, 1, args.dim)
    nq, ng = len(q_labels), len(g_labels)
    starts = list(range(0, nq, args.block_size))
    sampled = set(np.linspace(0, len(starts) - 1, min(args.old_blocks, len(starts)), dtype=int))
    print(f"Step 5's ranking at MSMT17 scale: {nq:,} queries x {ng:,} gallery, {args.dim}-d")

    new = RankingEvaluator(g_labels, g_cams)  # all queries
    new_sampled = RankingEvaluator(g_labels, g_cams)  # the sampled blocks, to compare
    old = FullSortEvaluator(g_labels, g_cams)  # the sampled blocks
    t_sim = t_new = t_old = 0.0
    n_old = 0
    for k, start in enumerate(starts):
        b = slice(start, start + args.block_size)
        t0 = time.perf_counter()
        scores = qf[b] @ gf.T
        t1 = time.perf_counter()
        new.add(scores, q_labels[b], q_cams[b])
        t2 = time.perf_counter()
        t_sim, t_new = t_sim + t1 - t0, t_new + t2 - t1
        if k in sampled:
            new_sampled.add(scores, q_labels[b], q_cams[b])
            t3 = time.perf_counter()
            old.add(scores, q_labels[b], q_cams[b])
            t_old += time.perf_counter() - t3
            n_old += len(scores)
    t_old_all = t_old * nq / n_old
    fast, slow = new_sampled.result(), old.result()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    print(f"{'similarity blocks (matrix products)':<40} {t_sim:>7.1f}s")
    print(f"{'ranking + CMC/mAP, new':<40} {t_new:>7.1f}s")
    print(
        f"{'ranking + CMC/mAP, full argsort':<40} {t_old_all:>7.1f}s  (timed on {n_old:,} "
        f"queries in {len(sampled)} blocks: {t_old:.1f}s, scaled to {nq:,})"
    )
    print(f"{'ratio':<40} {t_old_all / t_new:>7.1f}x")
    print(
        f"{'rows fully sorted (tie at a good image)':<40} {new.full_sorts / nq:>8.2%}  "
        f"({new.full_sorts:,} of {nq:,} queries)"
    )
    print(
        f"{'new vs full argsort, sampled queries':<40} {compare(fast, slow):>8}  {fast.summary()}"
    )
    print(f"{'all queries':<40} {'':>8}  {new.result().summary()}")
    print(f"{'similarity + new ranking':<40} {t_sim + t_new:>7.1f}s, peak memory {peak:.2f} GB")
    return 0


if __name__ == "__main__":
    main()
