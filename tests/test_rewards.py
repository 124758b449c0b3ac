"""TRL reward functions: released format regexes per style, accuracy per row, TRL call shape."""

import functools
import inspect
import pickle
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medr1.data.prompts import STYLES
from medr1.rewards.functions import accuracy_reward, completion_text, format_reward, reward_functions


def conv(text):
    return [{"role": "assistant", "content": text}]


THINK_OK = [
    "<think>bones are bright</think><answer>C</answer>",
    "<think>a\nb</think>\n\n<answer>\nC\n</answer>",
    "<think></think><answer></answer>",
    "<think>x</think> <answer>C) CT</answer>",  # format only: content is not checked
]
THINK_BAD = [
    "<answer>C</answer>",  # missing think
    "<think>x</think>",  # missing answer
    " <think>x</think><answer>C</answer>",  # leading whitespace
    "<think>x</think><answer>C</answer>\n",  # trailing whitespace
    "<think>x</think><answer>C</answer> extra",
    "<think>x</think>text<answer>C</answer>",  # text between the blocks
    "<think>x<answer>C</answer>",  # unclosed think
    "<think>x</think><answer>C",  # unclosed answer
    "<answer>C</answer><think>x</think>",  # think-after order
    "",
]
NOTHINK_OK = [
    "<answer>C</answer>",
    "  \n<answer> C </answer>",
    "<answer>\nC\n</answer>",
    "<answer>A</answer><answer>B</answer>",
]
NOTHINK_BAD = [
    "<answer>C</answer>\n",
    "C",
    "<answer>C",
    "<think>x</think><answer>C</answer>",
    "<answer>C</answer>x",
    "",
]
AFTER_OK = ["<answer>C</answer><think>x</think>", "<answer>C</answer>\n<think>a\nb</think>"]
AFTER_BAD = [
    "<think>x</think><answer>C</answer>",
    "<answer>C</answer>",
    "<answer>C</answer><think>x",
    " <answer>C</answer><think>x</think>",
]


@pytest.mark.parametrize(
    "style, good, bad",
    [
        ("think", THINK_OK, THINK_BAD),
        ("nothink", NOTHINK_OK, NOTHINK_BAD),
        ("think-after", AFTER_OK, AFTER_BAD),
    ],
)
def test_format_reward_per_style(style, good, bad):
    assert format_reward([conv(t) for t in good], style=style) == [1.0] * len(good)
    assert format_reward([conv(t) for t in bad], style=style) == [0.0] * len(bad)
    assert format_reward(good + bad, style=style) == [1.0] * len(good) + [0.0] * len(bad)  # plain strings


def test_format_reward_default_is_think():
    assert format_reward([conv(THINK_OK[0]), conv(NOTHINK_OK[0])]) == [1.0, 0.0]


_SOUP = st.lists(
    st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x", "<", ">"]), max_size=12
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SOUP, st.sampled_from(sorted(STYLES)))
def test_format_reward_equals_the_released_regex(text, style):
    expected = 1.0 if re.fullmatch(STYLES[style].format_pattern, text, re.DOTALL) else 0.0
    assert format_reward([text], style=style) == [expected]


def test_format_reward_is_fast_on_adversarial_input():
    # The bare lazy regexes take tens of seconds on these.
    texts = ["<think>" + "</think><answer>" * 60_000 + "x", "<answer>" + "</answer><think>" * 60_000 + "x"]
    start = time.perf_counter()
    for style in STYLES:
        assert format_reward(texts, style=style) == [0.0, 0.0]
    assert time.perf_counter() - start < 1.0


def test_completion_text_forms():
    assert completion_text("plain") == "plain"
    assert completion_text(conv("hi")) == "hi"
    assert (
        completion_text(
            [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
        )
        == "ab"
    )
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
    assert completion_text([{"role": "assistant", "content": None}]) is None
    assert completion_text(None) is None
    assert completion_text([]) is None
    assert completion_text([{"role": "assistant", "content": [{"type": "image"}]}]) is None
    # A response parser that moved the reasoning out of `content` (TRL + Qwen3-style tokenizers).
    parsed = {"role": "assistant", "content": "<answer>C</answer>", "reasoning_content": "bones"}
    assert completion_text([parsed]) == "<think>bones</think><answer>C</answer>"


def test_none_and_odd_completions_score_zero():
    odd = [conv(None), None, [], [{"role": "assistant", "content": 5}], 42]
    assert format_reward(odd) == [0.0] * len(odd)
    assert accuracy_reward(odd, answer=["C"] * len(odd)) == [0.0] * len(odd)


def test_accuracy_reward_row_alignment():
    completions = [
        conv("<think>t</think><answer>A</answer>"),
        conv("<think>t</think><answer>Kidney</answer>"),
        conv("<think>t</think><answer>C) Spleen</answer>"),
        conv("<think>t</think><answer>A or B</answer>"),
        conv("<think>t</think><answer>B</answer>"),
    ]
    answer = ["A", "B", "C", "A", "A"]
    options = [
        ["Liver", "Kidney"],
        ["Liver", "Kidney", "Spleen"],
        ["Liver", "Kidney", "Spleen"],
        ["x", "y"],
        ["p", "q"],
    ]
    assert accuracy_reward(completions, answer=answer, options=options) == [1.0, 1.0, 1.0, 0.0, 0.0]
    # Without options the option text cannot be matched.
    assert accuracy_reward(completions, answer=answer) == [1.0, 0.0, 1.0, 0.0, 0.0]
    # Swapping the gold rows swaps the rewards: each completion is scored against its own row.
    assert accuracy_reward(completions[:2], answer=["B", "A"], options=options[:2]) == [0.0, 0.0]
    assert accuracy_reward(completions[::-1], answer=answer[::-1], options=options[::-1]) == [
        0.0,
        0.0,
        1.0,
        1.0,
        1.0,
    ]


def test_accuracy_reward_odd_columns(caplog):
    texts = ["<answer>B</answer>", "<answer>MRI</answer>"]
    assert accuracy_reward(texts, answer=("B", "B"), options=(("CT", "MRI"), ("CT", "MRI"))) == [1.0, 1.0]
    assert accuracy_reward(texts, answer="B") == [1.0, 0.0]  # one gold for every row
    with caplog.at_level("WARNING"):
        assert accuracy_reward(texts, answer=["B"], options=[["CT", "MRI"]]) == [1.0, 0.0]  # missing row: 0.0
    assert "1 answers for 2 completions" in caplog.text


def test_accuracy_reward_modes():
    texts = ["<answer> C </answer>", "<answer>C) CT</answer>", "C", "<answer>c</answer>"]
    opts = [["MRI", "X-Ray", "CT"]] * 4
    assert accuracy_reward(texts, answer=["C"] * 4, options=opts, mode="robust") == [1.0, 1.0, 1.0, 1.0]
    assert accuracy_reward(texts, answer=["C"] * 4, options=opts, mode="medr1-compat") == [1.0, 0.0, 1.0, 0.0]
    assert accuracy_reward(texts, answer=["C"] * 4, options=opts, mode="medr1-compat-eval") == [
        1.0,
        0.0,
        0.0,
        0.0,
    ]
    with pytest.raises(ValueError, match="mode"):
        accuracy_reward(texts, answer=["C"] * 4, mode="exact")


def test_trl_style_call_with_extra_kwargs():
    fmt, acc = reward_functions(style="think", mode="robust")
    completions = [conv("<think>t</think><answer>B</answer>"), conv("<answer>B</answer>")]
    kwargs = {
        "prompts": [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]}]] * 2,
        "completions": completions,
        "completion_ids": [[1, 2, 3], [4, 5]],
        "question_id": ["q1", "q2"],
        "dataset": ["d", "d"],
        "modality": ["CT", "CT"],
        "task": ["Disease Diagnosis"] * 2,
        "question": ["q", "q"],
        "image": ["Images/a.png", "Images/b.png"],
        "answer": ["B", "A"],
        "options": [["CT", "MRI"], ["CT", "MRI"]],
        "trainer_state": object(),
        "log_extra": lambda *a, **k: None,
        "log_metric": lambda *a, **k: None,
    }
    assert fmt(**kwargs) == [1.0, 0.0]
    assert acc(**kwargs) == [1.0, 0.0]
    # The unbound functions accept the same call.
    assert format_reward(**kwargs) == [1.0, 0.0]
    assert accuracy_reward(**kwargs) == [1.0, 0.0]


def test_reward_functions_names_and_binding():
    fmt, acc = reward_functions()
    assert (fmt.__name__, acc.__name__) == ("format_reward", "accuracy_reward")
    fmt, acc = reward_functions(style="nothink", mode="medr1-compat")
    assert (fmt.__name__, acc.__name__) == ("format_reward", "accuracy_reward")
    assert fmt(completions=["<answer>C) CT</answer>"]) == [1.0]
    assert acc(completions=["<answer>C) CT</answer>"], answer=["C"], options=[["a", "b", "CT"]]) == [0.0]
    # A dataset column with the same name cannot override the bound setting.
    assert fmt(completions=["<answer>C</answer>"], style=["think"]) == [1.0]
    # Picklable, for TRL's async rollout worker.
    fmt2, acc2 = pickle.loads(pickle.dumps((fmt, acc)))
    assert fmt2.__name__ == "format_reward" and fmt2(completions=["<answer>C</answer>"]) == [1.0]
    assert acc2.__name__ == "accuracy_reward" and acc2(completions=["C"], answer=["C"]) == [1.0]
    with pytest.raises(ValueError):
        reward_functions(style="cot")
    with pytest.raises(ValueError):
        reward_functions(mode="strict")


def test_trl_names_the_metrics():
    # TRL 1.16 `get_callable_name`: unwrap functools.partial, then `__name__` (importing trl here costs ~5 s).
    for f, name in zip(reward_functions("think-after"), ["format_reward", "accuracy_reward"]):
        assert not isinstance(f, functools.partial)
        assert getattr(f, "__name__", type(f).__name__) == name
        assert not inspect.iscoroutinefunction(f) and callable(f)
