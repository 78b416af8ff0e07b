"""The files a user gives, read safely: a manifest or dataset.yaml that is not UTF-8 text, a
byte order mark, times out of range, and the oddities that are warned about (#17)."""

import io
import zipfile

import pytest
import yaml

import gen_st_model
import prepare
from streid import errors
from streid.dataset_yaml import (
    DATASET_FILE,
    read_spec,
    spec_from_dict,
    spec_to_dict,
)
from streid.datasets import MARKET
from streid.errors import UserError, check_memory
from streid.manifest_checks import MAX_TIME, parse_time
from tests.helpers import run_fails
from tests.test_manifest import HEADER, ROWS, write_manifest

ARGS = ["--manifest", "cameras.csv", "--download_path", "images"]


def csv_text(rows=ROWS, header=HEADER) -> str:
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


def prepared(tmp_path, monkeypatch, capsys, rows=ROWS, header=HEADER, args=()):
    """Prepare a manifest of ``rows``; returns (dataset.yaml's content, stderr)."""
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path, rows, header)
    capsys.readouterr()
    prepare.main([*ARGS, *args])
    record = yaml.safe_load((tmp_path / "dataset/cameras" / DATASET_FILE).read_text())
    return record, said(capsys.readouterr().err)


def said(err: str) -> str:
    """stderr without the progress bars: the notes, warnings and errors."""
    lines = err.replace("\r", "\n").splitlines(keepends=True)
    return "".join(line for line in lines if line.startswith(("note:", "warning:", "error:")))


def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content, message",
    [
        # Latin-1: the é of "café" is the byte 0xe9, on line 3 at offset 30 + 26 + 16.
        (
            csv_text(
                [
                    ("a1.jpg", "alice", "gate", "1", "train"),
                    ("a2.jpg", "alice", "café", "9", "train"),
                ],
                HEADER[:5],
            ).encode("latin-1"),  # fmt: skip
            "cameras.csv is not UTF-8 text (a spreadsheet, or Latin-1?): byte 0xe9 at "
            "offset 72, line 3; save it as UTF-8 CSV",
        ),
        (xlsx_bytes(), "cameras.csv is not UTF-8 text (a spreadsheet? it is a zip or Office"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "it is a zip or Office file"),
        (csv_text().encode("utf-16"), "cameras.csv is not UTF-8 text (it is UTF-16)"),
        (csv_text().encode() + b"x\x00y\n", "is not text (a spreadsheet?): a NUL byte on line 16"),
        (csv_text().replace("alice", "a" * 200_000, 1).encode(), "line 2: not CSV (field larger"),
    ],
    ids=["latin1", "xlsx", "xls", "utf16", "nul", "huge_field"],
)
def test_a_manifest_that_is_not_utf8_csv_is_one_line(tmp_path, monkeypatch, capsys, content,
                                                     message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path)
    (tmp_path / "cameras.csv").write_bytes(content)
    err = run_fails(prepare.main, ARGS, capsys)
    assert message in err, err
    assert not (tmp_path / "dataset").exists()


def test_a_bom_manifest_prepares_exactly_as_without(tmp_path, monkeypatch, capsys):
    trees = []
    for name, bom in (("plain", b""), ("bom", b"\xef\xbb\xbf")):
        root = tmp_path / name
        root.mkdir()
        monkeypatch.chdir(root)
        write_manifest(root)
        (root / "cameras.csv").write_bytes(bom + (root / "cameras.csv").read_bytes())
        prepare.main(ARGS)
        out = root / "dataset/cameras"
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
        trees.append((files, (out / DATASET_FILE).read_text()))
    assert (tmp_path / "bom/cameras.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert trees[0] == trees[1] and len(trees[0][0]) > len(ROWS)


def test_dataset_yaml_not_utf8_or_with_a_bom(tmp_path, monkeypatch, capsys):
    prepared(tmp_path, monkeypatch, capsys)
    path = tmp_path / "dataset/cameras" / DATASET_FILE
    text = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + text)  # a BOM, as an editor may add: read as before
    assert read_spec(path.parent).num_bins == 4850
    path.write_bytes(text.replace(b"title: cameras", b"title: caf\xe9"))
    err = run_fails(gen_st_model.main, ["--data_dir", "dataset/cameras"], capsys)
    assert "dataset/cameras/dataset.yaml is not UTF-8 text" in err and "byte 0xe9" in err, err
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize(
    "time, message",
    [
        ("12345678901234567890", "time '12345678901234567890' is out of range"),
        ("1e308", "time '1e308' is out of range: a time must lie within +-2^53"),
        ("-1e308", "time '-1e308' is out of range"),
        ("1e400", "time '1e400' is not a finite number"),
        ("nan", "time 'nan' is not a finite number"),
        ("-inf", "time '-inf' is not a finite number"),
    ],
)
def test_times_out_of_range_name_their_line(tmp_path, monkeypatch, capsys, time, message):
    rows = [list(r) for r in ROWS]
    rows[3][3] = time
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path, rows)
    err = run_fails(prepare.main, ARGS, capsys)
    assert f"cameras.csv line 5: {message}" in err, err
    assert not (tmp_path / "dataset").exists()


def test_the_time_bound():
    assert parse_time("x", str(MAX_TIME)) == MAX_TIME == 2**53
    assert parse_time("x", f"-{MAX_TIME}") == -MAX_TIME
    with pytest.raises(UserError, match="x: time '18014398509481984' is out of range"):
        parse_time("x", str(2 * MAX_TIME))


@pytest.mark.parametrize("unlabelled", [False, True])
def test_one_far_time_warns_that_the_bins_are_too_wide(tmp_path, monkeypatch, capsys,
                                                       unlabelled):  # fmt: skip
    rows = [list(r) for r in ROWS]
    rows[2][3] = "1000000000000000.0"  # alice at the stairs on Monday, line 4
    if unlabelled:
        for r in rows[:8]:
            r[1] = ""
    record, err = prepared(tmp_path, monkeypatch, capsys, rows)
    # The longest gap is about 1e15 s: bins of 2e11 s or more; every real gap is in bin 0.
    assert record["interval"] >= 2e11
    assert err.count("\n") == 1 and err.startswith(
        "warning: cameras.csv line 4: time '1000000000000000.0' is far from the other training "
        "times (half of them lie within "
    ), err
    assert f"makes bins of {record['interval']:g} seconds, and most gaps fall into the first" in err


def test_no_warning_for_ordinary_times_or_chosen_bins(tmp_path, monkeypatch, capsys):
    record, err = prepared(tmp_path, monkeypatch, capsys)
    assert err == "" and record["interval"] == 0.02
    rows = [list(r) for r in ROWS]
    rows[2][3] = "1000000000000000.0"
    (tmp_path / "dataset").rename(tmp_path / "before")
    record, err = prepared(
        tmp_path, monkeypatch, capsys, rows, args=["--interval", "0.5", "--num_bins", "9"]
    )
    assert err == "" and record["interval"] == 0.5  # the user chose the bins


def test_a_decimal_time_among_integers_warns(tmp_path, monkeypatch, capsys):
    rows = [
        ("a.jpg", "7", "10", "5", "train"),
        ("b.jpg", "7", "9", "105", "train"),
        ("c.jpg", "12", "9", "3.2e3", "query"),
        ("d.jpg", "12", "10", "80", "gallery"),
    ]
    record, err = prepared(tmp_path, monkeypatch, capsys, rows, HEADER[:5])
    assert record["unit"] == "seconds"
    assert err == (
        "warning: cameras.csv line 4: time '3.2e3' has decimals while 3 of the 4 times are "
        "whole numbers: every time is taken as seconds, not frames (write the times as "
        "whole numbers if they count frames)\n"
    )


def test_an_image_listed_twice_warns_with_its_lines(tmp_path, monkeypatch, capsys):
    rows = [*ROWS, ("./b2.jpg", "bob", "stairs", "118.750", "train", "mon")]
    record, err = prepared(tmp_path, monkeypatch, capsys, rows)
    assert err == (
        "warning: cameras.csv: 1 image(s) listed more than once, first b2.jpg on lines 8 and "
        "16: each row is prepared as an image of its own\n"
    )
    assert len(list((tmp_path / "dataset/cameras/train_all").rglob("*.jpg"))) == 9


def test_a_training_image_also_tested_warns(tmp_path, monkeypatch, capsys):
    rows = [*ROWS, ("a1.jpg", "alice", "gate", "12.5", "gallery", "mon"),
            ("b1.jpg", "bob", "lobby", "100.0", "query", "mon")]  # fmt: skip
    _, err = prepared(tmp_path, monkeypatch, capsys, rows)
    lines = err.splitlines()
    assert lines[0].startswith("warning: cameras.csv: 2 image(s) listed more than once, first ")
    assert lines[1] == (
        "warning: cameras.csv: 2 training image(s) also in query/gallery, first a1.jpg "
        "(lines 2 and 16): the evaluation would test on training images"
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (("person", "bob"), "line 16: a1.jpg is listed on line 2 with person 'alice' and here "
                            "with 'bob': an image shows one sighting of one person"),
        (("camera", "lobby"), "line 16: a1.jpg is listed on line 2 with camera 'gate'"),
        (("time", "13"), "line 16: a1.jpg is listed on line 2 with time '12.5' and here with"),
    ],
)  # fmt: skip
def test_one_image_with_two_sightings_is_refused(tmp_path, monkeypatch, capsys, change,
                                                 message):  # fmt: skip
    row = dict(zip(HEADER, ROWS[0], strict=True)) | dict([change])
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path, [*ROWS, tuple(row.values())])
    err = run_fails(prepare.main, ARGS, capsys)
    assert f"cameras.csv {message}" in err, err
    assert not (tmp_path / "dataset").exists()


def test_settings_given_as_flags_are_checked_before_writing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path)
    err = run_fails(prepare.main, [*ARGS, "--interval", "nan"], capsys)
    assert "--interval nan is not a positive finite number" in err
    monkeypatch.setattr(errors, "memory_bytes", lambda: 8 * 10**9)
    err = run_fails(prepare.main, [*ARGS, "--num_bins", "1000000000"], capsys)
    assert err == (
        "error: cameras.csv: 3 x 3 camera-pair histograms of 1,000,000,000 bins would take 216.0 "
        "GB, more than this machine's 8.0 GB of memory: give a larger --interval or fewer "
        "--num_bins"
    )
    assert not (tmp_path / "dataset").exists()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("interval", float("nan"), "interval is nan, expected a positive number"),
        ("interval", float("inf"), "interval is inf, expected a positive number"),
        ("smooth", float("nan"), "smooth is nan, expected a positive Parzen sigma"),
        ("smooth", float("-inf"), "smooth is -inf, expected a positive Parzen sigma"),
        ("smooth", 0, "smooth is 0, expected a positive Parzen sigma"),
        ("num_bins", 2.5, "num_bins is 2.5, expected a positive whole number"),
        ("num_bins", -3, "num_bins is -3, expected a positive whole number"),
        ("num_cameras", 0, "num_cameras is 0, expected a positive whole number"),
        ("num_cameras", 3.0, "num_cameras is 3.0, expected a positive whole number"),
        ("num_bins", 10**12, "8 x 8 camera-pair histograms of 1,000,000,000,000 bins would take "
                             "1,536,000.0 GB, more than this machine's"),
        ("num_cameras", 10**80, "would take 1.20e+156 GB, more than"),
    ],
)  # fmt: skip
def test_dataset_yaml_numbers_are_range_checked(key, value, message):
    data = yaml.safe_load(yaml.safe_dump(spec_to_dict(MARKET)))
    spec_from_dict(dict(data), "x/dataset.yaml")  # as written: valid
    data[key] = value
    with pytest.raises(UserError) as error:
        spec_from_dict(data, "x/dataset.yaml")
    assert str(error.value).startswith("x/dataset.yaml: ") and message in str(error.value)


def test_the_memory_check_at_its_limit(monkeypatch):
    monkeypatch.setattr(errors, "memory_bytes", lambda: 8 * 10**9)
    check_memory((1000, 1000, 1000), 8, "x", "y")  # 8 GB exactly: allowed
    with pytest.raises(
        UserError, match=r"^x would take 8.0 GB, more than this machine's 8.0 GB of memory: y$"
    ):
        check_memory((1000, 1000, 1001), 8, "x", "y")
