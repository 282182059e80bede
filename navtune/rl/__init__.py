"""Online reinforcement learning in the simulator (`navtune train rl`): GRPO and PPO on roll-outs through the
evaluation harness's env pool (N envs, one batched KV-cache forward per step), a LightningModule update on
the trainers' plumbing (checkpoints, exact resume, loggers), and a self-describing agent as output.

It sits above `evaluation/` (its env pool and episode sets) and `trainers/` (LoRA, freezing, data module).
`train_rl(RLConfig(...))` is what the CLI and the demo call."""
from navtune.rl.config import RLConfig


def train_rl(cfg: RLConfig, callbacks=None):
    """See `navtune.rl.run.train_rl` (imported lazily: it pulls in Lightning and the simulators)."""
    from navtune.rl.run import train_rl as _train_rl

    return _train_rl(cfg, callbacks)


__all__ = ["RLConfig", "train_rl"]
