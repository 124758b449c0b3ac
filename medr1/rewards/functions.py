"""GRPO reward functions for TRL's ``GRPOTrainer``.

TRL calls ``reward_func(prompts=..., completions=..., completion_ids=..., **dataset_columns)`` (plus
``trainer_state``, ``log_extra``, ``log_metric``) and logs each function under its ``__name__``. The
dataset's ``answer`` column is the gold letter and ``options`` the option texts, row-aligned with
``completions``. The total reward is format + accuracy (max 2.0), as released.
"""

from __future__ import annotations

import functools
import logging
import re

from medr1.data.prompts import get_style
from medr1.rewards.answers import MODES, huatuo_is_well_formed, is_correct

__all__ = ["accuracy_reward", "completion_text", "format_reward", "reward_functions"]

logger = logging.getLogger(__name__)


@functools.cache
def _format_regex(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.DOTALL)


def _part_text(content) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal message: [{"type": "text", "text": ...}, ...]
        texts = [p.get("text") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(texts) if texts else None
    return None


def _message_text(message: dict) -> str | None:
    text = _part_text(message.get("content"))
    # A tokenizer with a response parser (e.g. Qwen3 in TRL) moves the reasoning out of `content`;
    # put it back so the format reward sees what the model generated.
    reasoning = message.get("reasoning_content") or message.get("thinking")
    if isinstance(reasoning, str) and reasoning and "<think>" not in (text or ""):
        text = f"<think>{reasoning}</think>{text or ''}"
    return text


def completion_text(completion) -> str | None:
    """The generated text of one completion, or None when it carries no text.

    Accepts a plain string, TRL's conversational form ``[{"role": "assistant", "content": ...}]`` (content
    a string or a list of ``{"type": "text", "text": ...}`` parts), or a single message dict.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _message_text(completion)
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        texts = [t for t in (_message_text(m) for m in assistant or messages) if t is not None]
        return "".join(texts) if texts else None
    return None


# Styles whose format is a rule of medr1.rewards.answers (its regex in medr1.data.prompts says the same).
_FORMAT_RULES = {"huatuo": huatuo_is_well_formed}


def _format_score(text: str | None, style) -> float:
    if text is None or not text.endswith(style.format_suffix):
        return 0.0
    return 1.0 if _format_regex(style.format_pattern).fullmatch(text) else 0.0


def format_reward(completions, style: str = "think", **kwargs) -> list[float]:
    """1.0 where the completion fully matches the style's released format regex (DOTALL), else 0.0.

    think: ``<think>.*?</think>\\s*<answer>.*?</answer>``; nothink: ``\\s*<answer>.*?</answer>``;
    think-after: ``<answer>.*?</answer>\\s*<think>.*?</think>``. No other whitespace is tolerated.
    huatuo: HuatuoGPT-o1's ``## Thinking`` and ``## Final Response\\n\\n`` each exactly once, in that order.
    """
    spec = get_style(style)
    rule = _FORMAT_RULES.get(style)
    if rule is not None:
        return [1.0 if rule(completion_text(c)) else 0.0 for c in completions]
    return [_format_score(completion_text(c), spec) for c in completions]


def _row(column, i: int):
    """Row ``i`` of a dataset column; a lone string is one value for every row."""
    if column is None or isinstance(column, str):
        return column
    try:
        return column[i]
    except (IndexError, KeyError, TypeError):
        return None


def accuracy_reward(completions, answer, options=None, mode: str = "robust", **kwargs) -> list[float]:
    """1.0 where the completion chose the gold letter (``answer[i]``, options ``options[i]``), else 0.0."""
    if mode not in MODES:
        raise ValueError(f"unknown answer mode {mode!r}; expected one of {MODES}")
    if not isinstance(answer, str) and hasattr(answer, "__len__") and len(answer) != len(completions):
        logger.warning("accuracy_reward: %d answers for %d completions", len(answer), len(completions))
    rewards = []
    for i, completion in enumerate(completions):
        text = completion_text(completion)
        gold = _row(answer, i)
        opts = _row(options, i)
        if text is None or gold is None:
            rewards.append(0.0)
            continue
        rewards.append(1.0 if is_correct(text, gold, opts, mode) else 0.0)
    return rewards


class _BoundReward:
    """A reward function with some arguments fixed, named like the function it binds.

    A module-level class rather than a closure or partial: TRL's async rollout worker pickles reward
    functions, and the fixed arguments must win over same-named dataset columns.
    """

    def __init__(self, func, **fixed):
        self.func, self.fixed = func, fixed
        functools.update_wrapper(self, func)
        for key, value in fixed.items():
            setattr(self, key, value)

    def __call__(self, completions, **kwargs):
        return self.func(completions, **{**kwargs, **self.fixed})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.fixed.items())
        return f"<{self.__name__}({args})>"


def reward_functions(style: str = "think", mode: str = "robust") -> list:
    """``[format_reward, accuracy_reward]`` bound to ``style`` and ``mode``, keeping their ``__name__``s.

    TRL logs them as ``rewards/format_reward/mean`` and ``rewards/accuracy_reward/mean``.
    """
    get_style(style)  # fail now on a typo, not at the first training step
    if mode not in MODES:
        raise ValueError(f"unknown answer mode {mode!r}; expected one of {MODES}")
    return [_BoundReward(format_reward, style=style), _BoundReward(accuracy_reward, mode=mode)]
