"""Which agent to evaluate, as plain data (`AgentSpec`, saved in run.json) and how to build its `Policy`."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from navtune.core.config import option, parse_size
from navtune.core.hub import is_hub_id

BASELINES = ("random", "forward", "oracle")
#: What an unset --format / --image-size falls back to when the model folder has no navtune_agent.json.
DEFAULT_FORMAT, DEFAULT_IMAGE_SIZE = "r2r-lowlevel", (320, 240)
DEFAULT_DECODE, DEFAULT_MAX_NEW_TOKENS = "score", 64  # when neither a flag nor the folder's card says
AUTO = "auto"


def parse_agent_size(text: str) -> tuple[int, int] | None | Literal["auto"]:
    """``auto`` (the model folder's card decides), ``none`` (frames as rendered) or ``WxH``."""
    return AUTO if text.lower() == AUTO else parse_size(text)


@dataclass(frozen=True)
class AgentSpec:
    """A baseline (`random` | `forward` | `oracle`) or `vlm`: a model folder, an optional peft adapter, a
    prompt format, the inference mode and the decoding (constrained `score` or free-text `generate`).

    A folder written by `navtune train` carries an `AgentCard` (navtune_agent.json): `resolved()` fills the
    format, frame size, system prompt and base model + adapter from it where no flag set them."""

    kind: str = option("forward", flag="--agent", help="random | forward | oracle | vlm")
    model: str | None = option(None, help="vlm: model folder or hub id.")
    adapter: str | None = option(None, help="vlm: peft LoRA adapter folder.")
    format: str | None = option(None, help="vlm: r2r-lowlevel | objectnav-json | chat (or a --plugin's); default: "
                                "the model folder's navtune_agent.json, else r2r-lowlevel.")
    mode: str | None = option(None, help="vlm: full | cached | kv (default: the format's best).")
    decode: str | None = option(None, help="vlm: score (the allowed actions' whole continuations after the forced "
                                "answer head) | generate (free text, parsed; invalid answers are counted and replaced "
                                "by an unbiased draw) | constrained (the format's answer skeleton forced, free fields "
                                "generated, the action chosen among the allowed ones). Default: the model folder's "
                                "navtune_agent.json, else score.")
    max_new_tokens: int | None = option(None, min=1, help="vlm: most tokens generated per step (generate / "
                                        "constrained); default: the model folder's navtune_agent.json, else 64.")
    sees_depth: bool = option(False, flag="--depth-input/--no-depth-input",
                              help="vlm: the model is shown each step's depth frame as a second image (needs "
                                   "--depth and a format that shows depth, e.g. objectnav-json); on when the model "
                                   "folder's navtune_agent.json says it was trained so.")
    system_prompt_file: str | None = option(None, flag="--system-prompt", help="vlm: system prompt file.")
    seed: int = option(0, help="random agent's seed.")
    dtype: str = option("float32", help="vlm: model dtype")
    device: str = option("cpu", help="vlm: torch device")
    image_size: tuple[int, int] | None | Literal["auto"] = option(  # frames resized to this (as in training)
        AUTO, cli_type=str, cli_default=AUTO, to_field=parse_agent_size,
        help="vlm: resize frames to WxH before the model ('none': as rendered; 'auto': the model folder's "
             "navtune_agent.json, else 320x240); use the size the model was trained with.")

    def __post_init__(self) -> None:
        if self.image_size is not None and self.image_size != AUTO:
            object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        if self.kind not in BASELINES + ("vlm",):
            raise ValueError(f"unknown agent {self.kind!r}; known: {', '.join(BASELINES + ('vlm',))}")
        if self.decode not in (None, "score", "generate", "constrained"):
            raise ValueError(f"unknown --decode {self.decode!r}; known: score, generate, constrained")
        if self.kind == "vlm" and not self.model:
            raise ValueError("agent 'vlm' needs --model (a model folder or hub id)")
        if self.adapter and not is_hub_id(self.adapter) and not (Path(self.adapter) / "adapter_config.json").is_file():
            raise ValueError(f"--adapter {self.adapter}: not a peft adapter folder (no adapter_config.json) "
                             "nor a hub id")

    def label(self) -> str:
        if self.kind != "vlm":
            return self.kind
        name = Path(self.adapter or self.model).name
        return f"vlm:{name}:{self.format or DEFAULT_FORMAT}:{self.decode or DEFAULT_DECODE}"

    def resolved(self) -> "AgentSpec":
        """Every vlm field concrete: unset ones from the model folder's `AgentCard` (else navtune's defaults);
        a flag that disagrees with the card wins, with a warning. A card of an adapter folder turns
        ``--model DIR`` into its base model + the adapter DIR."""
        if self.kind != "vlm":
            return self
        from navtune.agents.models.card import CARD_FILE, read_card

        card = read_card(self.model)
        if card is None:
            return dataclasses.replace(self, format=self.format or DEFAULT_FORMAT,
                                       image_size=DEFAULT_IMAGE_SIZE if self.image_size == AUTO else self.image_size,
                                       decode=self.decode or DEFAULT_DECODE,
                                       max_new_tokens=self.max_new_tokens or DEFAULT_MAX_NEW_TOKENS)
        where = Path(str(self.model)) / CARD_FILE
        checks = [("format", "--format", self.format, card.format),
                  ("image_size", "--image-size", self.image_size, card.image_size)]
        checks += [c for c in (("decode", "--decode", self.decode, card.decode),
                               ("max_new_tokens", "--max-new-tokens", self.max_new_tokens, card.max_new_tokens))
                   if c[3] is not None]  # a card that names no decoding leaves it to the flag or the default
        for name, flag, mine, theirs in checks:
            if mine not in (None, AUTO) and mine != theirs:
                warnings.warn(f"{flag} {mine!r} overrides {where} ({name} {theirs!r})", stacklevel=2)
        model, adapter = self.model, self.adapter
        if card.adapter:
            if self.adapter:
                raise ValueError(f"--model {self.model} is a LoRA adapter over {card.base_model} ({where}); "
                                 "give it as --model alone, without --adapter")
            model, adapter = card.base_model, str(self.model)
            if not is_hub_id(model) and not Path(model).exists():
                raise ValueError(f"{where}: field 'base_model' names {model}, which does not exist")
        prompt_file = self.system_prompt_file
        if prompt_file is None and (Path(str(self.model)) / "system_prompt.txt").is_file():
            prompt_file = str(Path(str(self.model)) / "system_prompt.txt")
        return dataclasses.replace(
            self, model=model, adapter=adapter, format=self.format or card.format,
            image_size=card.image_size if self.image_size == AUTO else self.image_size,
            decode=self.decode or card.decode or DEFAULT_DECODE,
            max_new_tokens=self.max_new_tokens or card.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
            sees_depth=self.sees_depth or card.sees_depth, system_prompt_file=prompt_file)

    def to_dict(self) -> dict:
        return asdict(self)


def load_vlm(model: str, adapter: str | None = None, dtype: str = "float32", device: str = "cpu") -> tuple[Any, Any]:
    """(model, processor) from a folder or hub id; a peft adapter is applied and merged for inference."""
    from navtune.agents.models.loading import load_model

    loaded = load_model(model, dtype=dtype, device=device)
    m = loaded.model
    if adapter:
        from peft import PeftModel

        from navtune.agents.models.loading import check_model_files

        if not is_hub_id(adapter):
            check_model_files(adapter, required="adapter_config.json")
        m = PeftModel.from_pretrained(m, adapter).merge_and_unload()
    m.eval()
    return m, loaded.processor


def build_policy(spec: AgentSpec, action_space: str, loaded: tuple[Any, Any] | None = None) -> Any:
    """The `Policy` of `spec` for an action space; `loaded` = (model, processor) reuses a loaded model."""
    from navtune.agents.policy import make_policy

    if spec.kind == "random":
        return make_policy("random", action_space=action_space, seed=spec.seed)
    if spec.kind in ("forward", "oracle"):
        return make_policy(spec.kind, action_space=action_space)
    from navtune.agents.prompts import format_class

    spec = spec.resolved()

    speaks = format_class(spec.format).action_spaces
    if action_space not in speaks:
        raise ValueError(f"prompt format {spec.format!r} speaks the {' / '.join(speaks)} action space, but the "
                         f"episodes need {action_space}")
    model, processor = loaded if loaded is not None else load_vlm(spec.model, spec.adapter, spec.dtype, spec.device)
    return make_policy("vlm", model=model, processor=processor, format=spec.format, decode=spec.decode,
                       mode=spec.mode, system_prompt_file=spec.system_prompt_file, model_path=spec.model,
                       image_size=spec.image_size, action_space=action_space, max_new_tokens=spec.max_new_tokens,
                       depth=spec.sees_depth, seed=spec.seed)
