"""Prompt formats (registry `PROMPT_FORMATS`): r2r-lowlevel (seed 1), objectnav-json (seed 2), chat."""
from pathlib import Path

from navtune.core.hub import is_hub_id
from navtune.agents.prompts import chat, objectnav_json, r2r_lowlevel  # noqa: F401  (register)
from navtune.agents.prompts.base import (
    IMAGE_PLACEHOLDER,
    AnswerPart,
    AnswerText,
    PROMPT_FORMATS,
    QWEN25VL_CHAT_TEMPLATE,
    BaseFormat,
    PromptFormat,
    Rendered,
    Segment,
    StepInput,
    format_class,
    get_format,
    render_chat,
)

DEFAULT_SYSTEM_PROMPT_FILE = Path(__file__).with_name("system_prompt.txt")
#: navtune's system prompt for continuous (Habitat-style) actions, when a format has none of its own
CONTINUOUS_SYSTEM_PROMPT = (
    "You are a navigation agent inside a building. At every step you see the current camera image, the task and "
    "the actions you have taken so far. move_forward moves 0.25 m ahead, turn_left and turn_right turn 30 "
    "degrees, and stop ends the episode when you have reached the goal. Answer with exactly one action."
)


def default_system_prompt(action_space: str = "graph") -> str:
    """navtune's system prompt for an action space (graph: Left/Right/Move/Stop, the seed-1 text)."""
    if action_space == "continuous":
        return CONTINUOUS_SYSTEM_PROMPT
    return DEFAULT_SYSTEM_PROMPT_FILE.read_text(encoding="utf-8")


def find_system_prompt(path: str | Path | None = None, model_dir: str | Path | None = None) -> str | None:
    """`path`'s text if given, else the model's `system_prompt.txt` (a local folder's, or a hub repo's when it
    ships one, e.g. the seed-1 model whose prompt is "mandatory"); None when neither gives one."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"system prompt file not found: {p}")
        return p.read_text(encoding="utf-8")
    if model_dir is not None:
        local = Path(model_dir) / "system_prompt.txt"
        if local.is_file():
            return local.read_text(encoding="utf-8")
        if is_hub_id(model_dir):  # the hub repo's file, when cached or reachable
            try:
                from huggingface_hub import hf_hub_download

                return Path(hf_hub_download(str(model_dir), "system_prompt.txt")).read_text(encoding="utf-8")
            except Exception:  # noqa: BLE001 - offline, no such file, no access: fall back to navtune's text
                pass
    return None


def load_system_prompt(path: str | Path | None = None, model_dir: str | Path | None = None,
                       format: BaseFormat | None = None) -> str:
    """System prompt text: `find_system_prompt(path, model_dir)`, else the prompt format's own default
    (`format.default_system_prompt()`), else navtune's graph-action default."""
    found = find_system_prompt(path, model_dir)
    if found is not None:
        return found
    if format is not None:
        return format.default_system_prompt()
    return DEFAULT_SYSTEM_PROMPT_FILE.read_text(encoding="utf-8")


__all__ = [
    "IMAGE_PLACEHOLDER", "PROMPT_FORMATS", "QWEN25VL_CHAT_TEMPLATE", "BaseFormat", "PromptFormat", "Rendered",
    "Segment", "StepInput", "format_class", "get_format", "render_chat", "load_system_prompt",
    "DEFAULT_SYSTEM_PROMPT_FILE", "default_system_prompt", "find_system_prompt", "AnswerText", "AnswerPart",
]
