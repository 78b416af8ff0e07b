"""The ranking of :class:`RankingEvaluator` (a sort of the scores, a full ``np.argsort`` only for
rows with ties that matter) against the full ``np.argsort`` of every row it replaced: the same
CMC, the same AP bit for bit, the same first good positions, ties included."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmarks import reference as ref
from benchmarks.bench_ranking import FullSortEvaluator
from streid.metrics import RankingEvaluator, good_and_junk


def run(cls, scores, query, gallery, descending=True, block_size=None):
    """(metrics, evaluator) of ``cls`` over ``scores`` in blocks of ``block_size`` queries."""
    evaluator = cls(*gallery, descending=descending)
    block_size = block_size or len(scores)
    for s in range(0, len(scores), block_size):
        b = slice(s, s + block_size)
        evaluator.add(scores[b], query[0][b], query[1][b])
    return evaluator.result(), evaluator


def assert_same_as_full_sort(scores, query, gallery, descending=True, block_size=None):
    """The new ranking equals the full sort exactly; returns the rows it fully sorted."""
    fast, evaluator = run(RankingEvaluator, scores, query, gallery, descending, block_size)
    slow, _ = run(FullSortEvaluator, scores, query, gallery, descending, block_size)
    assert fast.cmc.dtype == slow.cmc.dtype == np.float32
    np.testing.assert_array_equal(fast.cmc, slow.cmc)
    assert fast.ap.dtype == slow.ap.dtype and fast.ap.tobytes() == slow.ap.tobytes()
    assert fast.mAP == slow.mAP
    np.testing.assert_array_equal(fast.first_good, slow.first_good)
    assert fast.summary() == slow.summary()
    return fast, evaluator.full_sorts


def int_arrays(shape, low, high):
    return hnp.arrays(np.int64, shape, elements=st.integers(low, high))


@given(
    data=st.data(),
    num_queries=st.integers(1, 12),
    num_gallery=st.integers(1, 40),
    levels=st.sampled_from([2, 4, 30, 10**6]),
    dtype=st.sampled_from([np.float32, np.float64]),
    descending=st.booleans(),
    with_nan=st.booleans(),
)
def test_equals_the_full_sort_on_cases_full_of_ties(
    data, num_queries, num_gallery, levels, dtype, descending, with_nan
):
    # Scores on a grid of `levels` values: from ties everywhere to hardly any. Labels -1
    # (junk) and 0 (distractor) in the gallery, -1 and 5 (never in the gallery) as queries.
    scores = data.draw(int_arrays((num_queries, num_gallery), 0, levels - 1)).astype(dtype)
    if with_nan:  # NaN is ranked last by np.argsort, whichever direction
        scores[data.draw(int_arrays((num_queries, num_gallery), 0, 5)) == 0] = np.nan
    query = data.draw(int_arrays(num_queries, -1, 5)), data.draw(int_arrays(num_queries, 1, 3))
    gallery = data.draw(int_arrays(num_gallery, -1, 4)), data.draw(int_arrays(num_gallery, 1, 3))
    block_size = data.draw(st.integers(1, num_queries))
    fast, _ = assert_same_as_full_sort(scores, query, gallery, descending, block_size)
    # And each query's AP equals the original's compute_mAP on np.argsort of its row.
    for i in range(num_queries):
        good, junk = ref.good_and_junk(query[0][i], query[1][i], *gallery)
        index = np.argsort(-scores[i] if descending else scores[i])
        assert fast.ap[i] == ref.compute_ap_cmc(index, good, junk)[0]


def by_hand_case(scores):
    """One query (person 7, camera 1) against [good, same-camera 7 (junk), -1 (junk),
    distractor 0, good, person 3]."""
    gallery = np.array([7, 7, -1, 0, 7, 3]), np.array([2, 1, 2, 2, 3, 1])
    query = np.array([7]), np.array([1])
    return np.array([scores], dtype=np.float64), query, gallery


def test_good_images_tied_with_junk_need_no_full_sort():
    # The good image 0 is tied with both junk images; whichever np.argsort puts first, it
    # sits at position 1 (after the distractor; junk is not counted), the other at 3.
    scores, query, gallery = by_hand_case([0.8, 0.8, 0.8, 0.9, 0.1, 0.2])
    fast, full_sorts = assert_same_as_full_sort(scores, query, gallery)
    assert full_sorts == 0
    np.testing.assert_array_equal(fast.first_good, [1])
    assert fast.ap[0] == pytest.approx(0.5 * (0 + 1 / 2) / 2 + 0.5 * (1 / 3 + 2 / 4) / 2)


def test_tied_good_images_need_no_full_sort():
    scores, query, gallery = by_hand_case([0.5, 0.1, 0.1, 0.9, 0.5, 0.2])
    fast, full_sorts = assert_same_as_full_sort(scores, query, gallery)
    assert full_sorts == 0
    np.testing.assert_array_equal(fast.first_good, [1])  # positions 1 and 2 either way


@pytest.mark.parametrize("descending", [True, False])
def test_a_good_image_tied_with_a_distractor_is_fully_sorted(descending):
    scores, query, gallery = by_hand_case([0.5, 0.1, 0.1, 0.5, 0.7, 0.2])
    _, full_sorts = assert_same_as_full_sort(scores, query, gallery, descending)
    assert full_sorts == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_row_fully_sorted(dtype):
    # All scores equal: every query with a good image is tied with a wrong match.
    rng = np.random.default_rng(3)
    query = rng.integers(-1, 30, 40), rng.integers(1, 4, 40)
    gallery = rng.integers(-1, 25, 500), rng.integers(1, 4, 500)
    scores = np.full((40, 500), 0.25, dtype=dtype)
    _, full_sorts = assert_same_as_full_sort(scores, query, gallery, block_size=16)
    with_good = good_and_junk(*query, *gallery)[0].any(axis=1).sum()
    assert full_sorts == with_good > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("descending", [True, False])
def test_realistic_scores_with_some_ties(dtype, descending):
    # Continuous scores (few ties) and a grid of 1/64 (many): only the rows where a good
    # image ties with a wrong match are fully sorted.
    rng = np.random.default_rng(4)
    query = rng.integers(0, 60, 300), rng.integers(1, 7, 300)
    gallery = (
        np.where(rng.random(3001) < 0.1, -1, rng.integers(0, 60, 3001)),
        rng.integers(1, 7, 3001),
    )
    scores = rng.random((300, 3001)).astype(dtype)
    scores[::3] = np.round(scores[::3] * 64) / 64
    _, full_sorts = assert_same_as_full_sort(scores, query, gallery, descending, 64)
    assert 0 < full_sorts < 300


def test_integer_scores_use_the_full_sort():
    rng = np.random.default_rng(5)
    query = rng.integers(0, 5, 20), rng.integers(1, 3, 20)
    gallery = rng.integers(-1, 5, 70), rng.integers(1, 3, 70)
    scores = rng.integers(0, 1000, (20, 70))
    assert_same_as_full_sort(scores, query, gallery, block_size=7)


def test_a_block_without_good_images():
    scores = np.array([[0.3, 0.2], [0.1, 0.4]])
    fast, full_sorts = assert_same_as_full_sort(scores, ([5, -1], [1, 1]), ([1, -1], [2, 2]))
    assert full_sorts == 0 and fast.mAP == 0
    np.testing.assert_array_equal(fast.first_good, [-1, -1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argsort_of_some_rows_equals_those_rows_of_the_block(dtype):
    # The full sort of the tied rows alone must order ties as np.argsort of the whole block
    # did (each row is sorted on its own, wherever it lies in memory). Long rows of an odd
    # length, full of ties.
    x = np.random.default_rng(6).integers(0, 8, (48, 20011)).astype(dtype)
    block = np.argsort(x, axis=1)
    rows = np.array([1, 2, 7, 30, 47])
    np.testing.assert_array_equal(np.argsort(x[rows], axis=1), block[rows])
    np.testing.assert_array_equal(np.argsort(-x[rows], axis=1), np.argsort(-x, axis=1)[rows])
    for i in rows:
        np.testing.assert_array_equal(np.argsort(x[i]), block[i])
        np.testing.assert_array_equal(np.argsort(x[i, :-1]), np.argsort(x[:, :-1], axis=1)[i])
    # The test means something: this np.argsort does not keep ties in index order.
    assert not np.array_equal(block, np.argsort(x, axis=1, kind="stable"))
