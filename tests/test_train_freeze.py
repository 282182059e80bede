"""What is trained: the vision tower + merger frozen for SFT, LoRA only on the language model's projections."""
from __future__ import annotations

import re

import pytest

from navtune.trainers.config import LORA_TARGET_REGEX, LoraConfig
from navtune.trainers.freeze import apply_lora, freeze_embeddings, freeze_vision, lora_parameters, lora_target_names


@pytest.fixture(scope="module")
def model():
    from navtune.agents.models.tiny import build_tiny_model

    return build_tiny_model(None, size="tiny", seed=0)[0]


def test_lora_pattern_is_anchored_on_the_language_model(model):
    names = lora_target_names(model)
    n_layers = model.config.text_config.num_hidden_layers
    assert len(names) == 7 * n_layers
    assert all(n.startswith("model.language_model.layers.") for n in names)
    # why a plain list is wrong: the vision blocks have the same MLP names
    plain = [n for n, _ in model.named_modules() if re.search(r"\.(gate_proj|up_proj|down_proj)$", n)]
    assert any(".visual.blocks." in n for n in plain)
    assert not any(re.fullmatch(LORA_TARGET_REGEX, n) for n in plain if ".visual." in n)


def test_freeze_vision_freezes_tower_and_merger_only(model):
    frozen = freeze_vision(model)
    assert any(n.startswith("merger.") for n in frozen) and any(n.startswith("blocks.") for n in frozen)
    for n, p in model.named_parameters():
        assert p.requires_grad == (".visual." not in f".{n}"), n
    for p in model.parameters():
        p.requires_grad_(True)


def test_freeze_embeddings_freezes_token_embeddings_and_head_only(model):
    frozen = freeze_embeddings(model)
    assert frozen == ["weight", "weight"]
    for n, p in model.named_parameters():
        assert p.requires_grad == (n not in ("model.language_model.embed_tokens.weight", "lm_head.weight")), n
    for p in model.parameters():
        p.requires_grad_(True)


def test_apply_lora_trains_only_adapters(model):
    peft_model = apply_lora(model, LoraConfig(r=2, alpha=4))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {n for n, _ in lora_parameters(peft_model)} == set(trainable)
    assert not any(".visual." in n for n in trainable)


def test_activation_checkpointing_keeps_the_frozen_vision_tower_out_of_backward(model):
    """transformers' checkpointing hooks the vision patch embedding to require grad: with a frozen tower
    backward would run through it for every frame. navtune's switch removes those hooks (non-reentrant
    checkpointing does not need them); the gradients stay exact (test_train_losses)."""
    import torch

    from navtune.agents.models.loading import set_activation_checkpointing

    freeze_vision(model)
    seen: list[bool] = []
    hook = model.model.visual.register_forward_hook(lambda mod, args, out: seen.append(out.pooler_output.requires_grad))
    pixels = torch.rand(16, 3 * 2 * 14 * 14)  # one 4x4-patch image
    try:
        for enabled in (True, False):
            set_activation_checkpointing(model, enabled)
            assert model.model.language_model.gradient_checkpointing == enabled
            model.model.visual(pixels, grid_thw=torch.tensor([[1, 4, 4]]))
    finally:
        hook.remove()
        set_activation_checkpointing(model, False)
        for p in model.parameters():
            p.requires_grad_(True)
    assert seen == [False, False]
