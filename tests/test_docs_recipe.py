"""The CPU recipe of docs/your-data.md runs as written: its commands, read from the page,
on a manifest of rendered people, through re-ranking, the pictures and Figure 4."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

import prepare
from tests.helpers_images import torch_threads
from tests.test_manifest import write_rendered_manifest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "your-data.md"


def recipe() -> list[list[str]]:
    """The commands of the page's CPU recipe (the bash block that sets ``CPU``), each as
    ``[script, *argv]`` with ``$CPU`` expanded, comments and line continuations taken out."""
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)
    (block,) = [b for b in blocks if b.startswith('CPU="')]
    lines = block.replace("\\\n", " ").splitlines()
    cpu = shlex.split(lines[0].split("=", 1)[1])[0]
    commands = []
    for line in lines[1:]:
        words = shlex.split(line.split("#")[0].replace("$CPU", cpu))
        assert words[0] == "python" and words[1].endswith(".py"), line
        commands.append(words[1:])
    return commands


def test_the_recipe_is_read_whole():
    scripts = [c[0] for c in recipe()]
    assert scripts[:3] == ["train.py", "test_st.py", "gen_st_model.py"]
    assert {"gen_rerank_all_scores_mat.py", "evaluate_rerank.py", "figure4.py"} <= set(scripts)
    assert all("--gpu_ids" in c for c in recipe() if c[0] in ("train.py", "test_st.py"))


@pytest.mark.slow
def test_the_cpu_recipe_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_rendered_manifest(tmp_path)
    prepare.main(["--manifest", "cameras.csv", "--download_path", "images"])
    with torch_threads(1):
        for script, *argv in recipe():
            importlib.import_module(script.removesuffix(".py")).main(argv)
    printed = capsys.readouterr().out
    assert len(re.findall(r"^top1:\S+ top5:\S+ top10:\S+ mAP:\S+$", printed, re.M)) == 3
    run = tmp_path / "model" / "mine"
    for name in ("all_scores.mat", "st_distribution.png", "rank_list.png", "figure4.png",
                 "figure4.csv", "train_log.csv"):  # fmt: skip
        assert (run / name).is_file(), name
