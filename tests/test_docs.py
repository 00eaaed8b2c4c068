"""The ``biodl`` command lines of the README and docs/ are commands the CLI accepts.

Every command in a fenced code block is parsed by the real command tree's parsers (subcommand,
flags and their values, arguments; no value is converted, no file is read, nothing runs), and
its ``--set`` / ``-m`` keys are checked against the options the kinds declare for that stage
and the recipe's network parameters. The same for every ``python bench/NAME.py ...`` of the
README, docs/ and bench/*.md pages, against the script's own argument parser: the command a
figure says it came from can be run. A renamed flag or option then fails here instead of in a
user's shell. (docs/python.md's Python blocks run in tests/test_api.py.)
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from biodl.cli import app
from biodl.kinds import KINDS, get_kind
from biodl.options import STAGES
from biodl.registry import get_recipe

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]
SHELL_BREAKS = re.compile(r"\s(?:&&|\|\||;|\||>|>>|2>|2>&1|<|&)\s|\s&$")
PREFIX = r"(?:\w+=\S*\s+)*(?:(?:nice\s+-n\s*\d+|timeout\s+\d+)\s+)*"
STARTS_COMMAND = re.compile(rf"^{PREFIX}(?:\S*python[0-9.]*\s|biodl\s)")


def shell_commands(text: str, inline: str | None = None) -> list[tuple[int, str]]:
    """``(line number, command)`` of every shell command of a Markdown page: the lines of fenced
    code blocks and of indented ones that start with a command, continuation lines joined,
    comments cut, split at ``&&``, ``;``, pipes and redirections; with ``inline`` (a regex),
    also inline code spans that match it (they may wrap to the next line)."""
    lines, fence, prose, more = [], False, [], False
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            fence = not fence
            prose.append("")
        elif fence or (line.startswith("    ") and (more or STARTS_COMMAND.match(line.strip()))):
            lines.append((n, line))
            prose.append("")
        else:
            prose.append(line)
        more = not fence and line.startswith("    ") and line.rstrip().endswith("\\")
    if inline:
        joined = "\n".join(prose)
        for m in re.finditer(rf"`([^`]*{inline}[^`]*)`", joined):
            lines.append((joined.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split())))
    out, buf, start = [], "", 0
    for n, line in sorted(lines):
        s = line.strip()
        start = start if buf else n
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        cmd, buf = re.sub(r"(^|\s)#.*$", "", buf + s), ""
        out += [(start, part.strip()) for part in SHELL_BREAKS.split(f" {cmd} ") if part.strip()]
    return out


def doc_commands(text: str) -> list[tuple[int, str]]:
    """``(line number, arguments after 'biodl')`` of every biodl command in a page's code."""
    out = []
    for n, cmd in shell_commands(text):
        m = re.match(rf"{PREFIX}biodl\s+([a-z].*)$", cmd)
        if m and "..." not in m.group(1):
            out.append((n, m.group(1).strip()))
    return out


CASES = [
    pytest.param(page, args, id=f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for line, args in doc_commands(page.read_text(encoding="utf-8"))
]


def test_pages_have_commands():
    """The extraction finds the walk-throughs (a broken pattern would silently test nothing)."""
    pages = {p.name for p, _ in (c.values for c in CASES)}
    assert len(CASES) >= 80, len(CASES)
    assert {"README.md", "sequences.md", "reads.md", "contacts.md", "popgen.md", "cells.md"} <= pages


def _params(cmd) -> dict[str, object]:
    return {o: p for p in cmd.params for o in getattr(p, "opts", [])}


def _keys(args: list[str], flags: tuple[str, ...]) -> list[str]:
    keys = []
    for i, a in enumerate(args):
        value = None
        if a in flags and i + 1 < len(args):
            value = args[i + 1]
        else:
            for f in flags:
                if f.startswith("--") and a.startswith(f + "="):
                    value = a[len(f) + 1 :]
        if value is not None:
            keys.append(value.split("=", 1)[0].strip())
    return keys


def problems(line: str) -> list[str]:
    """What the CLI would refuse in ``biodl LINE`` before reading any file (empty: nothing)."""
    root = typer.main.get_command(app)
    args = shlex.split(line)
    cmd, rest, path = root, list(args), ["biodl"]
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        if sub is None:
            return [f"no command {rest[0]!r} under {' '.join(path)}"]
        cmd, path, rest = sub, [*path, rest[0]], rest[1:]
    try:  # the command's own parser: flags, their values and the arguments (no value is converted)
        _, extra, _ = cmd.make_parser(cmd.context_class(cmd, info_name=" ".join(path))).parse_args(list(rest))
    except Exception as e:  # click's usage errors (typer vendors click: matched by their method)
        if not hasattr(e, "format_message"):
            raise
        return [e.format_message()]
    if extra:
        return [f"unexpected arguments {extra}"]
    stage = path[1] if len(path) == 2 and path[1] in STAGES else None
    if stage is None:
        return []
    sets = _keys(rest, ("--set",))
    models = _keys(rest, ("-m", "--model-option"))
    out = []
    if stage == "train":
        system = _keys(rest, ("--system", "-s")) or [_params(cmd)["--system"].default]
        recipe = get_recipe(system[0])
        params = set(recipe.model_params())
        declared = {
            o.name for k in recipe.kinds for o in get_kind(k).options if o.applies(stage, recipe.name)
        }
        if set(models) - params:
            out.append(f"-m {sorted(set(models) - params)}: not a parameter of {recipe.name}'s network")
        unknown = set(sets) - declared - params
    else:  # the system is the run's: any kind's option of this stage
        declared = {o.name for k in KINDS for o in get_kind(k).options if o.applies(stage)}
        unknown = set(sets) - declared
    if unknown:
        out.append(f"--set {sorted(unknown)}: not an option of {stage}")
    return out


@pytest.mark.parametrize(("page", "line"), CASES)
def test_documented_command_parses(page, line):
    assert not problems(line), f"{page.name}: `biodl {line}`: {problems(line)}"


@pytest.mark.parametrize(
    "line",
    [
        "trian data.fa --out r",  # no such command
        "train data.fa --sytem deepbind --out r",  # a misspelt flag
        "predict RUN in.fa out.tsv",  # an argument too many
        "train data.fa --system deepbind --set no_such_option=1 --out r",
        "train data.fa --system deepbind -m num_motif=8 --out r",
        "evaluate RUN test.fa --set max_windows=10",  # a training-only option at evaluate
        "contacts predict a.aln --methd plmdca",
        "train --sytem deepbind --out r",
        "predict RUN in.fa --out",  # a flag without its value
    ],
)
def test_checker_catches_bad_commands(line):
    assert problems(line)


def test_checker_accepts_good_commands():
    assert not problems("train data.fa --system deepbind -m num_motifs=8 --set rc_average=true --out r")
    assert not problems("reads classify RUN - --no-progress")


# ------------------------------------------------------------------ the benchmarks' commands
BENCH_RUN = re.compile(rf"^{PREFIX}\S*python[0-9.]*\s+(?:-[uOB]\s+)*(bench/[a-z_0-9]+\.py)(\s.*)?$")


def bench_commands(text: str) -> list[tuple[int, str, str]]:
    """``(line, script, arguments)`` of every ``python bench/NAME.py ...`` of a page, in code
    blocks and inline code; a synopsis with ``[...]`` is not a command."""
    out = []
    for n, cmd in shell_commands(text, inline=r"bench/[a-z_0-9]+\.py"):
        m = BENCH_RUN.match(cmd)
        if m and "[" not in (m.group(2) or ""):
            out.append((n, m.group(1), (m.group(2) or "").strip()))
    return out


BENCH_CASES = [
    pytest.param(page, script, args, id=f"{page.relative_to(ROOT)}:{line}")
    for page in PAGES
    for line, script, args in bench_commands(page.read_text(encoding="utf-8"))
]


class _Parser(Exception):
    def __init__(self, parser):
        self.parser = parser


@pytest.fixture(scope="module")
def bench_parser():
    """A bench script's own ``ArgumentParser``, caught when its ``main`` parses (nothing after
    that runs)."""
    import argparse
    import runpy
    import sys

    cache = {}

    def get(script: str):
        if script not in cache:

            def grab(self, *a, **k):
                raise _Parser(self)

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(argparse.ArgumentParser, "parse_args", grab)
                mp.setattr(argparse.ArgumentParser, "parse_known_args", grab)
                mp.setattr(sys, "argv", [script])
                mp.setattr(sys, "path", list(sys.path))  # bench/ on the path only while it loads
                try:
                    runpy.run_path(str(ROOT / script), run_name="__main__")
                except _Parser as p:
                    cache[script] = p.parser
                else:
                    cache[script] = None
        return cache[script]

    return get


def test_bench_pages_have_commands():
    assert len(BENCH_CASES) >= 50, len(BENCH_CASES)
    assert {"README_contacts.md", "README_reads.md", "README_yeast.md"} <= {
        c.values[0].name for c in BENCH_CASES
    }


@pytest.mark.parametrize(("page", "script", "args"), BENCH_CASES)
def test_documented_bench_command_parses(page, script, args, bench_parser, monkeypatch):
    """The flags and values of a documented benchmark command are the script's (what a README's
    figure says it came from can be run)."""
    assert (ROOT / script).exists(), f"{page.name}: {script} does not exist"
    parser = bench_parser(script)
    assert parser is not None, f"{script}: no argument parser found"

    class Refused(Exception):
        pass

    def error(message):
        raise Refused(message)

    monkeypatch.setattr(parser, "error", error)  # the cached parser is left as it was
    try:
        parser.parse_args(shlex.split(args))
    except Refused as e:
        pytest.fail(f"{page.name}: python {script} {args}: {e}")
    except SystemExit:  # --help
        pass


def test_bench_checker_catches_bad_commands(bench_parser):
    text = "    nice -n 5 python bench/contacts.py --only 1ATZ \\\n        --no-such-flag 3\n"
    [(line, script, args)] = bench_commands(text)
    assert (line, script) == (1, "bench/contacts.py") and args.split()[-2:] == ["--no-such-flag", "3"]
    parser = bench_parser(script)
    with pytest.raises(SystemExit):
        parser.parse_args(shlex.split(args))
    parser.parse_args(["--only", "1ATZ", "--trees", "5"])  # the script's real flags pass
