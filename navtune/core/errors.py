"""navtune's one base error for bad input: it names the file and the field, so every command can end with
one line ``error: <file>: <where>: field '<field>': <what>`` (exit 2) instead of a traceback.

Each reader has its own subclass (`R2RDataError`, `DatasetFormatError`, ...); code that only needs to know
"the input was bad" catches `NavtuneError`. It is a `ValueError`, so older ``except ValueError`` still work.
"""
from __future__ import annotations

import os
from typing import Any


class NavtuneError(ValueError):
    """Input navtune refuses. `file` and `field` say where; `what` is the problem without the location.

    Built with ``NavtuneError(message)`` the message is used as given (it already names the file);
    with ``file=`` / ``where=`` / ``field=`` the message is prefixed with them."""

    def __init__(self, message: str = "", *, file: str | os.PathLike | None = None, field: str | None = None,
                 where: str | None = None):
        self.what = message
        self.file = None if file is None else str(file)
        self.field = field
        self.where = where
        parts = [p for p in (self.file, where) if p]
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(": ".join(parts + [message]) if parts else message)

    @classmethod
    def at(cls, file: str | os.PathLike | None, message: str, field: str | None = None,
           where: str | None = None) -> "NavtuneError":
        """The error of this type for `file` (subclasses with their own constructor override this), so
        shared readers (`navtune.core.io.read_json`, `navtune.core.paths.safe_name`) raise the caller's type."""
        return cls(message, file=file, field=field, where=where)


def one_line(e: BaseException) -> str:
    """An exception's message on one line (what the CLI prints after ``error: ``)."""
    text = str(e) or type(e).__name__
    return " ".join(text.split())


def is_finite_number(value: Any) -> bool:
    """A JSON number that is finite as a float (bools are not numbers here; 1e999 parses to inf, and an
    integer beyond float range, e.g. 10**400, would overflow: both refused)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) <= 1e308
    return math.isfinite(value)
