r"""GPU check of steps 2-3: PCB training (mixed precision) and feature extraction throughput.

    python3 -m benchmarks.gpu_train_extract                  # the README's figures: on a GPU
    python3 -m benchmarks.gpu_train_extract --gpu_ids -1 --ids 4 --per_id 4 --size 64 32 \
        --batchsize 4 --num_workers 0                        # a smoke run on the CPU

Generates a small ImageFolder of random images at Market-1501's size (128x64, so decoding and
resizing cost what they cost on the real data), then goes through streid's training and
extraction code as train_market.py / test_st_market.py do: PCB from random initialisation (no
download), the original's augmentation with random erasing 0.5, SGD, mixed precision on CUDA.
The first training epoch warms up (workers, cuDNN autotuning) and is not timed; by default the timed
epochs are 2 x 50 = 100 iterations of batch 32 at 384x192. Extraction (image plus flip) is
timed over the same images after a warm-up batch.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from streid.data import ImageList, make_loader
from streid.datasets import image_folder
from streid.device import place_model, select_device
from streid.extraction import extract_features
from streid.models import ARCHITECTURES, build_model
from streid.training import Optimization, run_epoch
from streid.transforms import test_transform, train_transform


def write_images(root: Path, ids: int, per_id: int, seed: int = 0) -> None:
    """``ids`` x ``per_id`` random smooth 128x64 JPEGs in an ImageFolder tree."""
    rng = np.random.default_rng(seed)
    for pid in range(ids):
        folder = root / f"{pid:04d}"
        folder.mkdir(parents=True)
        for k in range(per_id):
            coarse = rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)
            img = Image.fromarray(coarse).resize((64, 128), Image.BILINEAR)
            img.save(folder / f"{pid:04d}_c1_f{k:07d}_01.jpg", quality=90)


def train_throughput(args, device, amp: bool, images: ImageList):
    """Train PCB as train_market.py --PCB --erasing_p 0.5 does; the first epoch untimed.

    Returns:
        (model, images per second, timed iterations, peak GPU memory in GiB).
    """
    loader = make_loader(
        images,
        args.batchsize,
        shuffle=True,
        num_workers=args.num_workers,
        device=device,
        seed=0,
        drop_last=True,
    )
    model = place_model(build_model(ARCHITECTURES["pcb"], len(images.classes)), device)
    opt = Optimization.for_model(model, device, amp)
    timed_images = timed_secs = steps = 0
    for epoch in range(args.epochs):
        loss, _, seen, secs = run_epoch(
            model, loader, device, f"train {epoch}", opt.optimizer, opt.scaler, amp
        )
        print(f"epoch {epoch}: loss {loss:.3f}, {seen / secs:.0f} images/s")
        if epoch > 0 or args.epochs == 1:
            timed_images, timed_secs = timed_images + seen, timed_secs + secs
            steps += seen // args.batchsize
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0
    return model, timed_images / timed_secs, steps, peak


def extract_throughput(args, device, model, images: ImageList):
    """Extract as test_st_market.py does (fp32, image plus flip), after a warm-up batch.

    Returns:
        (features, images per second).
    """
    loader = make_loader(
        images, args.batchsize, shuffle=False, num_workers=args.num_workers, device=device
    )
    warm = torch.utils.data.Subset(images, range(min(len(images), args.batchsize)))
    warm_loader = make_loader(warm, args.batchsize, shuffle=False, num_workers=0, device=device)
    extract_features(model, warm_loader, device, "warm-up")
    t0 = time.perf_counter()
    features = extract_features(model, loader, device, "extract")
    return features, len(features) / (time.perf_counter() - t0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # The measured setting.
    p.add_argument("--gpu_ids", default="0", help="GPU id (-1: the CPU)")
    p.add_argument("--ids", default=100, type=int, help="generated identities")
    p.add_argument("--per_id", default=16, type=int, help="images per identity")
    p.add_argument("--size", default=[384, 192], type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--batchsize", default=32, type=int)
    p.add_argument("--epochs", default=3, type=int, help="training epochs, the first untimed")
    p.add_argument("--num_workers", default=12, type=int)
    p.add_argument("--no_amp", action="store_true", help="fp32 training on CUDA")
    args = p.parse_args(argv)

    device = select_device(args.gpu_ids)
    amp = device.type == "cuda" and not args.no_amp
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {device} ({name or 'CPU'}), torch {torch.__version__}")
    torch.manual_seed(0)
    size = tuple(args.size)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_images(Path(tmp), args.ids, args.per_id)
        paths, targets, classes = image_folder(tmp)
        print(
            f"{len(paths)} images of {len(classes)} ids written in {time.perf_counter() - t0:.1f}s"
        )
        train_set = ImageList(paths, targets, classes, train_transform(True, size, 0.5))
        model, train_rate, steps, peak = train_throughput(args, device, amp, train_set)
        test_set = ImageList(paths, targets, classes, test_transform(True, size))
        features, extract_rate = extract_throughput(args, device, model, test_set)

    amp_text = "mixed precision" if amp else "fp32"
    print(
        f"RESULT {name or 'CPU'}: PCB {size[0]}x{size[1]} batch {args.batchsize}, "
        f"train {train_rate:.0f} images/s ({amp_text}, {steps} timed iterations, "
        f"peak {peak:.1f} GiB), extraction {extract_rate:.0f} images/s "
        f"(fp32, image + flip, {features.shape[0]} x {features.shape[1]} features)"
    )


if __name__ == "__main__":
    main()
