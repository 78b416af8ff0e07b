"""Property tests: the vectorised code against the plain-loop references on random small cases
built to be full of ties (coarse frames, quantised scores, few cameras and labels)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmarks import reference as ref
from streid.evaluation import evaluate
from streid.interchange import Split
from streid.label_free import jaccard_graph
from streid.matfile import ArrayColumns
from streid.rerank import re_ranking_columns
from streid.st_model import SpatialTemporalModel, camera_pair_histograms


def int_arrays(n, low, high):
    return hnp.arrays(np.int64, n, elements=st.integers(low, high))


@st.composite
def training_sets(draw):
    """(labels, cams, frames): a few identities and cameras, frames on a coarse grid so that
    equal means and gaps of exactly k bins are common."""
    n = draw(st.integers(1, 50))
    labels = draw(int_arrays(n, 0, 6))
    cams = draw(int_arrays(n, 1, 4))
    frames = draw(int_arrays(n, 0, 12)) * draw(st.sampled_from([25, 50, 100]))
    return labels, cams, frames


@given(training_sets())
def test_histograms_equal_the_reference(data):
    labels, cams, frames = data
    fast = camera_pair_histograms(labels, cams, frames, 4, 13, 100)
    slow = ref.histograms(labels, cams, frames, int(labels.max()) + 1, 4, 13, 100.0)
    np.testing.assert_array_equal(fast, slow)


@given(
    q_cam=st.integers(1, 3),
    q_frame=st.integers(0, 40),
    g_cams=int_arrays(30, 1, 3),
    g_frames=int_arrays(30, 0, 40),
    interval=st.sampled_from([100, 50, 12.5, 10]),
    start=st.sampled_from([0, 2**31 - 512]),
)
def test_probability_lookup_equals_the_reference(q_cam, q_frame, g_cams, g_frames, interval, start):
    # Frames on a grid of a quarter bin: gaps land exactly on bin edges and past the last of
    # the 6 bins. Interval 100 keeps integer frames; the others make frames that are not
    # whole numbers (times in seconds, say), which take the floating-point path. Frames across
    # 2**31 (times in milliseconds, say) must not overflow.
    step = interval // 4 if interval % 4 == 0 else interval / 4
    q_frame, g_frames = start + q_frame * step, start + g_frames * step
    dist = np.random.default_rng(q_cam).random((3, 3, 6))
    fast = SpatialTemporalModel(dist, interval).probability(q_cam, q_frame, g_cams, g_frames)
    slow = ref.st_probability(q_cam, q_frame, g_cams, g_frames, dist, interval)
    np.testing.assert_array_equal(fast, slow)


def splits(labels, cams):
    return Split(np.zeros((len(labels), 0), np.float32), labels, cams, np.zeros_like(labels))


@given(data=st.data(), num_queries=st.integers(1, 12), num_gallery=st.integers(1, 25))
def test_cmc_and_map_equal_the_reference(data, num_queries, num_gallery):
    # Distances on a 4-level grid: many exact ties, resolved by np.argsort as the original.
    distances = data.draw(int_arrays((num_queries, num_gallery), 0, 3)).astype(np.float32)
    query = splits(
        data.draw(int_arrays(num_queries, -1, 4)), data.draw(int_arrays(num_queries, 1, 3))
    )
    gallery = splits(
        data.draw(int_arrays(num_gallery, -1, 4)), data.draw(int_arrays(num_gallery, 1, 3))
    )
    block_size = data.draw(st.integers(1, num_queries))
    fast = evaluate(
        lambda b: distances[b],
        query.labels,
        query.cams,
        gallery.labels,
        gallery.cams,
        descending=False,
        block_size=block_size,
    )
    cmc, mAP = ref.evaluate_distances(distances, query, gallery)
    np.testing.assert_array_equal(fast.cmc, cmc)
    assert fast.mAP == mAP


@given(data=st.data(), num=st.integers(4, 36), dtype=st.sampled_from([np.float32, np.float64]))
def test_re_ranking_equals_the_dense_reference(data, num, dtype):
    # Similarities in {0, 1/4, 1/2, 3/4}: a column of 1s would make the distances 0 / 0.
    scores = data.draw(int_arrays((num, num), 0, 3)).astype(dtype) / 4
    query_num = data.draw(st.integers(1, num - 1))
    k1 = data.draw(st.integers(1, min(num - 1, 8)))
    k2 = data.draw(st.integers(1, k1 + 1))
    lambda_value = data.draw(st.sampled_from([0.0, 0.3, 1.0]))
    block, query_block = data.draw(st.integers(1, num)), data.draw(st.integers(1, query_num))
    cache = data.draw(st.integers(1, num + 2))  # at most num; below k1 + 2 it is raised to it
    fast = re_ranking_columns(
        ArrayColumns(scores),
        query_num,
        k1,
        k2,
        lambda_value,
        progress=False,
        block=block,
        query_block=query_block,
        cache=cache,
    )
    np.testing.assert_array_equal(fast, ref.re_ranking(query_num, scores, k1, k2, lambda_value))


@given(data=st.data(), num=st.integers(4, 36))
def test_jaccard_graph_equals_the_dense_reference(data, num):
    # Step 4 --unlabeled's Jaccard of every pair, on non-symmetric similarities full of ties.
    scores = data.draw(int_arrays((num, num), 0, 3)).astype(np.float32) / 4
    k1 = data.draw(st.integers(1, min(num - 1, 8)))
    k2 = data.draw(st.integers(1, k1 + 1))
    eps = data.draw(st.sampled_from([0.3, 0.6, 1.0]))
    graph = jaccard_graph(ArrayColumns(scores), k1, k2, eps, block=data.draw(st.integers(1, num)))
    _, v = ref.k_reciprocal_encoding(scores, k1, k2)
    dense = ref.jaccard(v, num)
    expected = np.where(dense <= eps, np.maximum(dense, np.finfo(float).tiny), 0)
    np.testing.assert_array_equal(graph.toarray(), expected)
