"""Image transforms of steps 2 and 3: the original's, with the input size as a parameter.

The default input size reproduces the original exactly: 384x192 for PCB, 256x128 (the random
crop, from a 288x144 resize) otherwise. Another size scales every step the same way, so small
CPU runs keep the original's proportions.
"""

from __future__ import annotations

import math
import random

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomErasing:
    """Random Erasing (Zhong et al., 2017), exactly as the original's random_erasing.py.

    With probability ``probability``, tries up to 100 times to pick a box of area
    U(sl, sh) * H * W and aspect ratio U(r1, 1/r1) that fits the image, and fills it with
    ``mean`` (per channel). Draws from Python's ``random`` module, like the original, so a
    seeded ``random`` gives the same boxes.

    Args:
        probability: chance of erasing an image.
        sl, sh: smallest and largest erased fraction of the area.
        r1: smallest aspect ratio (height / width) of the box; the largest is 1 / r1.
        mean: fill value per channel.
    """

    def __init__(self, probability=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0.4914, 0.4822, 0.4465)):
        self.probability = probability
        self.mean = mean
        self.sl = sl
        self.sh = sh
        self.r1 = r1

    def __call__(self, img):
        """Erase a box of ``img``, a (C, H, W) tensor, in place; returns ``img``."""
        if random.uniform(0, 1) > self.probability:
            return img
        _, height, width = img.size()
        for _attempt in range(100):
            area = height * width
            target_area = random.uniform(self.sl, self.sh) * area
            aspect_ratio = random.uniform(self.r1, 1 / self.r1)
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < width and h < height:
                x1 = random.randint(0, height - h)
                y1 = random.randint(0, width - w)
                # As the original: three channels get their own mean, any other count mean[0].
                channels = 3 if img.size(0) == 3 else 1
                for c in range(channels):
                    img[c, x1 : x1 + h, y1 : y1 + w] = self.mean[c]
                return img
        return img

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(probability={self.probability}, sl={self.sl}, "
            f"sh={self.sh}, r1={self.r1}, mean={list(self.mean)})"
        )


def default_input_size(pcb: bool) -> tuple[int, int]:
    """The original's network input (height, width): 384x192 for PCB, else 256x128."""
    return (384, 192) if pcb else (256, 128)


def _enlarged(size: tuple[int, int]) -> tuple[int, int]:
    # The non-PCB resize before the random crop: 288x144 for the 256x128 crop, i.e. 9/8.
    return (round(size[0] * 9 / 8), round(size[1] * 9 / 8))


def _tensor_steps() -> list:
    return [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def train_transform(pcb: bool, size, erasing_p: float = 0.0, color_jitter: bool = False):
    """Training augmentation of the original.

    PCB: Resize(size), flip; otherwise Resize(9/8 size), RandomCrop(size), flip; then ToTensor,
    Normalize, RandomErasing(erasing_p, mean 0) if erasing_p > 0; ColorJitter first if asked.

    Args:
        pcb: the PCB pipeline.
        size: (height, width) of the network input.
        erasing_p: probability of random erasing; 0 leaves it out.
        color_jitter: prepend ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0).
    """
    size = tuple(size)
    if pcb:
        steps = [T.Resize(size, interpolation=InterpolationMode.BICUBIC)]
    else:
        steps = [T.Resize(_enlarged(size), interpolation=InterpolationMode.BICUBIC)]
        steps.append(T.RandomCrop(size))
    steps += [T.RandomHorizontalFlip(), *_tensor_steps()]
    if erasing_p > 0:
        steps.append(RandomErasing(probability=erasing_p, mean=[0.0, 0.0, 0.0]))
    if color_jitter:
        steps.insert(0, T.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0))
    return T.Compose(steps)


def val_transform(size):
    """Validation during training: Resize(size) (bicubic), ToTensor, Normalize."""
    return T.Compose(
        [T.Resize(tuple(size), interpolation=InterpolationMode.BICUBIC)] + _tensor_steps()
    )


def test_transform(pcb: bool, size):
    """Feature extraction (step 3): Resize(size) for PCB; otherwise Resize(9/8 size).

    The original's test script resized non-PCB images to 288x144, the training resize before
    the crop, not to the 256x128 crop the net was trained on; kept so features match.
    """
    size = tuple(size) if pcb else _enlarged(tuple(size))
    return T.Compose([T.Resize(size, interpolation=InterpolationMode.BICUBIC)] + _tensor_steps())
