"""Text datasets into canonical records: each reader on synthetic files in its released format (rows kept,
filtered and skipped, each skip named), MedMCQA's `cop` numbering by file type, MMLU-Pro's answer checks,
--strict, several `--dataset NAME --input PATH` pairs into one DATA_DIR, released and seeded splits, and a
text-only prompt built from a record."""

import json

import pytest

from medr1.data.prepare import PrepareError, main
from medr1.data.text_sources import TEXT_DATASETS, assign_splits, prepare_text, read_dataset
from medr1.embedded.synth_text import DATASET_FOLDERS, write_text_fixtures

pytest.importorskip("pyarrow")

N = 8  # questions per split in the fixtures

# fixture folder -> (rows read, records kept, filtered by reason, skip reasons (prefixes, sorted), ignored files)
EXPECTED = {
    "medqa": (3 * N + 3, 3 * N, {}, ["answer not an option letter: 'E'", "answer text is not the answer_idx option",
                                     "unreadable JSON line"], ["US_qbank.jsonl"]),
    "medmcqa": (3 * N + 2, 2 * N, {}, ["cop out of range: 0 (expected 1-4"] + ["missing answer: cop"] * N
                + ["unreadable JSON line"], []),
    "medmcqa-hub": (3 * N + 1, 2 * N, {}, ["cop out of range: 4 (expected 0-3"] + ["missing answer: cop"] * N, []),
    "pubmedqa": (2 * N + 3, 2 * N, {}, ["bad final_decision: 'perhaps'", "missing field: QUESTION",
                                        "record is not an object"], []),
    "pubmedqa-hub": (2 * N + 1, 2 * N, {}, ["missing field: final_decision"], []),
    "mmlu": (3 * 8 * (N // 4) + 2, 3 * 6 * (N // 4), {"not a medical subject": 3 * 2 * (N // 4)},
             ["answer out of range: 4", "bad options: 1 given"], ["all/auxiliary_train-00000-of-00001.parquet"]),
    "mmlu-pro": (N + 2 + N // 2, 6 + 3, {"category not health or biology": 2 + 1},
                 ["answer and answer_index disagree: answer B, answer_index 3 (D)",
                  "answer not an option letter: 'H' (options A-D)"], []),
    "huatuo-verifiable": (2 * N + 2, 2 * N, {}, ["missing field: Ground-True Answer", "record is not an object"], []),
    "huatuo-sft": (2 * N + 1, 2 * N, {}, ["missing field: Response"], ["medical_o1_sft_Chinese.json"]),
}


def dataset_of(folder: str) -> str:
    return folder.removesuffix("-hub")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return write_text_fixtures(tmp_path_factory.mktemp("text") / "raw", per_split=N)


@pytest.fixture(scope="module")
def prepared(fixtures, tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "data"
    argv = [arg for name in DATASET_FOLDERS for arg in ("--dataset", name, "--input", str(fixtures[name]))]
    assert main([*argv, "--out", str(out)]) == 0
    return out, json.loads((out / "prepare_report.json").read_text())


def text_parts(conversation: list[dict]) -> list[dict]:
    """The user turn's parts (a plain-string content is one text part)."""
    (turn,) = conversation
    content = turn["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_every_dataset_has_a_fixture(fixtures):
    assert set(DATASET_FOLDERS) == set(TEXT_DATASETS) and set(EXPECTED) == set(fixtures)


@pytest.mark.parametrize("folder", list(EXPECTED))
def test_each_reader_on_its_synthetic_files(fixtures, folder):
    rows, kept, filtered, reasons, ignored = EXPECTED[folder]
    result = read_dataset(dataset_of(folder), fixtures[folder])
    assert result["rows"] == rows and len(result["records"]) == kept
    assert dict(result["filtered"]) == filtered and result.get("ignored_files", []) == ignored
    assert rows == kept + len(result["skips"]) + sum(filtered.values())
    got = sorted(s["reason"] for s in result["skips"])
    assert len(got) == len(reasons) and all(r.startswith(p) for r, p in zip(got, reasons)), got
    for s in result["skips"]:
        assert s["file"] in result["files"] and (s["question_id"] or s["index"] is not None)
    open_ended = dataset_of(folder).startswith("huatuo")
    for record in result["records"]:
        assert {"question_id", "dataset", "task", "question", "options", "answer", "split", "file"} <= set(record)
        assert record["modality"] == "text" and "image" not in record and "images" not in record
        if open_ended:
            assert record["options"] == [] and record["task"] == "open-ended" and record["answer"]
        else:
            assert 2 <= len(record["options"]) <= 10 and record["answer"] in "ABCDEFGHIJ"[: len(record["options"])]
    assert len({r["question_id"] for r in result["records"]}) == kept


def test_fields_of_each_format(fixtures):
    medqa = read_dataset("medqa", fixtures["medqa"])["records"]
    first = next(r for r in medqa if r["question_id"] == "medqa-train-00000")
    assert first["task"] == "step1" and len(first["options"]) == 5 and first["file"] == "train.jsonl"
    assert {len(r["options"]) for r in medqa} == {4, 5} and {r["split"] for r in medqa} == {"train", "validation",
                                                                                         "test"}
    pubmed = read_dataset("pubmedqa", fixtures["pubmedqa"])["records"][0]
    assert pubmed["options"] == ["yes", "no", "maybe"] and pubmed["question_id"] == "pubmedqa-10000000"
    assert pubmed["question"].startswith("Context:\nBACKGROUND: Background of study 0.\nRESULTS: ")
    assert pubmed["question"].endswith("\n\nQuestion: Does treatment 0 reduce mortality?")
    hub = read_dataset("pubmedqa", fixtures["pubmedqa-hub"])["records"][0]
    assert {k: v for k, v in hub.items() if k not in ("split", "file")} == {
        k: v for k, v in pubmed.items() if k not in ("split", "file")}
    mmlu = read_dataset("mmlu", fixtures["mmlu"])["records"]
    assert mmlu[0]["question_id"] == "mmlu-anatomy-dev-00000" and mmlu[0]["subject"] == "anatomy"
    assert {r["split"] for r in mmlu} == {"test", "validation", "dev"}
    sft = read_dataset("huatuo-sft", fixtures["huatuo-sft"])["records"][0]
    assert sft["reasoning"] == "Symptom 0 suggests cause 0." and sft["answer"] == sft["response"]
    assert sft["response"] == "Cause 0 is the most likely explanation." and sft["split"] is None


def test_medmcqa_cop_numbering_follows_the_file_type(fixtures, tmp_path):
    released = read_dataset("medmcqa", fixtures["medmcqa"])
    hub = read_dataset("medmcqa", fixtures["medmcqa-hub"])
    answers = {r["question_id"]: r["answer"] for r in released["records"]}
    assert answers == {r["question_id"]: r["answer"] for r in hub["records"]}  # cop k+1 in JSON = cop k in parquet
    assert set(answers.values()) == set("ABCD")
    assert all("1-4 (the released JSON" in note for note in released["notes"])
    assert all("0-3 (the hub's parquet" in note for note in hub["notes"])
    # Hub-numbered rows in a JSON file are read by the JSON numbering, never guessed: cop 0 is a named skip.
    rows = [{"id": f"x{i}", "question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": i}
            for i in range(4)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = read_dataset("medmcqa", tmp_path / "train.jsonl")
    assert [r["answer"] for r in result["records"]] == ["A", "B", "C"]
    (skipped,) = result["skips"]
    assert skipped["question_id"] == "medmcqa-x0" and "the released JSON numbers them 1-4" in skipped["reason"]


def test_mmlu_pro_answers(fixtures):
    result = read_dataset("mmlu-pro", fixtures["mmlu-pro"])
    by_id = {r["question_id"]: r for r in result["records"]}
    assert len(by_id["mmlu-pro-1000"]["options"]) == 10 and by_id["mmlu-pro-1000"]["answer"] == "J"
    assert {r["task"] for r in by_id.values()} == {"health", "biology"}
    assert by_id["mmlu-pro-0"]["reasoning"].startswith("A: Let's think step by step")
    disagree = next(s for s in result["skips"] if "disagree" in s["reason"])
    assert disagree["question_id"] == "mmlu-pro-1900" and disagree["file"] == "data/test-00000-of-00001.parquet"


def test_json_rows_read_like_parquet(tmp_path, fixtures):
    plain = write_text_fixtures(tmp_path / "raw", per_split=N, fmt="json")
    assert "medmcqa-hub" not in plain
    for name in ("mmlu", "mmlu-pro"):
        a, b = read_dataset(name, fixtures[name]), read_dataset(name, plain[name])
        assert a["rows"] == b["rows"] and a["filtered"] == b["filtered"]
        assert [r["question_id"] for r in a["records"]] == [r["question_id"] for r in b["records"]]


def test_bad_files_are_counted_whole(tmp_path):
    (tmp_path / "medical_o1_verifiable_problem.json").write_text('[{"Open-ended Verifiable Question": ')
    result = read_dataset("huatuo-verifiable", tmp_path)
    assert result["rows"] == 0 and result["skips"][0]["reason"].startswith("unreadable JSON")
    report = prepare_text([("huatuo-verifiable", tmp_path)], tmp_path / "d")
    entry = report["datasets"]["huatuo-verifiable"]
    assert entry["files_skipped"] == 1 and entry["records_skipped"] == 0 and report["records_written"] == 0
    pretty = tmp_path / "one.json"  # a pretty-printed object: not a list, not JSON lines
    pretty.write_text(json.dumps({"Question": "q", "Complex_CoT": "c", "Response": "r"}, indent=1))
    assert read_dataset("huatuo-sft", pretty)["skips"][0]["reason"].startswith("a single JSON object")


def test_several_pairs_into_one_data_dir(prepared):
    from medr1.data.records import load_split, read_records

    out, report = prepared
    assert report["source"] == "text" and set(report["datasets"]) == set(DATASET_FOLDERS)
    for name in DATASET_FOLDERS:
        rows, kept, filtered, reasons, ignored = EXPECTED[name]
        entry = report["datasets"][name]
        assert (entry["rows_read"], entry["records_kept"], entry["filtered"]) == (rows, kept, filtered)
        assert entry["records_skipped"] == len(reasons) and entry["ignored_files"] == ignored
        assert sum(entry["splits"].values()) == kept
    assert report["records_skipped"] == len(report["skipped"]) == sum(len(e[3]) for n, e in EXPECTED.items()
                                                                       if n in DATASET_FOLDERS)
    assert report["skipped_by_reason"]["missing answer"] == N
    for skip in report["skipped"]:
        assert skip["file"].split("/")[0] in TEXT_DATASETS and skip["reason"]
        assert skip["question_id"] or skip["index"] is not None
    records = read_records(out / "records.jsonl")
    assert len(records) == report["records_written"] == sum(EXPECTED[n][1] for n in DATASET_FOLDERS)
    assert [r["question_id"] for r in records] == sorted(r["question_id"] for r in records)
    assert all("split" not in r and "file" not in r and r["modality"] == "text" for r in records)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["datasets"] == list(DATASET_FOLDERS) and manifest["source"] == "text"
    assert "splits/dataset/medqa/validation.jsonl" in manifest["files"]
    assert [r["question_id"] for r in load_split(out, "dataset/medqa/test")][:1] == ["medqa-test-00000"]


def test_released_and_seeded_splits(prepared, fixtures):
    out, report = prepared
    entries = report["datasets"]
    assert entries["medqa"]["splits"] == {"test": N, "train": N, "validation": N}
    assert entries["mmlu"]["splits"] == {"dev": 12, "test": 12, "validation": 12}
    assert entries["medmcqa"]["splits"] == {"train": N, "validation": N}  # its test split has no answers
    assert entries["pubmedqa"]["split_source"] == "released"
    truth = json.loads((fixtures["pubmedqa"] / "test_ground_truth.json").read_text())
    test = [json.loads(line)["question_id"] for line in (out / "splits/dataset/pubmedqa/test.jsonl").open()]
    assert test == sorted(f"pubmedqa-{pmid}" for pmid in truth)
    for name in ("huatuo-verifiable", "huatuo-sft"):
        assert entries[name]["split_source"] == "seeded"
        assert entries[name]["splits"] == {"test": round(0.2 * 2 * N), "train": 2 * N - round(0.2 * 2 * N)}


def test_seeded_splits_are_per_subject_deterministic_and_seed_dependent():
    records = [{"question_id": f"q{i:02d}", "task": ("a", "b")[i % 2], "split": None} for i in range(40)]
    one = assign_splits(records, "x", seed=42, test_fraction=0.25)
    assert assign_splits(list(reversed(records)), "x", 42, 0.25) == one
    assert sum(r["task"] == "a" for r in one["test"]) == sum(r["task"] == "b" for r in one["test"]) == 5
    assert assign_splits(records, "x", 7, 0.25)["test"] != one["test"]
    mixed = assign_splits([dict(records[0], split="validation"), *records[1:]], "x", 42, 0.25)
    assert [r["question_id"] for r in mixed["validation"]] == ["q00"]


def test_strict_stops_at_the_first_bad_record(fixtures, tmp_path):
    first = rf"medqa/dev.jsonl: question_id 'medqa-validation-0000{N}': answer not an option letter: 'E'"
    with pytest.raises(PrepareError, match=first):  # dev.jsonl is read first (sorted names)
        prepare_text([("medqa", fixtures["medqa"])], tmp_path / "d", strict=True)
    with pytest.raises(PrepareError, match=rf"train.jsonl: record #{N}: unreadable JSON line"):  # a bad line
        prepare_text([("medqa", fixtures["medqa"] / "train.jsonl")], tmp_path / "d", strict=True)
    assert not (tmp_path / "d" / "manifest.json").exists()
    assert main(["--dataset", "medqa", "--input", str(fixtures["medqa"]), "--out", str(tmp_path / "e"),
                 "--strict"]) == 1
    report = prepare_text([("huatuo-verifiable", fixtures["huatuo-verifiable"])], tmp_path / "f")
    assert report["records_skipped"] == 2  # the same bad records, counted, without --strict


def test_a_text_only_prompt_from_a_record(prepared):
    from medr1.data.prompts import build_conversation
    from medr1.data.records import prompt_dataset, prompt_rows, read_records

    out, _ = prepared
    dataset = prompt_dataset(out, "dataset/mmlu-pro/test", stage="eval")
    assert "image" not in dataset.column_names and "image_path" not in dataset.column_names
    row = next(r for r in dataset if r["question_id"] == "mmlu-pro-1000")
    (part,) = text_parts(row["prompt"])
    assert part["type"] == "text" and "J)Digoxin" in part["text"] and row["answer"] == "J"
    record = read_records(out / "splits/dataset/huatuo-verifiable/train.jsonl")[0]
    assert [p["type"] for p in text_parts(build_conversation(record))] == ["text"]
    assert record["question"] in text_parts(build_conversation(record))[0]["text"]
    assert "image_path" not in prompt_rows([record])[0]
    image_record = {**record, "modality": "CT", "image": "a.png"}  # a record with an image keeps its part
    assert [p["type"] for p in build_conversation(image_record)[0]["content"]] == ["image", "text"]


def test_prepare_argument_errors(fixtures, tmp_path, caplog):
    out = ["--out", str(tmp_path / "d")]
    assert main(["--dataset", "medqa", *out]) == 2  # no --input for it
    assert main(["--dataset", "medqa", "--input", str(fixtures["medqa"]), "--benchmark", "slake", "--input",
                 str(tmp_path), *out]) == 2
    assert "give --dataset NAME --input PATH pairs" in caplog.text
    assert main(["--dataset", "pubmedqa", "--input", str(tmp_path), *out]) == 1  # no files of its format
    assert "no .jsonl, .json or .parquet files" in caplog.text
    assert main(["--dataset", "medqa", "--input", str(tmp_path / "missing"), *out]) == 1
    with pytest.raises(SystemExit):
        main(["--dataset", "medqa-xx", "--input", str(tmp_path), *out])
    with pytest.raises(PrepareError, match="give each dataset once"):
        prepare_text([("medqa", fixtures["medqa"])] * 2, tmp_path / "d")


def test_synth_text_command(tmp_path):
    from medr1.cli import COMMANDS
    from medr1.embedded.synth_text import main as synth_main

    assert COMMANDS["synth-text"][0] == "medr1.embedded.synth_text"
    assert synth_main(["--out", str(tmp_path / "raw"), "--prepare", str(tmp_path / "data"), "--per-split", "4"]) == 0
    report = json.loads((tmp_path / "data" / "prepare_report.json").read_text())
    assert set(report["datasets"]) == set(DATASET_FOLDERS) and report["records_written"] > 0
