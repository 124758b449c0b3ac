"""Prompt construction, mirroring the released Med-R1 prompts word for word.

All wording lives in ``STYLES``: one entry per answer style holds its training prompt, its evaluation
prompt and the completion format its format reward checks, so a new style is added in one place.
``{Question}`` is the released ``problem`` string (question, a space, then the rendered options), or what a
style's own ``problem`` function renders. The text recipes' styles (``TEXT_STYLES``: HuatuoGPT-o1's and
MedicalGPT's) are kept out of ``STYLES``, the Med-R1 styles the image demo's vocabulary and the prompt tables
are built from. A style may word the evaluation prompt of an open-ended record (``options: []``) apart
(``open_eval``): HuatuoGPT-o1 asks a multiple-choice question with its evaluation prompt and an open-ended one bare.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass

from medr1.sources.medqa import TEXT_MODALITY
from medr1.sources.omnimedvqa import MULTI_IMAGE_KEY, format_options
from medr1.sources.omnimedvqa import format_problem as problem_text

__all__ = [
    "PROMPT_STYLES",
    "STAGES",
    "STYLES",
    "TEXT_STYLES",
    "ZERO_SHOT_TEMPLATE",
    "PromptStyle",
    "build_conversation",
    "format_options",
    "get_style",
    "huatuo_problem",
    "problem_text",
    "prompt_text",
    "zero_shot_prompt_text",
]


@dataclass(frozen=True)
class PromptStyle:
    """The templates of one answer style and the completion format it asks for.

    ``format_pattern`` is matched with ``re.fullmatch(..., re.DOTALL)``; ``format_suffix`` is the literal
    every full match ends with, checked first because the lazy patterns are quadratic on long
    completions that cannot match (many tags, no final closing tag). ``problem(question, options)`` renders
    ``{Question}`` from a record. ``open_eval`` is the evaluation prompt of an open-ended record (no options);
    None: ``eval`` for every record.
    """

    train: str
    eval: str
    format_pattern: str
    format_suffix: str
    problem: Callable[[str, list], str] = problem_text
    open_eval: str | None = None

    def template(self, stage: str, open_ended: bool = False) -> str:
        """The template of ``stage`` (``"train"`` or ``"eval"``) for a multiple-choice or an open-ended record."""
        if stage == "eval" and open_ended and self.open_eval is not None:
            return self.open_eval
        return getattr(self, stage)


STYLES: dict[str, PromptStyle] = {
    # Released training/eval prompts of the Med-R1 think runs.
    "think": PromptStyle(
        train=(
            "{Question} Your task: 1. Think through the question step by step, enclose your reasoning "
            "process in <think>...</think> tags. 2. Then provide the correct single-letter choice "
            "(A, B, C, D,...) inside <answer>...</answer> tags. 3. No extra information or text outside "
            "of these tags."
        ),
        eval=(
            "{Question} Think through the question step by step in <think>...</think> tags. Then provide the "
            "correct single-letter choice (A, B, C, D,...) inside <answer>...</answer> tags."
        ),
        format_pattern=r"<think>.*?</think>\s*<answer>.*?</answer>",
        format_suffix="</answer>",
    ),
    # Released "No-Thinking" variant.
    "nothink": PromptStyle(
        train=(
            "{Question} Your task: 1. Provide the correct single-letter choice (A, B, C, D,...) inside "
            "<answer>...</answer> tags. 2. No extra information or text outside of this tag."
        ),
        eval=(
            "{Question} Provide the correct single-letter choice (A, B, C, D,...) inside "
            "<answer>...</answer> tags."
        ),
        format_pattern=r"\s*<answer>.*?</answer>",
        format_suffix="</answer>",
    ),
    # "Think-After" (paper v5): answer first, then the reasoning. Its wording was not released; this
    # mirrors the think prompts with the two steps swapped.
    "think-after": PromptStyle(
        train=(
            "{Question} Your task: 1. Provide the correct single-letter choice (A, B, C, D,...) inside "
            "<answer>...</answer> tags. 2. Then explain your reasoning step by step inside "
            "<think>...</think> tags. 3. No extra information or text outside of these tags."
        ),
        eval=(
            "{Question} Provide the correct single-letter choice (A, B, C, D,...) inside "
            "<answer>...</answer> tags. Then explain your reasoning step by step in <think>...</think> tags."
        ),
        format_pattern=r"<answer>.*?</answer>\s*<think>.*?</think>",
        format_suffix="</think>",
    ),
}

PROMPT_STYLES = tuple(STYLES)
STAGES = ("train", "eval")


def huatuo_problem(question: str, options) -> str:
    """HuatuoGPT-o1's rendering: the question, then one option per line as ``A. text`` (nothing for open-ended)."""
    return "\n".join([question, *(f"{letter}. {text}" for letter, text in zip(string.ascii_uppercase, options))])


# Neither heading inside the free text: each occurs exactly once, thinking first (HuatuoGPT-o1's RL check).
_FREE = r"(?:(?!## Thinking|## Final Response\n\n).)*"

TEXT_STYLES: dict[str, PromptStyle] = {
    # HuatuoGPT-o1: the bare question for training, its evaluation prompt for multiple choice, and the bare question
    # for an open-ended (verifiable) problem at evaluation too: it is no multiple-choice question.
    "huatuo": PromptStyle(
        train="{Question}",
        eval="Please answer the following multiple-choice question:\n{Question}",
        open_eval="{Question}",
        format_pattern=rf"{_FREE}## Thinking{_FREE}## Final Response\n\n{_FREE}",
        format_suffix="",
        problem=huatuo_problem,
    ),
    # MedicalGPT's GRPO format, <think>...</think><answer>...</answer> with nothing between the blocks; its system
    # prompt's request, worded here as an instruction after the question (free-text answers, no letter asked).
    "medicalgpt": PromptStyle(
        train=("{Question}\nFirst think about the reasoning process inside <think>...</think> tags, then give the "
               "final answer inside <answer>...</answer> tags, with nothing between or after them."),
        eval=("{Question}\nFirst think about the reasoning process inside <think>...</think> tags, then give the "
              "final answer inside <answer>...</answer> tags."),
        format_pattern=r"<think>.*?</think><answer>.*?</answer>",
        format_suffix="</answer>",
        problem=huatuo_problem,
    ),
}

# Released zero-shot baseline prompt (no tags requested).
ZERO_SHOT_TEMPLATE = "{Question} Provide the correct single-letter choice (A, B, C, D,...)."


def get_style(style: str) -> PromptStyle:
    """The ``PromptStyle`` named ``style``; ValueError names the known styles."""
    try:
        return STYLES[style] if style in STYLES else TEXT_STYLES[style]
    except (KeyError, TypeError):
        known = (*PROMPT_STYLES, *TEXT_STYLES)
        raise ValueError(f"unknown prompt style {style!r}; expected one of {known}") from None


def prompt_text(problem: str, style: str = "think", stage: str = "train", open_ended: bool = False) -> str:
    """The user text for ``problem`` in ``style`` at ``stage`` (``"train"`` or ``"eval"``); ``open_ended``: the
    problem of a record without options (``options: []``), worded by the style's ``open_eval`` where it has one."""
    if stage not in STAGES:
        raise ValueError(f"unknown prompt stage {stage!r}; expected one of {STAGES}")
    return get_style(style).template(stage, open_ended).format(Question=problem)


def zero_shot_prompt_text(problem: str) -> str:
    """The released zero-shot baseline prompt for ``problem``."""
    return ZERO_SHOT_TEMPLATE.format(Question=problem)


def build_conversation(
    record: dict, style: str = "think", stage: str = "train", zero_shot: bool = False
) -> list[dict]:
    """The single user turn for a canonical record: its image (one image part per path of a multi-image
    record's ``images``, in order), then the prompt text; for a text record (``modality`` "text", no image) the
    prompt text alone, as a plain string. An open-ended record (``options: []``) gets its style's ``open_eval``
    wording at evaluation.

    No system message: the chat template adds its default one, as in the release. A record in the
    released split format (``problem`` instead of ``question``/``options``) is accepted as well.
    """
    open_ended = False
    if "question" in record and "options" in record:
        problem = get_style(style).problem(record["question"], record["options"])
        open_ended = isinstance(record["options"], (list, tuple)) and not record["options"]
    elif "problem" in record:
        problem = record["problem"]
    else:
        raise ValueError("record needs 'question' and 'options' (or a released 'problem')")
    text = zero_shot_prompt_text(problem) if zero_shot else prompt_text(problem, style, stage, open_ended)
    if record.get("modality") == TEXT_MODALITY and "image" not in record and MULTI_IMAGE_KEY not in record:
        # Plain string content: text models' chat templates (Qwen2.5, Qwen3, Llama 3.1) expect a string.
        return [{"role": "user", "content": text}]
    images = [{"type": "image"} for _ in record.get(MULTI_IMAGE_KEY) or [None]]
    return [{"role": "user", "content": [*images, {"type": "text", "text": text}]}]
