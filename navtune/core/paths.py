"""The one rule for names and relative paths that come from files (episode ids, scan names, frame paths):
nothing read from a file may make navtune write or read outside the folder it was given.

* `safe_name`: a single path component: a non-empty string, not ``.`` / ``..``, no ``/`` or ``\\``, no
  control characters, valid Unicode, at most `MAX_NAME_BYTES` bytes (file systems allow 255).
* `check_relative`: a relative POSIX path, not absolute, with no ``..`` component.
* `resolve_inside`: `check_relative`, then the path resolved with symbolic links must stay inside the
  root (a link inside the folder pointing elsewhere is refused).

Errors are the caller's `NavtuneError` type and name the file and the field.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from navtune.core.errors import NavtuneError

MAX_NAME_BYTES = 200


def _bad(error: type[NavtuneError], file, field: str, what: str) -> NavtuneError:
    return error.at(file, what, field=field)


def safe_name(value: object, file: str | os.PathLike | None = None, field: str = "name",
              error: type[NavtuneError] = NavtuneError) -> str:
    """`value` if it can be one folder or file name inside a folder navtune owns, else `error`."""
    if not isinstance(value, str) or not value:
        raise _bad(error, file, field, f"must be a non-empty string (got {value!r})")
    if value in (".", "..") or "/" in value or "\\" in value:
        raise _bad(error, file, field, f"{value[:80]!r} cannot be a folder name: it must be one plain name "
                   "(no '/', '\\', '.' or '..')")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise _bad(error, file, field, f"{value[:80]!r} holds control characters")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad(error, file, field, f"{value[:80]!r} is not valid Unicode (lone surrogate)") from None
    if size > MAX_NAME_BYTES:
        raise _bad(error, file, field, f"is {size} bytes long; names are at most {MAX_NAME_BYTES}")
    return value


def check_relative(rel: object, file: str | os.PathLike | None = None, field: str = "path",
                   error: type[NavtuneError] = NavtuneError) -> PurePosixPath:
    """`rel` as a relative POSIX path that cannot climb out of its folder (lexical check, no file access)."""
    if not isinstance(rel, str) or not rel:
        raise _bad(error, file, field, f"must be a non-empty relative path (got {rel!r})")
    if "\0" in rel or "\\" in rel:
        raise _bad(error, file, field, f"{rel[:80]!r} is not a relative POSIX path")
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts:
        raise _bad(error, file, field, f"{rel[:80]!r} points outside its folder (absolute or '..')")
    for part in p.parts:
        safe_name(part, file, field, error)
    return p


def resolve_inside(root: str | os.PathLike, rel: object, file: str | os.PathLike | None = None,
                   field: str = "path", error: type[NavtuneError] = NavtuneError) -> Path:
    """``root / rel`` after checking that it stays inside `root`, symbolic links resolved."""
    p = check_relative(rel, file, field, error)
    full = Path(root) / p
    real_root = Path(root).resolve()
    real = full.resolve()
    if real != real_root and real_root not in real.parents:
        raise _bad(error, file, field, f"{rel!r} leads outside {root} (through a symbolic link)")
    return full


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether `path` (resolved) is `root` or inside it."""
    real, real_root = Path(path).resolve(), Path(root).resolve()
    return real == real_root or real_root in real.parents
