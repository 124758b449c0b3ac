"""Text splits through `medr1 passrate`, `medr1 pairs` and `medr1 dpo`: the text prompt styles, `--split dataset/...`,
and open-ended records (`options: []`) scored by the rule verifier as `medr1 eval` scores them."""

import json
import logging
from pathlib import Path

import pytest

from medr1.evaluation.pairs import ALL_WRONG, pair_for, score_samples
from medr1.evaluation.passrate import pass_rate
from medr1.evaluation.sampling import samples_correct
from medr1.evaluation.scoring import correct

REPO = Path(__file__).resolve().parents[1]
CPU = ["--use_cpu", "true", "--bf16", "false", "--report_to", "none"]
OPEN = {"question_id": "o1", "modality": "text", "question": "What lowers glucose?", "options": [],
        "answer": "Metformin"}
CHOICE = {"question_id": "m1", "modality": "text", "question": "Which drug?", "options": ["Aspirin", "Metformin"],
          "answer": "B"}
SPLIT = "dataset/huatuo-verifiable/train"


def huatuo(final: str) -> str:
    return f"## Thinking\n\nGlucose is high.\n\n## Final Response\n\n{final}"


# ---- the verdict on a sample --------------------------------------------------------------------

def test_an_open_ended_sample_is_judged_as_eval_judges_it():
    # well-formed and right, right but without the headings, well-formed and wrong
    samples = [huatuo("metformin."), "Metformin", huatuo("Insulin")]
    assert samples_correct(samples, OPEN, "huatuo", "robust") == [True, True, False]  # robust reads the whole output
    assert samples_correct(samples, OPEN, "huatuo", "medr1-compat") == [True, False, False]  # strict: final only
    for parse in ("robust", "medr1-compat"):
        assert samples_correct(samples, OPEN, "huatuo", parse) == [
            correct(parse, s, OPEN["answer"], [], "huatuo") for s in samples]
    assert pass_rate(samples, OPEN, "huatuo", "robust") == pytest.approx(2 / 3)
    # pairs: total = format reward + 1 when right; chosen the best right one, rejected the worst wrong one
    verdicts, totals = score_samples(samples, OPEN, "huatuo", "robust")
    assert verdicts == [True, True, False] and totals == [2.0, 1.0, 1.0]
    pair = pair_for(samples, verdicts, totals)
    assert (pair["chosen"], pair["rejected"], pair["n_correct"]) == (samples[0], samples[2], 2)


def test_multiple_choice_keeps_the_training_accuracy_reward():
    samples = [huatuo("The answer is B"), huatuo("The answer is A"), "<think>x</think><answer>B</answer>"]
    assert samples_correct(samples, CHOICE, "huatuo", "robust") == [True, False, True]
    assert score_samples(samples, CHOICE, "huatuo", "robust") == ([True, False, True], [2.0, 1.0, 1.0])
    assert pass_rate(samples[:2], CHOICE, "medicalgpt", "robust") == 0.5
    with pytest.raises(ValueError, match="unknown answer mode"):
        samples_correct(samples, OPEN, "huatuo", "huatuo")  # a parsing the training reward lacks, even open-ended
    with pytest.raises(ValueError, match="unknown prompt style"):
        samples_correct(samples, CHOICE, "huatuo-o1", "robust")


# ---- through the commands on a tiny causal LM ---------------------------------------------------

@pytest.fixture(scope="module")
def text_setup(tmp_path_factory):
    """(DATA_DIR with HuatuoGPT-o1 verifiable problems and MedQA, a tiny Qwen3 causal LM with a compact vocabulary)."""
    from medr1.data.records import load_split
    from medr1.data.text_sources import prepare_text
    from medr1.embedded.synth_text import write_text_fixtures
    from medr1.embedded.tiny_causal import build_tiny_causal, text_corpus

    base = tmp_path_factory.mktemp("text-stages")
    write_text_fixtures(base / "raw", per_split=4)
    prepare_text([(name, base / "raw" / name) for name in ("huatuo-verifiable", "medqa")], base / "data")
    records = load_split(base / "data", SPLIT) + load_split(base / "data", "dataset/medqa/train")
    model = build_tiny_causal(base / "qwen3", arch="qwen3", vocab="compact", corpus=text_corpus(records))
    return base / "data", model


def test_passrate_and_pairs_sample_a_text_split(text_setup, tmp_path):
    """k = 2 real samples of two open-ended questions, in the huatuo style; each verdict is the rule verifier's."""
    from medr1.cli import main
    from medr1.data.records import load_split

    data, model = text_setup
    common = ["--model", str(model), "--data", str(data), "--split", SPLIT, "--prompt", "huatuo", "--k", "2",
              "--limit", "2", "--max-new-tokens", "6", "--batch-size", "2", "--num-workers", "0"]
    assert main(["passrate", *common, "--out", str(tmp_path / "rates.jsonl")]) == 0
    rates = [json.loads(line) for line in (tmp_path / "rates.jsonl").read_text().splitlines()]
    ids = [r["question_id"] for r in load_split(data, SPLIT, 2)]
    assert sorted(line["question_id"] for line in rates) == sorted(ids)
    assert all(line["k"] == 2 and line["pass_rate"] in (0.0, 0.5, 1.0) for line in rates)
    assert main(["pairs", *common, "--out", str(tmp_path / "pairs.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    report = json.loads((tmp_path / "pairs.jsonl.report.json").read_text())
    assert report["questions"] == len(lines) == 2 and report["split"] == SPLIT and report["style"] == "huatuo"
    assert report["pairs"] + report["unpaired"] == 2
    records = {r["question_id"]: r for r in load_split(data, SPLIT)}
    for line in lines:
        assert line["split"] == SPLIT and line["k"] == 2
        if "chosen" in line:
            record = records[line["question_id"]]
            assert samples_correct([line["chosen"], line["rejected"]], record, "huatuo", "robust") == [True, False]


def test_fixed_samples_through_passrate_pairs_and_dpo(text_setup, tmp_path, monkeypatch, caplog):
    """Generation replaced by one right and one wrong final response per question, so the verdicts are known: pass
    rate 0.5 and a pair for each question; then `medr1 dpo --split` reads the prompts back from that text split."""
    import medr1.evaluation.evaluate as evaluate
    from medr1.data.prompts import build_conversation
    from medr1.data.records import load_split
    from medr1.evaluation.pairs import make_pairs
    from medr1.evaluation.passrate import measure_pass_rates
    from medr1.train.configs import MedR1Arguments
    from medr1.train.dpo import main as dpo_main
    from medr1.train.dpo import on_policy_rows, split_pairs
    from medr1.train.rm import read_jsonl

    data, model = text_setup
    records = {r["question_id"]: r for r in load_split(data, SPLIT, 3)}

    def fixed_samples(model, processor, batches, on_batch, max_new_tokens, samples=1):
        for batch_records, texts, inputs in batches:
            assert samples == 2 and set(inputs) == {"input_ids", "attention_mask"}  # text only
            assert all("multiple-choice" not in text for text in texts)  # the bare training question
            on_batch(batch_records, [[huatuo("Insulin"), huatuo(r["answer"])] for r in batch_records], texts)

    monkeypatch.setattr(evaluate, "generate_batches", fixed_samples)
    kwargs = {"k": 2, "style": "huatuo", "limit": 3, "max_new_tokens": 4, "batch_size": 2, "num_workers": 0}
    summary = measure_pass_rates(model, data, SPLIT, tmp_path / "rates.jsonl", **kwargs)
    assert summary == {"questions": 3, "k": 2, "all_right": 0, "all_wrong": 0, "mean_pass_rate": 0.5}
    pairs = tmp_path / "pairs.jsonl"
    summary = make_pairs(model, data, SPLIT, pairs, **kwargs)
    assert (summary["pairs"], summary["unpaired"]) == (3, 0)
    lines = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert all(line["chosen"] == huatuo(records[line["question_id"]]["answer"]) for line in lines)
    assert all(line["rejected"] == huatuo("Insulin") for line in lines)
    # An unpaired line is counted and skipped by DPO, as ever.
    with open(pairs, "a") as handle:
        handle.write(json.dumps({"question_id": "x", "unpaired": ALL_WRONG, "n_correct": 0, "k": 2}) + "\n")

    # DPO: the split reaches the reader; each prompt is the record's huatuo training prompt; a foreign split is named.
    _, on_policy, unpaired = split_pairs(read_jsonl(pairs))
    assert unpaired == 1
    args = MedR1Arguments(data_dir=str(data), split=SPLIT, prompt_style="huatuo")
    rows = on_policy_rows(on_policy, args)
    assert [row["prompt"] for row in rows] == [
        build_conversation(records[entry["question_id"]], style="huatuo", stage="train") for _, entry in on_policy]
    assert all("image_path" not in row for row in rows)
    with pytest.raises(ValueError, match=r"is not in dataset/medqa/train of "):
        on_policy_rows(on_policy, MedR1Arguments(data_dir=str(data), split="dataset/medqa/train"))

    caplog.set_level(logging.INFO, logger="medr1")
    out = tmp_path / "dpo-{target}"
    assert dpo_main(["--config", str(REPO / "configs/dpo/tiny_cpu.yaml"), "--model_name_or_path", str(model),
                     "--data_dir", str(data), "--split", SPLIT, "--prompt_style", "huatuo", "--train_file", str(pairs),
                     "--output_dir", str(out), "--max_steps", "1", "--save_strategy", "no",
                     "--lora_target_modules", "q_proj", "v_proj", *CPU]) == 0
    assert (tmp_path / "dpo-dataset-huatuo-verifiable-train" / "adapter_config.json").is_file()
    assert "3 pairs (on-policy), 1 questions without a pair skipped" in caplog.text
