"""Telling a Hugging Face hub id from a local folder: one rule for every loader."""
from __future__ import annotations

import os
import re
from pathlib import Path

#: what a hub repo id looks like ("Qwen/Qwen2.5-VL-3B-Instruct")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(name: str | os.PathLike) -> bool:
    """True for "org/name" when no such local path exists (then the hub, or its cache, is asked);
    anything else is a local path, missing or not."""
    s = str(name)
    return not Path(s).exists() and _HUB_ID.fullmatch(s) is not None
