"""House seeds as users write them: '0-99', '3,5,8' or '0-9,20-29' (one parser for every command)."""
from __future__ import annotations


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """'0-99' / '1,4,9' / '0-4,10' -> the sorted unique house seeds (ranges inclusive); a ValueError naming
    `option` for anything else (empty, negative, B < A)."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.update(range(lo, hi + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise ValueError(f"{option} {text!r}: bad seed range {part!r} (expected e.g. 1000-1059 or 3,5,8)") from None
    if not out or min(out) < 0:
        raise ValueError(f"{option} {text!r}: names no house seeds >= 0")
    return sorted(out)
