"""Group commit vs one fsync per episode when writing frameless R2R label datasets (val_unseen, 2,349
episodes), side by side in one run. Usage: python bench/bench_data_commit.py [R2R_DATA_DIR]"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from navtune.data.collectors.r2r import collect_r2r
from navtune.data.format import EpisodeDataset


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data" / "r2r"
    tmp = Path(tempfile.mkdtemp(prefix="navtune-bench-"))
    try:
        times = {}
        for name, every in (("fsync per episode", 1), ("group commit (64)", 64)):
            out = tmp / name.split()[0]
            t = time.perf_counter()
            collect_r2r(data, "val_unseen", out, progress=False, commit_every=every)
            times[name] = time.perf_counter() - t
            assert len(EpisodeDataset(out)) == 2349
        for name, t in times.items():
            print(f"{name:20s} {t:6.2f} s  ({2349 / t:6.0f} episodes/s)")
        print(f"speed-up of group commit: {times['fsync per episode'] / times['group commit (64)']:.2f}x")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
