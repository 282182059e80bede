"""The demo folder layout both demos share (VLN and ObjectNav): where each stage writes, and its done marker."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from navtune.core.errors import NavtuneError
from navtune.core.io import atomic_write_json, read_json

SETTINGS_FILE = "demo.json"


class DemoError(NavtuneError):
    """A demo that cannot run as asked (a folder holding another recipe, a bad option)."""


@dataclass
class DemoFolders:
    """OUT/episodes, data/{expert,failures}, models/tiny, train/{sft,awr,...}, final, runs/<agent>, report and
    stages/<stage>.json (a stage is done when its marker exists)."""

    out: Path

    @property
    def episodes_dir(self) -> Path:
        return self.out / "episodes"

    @property
    def expert(self) -> Path:
        return self.out / "data" / "expert"

    @property
    def failures(self) -> Path:
        return self.out / "data" / "failures"

    @property
    def base(self) -> Path:
        return self.out / "models" / "tiny"

    @property
    def sft_dir(self) -> Path:
        return self.out / "train" / "sft"

    @property
    def awr_dir(self) -> Path:
        return self.out / "train" / "awr"

    @property
    def final_dir(self) -> Path:
        return self.out / "final"

    @property
    def report_dir(self) -> Path:
        return self.out / "report"

    def run_dir(self, name: str) -> Path:
        return self.out / "runs" / name.replace("+", "_").lower()

    def marker(self, stage: str) -> Path:
        return self.out / "stages" / f"{stage}.json"

    def done(self, stage: str) -> bool:
        return self.marker(stage).exists()

    def mark(self, stage: str, info: dict) -> None:
        atomic_write_json(self.marker(stage), {"stage": stage, **info})

    def claim(self, settings: dict) -> None:
        """Make OUT this recipe's folder: record `settings` in demo.json, or check they are the ones recorded (a
        rerun resumes; other settings are refused, naming the keys that differ)."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / SETTINGS_FILE
        if not path.exists():
            atomic_write_json(path, settings)
            return
        old = read_json(path, DemoError, "demo settings file")
        if old != settings:
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise DemoError(f"{path}: this folder holds a demo run with other settings ({', '.join(diff)}); "
                            "use another --out")
