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
from navtune.core.hub import is_hub_id


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
    tok = AutoTokenizer.from_pretrained(src)
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


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float64": torch.float64, "fp64": torch.float64,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; known: {sorted(DTYPES)}") from None


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
        config = AutoConfig.from_pretrained(src)
    cls = {"qwen2_5_vl": Qwen2_5_VLForConditionalGeneration, "qwen2_vl": Qwen2VLForConditionalGeneration}.get(
        config.model_type)
    if cls is None:
        raise ValueError(f"{src}: model_type {config.model_type!r} is not Qwen2-VL / Qwen2.5-VL")
    model = cls.from_pretrained(src, dtype=parse_dtype(dtype), attn_implementation=_attn_implementation(
        attn_implementation, device))
    model.to(device).eval()
    return LoadedModel(model=model, processor=load_processor(src, **processor_kwargs), source=src)
