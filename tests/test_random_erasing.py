"""random_erasing.py: the original's RandomErasing, box for box under a seeded ``random``."""

from __future__ import annotations

import math
import random

import pytest
import torch

from random_erasing import RandomErasing


def reference_erase(img, probability=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0.4914, 0.4822, 0.4465)):
    """The original's algorithm, written from docs/original.md."""
    if random.uniform(0, 1) > probability:
        return img
    c, height, width = img.shape
    for _ in range(100):
        target_area = random.uniform(sl, sh) * height * width
        aspect = random.uniform(r1, 1 / r1)
        h = int(round(math.sqrt(target_area * aspect)))
        w = int(round(math.sqrt(target_area / aspect)))
        if w < width and h < height:
            x1 = random.randint(0, height - h)
            y1 = random.randint(0, width - w)
            for ch in range(3 if c == 3 else 1):
                img[ch, x1 : x1 + h, y1 : y1 + w] = mean[ch]
            return img
    return img


@pytest.mark.parametrize("shape", [(3, 384, 192), (3, 24, 12), (1, 16, 8), (3, 3, 3)])
@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_same_boxes_as_the_original(shape, probability):
    for seed in range(20):
        img = torch.rand(shape)
        random.seed(seed)
        expected = reference_erase(img.clone(), probability)
        state = random.getstate()
        random.seed(seed)
        got = RandomErasing(probability=probability)(img.clone())
        assert torch.equal(got, expected)
        assert random.getstate() == state  # the same number of draws


def test_erases_in_place_with_the_given_mean():
    random.seed(3)
    img = torch.ones(3, 64, 32)
    out = RandomErasing(probability=1.0, mean=[0.0, 0.0, 0.0])(img)
    assert out is img
    erased = (img == 0).all(0)
    assert erased.any() and (img[:, ~erased] == 1).all()
    rows, cols = erased.any(1).nonzero(), erased.any(0).nonzero()
    box = erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert box.all()  # one rectangle
    assert 0.02 * 64 * 32 * 0.8 <= box.numel() <= 0.4 * 64 * 32 * 1.2


def test_tiny_image_left_alone_after_100_tries():
    random.seed(0)
    img = torch.rand(3, 1, 1)  # no box fits a 1x1 image
    assert torch.equal(RandomErasing(probability=1.0)(img.clone()), img)
