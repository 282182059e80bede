"""Learning curve in optimizer steps (how docs/training.md's GPU curves were measured).

navtune's chat-format SFT (same loss, optimizer and schedule shape as NavTrainModule: AdamW wd 0.1 not on
norms/biases, linear warm-up 5 % + decay, grad clip 1, 2 episodes per step, episode loss = mean NLL over its
actions) run long on a GPU; every few epochs the teacher-forced action accuracy (argmax over the allowed
actions' first token = the score policy's choice) on held-out expert episodes and on training episodes. One
JSON line per evaluation appended to $OUT/curves.jsonl; several runs side by side are separate processes.
--root holds proc/ (a tiny model folder's processor files + system_prompt.txt) and data/train56, data/test56
(navtune expert datasets: the bench's cache/expert-*/expert and the held-out houses' expert data).

    OUT=/tmp/curves python bench/learning_curve.py --root DIR --name lr1e-3 --lr 1e-3 --epochs 40
"""
import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--name", required=True)
ap.add_argument("--size", default="tiny")
ap.add_argument("--init-std", type=float, default=None)
ap.add_argument("--lr", type=float, default=5e-3)
ap.add_argument("--epochs", type=int, default=60)
ap.add_argument("--eval-every", type=int, default=3)
ap.add_argument("--train", default="data/train56")
ap.add_argument("--test", default="data/test56")
ap.add_argument("--budget-s", type=float, default=480)
ap.add_argument("--freeze-embeddings", action="store_true")
ap.add_argument("--train-vision", action="store_true")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--save", action="store_true")
ap.add_argument("--root", default=None, help="folder holding proc/ and data/ (default: beside this script)")
ap.add_argument("--limit", type=int, default=None)
a = ap.parse_args()
out = Path(os.environ.get("OUT", "/tmp/out"))
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(a.seed)
from transformers import Qwen2_5_VLForConditionalGeneration
from navtune.agents.models.loading import load_processor
from navtune.agents.models.tiny import tiny_config
from navtune.data.training import EpisodeSamples
from navtune.trainers.sources import DatasetEpisodes
from navtune.trainers.module import forward_chunk

here = Path(a.root) if a.root else Path(__file__).parent
proc = load_processor(str(here / "proc"))
sp = (here / "proc" / "system_prompt.txt").read_text().strip()
cfg = tiny_config(a.size, vocab_size=len(proc.tokenizer), init_std=a.init_std)
cfg._attn_implementation = "sdpa"
model = Qwen2_5_VLForConditionalGeneration(cfg).to(dev)
model.config.use_cache = False
if not a.train_vision:
    for p in model.model.visual.parameters():
        p.requires_grad_(False)
if a.freeze_embeddings:
    for p in list(model.get_input_embeddings().parameters()) + list(model.get_output_embeddings().parameters()):
        p.requires_grad_(False)
model.train()


def load(d):
    s = DatasetEpisodes(EpisodeSamples(str(here / d), proc, "chat", system_prompt=sp, image_size=(56, 56)))
    return [s[i].to(dev) for i in range(min(len(s), a.limit or len(s)))]


t0 = time.time()
train, test = load(a.train), load(a.test)
print(a.name, "loaded", len(train), len(test), f"{time.time() - t0:.0f}s", flush=True)
ids = {x: proc.tokenizer.encode(x, add_special_tokens=False)[0] for x in ("Left", "Right", "Move", "Stop")}
decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and "norm" not in n.lower()]
nodecay = [p for n, p in model.named_parameters() if p.requires_grad and not (p.ndim >= 2 and "norm" not in n.lower())]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}], lr=a.lr)
steps_per_epoch = math.ceil(len(train) / 2)
total = steps_per_epoch * a.epochs
warm = math.ceil(0.05 * total)
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: s / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))


@torch.no_grad()
def accuracy(eps):
    model.eval()
    ok = n = 0
    first = [0, 0]
    for b in eps:
        out = forward_chunk(model, b.chunks[0], {})
        lp = out.logprobs  # (tokens, V): one token per action here
        for i, (act, allowed) in enumerate(zip(b.actions, b.allowed)):
            cand = {a_: float(lp[i, ids[a_]]) for a_ in allowed if a_ in ids}
            hit = max(cand, key=cand.get) == act
            ok += hit
            n += 1
            if i == 0:
                first[0] += hit
                first[1] += 1
    model.train()
    return ok / n, first[0] / first[1]


g = torch.Generator().manual_seed(a.seed)
log = open(out / "curves.jsonl", "a")
step = 0
t0 = time.time()
for ep in range(a.epochs):
    order = torch.randperm(len(train), generator=g).tolist()
    losses = []
    for k in range(0, len(order) - 1, 2):
        for j in order[k:k + 2]:
            # the feature cache runs the tower without gradient: only while it is frozen
            o = forward_chunk(model, train[j].chunks[0], None if a.train_vision else {})
            loss = -o.token_logp.mean() / 2
            loss.backward()
            losses.append(float(loss.detach()) * 2)
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step(); opt.zero_grad(set_to_none=True); sched.step(); step += 1
    done = time.time() - t0 > a.budget_s
    if (ep + 1) % a.eval_every == 0 or ep == 0 or done or ep == a.epochs - 1:
        te, te0 = accuracy(test)
        tr, tr0 = accuracy(train[:120])
        rec = {"name": a.name, "epoch": ep + 1, "step": step, "loss": sum(losses) / len(losses), "test_acc": te,
               "test_acc_step0": te0, "train_acc": tr, "train_acc_step0": tr0, "s": round(time.time() - t0, 1)}
        print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n"); log.flush()
    if done:
        break
if a.save:
    from safetensors.torch import save_file
    sd = {k: v.detach().to(torch.bfloat16).cpu().contiguous() for k, v in model.state_dict().items()}
    big = [k for k in sd if sd[k].numel() > 1_000_000]
    for k in big:  # files back are limited to 16 MB each
        for i, part in enumerate(torch.chunk(sd[k], 2, dim=0)):
            save_file({k: part.contiguous()}, str(out / f"w_{a.name}_{k.split('.')[-2]}_{i}.safetensors"))
    save_file({k: v for k, v in sd.items() if k not in big}, str(out / f"w_{a.name}_rest.safetensors"))
