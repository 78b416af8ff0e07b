"""The elementwise work of steps 5 and 6 three ways: NumPy (the vectorised expressions the
project had), torch's CPU ops and the numba kernel (streid/kernels.py) it has now; the
evidence for the numba dependency.

    python -m benchmarks.bench_kernels            # about 1 minute on 2 cores

Times the work between the matrix product and the ranking, in the same run: step 5's joint
scores of one block of 256 queries against MSMT17's 82,161 gallery images (sessions), and
step 6's of one chunk of 128 columns of Market-1501's [query; gallery] set, from the same
similarities. Each way takes the exp of each pair, the table index, the lookup and Eqn. 9
(torch with streid/device_scores.py's operations, for a block of queries). numexpr, where
installed, is timed on the visual factor alone: it has no indexing, so the table lookup,
the larger part, would stay in NumPy. Also printed: whether each way gives NumPy's bits
(torch's ``exp`` rounds the last float32 bit otherwise).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.simulate import real_feature_set, real_histograms
from streid.datasets import MARKET, MSMT17
from streid.fusion import (
    Fusion,
    joint_block,
    normalized,
    pair_index,
    stream_scores,
    visual_factor,
)
from streid.interchange import Split
from streid.parallel import num_threads
from streid.st_model import SpatialTemporalModel

REPEAT = 3


def best_of(work) -> tuple[float, np.ndarray]:
    """The fastest of REPEAT runs of ``work()`` (seconds) and its last result."""
    best = np.inf
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def torch_joint(similarity, query, gallery, st, fusion: Fusion):
    """The joint score with torch's CPU ops, as the kernel computes it: float64 times (the
    bin is ``int(gap / interval)``), int32 cameras and indices."""

    def tensor(values, dtype):
        return torch.from_numpy(np.ascontiguousarray(values, dtype=dtype))

    q_cams, g_cams = tensor(query.cams - 1, np.int32)[:, None], tensor(gallery.cams - 1, np.int32)
    q_times, g_times = tensor(query.frames, np.float64)[:, None], tensor(gallery.frames, np.float64)
    q_later = q_times > g_times
    later = torch.where(q_later, q_cams, g_cams)
    earlier = torch.where(q_later, g_cams, q_cams)
    bins = (q_times - g_times).abs_().div_(float(st.interval))
    inside = bins < st.num_bins
    if query.sessions is not None:
        inside &= tensor(query.sessions, np.int32)[:, None] == tensor(gallery.sessions, np.int32)
    index = (later * st.num_cameras + earlier) * st.num_bins + bins.to(torch.int32)
    index = torch.where(inside, index, st.table.size - 1).long()  # torch.take's fastest
    denominator = tensor(st.st_denominator(fusion.lambda1, fusion.gamma1), np.float64)
    visual = visual_factor(torch.from_numpy(similarity), fusion, exp=torch.exp)
    return visual / torch.take(denominator, index)


def ways(similarity, query, gallery, st, transpose):
    """(name, work) of each way; every work returns the block's scores as float64."""
    fusion = Fusion()

    def numpy_way():
        scores = stream_scores("joint", similarity, pair_index(query, gallery, st), st, fusion)
        return scores.T if transpose else scores

    def torch_way():
        scores = torch_joint(similarity, query, gallery, st, fusion).numpy()
        return scores.T if transpose else scores

    natural = similarity.T.copy() if transpose else similarity  # step 6 multiplies it so

    def numba_way():
        return joint_block(natural.copy(), query, gallery, st, fusion, transpose=transpose)

    found = [("NumPy", numpy_way), (f"torch CPU ops ({torch.get_num_threads()} threads)",
              torch_way), (f"numba kernel ({num_threads()} threads)", numba_way)]  # fmt: skip
    try:
        import numexpr

        visual = lambda: numexpr.evaluate("1 / (1 + exp(-5 * s))", {"s": similarity})  # noqa: E731
        found.append(("numexpr, visual factor only", visual))
    except ImportError:
        pass
    return found


def compare(title: str, query, gallery, st, transpose: bool) -> None:
    similarity = query.features @ gallery.features.T
    pairs = similarity.size
    print(f"\n{title}: {pairs:,} pairs")
    reference = None
    for name, work in ways(similarity, query, gallery, st, transpose):
        seconds, scores = best_of(work)
        if reference is None:
            reference, base = scores, seconds
        same = scores.shape == reference.shape and np.array_equal(scores, reference)
        bits = "NumPy's bits" if same else "not NumPy's bits"
        print(f"  {name:<36} {1e3 * seconds:7.1f} ms  {1e9 * seconds / pairs:5.2f} ns/pair  "
              f"{base / seconds:5.1f}x  {bits}")  # fmt: skip


def main():
    msmt = real_feature_set(MSMT17, dim=512, seed=1, num_queries=256)
    st = SpatialTemporalModel.from_histograms(real_histograms(MSMT17), MSMT17.smooth,
                                              MSMT17.interval)  # fmt: skip
    query, gallery = normalized(msmt.query), normalized(msmt.gallery)
    compare("step 5, 256 queries x 82,161 MSMT17 gallery", query, gallery, st, False)
    market = real_feature_set(MARKET, dim=512, seed=1)
    everyone = normalized(Split.concatenate([market.query, market.gallery]))
    st = SpatialTemporalModel.from_histograms(real_histograms(MARKET), 50, 100)
    compare("step 6, 23,100 x 128 columns of Market-1501's [query; gallery]", everyone,
            everyone[1024:1152], st, True)  # fmt: skip


if __name__ == "__main__":
    main()
