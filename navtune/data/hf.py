"""Bridges from a navtune dataset folder to Hugging Face `datasets` and to torch.

`to_hf_dataset` gives one row per step (or per episode) with frames as `datasets.Image` columns that
decode lazily; `save_hf` writes it with `save_to_disk`, which embeds the frame bytes, so the saved copy
is self-contained and loads with `datasets.load_from_disk`. `TorchStepDataset` reads frames on demand.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from navtune.core.actions import ACTION_SPACES
from navtune.data.format import EpisodeDataset, EpisodeRecord

_STR = "string"


def _features(level: str, frames: bool):
    import datasets as hfd

    img = hfd.Image() if frames else hfd.Value(_STR)
    meta = {
        "episode_id": hfd.Value(_STR),
        "scene": hfd.Value(_STR),
        "task": hfd.Value(_STR),
        "action_space": hfd.Value(_STR),
        "source": hfd.Value(_STR),
        "instruction": hfd.Value(_STR),
        "target": hfd.Value(_STR),
        "success": hfd.Value("bool"),
        "num_steps": hfd.Value("int32"),
    }
    if level == "step":
        return hfd.Features(
            {
                **meta,
                "t": hfd.Value("int32"),
                "action": hfd.Value(_STR),
                "expert_action": hfd.Value(_STR),
                "allowed_actions": hfd.List(hfd.Value(_STR)),
                "x": hfd.Value("float64"),
                "y": hfd.Value("float64"),
                "z": hfd.Value("float64"),
                "heading": hfd.Value("float64"),
                "geodesic_distance": hfd.Value("float64"),
                "collision": hfd.Value("bool"),
                "reward": hfd.Value("float64"),
                "return": hfd.Value("float64"),
                "done": hfd.Value("bool"),
                "distance_traveled": hfd.Value("float64"),
                "viewpoint": hfd.Value(_STR),
                "rgb": img,
                "depth": img,
            }
        )
    return hfd.Features(
        {
            **meta,
            "actions": hfd.List(hfd.Value(_STR)),
            "expert_actions": hfd.List(hfd.Value(_STR)),
            "geodesic_distances": hfd.List(hfd.Value("float64")),
            "collisions": hfd.List(hfd.Value("bool")),
            "rewards": hfd.List(hfd.Value("float64")),
            "returns": hfd.List(hfd.Value("float64")),
            "rgb": hfd.List(img),
            "depth": hfd.List(img),
        }
    )


def _frame(ds: EpisodeDataset, ep: EpisodeRecord, t: int, kind: str, frames: bool) -> Any:
    rel = ep.steps[t].frame(kind)
    if rel is None:
        return None
    # the dataset's own path check: a manifest path never makes the export read (and embed) another file
    return {"path": str(ds.frame_path(ep, t, kind).resolve()), "bytes": None} if frames else rel


def _meta(ep: EpisodeRecord) -> dict:
    return {
        "episode_id": ep.episode_id,
        "scene": ep.scene,
        "task": ep.task,
        "action_space": ep.action_space,
        "source": ep.source,
        "instruction": ep.instruction,
        "target": ep.target,
        "success": ep.success,
        "num_steps": len(ep.steps),
    }


def to_hf_dataset(root: str | os.PathLike | EpisodeDataset, level: str = "step", frames: bool = True):
    """A `datasets.Dataset` of the folder: `level="step"` (one row per step) or `"episode"`. With
    `frames=True` the rgb/depth columns are `datasets.Image` (decoded on access; depth is 16-bit mm),
    otherwise the frames' paths relative to the dataset folder."""
    import datasets as hfd

    if level not in ("step", "episode"):
        raise ValueError(f"level must be 'step' or 'episode' (got {level!r})")
    ds = root if isinstance(root, EpisodeDataset) else EpisodeDataset(root)
    rows: list[dict] = []
    for ep in ds:
        meta = _meta(ep)
        steps = ep.steps
        if level == "step":
            for s in steps:
                p = s.pose
                rows.append(
                    {
                        **meta,
                        "t": s.t,
                        "action": s.action,
                        "expert_action": s.expert_action,
                        "allowed_actions": list(s.allowed_actions),
                        "x": p["x"],
                        "y": p["y"],
                        "z": p.get("z", 0.0),
                        "heading": p.get("heading", 0.0),
                        "geodesic_distance": s.geodesic_distance,
                        "collision": s.collision,
                        "reward": s.reward,
                        "return": s.ret,
                        "done": s.t == len(steps) - 1,
                        "distance_traveled": s.info.get("distance_traveled"),
                        "viewpoint": s.info.get("viewpoint"),
                        "rgb": _frame(ds, ep, s.t, "rgb", frames),
                        "depth": _frame(ds, ep, s.t, "depth", frames),
                    }
                )
        else:
            rows.append(
                {
                    **meta,
                    "actions": [s.action for s in steps],
                    "expert_actions": [s.expert_action for s in steps],
                    "geodesic_distances": [s.geodesic_distance for s in steps],
                    "collisions": [s.collision for s in steps],
                    "rewards": [s.reward for s in steps],
                    "returns": [s.ret for s in steps],
                    "rgb": [_frame(ds, ep, s.t, "rgb", frames) for s in steps if s.rgb],
                    "depth": [_frame(ds, ep, s.t, "depth", frames) for s in steps if s.depth],
                }
            )
    features = _features(level, frames)
    if not rows:
        return hfd.Dataset.from_dict({k: [] for k in features}, features=features)
    cols = {k: [r[k] for r in rows] for k in features}
    return hfd.Dataset.from_dict(cols, features=features)


def check_hf_out(root: str | os.PathLike, out: str | os.PathLike) -> None:
    """Refuse an export folder that would damage data: the dataset folder itself or a folder inside it, a
    folder holding a navtune dataset (`save_to_disk` overwrites its dataset_info.json), or any other
    non-empty folder that is not an earlier Hugging Face export (its files would be mixed with ours)."""
    from navtune.core.lock import LOCK_FILE
    from navtune.core.paths import inside
    from navtune.data.format import INFO_FILE, MANIFEST_FILE, DatasetFormatError

    root, out = Path(root), Path(out)
    if inside(out, root):
        raise DatasetFormatError(f"is the dataset folder {root} (or inside it); export to another folder", file=out)
    if inside(root, out):
        raise DatasetFormatError(f"holds the dataset folder {root}; export to another folder", file=out)
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetFormatError("exists and is not a folder", file=out)
    if (out / MANIFEST_FILE).exists() or _is_navtune_info(out / INFO_FILE):
        raise DatasetFormatError("holds a navtune dataset; exporting there would overwrite its dataset_info.json",
                                 file=out)
    if any(p.name != LOCK_FILE for p in out.iterdir()) and not (out / "state.json").is_file():
        raise DatasetFormatError("is not empty and is not an earlier Hugging Face export; use a new folder",
                                 file=out)


def _is_navtune_info(path: Path) -> bool:
    import json

    from navtune.data.format import FORMAT_NAME

    try:
        return json.loads(path.read_bytes()).get("format") == FORMAT_NAME
    except FileNotFoundError:
        return False
    except (ValueError, AttributeError, RecursionError, OSError):
        return True  # unreadable: do not overwrite it


def save_hf(root: str | os.PathLike, out: str | os.PathLike, level: str = "step") -> Path:
    """Write the folder as a self-contained HF dataset (frame bytes embedded) at `out` (see `check_hf_out`
    for the folders it refuses)."""
    from navtune.core.lock import FolderLock

    check_hf_out(root, out)
    ds = to_hf_dataset(root, level=level, frames=True)
    out = Path(out)
    with FolderLock(out, what="Hugging Face export"):
        ds.save_to_disk(str(out))
    return out


def load_hf(path: str | os.PathLike):
    """`datasets.load_from_disk` of what `save_hf` wrote."""
    import datasets as hfd

    return hfd.load_from_disk(str(path))


class TorchStepDataset(torch.utils.data.Dataset):
    """A map-style torch Dataset over steps: dict of tensors (rgb (3, H, W) uint8, depth (1, H, W) float32
    metres, action index in its action space, reward, return, geodesic distance) plus ids; frames are
    decoded in `__getitem__`, so DataLoader workers do the decoding."""

    def __init__(self, root: str | os.PathLike | EpisodeDataset, rgb: bool = True, depth: bool = True):
        self.ds = root if isinstance(root, EpisodeDataset) else EpisodeDataset(root)
        self.rgb, self.depth = rgb, depth
        self.index = [(i, s.t) for i, ep in enumerate(self.ds) for s in ep.steps]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        e, t = self.index[i]
        ep = self.ds[e]
        s = ep.steps[t]
        space = ACTION_SPACES[ep.action_space]
        out: dict[str, Any] = {
            "episode_id": ep.episode_id,
            "scene": ep.scene,
            "t": t,
            "action": torch.tensor(space.index(s.action), dtype=torch.long),
            "reward": torch.tensor(np.nan if s.reward is None else s.reward, dtype=torch.float32),
            "return": torch.tensor(np.nan if s.ret is None else s.ret, dtype=torch.float32),
            "geodesic_distance": torch.tensor(
                np.nan if s.geodesic_distance is None else s.geodesic_distance, dtype=torch.float32
            ),
        }
        if self.rgb and s.rgb:
            out["rgb"] = torch.from_numpy(np.ascontiguousarray(self.ds.load_rgb(ep, t).transpose(2, 0, 1)))
        if self.depth and s.depth:
            out["depth"] = torch.from_numpy(self.ds.load_depth(ep, t))[None]
        return out

