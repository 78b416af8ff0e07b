"""Step 4 without identity labels (streid.label_free, streid.same_person): the Jaccard graph
against the dense reference, the pseudo-identities, and the pieces of the rounds' score."""

import re
from dataclasses import replace

import numpy as np
import pytest

from benchmarks import reference as ref
from benchmarks.simulate import real_names, simulated_features, train_targets
from streid import label_free
from streid.datasets import MARKET
from streid.errors import UserError
from streid.interchange import Split
from streid.label_free import (
    Clustering,
    cross_camera_walks,
    jaccard_graph,
    learn_rounds,
    pairwise_precision_recall,
)
from streid.matfile import ArrayColumns
from streid.same_person import (
    SamePersonColumns,
    chance_histograms,
    log_ratio_table,
    visual_log_odds,
)
from streid.st_model import SpatialTemporalModel, camera_pair_histograms, smooth_histograms

SETTINGS = (8, 5000, 100)  # Market-1501's cameras, bins, frames per bin


def identities_of(size: int, count: int, dim: int = 32, noise: float = 0.05, seed: int = 0):
    """``count`` real Market-1501 training identities seen by two cameras or more, ``size``
    images each (their first), with features that tell everyone apart."""
    names = real_names(MARKET, "train")[1]
    picked = []
    for person in np.unique(names.labels):
        mine = np.flatnonzero(names.labels == person)
        if len(mine) >= size and len(np.unique(names.cams[mine])) >= 2:
            picked.extend(mine[:size])
        if len(picked) == size * count:
            break
    picked = np.array(picked)
    labels, cams, frames = names.labels[picked], names.cams[picked], names.frames[picked]
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((labels.max() + 1, dim))
    feats = centres[labels] + noise * rng.standard_normal((len(labels), dim))
    return Split(feats.astype(np.float32), labels, cams, frames)


def same_partition(a, b) -> bool:
    """Whether two labellings group the images alike (up to renaming)."""
    pairs = np.unique(np.stack([a, b]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


def test_well_separated_identities_are_found_in_every_round():
    # Eight images per person and k1 = 7: each image's k-reciprocal neighbours are exactly
    # its person's, so the pseudo-identities must be the identities, and the histograms
    # step 4's own from the labels, bit for bit.
    train = identities_of(size=8, count=40)
    targets = train_targets(train.labels)
    supervised = camera_pair_histograms(targets, train.cams, train.frames, *SETTINGS)
    rounds = list(learn_rounds(train, *SETTINGS, 50, Clustering(rounds=3, k1=7, k2=2)))
    assert [r.number for r in rounds] == [1, 2, 3]
    for r in rounds:
        assert (r.pseudo >= 0).all() and same_partition(r.pseudo, targets)
        np.testing.assert_array_equal(r.histograms, supervised)
        assert (r.precision, r.recall) == (1.0, 1.0)
        assert r.walks == cross_camera_walks(targets, train.cams, None) > 30


@pytest.fixture(scope="module")
def noisy_market():
    """1,500 real Market-1501 training images of 90 people, appearance hard enough that
    the clustering makes mistakes."""
    names = real_names(MARKET, "train")[1]
    keep = np.isin(names.labels, np.unique(names.labels)[:90])
    labels, cams, frames = names.labels[keep], names.cams[keep], names.frames[keep]
    feats = simulated_features(labels, cams, dim=128, noise=1.2, seed=4, split_seed=3)
    return Split(feats, labels, cams, frames)


def test_the_labels_are_never_read(noisy_market):
    def run(labels):
        train = replace(noisy_market, features=noisy_market.features.copy(), labels=labels)
        return list(learn_rounds(train, *SETTINGS, 50, Clustering(rounds=2, k1=10)))

    truth = run(noisy_market.labels)
    permuted = run(np.random.default_rng(0).permutation(noisy_market.labels))
    blank = run(np.full(len(noisy_market), -1))
    assert truth[-1].recall < 0.95 and truth[-1].pseudo.max() > 50  # a real clustering
    for other in (permuted, blank):
        for a, b in zip(truth, other, strict=True):
            np.testing.assert_array_equal(a.pseudo, b.pseudo)
            np.testing.assert_array_equal(a.histograms, b.histograms)
    assert blank[0].precision is None and "precision" not in blank[0].summary(2)
    assert "pairwise precision" in truth[0].summary(2)


def test_two_sessions_of_one_pseudo_identity_are_two_walks():
    # Each person walks from camera 1 to camera 2 on two days, at the same clock times.
    train = identities_of(size=8, count=30)
    persons = np.unique(train.labels, return_inverse=True)[1]
    within = np.arange(len(train)) % 8
    cams = np.where(within % 4 < 2, 1, 2)
    frames = 10_000 * persons + 300 * (cams - 1) + within
    sessions = (within >= 4).astype(np.int64)
    train = Split(train.features, train.labels, cams, frames, sessions)
    [done] = learn_rounds(train, *SETTINGS, 50, Clustering(rounds=1, k1=7, k2=2))
    assert same_partition(done.pseudo, persons)
    assert done.walks == 60  # 30 people x 2 sessions, each seen by both cameras
    hist = camera_pair_histograms(persons, cams, frames, *SETTINGS, sessions=sessions)
    np.testing.assert_array_equal(done.histograms, hist)
    # Each walk counts its 300-frame gap once: 60 gaps in bin 3, camera 2 after camera 1.
    counts = np.zeros(SETTINGS[1])
    counts[3] = 60
    np.testing.assert_allclose(done.histograms[1, 0], counts / (60 + 1e-7))
    one_session = camera_pair_histograms(persons, cams, frames, *SETTINGS)
    assert not np.array_equal(done.histograms, one_session)


def tied_similarities(num: int, seed: int) -> np.ndarray:
    """A symmetric similarity matrix of ``num`` images with many exact ties."""
    rng = np.random.default_rng(seed)
    s = np.round(rng.random((num, num)) * 8) / 8
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    return s.astype(np.float32)


@pytest.mark.parametrize("k1, k2", [(20, 6), (5, 1), (3, 4), (7, 2)])
@pytest.mark.parametrize("num, block", [(40, 128), (90, 16), (33, 7)])
def test_jaccard_graph_equals_the_dense_reference(k1, k2, num, block):
    s = tied_similarities(num, seed=num + k1)
    k1 = min(k1, num - 1)
    _, v = ref.k_reciprocal_encoding(s, k1, k2)
    dense = ref.jaccard(v, num)
    whole = jaccard_graph(ArrayColumns(s), k1, k2, eps=1.0, block=block).toarray()
    # Distances at or below 0 (an image and itself; float32 can give -2e-7) are stored as
    # the smallest positive float: DBSCAN takes no negative distance, sparse code no zero.
    np.testing.assert_array_equal(whole, np.maximum(dense, np.finfo(float).tiny))
    near = jaccard_graph(ArrayColumns(s), k1, k2, eps=0.5, block=block)
    stored = np.zeros((num, num), dtype=bool)
    stored[near.nonzero()] = True
    np.testing.assert_array_equal(stored, dense <= 0.5)
    assert (near.diagonal() > 0).all()  # each image is its own neighbour


def brute_pairs(pseudo, labels):
    same_p, same_l = [], []
    known = np.flatnonzero(labels >= 0)
    for x, i in enumerate(known):
        for j in known[x + 1 :]:
            same_p.append(pseudo[i] == pseudo[j] and pseudo[i] >= 0)
            same_l.append(labels[i] == labels[j])
    same_p, same_l = np.array(same_p), np.array(same_l)
    both = (same_p & same_l).sum()
    return both / max(same_p.sum(), 1), both / max(same_l.sum(), 1)


@pytest.mark.parametrize("seed", range(6))
def test_pairwise_precision_and_recall_count_pairs(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 5, 40)  # -1: unknown, left out
    pseudo = rng.integers(-1, 6, 40)  # -1: alone, with no pair
    assert pairwise_precision_recall(pseudo, labels) == pytest.approx(brute_pairs(pseudo, labels))


def test_cross_camera_walks_count_walks_of_two_cameras():
    pseudo = np.array([0, 0, 0, 1, 1, 2, 2, 2, -1, -1])
    cams = np.array([1, 2, 2, 3, 3, 1, 2, 3, 1, 2])
    assert cross_camera_walks(pseudo, cams, None) == 2  # 0 and 2; 1 has one camera
    sessions = np.array([0, 1, 1, 0, 0, 0, 0, 1, 0, 0])
    assert cross_camera_walks(pseudo, cams, sessions) == 1  # (2, day 0); 0's days: 1 camera
    assert cross_camera_walks(np.full(4, -1), cams[:4], None) == 0


def test_chance_histograms_count_every_pair_of_two_cameras():
    rng = np.random.default_rng(1)
    cams = rng.integers(1, 4, 60)
    frames = rng.integers(0, 900, 60)
    sessions = rng.integers(0, 2, 60)
    got = chance_histograms(cams, frames, sessions, 4, 12, 100)
    expected = np.zeros((4, 4, 12))
    for key in (0, 1):
        mine = np.flatnonzero(sessions == key)
        first = frames[mine].min()
        for i in mine:
            for j in mine:
                gap = (frames[i] - first) // 100 - (frames[j] - first) // 100
                if cams[i] != cams[j] and gap >= 0:
                    expected[cams[i] - 1, cams[j] - 1, gap] += 1
    expected /= expected.sum(axis=2, keepdims=True) + 1e-7
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_visual_log_odds_follow_the_pseudo_identities():
    train = identities_of(size=8, count=40, noise=0.5)
    feats = train.features / np.linalg.norm(train.features, axis=1, keepdims=True)
    persons = np.unique(train.labels, return_inverse=True)[1]
    a, b = visual_log_odds(feats, persons, train.cams)
    assert b > 5 and a + b * 0.9 > 0 > a + b * 0.1  # alike: same person; unlike: not
    # Fewer people in the same images: a same-person pair is more likely a priori.
    merged = persons // 2
    assert visual_log_odds(feats, merged, train.cams)[0] > a
    assert visual_log_odds(feats, np.full(len(persons), -1), train.cams) == (0.0, 0.0)


def test_same_person_columns_are_the_scaled_log_odds():
    train = identities_of(size=8, count=12, noise=0.5)
    normal = replace(train, features=train.features / np.linalg.norm(train.features, axis=1,
                                                                      keepdims=True))  # fmt: skip
    persons = np.unique(train.labels, return_inverse=True)[1]
    hist = camera_pair_histograms(persons, train.cams, train.frames, *SETTINGS)
    st = SpatialTemporalModel(smooth_histograms(hist, 5), 100)
    chance = chance_histograms(train.cams, train.frames, None, 8, 5000, 100)
    ratio = log_ratio_table(st, chance, 5)
    columns = SamePersonColumns(normal, st, ratio, -3.0, 12.0)
    full = columns.columns_t(0, len(train)).T  # S[:, :]
    assert np.abs(full).max() <= 0.5
    i, j = np.triu_indices(len(train), 1)
    np.testing.assert_allclose(columns.entries(i, j), full[i, j], atol=1e-6)
    logit = -3.0 + 12.0 * (normal.features[i] * normal.features[j]).sum(1)
    logit += ratio[st.table_index(train.cams[i], train.frames[i], train.cams[j], train.frames[j])]
    np.testing.assert_allclose(full[i, j], logit * columns.scale, atol=1e-6)
    same_camera = train.cams[i] == train.cams[j]  # no time evidence: the look alone
    visual = -3.0 + 12.0 * (normal.features[i] * normal.features[j]).sum(1)
    np.testing.assert_allclose(full[i, j][same_camera], (visual * columns.scale)[same_camera],
                               atol=1e-6)  # fmt: skip
    assert ratio[-1] == 0 and (ratio[:-1].reshape(8, 8, -1)[np.arange(8), np.arange(8)] == 0).all()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rounds": 0}, "--rounds must be at least 1"),
        ({"eps": 1.0}, "--eps must be between 0 and 1"),
        ({"min_samples": 0}, "--min_samples must be at least 1"),
        ({"k1": 320}, "--k1 must be between 1 and 319"),
        ({"k2": 9, "k1": 7}, "--k2 between 1 and k1 + 1"),
    ],
)
def test_settings_out_of_range(change, message):
    train = identities_of(size=8, count=40)
    with pytest.raises(UserError, match=re.escape(message)):
        next(learn_rounds(train, *SETTINGS, 50, Clustering(**change)))


def test_a_round_without_a_cross_camera_walk_keeps_the_last_one(monkeypatch, capsys):
    train = identities_of(size=8, count=40)
    real, calls = label_free.cluster, []

    def nobody_in_round_2(graph, clustering):
        calls.append(1)
        found = real(graph, clustering)
        return np.full_like(found, -1) if len(calls) == 2 else found

    monkeypatch.setattr(label_free, "cluster", nobody_in_round_2)
    rounds = list(learn_rounds(train, *SETTINGS, 50, Clustering(rounds=3, k1=7, k2=2)))
    assert [r.number for r in rounds] == [1] and len(calls) == 2
    assert capsys.readouterr().err == (
        "note: round 2 found no pseudo-identity seen by two cameras (0 pseudo-identities, 320 "
        "of 320 images unclustered); round 1's model is kept\n"
    )
