"""Plain-loop references of the original's computations, written from docs/original.md.

These follow the original scripts statement by statement (per-element Python loops, dense
matrices) and are slow on purpose: the vectorised code in ``streid`` must give the same
numbers. The tests compare with them, and the benchmarks time them.
"""

from __future__ import annotations

import math

import numpy as np

# -- step 1 ------------------------------------------------------------------------------------
# docs/original.md's table, written out again as an independent reference for the renaming.
SEQUENCE_FRAMES = {
    11: 72681, 12: 74546, 13: 74881, 14: 74661, 15: 74891, 16: 54346,
    21: 163691, 22: 164677, 23: 98102,
    31: 161708, 32: 161769, 33: 104469,
    41: 72107, 42: 72373, 43: 74810, 44: 74541, 45: 74910, 46: 50616,
    51: 161095, 52: 161724, 53: 103487,
    61: 87551, 62: 131268, 63: 95817, 64: 30952,
}  # fmt: skip


def market_rename(name):
    """prepare.py's parse_frame: PPPP_cCsS_FFFFFF_BB.jpg -> PPPP_cC_fGGGGGGG_BB.jpg."""
    fields = name.strip().split("_")
    cam, seq, frame = int(fields[1][1]), int(fields[1][3]), int(fields[2])
    total = sum(SEQUENCE_FRAMES.get(int(str(cam) + str(i)), 0) for i in range(1, seq)) + frame
    return fields[0] + "_c" + str(cam) + "_f" + f"{str(total):0>7}" + "_" + fields[-1]


# -- step 4 ------------------------------------------------------------------------------------
def histograms(labels, cams, frames, num_classes, num_cameras=8, num_bins=5000, interval=100.0):
    eps = 0.0000001
    st_sum = np.zeros((num_classes, num_cameras))
    st_count = np.zeros((num_classes, num_cameras))
    for i in range(len(cams)):
        st_sum[labels[i]][cams[i] - 1] += frames[i]
        st_count[labels[i]][cams[i] - 1] += 1
    st_avg = st_sum / (st_count + eps)
    dist = np.zeros((num_cameras, num_cameras, num_bins))
    for i in range(num_classes):
        for j in range(num_cameras - 1):
            for k in range(j + 1, num_cameras):
                if st_count[i][j] == 0 or st_count[i][k] == 0:
                    continue
                if st_avg[i][j] > st_avg[i][k]:
                    dist[j][k][int((st_avg[i][j] - st_avg[i][k]) / interval)] += 1
                else:
                    dist[k][j][int((st_avg[i][k] - st_avg[i][j]) / interval)] += 1
    sums = np.sum(dist, axis=2)
    for i in range(num_cameras):
        for j in range(num_cameras):
            dist[i][j][:] = dist[i][j][:] / (sums[i][j] + eps)
    return dist


def histograms_with_sessions(labels, sessions, cams, frames, num_cameras, num_bins, interval):
    """Step 4 with sessions, from their definition: a walk is one (person, session); per
    walk and camera the mean frame, sum / (count + 1e-7); a walk's camera pairs counted as
    the original counts a person's."""
    eps = 0.0000001
    walks = {}
    for i in range(len(labels)):
        sums, counts = walks.setdefault(
            (labels[i], sessions[i]), ([0.0] * num_cameras, [0] * num_cameras)
        )
        sums[cams[i] - 1] += float(frames[i])
        counts[cams[i] - 1] += 1
    dist = np.zeros((num_cameras, num_cameras, num_bins))
    for sums, counts in walks.values():
        avg = [sums[c] / (counts[c] + eps) for c in range(num_cameras)]
        for j in range(num_cameras - 1):
            for k in range(j + 1, num_cameras):
                if counts[j] == 0 or counts[k] == 0:
                    continue
                if avg[j] > avg[k]:
                    dist[j][k][int((avg[j] - avg[k]) / interval)] += 1
                else:
                    dist[k][j][int((avg[k] - avg[j]) / interval)] += 1
    sums = np.sum(dist, axis=2)
    for i in range(num_cameras):
        for j in range(num_cameras):
            dist[i][j][:] = dist[i][j][:] / (sums[i][j] + eps)
    return dist


# -- step 5 ------------------------------------------------------------------------------------
def smooth(distribution, sigma):
    """Banded-matrix Gaussian smoothing of every histogram, then renormalisation."""
    dist = np.array(distribution, dtype=np.float64)
    n = dist.shape[2]
    x = np.arange(n, dtype=np.float64)
    g = 1.0 / (sigma * math.sqrt(2 * math.pi)) * np.exp(-np.power(x, 2) / (2 * sigma**2))
    band = int(math.floor(3 * sigma))
    matrix = np.zeros((n, n))
    for i in range(n):
        width = min(band + 1, n - i)
        matrix[i, i : i + width] = g[:width]
    matrix = matrix + matrix.T
    matrix[np.arange(n), np.arange(n)] /= 2
    c = dist.shape[0]
    flat = dist.reshape(c * c, n)
    out = (matrix @ flat.T).T.reshape(dist.shape)
    sums = np.sum(out, axis=2)
    for i in range(c):
        for j in range(c):
            out[i][j][:] = out[i][j][:] / (sums[i][j] + 0.0000001)
    return out


def compute_ap_cmc(index, good_index, junk_index):
    """The original's compute_mAP for one query (good never intersects junk here)."""
    ap = 0.0
    cmc = np.zeros(len(index), dtype=np.int64)
    if good_index.size == 0:
        cmc[0] = -1
        return ap, cmc
    index = index[np.isin(index, junk_index, invert=True)]
    ngood = len(good_index)
    rows_good = np.flatnonzero(np.isin(index, good_index))
    cmc[rows_good[0] :] = 1
    for i in range(ngood):
        d_recall = 1.0 / ngood
        precision = (i + 1) * 1.0 / (rows_good[i] + 1)
        old_precision = i * 1.0 / rows_good[i] if rows_good[i] != 0 else 1.0
        ap = ap + d_recall * (old_precision + precision) / 2
    return ap, cmc


def good_and_junk(ql, qc, gl, gc):
    query_index = np.flatnonzero(gl == ql)
    camera_index = np.flatnonzero(gc == qc)
    good = np.setdiff1d(query_index, camera_index, assume_unique=True)
    junk = np.append(np.intersect1d(query_index, camera_index), np.flatnonzero(gl == -1))
    if ql == -1:  # the original crashes here; the project skips such a query
        good = np.array([], dtype=np.int64)
    return good, junk


def st_probability(qc, qfr, gc, gfr, dist, interval=100, qs=None, gs=None):
    """The original's per-gallery loop, with the project's 0 beyond the last bin and, where
    sessions ``qs`` (the query's) and ``gs`` are given, 0 between two sessions."""
    p = np.zeros(len(gc))
    for i in range(len(gc)):
        if qs is not None and gs is not None and qs != gs[i]:
            p[i] = 0.0
        elif qfr > gfr[i]:
            b = int((qfr - gfr[i]) / interval)
            p[i] = dist[qc - 1][gc[i] - 1][b] if b < dist.shape[2] else 0.0
        else:
            b = int((gfr[i] - qfr) / interval)
            p[i] = dist[gc[i] - 1][qc - 1][b] if b < dist.shape[2] else 0.0
    return p


def normalise(f):
    return (f.transpose() / np.power(np.sum(np.power(f, 2), axis=1), 0.5)).transpose()


def evaluate(query, gallery, smoothed, alpha=5.0, stream="joint", interval=100, similarity=None):
    """Step 5 as the original: one query at a time. Returns (cmc float32, mAP, aps).

    ``similarity`` (Q x G), if given, replaces the per-query ``np.dot``: a matrix product
    rounds differently in the last float32 bit, which can swap near-tied gallery images, so
    the tests of the ranking logic share the similarities to compare bit for bit.
    """
    qf, gf = normalise(query.features), normalise(gallery.features)
    cmc_sum = np.zeros(len(gallery.labels), dtype=np.int64)
    ap_sum, aps = 0.0, []
    for i in range(len(query.labels)):
        ql, qc, qfr = query.labels[i], query.cams[i], query.frames[i]
        score = np.dot(gf, qf[i]) if similarity is None else similarity[i]
        qs = None if query.sessions is None else query.sessions[i]
        p = st_probability(
            qc, qfr, gallery.cams, gallery.frames, smoothed, interval, qs, gallery.sessions
        )
        if stream == "joint":
            score = 1 / (1 + np.exp(-alpha * score)) * 1 / (1 + 2 * np.exp(-alpha * p))
        elif stream == "st":
            score = p
        index = np.argsort(-score)
        good, junk = good_and_junk(ql, qc, gallery.labels, gallery.cams)
        ap, cmc = compute_ap_cmc(index, good, junk)
        aps.append(ap)
        if cmc[0] == -1:
            continue
        cmc_sum = cmc_sum + cmc
        ap_sum += ap
    cmc = cmc_sum.astype(np.float32) / np.float32(len(query.labels))
    return cmc, ap_sum / len(query.labels), np.array(aps)


# -- step 6 ------------------------------------------------------------------------------------
def all_scores(query, gallery, smoothed, alpha=5.0, interval=100):
    """Step 6.1 as the original: one row of the [query; gallery] matrix at a time."""
    feats = normalise(np.concatenate([query.features, gallery.features]))
    cams = np.concatenate([query.cams, gallery.cams])
    frames = np.concatenate([query.frames, gallery.frames])
    sessions = None
    if query.sessions is not None and gallery.sessions is not None:
        sessions = np.concatenate([query.sessions, gallery.sessions])
    scores = np.zeros((len(cams), len(cams)))
    for i in range(len(cams)):
        s = np.dot(feats, feats[i])
        qs = None if sessions is None else sessions[i]
        p = st_probability(cams[i], frames[i], cams, frames, smoothed, interval, qs, sessions)
        scores[i, :] = 1 / (1 + np.exp(-alpha * s)) * 1 / (1 + 2 * np.exp(-alpha * p))
    return scores


def k_reciprocal_neighbours(initial_rank, i, k1):
    forward = initial_rank[i, : k1 + 1]
    backward = initial_rank[forward, : k1 + 1]
    return forward[np.where(backward == i)[0]]


def k_reciprocal_encoding(all_dist, k1=20, k2=6):
    """docs/original.md step 6.2 up to the Jaccard: (O, V) of a similarity matrix, dense."""
    original_dist = 2.0 - 2 * all_dist
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argpartition(original_dist, range(1, k1 + 1))
    all_num = original_dist.shape[0]
    for i in range(all_num):
        k_reciprocal_index = k_reciprocal_neighbours(initial_rank, i, k1)
        expansion = k_reciprocal_index
        for candidate in k_reciprocal_index:
            cand = k_reciprocal_neighbours(initial_rank, candidate, int(np.around(k1 / 2)))
            if len(np.intersect1d(cand, k_reciprocal_index)) > 2.0 / 3 * len(cand):
                expansion = np.append(expansion, cand)
        expansion = np.unique(expansion)
        weight = np.exp(-original_dist[i, expansion])
        V[i, expansion] = 1.0 * weight / np.sum(weight)
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    return original_dist, V


def jaccard(V, rows):
    """The Jaccard distance of each of ``rows`` to every image, as the original's loop."""
    all_num = V.shape[0]
    inv_index = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard_dist = np.zeros((rows, all_num), dtype=np.float32)
    for i in range(rows):
        temp_min = np.zeros(shape=[1, all_num], dtype=np.float32)
        non_zero = np.where(V[i, :] != 0)[0]
        for c in non_zero:
            images = inv_index[c]
            temp_min[0, images] = temp_min[0, images] + np.minimum(V[i, c], V[images, c])
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    return jaccard_dist


def re_ranking(query_num, all_dist, k1=20, k2=6, lambda_value=0.3):
    """Dense k-reciprocal re-ranking of a similarity matrix, as docs/original.md step 6.2."""
    original_dist, V = k_reciprocal_encoding(all_dist, k1, k2)
    original_dist = original_dist[:query_num,]
    jaccard_dist = jaccard(V, query_num)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]


def evaluate_distances(final_dist, query, gallery):
    """Step 6.2's evaluation: ascending distance. Returns (cmc float32, mAP)."""
    cmc_sum = np.zeros(len(gallery.labels), dtype=np.int64)
    ap_sum = 0.0
    for i in range(len(query.labels)):
        index = np.argsort(final_dist[i])
        good, junk = good_and_junk(query.labels[i], query.cams[i], gallery.labels, gallery.cams)
        ap, cmc = compute_ap_cmc(index, good, junk)
        if cmc[0] == -1:
            continue
        cmc_sum = cmc_sum + cmc
        ap_sum += ap
    return cmc_sum.astype(np.float32) / np.float32(len(query.labels)), ap_sum / len(query.labels)
