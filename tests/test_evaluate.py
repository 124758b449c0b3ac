"""Evaluation: scoring, batch-size invariance, resume after kill -9, and the metrics file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medr1.evaluation.evaluate import bootstrap_ci, longest_first, read_done, score_prediction, summarize

REPO = Path(__file__).resolve().parents[1]
RECORD = {"question_id": "q1", "dataset": "D", "options": ["CT", "MRI", "X-Ray"], "answer": "B"}


def test_scoring_uses_the_shared_parser_in_both_modes():
    robust = score_prediction(RECORD, "<think>t</think><answer>B) MRI</answer>", "think", "robust")
    assert robust["parsed"] == "B" and robust["correct"] and robust["format_ok"]
    released = score_prediction(RECORD, "<think>t</think><answer>B) MRI</answer>", "think", "medr1-compat")
    assert not released["correct"]  # the released script read \w+ only inside a bare tag
    assert score_prediction(RECORD, "<answer> B </answer>", "nothink", "medr1-compat")["correct"]
    assert score_prediction(RECORD, "B", "nothink", "medr1-compat")["correct"] is False  # no tag: wrong
    zero_shot = score_prediction(RECORD, "The answer is B.", "zero-shot", "robust")
    assert zero_shot["correct"] and zero_shot["format_ok"] is None


def test_summary_counts_and_confidence_interval():
    predictions = [
        {"dataset": "D1", "correct": True, "parsed": "A", "format_ok": True},
        {"dataset": "D1", "correct": False, "parsed": None, "format_ok": False},
        {"dataset": "D2", "correct": True, "parsed": "B", "format_ok": True},
        {"dataset": "D2", "correct": True, "parsed": "C", "format_ok": True},
    ]
    metrics = summarize(predictions)
    assert metrics["accuracy"] == 0.75 and metrics["n"] == 4
    assert metrics["answered_rate"] == 0.75 and metrics["format_compliance"] == 0.75
    assert metrics["per_dataset"]["D1"]["accuracy"] == 0.5 and metrics["per_dataset"]["D2"]["accuracy"] == 1.0
    low, high = metrics["ci95"]
    assert 0.0 <= low <= 0.75 <= high <= 1.0
    low, high = bootstrap_ci([True] * 80 + [False] * 20)
    assert 0.7 < low < 0.8 < high < 0.9


def test_longest_first_orders_by_prompt_text_and_keeps_split_order_on_ties():
    records = [
        {"question_id": "short", "question": "Q?", "options": ["a", "b"]},
        {"question_id": "long", "question": "A much longer question?", "options": ["a", "b"]},
        {"question_id": "tie", "question": "Q?", "options": ["a", "b"]},
        {"question_id": "released", "problem": "A released problem string, longest of all A)x, B)y"},
        {"question_id": "four", "question": "Q?", "options": ["a", "b", "c", "d"]},
    ]
    ordered = [r["question_id"] for r in longest_first(records)]
    assert ordered == ["released", "long", "four", "short", "tie"]
    assert [r["question_id"] for r in records][0] == "short"  # the input is not reordered in place


def test_a_torn_last_line_is_cut_off(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps({"question_id": "a"}) + "\n" + '{"question_id": "b", "outp')
    assert [p["question_id"] for p in read_done(path)] == ["a"]
    assert path.read_text().endswith("}\n")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_greedy_predictions_do_not_depend_on_batch_size(synthetic_data, diverse_model, tmp_path, num_workers):
    """Batch 1 and batch 8 write the same file, in the main process and with the default 2 DataLoader workers."""
    from medr1.evaluation.evaluate import evaluate

    _, data = synthetic_data
    kwargs = dict(limit=12, image_size=56, max_new_tokens=12, num_workers=num_workers)
    evaluate(diverse_model, data, "modality/MRI/test", tmp_path / "b1", batch_size=1, **kwargs)
    evaluate(diverse_model, data, "modality/MRI/test", tmp_path / "b8", batch_size=8, **kwargs)
    one = (tmp_path / "b1" / "predictions.jsonl").read_text().splitlines()
    eight = (tmp_path / "b8" / "predictions.jsonl").read_text().splitlines()
    assert len(one) == 12
    assert one == eight
    # A random model's outputs must differ between questions, or the comparison proves nothing.
    assert len({json.loads(line)["output"] for line in one}) > 1


def test_killed_evaluation_resumes_to_the_same_file(synthetic_data, diverse_model, tmp_path):
    _, data = synthetic_data

    def command(out):
        return [sys.executable, "-m", "medr1.cli", "eval", "--model", str(diverse_model), "--data", str(data),
                "--split", "task/Disease Diagnosis/test", "--out", str(out), "--batch-size", "2",
                "--image-size", "56", "--max-new-tokens", "48", "--num-workers", "0"]

    subprocess.run(command(tmp_path / "whole"), cwd=REPO, check=True, capture_output=True, timeout=600)
    expected = (tmp_path / "whole" / "predictions.jsonl").read_bytes()
    n_expected = len(expected.splitlines())
    assert n_expected >= 8

    out = tmp_path / "killed"
    process = subprocess.Popen(command(out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    predictions = out / "predictions.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not predictions.is_file() or len(predictions.read_bytes().splitlines()) < 2):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(predictions.read_bytes().splitlines())
    assert 0 < done_before < n_expected, "the evaluation was not interrupted part-way"
    assert not (out / "metrics.json").exists()

    result = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already made; continuing" in result.stderr
    assert predictions.read_bytes() == expected
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == n_expected and metrics["questions_this_run"] < n_expected


@pytest.mark.parametrize("prompt", ["think", "nothink", "think-after", "zero-shot"])
def test_cli_uses_each_prompt_style(synthetic_data, compact_model, tmp_path, prompt):
    """Every prediction records the prompt the model was shown: the style's own evaluation wording for the
    record, inside Qwen2-VL's chat template with one image; metrics name the style."""
    from medr1.cli import main
    from medr1.data.prompts import STYLES, problem_text, prompt_text, zero_shot_prompt_text
    from medr1.data.records import load_split

    _, data = synthetic_data
    out = tmp_path / prompt
    assert main(["eval", "--model", str(compact_model), "--data", str(data), "--split", "modality/OCT/test",
                 "--out", str(out), "--prompt", prompt, "--limit", "3", "--image-size", "56",
                 "--max-new-tokens", "4", "--num-workers", "0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["prompt"] == prompt and 0.0 <= metrics["accuracy"] <= 1.0
    records = {r["question_id"]: r for r in load_split(data, "modality/OCT/test", limit=3)}
    others = [s for s in STYLES if s != prompt]
    for line in (out / "predictions.jsonl").read_text().splitlines():
        prediction = json.loads(line)
        record = records[prediction["question_id"]]
        problem = problem_text(record["question"], record["options"])
        wording = zero_shot_prompt_text(problem) if prompt == "zero-shot" else prompt_text(problem, prompt, "eval")
        shown = prediction["prompt_text"]
        assert shown.count("<|vision_start|><|image_pad|><|vision_end|>") == 1
        assert shown.endswith(wording + "<|im_end|>\n<|im_start|>assistant\n")
        assert not any(shown.endswith(prompt_text(problem, other, "eval") + "<|im_end|>\n<|im_start|>assistant\n")
                       for other in others if prompt_text(problem, other, "eval") != wording)


def test_media_token_ids_name_each_familys_placeholders():
    from types import SimpleNamespace

    from medr1.data.model_kinds import media_token_ids

    assert media_token_ids(SimpleNamespace(image_token_id=12, video_token_id=13)) == [12, 13]  # Qwen2-VL
    assert media_token_ids(SimpleNamespace(image_token_index=7)) == [7]  # LLaVA-OneVision, Gemma 3
    assert media_token_ids(SimpleNamespace(text_config=SimpleNamespace(image_token_id=5))) == [5]
    assert media_token_ids(SimpleNamespace(vocab_size=10, video_token_id=None)) == []  # a text model


def test_greedy_evaluation_never_writes_an_image_placeholder(synthetic_data, diverse_model, tmp_path, monkeypatch):
    """GRPO's rollouts suppress the image token (TRL), so a trained policy can come to rank it first; evaluation
    suppresses it too. With its logit forced to the top, greedy output is still text, not placeholders."""
    from medr1.evaluation import evaluate as evaluation

    loaded, generated = evaluation.load_for_generation, []

    def with_image_token_on_top(path):
        model, processor = loaded(path)
        image_token = model.config.image_token_id

        def push(module, args, logits):
            logits[..., image_token] = logits.max() + 100.0
            return logits

        model.get_output_embeddings().register_forward_hook(push)
        generate = model.generate

        def generate_and_keep(**inputs):
            ids = generate(**inputs)
            generated.append(ids[:, inputs["input_ids"].shape[1]:])
            return ids

        model.generate = generate_and_keep
        return model, processor

    def image_token_ids(path):
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(path).image_token_id

    monkeypatch.setattr(evaluation, "load_for_generation", with_image_token_on_top)
    _, data = synthetic_data
    evaluation.evaluate(diverse_model, data, "modality/MRI/test", tmp_path / "out", limit=4, image_size=56,
                        max_new_tokens=8, num_workers=0)
    assert len((tmp_path / "out" / "predictions.jsonl").read_text().splitlines()) == 4
    ids = [int(i) for batch in generated for i in batch.flatten()]
    assert ids and image_token_ids(diverse_model) not in ids  # never one, where it always won without suppression
