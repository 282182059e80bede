"""What is trained: freezing the vision side (seed 1) and LoRA adapters on the language model (seed 2).

Qwen2-VL / Qwen2.5-VL keep the vision encoder *and* its merger (the cross-modal projector) under one
module, ``model.visual``; freezing it freezes both. LoRA targets are matched with a regex anchored on
``language_model.layers`` because the vision blocks also have ``mlp.gate_proj/up_proj/down_proj``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from navtune.trainers.config import LORA_TARGET_REGEX, LoraConfig


class TrainSetupError(ValueError):
    """A model, adapter or dataset that cannot be trained as asked (message names the file and field)."""


def read_config_json(path: Path) -> dict:
    """A checkpoint's JSON config (config.json, adapter_config.json), or an error naming the file."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TrainSetupError(f"{path}: not valid JSON ({e})") from None


def vision_module(model: nn.Module) -> nn.Module:
    """The vision tower + merger of a Qwen2(.5)-VL model (plain or wrapped by peft)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", base)
    visual = getattr(inner, "visual", None)
    if visual is None:
        raise TrainSetupError(f"{type(base).__name__} has no vision tower (`model.visual`): not a Qwen2(.5)-VL model")
    return visual


def freeze_vision(model: nn.Module) -> list[str]:
    """Freeze the vision encoder and the merger; return the frozen parameter names."""
    visual = vision_module(model)
    names = []
    for n, p in visual.named_parameters():
        p.requires_grad_(False)
        names.append(n)
    return names


def freeze_embeddings(model: nn.Module) -> list[str]:
    """Freeze the token embeddings and the output head (`lm_head`); return the frozen parameter names.

    With Qwen's 151k-token vocabulary these two matrices hold almost all of a tiny model's weights, and
    their dense gradients and optimizer updates most of its training step; the layers between them still
    learn."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = []
    for mod in (base.get_input_embeddings(), base.get_output_embeddings()):
        for n, p in mod.named_parameters():
            p.requires_grad_(False)
            names.append(n)
    return names


def lora_target_names(model: nn.Module, pattern: str = LORA_TARGET_REGEX) -> list[str]:
    """Names of the Linear modules the LoRA pattern matches (full-match, like peft does for a string)."""
    rx = re.compile(pattern)
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and rx.fullmatch(n)]


def apply_lora(model: nn.Module, cfg: LoraConfig) -> nn.Module:
    """Wrap `model` with peft LoRA adapters (fresh, or loaded from ``cfg.init_path`` after checking it fits).

    Everything else is frozen by peft; the returned model's trainable parameters are the LoRA weights.
    """
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    if cfg.init_path:
        check_adapter_matches(cfg.init_path, model)
        return PeftModel.from_pretrained(model, cfg.init_path, is_trainable=True)
    targets = lora_target_names(model, cfg.target_regex)
    if not targets:
        raise TrainSetupError(f"LoRA pattern {cfg.target_regex!r} matches no Linear module of {type(model).__name__}")
    pcfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=cfg.target_regex, bias="none")
    return get_peft_model(model, pcfg)


def check_adapter_matches(adapter_dir: str | Path, model: nn.Module) -> None:
    """Raise a clear error when a peft adapter folder does not fit `model` (missing module or wrong shape).

    peft itself fails with a long size-mismatch trace deep in ``load_state_dict``, or silently leaves
    unmatched keys untrained; here the first offending key is named with both shapes.
    """
    from safetensors import safe_open

    adapter_dir = Path(adapter_dir)
    cfg_file = adapter_dir / "adapter_config.json"
    weights = adapter_dir / "adapter_model.safetensors"
    if not cfg_file.is_file():
        raise TrainSetupError(f"{adapter_dir}: not a peft adapter folder (no adapter_config.json)")
    if not weights.is_file():
        raise TrainSetupError(f"{adapter_dir}: adapter_model.safetensors is missing")
    acfg = read_config_json(cfg_file)
    if acfg.get("peft_type", "LORA") != "LORA":
        raise TrainSetupError(f"{cfg_file}: peft_type {acfg.get('peft_type')!r} is not LORA")
    modules = dict(model.named_modules())
    with safe_open(str(weights), framework="pt") as f:
        keys = list(f.keys())
        if not keys:
            raise TrainSetupError(f"{weights}: holds no tensors")
        for key in keys:
            m = re.match(r"(?:base_model\.model\.)?(.*)\.(lora_A|lora_B)(?:\.[^.]+)?\.weight$", key)
            if m is None:
                continue
            name, part = m.group(1), m.group(2)
            mod = modules.get(name)
            if not isinstance(mod, nn.Linear):
                raise TrainSetupError(
                    f"{weights}: key {key!r} targets module {name!r}, which the base model "
                    f"({type(model).__name__}) does not have as a Linear layer: adapter and base do not match")
            shape = tuple(f.get_slice(key).get_shape())
            r = shape[0] if part == "lora_A" else shape[1]
            want = (r, mod.in_features) if part == "lora_A" else (mod.out_features, r)
            if shape != want:
                raise TrainSetupError(
                    f"{weights}: key {key!r} has shape {shape}, the base model's {name!r} needs {want} "
                    f"(in={mod.in_features}, out={mod.out_features}): adapter and base do not match")


def lora_parameters(model: nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The (name, parameter) pairs of the LoRA weights (for the L2 penalty and checks)."""
    return [(n, p) for n, p in model.named_parameters() if "lora_" in n]


def trainable_summary(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
