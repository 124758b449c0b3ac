"""The text benchmark table: synthetic files of the five text benchmarks -> `medr1 prepare --dataset` -> `medr1
text-benchmarks` on the tiny causal LM -> results/text_benchmarks.{md,csv}, every number recomputed here from the
cells' prediction files."""

import csv
import json
from pathlib import Path

import pytest

from medr1.cli import main
from medr1.embedded.synth_text import write_text_fixtures
from medr1.evaluation.text_benchmarks import PUBLISHED, TEXT_BENCHMARKS, default_prompt, plan

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "text-and-verifiers.md"
SEEDED = 4  # MedQA predictions written before the run: 3 right, 1 wrong (the run resumes after them)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """(DATA_DIR with the five benchmarks and HuatuoGPT-o1's open-ended set, prepared by the CLI; raw folders)."""
    base = tmp_path_factory.mktemp("text-bench")
    raw = write_text_fixtures(base / "raw", per_split=8)
    names = [*TEXT_BENCHMARKS, "huatuo-verifiable"]  # not a benchmark: left out of the table
    argv = [arg for name in names for arg in ("--dataset", name, "--input", str(raw[name]))]
    assert main(["prepare", *argv, "--out", str(base / "data")]) == 0
    return base / "data", raw


def paper_numbers(row: dict) -> tuple[str, str]:
    return row["Paper (%)"], row["Paper row"]


def percent(value: float) -> str:
    return f"{100 * value:.2f}"


def test_the_table_end_to_end_on_the_tiny_causal_lm(prepared, tmp_path, monkeypatch):
    from medr1.embedded.tiny_causal import build_tiny_causal, records_corpus
    from medr1.evaluation.evaluate import bootstrap_ci, score_prediction
    from medr1.evaluation.matrix import model_slug
    from medr1.evaluation.scoring import choice, correct

    data, _ = prepared
    model = build_tiny_causal(tmp_path / "qwen2", arch="qwen2", vocab="compact",
                              corpus=records_corpus(data / "records.jsonl"))
    results, prompt = tmp_path / "results", default_prompt()
    # An interrupted MedQA cell: some predictions made, no metrics. The run must keep them and add the rest.
    medqa = read_jsonl(data / "splits" / "dataset" / "medqa" / "test.jsonl")
    seeded = []
    for k, record in enumerate(medqa[:SEEDED]):
        letter = record["answer"] if k < SEEDED - 1 else next(c for c in "ABCD" if c != record["answer"])
        output = f"## Thinking\n\nRecall the drug.\n\n## Final Response\n\nThe answer is {letter}."
        seeded.append(score_prediction(record, output, prompt, None, every_convention=True))
    argv = ["text-benchmarks", "--model", str(model), "--data", str(data), "--results", str(results),
            "--max-new-tokens", "8", "--batch-size", "8", "--num-workers", "0"]
    cell = results / "text_benchmarks" / model_slug(str(model)) / prompt / "medqa"
    cell.mkdir(parents=True)
    (cell / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in seeded), encoding="utf-8")
    assert main(argv) == 0

    with open(results / "text_benchmarks.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["Benchmark"] for r in rows] == list(TEXT_BENCHMARKS)  # huatuo-verifiable is no benchmark
    for row in rows:
        name, split = row["Benchmark"], TEXT_BENCHMARKS[row["Benchmark"]]
        assert row["Split"] == f"dataset/{name}/{split}" and row["Prompt"] == prompt
        records = {r["question_id"]: r for r in read_jsonl(data / "splits" / f"{row['Split']}.jsonl")}
        lines = read_jsonl(results / "text_benchmarks" / model_slug(str(model)) / prompt / name / "predictions.jsonl")
        assert sorted(p["question_id"] for p in lines) == sorted(records) and row["n"] == str(len(records))
        # Recomputed from the outputs, by the cell's convention and prompt style, not read from metrics.json.
        hits = [correct(row["Scoring"], p["output"], records[p["question_id"]]["answer"],
                        records[p["question_id"]]["options"], style=prompt) for p in lines]
        answered = [choice(row["Scoring"], p["output"], records[p["question_id"]]["options"], style=prompt)
                    is not None for p in lines]
        low, high = bootstrap_ci(hits)
        assert row["Accuracy (%)"] == percent(sum(hits) / len(hits))
        assert row["95% CI (%)"] == f"{percent(low)}-{percent(high)}"
        assert row["Answered (%)"] == percent(sum(answered) / len(answered))
        expected = PUBLISHED.get(name)
        assert paper_numbers(row) == (("", "") if expected is None else (f"{expected.accuracy:.1f}", expected.row))
    # The seeded MedQA lines were kept as written (not decoded again): at least 3 of its questions are right.
    medqa_lines = read_jsonl(cell / "predictions.jsonl")
    assert medqa_lines[:SEEDED] == seeded and len(medqa_lines) == len(medqa)
    medqa_row = rows[0]
    assert float(medqa_row["Accuracy (%)"]) >= 100 * (SEEDED - 1) / len(medqa)
    assert paper_numbers(medqa_row) == ("72.6", "HuatuoGPT-o1-8B")
    md = (results / "text_benchmarks.md").read_text(encoding="utf-8")
    assert "arXiv 2412.18925" in md and md.count("\n| ") == 1 + len(rows)  # header + one line per cell

    # A second run keeps every finished cell (nothing is decoded) and writes the same table.
    table = (results / "text_benchmarks.csv").read_bytes()

    def no_decoding(*args, **kwargs):
        raise AssertionError("a finished cell was evaluated again")

    monkeypatch.setattr("medr1.evaluation.evaluate.evaluate", no_decoding)
    assert main(argv) == 0 and (results / "text_benchmarks.csv").read_bytes() == table
    assert main([*argv, "--benchmarks", "medqa", "pubmedqa"]) == 0
    assert (results / "text_benchmarks.csv").read_bytes() == table


def test_plan_names_what_data_dir_lacks(prepared, tmp_path, caplog):
    data, raw = prepared
    splits, missing = plan(data)
    assert splits == {name: f"dataset/{name}/{split}" for name, split in TEXT_BENCHMARKS.items()} and missing == []
    assert plan(data, ["pubmedqa", "medqa"])[0] == {"medqa": "dataset/medqa/test", "pubmedqa": "dataset/pubmedqa/test"}
    # Two of the five, and a non-benchmark dataset: the other three are named, not silently dropped.
    part = tmp_path / "part"
    argv = [arg for name in ("mmlu", "medmcqa", "huatuo-sft") for arg in ("--dataset", name, "--input", str(raw[name]))]
    assert main(["prepare", *argv, "--out", str(part)]) == 0
    splits, missing = plan(part)
    assert list(splits) == ["medmcqa", "mmlu"] and missing == ["medqa", "mmlu-pro", "pubmedqa"]
    base = ["text-benchmarks", "--model", str(tmp_path / "no-model"), "--results", str(tmp_path / "r")]
    assert main([*base, "--data", str(part), "--benchmarks", "medqa"]) == 1
    assert "has no text benchmark ['medqa']" in caplog.text
    only_open = tmp_path / "open"
    assert main(["prepare", "--dataset", "huatuo-sft", "--input", str(raw["huatuo-sft"]), "--out", str(only_open)]) == 0
    assert main([*base, "--data", str(only_open)]) == 1
    assert "holds none of the text benchmarks" in caplog.text
    with pytest.raises(SystemExit):  # not a text benchmark at all
        main([*base, "--data", str(part), "--benchmarks", "huatuo-sft"])


def test_the_published_numbers_are_the_reference_facts():
    """Every number beside ours is one the reference facts give, for that benchmark and that model."""
    if not REFERENCE.is_file():
        pytest.skip(f"the reference facts are not at {REFERENCE}")
    text = REFERENCE.read_text(encoding="utf-8")
    labels = {"medqa": "MedQA", "medmcqa": "MedMCQA", "pubmedqa": "PubMedQA"}
    assert set(PUBLISHED) <= set(labels)
    for name, published in PUBLISHED.items():
        line = next(line for line in text.splitlines() if f"{labels[name]} {published.accuracy}" in line)
        assert published.row.split("-")[-1].lower() in line.lower()  # "8B" in the same line
