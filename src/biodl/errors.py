"""Exceptions raised by biodl.

Every problem with user input is reported as a :class:`BiodlInputError` that names the
file, the record or line, and what is wrong, so the CLI can print one clear line instead
of a traceback from deep inside numpy or torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn


class BiodlError(Exception):
    """Base class of all biodl errors."""


class BiodlInputError(BiodlError, ValueError):
    """Bad user input: a file, a record in it, or an option.

    Parameters
    ----------
    message
        What is wrong, in words a user understands.
    path
        The file the problem is in, if any.
    record
        The line number (1-based) or record name the problem is at, if any.
    """

    def __init__(self, message: str, path: str | Path | None = None, record: str | int | None = None):
        self.path = None if path is None else str(path)
        self.record = record
        self.problem = message
        where = []
        if path is not None:
            where.append(str(path))
        if record is not None:
            where.append(f"line {record}" if isinstance(record, int) else f"record {record!r}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)


def print_error(e: BaseException | str, prefix: str = "error:") -> None:
    """Print ``prefix`` (bold red) and the message of ``e`` on standard error, as plain text: a
    message holds file names, chain ids and user values, which rich must not read as markup
    (``[...]``) or emoji codes (``x.pdb:A:`` would print as a symbol)."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, soft_wrap=True, emoji=False).print(
        Text.assemble((prefix, "bold red"), " ", str(e)), highlight=False
    )


def exit_with(e: BaseException | str) -> NoReturn:
    """The CLI's way out on a user error: :func:`print_error`, then exit status 2."""
    import typer

    print_error(e)
    raise typer.Exit(2)


def stdout_console():
    """The CLI's console for standard output. On a terminal, rich's usual one; otherwise (a
    pipe, a file) one wide enough that tables and one-line summaries come out whole: rich
    would wrap them, and cut table cells to "...", at 80 columns. ``COLUMNS`` set by the user
    is kept."""
    import os

    from rich.console import Console

    # no markup: what is printed holds file names and user values, never rich markup ([...])
    c = Console(emoji=False, markup=False, soft_wrap=True)
    if c.is_terminal or "COLUMNS" in os.environ:
        return c
    return Console(emoji=False, markup=False, soft_wrap=True, width=10_000)
