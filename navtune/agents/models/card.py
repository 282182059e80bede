"""`AgentCard`: navtune's metadata beside a trained agent's weights (``navtune_agent.json``).

A folder that `navtune train sft|awr|rl` writes is a self-describing agent: the card says how the weights
must be prompted (format, frame size, action space, system prompt) and what they are (a full model, or a
peft adapter over a base model), so ``navtune eval --agent vlm --model DIR`` needs no other flag. The model
files themselves stay what transformers / peft write; the card only adds what they cannot know.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from navtune.core.errors import NavtuneError
from navtune.core.hub import is_hub_id
from navtune.core.io import atomic_write_json

CARD_FILE = "navtune_agent.json"
CARD_VERSION = 1


class AgentCardError(NavtuneError):
    """A card that cannot be read or used (the message names the file and the field)."""


@dataclass(frozen=True)
class AgentCard:
    """How to run the weights of one folder."""

    format: str  # prompt format the weights were trained with (a registry key)
    image_size: tuple[int, int] | None  # frames resized to (W, H) before the model; None: as rendered
    action_space: str | None  # graph | continuous (None: not known when the folder was written)
    system_prompt: str  # the system prompt text used in training
    base_model: str  # model folder / hub id the weights start from
    adapter: bool  # True: this folder is a peft adapter over `base_model`; False: full weights here (merged)
    trainer: str = ""  # sft | awr | rl | ... (informational)
    sees_depth: bool = False  # trained with each step's depth frame as a second image (must be shown it)
    decode: str | None = None  # how its answers are read (score | generate | constrained); None: navtune's default
    max_new_tokens: int | None = None  # generated tokens per step its answers need (generate / constrained)
    version: int = CARD_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size is not None else None
        return d


def _absolute(model: str) -> str:
    """A local model folder as an absolute path (a card is read from anywhere); hub ids unchanged."""
    return model if is_hub_id(model) else str(Path(model).resolve())


def make_card(format: str, image_size: tuple[int, int] | None, action_space: str | None, system_prompt: str,
              base_model: str, adapter: bool, trainer: str, sees_depth: bool = False) -> AgentCard:
    return AgentCard(format=format, image_size=tuple(int(v) for v in image_size) if image_size else None,
                     action_space=action_space, system_prompt=system_prompt, base_model=_absolute(str(base_model)),
                     adapter=bool(adapter), trainer=trainer, sees_depth=bool(sees_depth))


def write_card(folder: str | os.PathLike, card: AgentCard) -> Path:
    path = Path(folder) / CARD_FILE
    atomic_write_json(path, card.to_dict())
    return path


def read_card(folder: str | os.PathLike | None) -> AgentCard | None:
    """The card of a model folder (None when it has none: a plain Hugging Face folder or a hub id)."""
    if folder is None or is_hub_id(str(folder)):
        return None
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise AgentCardError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(raw, dict):
        raise AgentCardError(f"{path}: expected a JSON object")
    known = {f.name for f in fields(AgentCard)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise AgentCardError(f"{path}: unknown field(s) {unknown}")
    for name in ("format", "system_prompt", "base_model", "adapter"):
        if name not in raw:
            raise AgentCardError(f"{path}: field '{name}' is missing")
    size = raw.get("image_size")
    if size is not None and (not isinstance(size, list) or len(size) != 2 or not all(isinstance(v, int) for v in size)):
        raise AgentCardError(f"{path}: field 'image_size' must be [W, H] or null (got {size!r})")
    if not isinstance(raw["adapter"], bool):
        raise AgentCardError(f"{path}: field 'adapter' must be true or false (got {raw['adapter']!r})")
    if raw.get("decode") not in (None, "score", "generate", "constrained"):
        raise AgentCardError(f"{path}: field 'decode' must be score, generate, constrained or null (got {raw['decode']!r})")
    raw["image_size"] = tuple(size) if size is not None else None
    return AgentCard(**raw)


def export_standalone(folder: str | os.PathLike, out: str | os.PathLike, decode: str | None = None,
                      max_new_tokens: int | None = None) -> Path:
    """Write the agent of `folder` (full weights, or a peft adapter over its card's base model) to `out` as one
    standalone, self-describing folder: merged full weights, processor, system_prompt.txt and a card with
    ``adapter: false``, so ``navtune eval --agent vlm --model OUT`` needs nothing else (not even the base
    model's folder). `decode` / `max_new_tokens`: how its answers are to be read, recorded in the card.
    Written beside `out` and renamed into place."""
    import shutil

    from navtune.agents.models.loading import load_model

    folder, out = Path(folder), Path(out)
    card = read_card(folder)
    if card is None:
        raise AgentCardError(f"{folder / CARD_FILE}: not found (not a folder written by navtune train)")
    loaded = load_model(card.base_model if card.adapter else folder)
    model = loaded.model
    if card.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    loaded.processor.save_pretrained(tmp)
    (tmp / "system_prompt.txt").write_text(card.system_prompt, encoding="utf-8")
    write_card(tmp, replace(card, adapter=False, decode=decode or card.decode,
                            max_new_tokens=max_new_tokens or card.max_new_tokens))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
