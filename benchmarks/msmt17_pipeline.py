"""Steps 1, 4 and 5 at full MSMT17 scale, as a user with their own features runs them: from the
MSMT17_V1 folder as shipped, and from a CSV manifest of the same 126,441 images.

    python -m benchmarks.msmt17_pipeline      # about 3 minutes on 2 cores, no disk to speak of

The images are empty files named as the real ones (step 1 only links them, and steps 4-5 read
only names). Step 3 is replaced by what a user swapping in their own features does: a
``pytorch_result.mat`` for the prepared query and gallery, with its sessions (here simulated
512-d features: identity centre + camera shift + noise). Each step runs as the process a user
starts; its wall time, its peak resident memory and its last printed line (step 5: its
metrics) are reported.

The manifest names the same images with labels of its own (persons ``train0007``/``test0007``,
cameras ``cam07``, sessions ``0303morning``) and times in seconds with decimals (frame / 25),
so its interval and bins are derived from the training gaps and its sigma chosen by step 4;
then with MSMT17's own settings given on the command line.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import run_process
from benchmarks.simulate import MSMT17_LISTS, msmt17_raw, simulated_features
from streid.artifacts import FEATURES_FILE
from streid.dataset_yaml import read_spec
from streid.datasets import MSMT17, image_folder
from streid.interchange import Split, save_features

ROOT = Path(__file__).resolve().parent.parent


def manifest(raw: Path, csv_path: Path) -> None:
    """The same images as a manifest with labels of its own and times in seconds."""
    with open(csv_path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "person", "camera", "time", "split", "session"])
        for split, folder in MSMT17_LISTS.items():
            use = {"train": "train", "val": "train"}.get(split, split)
            for line in (raw / f"list_{split}.txt").read_text().splitlines():
                path = line.split()[0]
                person, _, camera, session, frame = Path(path).name.split("_")[:5]
                who = f"{'train' if use == 'train' else 'test'}{person}"
                seconds = f"{int(frame) / 25:.2f}"
                out.writerow([f"{folder}/{path}", who, f"cam{camera}", seconds, use, session])


def own_features(prepared: Path, run: Path) -> None:
    """A user's step 3: features of the prepared query and gallery, with their sessions.

    A person's simulated appearance is keyed by their rank among the test persons, so that
    the dataset's numbering and a manifest's give every image the same feature."""
    spec = read_spec(prepared)
    names = [
        spec.parse_names([Path(p).name for p in image_folder(prepared / split)[0]])
        for split in ("query", "gallery")
    ]
    persons = np.unique(np.concatenate([n.labels for n in names]))
    splits = []
    for k, parsed in enumerate(names):
        rank = np.searchsorted(persons, parsed.labels)
        feats = simulated_features(rank, parsed.cams, dim=512, seed=1, split_seed=k, loners=())
        splits.append(Split(feats, *parsed))
    run.mkdir(parents=True, exist_ok=True)
    save_features(run / FEATURES_FILE, *splits)


def steps(cwd: Path, prepare_args: list[str], prepared: Path, name: str) -> None:
    """Steps 1, 4, (the user's) 3 and 5, each as a process; one line each."""
    python = sys.executable

    def step(label: str, command: list[str]) -> None:
        wall, rss, lines = run_process([python, *command], cwd)
        shown = next((line for line in lines if line.startswith("top1")), lines[-1])
        print(f"  {label:<44}{wall:>7.1f}s{rss:>7.2f}GB  {shown}")

    step("1 prepare.py " + prepare_args[0], [str(ROOT / "prepare.py"), *prepare_args])
    data = ["--name", name, "--data_dir", str(prepared)]
    step("4 gen_st_model.py", [str(ROOT / "gen_st_model.py"), *data])
    own_features(prepared, cwd / "model" / name)
    step("5 evaluate_st.py (11,659 x 82,161, 512-d)", [str(ROOT / "evaluate_st.py"),
                                                       "--name", name])  # fmt: skip


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw = msmt17_raw(root)
        print(f"{'MSMT17_V1 as shipped (126,441 empty images)':<46}{'wall':>8}{'RSS':>9}")
        steps(root, ["--MSMT17", "--download_path", str(raw)], root / MSMT17.prepared_dir,
              "msmt17")  # fmt: skip
        manifest(raw, root / "msmt17.csv")
        args = ["--manifest", "msmt17.csv", "--download_path", str(raw)]
        print("a manifest of the same images (own labels, seconds), bins from the gaps")
        steps(root, args, root / "dataset" / "msmt17", "mine")
        print("the same manifest with MSMT17's settings (2 s = 50 frames a bin, 40 bins, 5)")
        mine = ["--interval", "2", "--num_bins", "40", "--smooth", "5", "--save_path", "as50"]
        steps(root, [*args, *mine], root / "as50", "mine50")
    return 0


if __name__ == "__main__":
    main()
