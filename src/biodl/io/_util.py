"""Small shared helpers for the io layer."""

from __future__ import annotations

import contextlib
import errno
import functools
import gzip
import io
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from biodl.errors import BiodlInputError

#: The largest float32: a larger value (1e39) read into a float32 array becomes infinite.
F32_MAX = 3.4028234663852886e38

#: Numbers in text outputs that users take further (predictions, effects, scores): 9 significant
#: digits hold a float32 exactly (6 wrote a target of 1000002.75 as 1e+06, and a TSV and a
#: Parquet of the same run disagreed).
FLOAT_FORMAT = "%.9g"

P = ParamSpec("P")
R = TypeVar("R")

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


def parses_as_number(text: Any) -> bool:
    """Whether ``float(text)`` takes ``text`` (a field of a text file, a cell of a table)."""
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def check_file(path: str | Path) -> Path:
    """Return ``path`` as a Path, raising a clear error if it is missing or a directory."""
    p = Path(path)
    if str(path) == "-" and not p.exists():  # standard input, as some tools take it
        raise BiodlInputError(
            "standard input is not read here: biodl reads an input more than once (its format first, "
            "then its records), so write it to a file and give that (biodl reads classify reads '-')",
            path=p,
        )
    if not p.exists():
        raise BiodlInputError("file not found", path=p)
    if p.is_dir():
        raise BiodlInputError("is a directory, expected a file", path=p)
    if not p.is_file():
        raise BiodlInputError(
            "is a pipe or a device (such as <(...) or /dev/stdin), not a file: biodl reads an input "
            "more than once (its format first, then its records), so write it to a file and give that",
            path=p,
        )
    note_input(p)
    return p


@contextlib.contextmanager
def htslib_quiet() -> Iterator[None]:
    """Silence htslib's own log lines (``[W::vcf_parse_format_dict2] FORMAT 'DP' ... is not
    defined in the header``, ``[E::bgzf_read_block] ...``) in the block, for readers that report
    every such problem themselves, naming file and record; cyvcf2 links htslib in. The log level
    is restored afterwards (``biodl variants`` shows htslib's warnings once, by design); a no-op
    if the library cannot be reached."""
    try:
        import ctypes

        import cyvcf2.cyvcf2 as ext

        lib = ctypes.CDLL(ext.__file__)
        old = int(lib.hts_get_log_level())
        lib.hts_set_log_level(0)  # HTS_LOG_OFF
    except (ImportError, OSError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        lib.hts_set_log_level(old)


def byte_order_mark_error(path: str | Path, instead: str) -> BiodlInputError:
    """The error for a file that starts with a UTF-8 byte-order mark where its reader (htslib,
    a binary parser) needs ``instead`` (what the file should start with)."""
    return BiodlInputError(
        f"starts with a UTF-8 byte-order mark (as some Windows editors write), not with {instead}; "
        "remove it, e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE",
        path=path,
    )


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


#: What a truncated or corrupt compressed file raises while it is read.
DECOMPRESSION_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


@contextlib.contextmanager
def input_errors(path: str | Path) -> Iterator[None]:
    """Turn the errors of a truncated or corrupt (gzip) file read inside the block into one
    :class:`BiodlInputError` naming ``path`` (``EOFError`` would otherwise end the CLI with a
    bare 'Aborted!')."""
    try:
        yield
    except DECOMPRESSION_ERRORS as e:
        raise BiodlInputError(
            f"the file is truncated or corrupt ({type(e).__name__}: {e}); check or re-download it", path=path
        ) from None


class _GuardedText(io.TextIOBase):
    """A text stream whose decompression errors name the file (see :func:`input_errors`)."""

    def __init__(self, fh: io.TextIOBase, path: Path) -> None:
        self._fh, self._path = fh, path

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        with input_errors(self._path):
            return self._fh.read(size)

    def readline(self, size: int | None = -1) -> str:
        with input_errors(self._path):
            return self._fh.readline(size)

    def seekable(self) -> bool:
        return self._fh.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        with input_errors(self._path):
            return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __iter__(self):
        return self

    def close(self) -> None:
        self._fh.close()
        super().close()


class RowLines:
    """The file line of each data row of a table pandas read with its blank lines skipped (row
    ``i`` from the ``start``-th data row on is on line ``self[i]``; ``row + 2`` named the line
    above the culprit after every blank line). The file is scanned only when a line is asked
    for (an error); a table whose rows are not one line each (quoted line breaks) falls back to
    the row count. ``sep``: the table's separator (whitespace other than it makes a line blank,
    as pandas reads it)."""

    def __init__(self, path: str | Path, sep: str, n_rows: int, start: int = 0):
        self.path, self.sep, self.n_rows, self.start = path, sep, n_rows, start
        self._lines: list[int] | None = None

    def _scan(self) -> list[int]:
        drop = "".join(c for c in " \t\r\n\f\v" if c != self.sep)
        with open_text(self.path) as fh:
            found = [n for n, line in enumerate(fh, 1) if n > 1 and line.strip(drop)]
        rows = found[self.start : self.start + self.n_rows]
        return rows if len(rows) == self.n_rows else [self.start + i + 2 for i in range(self.n_rows)]

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, i: int) -> int:
        if self._lines is None:
            self._lines = self._scan()
        return self._lines[i]


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a plain or gzip-compressed text file (detected by its magic bytes; a leading UTF-8
    byte-order mark is dropped); a truncated or corrupt gzip file is a clear error naming it."""
    p = check_file(path)
    # utf-8-sig: a byte-order mark (as spreadsheets and some editors write) is not part of line 1;
    # a UTF-16 / UTF-32 one (Excel's "Unicode Text") names its encoding (read as UTF-8, it was
    # garbage: a matrix of 0 samples, errors blaming the content)
    with open(p, "rb") as fh:
        head = fh.read(4)
    if head[:2] == GZIP_MAGIC:
        raw = gzip.open(p, "rb")
        try:
            with input_errors(p):
                enc = _bom_encoding(raw.peek(4)[:4])  # (the stream decompressed once)
        except BaseException:
            raw.close()
            raise
        return _GuardedText(io.TextIOWrapper(raw, encoding=enc, errors="replace"), p)
    return open(p, encoding=_bom_encoding(head), errors="replace")


def _bom_encoding(head: bytes) -> str:
    """The text encoding a file's first bytes announce (UTF-8 without a byte-order mark)."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return "utf-8-sig"


# ------------------------------------------------------------------------------ output safety
#: Inputs of the running command (set by the CLI for each command): no output may replace one.
_INPUTS: ContextVar[set[str] | None] = ContextVar("biodl_inputs", default=None)
#: Run directories whose model the running command uses: their record is not an output.
_RUNS: ContextVar[set[str] | None] = ContextVar("biodl_runs", default=None)
#: What records a run (``biodl train --out``): its files, and folders whose files all belong to it.
RUN_RECORD_FILES = ("run.json", "summary.json", "history.csv", "model.pt")
RUN_RECORD_DIRS = ("test", "checkpoints")


@contextlib.contextmanager
def command_inputs() -> Iterator[set[str]]:
    """Record the files read while the block runs (:func:`note_input`), so that
    :func:`atomic_output` refuses to write over any of them."""
    token, runs = _INPUTS.set(set()), _RUNS.set(set())
    try:
        yield _INPUTS.get()
    finally:
        _INPUTS.reset(token)
        _RUNS.reset(runs)


@contextlib.contextmanager
def command_scope() -> Iterator[set[str]]:
    """:func:`command_inputs` unless a command's record is already active (the CLI's, or an
    outer call's): a function of the Python API then guards its outputs as the CLI does."""
    active = _INPUTS.get()
    if active is not None:
        yield active
        return
    with command_inputs() as inputs:
        yield inputs


def as_command(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run inside :func:`command_scope`: the files it reads are its inputs, which no
    output of the call may replace, called from the CLI or from Python alike."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with command_scope():
            return fn(*args, **kwargs)

    return wrapper


def check_path_arg(value: Any, what: str, *, none_ok: bool = False) -> None:
    """One clear error when ``value``, given for ``what`` (``"the run directory"``), is not a
    path (``str`` or :class:`os.PathLike`) as a Python caller might give a list or ``None``."""
    if value is None and none_ok:
        return
    if not isinstance(value, (str, os.PathLike)):
        raise BiodlInputError(
            f"{what} must be a path (a str or pathlib.Path), got "
            f"{'None' if value is None else 'a ' + type(value).__name__}"
        )


def lock_holder(out: Path, name: str) -> str | None:
    """Who holds the :func:`directory_lock` ``out/name`` now (``process N on HOST, since ...``),
    or ``None`` when nobody does (no lock file, a lock left by a process that ended, or a file
    system without locks)."""
    import fcntl

    try:
        fd = os.open(Path(out) / name, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def directory_lock(out: Path, name: str, command: str, what: str) -> Iterator[None]:
    """Hold ``out/name`` (an exclusive ``flock``, released by the system when the process ends,
    however it ends) while ``command`` writes the folder ``out`` (a ``what``: "run directory",
    "dataset"): a second one into the same folder is refused, naming the process that holds it.
    A folder made for the lock and left empty by a refused call is removed. On a file system
    without locks (some network mounts) the work goes on unguarded."""
    import fcntl
    import socket
    import time

    out = Path(out)
    made = not out.exists()
    output_dir(out)
    path = out / name
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise BiodlInputError(f"cannot write in the {what}: {e.strerror or e}", path=out) from None
    try:
        try:
            for attempt in range(5):  # (a reader's look at the lock, lock_holder, holds it an instant)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 4:
                        raise
                    time.sleep(0.05)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise BiodlInputError(
                f"another `{command}` is writing this {what} now ({holder}); wait for it to finish, "
                "or give another --out",
                path=out,
            ) from None
        except OSError:
            pass
        holder = f"process {os.getpid()} on {socket.gethostname()}, since {time.ctime()}"
        with contextlib.suppress(OSError):  # for a refusal to name: a full disk must not stop the work
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()  # before the lock goes: a waiting call then makes its own file
    finally:
        os.close(fd)
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty: a call refused before anything was written


def note_run(directory: str | Path) -> None:
    """Register ``directory`` (when it holds a ``run.json``) as a run whose model the running
    command uses: :func:`check_output_path` and :func:`output_dir` then refuse to write over its
    record (``run.json``, ``summary.json``, ``history.csv``, ``model.pt``, ``test/``,
    ``checkpoints/``), so an ``--out`` pointed into the run cannot replace its held-out results
    or its history (no-op outside :func:`command_inputs`)."""
    runs = _RUNS.get()
    d = Path(directory)
    if runs is not None and (d / "run.json").is_file():
        with contextlib.suppress(OSError):
            runs.add(str(d.resolve()))


def note_model(path: str | Path) -> None:
    """A trained model the running command uses (a run directory or a model file): the file is
    an input (no output may replace it) and, for a run's ``model.pt``, the run's record too
    (:func:`note_run`)."""
    p = Path(path)
    f = p / "model.pt" if p.is_dir() else p
    if f.is_file():
        note_input(f)
        if f.name == "model.pt":
            note_run(f.parent)


def run_record_of(path: str | Path, directory: bool = False) -> str | None:
    """A phrase naming the record of a used run that ``path`` would replace (``None`` if none);
    ``directory``: ``path`` is a folder to write into (the run folder itself counts)."""
    runs = _RUNS.get()
    if not runs:
        return None
    try:
        p = Path(path).resolve()
    except OSError:
        return None
    for r in sorted(runs):
        root = Path(r)
        if not p.is_relative_to(root):
            continue
        rel = p.relative_to(root).parts
        if not rel:
            return f"the run directory {root} itself" if directory else None
        if rel[0] in RUN_RECORD_DIRS:
            return f"{'the' if len(rel) == 1 else 'inside the'} {rel[0]}/ folder of the run in {root}"
        if len(rel) == 1 and rel[0] in RUN_RECORD_FILES and not directory:
            return f"the {rel[0]} of the run in {root}"
    return None


def note_input(path: str | Path) -> None:
    """Register ``path`` as an input of the running command (no-op outside :func:`command_inputs`)."""
    seen = _INPUTS.get()
    if seen is not None:
        with contextlib.suppress(OSError):
            seen.add(str(Path(path).resolve()))


def command_inputs_under(directory: str | Path) -> list[str]:
    """The inputs of the running command that lie inside ``directory``."""
    root = Path(directory).resolve()
    return sorted(p for p in (_INPUTS.get() or ()) if Path(p).is_relative_to(root))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The longest file name and path most file systems take (Linux NAME_MAX, PATH_MAX - 1).
NAME_MAX, PATH_MAX = 255, 4095


def check_path_length(path: str | Path) -> Path:
    """``path`` if no name in it is longer than the file system takes (255 bytes) and the whole
    is under 4,096 bytes; else one clear error (pathlib raised 'File name too long' from
    ``exists()``, an unchecked error)."""
    p = Path(path)
    for part in p.parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > NAME_MAX:
            raise BiodlInputError(
                f"cannot write here: the name {part[:40]}... is {size} bytes long; file systems take "
                f"names of at most {NAME_MAX}"
            )
    if len(str(p.absolute()).encode("utf-8", "surrogateescape")) > PATH_MAX:
        raise BiodlInputError(
            f"cannot write here: the path is longer than {PATH_MAX + 1} bytes (file systems take no "
            f"longer): {str(p)[:60]}..."
        )
    return p


def check_output_path(path: str | Path) -> Path:
    """``path`` if a file may be written there: not a directory, not a device / pipe / socket,
    not an input of the running command, and a parent directory that exists or can be made
    (a note says which directories were made). Else one clear :class:`BiodlInputError`."""
    p = check_path_length(path)
    if p.is_dir():
        raise BiodlInputError("is a directory; give a file name to write", path=p)
    if p.exists() and not p.is_file():
        raise BiodlInputError(
            "exists and is not a regular file (a device, pipe or socket); refusing to write over it", path=p
        )
    seen = _INPUTS.get()
    if seen and p.exists() and str(p.resolve()) in seen:
        raise BiodlInputError(
            "is an input of this command; refusing to write over it (give this output another name)", path=p
        )
    record = run_record_of(p)
    if record:
        raise BiodlInputError(
            f"is {record}, whose model this command uses; refusing to write over the run's record "
            "(give an --out outside it, e.g. a new file or folder)",
            path=p,
        )
    parent = p.parent
    if not parent.is_dir():
        if parent.exists():
            raise BiodlInputError(f"cannot write here: {parent} is a file, not a directory", path=p)
        missing = [d for d in [parent, *parent.parents] if not d.exists()]
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BiodlInputError(f"cannot create the directory {parent}: {e.strerror}", path=p) from None
        if missing:  # (another process may have made them meanwhile)
            note(
                f"[biodl] created directory {missing[-1]}"
                + (f" (and {len(missing) - 1} below it)" if len(missing) > 1 else "")
            )
    return p


def check_output_dir(path: str | Path) -> Path:
    """``path`` if it may be written into as a directory (nothing is made): not a file, and not
    the folder or the ``test/`` / ``checkpoints/`` of a run whose model the command uses."""
    p = check_path_length(path)
    record = run_record_of(p, directory=True)
    if record:
        raise BiodlInputError(
            f"is {record}, whose model this command uses; its files (held-out test results, "
            "plots, history) would be replaced. Give another folder, e.g. a new one inside the run",
            path=p,
        )
    if p.exists() and not p.is_dir():
        raise BiodlInputError("is a file; a directory is expected here", path=p)
    return p


def output_dir(path: str | Path) -> Path:
    """``path`` as a directory to write into: made (with its parents) when missing, else one
    clear :class:`BiodlInputError` when it is a file, cannot be made, or is the record of a run
    the command uses (:func:`check_output_dir`)."""
    p = check_output_dir(path)
    if p.is_dir():
        return p
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BiodlInputError(f"cannot create the directory: {e.strerror or e}", path=p) from None
    return p


def note(msg: str) -> None:
    """A line on standard error (notes and warnings about the user's inputs and outputs)."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True, emoji=False).print(msg, highlight=False, markup=False)


def warn_duplicate_ids(ids, path: str | Path | None, what: str = "record id") -> int:
    """Warn (once per file) when ``ids`` repeat: rows are all kept and outputs stay in input
    order, but a join on the id would mix them up. Returns the number of repeated ids."""
    from collections import Counter

    return _warn_duplicates([(k, c) for k, c in Counter(ids).items() if c > 1], path, what)


def _warn_duplicates(dup: list[tuple[str, int]], path, what: str) -> int:
    if dup:
        shown = ", ".join(f"{k!r} x{c}" for k, c in dup[:5]) + (", ..." if len(dup) > 5 else "")
        note(
            f"[biodl] warning: {path}: {len(dup)} {what}(s) occur more than once ({shown}); all rows "
            "are kept in input order (match outputs by row, not by id)"
        )
    return len(dup)


class DuplicateIds:
    """:func:`warn_duplicate_ids` over a file read in pieces: :meth:`add` each piece's ids,
    then :meth:`warn`. Keeps 8 bytes per id seen (a hash; the names of repeated ids only)."""

    def __init__(self) -> None:
        import numpy as np

        self.seen = np.zeros(0, np.int64)  # sorted hashes of every id so far
        self.repeated: dict[str, int] = {}

    def add(self, ids: list[str]) -> None:
        from collections import Counter

        import numpy as np

        if not ids:
            return
        h = np.fromiter((hash(x) for x in ids), np.int64, len(ids))
        order = np.sort(h)
        within = order[1:][order[1:] == order[:-1]]
        before = np.zeros(len(h), bool)
        if self.seen.size:
            pos = np.minimum(np.searchsorted(self.seen, h), self.seen.size - 1)
            before = self.seen[pos] == h
        flagged = np.flatnonzero(before | np.isin(h, within))
        if flagged.size:
            seen_before = {ids[i] for i in flagged if before[i]}
            for x, c in Counter(ids[i] for i in flagged).items():
                self.repeated[x] = self.repeated.get(x, 1 if x in seen_before else 0) + c
        # two sorted runs: the stable sort (timsort) merges them in linear time
        self.seen = np.sort(np.concatenate([self.seen, order]), kind="stable")

    def warn(self, path: str | Path | None, what: str = "record id") -> int:
        return _warn_duplicates([(k, c) for k, c in self.repeated.items() if c > 1], path, what)


@functools.cache
def _host_tag() -> str:
    """This machine in a temporary output's name: the host name, and on Linux the process-id
    namespace (``-n`` + its inode), so containers that share a host name and a folder never
    take each other's process ids for their own."""
    import re
    import socket

    host = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname() or "host")
    try:
        host += f"-n{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        pass
    return host


def _tmp_stem(name: str) -> str:
    """``name`` as the start of its temporary file's name (``.NAME.biodl-PID@HOST.XXXXXXXX.tmp``):
    shortened, with a digest of the whole, where the temporary name would pass 255 bytes (a
    legal 230-byte output name could not be written)."""
    import hashlib

    room = NAME_MAX - len(f"..{_writer_tag()}.XXXXXXXX.tmp".encode())
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= room:
        return name
    digest = hashlib.sha1(raw).hexdigest()[:10]
    return raw[: max(room - 11, 1)].decode("utf-8", "ignore") + "~" + digest


def _writer_tag() -> str:
    """``biodl-PID@HOST``: which process (on which machine, :func:`_host_tag`) a temporary
    output belongs to."""
    return f"biodl-{os.getpid()}@{_host_tag()}"


def _dead_writer(name: str) -> int | None:
    """The process id in a temporary name of :func:`_writer_tag` when that process was on this
    machine and no longer runs (its file can only be a leftover of a killed run); else None.
    Another machine's file (a shared file system) or a running process's is never taken."""
    import re

    m = re.search(r"\.biodl-(\d+)@([A-Za-z0-9_-]+)\.", name)
    if m is None or m.group(2) != _host_tag() or int(m.group(1)) == os.getpid():
        return None
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return int(m.group(1))
    except (OSError, OverflowError):  # alive under another user (EPERM), or cannot tell
        return None
    return None


def remove_leftovers(directory: Path, pattern: str) -> None:
    """Remove the entries of ``directory`` matching ``pattern`` that a biodl process on this
    machine left when it was killed (SIGKILL, out of memory) before it could clean up: the
    hidden temporary file of an output, or an evaluation's hidden staging folder. Said once per
    entry; anything that cannot be removed is left."""
    import shutil

    try:
        entries = list(directory.glob(pattern))
    except OSError:
        return
    for e in entries:
        pid = _dead_writer(e.name)
        if pid is None:
            continue
        try:
            shutil.rmtree(e) if e.is_dir() and not e.is_symlink() else e.unlink()
        except OSError:
            continue
        note(f"[biodl] removed {e}, left by an interrupted biodl run (process {pid} no longer runs)")


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """The one way biodl writes a file: yields a temporary path in the destination directory;
    when the block finishes, the file gets the usual ``0o666 & ~umask`` permissions and is
    renamed over ``path`` (atomic on POSIX), so a reader never sees half a file and a failed or
    killed write leaves an existing ``path`` untouched. Targets are checked first
    (:func:`check_output_path`); write errors (a full disk, no permission) are one clear error."""
    p = check_output_path(path)
    stem = _tmp_stem(p.name)
    remove_leftovers(p.parent, f".{glob_escape(stem)}.biodl-*.tmp")  # of a killed earlier write
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{stem}.{_writer_tag()}.", suffix=".tmp")
    except OSError as e:
        raise BiodlInputError(f"cannot write here: {e.strerror}", path=p) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise BiodlInputError(
                "cannot write: no space left on the device; nothing was replaced", path=p
            ) from None
        if e.errno is None and "requested and" in str(e):  # numpy's tofile: a short write, no errno
            raise BiodlInputError(
                "cannot write: the disk is full or a file-size limit was reached (a short write); "
                "nothing was replaced",
                path=p,
            ) from None
        raise BiodlInputError(f"cannot write: {e.strerror or e}; nothing was replaced", path=p) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_output_stream(path: str | Path) -> Iterator[io.BufferedIOBase]:
    """:func:`atomic_output` as an open binary file, gzip-compressed when the name ends in
    ``.gz`` / ``.bgz`` (level 1: a large table compresses ~2x at a tenth of level 6's time);
    flushed and fsync'ed before the rename. For outputs written piece by piece."""
    p = Path(path)
    with atomic_output(p) as tmp, open(tmp, "wb") as raw:
        fh = (
            gzip.GzipFile(filename=p.name, mode="wb", compresslevel=1, fileobj=raw)
            if p.name.lower().endswith((".gz", ".bgz"))
            else raw
        )
        yield fh
        if fh is not raw:
            fh.close()
        raw.flush()
        os.fsync(raw.fileno())


@contextlib.contextmanager
def atomic_text_stream(path: str | Path, buffer: int = 1 << 20) -> Iterator[io.TextIOBase]:
    """:func:`atomic_output_stream` as text (UTF-8): gzip-compressed for a ``.gz`` / ``.bgz``
    name, else a plain file with a ``buffer``-byte buffer."""
    p = Path(path)
    if not p.name.lower().endswith((".gz", ".bgz")):
        with atomic_output(p) as tmp, open(tmp, "w", encoding="utf-8", buffering=buffer) as fh:
            yield fh
        return
    with atomic_output_stream(p) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8")
        try:
            yield text
        finally:
            text.detach()  # (flushed) the stream closes the gzip member, not the wrapper


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output` (flushed and fsync'ed)."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_text_by_suffix(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output_stream`: gzip-compressed
    when the name ends in ``.gz`` / ``.bgz`` (as ``predict --out x.tsv.gz`` does), else plain."""
    with atomic_output_stream(path) as fh:
        fh.write(text.encode("utf-8"))
    return Path(path)


def text_table_sep(path: str | Path, command: str) -> str:
    """The field separator of a text table written to ``path``: ``,`` for ``.csv``, a tab for
    ``.tsv`` / ``.txt`` / ``.tab`` (either with ``.gz``); another suffix is refused (a
    ``.parquet`` name got tab-separated text)."""
    name = Path(path).name.lower().removesuffix(".gz").removesuffix(".bgz")
    if name.endswith(".csv"):
        return ","
    if name.endswith((".tsv", ".txt", ".tab")) or "." not in name:
        return "\t"
    raise BiodlInputError(
        f"{command} writes a text table: name it .tsv or .csv (.gz to compress), not {Path(name).suffix}",
        path=path,
    )


def guess_separator(path: Path, first_line: str, default: str | None = "\t") -> str | None:
    """The field separator of a table: ``,`` for ``.csv`` files (a tab or ``;`` when the first
    line has that and no comma: spreadsheet exports named .csv), else a tab or a comma when the
    first line has one, else ``default`` (``None``: runs of white space)."""
    if Path(path).name.lower().removesuffix(".gz").endswith(".csv"):
        if "," not in first_line:
            for other in ("\t", ";"):
                if other in first_line:
                    return other
        return ","
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    return default


def unshift_columns(df, path: Path):
    """A table read by pandas (strings) whose data lines have more fields than its header: pandas
    takes the first field(s) as the row index and shifts every column. A separator at the end of
    each data line (spreadsheet and script exports) leaves the last column(s) empty: put back in
    place, the empty field(s) dropped. Other extra fields (row names in an unnamed first column,
    as R's ``write.table`` writes) are refused, naming the counts: the columns would not be the
    header's."""
    import pandas as pd

    if isinstance(df.index, pd.RangeIndex):
        return df
    k = df.index.nlevels
    cols = list(df.columns)
    if len(cols) >= k and all((df[c].astype(str).str.strip() == "").all() for c in cols[len(cols) - k :]):
        out = df.reset_index()
        out = out.iloc[:, : len(cols)]
        out.columns = cols
        return out
    raise BiodlInputError(
        f"the data lines have {len(cols) + k} fields but the header names {len(cols)}: are there row names "
        "in an unnamed first column (as R's write.table writes)? Give that column a name (e.g. id) or "
        "write the table without row names",
        path=path,
        record=2,
    )


def json_safe(obj):
    """``obj`` (dicts, lists, tuples of numbers, strings, ...) with every NaN or infinite float
    (Python or NumPy) replaced by ``None``, so ``json.dumps`` writes ``null``: bare ``NaN`` is
    not JSON. NumPy numbers become Python numbers; other values are kept."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


class StatusLine:
    """One progress line on standard error (``[biodl] ...``), for long streams and runs.

    On a terminal the line is rewritten in place (``\\r``, padded over a longer line before) at
    most every ``every`` seconds; anywhere else (a log file, a pipe) each update is a whole line
    ending in a newline, at most every ``plain_every`` seconds, so redirected output never holds
    carriage returns. ``clock`` is read once per call (tests pass a fake one)."""

    def __init__(
        self, show: bool = True, stream=None, every: float = 1.0, plain_every: float = 30.0, clock=None
    ):
        import sys
        import time

        self.stream = stream if stream is not None else sys.stderr
        self.show, self.clock = show, clock or time.perf_counter
        try:
            self.tty = bool(show and self.stream.isatty())
        except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
            self.tty = False
        self.every = every if self.tty else plain_every
        self.width = 0
        self.t0 = self.last = self.clock()

    def update(self, text: str, now: float | None = None) -> None:
        """Show ``text`` unless the last update is under ``every`` seconds old."""
        if not self.show:
            return
        now = self.clock() if now is None else now
        if now - self.last >= self.every:
            self.last = now
            self._write(text)

    def count(self, what: str, n: int, done: str = "scored") -> None:
        """:meth:`update` with ``WHAT: N DONE (R / s)``, the rate since the line began."""
        if not self.show:
            return
        now = self.clock()
        self.update(f"{what}: {n:,} {done} ({n / max(now - self.t0, 1e-9):,.0f} / s)", now)

    def final(self, text: str) -> None:
        """The last line, always shown (when shown at all), ending in a newline."""
        if self.show:
            self._write(text, end="\n")
            self.width = 0

    def clear(self) -> None:
        """Erase the terminal's line (another line follows in its place)."""
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def end_line(self) -> None:
        """End a line left open on the terminal (an error stopped the run before its final line)."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0

    def _write(self, text: str, end: str = "") -> None:
        line = f"[biodl] {text}"
        if self.tty:
            pad = " " * max(self.width - len(line), 0)
            self.width = len(line)
            self.stream.write(f"\r{line}{pad}{end}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


#: The files an evaluation wrote into its folder (hidden): the next one into that folder
#: removes those it does not write again, so a folder never mixes two evaluations.
EVALUATION_MANIFEST = ".biodl-evaluation.json"


def _manifest(out: Path):
    """The evaluation manifest of ``out``: a list of files, or ``{"moving": staging folder,
    "files": [...]}`` while (or, after a kill, since) its files were being moved in; ``None``."""
    import json

    try:
        return json.loads((out / EVALUATION_MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _manifest_files(out: Path) -> list[str]:
    """The files an evaluation wrote into ``out``; of one killed while moving them in, those and
    the files of the evaluation before it (any of them may be there)."""
    m = _manifest(out)
    if isinstance(m, dict):
        files = [*m.get("files", []), *[r for r in m.get("before", []) if r not in m.get("files", [])]]
    else:
        files = m if isinstance(m, list) else []
    return [r for r in files if isinstance(r, str)]


def half_replaced(out_dir: str | Path) -> bool:
    """Whether an evaluation was killed while its files were moved into ``out_dir``: the folder
    may mix two evaluations (the next evaluation into it finishes the moves)."""
    m = _manifest(Path(out_dir))
    return isinstance(m, dict) and "moving" in m


def _move_in(tmp: Path, out: Path, files: list[str], last: tuple[str, ...]) -> None:
    """Move ``files`` (relative paths) from ``tmp`` into ``out``; those named in ``last`` last."""
    for rel in [r for r in files if Path(r).name not in last] + [r for r in files if Path(r).name in last]:
        if (tmp / rel).is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, out / rel)


def _finish_moving(out: Path) -> None:
    """Finish the moves of an evaluation killed while its files were moved into ``out`` (its
    staging folder is still there: a killed process removes nothing), so the folder holds that
    evaluation whole before anything else happens in it."""
    import json
    import shutil

    m = _manifest(out)
    if not (isinstance(m, dict) and isinstance(m.get("moving"), str)):
        return
    staging = out / Path(m["moving"]).name
    if staging.is_dir() and _dead_writer(staging.name) is not None:
        files = [r for r in m.get("files", []) if isinstance(r, str)]
        _move_in(staging, out, files, ("metrics.json",))
        for r in m.get("before", []):  # the earlier evaluation's files this one has none of
            if isinstance(r, str) and r not in files and (out / r).is_file():
                (out / r).unlink()
        shutil.rmtree(staging, ignore_errors=True)
        atomic_write_text(out / EVALUATION_MANIFEST, json.dumps(files) + "\n")
        note(f"[biodl] {out}: finished moving in the files of an evaluation killed while it wrote them")


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM held back (delivered after the block) in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def staged_outputs(out_dir: str | Path, last: tuple[str, ...] = ("metrics.json",)) -> Iterator[Path]:
    """Write a set of files into ``out_dir`` as a whole: the caller writes into a hidden
    folder inside it, which on success is moved into place (``last`` moved last, so an
    existing ``metrics.json`` always describes the files beside it), and the files of the
    previous set there that this one does not have are removed (and said). An interrupt or an
    error leaves ``out_dir`` as it was."""
    import json
    import shutil

    out = output_dir(out_dir)
    _finish_moving(out)  # an evaluation killed while its files were moved into place
    remove_leftovers(out, ".biodl-partial.biodl-*")  # of a killed earlier evaluation
    tmp = Path(tempfile.mkdtemp(prefix=f".biodl-partial.{_writer_tag()}.", dir=out))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stale: list[str] = []
    try:
        new = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        before = _manifest_files(out)
        # said before the first file moves: a kill between two moves leaves a folder that says
        # it is half-replaced (readers refuse it; the next evaluation finishes the moves)
        moving = {"moving": tmp.name, "files": new, "before": before}
        atomic_write_text(out / EVALUATION_MANIFEST, json.dumps(moving) + "\n")
        with _signals_held():  # Ctrl-C / SIGTERM wait for the moves (milliseconds)
            _move_in(tmp, out, new, last)
        stale = [r for r in before if r not in new and (out / r).is_file()]
        for r in stale:
            (out / r).unlink()
        atomic_write_text(out / EVALUATION_MANIFEST, json.dumps(new) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if stale:
        note(
            f"[biodl] {out}: removed {', '.join(stale)} of the evaluation written there before "
            "(this one has none)"
        )


_INTERRUPT_SAID: list[bool] = []


def said_interrupted() -> None:
    """Mark that the interrupted command has said how far it got (training, simulations), so
    the CLI's general line after Ctrl-C / SIGTERM is not printed as well."""
    _INTERRUPT_SAID.append(True)


def interrupt_said() -> bool:
    """Whether :func:`said_interrupted` was called in this process."""
    return bool(_INTERRUPT_SAID)
