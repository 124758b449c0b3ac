"""`medr1 compare` on the embedded default at a small size: SFT, DPO (on-policy pairs), RLOO and GRPO from one
base, evaluated with the zero-shot base; the table's numbers are recomputed here from the cells it names."""

import csv
import json
from pathlib import Path

import pytest

from medr1.embedded.compare import TokenCounter, pooled, row_cells


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


def test_compare_runs_end_to_end_and_its_table_is_its_cells(synthetic_data, compact_model, tmp_path):
    from medr1.data.records import load_split
    from medr1.embedded.compare import main
    from medr1.evaluation.evaluate import bootstrap_ci, read_done

    _, data = synthetic_data
    results = tmp_path / "results"
    # The random tiny base never answers right, so it samples no pair (the run reports DPO as missing then). Pairs
    # already in the file are kept (`medr1 pairs` resumes), so these stand in for a base that sometimes does.
    pairs = tmp_path / "outputs" / "CT" / "pairs.jsonl"
    pairs.parent.mkdir(parents=True)
    records = load_split(data, "modality/CT/train", 8)
    lines = [{"question_id": r["question_id"], "chosen": f"<think>look</think><answer> {r['answer']} </answer>",
              "rejected": "<think>look</think><answer> Z </answer>", "n_correct": 1, "k": 4, "completion_tokens": 40}
             for r in records[:6]]
    lines += [{"question_id": r["question_id"], "unpaired": "all_wrong", "n_correct": 0, "k": 4,
               "completion_tokens": 40} for r in records[6:]]
    pairs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["--modality", "CT", "--data", str(data), "--base-model", str(compact_model),
                 "--results", str(results), "--outputs", str(tmp_path / "outputs"), "--steps", "2",
                 "--k", "4", "--pair-questions", "8", "--limit", "4", "--cross", "MRI", "X-Ray",
                 "--max-new-tokens", "8", "--image-size", "56"]) == 0
    for suffix in (".md", ".csv", ".png", ".json"):
        assert (results / f"compare_CT{suffix}").is_file()
    layout = json.loads((results / "compare_CT.json").read_text())
    rows = {row["method"]: row for row in layout["rows"]}
    assert list(rows) == ["base", "sft", "dpo", "rloo", "grpo"]
    with open(results / "compare_CT.csv", newline="") as handle:
        table = {line["method"]: line for line in csv.DictReader(handle)}
    markdown = (results / "compare_CT.md").read_text()
    for entry in layout["entries"]:
        method = entry["method"]
        if entry.get("missing"):  # reported, never a zero
            assert rows[method]["missing"] and f"missing: {rows[method]['missing']}" in markdown
            continue
        in_domain = [json.loads(line) for line in open(f"{entry['in_domain']}/predictions.jsonl")]
        metrics = json.loads(open(f"{entry['in_domain']}/metrics.json").read())
        accuracy = sum(p["correct"] for p in in_domain) / len(in_domain)
        assert len(in_domain) == 4 and rows[method]["in_accuracy"] == accuracy == metrics["accuracy"]
        assert rows[method]["in_ci95"] == list(bootstrap_ci([p["correct"] for p in in_domain]))
        cross = [p for cell in entry["cross_domain"] for p in read_done(Path(cell) / "predictions.jsonl")]
        assert len(entry["cross_domain"]) == 2 and len(cross) == 8
        assert rows[method]["cross_accuracy"] == sum(p["correct"] for p in cross) / 8
        assert rows[method]["cross_ci95"] == list(bootstrap_ci([p["correct"] for p in cross]))
        formats = [p["format_ok"] for p in in_domain if p["format_ok"] is not None]
        assert rows[method]["format_compliance"] == (sum(formats) / len(formats) if formats else None)
        assert float(table[method]["in_accuracy"]) == pytest.approx(accuracy)
        assert float(table[method]["cross_accuracy"]) == pytest.approx(sum(p["correct"] for p in cross) / 8)
        assert f"| {method} | {100 * accuracy:.1f} |" in markdown
    assert rows["base"]["format_compliance"] is None  # zero-shot: no format asked for
    for method in ("rloo", "grpo"):  # completion tokens counted from what the rewards saw: 2 steps x 16 samples
        assert 2 * 16 <= rows[method]["completion_tokens"] <= 2 * 16 * 8
        assert rows[method]["train_seconds"] > 0
    assert rows["sft"]["completion_tokens"] == 0
    assert rows["dpo"]["completion_tokens"] == 8 * 40 and rows["dpo"]["note"].startswith("6 pairs of 8 questions (2")
