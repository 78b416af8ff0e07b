"""The embedded demo dataset: real Market-1501 names, rendered placeholder people.

``make demo`` needs no download: it takes the real file names of a subset of Market-1501
identities (so the real cameras, sequences and frames, hence the real time gaps between
cameras) and renders a 128 x 64 picture for each name. Every identity has its own clothing
(upper and lower colours from a small palette, a pattern, sleeves, trousers or shorts, maybe a
bag); every camera its own scene and lighting; every picture its own pose jitter, brightness
and noise. Colours repeat across identities and lighting shifts them, so appearance alone is
good but imperfect, as on the real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import MARKET

HEIGHT, WIDTH = 128, 64  # Market-1501's crops

# Clothing colours: few enough that identities share them.
PALETTE = np.array(
    [
        (200, 30, 30), (30, 60, 170), (25, 25, 25), (235, 235, 235), (40, 130, 50),
        (230, 200, 40), (120, 120, 120), (140, 80, 40), (230, 120, 30), (120, 40, 140),
        (90, 170, 210), (200, 150, 160),
    ],
    dtype=np.float64,
)  # fmt: skip
SKIN = np.array([(230, 190, 160), (200, 150, 110), (150, 100, 70), (100, 65, 45)], float)
HAIR = np.array([(20, 15, 10), (90, 60, 30), (170, 140, 90), (120, 120, 120)], float)
# Per camera: scene colour and lighting gain (R, G, B); camera ids 1-6.
SCENES = np.array(
    [(150, 150, 145), (120, 135, 110), (170, 160, 140), (95, 100, 120), (160, 150, 150),
     (130, 120, 110)],
    dtype=np.float64,
)  # fmt: skip
LIGHT = np.array(
    [(1.0, 1.0, 1.0), (1.12, 1.0, 0.82), (0.82, 0.92, 1.12), (0.72, 0.72, 0.78),
     (1.0, 1.12, 0.95), (1.22, 1.15, 1.08)]
)  # fmt: skip
PATTERNS = ("solid", "hstripes", "vstripes", "checks")


@dataclass(frozen=True)
class Look:
    """What a person wears: indices into the palettes, and the shape of the clothes."""

    upper: int
    second: int  # the pattern's other colour
    lower: int
    pattern: str
    skin: int
    hair: int
    short_sleeves: bool
    shorts: bool
    bag: int  # -1: none


FAMILIES = 60  # distinct outfits; several people wear each (with their own hair, skin, bag)


def look_of(person: int, seed: int = 0) -> Look:
    """The clothes of ``person``, the same in every picture of that person.

    People come in :data:`FAMILIES` of look-alikes: same outfit colours and pattern, their
    own skin, hair, sleeves and bag. Appearance alone confuses look-alikes; when and where
    they were seen tells them apart.
    """
    person_rng = np.random.default_rng([seed, person])
    family_rng = np.random.default_rng([seed, 1_000_000 + int(person_rng.integers(FAMILIES))])
    upper, second, lower = family_rng.choice(len(PALETTE), 3, replace=False)
    return Look(
        upper=int(upper),
        second=int(second),
        lower=int(lower),
        pattern=PATTERNS[family_rng.integers(len(PATTERNS))],
        skin=int(person_rng.integers(len(SKIN))),
        hair=int(person_rng.integers(len(HAIR))),
        short_sleeves=bool(person_rng.random() < 0.4),
        shorts=bool(family_rng.random() < 0.25),
        bag=int(person_rng.integers(len(PALETTE))) if person_rng.random() < 0.3 else -1,
    )


def _pattern(pattern: str, ty: np.ndarray, tx: np.ndarray) -> np.ndarray:
    """Where a pattern shows its second colour, at body coordinates (ty, tx)."""
    if pattern == "hstripes":
        return (ty // 6) % 2 == 1
    if pattern == "vstripes":
        return (tx // 5) % 2 == 1
    if pattern == "checks":
        return ((ty // 7) + (tx // 7)) % 2 == 1
    return np.zeros(ty.shape, dtype=bool)  # solid


def render(look: Look, camera: int, view, rng, junk: bool = False) -> np.ndarray:
    """One (HEIGHT, WIDTH, 3) uint8 picture of a person in ``look`` seen by ``camera``.

    Args:
        view: random generator of the tracklet (person, camera, sequence): background,
            framing, orientation and brightness, shared by the pictures of one passage, as
            consecutive detections are nearly alike.
        rng: random generator of this picture: small jitter and noise.
        junk: a badly cropped piece of a person (Market's ``-1`` detections).
    """
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    scene = SCENES[(camera - 1) % len(SCENES)]
    img = scene * (0.85 + 0.3 * yy[..., None] / HEIGHT)  # a floor-to-wall gradient
    img += view.normal(0, 10, (4, 2, 3)).repeat(HEIGHT // 4, 0).repeat(WIDTH // 2, 1)

    scale = view.uniform(0.82, 1.0) + rng.normal(0, 0.01)
    cx = WIDTH / 2 + view.uniform(-5, 5) + rng.uniform(-1.5, 1.5)
    top = view.uniform(2, 10) + rng.uniform(-1, 1) + (rng.uniform(-60, 40) if junk else 0)

    def box(y0, y1, x0, x1):
        return (
            (yy >= top + y0 * scale)
            & (yy < top + y1 * scale)
            & (xx >= cx + x0 * scale)
            & (xx < cx + x1 * scale)
        )

    def paint(mask, colour):
        img[mask] = colour

    upper, second = PALETTE[look.upper], PALETTE[look.second]
    skin = SKIN[look.skin]
    # Legs, then torso and arms, then head: later parts cover earlier ones.
    legs = box(62, 112, -12, -1) | box(62, 112, 1, 12)
    paint(legs, PALETTE[look.lower])
    if look.shorts:
        paint(legs & box(84, 112, -12, 12), skin)
    paint(box(112, 118, -13, -1) | box(112, 118, 1, 13), (30, 25, 20))
    torso = box(18, 64, -13, 13)
    paint(torso, upper)
    paint(torso & _pattern(look.pattern, (yy - top) / scale, (xx - cx) / scale), second)
    arms = box(20, 58, -19, -13) | box(20, 58, 13, 19)
    paint(arms, upper)
    if look.short_sleeves:
        paint(arms & box(34, 58, -19, 19), skin)
    if look.bag >= 0:
        paint(box(40, 62, 13, 22), PALETTE[look.bag])
    head = ((yy - top - 10 * scale) / (8 * scale)) ** 2 + ((xx - cx) / (6.5 * scale)) ** 2 < 1
    paint(head, skin)
    paint(head & (yy < top + 8 * scale), HAIR[look.hair])

    if view.random() < 0.5:
        img = img[:, ::-1]
    img *= LIGHT[(camera - 1) % len(LIGHT)] * view.uniform(0.8, 1.2) * rng.uniform(0.97, 1.03)
    img += rng.normal(0, 9, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def choose_names(
    train_ids: int = 100,
    per_id: int = 10,
    query_ids: int = 100,
    other_ids: int = 40,
    junk: int = 150,
    distractors: int = 250,
    seed: int = 0,
) -> dict[str, list[str]]:
    """A subset of the real Market-1501 names, by raw folder.

    Args:
        train_ids: training identities, with up to ``per_id`` images each, spread over
            their cameras (the histograms of step 4 come from these).
        query_ids: test identities whose query images are all kept, with all their
            gallery images.
        other_ids: further test identities in the gallery only (wrong matches).
        junk, distractors: gallery images labelled -1 and 0000.

    Returns:
        {"bounding_box_train": [...], "query": [...], "bounding_box_test": [...]}.
    """
    rng = np.random.default_rng(seed)

    def pid(name):
        return name.split("_")[0]

    train = MARKET.name_list("train")
    by_id: dict[str, list[str]] = {}
    for name in train:
        by_id.setdefault(pid(name), []).append(name)
    chosen = []
    for person in sorted(rng.choice(sorted(by_id), train_ids, replace=False)):
        names = by_id[person]
        # Round-robin over the cameras so each identity keeps its camera pairs.
        by_cam: dict[str, list[str]] = {}
        for name in names:
            by_cam.setdefault(name.split("_")[1][:2], []).append(name)
        spread = [n for group in zip_longest_lists(list(by_cam.values())) for n in group]
        chosen += spread[:per_id]

    query, gallery = MARKET.name_list("query"), MARKET.name_list("gallery")
    query_people = sorted({pid(n) for n in query})
    picked = set(rng.choice(query_people, query_ids, replace=False))
    test_people = sorted({pid(n) for n in gallery} - {"-1", "0000"} - picked)
    others = set(rng.choice(test_people, other_ids, replace=False))
    junk_names = [n for n in gallery if pid(n) == "-1"]
    distractor_names = [n for n in gallery if pid(n) == "0000"]
    gallery_names = [n for n in gallery if pid(n) in picked or pid(n) in others]
    gallery_names += list(rng.choice(junk_names, junk, replace=False))
    gallery_names += list(rng.choice(distractor_names, distractors, replace=False))
    return {
        "bounding_box_train": sorted(chosen),
        "query": sorted(n for n in query if pid(n) in picked),
        "bounding_box_test": sorted(gallery_names),
    }


def zip_longest_lists(groups: list[list[str]]):
    """[[a1, a2], [b1]] -> [a1, b1], [a2]: the i-th element of every group, in turn."""
    for i in range(max(len(g) for g in groups)):
        yield [g[i] for g in groups if i < len(g)]


def write_dataset(root: Path, names: dict[str, list[str]], seed: int = 0) -> int:
    """Render every name into ``root/<raw folder>/<name>`` (JPEG); returns the image count."""
    count = 0
    for folder, files in names.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in files:
            m = MARKET.check_raw_name(name)
            person, camera, sequence = int(m["person"]), int(m["camera"]), int(m["seq"])
            if person <= 0:  # junk and distractors: somebody else each time
                person = 10_000 + count
            view = np.random.default_rng([seed, person, camera, sequence])
            rng = np.random.default_rng([seed, count])
            pixels = render(look_of(person, seed), camera, view, rng, junk=int(m["person"]) == -1)
            Image.fromarray(pixels).save(root / folder / name, quality=90)
            count += 1
    return count
