"""--save_ranking K (steps 5 and 6.2): model/<name>/ranking.csv, the first K matches of each
query as the evaluation ranks them; the "made by" messages of a script's family; the
picture's time unit and camera labels from dataset.yaml."""

import csv
from dataclasses import replace

import numpy as np
import pytest

import evaluate_rerank
import evaluate_rerank_duke
import evaluate_rerank_market
import evaluate_st
import plot_st_distribution
from benchmarks.simulate import real_feature_set, real_histograms, write_run
from streid.dataset_yaml import write_spec
from streid.datasets import MARKET
from streid.fusion import Fusion, normalized, pair_scores
from streid.interchange import FeatureSet
from streid.st_model import SpatialTemporalModel
from tests.helpers import run_fails

K = 5


@pytest.fixture(scope="module")
def small_market():
    """30 real Market queries against about 500 of its gallery images: junk, distractors and
    queries without a true match included."""
    features = real_feature_set(MARKET, dim=32, seed=2, num_queries=30)
    g = features.gallery
    persons = np.isin(g.labels, features.query.labels[:25])  # 5 queries without their person
    others = np.flatnonzero(~persons)[::60]  # junk (-1), distractors (0) and other people
    pick = np.sort(np.concatenate([np.flatnonzero(persons), others]))
    return FeatureSet(features.query, g[pick]), real_histograms(MARKET)


@pytest.fixture
def run(tmp_path, monkeypatch, small_market):
    monkeypatch.chdir(tmp_path)
    return write_run(tmp_path, *small_market)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def expected_top(features, histograms, k):
    """Per query, the first k gallery indices by np.argsort of the negated joint score,
    skipping junk (same person and camera, or person -1), one image at a time."""
    st = SpatialTemporalModel.from_histograms(histograms, 50, 100)  # as step 5 builds it
    q, g = normalized(features.query), normalized(features.gallery)
    scores = pair_scores(q, g, st, Fusion(), "joint")
    top = []
    for i in range(len(q)):
        kept = []
        for j in np.argsort(-scores[i]):
            junk = g.labels[j] == -1 or (g.labels[j] == q.labels[i] and g.cams[j] == q.cams[i])
            if not junk:
                kept.append((int(j), float(scores[i, j])))
            if len(kept) == k:
                break
        top.append(kept)
    return top


def check_against_metrics(rows, metrics, num_queries):
    """The file's matches give the printed CMC: top-1 and top-K hits per query."""
    by_query = {}
    for row in rows:
        by_query.setdefault(int(row["query_index"]), []).append(int(row["match"]))
    assert sorted(by_query) == list(range(num_queries))
    hits1 = sum(m[0] for m in by_query.values())
    hits_k = sum(any(m[:K]) for m in by_query.values())
    assert hits1 / num_queries == pytest.approx(float(metrics.cmc[0]), abs=1e-6)
    assert hits_k / num_queries == pytest.approx(float(metrics.cmc[K - 1]), abs=1e-6)


def test_evaluate_st_writes_the_top_k_rows(run, small_market, capsys):
    features, histograms = small_market
    metrics = evaluate_st.main(["--name", "run", "--save_ranking", str(K)])
    out = capsys.readouterr().out
    assert f"wrote model/run/ranking.csv: {30 * K} rows, the first {K} of each query" in out
    rows = read_rows(run / "ranking.csv")
    assert list(rows[0]) == [
        "query_index", "query_person", "query_camera", "query_time", "rank", "gallery_index",
        "gallery_person", "gallery_camera", "gallery_time", "score", "match",
    ]  # fmt: skip
    q, g = features.query, features.gallery
    got = [(int(r["query_index"]), int(r["rank"]), int(r["gallery_index"])) for r in rows]
    top = expected_top(features, histograms, K)
    assert got == [(i, r + 1, j) for i, kept in enumerate(top) for r, (j, _) in enumerate(kept)]
    for row, (i, _, j) in zip(rows, got, strict=True):
        # float32 scores: BLAS may round the last bit of a product differently per call
        assert float(row["score"]) == pytest.approx(dict(top[i])[j], rel=1e-6)
        assert (int(row["query_person"]), int(row["query_camera"])) == (q.labels[i], q.cams[i])
        assert int(row["query_time"]) == q.frames[i]
        assert (int(row["gallery_person"]), int(row["gallery_camera"]), int(row["gallery_time"])) \
            == (g.labels[j], g.cams[j], g.frames[j])  # fmt: skip
        assert int(row["match"]) == int(g.labels[j] == q.labels[i] and g.cams[j] != q.cams[i])
    assert any(r["match"] == "0" for r in rows) and any(r["match"] == "1" for r in rows)
    check_against_metrics(rows, metrics, len(q))


def test_evaluate_st_writes_no_ranking_by_default(run, capsys):
    evaluate_st.main(["--name", "run"])
    assert not (run / "ranking.csv").exists()
    assert "ranking.csv" not in capsys.readouterr().out


def test_a_k_beyond_the_gallery_lists_every_non_junk_image(run, small_market):
    features, _ = small_market
    evaluate_st.main(["--name", "run", "--save_ranking", "100000", "--stream", "visual"])
    rows = read_rows(run / "ranking.csv")
    q, g = features.query, features.gallery
    for i in (0, 17):
        junk = (g.labels == -1) | ((g.labels == q.labels[i]) & (g.cams == q.cams[i]))
        mine = [r for r in rows if r["query_index"] == str(i)]
        assert len(mine) == int((~junk).sum())
        assert [int(r["rank"]) for r in mine] == list(range(1, len(mine) + 1))
        scores = [float(r["score"]) for r in mine]
        assert scores == sorted(scores, reverse=True)


def test_evaluate_rerank_writes_the_top_k_by_distance(run, small_market, capsys):
    features, _ = small_market
    argv = ["--name", "run", "--from_features", "--save_ranking", str(K)]
    metrics = evaluate_rerank_market.main(argv)
    assert f"wrote model/run/ranking.csv: {30 * K} rows" in capsys.readouterr().out
    rows = read_rows(run / "ranking.csv")
    assert "distance" in rows[0] and "score" not in rows[0]
    for i in range(30):
        mine = [float(r["distance"]) for r in rows if r["query_index"] == str(i)]
        assert mine == sorted(mine) and len(mine) == K
    check_against_metrics(rows, metrics, len(features.query))


@pytest.mark.parametrize(
    "script, made_by",
    [
        (evaluate_rerank, "step 3 (test_st.py, or your own features"),
        (evaluate_rerank_duke, "step 3 (test_st_duke.py, or your own features"),
        (evaluate_st, "step 3 (test_st_market.py / test_st_duke.py, or your own features"),
    ],
)
def test_missing_files_name_the_running_scripts_family(tmp_path, monkeypatch, capsys, script,
                                                       made_by):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model" / "run").mkdir(parents=True)
    err = run_fails(script.main, ["--name", "run"], capsys)
    assert err == f"error: model/run/pytorch_result.mat not found: it is made by {made_by} " \
        "in the same format, see the README)"  # fmt: skip


def test_the_picture_takes_dataset_yamls_unit_and_camera_labels(run, tmp_path, monkeypatch,
                                                                capsys):  # fmt: skip
    drawn = []
    monkeypatch.setattr(plot_st_distribution, "plot_st_distribution",
                        lambda *a: drawn.append(a[-2:]))  # fmt: skip
    spec = replace(MARKET, unit="seconds", extra={"cameras": {"north": 1, "gate 2": 2}})
    write_spec(spec, tmp_path)
    plot_st_distribution.main(["--name", "run", "--data_dir", str(tmp_path)])
    plot_st_distribution.main(["--name", "run"])
    assert drawn == [("seconds", {1: "north", 2: "gate 2"}), ("frames", None)]
    err = run_fails(plot_st_distribution.main, ["--name", "run", "--data_dir", "nowhere"], capsys)
    assert err == "error: --data_dir nowhere/ is not a folder"
