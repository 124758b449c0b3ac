"""`medr1 compare` on the embedded default at a small size: the demo's data, tiny model and format warm start, then
SFT, DPO (on-policy pairs sampled from the warm start), RLOO and GRPO from that warm start, evaluated with the warm
start as the zero-shot row; the table's numbers are recomputed here from the cells it names."""

import csv
import json
import logging
import re
from pathlib import Path

import pytest

from medr1.embedded.compare import METHODS, WARM_START, TokenCounter, parse, parse_steps, pooled, row_cells


def test_pooled_cross_domain_and_row_formatting():
    cells = [[{"correct": True}, {"correct": False}], [{"correct": True}, {"correct": True}]]
    result = pooled(cells)
    assert (result["n"], result["accuracy"]) == (4, 0.75)
    assert result["ci95"][0] <= 0.75 <= result["ci95"][1]
    assert pooled([[]])["accuracy"] is None
    assert row_cells({"method": "dpo", "missing": "no pairs"})[-1] == "missing: no pairs"


def test_token_counter_counts_completion_ids_and_keeps_the_name():
    def format_reward(completions, **kwargs):
        return [1.0] * len(completions)

    counter = TokenCounter(format_reward)
    assert counter(["a", "b"], completion_ids=[[1, 2, 3], [4]], answer=["A", "B"]) == [1.0, 1.0]
    assert counter.tokens == 4 and counter.__name__ == "format_reward"


def test_steps_setting_sizes_every_method_or_one():
    allowed = (*METHODS, WARM_START)
    assert parse_steps([], allowed) == {}
    assert parse_steps(["3", "warm-start=120", "grpo=7"], allowed) == {
        "sft": 3, "dpo": 3, "rloo": 3, "grpo": 7, WARM_START: 120}
    for bad in ("ppo=3", "0", "sft=", "x"):
        with pytest.raises(ValueError, match="--steps"):
            parse_steps([bad], allowed)
    opts = parse(["--modality", "CT", "--steps", "2", "--steps", "warm-start=5"])
    assert opts.embedded and opts.steps[WARM_START] == 5 and opts.prompt_stage == "train"
    for argv in (["--task", "Disease Diagnosis"], ["--modality", "CT", "--base-model", "m"],
                 ["--modality", "CT", "--data", "d"], ["--modality", "CT", "--steps", "ppo=1"]):
        with pytest.raises(SystemExit):
            parse(argv)


@pytest.mark.slow
def test_compare_runs_end_to_end_from_the_warm_start(tmp_path, caplog):
    from medr1.data.records import load_split
    from medr1.embedded.compare import main
    from medr1.evaluation.evaluate import bootstrap_ci, read_done
    from medr1.evaluation.pairs import score_samples

    caplog.set_level(logging.INFO, logger="medr1")
    results, outputs = tmp_path / "results", tmp_path / "outputs"
    assert main(["--modality", "CT", "--per-modality", "60", "--steps", "3", "--steps", "warm-start=120",
                 "--k", "4", "--pair-questions", "24", "--limit", "6", "--cross", "MRI", "X-Ray",
                 "--results", str(results), "--outputs", str(outputs), "--threads", "1"]) == 0
    for suffix in (".md", ".csv", ".png", ".json"):
        assert (results / f"compare_CT{suffix}").is_file()
    layout = json.loads((results / "compare_CT.json").read_text())
    rows = {row["method"]: row for row in layout["rows"]}
    assert list(rows) == ["base", "sft", "dpo", "rloo", "grpo"]
    assert not any(row.get("missing") for row in rows.values()), rows
    warm = layout["warm_start"]
    assert warm["steps"] == 120 and layout["base_model"] == str(outputs / "CT" / "warmstart")
    data = Path(layout["data_dir"])
    entries = {entry["method"]: entry for entry in layout["entries"]}
    assert entries["base"]["model"] == layout["base_model"]  # the zero-shot row is the warm start
    for method in ("sft", "rloo", "grpo"):  # each trained from the warm start, for the steps asked
        run = json.loads((Path(entries[method]["model"]) / "medr1_run.json").read_text())
        assert run["model"]["model_name_or_path"] == layout["base_model"] and entries[method]["steps"] == 3

    # DPO: its pairs were sampled from the warm start in this run (nothing pre-written), each chosen completion is
    # right and each rejected one wrong by the training reward, and DPO trained on exactly those.
    pairs_file = Path(entries["dpo"]["pairs_file"])
    lines = [json.loads(line) for line in pairs_file.read_text().splitlines()]
    records = {r["question_id"]: r for r in load_split(data, "modality/CT/train", 24)}
    paired = [line for line in lines if "unpaired" not in line]
    assert len(lines) == 24 and {line["question_id"] for line in lines} == set(records)
    assert rows["dpo"]["pairs"] == len(paired) > 0 and all(line["k"] == 4 for line in lines)
    for line in paired:
        correct, _ = score_samples([line["chosen"], line["rejected"]], records[line["question_id"]], "think", "robust")
        assert correct == [True, False], line
    assert f"DPO on {len(paired)} pairs" in caplog.text
    assert rows["dpo"]["note"].startswith(f"{len(paired)} on-policy pairs of 24 questions, k=4")
    assert rows["dpo"]["completion_tokens"] == sum(line["completion_tokens"] for line in lines) > 24 * 4

    with open(results / "compare_CT.csv", newline="") as handle:
        table = {line["method"]: line for line in csv.DictReader(handle)}
    assert int(table["dpo"]["pairs"]) == len(paired)
    markdown = (results / "compare_CT.md").read_text()
    assert f"{len(paired)} on-policy pairs" in markdown and "format warm start" in markdown
    for method, entry in entries.items():
        in_domain = [json.loads(line) for line in open(f"{entry['in_domain']}/predictions.jsonl")]
        metrics = json.loads(open(f"{entry['in_domain']}/metrics.json").read())
        accuracy = sum(p["correct"] for p in in_domain) / len(in_domain)
        assert len(in_domain) == 6 and rows[method]["in_accuracy"] == accuracy == metrics["accuracy"]
        assert rows[method]["in_ci95"] == list(bootstrap_ci([p["correct"] for p in in_domain]))
        cross = [p for cell in entry["cross_domain"] for p in read_done(Path(cell) / "predictions.jsonl")]
        assert len(entry["cross_domain"]) == 2 and len(cross) == 12
        assert rows[method]["cross_accuracy"] == sum(p["correct"] for p in cross) / 12
        assert rows[method]["cross_ci95"] == list(bootstrap_ci([p["correct"] for p in cross]))
        formats = [p["format_ok"] for p in in_domain if p["format_ok"] is not None]
        assert formats and rows[method]["format_compliance"] == sum(formats) / len(formats)
        assert float(table[method]["in_accuracy"]) == pytest.approx(accuracy)
        assert float(table[method]["cross_accuracy"]) == pytest.approx(sum(p["correct"] for p in cross) / 12)
        compliance = 100 * formats.count(True) / len(formats)
        row_pattern = rf"^\| {method} \| {100 * accuracy:.1f} \|( [^|]* \|){{3}} {compliance:.1f} \|"
        assert re.search(row_pattern, markdown, re.M)
        if method != "base":
            assert rows[method]["train_seconds"] > 0
    for method in ("rloo", "grpo"):  # counted from what the rewards saw: 3 steps of 32 completions, <= 28 tokens
        refills = 2 if method == "grpo" else 1  # dynamic sampling: one refill round at most
        assert 3 * 32 <= rows[method]["completion_tokens"] <= refills * 3 * 32 * 28
    assert rows["sft"]["completion_tokens"] == 0
