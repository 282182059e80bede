"""Sizes of the demo (`--quick` for CI; the default runs in ~9 minutes on 2 idle CPU cores)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from navtune.envs.house.seeds import parse_seeds


@dataclass(frozen=True)
class DemoConfig:
    """Everything that decides what the demo computes (saved as demo.json; a rerun with other settings
    into the same folder is refused, a rerun with the same ones resumes)."""

    train_houses: int = 288  # house seeds 0..N-1 give the training (and mining) episodes (more houses: +, docs/training.md)
    paths_per_house: int = 2  # VLN reference paths per house (3 instructions each)
    test_seeds: str = "1000-1059"  # held-out house seeds (A-B, inclusive) for evaluation: 60 x 2 x 3 = 360 episodes
    test_paths_per_house: int = 2
    min_hops: int = 2  # reference paths of 2..4 graph edges (expert ~10 actions), start >= 4 m from the goal
    max_hops: int = 4
    min_distance: float = 4.0
    mine_episodes: int = 48  # SFT roll-outs on training houses for the failure miner
    width: int = 56  # frames (the tiny model sees 2x2 = 4 image tokens per frame)
    height: int = 56
    prompt_format: str = "chat"  # an incremental (episode-unit) format: chat, or chat-odometry (+ turn odometry)
    model_size: str = "tiny"
    init_std: float | None = None  # weight init std of the built model; None: the size's default (tiny: 0.3)
    vision_init_std: float | None = None  # init std of its vision tower + merger; None: init_std
    sft_epochs: int = 2  # more houses beat more epochs over the same houses (docs/training.md)
    freeze_embeddings: bool = True  # SFT leaves token embeddings + lm_head as built (2.2x faster steps, tiny)
    freeze_vision: bool = True  # SFT leaves the vision tower + merger as built (seed 1's recipe)
    sft_lr: float = 1e-3  # 5e-3 underfits held-out houses (docs/training.md)
    aux_labels: str = ""  # comma-separated dense step labels (navtune.data.step_labels) for auxiliary heads in SFT
    aux_coef: float = 0.5
    dagger_rounds: int = 0  # DAgger rounds after SFT (Demo.dagger): learner roll-outs, expert labels, aggregate
    dagger_beta: float = 0.0  # probability of executing the expert's action in round k: beta**k
    dagger_epochs: int = 2  # epochs over expert data + every round's roll-outs, per round
    dagger_lr: float = 0.0  # 0: sft_lr
    awr_epochs: int = 1
    awr_lr: float = 2e-3
    awr_beta: float = 1.0
    rl_iterations: int = 0  # online RL after the offline rounds (navtune train rl; 0: none, docs/research/rl-log.md)
    rl_algo: str = "grpo"
    rl_lr: float = 3e-4  # the best measured (docs/training.md, row H: +1.4 SR points, inside the noise)
    rl_group_size: int = 8  # GRPO's group: roll-outs from one start
    rl_episodes_per_iteration: int = 16  # starts drawn per iteration from the training episodes
    lora_r: int = 16
    accumulate: int = 2  # episodes per optimizer step
    num_envs: int = 8  # evaluation / mining slots stepped together (one batched model call)
    eval_max_steps: int = 15  # step budget of an evaluation episode: 1.5x the expert's ~10 actions
    seed: int = 0

    def __post_init__(self) -> None:
        seeds = parse_seeds(self.test_seeds, "--test-seeds")  # a bad range fails here, naming the option
        if set(seeds) & set(range(self.train_houses)):
            raise ValueError(f"--test-seeds {self.test_seeds}: held-out houses must not be training houses "
                             f"(0-{self.train_houses - 1})")

    @property
    def test_seed_range(self) -> list[int]:
        return parse_seeds(self.test_seeds, "--test-seeds")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_test_seeds(self, seeds: str | None) -> "DemoConfig":
        return self if seeds is None else replace(self, test_seeds=seeds)

    @property
    def aux_label_names(self) -> tuple[str, ...]:
        return tuple(x.strip() for x in self.aux_labels.split(",") if x.strip())


QUICK = DemoConfig(train_houses=4, paths_per_house=1, test_seeds="1000-1001", test_paths_per_house=1,
                   mine_episodes=4, sft_epochs=1, awr_epochs=1, num_envs=6, eval_max_steps=12)
FULL = DemoConfig()
