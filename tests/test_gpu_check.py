"""bench/gpu_check.py in its CPU smoke mode (tiny model, 2 steps): every section runs and both files are
written, so the one-shot GPU check does not rot before a GPU is at hand."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_on_cpu_writes_json_and_table(tmp_path):
    out = tmp_path / "check"
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--smoke",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads((out / "gpu_check.json").read_text())
    secs = data["sections"]
    assert set(secs) == {"inference[sdpa]", "agreement[sdpa,float32]", "batched[sdpa]", "sft[checkpointing=off]",
                         "sft[checkpointing=on]", "awr[lora]"}
    assert all(s["status"] == "ok" for s in secs.values()), {k: s.get("error") for k, s in secs.items()}
    inf = secs["inference[sdpa]"]
    assert set(inf["paths"]) == {"full", "cached", "kv", "chat_full"}
    for p in inf["paths"].values():
        assert p["step_ms"] > 0 and len(p["actions"]) == data["settings"]["steps"] == 2
    assert isinstance(inf["cached_vs_full"]["same_actions"], bool) and "max_abs_dlogit" in inf["kv_vs_chat_full"]
    assert inf["paths"]["kv"]["vision_one_frame_ms"] > 0
    agree = secs["agreement[sdpa,float32]"]  # the same paths with the weights upcast to float32
    assert agree["dtype"] == "float32" and set(agree["actions"]) == set(inf["paths"])
    assert secs["batched[sdpa]"]["episodes"] == 2 and isinstance(secs["batched[sdpa]"]["same_actions"], bool)
    sft, awr = secs["sft[checkpointing=off]"], secs["awr[lora]"]
    assert sft["trainable_params"] == data["model"]["language_model"]  # vision frozen, the LLM trains
    assert 0 < awr["trainable_params"] < sft["trainable_params"] / 100  # LoRA (+ value head) only
    assert secs["sft[checkpointing=on]"]["activation_checkpointing"] and not sft["activation_checkpointing"]
    assert sft["chunks"] == sft["actions"] == 2 and sft["loss"] > 0
    assert sft["peak_memory_gib"] is None  # CPU: no CUDA allocator to ask
    table = (out / "gpu_check.md").read_text()
    for heading in ("## Inference", "## Same actions on every path", "## Batched vs sequential", "## Training"):
        assert heading in table
    assert "| awr[lora] |" in table and "Not measured" not in table
