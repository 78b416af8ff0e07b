"""The whole pipeline on an embedded demo dataset, on the CPU, in a few minutes.

    make demo            # or: python demo.py

Renders a small dataset in the raw Market-1501 layout (the real file names, hence the real
cameras and frames, of 100 training and 100 test identities; placeholder pictures of people,
see streid/demo.py), then runs the step scripts in README order in demo_output/: prepare,
train (PCB from scratch at 64x32), extract, spatial-temporal model, evaluate, re-rank. Prints
one table (appearance only, + spatial-temporal, + re-ranking) and writes two pictures.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from streid import cli
from streid.artifacts import Run
from streid.demo import choose_names, write_dataset

ROOT = Path(__file__).resolve().parent
RUN = "demo"  # the run's name: demo_output/model/demo/
RESULT = re.compile(r"top1:(\S+) top5:(\S+) top10:(\S+) mAP:(\S+)")


def run_step(title: str, script: str, args: list[str], cwd: Path, log: list[str]) -> str:
    """Run one step script in ``cwd``; echo and return its standard output."""
    command = [sys.executable, str(ROOT / script), *args]
    print(f"\n== {title}\n$ python {script} {' '.join(args)}", flush=True)
    start = time.perf_counter()
    # Progress bars (stderr) go straight to the terminal; the output is echoed and kept.
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        print("   ", line, end="", flush=True)
        lines.append(line)
    if proc.wait() != 0:
        raise SystemExit(f"demo: {script} failed (exit {proc.returncode})")
    log.append(f"{title}: {time.perf_counter() - start:.0f}s")
    return "".join(lines)


def metrics(output: str) -> list[float]:
    """rank-1, rank-5, rank-10 and mAP (in %) from a step's result line."""
    match = RESULT.search(output)
    if match is None:
        raise SystemExit("demo: no result line in the step's output")
    return [100 * float(v) for v in match.groups()]


def fresh_folder(out: Path) -> None:
    """Empty ``out`` for a new run: only a folder the demo made itself (a marker file) is
    ever replaced."""
    marker = out / ".st-reid-demo"
    if out.exists() and any(out.iterdir()) and not marker.exists():
        raise SystemExit(f"demo: {out}/ exists and is not a demo folder; choose another --out")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    marker.write_text("made by demo.py; replaced by its next run\n")


def pipeline(raw: Path, epochs: int, seed: int) -> list[tuple[str, str, list[str]]]:
    """The steps of the demo in README order: (title, script, arguments)."""
    cpu = ["--gpu_ids", "-1", "--num_workers", "0"]
    data = "dataset/market_rename"
    name = ["--name", RUN]
    train = ["--PCB", *name, "--train_all", "--weights", "none", *cpu, "--data_dir", data]
    train += ["--epochs", str(epochs), "--input_size", "64", "32", "--batchsize", "16"]
    return [
        ("step 1: prepare", "prepare.py", ["--Market", "--download_path", str(raw)]),
        (
            "step 2: train PCB from scratch (small input for the CPU)",
            "train_market.py",
            [*train, "--seed", str(seed)],
        ),
        ("step 3: extract features", "test_st_market.py", ["--PCB", *name, *cpu]),
        ("step 4: spatial-temporal model", "gen_st_model_market.py", name),
        ("step 5: appearance only", "evaluate_st.py", [*name, "--stream", "visual"]),
        ("step 5: joint score", "evaluate_st.py", name),
        ("step 6.1: all-pairs scores", "gen_rerank_all_scores_mat.py", name),
        ("step 6.2: re-ranking", "evaluate_rerank_market.py", name),
        ("picture: time-gap distributions", "plot_st_distribution.py", name),
        ("picture: rank lists", "plot_rank_list.py", [*name, "--test_dir", data]),
    ]


# The table's rows: the step whose result line each shows.
ROWS = {
    "appearance only": "step 5: appearance only",
    "+ spatial-temporal": "step 5: joint score",
    "+ re-ranking": "step 6.2: re-ranking",
}


def print_table(rows: dict[str, list[float]], sizes: str) -> None:
    """The demo's results as a Markdown table, in %."""
    print(f"\nDemo results ({sizes}):\n")
    print(f"| {'ranking':<20} | rank-1 | rank-5 | rank-10 |  mAP  |")
    print(f"|{'-' * 22}|--------|--------|---------|-------|")
    for title, (r1, r5, r10, mAP) in rows.items():
        print(f"| {title:<20} | {r1:6.1f} | {r5:6.1f} | {r10:7.1f} | {mAP:5.1f} |")


def main(argv=None):
    parser = cli.parser(__doc__)
    parser.add_argument(
        "--out", default="demo_output", help="working folder, replaced by each run of the demo"
    )
    parser.add_argument("--epochs", default=12, type=int, help="training epochs")
    parser.add_argument("--train_ids", default=100, type=int, help="training identities")
    parser.add_argument("--query_ids", default=100, type=int, help="query identities")
    parser.add_argument("--seed", default=0, type=int, help="dataset and training seed")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    out = Path(args.out).resolve()
    fresh_folder(out)
    raw = out / "raw" / "Market-1501"
    q = args.query_ids  # the gallery's other people, junk and distractors scale with it
    names = choose_names(
        train_ids=args.train_ids,
        query_ids=q,
        other_ids=round(0.4 * q),
        junk=round(1.5 * q),
        distractors=round(2.5 * q),
        seed=args.seed,
    )
    count = write_dataset(raw, names, seed=args.seed)
    print(f"rendered {count} images with real Market-1501 names into {raw}/")

    log: list[str] = []
    outputs = {
        title: run_step(title, script, step_args, out, log)
        for title, script, step_args in pipeline(raw, args.epochs, args.seed)
    }
    rows = {row: metrics(outputs[title]) for row, title in ROWS.items()}
    sizes = f"{len(names['query'])} queries, {len(names['bounding_box_test'])} gallery images"
    print_table(rows, sizes)
    run = Run(RUN)
    print(f"\npictures: {out / run.st_picture}\n          {out / run.rank_list}")
    print(f"time: {', '.join(log)}; {time.perf_counter() - start:.0f}s in all")
    if rows["+ spatial-temporal"][3] <= rows["appearance only"][3]:
        raise SystemExit("demo: the joint score did not beat appearance alone")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
