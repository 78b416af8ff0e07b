"""The compiled passes of steps 5 and 6 (streid/kernels.py) against the NumPy expressions they
replace, bit for bit, on cases built for ties: equal times and bin edges, quantised scores,
rows whose nearest all sit together."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streid import fusion, nearest, parallel
from streid.errors import UserError
from streid.fusion import Fusion, compiled, joint_block, pair_index, stream_scores
from streid.interchange import Split
from streid.metrics import _counted_positions, _full_sort_positions, good_and_junk
from streid.rerank import row_sums
from streid.st_model import SpatialTemporalModel

ROOT = Path(__file__).resolve().parent.parent


def pairs_case(rng, num_q, num_g, interval, sessions=True, times=int):
    """Two splits on a coarse grid of times (equal times, gaps on bin edges and past the last
    of 5 bins), 3 cameras, 2 sessions; a spatial-temporal model with empty bins."""

    def split(n):
        feats = rng.standard_normal((n, 8)).astype(np.float32)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)
        steps = rng.integers(0, 30, n)
        frames = steps * (interval // 4) if times is int else steps * interval / 4
        session = rng.integers(0, 2, n) if sessions else None
        return Split(feats, rng.integers(0, 5, n), rng.integers(1, 4, n), frames, session)

    table = rng.random((3, 3, 5)) * (rng.random((3, 3, 5)) > 0.3)
    return split(num_q), split(num_g), SpatialTemporalModel(table, interval)


def numpy_scores(query, gallery, st, fusion_):
    similarity = query.features @ gallery.features.T
    return stream_scores("joint", similarity, pair_index(query, gallery, st), st, fusion_)


FUSIONS = [5, 5.0, Fusion(gamma0=3, gamma1=7, lambda0=0.5, lambda1=1.5), Fusion(lambda0=0.3)]


@pytest.mark.parametrize("fusion_", FUSIONS)
@pytest.mark.parametrize("interval, times", [(100, int), (12.5, float), (10, float)])
@pytest.mark.parametrize("sessions", [True, False])
def test_joint_block_is_numpys_joint_score_bit_for_bit(fusion_, interval, times, sessions):
    query, gallery, st = pairs_case(np.random.default_rng(3), 37, 2500, interval, sessions, times)
    expected = numpy_scores(query, gallery, st, fusion_)
    similarity = query.features @ gallery.features.T
    assert compiled(similarity, query, gallery, st, fusion_)
    got = joint_block(similarity.copy(), query, gallery, st, fusion_)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    # Step 6's orientation: the transpose, rounded to float32 as astype does.
    out = np.empty((len(gallery), len(query)), np.float32)
    joint_block(similarity.T.copy(), query, gallery, st, fusion_, out, transpose=True)
    np.testing.assert_array_equal(out, expected.T.astype(np.float32))


@pytest.mark.parametrize("piece", [1, 7, 2**19])
def test_joint_block_in_many_pieces_and_float64(monkeypatch, piece):
    # Pieces of one row or a few: every thread writes its own rows; float64 features keep
    # float64 similarities and visual factors.
    monkeypatch.setattr(fusion, "PIECE", piece * 300)
    query, gallery, st = pairs_case(np.random.default_rng(4), 23, 300, 100)
    query.features, gallery.features = (
        query.features.astype(np.float64),
        gallery.features.astype(np.float64),
    )
    similarity = query.features @ gallery.features.T
    got = joint_block(similarity, query, gallery, st, 5.0)
    np.testing.assert_array_equal(got, numpy_scores(query, gallery, st, 5.0))


def test_one_side_without_sessions_ignores_them():
    query, gallery, st = pairs_case(np.random.default_rng(5), 11, 200, 100)
    query.sessions = None
    got = joint_block(query.features @ gallery.features.T, query, gallery, st, 5)
    np.testing.assert_array_equal(got, numpy_scores(query, gallery, st, 5))


@given(
    q_frames=hnp.arrays(np.int64, 6, elements=st.integers(0, 12)),
    g_frames=hnp.arrays(np.int64, 40, elements=st.integers(0, 12)),
    cams=hnp.arrays(np.int64, 46, elements=st.integers(1, 3)),
    scale=st.sampled_from([25, 50, 100, 2**40]),
    start=st.sampled_from([0, 2**31 - 512, 2**52]),
)
def test_joint_block_on_bin_edges_equals_numpy(q_frames, g_frames, cams, scale, start):
    # Frames a quarter bin apart, from 0 or across 2**31 or near 2**53: gaps exactly on bin
    # edges, equal frames (the later camera is the gallery's) and gaps past the last bin.
    rng = np.random.default_rng(int(q_frames.sum()))
    interval = scale * 4
    feats = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 46)]
    frames = start + np.concatenate([q_frames, g_frames]) * scale
    both = Split(feats, np.zeros(46, np.int64), cams, frames)
    query, gallery = both[:6], both[6:]
    st_model = SpatialTemporalModel(rng.random((3, 3, 5)), interval)
    similarity = query.features @ gallery.features.T
    expected = numpy_scores(query, gallery, st_model, 5)
    if compiled(similarity, query, gallery, st_model, 5):
        got = joint_block(similarity, query, gallery, st_model, 5)
        np.testing.assert_array_equal(got, expected)
    else:  # times near 2**53 are not exact in float64: NumPy's integer path is kept
        assert start == 2**52
        np.testing.assert_array_equal(fusion.pair_scores(query, gallery, st_model, 5), expected)


def test_what_the_compiled_pass_leaves_to_numpy():
    query, gallery, st = pairs_case(np.random.default_rng(6), 3, 10, 100)
    similarity = query.features @ gallery.features.T
    assert compiled(similarity, query, gallery, st, 5)
    # A NumPy float64 parameter makes NumPy's visual factor float64.
    assert not compiled(similarity, query, gallery, st, Fusion(gamma0=np.float64(5)))
    assert not compiled(similarity, query, gallery, st, Fusion(lambda0=np.float64(2)))
    assert not compiled(similarity.astype(np.float16), query, gallery, st, 5)
    huge = SpatialTemporalModel(np.ones((3, 3, 5)), 2.0**51)  # 5 bins of 2**51: past 2**53
    assert not compiled(similarity, query, gallery, huge, 5)
    # Whatever path a block takes, the scores are the NumPy expression's.
    for fusion_ in (Fusion(gamma0=np.float64(5)), 5):
        got = fusion.pair_scores(query, gallery, st, fusion_)
        np.testing.assert_array_equal(got, numpy_scores(query, gallery, st, fusion_))


# -- the positions of the good images (step 5's and 6's CMC and mAP) -------------------------


def ranked_positions(scores, labels, cams, g_labels, g_cams, descending):
    """The original's way: sort each row, drop junk, find the good images."""
    keys = -scores if descending else scores
    return _full_sort_positions(keys, labels, cams, g_labels, g_cams)


def check_counted(scores, labels, cams, g_labels, g_cams, descending):
    """Checks _counted_positions against the full sort; returns the share of the true
    matches it counted (the rest were left to the full sort)."""
    good, junk = good_and_junk(labels, cams, g_labels, g_cams)
    rows, cols = np.nonzero(good)
    junk_rows, junk_cols = np.nonzero(junk & (g_labels != -1))
    got_rows, r, tied = _counted_positions(
        scores, descending, g_labels == -1, rows, cols, junk_rows, junk_cols
    )
    want_rows, want_r = ranked_positions(scores, labels, cams, g_labels, g_cams, descending)
    counted = ~np.isin(want_rows, tied)
    np.testing.assert_array_equal(got_rows, want_rows[counted])
    np.testing.assert_array_equal(r, want_r[counted])
    # A row goes to the full sort only when a good image ties with a non-junk image that
    # is not good: its position then depends on the sort.
    keys = -scores if descending else scores
    for row in tied:
        other = ~good[row] & ~junk[row]
        assert np.isin(keys[row, good[row]], keys[row, other]).any()
    return counted.mean() if len(counted) else 1.0


@given(data=st.data(), descending=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_counted_positions_equal_the_full_sort(data, descending, dtype):
    num_q, num_g = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 40))

    def ints(shape, lo, hi):
        return data.draw(hnp.arrays(np.int64, shape, elements=st.integers(lo, hi)))

    levels = data.draw(st.sampled_from([5, 1000]))  # ties everywhere, or few
    scores = (ints((num_q, num_g), 0, levels) / 4).astype(dtype)
    labels, cams = ints(num_q, -1, 3), ints(num_q, 1, 2)
    g_labels, g_cams = ints(num_g, -1, 3), ints(num_g, 1, 2)
    check_counted(scores, labels, cams, g_labels, g_cams, descending)


@pytest.mark.parametrize("levels, share_counted", [(4, 0), (50, 0), (10**6, 0.9)])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("shift", [0, -1])  # scores in [0, 1) or in [-1, 0)
def test_counted_positions_equal_the_full_sort_on_many_rows(levels, share_counted, descending,
                                                            shift):  # fmt: skip
    # 60 queries of 12 people against 400 images (two of the kernel's runs of entries it
    # passes over, the second one short), junk (-1) and distractors (0) among them.
    rng = np.random.default_rng(levels)
    scores = rng.integers(0, levels, (60, 400)) / levels + shift
    labels, cams = rng.integers(-1, 12, 60), rng.integers(1, 4, 60)
    g_labels, g_cams = rng.integers(-1, 12, 400), rng.integers(1, 4, 400)
    counted = check_counted(scores, labels, cams, g_labels, g_cams, descending)
    assert counted >= share_counted  # without ties, rows are counted, not sorted


def test_junk_ahead_of_a_good_image_does_not_count():
    # Gallery: the query's person in its own camera (junk), someone else, the query's person
    # in another camera (good), someone else. The good image is third, second without junk.
    scores = np.array([[0.9, 0.8, 0.1, 0.5]], np.float32)
    g_labels = np.array([1, 2, 1, 3])  # cameras 1, 1, 2, 1; the query: person 1, camera 1
    for descending, keys in ((True, scores), (False, -scores)):
        rows, r, tied = _counted_positions(keys, descending, g_labels == -1, np.array([0]),
                                           np.array([2]), np.array([0]), np.array([0]))  # fmt: skip
        assert (rows.tolist(), r.tolist(), tied.tolist()) == ([0], [2], [])


def test_counted_positions_of_nan_rows_go_to_the_full_sort():
    scores = np.array([[0.5, np.nan, 0.2, 0.9], [0.1, 0.2, 0.3, 0.4]], np.float32)
    rows, cols = np.array([0, 0, 1]), np.array([1, 2, 3])
    got_rows, r, tied = _counted_positions(
        scores, True, np.zeros(4, bool), rows, cols, np.zeros(0, int), np.zeros(0, int)
    )
    np.testing.assert_array_equal(tied, [0])  # a good image scored NaN
    np.testing.assert_array_equal(got_rows, [1])
    np.testing.assert_array_equal(r, [0])


# -- the nearest of each row of O (step 6's pass 1) -------------------------------------------


def original_nearest(block_t, k1):
    rows, row_max = nearest.distance_rows(block_t)
    return rows, row_max, np.argpartition(rows, range(1, k1 + 1), axis=1)[:, : k1 + 1]


def nearest_block(block_t, j0, k1, cache):
    """(row_max, initial, cached, values) that _nearest_block writes for rows j0.. of O."""
    n = len(block_t)
    out = (np.empty(n, block_t.dtype), np.empty((n, k1 + 1), np.int64),
           np.empty((n, cache), np.int64), np.empty((n, cache), block_t.dtype))  # fmt: skip
    nearest._nearest_block(block_t, j0, k1, *out)
    return out


def check_nearest(block_t, k1, cache):
    row_max, initial, cached, values = nearest_block(block_t, 0, k1, cache)
    rows, want_max, want_initial = original_nearest(block_t, k1)
    np.testing.assert_array_equal(row_max, want_max)
    np.testing.assert_array_equal(initial, want_initial)
    np.testing.assert_array_equal(values, np.take_along_axis(rows, cached, axis=1))
    for row, kept in zip(rows, cached, strict=True):  # the cache smallest, ties at its edge
        assert len(set(kept)) == cache
        assert row[kept].max() <= np.delete(row, kept).min()


@pytest.mark.parametrize("stripes", [1, 3, 64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nearest_rows_equal_argpartition_of_o(monkeypatch, stripes, dtype):
    monkeypatch.setattr(nearest, "STRIPES", stripes)  # 1: every score a tile of its own
    rng = np.random.default_rng(stripes)
    block_t = rng.random((40, 5000)).astype(dtype)
    block_t[::4] = np.round(block_t[::4] * 50) / 50  # quantised rows: ties among the nearest
    block_t[1, :100] += 1  # a row whose nearest are its first 100 scores
    block_t[2] = 0.25  # a row of one value
    block_t[3, -7:] = 2  # the largest scores in the last, shorter stripe
    check_nearest(block_t, 20, 64)
    check_nearest(block_t, 5, 9)


@given(data=st.data())
def test_nearest_rows_on_few_stripes_equal_argpartition(data):
    num = data.draw(st.integers(12, 60))
    block_t = data.draw(hnp.arrays(np.int64, (5, num), elements=st.integers(0, 6))) / 7
    k1 = data.draw(st.integers(1, 5))
    cache = data.draw(st.integers(k1 + 2, num - 1))
    stripes = nearest.STRIPES
    try:
        nearest.STRIPES = data.draw(st.integers(1, 4))
        check_nearest(block_t.astype(np.float32), k1, cache)
    finally:
        nearest.STRIPES = stripes


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nearest_rows_name_the_column_of_a_non_finite_score(bad):
    block_t = np.random.default_rng(0).random((30, 500)).astype(np.float32)
    block_t[17, 250] = bad
    with pytest.raises(UserError, match=r"NaN or inf values \(column 1017\)"):
        nearest_block(block_t, 1000, 20, 64)


# -- threads --------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["1", "2", "5"])
def test_for_ranges_covers_every_piece_once(monkeypatch, threads):
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    assert parallel.num_threads() == int(threads)
    seen = np.zeros(103, int)

    def work(start, stop):
        seen[start:stop] += 1

    parallel.for_ranges(work, 103, 10)
    np.testing.assert_array_equal(seen, 1)
    assert parallel.ranges(25, 10) == [(0, 10), (10, 20), (20, 25)]


def test_for_ranges_raises_what_a_piece_raised(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")

    def work(start, stop):
        if start == 30:
            raise ValueError("piece 30")

    with pytest.raises(ValueError, match="piece 30"):
        parallel.for_ranges(work, 100, 10)


def test_the_threads_default_to_the_usable_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert parallel.num_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    assert parallel.num_threads() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("setting, expected", [(None, "4"), ("9", "9")])
def test_openblas_threads_rest_between_products_unless_told_otherwise(setting, expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if setting is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = setting
    code = "import streid, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.strip() == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_sums_are_numpys_sum_of_each_row(dtype):
    # Rows of 0 to 300 values: NumPy sums up to 8 values in a row one by one, then in
    # unrolled blocks, and beyond 128 pairwise; stacked rows must be summed the same way.
    rng = np.random.default_rng(7)
    lengths = np.concatenate([np.arange(301), rng.integers(0, 301, 200)])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    values = (rng.random(indptr[-1]) * 10.0 ** rng.integers(-3, 4, indptr[-1])).astype(dtype)
    expected = [np.sum(values[a:b]) for a, b in zip(indptr[:-1], indptr[1:], strict=True)]
    sums = row_sums(values, indptr)
    assert sums.dtype == dtype
    np.testing.assert_array_equal(sums, expected)
