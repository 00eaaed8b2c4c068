"""The bench scripts' argument and input checks: a bad argument, missing data or an output path that
cannot be written stops the script at once with one ``error`` line naming the problem (exit status
non-zero), never a Python traceback, and before any benchmark work."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))
import _rows  # noqa: E402


def bench(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_error(p: subprocess.CompletedProcess, *words: str, rc: int | None = None) -> None:
    assert p.returncode != 0, p.stdout + p.stderr
    if rc is not None:
        assert p.returncode == rc, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "error" in ln]
    assert lines, p.stderr
    for w in words:
        assert any(w in ln for ln in lines), (w, p.stderr)


# ----------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("script", "args", "words"),
    [
        ("startup.py", ["--reps", "0"], ["--reps", ">= 1"]),
        ("startup.py", ["--json", "/proc/no/such/dir/x.json"], ["--json", "/proc/no/such/dir"]),
        ("contacts.py", ["--methods", "bogus"], ["--methods", "bogus"]),
        ("contacts.py", ["--threads", "0"], ["--threads"]),
        ("contacts.py", ["--layers", "0"], ["--layers"]),
        ("contacts.py", ["--methods", "plmDCA"], ["--no-lopo"]),
        ("contacts.py", ["--deepcon-weights", "/nonexistent.whl"], ["/nonexistent.whl"]),
        ("contacts.py", ["--layers", "1", "--out", "bench/results_contacts.json"], ["committed", "--layers"]),
        ("headline.py", ["--skip", "ims"], ["unknown part", "ims"]),
        ("headline.py", ["--only", ","], ["no part"]),
        ("regulatory_features.py", ["--tasks", "bogus"], ["--tasks", "bogus"]),
        ("regulatory_features.py", ["--models", "bogus"], ["--models", "bogus"]),
        ("regulatory_features.py", ["--folds", "1"], ["--folds", ">= 2"]),
        ("regulatory_features.py", ["--only-folds", "99"], ["--only-folds"]),
        ("regulatory_features.py", ["--lambdas", "abc"], ["--lambdas", "abc"]),
        ("deepbind_encode.py", ["--jobs", "0"], ["--jobs"]),
        ("deepbind_encode.py", ["--max-epochs", "0"], ["--max-epochs"]),
        ("deepbind_encode.py", ["--merge", "/nonexistent.json"], ["/nonexistent.json"]),
        ("reads.py", ["--parts", "bogus"], ["--parts", "bogus"]),
        ("reads.py", ["--engines", "bogus"], ["--engines", "bogus"]),
        ("popgen.py", ["--rho-sizes", "abc"], ["--rho-sizes", "abc"]),
        ("python_api.py", ["--calls", "0"], ["--calls"]),
        ("python_api.py", ["--run", "/nonexistent"], ["--run", "/nonexistent"]),
    ],
)
def test_bad_argument_is_one_error_line(script, args, words):
    assert_error(bench(script, *args), *words, rc=2)


def test_unused_data_dir_is_accepted_and_documented():
    """every bench takes --data-dir; those with bundled / random data say it is not used"""
    p = bench("startup.py", "--help")
    assert p.returncode == 0 and "--data-dir" in p.stdout and "not used" in p.stdout
    # accepted: the error is about --reps, not an unrecognised --data-dir
    assert_error(bench("startup.py", "--data-dir", "/x", "--reps", "0"), "--reps", rc=2)


# ----------------------------------------------------------------------------- missing data


def test_contacts_partial_data_stops_and_names_the_files(tmp_path):
    (tmp_path / "contacts" / "msas").mkdir(parents=True)
    out = tmp_path / "new" / "sub" / "c.json"
    cache = str(tmp_path / "cache")
    p = bench("contacts.py", "--data-dir", str(tmp_path), "--out", str(out), "--cache", cache)
    assert_error(p, "missing", rc=1)
    assert out.parent.is_dir()  # --out's folder is made (or refused) before any work


def test_deepbind_encode_default_needs_every_experiment(tmp_path):
    enc = tmp_path / "deepbind_encode_chipseq"
    enc.mkdir()
    for f in ("AAA_x_AC.seq.gz", "AAA_x_B.seq.gz", "BBB_y_AC.seq.gz"):
        (enc / f).write_bytes(b"")
    p = bench("deepbind_encode.py", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out"))
    assert_error(p, "BBB_y_B.seq.gz", "--experiments", rc=1)
    assert not (tmp_path / "out").exists()


def test_headline_checks_every_part_before_running_any(tmp_path):
    out = tmp_path / "hl"
    p = bench("headline.py", "--data-dir", str(tmp_path), "--out", str(out))
    assert_error(p, "genomes_mcb185", "deepbind_encode_chipseq", rc=1)
    assert "[headline] startup" not in p.stdout
    assert not (out / "headline.md").exists()


def test_yeast_ae_missing_data(tmp_path):
    assert_error(bench("yeast_ae.py", "--data-dir", str(tmp_path)), "yeast_eisen1998", rc=1)


# ----------------------------------------------------------------------------- the helpers


def test_argument_types():
    assert _rows.positive_int("3") == 3
    for bad in ("0", "-2", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            _rows.positive_int(bad)
    assert _rows.int_list(0)("0,5") == "0,5"
    for bad in ("a", "1,,2", "", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            _rows.int_list(0)(bad)
    assert _rows.float_list(0)("0.5,1e-3") == "0.5,1e-3"
    with pytest.raises(argparse.ArgumentTypeError):
        _rows.float_list(0)("0")
    assert _rows.names_of("abc", "part")("a,c") == "a,c"
    for bad in ("d", "a,,b", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            _rows.names_of("abc", "part")(bad)


def test_writable_file_makes_the_folder(tmp_path):
    target = tmp_path / "a" / "b" / "x.json"
    assert _rows.writable_file(str(target)) == str(target)
    assert target.parent.is_dir()
    with pytest.raises(argparse.ArgumentTypeError):
        _rows.writable_file(str(tmp_path))  # a folder, not a file


def test_write_json_makes_the_folder(tmp_path):
    target = tmp_path / "new" / "rows.json"
    _rows.write_json(target, [_rows.row("m", [1.0, 2.0])])
    assert target.is_file()


def test_guarded_turns_input_errors_into_one_line():
    from biodl.errors import BiodlInputError

    def fails():
        raise BiodlInputError("bad thing", path="f.txt")

    with pytest.raises(SystemExit) as e:
        _rows.guarded(fails)
    assert str(e.value.code) == "error: f.txt: bad thing"
