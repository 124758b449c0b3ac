"""Edge cases of the pure rules (answers, splits, rewards, group advantages, scoring).

Each test pins a property of a rule that the other rule tests leave open; `make mutation` shows which
mutants of the rule modules these tests kill.
"""

import logging
import math
import random

import pytest

from medr1.data.splits import make_splits, split_group
from medr1.evaluation.evaluate import bootstrap_ci, longest_first, score_prediction, summarize
from medr1.rewards.answers import is_correct, parse_answer_letter
from medr1.rewards.functions import accuracy_reward, completion_text, reward_functions
from medr1.sources.omnimedvqa import MODALITIES

OPTS = ["MRI", "CT", "X-Ray"]  # A, B, C
RECORD = {"question_id": "q1", "dataset": "D", "options": OPTS, "answer": "A"}


def rec(i, image=None, modality="CT", question=None, qid=None):
    return {
        "question_id": qid or f"q{i:04d}",
        "dataset": "DS",
        "modality": modality,
        "task": "Disease Diagnosis",
        "question": question or f"question {i}?",
        "options": ["yes", "no"],
        "answer": "A",
        "image": image or f"Images/DS/{i}.png",
    }


def ids(records):
    return [r["question_id"] for r in records]


# --------------------------------------------------------------------------------------------------
# answers


def test_compat_modes_compare_gold_case_sensitively():
    # As released: stripped strings, no case folding of the gold either.
    assert is_correct("<answer>c</answer>", "c", mode="medr1-compat")
    assert not is_correct("<answer>c</answer>", "C", mode="medr1-compat")
    assert is_correct("<answer>c</answer>", "c", mode="medr1-compat-eval")
    assert not is_correct("<answer>c</answer>", "C", mode="medr1-compat-eval")
    assert is_correct("<answer>c</answer>", "C")  # robust folds both


def test_eval_mode_reads_a_solution_gold_with_the_eval_regex():
    # medr1-compat-eval reads the gold with its own regex (\s spans newlines); medr1-compat with the
    # training regex, which has no DOTALL, so there the whole multi-line solution is the gold.
    solution = "<answer>\nC\n</answer>"
    assert is_correct("<answer>C</answer>", solution, mode="medr1-compat-eval")
    assert not is_correct("<answer>C</answer>", solution, mode="medr1-compat")


@pytest.mark.parametrize("text", ["(C) (C)", "C. C.", "C) C", "Answer: (C) (C)"])
def test_the_same_letter_twice_is_one_choice(text):
    assert parse_answer_letter(text, OPTS) == "C"
    assert parse_answer_letter(text) == "C"


@pytest.mark.parametrize("text", ["(C) or", "C. and", "C) AND", "(C) Or"])
def test_a_dangling_connector_is_ambiguous(text):
    # "C) or" is a truncated "C) or B": no single choice.
    assert parse_answer_letter(text, OPTS) is None
    assert parse_answer_letter(text) is None


# --------------------------------------------------------------------------------------------------
# splits


def test_split_independent_of_input_order_with_duplicate_question_ids():
    # Records that share a question_id are ordered by image, then question, before the seeded shuffle.
    records = [rec(i, qid="dup", image=f"Images/DS/{i % 7}.png", question=f"q {i // 7}") for i in range(40)]
    expected = split_group(records, 42, group="CT")
    for seed in range(5):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert split_group(shuffled, 42, group="CT") == expected
        assert split_group(shuffled, 42, group="CT", image_disjoint=True) == split_group(
            records, 42, group="CT", image_disjoint=True
        )


def test_split_fraction_bounds_are_inclusive():
    records = [rec(i) for i in range(10)]
    assert split_group(records, 1, test_fraction=0.0) == (records, [])
    assert split_group(records, 1, test_fraction=1.0) == ([], records)
    assert split_group(records, 1, test_fraction=1.0, image_disjoint=True) == ([], records)
    for bad in (-0.1, 1.01):
        with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\], got"):
            split_group(records, 1, test_fraction=bad)


def test_split_default_group_is_the_empty_name():
    records = [rec(i) for i in range(50)]
    assert split_group(records, 3) == split_group(records, 3, group="")
    assert split_group(records, 3, image_disjoint=True) == split_group(records, 3, image_disjoint=True, group="")


def test_image_disjoint_adds_an_image_only_when_strictly_closer():
    # Five images with two questions each, target round(0.3 * 10) = 3: the first image brings the test
    # side to 2 (distance 1); a second would make it 4, no closer, so it stays at 2.
    records = [rec(i, image=f"Images/DS/img{i // 2}.png") for i in range(10)]
    for seed in range(5):
        train, test = split_group(records, seed, test_fraction=0.3, image_disjoint=True, group="CT")
        assert len(test) == 2 and len({r["image"] for r in test}) == 1
    # Target 1 with only two-question images: no image gets closer, the test side stays empty.
    assert split_group(records, 0, test_fraction=0.1, image_disjoint=True)[1] == []


def test_make_splits_splits_each_group_like_split_group_with_its_name():
    records = [rec(i, modality=MODALITIES[i % 2], image=f"Images/DS/img{i // 3}.png") for i in range(120)]
    for image_disjoint in (False, True):
        for fraction in (0.2, 0.5):
            splits = make_splits(records, "modality", seed=7, image_disjoint=image_disjoint, test_fraction=fraction)
            for group in MODALITIES[:2]:
                members = [r for r in records if r["modality"] == group]
                train, test = split_group(members, 7, fraction, image_disjoint, group=group)
                assert splits[group] == {"train": train, "test": test}
    # The default is a per-question split (not image-disjoint): shared images, exact sizes.
    default = make_splits(records, "modality", seed=7)
    for group in MODALITIES[:2]:
        members = [r for r in records if r["modality"] == group]
        assert default[group] == dict(zip(("train", "test"), split_group(members, 7, group=group)))
        assert len(default[group]["test"]) == round(0.2 * len(members))


def test_make_splits_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"key must be one of \['modality', 'task'\], got 'dataset'"):
        make_splits([rec(0)], "dataset", seed=1)
    with pytest.raises(ValueError, match=r"record 'q0007' has unknown modality 'PET'"):
        make_splits([rec(1), rec(7, modality="PET")], "modality", seed=1)


# --------------------------------------------------------------------------------------------------
# rewards


def test_completion_text_restores_reasoning_from_either_key_once():
    msg = {"role": "assistant", "content": "<answer>C</answer>"}
    assert completion_text([{**msg, "thinking": "bones"}]) == "<think>bones</think><answer>C</answer>"
    assert completion_text({**msg, "reasoning_content": "r", "thinking": "t"}) == "<think>r</think><answer>C</answer>"
    # Reasoning without content is still the generated text.
    assert completion_text([{"role": "assistant", "reasoning_content": "r"}]) == "<think>r</think>"
    assert completion_text([{"role": "assistant", "content": None, "thinking": "r"}]) == "<think>r</think>"
    # Empty or non-text reasoning adds nothing; content that already has its <think> is left alone.
    assert completion_text({**msg, "reasoning_content": ""}) == "<answer>C</answer>"
    assert completion_text({**msg, "thinking": ["x"]}) == "<answer>C</answer>"
    done = {"role": "assistant", "content": "<think>a</think><answer>C</answer>", "reasoning_content": "a"}
    assert completion_text([done]) == "<think>a</think><answer>C</answer>"


def test_completion_text_reads_the_assistant_turns():
    user = {"role": "user", "content": "Which modality?"}
    assert completion_text([user, {"role": "assistant", "content": "A"}]) == "A"
    assert completion_text([{"role": "assistant", "content": "A"}, user]) == "A"
    # A message without a role counts as the assistant's.
    assert completion_text([{"content": "x"}, user]) == "x"
    # Several assistant turns are joined as generated, with nothing in between.
    assert completion_text([{"role": "assistant", "content": "a"}, user, {"role": "assistant", "content": "b"}]) == "ab"
    # No assistant turn at all: the text of every message; non-dict items are skipped.
    assert completion_text(["junk", user]) == "Which modality?"
    assert completion_text([{"role": "system", "content": "s"}, user]) == "sWhich modality?"


def test_accuracy_reward_lone_gold_string_applies_to_every_row(caplog):
    texts = ["<answer>C</answer>", "C", "<answer>c</answer>"]
    with caplog.at_level(logging.WARNING, logger="medr1.rewards.functions"):
        assert accuracy_reward(texts, answer="C") == [1.0, 1.0, 1.0]
        assert accuracy_reward(texts, answer="C", options="MRI") == [1.0, 1.0, 1.0]  # a string is no options
    assert not caplog.records  # a lone string is not a short column


def test_accuracy_reward_warns_only_on_a_column_of_the_wrong_length(caplog):
    texts = ["<answer>C</answer>", "<answer>B</answer>"]
    with caplog.at_level(logging.WARNING, logger="medr1.rewards.functions"):
        assert accuracy_reward(texts, answer=["C", "B"]) == [1.0, 1.0]
        assert accuracy_reward(texts, answer=("C", "B")) == [1.0, 1.0]
        assert accuracy_reward(texts, answer=None) == [0.0, 0.0]
        assert accuracy_reward(texts, answer=iter(["C", "B"])) == [0.0, 0.0]  # no len, not indexable
        assert not caplog.records
        assert accuracy_reward(texts, answer=("C", "B", "A")) == [1.0, 1.0]
    assert [r.getMessage() for r in caplog.records] == ["accuracy_reward: 3 answers for 2 completions"]


def test_accuracy_reward_needs_both_text_and_gold():
    assert accuracy_reward([None, "<answer>C</answer>"], answer=["C", None]) == [0.0, 0.0]
    assert accuracy_reward([[{"role": "assistant", "content": [{"type": "image"}]}]], answer=["C"]) == [0.0]


def test_reward_functions_expose_their_settings_and_name_a_bad_mode():
    fmt, acc = reward_functions(style="nothink", mode="medr1-compat")
    assert fmt.style == "nothink" and acc.mode == "medr1-compat"
    assert repr(fmt) == "<format_reward(style='nothink')>" and repr(acc) == "<accuracy_reward(mode='medr1-compat')>"
    with pytest.raises(ValueError, match=r"unknown answer mode 'strict'; expected one of \('robust'"):
        reward_functions(mode="strict")
    with pytest.raises(ValueError, match="unknown answer mode 'exact'"):
        accuracy_reward(["C"], answer=["C"], mode="exact")


# --------------------------------------------------------------------------------------------------
# group advantages (medr1.train.grpo imports transformers: imported inside the tests)


def _advantages(*args, **kwargs):
    from medr1.train.grpo import group_advantages

    return group_advantages(*args, **kwargs)


def test_group_advantages_use_the_unbiased_group_std_plus_eps():
    # [2, 0]: mean 1, unbiased variance (1 + 1) / 1 = 2 (the biased one would be 1).
    a = 1.0 / (2.0**0.5 + 1e-4)
    assert _advantages([2.0, 0.0], num_generations=2) == pytest.approx([a, -a], rel=1e-12)
    # [0, 0, 3]: mean 1, unbiased variance (1 + 1 + 4) / 2 = 3.
    s = 3.0**0.5 + 1e-4
    assert _advantages([0, 0, 3], num_generations=3) == pytest.approx([-1 / s, -1 / s, 2 / s], rel=1e-12)
    # eps is the given one.
    assert _advantages([2.0, 0.0], 2, eps=0.5) == pytest.approx([1 / (2**0.5 + 0.5), -1 / (2**0.5 + 0.5)], rel=1e-12)
    assert _advantages([2.0, 0.0], 2, eps=0.0) == pytest.approx([1 / 2**0.5, -1 / 2**0.5], rel=1e-12)


def test_group_advantages_normalise_each_group_on_its_own():
    rewards = [0.0, 1.0, 5.0, 5.0, 3.0, 7.0, 1.0, 1.0, 2.0]
    advantages = _advantages(rewards, num_generations=3, eps=0.0)
    assert len(advantages) == len(rewards)
    for start in range(0, 9, 3):
        group, adv = rewards[start:start + 3], advantages[start:start + 3]
        mean = sum(group) / 3
        assert sum(adv) == pytest.approx(0.0, abs=1e-12)
        std = (sum(x * x for x in adv) / 2) ** 0.5  # unit unbiased std once normalised
        assert std == pytest.approx(1.0, rel=1e-12)
        assert [x > 0 for x in adv] == [r > mean for r in group]  # order kept within the group
    # A group of equal rewards gets zero advantage, whatever its neighbours.
    half = 0.5 / (0.5**0.5 + 1e-4)  # [0, 1]: deviation 0.5 over the unbiased std sqrt(0.5)
    assert _advantages([2.0, 2.0, 0.0, 1.0], num_generations=2) == pytest.approx([0.0, 0.0, -half, half], rel=1e-12)
    assert _advantages([2.0, 2.0, 2.0, 2.0], num_generations=2)[:2] == [0.0, 0.0]


def test_group_advantages_edge_sizes():
    assert _advantages([], num_generations=4) == []
    assert _advantages([0.3, 1.0, 2.0], num_generations=1) == [0.0, 0.0, 0.0]  # one completion: nothing to compare
    a = 0.5 / ((1 / 3) ** 0.5 + 1e-4)  # [1, 0, 0, 1]: unbiased variance 4 * 0.25 / 3
    assert _advantages([1.0, 0.0, 0.0, 1.0], num_generations=4) == pytest.approx([a, -a, -a, a], rel=1e-12)
    with pytest.raises(ValueError, match="5 rewards do not split into groups of 2"):
        _advantages([1.0] * 5, num_generations=2)


# --------------------------------------------------------------------------------------------------
# scoring


def test_score_prediction_writes_the_whole_prediction_row():
    output = "<think>t</think><answer>MRI</answer>"  # the option's text: needs the record's options
    assert score_prediction(RECORD, output, "think", "robust") == {
        "question_id": "q1",
        "dataset": "D",
        "output": output,
        "parsed": "A",
        "answer": "A",
        "correct": True,
        "format_ok": True,
    }
    # The prompt the model was shown is recorded when the caller passes it, under `prompt_text`.
    shown = score_prediction(RECORD, output, "think", "robust", "<|im_start|>user ...")
    assert shown == {**score_prediction(RECORD, output, "think", "robust"), "prompt_text": "<|im_start|>user ..."}
    assert score_prediction(RECORD, output, "think", "robust", "")["prompt_text"] == ""
    beyond = score_prediction(RECORD, "<answer>D</answer>", "nothink", "robust")  # only 3 options
    assert beyond["parsed"] is None and beyond["correct"] is False


def test_score_prediction_parses_in_the_chosen_mode_and_checks_the_prompts_format():
    assert score_prediction(RECORD, "<answer>A) MRI</answer>", "nothink", "medr1-compat")["parsed"] is None
    assert score_prediction(RECORD, "<answer>A) MRI</answer>", "nothink", "robust")["parsed"] == "A"
    assert score_prediction(RECORD, "<answer> A </answer>", "nothink", "medr1-compat")["parsed"] == "A"
    # format_ok follows the prompt's style, not the default one.
    assert score_prediction(RECORD, "<answer>A</answer>", "nothink", "robust")["format_ok"] is True
    assert score_prediction(RECORD, "<answer>A</answer>", "think", "robust")["format_ok"] is False
    assert score_prediction(RECORD, "<answer>A</answer><think>t</think>", "think-after", "robust")["format_ok"] is True
    assert score_prediction(RECORD, "<answer>A</answer>", "zero-shot", "robust")["format_ok"] is None


def test_summarize_empty_and_unformatted_predictions():
    empty = summarize([])
    assert empty["n"] == 0 and empty["correct"] == 0 and empty["per_dataset"] == {}
    assert math.isnan(empty["accuracy"]) and math.isnan(empty["answered_rate"])
    assert all(math.isnan(x) for x in empty["ci95"]) and empty["format_compliance"] is None
    zero_shot = [
        {"dataset": "D", "correct": True, "parsed": "A", "format_ok": None},
        {"dataset": "D", "correct": False, "parsed": None, "format_ok": None},
    ]
    metrics = summarize(zero_shot)
    assert metrics["format_compliance"] is None  # zero-shot has no format to comply with
    assert metrics["correct"] == 1 and metrics["accuracy"] == 0.5 and metrics["answered_rate"] == 0.5
    mixed = zero_shot + [{"dataset": "C", "correct": True, "parsed": "B", "format_ok": False}]
    metrics = summarize(mixed)
    assert metrics["format_compliance"] == 0.0 and metrics["correct"] == 2
    assert list(metrics["per_dataset"]) == ["C", "D"]
    assert metrics["per_dataset"]["D"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert metrics["ci95"] == list(bootstrap_ci([True, False, True]))


def test_bootstrap_ci_is_reproducible():
    # The ci95 in metrics.json: 1000 seeded resamples, the same on every run and machine (pinned).
    correct = [True] * 7 + [False] * 5
    assert bootstrap_ci(correct) == bootstrap_ci(correct, resamples=1000, seed=0) == (0.25, 0.8333333333333334)
    assert bootstrap_ci([True] * 6 + [False] * 8) == (0.14285714285714285, 0.7142857142857143)
    assert bootstrap_ci(correct, resamples=10) == (0.25, 0.6666666666666666)
    assert bootstrap_ci(correct, resamples=10, seed=1) == (0.4166666666666667, 1.0)
    assert bootstrap_ci(correct, resamples=3) == (0.25, 0.5833333333333334)
    low, high = bootstrap_ci([])
    assert math.isnan(low) and math.isnan(high)


def test_longest_first_measures_a_record_by_question_and_options_or_else_problem():
    records = [
        {"question_id": "options-only", "options": ["a" * 50], "problem": "p" * 10},  # no question: the problem
        {"question_id": "question-only", "question": "q" * 60},  # no options, no problem: length 0
        {"question_id": "both", "question": "Q?", "options": ["a", "b"]},  # "Q? A)a, B)b": 11
        {"question_id": "problem", "problem": "p" * 12},
    ]
    assert [r["question_id"] for r in longest_first(records)] == ["problem", "both", "options-only", "question-only"]
