"""Keyboard teleoperation in a terminal: W forward, A left, D right, S stop, H expert hint, Q quit.

Writes the same dataset format as the other collectors (the expert's action at each state is stored too).
Keys come from any iterable of characters: `TerminalKeys()` reads single key presses from a TTY (no Enter
needed); tests and scripts pass a string. Q (or running out of keys) discards the episode in progress, so
the dataset only ever holds finished episodes; a later run resumes with the next uncommitted episode.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from navtune.core.actions import FORWARD, STOP, STOP_CONT, TURNS
from navtune.data.collectors.common import CollectSummary, geodesic_of, plan, record_env_episode
from navtune.data.format import DatasetWriter, EpisodeMeta
from navtune.data.rewards import RewardConfig
from navtune.envs.protocol import NavEnv, Observation

HELP = "W forward · A turn left · D turn right · S stop · H hint · Q quit"


class QuitRequested(Exception):
    """The operator pressed Q (or the key source ran out)."""


class TerminalKeys:
    """Single key presses from a terminal (cbreak mode, restored on exit). Ctrl-C / Ctrl-D count as Q."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stdin

    def __iter__(self) -> Iterator[str]:
        import termios
        import tty

        fd = self.stream.fileno()
        if not os.isatty(fd):
            raise RuntimeError("interactive collection needs a terminal (stdin is not a TTY); pass --keys to script it")
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while True:
                ch = os.read(fd, 1).decode("utf-8", "ignore")
                if ch in ("\x03", "\x04", ""):
                    yield "q"
                    return
                yield ch
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)


def keymap(action_space: str) -> dict[str, str]:
    left, right = TURNS[action_space]
    stop = STOP if action_space == "graph" else STOP_CONT
    return {"w": FORWARD[action_space], "a": left, "d": right, "s": stop}


def frame_to_text(rgb: np.ndarray, width: int = 48):
    """A terminal preview of a frame: half-block characters, two pixel rows per text row (rich Text)."""
    from PIL import Image
    from rich.text import Text

    h, w = rgb.shape[:2]
    height = max(2, int(round(h / w * width / 2)) * 2)
    small = np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., :3])).resize((width, height), Image.Resampling.BILINEAR))
    text = Text()
    for y in range(0, height, 2):
        for x in range(width):
            top, bottom = small[y, x], small[y + 1, x]
            text.append("▀", style=f"rgb({top[0]},{top[1]},{top[2]}) on rgb({bottom[0]},{bottom[1]},{bottom[2]})")
        text.append("\n")
    return text


class KeyboardChooser:
    """Reads keys until one maps to an allowed action; prints the view and the status before each step."""

    def __init__(self, keys: Iterator[str], action_space: str, console: Any, show_frame: bool = True):
        self.keys, self.map = keys, keymap(action_space)
        self.console, self.show_frame = console, show_frame
        self.header = ""

    def status(self, obs: Observation, note: str = "") -> None:
        if self.show_frame and obs.rgb is not None:
            self.console.print(frame_to_text(obs.rgb))
        d = geodesic_of(obs)
        p = obs.pose
        self.console.print(
            f"[bold]{self.header}[/bold] step {obs.step}  pos ({p.x:.2f}, {p.y:.2f})  heading {np.degrees(p.heading):.0f}°"
            + (f"  goal {d:.2f} m" if d is not None else "")
            + f"  allowed {list(obs.allowed_actions)}" + (f"\n{note}" if note else "")
        )

    def __call__(self, obs: Observation, expert: str) -> str:
        self.status(obs)
        for key in self.keys:
            k = key.lower()
            if k == "q":
                raise QuitRequested()
            if k == "h":
                self.console.print(f"hint: the expert would take [cyan]{expert}[/cyan]")
                continue
            action = self.map.get(k)
            if action is None:
                if k.strip():
                    self.console.print(f"unknown key {key!r}: {HELP}")
                continue
            if obs.allowed_actions and action not in obs.allowed_actions:
                self.console.print(f"[yellow]{action} is not possible here[/yellow]")
                continue
            return action
        raise QuitRequested()


def collect_interactive(
    env_factory: Callable[[], NavEnv],
    episodes: Sequence[tuple[Any, EpisodeMeta]],
    out: str | os.PathLike,
    info: dict[str, Any],
    keys: Iterable[str] | None = None,
    console: Any = None,
    max_steps: int = 500,
    reward: RewardConfig = RewardConfig(),
    show_frame: bool = True,
    rgb: bool = True,
    depth: bool = True,
) -> CollectSummary:
    """Drive episodes by keyboard and commit each finished one (stop pressed or max_steps reached)."""
    from rich.console import Console

    console = console or Console()
    writer = DatasetWriter(out, {**info, "source": "interactive", "reward": reward.to_dict()})
    summary = CollectSummary(out=str(out))
    left = plan(writer, [m.episode_id for _, m in episodes], summary)
    key_iter = iter(TerminalKeys() if keys is None else keys)
    env = env_factory()
    console.print(HELP)
    try:
        todo = [(p, m) for p, m in episodes if m.episode_id in left]
        for k, (payload, meta) in enumerate(todo):
            meta.source = "interactive"
            chooser = KeyboardChooser(key_iter, meta.action_space, console, show_frame)
            chooser.header = f"[{summary.skipped + k + 1}/{summary.total}] {meta.episode_id}: {meta.instruction or ''}"
            b = writer.builder(meta)
            try:
                pending = record_env_episode(env, payload, b, chooser, max_steps=max_steps, rgb=rgb, depth=depth)
            except QuitRequested:
                b.abort()
                console.print(f"quit: episode {meta.episode_id} discarded")
                break
            except BaseException:
                b.abort()
                raise
            writer.commit(pending)
            summary.written += 1
            summary.steps += pending.record["num_steps"]
            ok = bool(pending.record.get("success"))
            summary.successes += ok
            console.print(f"episode {meta.episode_id} saved: {pending.record['num_steps']} steps, "
                          + ("[green]success[/green]" if ok else "[red]not a success[/red]"))
    finally:
        env.close()
    writer.finalize()
    return summary
