"""HuatuoGPT-o1's answer style: its response format, its final response, its multiple-choice extraction, its
evaluation prompt; MedicalGPT's format; text records' prompts."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medr1.data.prompts import PROMPT_STYLES, TEXT_STYLES, build_conversation, get_style, prompt_text
from medr1.rewards.answers import (
    JUDGES,
    huatuo_choice,
    huatuo_final_response,
    huatuo_is_well_formed,
    judge_is_correct,
)
from medr1.rewards.functions import format_reward
from medr1.train.sft import target_text

GOOD = "## Thinking\n\nThe patient has a low ferritin.\n\n## Final Response\n\nIron-deficiency anaemia."
OPTIONS = ["Aspirin", "Metformin", "Insulin glargine", "Warfarin"]


@pytest.mark.parametrize("text, formed", [
    (GOOD, True),
    ("## Thinking## Final Response\n\n", True),
    ("preamble ## Thinking x ## Final Response\n\nanswer", True),  # text before the heading is allowed
    ("## Final Response\n\nanswer\n## Thinking\n\nlate", False),    # wrong order
    ("## Thinking\n\na\n## Thinking\n\nb\n\n## Final Response\n\nc", False),  # thinking twice
    ("## Thinking\n\na\n\n## Final Response\n\nb\n\n## Final Response\n\nc", False),  # final twice
    ("## Thinking\n\na\n\n## Final Response\nno blank line", False),
    ("## Thinking\n\nonly thinking", False),
    ("", False),
    (None, False),
    (3, False),
])
def test_huatuo_format(text, formed):
    assert huatuo_is_well_formed(text) is formed
    assert (huatuo_final_response(text) is not None) is formed
    if isinstance(text, str):
        assert format_reward([text], style="huatuo") == [float(formed)]


def test_huatuo_final_response_is_the_stripped_rest():
    assert huatuo_final_response(GOOD) == "Iron-deficiency anaemia."
    assert huatuo_final_response("## Thinking\n\nx\n\n## Final Response\n\n  two\nlines  \n") == "two\nlines"
    assert huatuo_final_response("## Thinking\n\nx\n\n## Final Response\n\n") == ""


def test_format_reward_reads_conversational_completions():
    completion = [{"role": "assistant", "content": GOOD}]
    assert format_reward([completion, [{"role": "assistant", "content": "red"}]], style="huatuo") == [1.0, 0.0]


_pieces = st.lists(st.sampled_from(["## Thinking", "## Final Response\n\n", "## Final Response", "\n\n", "x", " ",
                                    "#", "##"]), max_size=8)


@settings(max_examples=300, deadline=None)
@given(_pieces)
def test_the_styles_regex_says_what_the_rule_says(pieces):
    """prompts.TEXT_STYLES['huatuo'].format_pattern and answers.huatuo_is_well_formed are the same rule."""
    text = "".join(pieces)
    pattern = TEXT_STYLES["huatuo"].format_pattern
    assert bool(re.fullmatch(pattern, text, re.DOTALL)) is huatuo_is_well_formed(text)


@pytest.mark.parametrize("text, letter", [
    ("## Thinking\n\n...\n\n## Final Response\n\nThe answer is B.", "B"),
    ("## Final Response\n\nanswer is C", "C"),
    ("the answer is A, but the answer is D", "A"),                   # the first statement
    ("## Thinking\n\nanswer is A\n\n## Final Response\n\n(C) Insulin glargine", "C"),  # the final response only
    ("I would choose (D).", "D"),                                     # a delimited bare letter
    ("A 45-year-old needs C.", "C"),                                  # the article A is not a choice
    ("Options B, C are wrong; A lesion.. answer D", "B"),             # the first delimited letter
    ("Start metformin today.", "B"),                                  # an option's text
    ("Give insulin glargine, not aspirin", "C"),                      # the longest option text found
    ("warfrin", "D"),                                                 # the most similar option
    ("answer is Hypertension", "C"),  # "answer is H" names no option; the bare-letter rule finds none either
])
def test_huatuo_choice(text, letter):
    assert huatuo_choice(text, OPTIONS) == letter


def test_huatuo_choice_limits():
    assert huatuo_choice("answer is J", [str(i) for i in range(10)]) == "J"
    assert huatuo_choice("answer is E", OPTIONS) != "E"  # letters beyond the options are never chosen
    assert huatuo_choice("B", [str(i) for i in range(11)]) is None  # more than A-J
    assert huatuo_choice("B", []) is None and huatuo_choice(None, OPTIONS) is None
    assert "huatuo" in JUDGES
    assert judge_is_correct("huatuo", "## Final Response\n\nThe answer is B", "B", OPTIONS)
    assert not judge_is_correct("huatuo", "## Final Response\n\nThe answer is B", "C", OPTIONS)


def test_huatuo_prompts():
    record = {"question_id": "q", "modality": "text", "question": "Which drug lowers glucose?", "options": OPTIONS,
              "answer": "B"}
    conversation = build_conversation(record, style="huatuo", stage="eval")
    assert conversation == [{"role": "user", "content": (
        "Please answer the following multiple-choice question:\nWhich drug lowers glucose?\nA. Aspirin\n"
        "B. Metformin\nC. Insulin glargine\nD. Warfarin")}]
    # Training: the bare question (HuatuoGPT-o1's SFT and RL prompt); open-ended records have no option lines.
    open_ended = {**record, "options": [], "answer": "metformin"}
    assert build_conversation(open_ended, style="huatuo")[0]["content"] == "Which drug lowers glucose?"
    assert prompt_text("Q", "huatuo", "eval") == "Please answer the following multiple-choice question:\nQ"


def test_text_styles_stay_out_of_the_med_r1_styles():
    assert PROMPT_STYLES == ("think", "nothink", "think-after")
    assert get_style("huatuo") is TEXT_STYLES["huatuo"]
    with pytest.raises(ValueError, match="huatuo"):
        get_style("huatuo-o1")


def test_a_text_record_prompt_is_a_plain_string_and_image_records_keep_their_parts():
    text = {"question_id": "q", "modality": "text", "question": "Q?", "options": ["x", "y"], "answer": "A"}
    assert isinstance(build_conversation(text)[0]["content"], str)
    image = {**text, "modality": "CT", "image": "a.png"}
    assert [p["type"] for p in build_conversation(image)[0]["content"]] == ["image", "text"]


def test_medicalgpt_format():
    assert format_reward(["<think>a</think><answer>b</answer>"], style="medicalgpt") == [1.0]
    assert format_reward(["<think>a</think> <answer>b</answer>"], style="medicalgpt") == [0.0]  # nothing between
    assert "<answer>" in prompt_text("Q", "medicalgpt") and "letter" not in prompt_text("Q", "medicalgpt")


def test_sft_target_in_the_huatuo_style():
    target = target_text("metformin", "huatuo", "Glucose is high.")
    assert target == "## Thinking\n\nGlucose is high.\n\n## Final Response\n\nmetformin"
    assert huatuo_final_response(target) == "metformin"
