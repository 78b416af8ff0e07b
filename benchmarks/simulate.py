"""Simulated inputs for the benchmarks and the tests: real names, made-up features."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from streid.artifacts import DISTRIBUTION_FILE, FEATURES_FILE
from streid.datasets import MSMT17, NAME_LIST_DIR, DatasetSpec, Names
from streid.interchange import FeatureSet, Split, save_distribution, save_features
from streid.st_model import camera_pair_histograms


def real_names(spec: DatasetSpec, split: str) -> tuple[list[str], Names]:
    """Prepared names of a real split and what they say."""
    names = [spec.prepared_name(n) for n in spec.name_list(split)]
    return names, spec.parse_names(names)


def real_split(
    spec: DatasetSpec, split: str
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Prepared names of a real split and their (labels, cams, frames)."""
    names, parsed = real_names(spec, split)
    return names, parsed.labels, parsed.cams, parsed.frames


def train_targets(labels: np.ndarray) -> np.ndarray:
    """ImageFolder class indices of training labels (classes are the sorted id folders)."""
    return np.unique(labels, return_inverse=True)[1]


@functools.cache
def real_histograms(spec: DatasetSpec) -> np.ndarray:
    """Step 4's histograms from the real training names of ``spec`` (MSMT17: train and val,
    with sessions), computed once; do not modify the array."""
    splits = ("train", "val") if spec.key == "msmt17" else ("train",)
    parsed = [real_names(spec, split)[1] for split in splits]
    labels, cams, frames = (
        np.concatenate([getattr(p, f) for p in parsed]) for f in Names._fields[:3]
    )
    sessions = None if parsed[0].sessions is None else np.concatenate([p.sessions for p in parsed])
    return camera_pair_histograms(
        train_targets(labels),
        cams,
        frames,
        spec.num_cameras,
        spec.num_bins,
        spec.interval,
        sessions,
    )


def write_run(
    root: Path, features: FeatureSet, distribution, name="run", interval=100, smooth=50
) -> Path:
    """``root/model/<name>/`` holding step 3's and step 4's files, as a user's run would."""
    run = root / "model" / name
    run.mkdir(parents=True, exist_ok=True)
    save_features(run / FEATURES_FILE, features.query, features.gallery)
    save_distribution(run / DISTRIBUTION_FILE, distribution, interval, smooth)
    return run


def simulated_features(
    labels, cams, dim=64, noise=1.2, seed=0, split_seed=0, dtype=np.float32, loners=(-1, 0)
):
    """Identity centre + camera shift + noise: good but imperfect appearance features.

    Centres and camera shifts depend on ``seed`` only, so query and gallery features of the
    same person agree; the noise depends on ``split_seed`` too. Images labelled ``loners``
    (Market's junk -1 and distractors 0; for MSMT17, whose person 0 is real, only -1) get a
    random feature each.

    ``split_seed`` 0 replays the centres' own random stream as the noise (NumPy's
    ``SeedSequence`` ignores trailing zeros: ``[seed, 0]`` seeds as ``seed``), so that the
    noise of image i is the centre of person i: kept as it is, since the figures measured
    with it must stay reproducible; new code passes ``split_seed`` 1 or more.
    """
    labels = np.asarray(labels)
    world = np.random.default_rng(seed)
    centres = world.standard_normal((int(labels.max()) + 1, dim))
    camera_shift = 0.5 * world.standard_normal((int(np.max(cams)) + 1, dim))
    rng = np.random.default_rng([seed, split_seed])
    feats = centres[np.maximum(labels, 0)] + camera_shift[cams]
    feats += noise * rng.standard_normal((len(labels), dim))
    alone = np.isin(labels, loners)
    feats[alone] = 1.5 * rng.standard_normal((int(alone.sum()), dim))
    return feats.astype(dtype)


def real_feature_set(spec: DatasetSpec, dim=64, seed=0, num_queries=None) -> FeatureSet:
    """A FeatureSet on the real query/gallery names of ``spec`` (sessions included) with
    simulated features."""
    # Market's and Duke's person 0 are distractors; MSMT17's is a real person.
    loners = (-1, 0) if spec.key in ("market", "duke") else (-1,)
    splits = []
    for k, split in enumerate(("query", "gallery")):
        names = real_names(spec, split)[1]
        feats = simulated_features(
            names.labels, names.cams, dim=dim, seed=seed, split_seed=k, loners=loners
        )
        splits.append(Split(feats, *names))
    query, gallery = splits
    if num_queries is not None:
        pick = np.random.default_rng(seed).choice(len(query), num_queries, replace=False)
        query = query[np.sort(pick)]
    return FeatureSet(query, gallery)


# MSMT17_V1's list files and the folder that holds each one's images.
MSMT17_LISTS = {"train": "train", "val": "train", "query": "test", "gallery": "test"}


def msmt17_raw(root: Path, persons=None) -> Path:
    """``root/MSMT17_V1`` as shipped: its four lists and the images as empty files; only
    the images of ``persons`` (4-digit ids, train and test alike) where given."""
    raw = root / "MSMT17_V1"
    raw.mkdir(parents=True, exist_ok=True)
    for split, folder in MSMT17_LISTS.items():
        lines = (NAME_LIST_DIR / MSMT17.list_dir / f"list_{split}.txt").read_text().splitlines()
        if persons is not None:
            lines = [line for line in lines if line[:4] in persons]
        (raw / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            path = raw / folder / line.split()[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    return raw
