"""Prompt wording must match the released Med-R1 prompts character for character."""

import pytest

from medr1.data.prompts import (
    PROMPT_STYLES,
    STAGES,
    STYLES,
    build_conversation,
    format_options,
    problem_text,
    prompt_text,
    zero_shot_prompt_text,
)

RECORD = {
    "question_id": "q1",
    "dataset": "Chest CT Scan",
    "modality": "CT",
    "task": "Disease Diagnosis",
    "question": "What is the abnormality in this image?",
    "options": ["Adenocarcinoma", "Normal", "Large cell carcinoma, left lung", "Squamous cell carcinoma"],
    "answer": "A",
    "image": "Images/Chest CT Scan/test/000108.png",
}
PROBLEM = (
    "What is the abnormality in this image? A)Adenocarcinoma, B)Normal, C)Large cell carcinoma, left lung, "
    "D)Squamous cell carcinoma"
)

# The released wording, written out in full (not built from the module's templates).
EXPECTED = {
    ("think", "train"): PROBLEM
    + " Your task: 1. Think through the question step by step, enclose your reasoning "
    "process in <think>...</think> tags. 2. Then provide the correct single-letter choice (A, B, C, D,...) "
    "inside <answer>...</answer> tags. 3. No extra information or text outside of these tags.",
    ("nothink", "train"): PROBLEM
    + " Your task: 1. Provide the correct single-letter choice (A, B, C, D,...) inside "
    "<answer>...</answer> tags. 2. No extra information or text outside of this tag.",
    ("think-after", "train"): PROBLEM
    + " Your task: 1. Provide the correct single-letter choice (A, B, C, D,...) "
    "inside <answer>...</answer> tags. 2. Then explain your reasoning step by step inside "
    "<think>...</think> tags. 3. No extra information or text outside of these tags.",
    ("think", "eval"): PROBLEM
    + " Think through the question step by step in <think>...</think> tags. Then provide "
    "the correct single-letter choice (A, B, C, D,...) inside <answer>...</answer> tags.",
    ("nothink", "eval"): PROBLEM + " Provide the correct single-letter choice (A, B, C, D,...) inside "
    "<answer>...</answer> tags.",
    ("think-after", "eval"): PROBLEM + " Provide the correct single-letter choice (A, B, C, D,...) inside "
    "<answer>...</answer> tags. Then explain your reasoning step by step in <think>...</think> tags.",
}
ZERO_SHOT = PROBLEM + " Provide the correct single-letter choice (A, B, C, D,...)."


def test_styles_and_stages():
    assert PROMPT_STYLES == ("think", "nothink", "think-after")
    assert STAGES == ("train", "eval")
    assert set(STYLES) == set(PROMPT_STYLES)


def test_format_options():
    assert format_options(["CT", "MRI"]) == "A)CT, B)MRI"
    assert format_options(["a", "b", "c"]) == "A)a, B)b, C)c"
    assert format_options(RECORD["options"]) == PROBLEM.split("? ", 1)[1]


def test_problem_text():
    assert problem_text(RECORD["question"], RECORD["options"]) == PROBLEM
    assert problem_text("Which organ?", ["Liver", "Kidney"]) == "Which organ? A)Liver, B)Kidney"


@pytest.mark.parametrize("style, stage", sorted(EXPECTED))
def test_prompt_text_exact(style, stage):
    assert prompt_text(PROBLEM, style=style, stage=stage) == EXPECTED[(style, stage)]


def test_prompt_defaults_and_braces():
    assert prompt_text(PROBLEM) == EXPECTED[("think", "train")]
    # Braces in a question are text, not template fields.
    assert prompt_text("Size {mm}?", "nothink", "eval").startswith("Size {mm}? Provide")


def test_zero_shot_exact():
    assert zero_shot_prompt_text(PROBLEM) == ZERO_SHOT


@pytest.mark.parametrize("style, stage", sorted(EXPECTED))
def test_build_conversation(style, stage):
    conv = build_conversation(RECORD, style=style, stage=stage)
    assert conv == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": EXPECTED[(style, stage)]}]}
    ]


def test_build_conversation_zero_shot_and_released_record():
    conv = build_conversation(RECORD, style="nothink", stage="eval", zero_shot=True)
    assert conv[0]["content"][1]["text"] == ZERO_SHOT
    assert [part["type"] for part in conv[0]["content"]] == ["image", "text"]
    assert len(conv) == 1 and conv[0]["role"] == "user"  # no system turn
    released = {"image": RECORD["image"], "problem": PROBLEM, "solution": "<answer> A </answer>"}
    assert (
        build_conversation(released, "think", "eval")[0]["content"][1]["text"] == EXPECTED[("think", "eval")]
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="style"):
        prompt_text(PROBLEM, style="cot")
    with pytest.raises(ValueError, match="stage"):
        prompt_text(PROBLEM, stage="test")
    with pytest.raises(ValueError, match="question"):
        build_conversation({"image": "x.png"})


# ---- text styles: an open-ended record (options: []) is no multiple-choice question --------------------------------

TEXT_MC = {"question_id": "t1", "modality": "text", "question": "Which drug lowers glucose?",
           "options": ["Aspirin", "Metformin"], "answer": "B"}
TEXT_OPEN = {**TEXT_MC, "question_id": "t2", "options": [], "answer": "metformin"}


def test_huatuo_evaluates_an_open_ended_record_on_the_bare_question():
    # HuatuoGPT-o1's evaluation prompt, written out, for multiple choice; the bare question for a verifiable problem.
    assert build_conversation(TEXT_MC, style="huatuo", stage="eval")[0]["content"] == (
        "Please answer the following multiple-choice question:\nWhich drug lowers glucose?\nA. Aspirin\nB. Metformin")
    for stage in STAGES:
        assert build_conversation(TEXT_OPEN, style="huatuo", stage=stage)[0]["content"] == "Which drug lowers glucose?"
    assert prompt_text("Q", "huatuo", "eval", open_ended=True) == "Q"
    assert prompt_text("Q", "huatuo", "eval") == "Please answer the following multiple-choice question:\nQ"


@pytest.mark.parametrize("style", [*PROMPT_STYLES, "medicalgpt"])
def test_styles_without_an_open_wording_keep_their_prompt(style):
    for stage in STAGES:
        assert prompt_text("Q", style, stage, open_ended=True) == prompt_text("Q", style, stage)


def test_reasoning_traces_ask_the_question_as_the_huatuo_prompt_does():
    """`medr1 traces` starts from the question the huatuo style trains and evaluates an open-ended record on."""
    from medr1.train.traces import FORMAT_REQUEST, first_turn

    for record in (TEXT_MC, TEXT_OPEN):
        train = build_conversation(record, style="huatuo", stage="train")[0]["content"]
        assert first_turn(record)["content"] == f"{train}\n\n{FORMAT_REQUEST}"
    assert "multiple-choice" not in first_turn(TEXT_OPEN)["content"]
