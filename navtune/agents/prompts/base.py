"""Prompt-format API shared by inference and training.

A format (the `PromptFormat` protocol; `BaseFormat` gives defaults) renders a step (or, for `chat`, a
whole episode) into `Segment`s: pieces of text that are tokenized **separately** and concatenated. The split matters: the seed tokenizes the chat-template text
and the assistant prefix ``<|im_start|>assistant\\nAction: `` separately, so the action word is a token
of its own ("Left", not " Left"); tokenizing the joined text would give different ids. Segments flagged
``target`` hold an action: training puts labels only there, inference scores candidates there.

Image placeholders in text are ``IMAGE_PLACEHOLDER`` (the Qwen2.5-VL chat-template form); the images
themselves are listed in `Rendered.images` in placeholder order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import jinja2

from navtune.agents.parsing import ParseResult, parse_action
from navtune.core.actions import ACTION_SPACES
from navtune.core.registry import Registry

IMAGE_PAD = "<|image_pad|>"
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
ASSISTANT_PREFIX = "<|im_start|>assistant\n"

#: The Qwen2-VL / Qwen2.5-VL chat template (chat_template.json of Qwen/Qwen2.5-VL-3B-Instruct).
QWEN25VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_template = jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(QWEN25VL_CHAT_TEMPLATE)


def render_chat(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """Apply the Qwen2.5-VL chat template without needing a tokenizer (same jinja settings as transformers)."""
    return _template.render(messages=messages, add_generation_prompt=add_generation_prompt, add_vision_id=False)


@dataclass
class Segment:
    text: str
    target: bool = False  # True: this segment is an action (labels / scored candidates go here)
    action: str | None = None
    label: bool = False  # True: answer text that is trained but is not the action (objectnav-json's JSON)


@dataclass(frozen=True)
class AnswerText:
    """The free text of an answer around its action (objectnav-json's Observation and Reasoning); empty
    strings when the answer is the action alone."""

    observation: str = ""
    reasoning: str = ""


@dataclass(frozen=True)
class AnswerPart:
    """One piece of a format's answer, in order (what a constrained decoder walks through):
    ``text`` is forced as is, ``free`` is generated until a token holding any character of `stop` (that token
    is not part of the value), ``action`` is one of the allowed actions, chosen by scoring their whole
    continuations."""

    kind: str  # "text" | "free" | "action"
    text: str = ""
    stop: str = ""


@dataclass
class Tokenized:
    """Token ids of a rendered prompt and where its trained parts are: (start, end, action) token spans of the
    action targets, and (start, end) spans of the other trained answer text."""

    ids: list[int]
    action_spans: list[tuple[int, int, str]]
    text_spans: list[tuple[int, int]]


@dataclass
class Rendered:
    """A rendered prompt: segments to tokenize one by one and the images for its placeholders."""

    segments: list[Segment]
    images: list[Any] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    def target_char_spans(self) -> list[tuple[int, int, str]]:
        """(start, end, action) character spans of the action targets in `text`."""
        spans, pos = [], 0
        for s in self.segments:
            if s.target:
                spans.append((pos, pos + len(s.text), s.action or s.text))
            pos += len(s.text)
        return spans

    def __add__(self, other: "Rendered") -> "Rendered":
        return Rendered(self.segments + other.segments, self.images + other.images)


def tokenize_rendered(rendered: Rendered, image_token_counts: Sequence[int], tokenize_text: Callable[[str], list[int]]
                      ) -> tuple[list[int], list[tuple[int, int, str]]]:
    """Token ids of a rendered prompt, its segments tokenized one by one (each image placeholder expanded to
    that image's number of tokens, as the processor does), and the (start, end, action) token spans of its
    action targets. Inference and training both tokenize through here, so their ids are the same."""
    tok = tokenize_segments(rendered, image_token_counts, tokenize_text)
    return tok.ids, tok.action_spans


def tokenize_segments(rendered: Rendered, image_token_counts: Sequence[int], tokenize_text: Callable[[str], list[int]]
                      ) -> Tokenized:
    """`tokenize_rendered` with the spans of the trained answer text (segments flagged `label`) too."""
    ids: list[int] = []
    spans: list[tuple[int, int, str]] = []
    text_spans: list[tuple[int, int]] = []
    k = 0
    for seg in rendered.segments:
        text = seg.text
        n = text.count(IMAGE_PAD)
        if n:
            if k + n > len(image_token_counts):
                raise ValueError(f"prompt has more image placeholders than images ({len(image_token_counts)})")
            pieces = text.split(IMAGE_PAD)
            text = pieces[0] + "".join(IMAGE_PAD * image_token_counts[k + j] + pieces[j + 1] for j in range(n))
            k += n
        seg_ids = tokenize_text(text) if text else []
        if seg.target:
            spans.append((len(ids), len(ids) + len(seg_ids), seg.action or seg.text))
        elif seg.label and seg_ids:
            text_spans.append((len(ids), len(ids) + len(seg_ids)))
        ids += seg_ids
    if k != len(image_token_counts):
        raise ValueError(f"prompt has {k} image placeholders but {len(image_token_counts)} images")
    return Tokenized(ids, spans, text_spans)


@dataclass
class StepInput:
    """What a format needs about one step (built from an Observation, a dataset row or a CASE.json)."""

    instruction: str
    step: int
    distance: float | int
    previous_actions: list[str]
    allowed_actions: Sequence[str]
    image: Any = None  # current frame (array / PIL); None when rendering text only
    depth_image: Any = None  # the current depth frame as an image (formats that show depth), or None
    previous_images: list[Any] = field(default_factory=list)
    num_previous_images: int | None = None  # for text-only rendering without images

    @property
    def n_previous(self) -> int:
        return len(self.previous_images) if self.num_previous_images is None else self.num_previous_images


class PromptFormat(Protocol):
    """Everything the rest of navtune knows about a prompt format (nothing outside the formats' own files
    asks for a format by name):

    * `render_step`: the prompt the model sees before step t's action, ending where the answer starts;
    * `render_delta` (`incremental` formats): the tokens appended to the previous step's prompt, so the KV
      cache of the previous step stays valid (the `kv` inference mode);
    * `answer_parts`: the answer's pieces in order, forced text / free text / the action (objectnav-json's
      JSON skeleton), which constrained decoding walks through; `candidates`: the scored action segments;
    * `parse`: the rule from generated text (which continues the prompt) to an action;
    * `default_system_prompt`: the system prompt the format is used with when neither a file nor the model
      folder gives one (each format carries its own: the answer it asks for differs);
    * `action_spaces` (class level): the action spaces it can speak; `action_space`: this instance's;
    * `unit`: ``"step"`` (one training sample per step) or ``"episode"`` (one sample per episode, every action
      labelled); `render_target` renders a training target (the action, and for formats whose answer holds
      more than the action, the `AnswerText` around it), `render_episode` an episode's samples."""

    name: str
    action_spaces: tuple[str, ...]
    action_space: str
    unit: str
    incremental: bool

    def render_step(self, step: StepInput, system_prompt: str) -> Rendered: ...

    def render_delta(self, step: StepInput, system_prompt: str, previous_action: str | None) -> Rendered: ...

    def default_system_prompt(self) -> str: ...

    def answer_parts(self) -> list[AnswerPart]: ...

    def parse(self, text: str, allowed: Sequence[str]) -> ParseResult: ...

    def candidates(self, allowed: Sequence[str]) -> list[Segment]: ...

    def render_target(self, action: str, answer: AnswerText | None = None) -> Rendered: ...

    def render_episode(self, steps: list[StepInput], actions: list[str], system_prompt: str,
                       answers: Sequence[AnswerText] | None = None) -> list[Rendered]: ...


class BaseFormat:
    """Defaults for a `PromptFormat`: one action space chosen at construction among `action_spaces`, per-step
    training samples, an answer that is the action alone, the shared action parser, the space's actions as
    candidates, navtune's system prompt for the action space."""

    name = "base"
    action_spaces: tuple[str, ...] = ("graph",)
    unit = "step"
    incremental = False
    shows_depth = False  # True: render_step shows `StepInput.depth_image` (a second image) when it is given

    def __init__(self, action_space: str | None = None) -> None:
        space = action_space or self.action_spaces[0]
        if space not in self.action_spaces:
            raise ValueError(f"prompt format {self.name!r} speaks the {' / '.join(self.action_spaces)} action "
                             f"space, not {space!r}")
        self.action_space = space

    def render_step(self, step: StepInput, system_prompt: str) -> Rendered:
        raise NotImplementedError

    def render_delta(self, step: StepInput, system_prompt: str, previous_action: str | None) -> Rendered:
        raise NotImplementedError(f"prompt format {self.name!r} is not incremental (re-render with render_step)")

    def default_system_prompt(self) -> str:
        from navtune.agents.prompts import default_system_prompt

        return default_system_prompt(self.action_space)

    def answer_parts(self) -> list[AnswerPart]:
        return [AnswerPart("action")]

    def parse(self, text: str, allowed: Sequence[str]) -> ParseResult:
        return parse_action(text, allowed, self.action_space)

    def candidates(self, allowed: Sequence[str]) -> list[Segment]:
        return [Segment(a, target=True, action=a) for a in ACTION_SPACES[self.action_space] if a in allowed]

    def render_target(self, action: str, answer: AnswerText | None = None) -> Rendered:
        raise NotImplementedError

    def render_episode(self, steps: list[StepInput], actions: list[str], system_prompt: str,
                       answers: Sequence[AnswerText] | None = None) -> list[Rendered]:
        """One sample per step: the step's prompt (with the history the format shows) and its target."""
        if answers is None:
            return [self.render_step(s, system_prompt) + self.render_target(a) for s, a in zip(steps, actions)]
        return [self.render_step(s, system_prompt) + self.render_target(a, answer=t)
                for s, a, t in zip(steps, actions, answers)]


PROMPT_FORMATS: Registry = Registry("prompt format")


def format_class(name: str) -> type:
    """The registered class of prompt format `name` (its `action_spaces`, `unit`, ... without building it)."""
    import navtune.agents.prompts  # noqa: F401  (registers the built-in formats)

    return PROMPT_FORMATS.get(name)


def get_format(name: str, action_space: str | None = None, **kwargs: Any) -> PromptFormat:
    """Instantiate a registered prompt format ("r2r-lowlevel", "objectnav-json", "chat", or a plugin's) for
    `action_space` (None: the format's first); a space the format does not speak is a ValueError."""
    return format_class(name)(action_space=action_space, **kwargs)


def merge_size_of(processor: Any) -> int:
    """Patches merged per image token side (Qwen2(.5)-VL: 2), read from the processor: the one place both
    inference and training take it from."""
    return int(processor.image_processor.merge_size)


def image_token_count(grid_thw: Any, merge_size: int) -> int:
    """Number of image tokens of one image with patch grid (t, h, w): t*h*w / merge_size^2."""
    t, h, w = (int(v) for v in grid_thw)
    return t * h * w // (merge_size**2)
