"""Every scoring convention side by side: each convention's rules on hand-written outputs (including the
ones where conventions disagree), the per-line `correct_by` and the metrics' `scoring`, `medr1 rescore` on a
cell written before the conventions existed, and `medr1 tables --scoring`."""

import csv
import json
import shutil

import pytest

from medr1.evaluation.evaluate import score_prediction, summarize
from medr1.evaluation.scoring import CONVENTIONS, complete_scoring, rescore_cell, score_all
from medr1.rewards.answers import judge_is_correct, medevalkit_choice, omnimedvqa_choice

OPTS = ["MRI", "CT", "X-Ray"]  # A, B, C
RECORD = {"question_id": "q1", "dataset": "D", "options": OPTS, "answer": "B"}


def test_the_conventions_and_who_published_with_them():
    assert tuple(CONVENTIONS) == ("robust", "medr1-compat", "medevalkit", "omnimedvqa", "huatuo")
    assert CONVENTIONS["huatuo"].published == "HuatuoGPT-o1 paper"
    assert CONVENTIONS["medr1-compat"].published == "Med-R1 paper"
    assert CONVENTIONS["omnimedvqa"].published == "OmniMedVQA paper"
    assert "MedEvalKit" in CONVENTIONS["medevalkit"].published


@pytest.mark.parametrize("text, letter", [
    ("<think>t</think><answer>B</answer>", "B"),        # the <answer> text first
    ("Reasoning... the answer is (C).", "C"),           # answer phrase with a letter
    ("Answer: a", "A"),                                 # a lone lower-case letter after the phrase
    ("First answer: A. On reflection the answer is C", "C"),  # the last phrase wins
    ("The answer is MRI.", "A"),                        # phrase with option text: read on
    ("b", "B"), ("(c)", "C"), ("B.", "B"),              # a bare letter
    ("C. X-Ray", "C"),                                  # the option echoed as `C. text`
    ("It is an MRI scan", "A"),                         # an option's text contained
    ("CT with a contrast agent", "B"),
    ("OCT image", "B"),                                 # CT is not found inside OCT: most similar instead
    ("xray", "C"),                                      # most similar, case-insensitive
    ("", "A"),                                          # every output gets an answer
    ("<answer>D</answer>", "A"),                        # a letter beyond the options is not a letter
])
def test_medevalkit_rules(text, letter):
    assert medevalkit_choice(text, OPTS) == letter


def test_medevalkit_edges():
    assert medevalkit_choice("a lesion of the lung", ["lesion of the lung", "normal"]) == "A"  # text, not article
    assert medevalkit_choice("answer: a lesion", ["normal", "a lesion"]) == "B"
    # The longest contained option wins: "CT" and "CT angiography" both occur.
    assert medevalkit_choice("this is a CT angiography", ["CT", "CT angiography"]) == "B"
    assert medevalkit_choice(None, OPTS) is None and medevalkit_choice("B", []) is None
    assert medevalkit_choice("B", None) is None


@pytest.mark.parametrize("text, letter", [
    ("CT", "B"), ("MRI", "A"), ("X-ray", "C"),
    ("B", "A"),                       # a bare letter is just text: nearest by ratio, first on ties
    ("<answer>B</answer>", "C"),      # tags are not stripped
    ("The scan is a CT", "B"),
    ("", "A"),
])
def test_omnimedvqa_rules(text, letter):
    assert omnimedvqa_choice(text, OPTS) == letter


def test_omnimedvqa_is_right_when_the_chosen_text_is_the_gold_text():
    assert judge_is_correct("omnimedvqa", "CT", "B", OPTS)
    assert not judge_is_correct("omnimedvqa", "MRI", "B", OPTS)
    assert judge_is_correct("omnimedvqa", "same", "B", ["same", "same"])  # identical texts are both right
    assert not judge_is_correct("omnimedvqa", "CT", "D", OPTS)            # gold outside the options
    assert judge_is_correct("medevalkit", "b", "<answer> B </answer>", OPTS)
    with pytest.raises(ValueError, match="unknown judge"):
        judge_is_correct("robust", "B", "B", OPTS)


@pytest.mark.parametrize("output, expected", [
    # robust, medr1-compat, medevalkit, omnimedvqa, huatuo
    ("<think>t</think><answer>B</answer>", (True, True, True, False, True)),   # OmniMedVQA reads raw text only
    ("<answer>B) CT</answer>", (True, False, True, True, True)),               # released regex: \w+ only
    ("The answer is B.", (True, False, True, True, True)),                      # no tag: released scoring says wrong
    ("B", (True, False, True, False, True)),
    ("OCT image", (False, False, True, True, True)),                            # similarity always answers
    ("It is an MRI scan", (False, False, False, False, False)),
    ("<answer>CT</answer>", (True, False, True, True, True)),
])
def test_conventions_disagree_on_the_same_output(output, expected):
    correct_by = score_all(output, OPTS, "B")["correct_by"]
    assert tuple(correct_by[name] for name in CONVENTIONS) == expected


def test_prediction_lines_carry_every_convention_and_metrics_summarise_them():
    outputs = ["<answer>B</answer>", "<answer>B) CT</answer>", "OCT image", "zzz"]
    lines = [score_prediction(RECORD, o, "nothink", "medr1-compat", every_convention=True) for o in outputs]
    for line in lines:
        assert set(line["correct_by"]) == set(CONVENTIONS) == set(line["parsed_by"])
        assert line["correct"] == line["correct_by"]["medr1-compat"]
        assert line["parsed"] == line["parsed_by"]["medr1-compat"]
    assert "correct_by" not in score_prediction(RECORD, "B", "nothink", "robust")  # the plain row is unchanged
    metrics = summarize(lines)
    assert metrics["accuracy"] == 0.25  # the chosen convention stays at the top
    scoring = metrics["scoring"]
    assert {name: scoring[name]["accuracy"] for name in CONVENTIONS} == {
        "robust": 0.5, "medr1-compat": 0.25, "medevalkit": 0.75, "omnimedvqa": 0.5, "huatuo": 0.75}
    assert scoring["medevalkit"]["answered_rate"] == 1.0 and scoring["robust"]["answered_rate"] == 0.5
    low, high = scoring["medevalkit"]["ci95"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0
    assert "scoring" not in summarize([{k: v for k, v in lines[0].items() if k != "correct_by"}])


def test_unknown_convention_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown scoring convention 'lenient'"):
        score_prediction(RECORD, "B", "nothink", "lenient")


def test_old_lines_are_completed_from_their_records():
    old = {k: v for k, v in score_prediction(RECORD, "CT", "zero-shot", "robust").items()}
    fresh = score_prediction(RECORD, "CT", "zero-shot", "robust", every_convention=True)
    done = complete_scoring([old, fresh], [RECORD], "zero-shot", "robust")
    assert done[0] == fresh and done[1] is fresh


def _strip_to_old_format(cell):
    """Make a cell look as the code before the scoring conventions wrote it."""
    lines = [json.loads(line) for line in (cell / "predictions.jsonl").read_text().splitlines()]
    for line in lines:
        del line["parsed_by"], line["correct_by"]
    (cell / "predictions.jsonl").write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    metrics = json.loads((cell / "metrics.json").read_text())
    del metrics["scoring"]
    (cell / "metrics.json").write_text(json.dumps(metrics, indent=2))


def test_rescore_of_an_old_cell_equals_a_fresh_evaluation(synthetic_data, diverse_model, tmp_path):
    from medr1.cli import main
    from medr1.evaluation.evaluate import evaluate

    _, data = synthetic_data
    fresh = tmp_path / "fresh"
    evaluate(diverse_model, data, "modality/CT/test", fresh, prompt="nothink", limit=6, image_size=56,
             max_new_tokens=8, num_workers=0)
    old = tmp_path / "old"
    shutil.copytree(fresh, old)
    _strip_to_old_format(old)
    before = json.loads((old / "metrics.json").read_text())
    assert main(["rescore", "--cell", str(old), "--data", str(data)]) == 0
    want, got = json.loads((fresh / "metrics.json").read_text()), json.loads((old / "metrics.json").read_text())
    assert got["accuracy"] == want["accuracy"] and got["scoring"] == want["scoring"]
    assert got["seconds_this_run"] == before["seconds_this_run"] and got["model"] == before["model"]  # kept
    assert (old / "predictions.jsonl").read_text() == (fresh / "predictions.jsonl").read_text()
    assert not list(old.glob("*.tmp"))
    # Re-scoring is idempotent, and a resumed evaluation over old lines reports every convention too.
    assert rescore_cell(old, data)["scoring"] == want["scoring"]
    _strip_to_old_format(old)
    (old / "metrics.json").unlink()
    resumed = evaluate(diverse_model, data, "modality/CT/test", old, prompt="nothink", limit=6, image_size=56,
                       max_new_tokens=8, num_workers=0)
    assert resumed["questions_this_run"] == 0 and resumed["scoring"] == want["scoring"]


def test_rescore_names_the_cell_and_the_record_it_cannot_score(synthetic_data, tmp_path, caplog):
    from medr1.cli import main

    _, data = synthetic_data
    cell = tmp_path / "cell"
    cell.mkdir()
    (cell / "metrics.json").write_text(json.dumps({"split": "modality/CT/test", "parse": "robust", "prompt": "think"}))
    (cell / "predictions.jsonl").write_text(json.dumps({"question_id": "nope", "output": "B"}) + "\n")
    assert main(["rescore", "--cell", str(cell), "--data", str(data)]) == 1
    assert "line 1 (question_id 'nope'): its question is not in the split" in caplog.text
    assert main(["rescore", "--cell", str(tmp_path / "absent"), "--data", str(data)]) == 1
    assert "is not a finished `medr1 eval` cell" in caplog.text


def _cell(folder, correct, scoring=None):
    folder.mkdir(parents=True)
    (folder / "predictions.jsonl").write_text("".join(json.dumps({"correct": c}) + "\n" for c in correct))
    metrics = {"accuracy": sum(correct) / len(correct)}
    if scoring is not None:
        metrics["scoring"] = {name: {"accuracy": value, "ci95": [0, 1], "answered_rate": 1.0}
                              for name, value in scoring.items()}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return str(folder)


def test_tables_by_a_chosen_convention_use_its_numbers(tmp_path, caplog):
    from medr1.evaluation.tables import main, write_tables

    results = tmp_path / "results"
    cells = {(row, column): _cell(tmp_path / "cells" / row / column, [True, True, False, False],
                                  {"robust": 0.5, "medevalkit": 0.25 if row == column else 0.75})
             for row in ("CT", "MRI") for column in ("CT", "MRI")}
    layout = {"axis": "modality", "prompt": "think", "columns": ["CT", "MRI"], "rows": [
        {"name": row, "trained_on": row, "model": row, "prompt": "think", "kind": "trained", "missing": False,
         "cells": {column: cells[(row, column)] for column in ("CT", "MRI")}} for row in ("CT", "MRI")]}
    results.mkdir()
    (results / "matrix_modality.json").write_text(json.dumps(layout))
    write_tables(results)
    write_tables(results, scoring="medevalkit")
    with open(results / "cross_modality.csv") as handle:
        default = {row[0]: row[1:3] for row in csv.reader(handle)}
    with open(results / "cross_modality_medevalkit.csv") as handle:
        scored = {row[0]: row[1:3] for row in csv.reader(handle)}
    assert default["CT"] == ["50.00", "50.00"]            # from the predictions' `correct`
    assert scored["CT"] == ["25.00", "75.00"] and scored["MRI"] == ["75.00", "25.00"]  # from scoring[medevalkit]
    assert "Scoring convention: medevalkit" in (results / "cross_modality_medevalkit.md").read_text()

    # A cell without the convention (made by older code) is an error that says how to fix it.
    (tmp_path / "cells" / "MRI" / "CT" / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    assert main(["--results", str(results), "--scoring", "medevalkit"]) == 1
    assert f"cell {tmp_path / 'cells' / 'MRI' / 'CT'} has no scoring['medevalkit']" in caplog.text
    assert "medr1 rescore --cell" in caplog.text


# --------------------------------------------------------------------------------------------------
# text records: the huatuo style's final response, and open-ended records scored by the rule verifier

OPEN = {"question_id": "o1", "dataset": "HuatuoGPT-o1", "options": [], "answer": "Metformin"}


def huatuo(final, thinking="Glucose is high; A and C are wrong."):
    return f"## Thinking\n\n{thinking}\n\n## Final Response\n\n{final}"


@pytest.mark.parametrize("output, style, expected", [
    # robust, medr1-compat, medevalkit, omnimedvqa, huatuo
    (huatuo("Metformin."), "huatuo", (True, True, True, True, True)),          # the final response, normalised
    (huatuo("The answer is metformin"), "huatuo", (True, True, True, True, True)),
    (huatuo("Insulin"), "huatuo", (False,) * 5),                                 # the verifier says no
    (huatuo(""), "huatuo", (False,) * 5),                                        # an empty answer is unanswered
    ("Metformin", "huatuo", (True, False, True, True, True)),                    # malformed: only lenient ones read it
    ("<think>t</think><answer> metformin </answer>", "think", (True, True, True, True, True)),
    ("<think>metformin</think><answer>insulin</answer>", "medicalgpt", (False,) * 5),  # the answer, not the thinking
    ("metformin", "zero-shot", (True, False, True, True, True)),
])
def test_open_ended_records_are_scored_by_the_rule_verifier(output, style, expected):
    scored = score_all(output, [], "Metformin", style=style)
    assert tuple(scored["correct_by"][name] for name in CONVENTIONS) == expected
    # What each convention read is the answer text, never a letter; None only when it read nothing.
    for name, parsed in scored["parsed_by"].items():
        assert parsed is None or (isinstance(parsed, str) and parsed == parsed.strip() and parsed)
        assert not scored["correct_by"][name] or parsed is not None


def test_open_ended_numbers_with_units_and_the_prediction_line():
    assert score_all(huatuo("5 mg"), [], "0.005 g", style="huatuo")["correct_by"]["huatuo"]
    assert not score_all(huatuo("5 g"), [], "0.005 g", style="huatuo")["correct_by"]["huatuo"]
    line = score_prediction(OPEN, huatuo("metformin"), "huatuo", None, every_convention=True)
    assert line["parsed"] == "metformin" and line["correct"] is True and line["format_ok"] is True
    assert line["answer"] == "Metformin" and set(line["correct_by"]) == set(CONVENTIONS)
    wrong = score_prediction(OPEN, "no headings at all", "huatuo", "robust")
    assert wrong["parsed"] == "no headings at all" and wrong["correct"] is False and wrong["format_ok"] is False
    metrics = summarize([line, score_prediction(OPEN, huatuo("insulin"), "huatuo", None, every_convention=True)])
    assert metrics["accuracy"] == 0.5 and metrics["scoring"]["robust"]["accuracy"] == 0.5


def test_the_huatuo_style_reads_the_final_response_of_multiple_choice():
    from medr1.evaluation.scoring import default_parse

    assert default_parse("huatuo") == "huatuo" and default_parse("think") == default_parse("medicalgpt") == "robust"
    output = huatuo("B")  # the thinking names A and C; the final response names B
    assert score_all(output, OPTS, "B", style="huatuo")["parsed_by"] == {
        "robust": "B", "medr1-compat": None, "medevalkit": "B", "omnimedvqa": "A", "huatuo": "B"}  # omnimedvqa: text
    assert score_all(output, OPTS, "B", style="think")["parsed_by"]["robust"] is None  # whole output: ambiguous
    line = score_prediction(RECORD, output, "huatuo", None)
    assert line["parsed"] == "B" and line["correct"] and line["format_ok"]  # scored by huatuo by default
    ten = [f"option {i}" for i in range(10)]
    assert score_prediction({**RECORD, "options": ten, "answer": "J"}, huatuo("The answer is J"), "huatuo",
                            None)["correct"]
