"""Atomic file writes and crash-tolerant JSONL, so that an interrupted run never leaves a half file."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from navtune.core.errors import NavtuneError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line and fsync (see `append_jsonl_rows`)."""
    append_jsonl_rows(path, [row])


def append_jsonl_rows(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Append JSON lines with one fsync. A crash mid-write leaves at most a torn last line, which
    `read_jsonl` skips; a torn line is repaired (truncated) before appending."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":  # torn last line from a crash: drop it
                f.seek(0)
                cut = f.read().rfind(b"\n") + 1
                f.truncate(cut)
                f.seek(cut)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def decode_json(data: bytes | str, file: str | os.PathLike | None = None, where: str | None = None,
                error: type[NavtuneError] = NavtuneError) -> Any:
    """Parse JSON text from a file; every way it can be bad is `error` naming the file (and `where`, e.g.
    "line 3"): not UTF-8, not JSON, a number too long for Python's int-string limit, nesting too deep."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error.at(file, f"not valid UTF-8 (byte {e.start})", where=where) from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise error.at(file, f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", where=where) from None
    except RecursionError:
        raise error.at(file, "not valid JSON: nested too deeply", where=where) from None
    except ValueError as e:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise error.at(file, f"not valid JSON: {str(e)[:200]}", where=where) from None


def read_json(path: str | os.PathLike, error: type[NavtuneError] = NavtuneError, what: str = "file") -> Any:
    """The parsed JSON of a file, or `error` naming it (missing, unreadable, not UTF-8, not JSON)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error.at(path, f"{what} not found") from None
    except IsADirectoryError:
        raise error.at(path, f"{what} is a folder, not a file") from None
    except OSError as e:
        raise error.at(path, f"cannot read {what}: {e.strerror or e}") from None
    return decode_json(data, path, error=error)


def read_jsonl(path: str | os.PathLike, error: type[NavtuneError] = NavtuneError) -> list[dict]:
    """All complete JSON lines of a file (a torn last line from a crash is ignored)."""
    return list(iter_jsonl(path, error))


def iter_jsonl(path: str | os.PathLike, error: type[NavtuneError] = NavtuneError, torn_tail: str = "ignore"
               ) -> Iterator[Any]:
    """The JSON values of a JSONL file, one per non-blank line. A bad line is `error` naming the file and the
    line, except the last line when it has no newline (a torn append from a crash): it is skipped, or an
    error with ``torn_tail="error"`` (what `navtune collect verify` asks)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            yield decode_json(raw, path, where=f"line {i + 1}", error=error)
        except NavtuneError:
            if i == len(lines) - 1 and torn_tail == "ignore":  # torn last line (no trailing newline)
                return
            if i == len(lines) - 1:
                raise error.at(path, "the last line is torn (an interrupted write; resuming the run that wrote "
                               "it repairs it)", where=f"line {i + 1}") from None
            raise


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
