"""Self-describing agents: `navtune train` outputs carry navtune_agent.json (format, frame size, action space,
system prompt, base model + adapter or merged), and `AgentSpec` / `navtune eval --agent vlm --model DIR` use it
when no flag says otherwise (a disagreeing flag wins, with a warning)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from navtune.agents.models.card import CARD_FILE, AgentCardError, make_card, read_card, write_card
from navtune.evaluation.agents import AgentSpec


def _folder(tmp_path: Path, name: str, adapter: bool, base: Path | None = None, size=(56, 56)) -> Path:
    d = tmp_path / name
    d.mkdir()
    if adapter:
        (d / "adapter_config.json").write_text("{}")
    (d / "system_prompt.txt").write_text("Navigate.\n")
    write_card(d, make_card("chat", size, "graph", "Navigate.\n", str(base or d), adapter, "sft"))
    return d


def test_card_roundtrip_and_clear_errors(tmp_path):
    d = _folder(tmp_path, "m", adapter=False)
    card = read_card(d)
    assert (card.format, card.image_size, card.action_space, card.adapter) == ("chat", (56, 56), "graph", False)
    assert Path(card.base_model).is_absolute()
    assert read_card(tmp_path) is None and read_card("org/model") is None  # no card: a plain folder, a hub id
    raw = json.loads((d / CARD_FILE).read_text())
    for bad, msg in (({**raw, "image_size": [56]}, "image_size"), ({**raw, "colour": 1}, "unknown field"),
                     ({k: v for k, v in raw.items() if k != "format"}, "'format' is missing")):
        (d / CARD_FILE).write_text(json.dumps(bad))
        with pytest.raises(AgentCardError, match=msg) as e:
            read_card(d)
        assert CARD_FILE in str(e.value)


def test_spec_fills_unset_fields_from_the_card(tmp_path):
    full = _folder(tmp_path, "full", adapter=False)
    spec = AgentSpec("vlm", model=str(full)).resolved()
    assert (spec.format, spec.image_size, spec.adapter) == ("chat", (56, 56), None)
    assert spec.system_prompt_file == str(full / "system_prompt.txt")
    base = _folder(tmp_path, "base", adapter=False, size=(64, 48))
    lora = _folder(tmp_path, "lora", adapter=True, base=base)
    spec = AgentSpec("vlm", model=str(lora)).resolved()
    assert (spec.model, spec.adapter, spec.image_size) == (str(base.resolve()), str(lora), (56, 56))
    with pytest.raises(ValueError, match="without --adapter"):
        AgentSpec("vlm", model=str(lora), adapter=str(lora)).resolved()
    with pytest.warns(UserWarning, match="--format 'r2r-lowlevel' overrides"):
        assert AgentSpec("vlm", model=str(full), format="r2r-lowlevel").resolved().format == "r2r-lowlevel"
    # no card: navtune's defaults, as before cards existed
    plain = tmp_path / "plain"
    plain.mkdir()
    spec = AgentSpec("vlm", model=str(plain)).resolved()
    assert (spec.format, spec.image_size) == ("r2r-lowlevel", (320, 240))
    assert AgentSpec("vlm", model=str(plain), image_size=None).resolved().image_size is None  # 'none': as rendered


@pytest.mark.slow
def test_sft_output_is_a_self_describing_agent(tmp_path, tmp_path_factory):
    from test_train_helpers import ListSource, load_tiny, make_chat_episode, tiny_dir

    from navtune.trainers.config import TrainConfig
    from navtune.trainers.run import train

    model_dir = tiny_dir(tmp_path_factory)
    _, proc = load_tiny(model_dir)
    eps = [make_chat_episode(proc, 2, seed=s, size=56) for s in range(2)]
    cfg = TrainConfig(model=model_dir, out=str(tmp_path / "sft"), image_size=(56, 56), loggers=("csv",),
                      progress=False)
    res = train(cfg, train_source=ListSource(eps))
    card = read_card(res.final)
    assert (card.format, card.image_size, card.adapter, card.trainer) == ("chat", (56, 56), False, "sft")
    assert (res.final / "system_prompt.txt").read_text() == card.system_prompt
    spec = AgentSpec("vlm", model=str(res.final)).resolved()
    assert (spec.format, spec.image_size) == ("chat", (56, 56))


def test_card_decoding_and_depth_fill_unset_flags_and_a_flag_wins_with_a_warning(tmp_path):
    """A card naming its decoding (free generation, 24 tokens) and depth input: a bare spec takes them, an
    explicit --decode wins with a warning, a card without them leaves navtune's defaults, a bad value is one
    error naming the file and field."""
    import warnings

    from navtune.agents.models.card import AgentCardError, make_card, write_card
    from navtune.evaluation import AgentSpec

    card = make_card("objectnav-json", (112, 112), "continuous", "prompt", str(tmp_path), False, "awr", sees_depth=True)
    write_card(tmp_path, dataclasses.replace(card, decode="generate", max_new_tokens=24))
    spec = AgentSpec("vlm", model=str(tmp_path)).resolved()
    assert (spec.decode, spec.max_new_tokens, spec.sees_depth) == ("generate", 24, True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert AgentSpec("vlm", model=str(tmp_path), decode="score").resolved().decode == "score"
    assert any("--decode 'score' overrides" in str(w.message) for w in caught)
    write_card(tmp_path, card)
    spec = AgentSpec("vlm", model=str(tmp_path)).resolved()
    assert (spec.decode, spec.max_new_tokens) == ("score", 64)
    raw = json.loads((tmp_path / "navtune_agent.json").read_text())
    (tmp_path / "navtune_agent.json").write_text(json.dumps({**raw, "decode": "beam"}))
    with pytest.raises(AgentCardError, match="navtune_agent.json: field 'decode'"):
        AgentSpec("vlm", model=str(tmp_path)).resolved()


def test_a_model_trained_to_write_its_answer_text_is_carded_to_generate_it(tmp_path):
    """objectnav-json trained on grounded answers must be decoded by generation (scoring after an empty
    Observation / Reasoning is a prompt it never saw); action-only training or a format without free text
    leave the decoding to the default."""
    from navtune.trainers.config import TrainConfig
    from navtune.trainers.run import write_agent_files

    for fmt, answer, space, want in (("objectnav-json", "grounded", "continuous", "generate"),
                                     ("objectnav-json", "action-only", "continuous", None),
                                     ("chat", "grounded", "graph", None)):
        out = tmp_path / f"{fmt}-{answer}"
        out.mkdir()
        cfg = TrainConfig(model=str(tmp_path), data=str(tmp_path / "none"), format=fmt, answer=answer,
                          image_size=(56, 56))
        write_agent_files(out, cfg, adapter=False, trainer="sft", action_space=space, system_prompt="p")
        assert read_card(out).decode == want, (fmt, answer)
