"""Load Qwen2-VL / Qwen2.5-VL checkpoints (hub id or local folder) with an image-only processor.

transformers 5.x builds `Qwen2_5_VLProcessor` with a video processor that needs torchvision (which navtune
does not install). `ImageOnlyQwen2_5_VLProcessor` passes ``video_processor=None`` and uses the PIL image
processor; it is registered with `AutoProcessor` so folders saved by navtune load through the auto class
(without the registration AutoProcessor silently returns only the tokenizer)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLProcessor, Qwen2VLConfig
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from navtune.agents.prompts.base import QWEN25VL_CHAT_TEMPLATE
from navtune.core.errors import NavtuneError, one_line
from navtune.core.hub import is_hub_id


class ModelFolderError(NavtuneError):
    """A model or adapter folder with a missing, corrupt or unreadable file (the message names it)."""


#: JSON files of a model / processor / adapter folder that are checked before transformers reads them
MODEL_JSON_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "processor_config.json", "preprocessor_config.json",
                    "adapter_config.json", "model.safetensors.index.json")


def check_model_files(folder: str | os.PathLike, required: str = "config.json") -> None:
    """Check a local model (or peft adapter) folder before loading it, so that a bad file is one error
    naming it instead of a traceback from deep inside transformers or tokenizers: `required` exists, every
    JSON file parses to an object, every ``*.safetensors`` has a complete header (a truncated, empty or
    garbage file is caught without reading the weights), and a sharded index names shards inside the folder."""
    from safetensors import safe_open

    from navtune.core.io import read_json
    from navtune.core.paths import resolve_inside

    folder = Path(folder)
    if not (folder / required).is_file():
        raise ModelFolderError(f"missing: {folder} is not a model folder", file=folder / required)
    for name in MODEL_JSON_FILES:
        path = folder / name
        if path.exists() and not isinstance(read_json(path, ModelFolderError), dict):
            raise ModelFolderError("must hold a JSON object", file=path)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = read_json(index, ModelFolderError).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelFolderError("must map parameter names to shard files", file=index, field="weight_map")
        for shard in sorted(set(map(str, weight_map.values()))):
            if not resolve_inside(folder, shard, index, "weight_map", ModelFolderError).is_file():
                raise ModelFolderError(f"names shard {shard!r}, which is missing", file=index, field="weight_map")
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as f:
                f.keys()
        except Exception as e:  # safetensors raises its own SafetensorError (an Exception) on a bad header
            raise ModelFolderError(f"not a readable safetensors file (truncated or corrupt?): {one_line(e)}",
                                   file=path) from None




class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor without the (torchvision-only) video processor."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        kwargs.pop("video_processor", None)
        super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                         chat_template=chat_template, **kwargs)


_registered = False


def register_processor() -> None:
    """Tell AutoProcessor about the image-only class (idempotent)."""
    global _registered
    if not _registered:
        AutoProcessor.register(Qwen2_5_VLConfig, ImageOnlyQwen2_5_VLProcessor, exist_ok=True)
        AutoProcessor.register(Qwen2VLConfig, ImageOnlyQwen2_5_VLProcessor, exist_ok=True)
        _registered = True


def load_processor(name_or_path: str | os.PathLike, min_pixels: int | None = None,
                   max_pixels: int | None = None) -> ImageOnlyQwen2_5_VLProcessor:
    """Processor of a checkpoint (always the image-only class, whatever its saved processor_class says)."""
    from transformers import AutoTokenizer

    register_processor()
    src = str(name_or_path)
    tok = _loading(src, AutoTokenizer.from_pretrained, src, _file="tokenizer.json")
    img_kwargs: dict[str, Any] = {}
    if min_pixels is not None:
        img_kwargs["min_pixels"] = min_pixels
    if max_pixels is not None:
        img_kwargs["max_pixels"] = max_pixels
    try:
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(src, **img_kwargs)
    except OSError as e:
        raise FileNotFoundError(f"{src}: no image processor config (preprocessor_config.json) found: {e}") from e
    template = getattr(tok, "chat_template", None)
    if not template or "image_pad" not in template:
        template = QWEN25VL_CHAT_TEMPLATE
    proc = ImageOnlyQwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok, chat_template=template)
    return proc


def _attn_implementation(requested: str | None, device: str) -> str:
    if requested and requested != "auto":
        return requested
    if device.startswith("cuda"):
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16, "float64": torch.float64, "fp64": torch.float64}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; known: {sorted(DTYPES)}") from None


def set_activation_checkpointing(model: Any, enabled: bool) -> None:
    """Turn activation (gradient) checkpointing on or off, non-reentrant. transformers 5.2x renamed
    ``gradient_checkpointing_enable/disable`` (now deprecated) to ``activation_checkpointing_*``; use the
    name this version has (plain or peft-wrapped models).

    Enabling also hooks every input embedding of the model, the vision tower's patch embedding included,
    to make its output require grad (and disabling leaves the hooks). Only reentrant checkpointing needs
    that; with a frozen vision tower it makes backward run through the whole tower for every frame (a
    3B SFT step on a 20-step r2r-lowlevel episode took 33 s instead of 6 s on an H200), so they are removed."""
    new = getattr(model, "activation_checkpointing_enable" if enabled else "activation_checkpointing_disable", None)
    if enabled:
        if new is not None:
            new(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif new is not None:
        new()
    else:
        model.gradient_checkpointing_disable()
    model.disable_input_require_grads()


@dataclass
class LoadedModel:
    model: Any  # Qwen2VLForConditionalGeneration | Qwen2_5_VLForConditionalGeneration
    processor: ImageOnlyQwen2_5_VLProcessor
    source: str

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_model(name_or_path: str | os.PathLike, dtype: str | torch.dtype = "float32", device: str = "cpu",
               attn_implementation: str | None = "auto", **processor_kwargs: Any) -> LoadedModel:
    """`from_pretrained` on a hub id or a local folder (offline works when the folder exists)."""
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

    src = str(name_or_path)
    if is_hub_id(src):
        try:  # the hub or its local cache must have it
            config = AutoConfig.from_pretrained(src)
        except OSError as e:
            raise FileNotFoundError(f"{src}: no such local folder, and the Hugging Face hub (or its cache, when "
                                    f"offline) does not provide it: {e}") from e
    elif not Path(src).exists():
        raise FileNotFoundError(f"model folder not found: {src}")
    else:
        check_model_files(src)
        config = _loading(src, AutoConfig.from_pretrained, src, _file="config.json")
    cls = {"qwen2_5_vl": Qwen2_5_VLForConditionalGeneration, "qwen2_vl": Qwen2VLForConditionalGeneration}.get(
        config.model_type)
    if cls is None:
        raise ModelFolderError(f"model_type {config.model_type!r} is not Qwen2-VL / Qwen2.5-VL",
                               file=Path(src) / "config.json", field="model_type")
    model = _loading(src, cls.from_pretrained, src, dtype=parse_dtype(dtype), _file="model.safetensors",
                     attn_implementation=_attn_implementation(attn_implementation, device))
    model.to(device).eval()
    return LoadedModel(model=model, processor=_loading(src, load_processor, src, **processor_kwargs), source=src)


def _loading(src: str, fn: Any, *args: Any, _file: str | None = None, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` with whatever transformers / tokenizers raise on a bad local file turned into a
    `ModelFolderError` naming the folder (files were checked first; this catches what the checks cannot see,
    e.g. a tokenizer.json that is JSON but not a tokenizer)."""
    if is_hub_id(src):
        return fn(*args, **kwargs)
    try:
        return fn(*args, **kwargs)
    except (NavtuneError, FileNotFoundError, MemoryError):
        raise
    except Exception as e:  # tokenizers raises plain Exception; transformers OSError / ValueError / KeyError
        file = Path(src) / _file if _file and (Path(src) / _file).exists() else src
        raise ModelFolderError(f"cannot be loaded: {type(e).__name__}: {one_line(e)[:500]}", file=file) from None
