"""Every benchmark that reads the project's data stops before any work when its data directory
is missing, with one message naming it and where the data come from (bench/DATA.md): a
non-zero exit, never a traceback, never a table computed on nothing or on stand-ins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p.name
    for p in (REPO / "bench").glob("*.py")
    if not p.name.startswith("_") and '"--data-dir"' in p.read_text()
)
# extra arguments that keep a script to its data check (headline would run the other benches)
EXTRA = {"headline.py": ["--only", "deepbind-encode,neural-fp"], "reads_calibration.py": ["--part", "folds"]}


def _run(script: str, data_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / script),
            "--data-dir",
            str(data_dir),
            *EXTRA.get(script, []),
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_the_benches_with_a_data_dir_are_found() -> None:
    assert len(SCRIPTS) >= 15 and "expression.py" in SCRIPTS and "popgen.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_missing_data_dir_is_named_before_any_work(script, tmp_path) -> None:
    missing = tmp_path / "no_such_data"
    r = _run(script, missing)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"{script} exited 0 without its data:\n{out[-2000:]}"
    assert "Traceback" not in out, out[-3000:]
    # the message names the directory (reads without kraken2 / ART installed: those tools)
    assert str(missing) in out or "apt-get install" in out, out[-2000:]


@pytest.mark.parametrize(
    "script", ["expression.py", "regulatory_features.py", "contacts.py", "sequence_tasks.py"]
)
def test_an_empty_data_dir_lists_what_is_missing_and_where_it_comes_from(script, tmp_path) -> None:
    for sub in ("expression", "enhancer_dfs_decres", "contacts"):
        (tmp_path / sub).mkdir()
    r = _run(script, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in out, out[-3000:]
    assert "missing" in out and "bench/DATA.md" in out, out[-2000:]
