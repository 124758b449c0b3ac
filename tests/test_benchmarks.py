"""More benchmarks through the same harness: each reader on synthetic files in its released layout (counts,
the one bad record as a named skip, what is filtered by design), `medr1 prepare --benchmark NAME --input
PATH` into one DATA_DIR, and the benchmarks table end to end on the tiny model."""

import csv
import json

import pytest

from medr1.data.benchmarks import BENCHMARKS, prepare_benchmarks, read_benchmark
from medr1.data.prepare import PrepareError, main
from medr1.embedded.synth_benchmarks import write_benchmark_fixtures

N = 8  # questions per split and benchmark in the fixtures

# name -> (rows read, records kept, multiple-choice kept, filtered by reason, the bad record's skip reason)
EXPECTED = {
    "vqa-rad": (2 * N + 1, 2 * N, N, {}, "missing field: question"),
    "slake": (3 * (N + N // 2) + 1, 3 * N + 1, 3 * N // 2 + 1, {"q_lang zh (only English is kept)": 3 * (N // 2)},
              None),  # its bad record (a missing image) is caught by prepare's image check
    "pathvqa": (3 * N + 1, 3 * N, 3 * sum(i % 3 < 2 for i in range(N)), {}, "missing field: answer"),
    "pmc-vqa": (2 * N + 1, 2 * N, 2 * N, {}, "Answer_label 'E' names no choice (choices A-D)"),
    "mmmu": (3 * 3 * N + 1, 2 * 2 * (N - 1), 2 * 2 * (N - 1),
             {"not a medical subject": 3 * N, "answer hidden": 2 * (N - 1), "open question": 2 * 3},
             "unparseable options"),
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return write_benchmark_fixtures(tmp_path_factory.mktemp("benchmarks") / "raw", per_split=N, image_size=24, seed=0)


@pytest.fixture(scope="module")
def prepared(fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmarks") / "data"
    argv = [arg for name, path in fixtures.items() for arg in ("--benchmark", name, "--input", str(path))]
    assert main([*argv, "--out", str(out)]) == 0
    return out, json.loads((out / "prepare_report.json").read_text())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_reader_on_its_released_layout(fixtures, name):
    rows, kept, multiple_choice, filtered, bad = EXPECTED[name]
    result = read_benchmark(name, fixtures[name])
    assert result["rows"] == rows
    assert len(result["records"]) == kept
    assert sum(1 for r in result["records"] if r["options"]) == multiple_choice
    assert dict(result["filtered"]) == filtered
    assert rows == kept + len(result["skips"]) + sum(filtered.values())
    if bad is None:
        assert result["skips"] == []
    else:
        (skip,) = result["skips"]
        assert skip["reason"].startswith(bad) and skip["file"] in result["files"] and skip["question_id"]
    for record in result["records"]:
        assert {"question_id", "dataset", "modality", "task", "question", "options", "answer", "split"} <= set(record)
        assert ("image" in record) != ("images" in record)
        if record["options"]:
            assert record["answer"] in "ABCDEFGHIJ"[: len(record["options"])]
        else:
            assert record["answer"] and record["answer"] not in ("yes", "no")  # open-ended: the answer text


def test_yes_no_questions_become_two_options_and_others_stay_open(fixtures):
    records = read_benchmark("vqa-rad", fixtures["vqa-rad"])["records"]
    closed = [r for r in records if r["options"]]
    assert {tuple(r["options"]) for r in closed} == {("yes", "no")} and {r["answer"] for r in closed} == {"A", "B"}
    open_answers = {r["answer"] for r in records if not r["options"]}
    assert "left" in open_answers and open_answers <= {"left", "Lung", "Liver", "Brain", "Kidney"}
    assert {r["split"] for r in records} == {"train", "test"}


def test_mmmu_placeholders_subjects_and_several_images(fixtures):
    records = read_benchmark("mmmu", fixtures["mmmu"])["records"]
    assert {r["task"] for r in records} == {"Clinical_Medicine", "Pharmacy"}
    single = next(r for r in records if "image" in r)
    assert "<image" not in single["question"] and single["question"].startswith("Which finding")
    several = [r for r in records if "images" in r]  # one per subject, in its dev split
    assert [r["question_id"] for r in several] == ["mmmu-dev_Clinical_Medicine_1", "mmmu-dev_Pharmacy_1"]
    assert several[0]["question"] == "Compare image 1 and image 2. Which drug is shown?"
    assert len(several[0]["images"]) == 2
    assert all(2 <= len(r["options"]) <= 4 for r in records)


def test_pmcvqa_choices_lose_their_letter_prefix(fixtures):
    records = read_benchmark("pmc-vqa", fixtures["pmc-vqa"])["records"]
    assert records[0]["options"] == ["Lung", "Liver", "Brain", "Kidney"]
    assert {len(r["options"]) for r in records} == {3, 4}


def test_json_layouts_read_like_parquet(tmp_path, fixtures):
    json_fixtures = write_benchmark_fixtures(tmp_path / "raw", per_split=N, image_size=24, seed=0, fmt="json")
    for name in ("pathvqa", "mmmu"):
        parquet, plain = read_benchmark(name, fixtures[name]), read_benchmark(name, json_fixtures[name])
        assert plain["rows"] == parquet["rows"] and len(plain["records"]) == len(parquet["records"])
        ids = sorted(r["question_id"] for r in parquet["records"])
        assert sorted(r["question_id"] for r in plain["records"]) == ids
        assert all(isinstance(r.get("image", ""), str) for r in plain["records"])


def test_prepare_writes_one_data_dir_with_counted_skips(prepared):
    from medr1.data.records import image_loader, load_split

    out, report = prepared
    assert report["source"] == "benchmarks" and set(report["benchmarks"]) == set(BENCHMARKS)
    for name, (rows, kept, multiple_choice, filtered, _) in EXPECTED.items():
        entry = report["benchmarks"][name]
        assert entry["rows_read"] == rows and entry["filtered"] == filtered and entry["records_skipped"] == 1
        assert entry["multiple_choice"] + entry["open_ended"] == kept - (name == "slake")
    assert report["records_written"] == sum(e[1] for e in EXPECTED.values()) - 1  # SLAKE's missing image
    reasons = {s["file"].split("/")[0]: s["reason"] for s in report["skipped"]}
    assert reasons["slake"].startswith("image missing") and set(reasons) == set(BENCHMARKS)
    assert report["skipped_by_reason"]["missing field"] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["benchmarks"] == list(BENCHMARKS) and "splits/benchmark/mmmu/validation.jsonl" in manifest["files"]
    load = image_loader(out, 16)
    for split in ("benchmark/vqa-rad/test", "benchmark/slake/test", "benchmark/pathvqa/validation",
                  "benchmark/pmc-vqa/test", "benchmark/mmmu/validation", "benchmark/pathvqa-open/test"):
        records = load_split(out, split)
        assert records and load(records[0]["image"]).size == (16, 16)
        assert all(bool(r["options"]) != split.endswith("-open/test") for r in records)
    assert (out / "images" / "pathvqa").is_dir()  # the hub's embedded images written out


def test_strict_fails_on_the_first_bad_record_naming_it(fixtures, tmp_path):
    with pytest.raises(PrepareError, match=r"vqa-rad/VQA_RAD Dataset Public.json: question_id 'vqa-rad-17': missing"):
        prepare_benchmarks([("vqa-rad", fixtures["vqa-rad"])], tmp_path / "d", strict=True)


def test_prepare_argument_errors(fixtures, tmp_path, caplog):
    out = ["--out", str(tmp_path / "d")]
    assert main(["--benchmark", "slake", *out]) == 2  # no --input for it
    assert main(out) == 2                               # neither OmniMedVQA nor a benchmark
    assert main(["--omnimedvqa", str(tmp_path), "--benchmark", "slake", "--input", str(fixtures["slake"]), *out]) == 2
    assert "give --omnimedvqa ROOT, or --benchmark NAME --input PATH pairs" in caplog.text
    assert main(["--benchmark", "slake", "--input", str(fixtures["vqa-rad"]), *out]) == 1  # the wrong layout
    assert "none of train.json, validate.json, test.json found" in caplog.text
    with pytest.raises(SystemExit):
        main(["--benchmark", "medqa", "--input", str(tmp_path), *out])


def test_benchmarks_table_end_to_end_on_the_tiny_model(prepared, compact_model, tmp_path):
    from medr1.evaluation.benchmarks import main as benchmarks_main

    data, _ = prepared
    results = tmp_path / "results"
    argv = ["--model", str(compact_model), "--data", str(data), "--results", str(results), "--limit", "2",
            "--image-size", "28", "--max-new-tokens", "3", "--num-workers", "0", "--prompt", "nothink"]
    assert benchmarks_main(argv) == 0
    with open(results / "benchmarks.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["Benchmark"] for r in rows] == sorted(BENCHMARKS)
    assert {r["Split"] for r in rows} == {f"benchmark/{n}/test" for n in BENCHMARKS if n != "mmmu"} | {
        "benchmark/mmmu/validation"}
    for row in rows:
        assert row["n"] == "2" and row["Scoring"] == "robust"
        low, high = (float(v) for v in row["95% CI (%)"].split("-"))
        assert 0.0 <= low <= float(row["Accuracy (%)"]) <= high <= 100.0
        assert row["Accuracy (%)"] == row["robust (%)"] and row["medevalkit (%)"] != ""
    assert "95 % bootstrap intervals" in (results / "benchmarks.md").read_text()
    # A second run keeps the finished cells and rebuilds the same table.
    cell = next((results / "benchmarks").glob("*/nothink/vqa-rad/metrics.json"))
    stamp = cell.stat().st_mtime_ns
    assert benchmarks_main(argv) == 0 and cell.stat().st_mtime_ns == stamp
    assert benchmarks_main([*argv[:6], "--benchmarks", "medqa"]) == 1
