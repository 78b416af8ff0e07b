"""Steps 2-3's command line: ``--config opts.json`` replays a run's flags (the command line
overrides them), the library's options have the command line's defaults, and ``--help``
shows each real default once."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, fields
from pathlib import Path

import pytest

import test_st
import test_st_market
import train
import train_duke
import train_market
from streid import cli
from streid.datasets import DUKE, MARKET
from streid.extraction import ExtractOptions
from streid.models import architecture
from streid.options import RunOptions
from streid.training import TrainOptions
from tests.helpers import run_fails
from tests.helpers_images import torch_threads, write_jpeg

ARGS = ["--data_dir", "data", "--name", "a", "--batchsize", "4", "--input_size", "32", "16"]
ARGS += ["--weights", "none", "--gpu_ids", "-1", "--num_workers", "0", "--seed", "0"]
ARGS += ["--epochs", "1", "--erasing_p", "0.5", "--color_jitter"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished 1-epoch run model/a/ and its data (2 people, 4 images each)."""
    root = tmp_path_factory.mktemp("config")
    for p in range(2):
        for k in range(4):
            name = f"{p + 1:04d}_c{k % 2 + 1}_f{k:07d}_01.jpg"
            write_jpeg(root / "data/train" / f"{p + 1:04d}" / name, (150 * p, 90, 90), k)
    with pytest.MonkeyPatch.context() as mp, torch_threads(1):
        mp.chdir(root)
        train_market.main(ARGS)
    return root


def recorded(path: Path) -> dict:
    return json.loads(path.read_text())


def test_config_replays_the_run_and_the_command_line_overrides(trained, monkeypatch):
    monkeypatch.chdir(trained)
    opts = recorded(Path("model/a/opts.json"))
    replayed = train.options(["--config", "model/a/opts.json"], MARKET, "")
    flags = {k: v for k, v in opts.items() if k in {f.name for f in fields(TrainOptions)}}
    assert asdict(replayed) == flags
    # train.py has no default --data_dir: the recorded one stands for it.
    assert train.options(["--config", "model/a/opts.json"], None, "") == replayed
    given = ["--batchsize", "2", "--config", "model/a/opts.json", "--name", "b", "--PCB"]
    changed = asdict(train.options(given, MARKET, ""))
    assert changed == {**flags, "batchsize": 2, "name": "b", "PCB": True}


def test_a_replayed_run_records_the_same_flags(trained, monkeypatch):
    monkeypatch.chdir(trained)
    with torch_threads(1):
        train_market.main(["--config", "model/a/opts.json", "--name", "b"])
    assert recorded(Path("model/b/opts.json")) == {
        **recorded(Path("model/a/opts.json")),
        "name": "b",
    }


def test_config_replays_neither_resume_nor_overwrite(tmp_path):
    path = tmp_path / "opts.json"
    flags = {"name": "x", "data_dir": "d", "resume": True, "overwrite": True, "epochs": 7}
    flags |= {"input_size": None, "gone_flag": 3}  # a flag of another version: left out
    RunOptions(architecture("pcb"), 5, (64, 32), "duke", flags).save(path)
    replayed = train.options(["--config", str(path)], DUKE, "")
    assert (replayed.resume, replayed.overwrite, replayed.epochs) == (False, False, 7)
    assert (replayed.name, replayed.data_dir, replayed.input_size) == ("x", "d", [64, 32])
    assert train.options(["--config", str(path), "--resume"], DUKE, "").resume


def test_a_config_into_its_own_run_is_refused(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained)
    err = run_fails(train_market.main, ["--config", "model/a/opts.json"], capsys)
    assert err.startswith("error: model/a/ already holds a training run (opts.json, ")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config", "model/none/opts.json"], "error: --config model/none/opts.json not found: "),
        (["--config", "model"], "error: --config model is a folder, expected a file: give a "),
        (["--config", "bad.json"], "error: bad.json: arch must be a JSON str, found None"),
    ],
)
def test_a_bad_config_is_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    Path("model").mkdir()
    Path("bad.json").write_text('{"arch": null}')
    assert run_fails(train_duke.main, argv, capsys).startswith(message)


def test_config_without_a_value_is_the_usual_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_market.main(["--config"])
    assert exit_info.value.code == 2
    assert ": error: argument --config: expected one argument" in (capsys.readouterr().err)


# -- defaults -----------------------------------------------------------------------------------
def parser_defaults(p) -> dict:
    return {a.dest: a.default for a in p._actions if a.dest != "help"}


@pytest.mark.parametrize(
    "parser, options, folder",
    [
        (train.parser(MARKET, ""), TrainOptions, "data_dir"),
        (test_st.parser(MARKET, ""), ExtractOptions, "test_dir"),
    ],
)
def test_the_library_has_the_command_lines_defaults(parser, options, folder):
    defaults = parser_defaults(parser)
    library = asdict(options(**{folder: defaults[folder]}))
    assert library == {k: v for k, v in defaults.items() if k != "config"}


def test_num_workers_is_at_most_the_cpu_count(monkeypatch):
    for cpus, workers in ((1, 1), (2, 2), (64, 4), (None, 1)):
        monkeypatch.setattr(cli.os, "cpu_count", lambda cpus=cpus: cpus)
        assert parser_defaults(train.parser(None, ""))["num_workers"] == workers
        assert parser_defaults(test_st.parser(DUKE, ""))["num_workers"] == workers


@pytest.mark.parametrize("main", [train.main, train_market.main, test_st.main, test_st_market.main])
def test_help_shows_each_real_default_once(main, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    entries, flag = {}, None
    for line in capsys.readouterr().out.splitlines():
        if m := re.match(r"^  (-\S+)", line):
            flag = m.group(1)
            entries[flag] = line
        elif flag and line.startswith("    "):
            entries[flag] += " " + line.strip()
        else:
            flag = None
    assert len(entries) > 8
    assert not [e for e in entries.values() if "None" in e or e.count("default") > 1]
    assert "(default: 32)" in entries["--batchsize"]
    folder = entries.get("--data_dir", entries.get("--test_dir"))
    assert ("default" in folder) == (main in (train_market.main, test_st_market.main))
    if "--seed" in entries:
        assert entries["--seed"].endswith("random seed (default: unseeded)")
        assert entries["--input_size"].endswith("(default: 384 192 with --PCB, else 256 128)")
