"""Raw OmniMedVQA -> canonical records, splits, report and manifest (medr1.sources.omnimedvqa, medr1.data.prepare).

Every test builds a tiny raw OmniMedVQA tree in tmp_path: JSON metadata files and small real PNGs.
"""

import hashlib
import json
import random
from pathlib import Path

import pytest
from PIL import Image

from medr1.data.prepare import PrepareError, main, prepare
from medr1.sources.omnimedvqa import (
    MODALITIES,
    RAW_MODALITY,
    TASKS,
    RecordError,
    canonical_modality,
    canonicalize,
    format_problem,
    parse_problem,
    parse_solution,
)

OPEN = "QA_information/Open-access"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def raw(i, dataset="DS", modality="CT(Computed Tomography)", task="Disease Diagnosis", image=None, **kw):
    record = {
        "dataset": dataset,
        "question_id": f"{dataset}_{i:04d}",
        "question_type": task,
        "question": f"What is shown in image {i}?",
        "gt_answer": "benign",
        "image_path": image or f"Images/{dataset}/{i}.png",
        "option_A": "malignant",
        "option_B": "benign",
        "option_C": "normal",
        "modality_type": modality,
    }
    record.update(kw)
    return {k: v for k, v in record.items() if v is not ...}  # `key=...` removes a key


def write_png(path: Path, value=0, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value % 256).save(path)


def make_tree(root: Path, files: dict, images=True) -> Path:
    """files: {name: list of records or raw text}; writes every referenced image as a PNG."""
    (root / OPEN).mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, indent=1)
        (root / OPEN / name).write_text(text, encoding="utf-8")
        if images and not isinstance(content, str):
            for r in content:
                if isinstance(r, dict) and isinstance(r.get("image_path"), str):
                    path = root / r["image_path"]
                    if ".." not in r["image_path"] and not path.exists():
                        write_png(path, value=len(r["image_path"]))
    return root


def balanced_records(n_per_modality=20, images_per_question=1, dataset="DS"):
    records, i = [], 0
    for m_idx, canonical in enumerate(MODALITIES):
        for k in range(n_per_modality):
            image = f"Images/{dataset}/{canonical}/{k // images_per_question}.png"
            records.append(
                raw(i, dataset=dataset, modality=RAW_MODALITY[canonical], task=TASKS[i % 5], image=image)
            )
            i += 1
    return records


def file_hashes(out: Path) -> dict:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---------------------------------------------------------------------------------------------
# canonical_modality / canonicalize
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("CT(Computed Tomography)", "CT"),
        ("  ct(computed tomography) ", "CT"),
        ("CT", "CT"),
        ("MR (Mag-netic Resonance Imaging)", "MRI"),
        ("MR (Magnetic Resonance Imaging)", "MRI"),
        ("MRI", "MRI"),
        ("MR", "MRI"),
        ("X-Ray", "X-Ray"),
        ("x-ray", "X-Ray"),
        ("Xray", "X-Ray"),
        ("ultrasound", "Ultrasound"),
        ("Ultrasound", "Ultrasound"),
        ("Dermoscopy", "Dermoscopy"),
        ("Fundus Photography", "Fundus Photography"),
        ("OCT (Optical Coherence Tomography", "OCT"),
        ("OCT (Optical Coherence Tomography)", "OCT"),
        ("OCT", "OCT"),
        ("Microscopy Images", "Microscopy"),
        ("microscopy", "Microscopy"),
    ],
)
def test_canonical_modality_variants(text, expected):
    assert canonical_modality(text) == expected


def test_every_raw_modality_string_maps_back():
    assert {canonical_modality(raw_string): c for c, raw_string in RAW_MODALITY.items()} == {
        c: c for c in MODALITIES
    }


@pytest.mark.parametrize("text", ["PET", "Endoscopy", "", "CTX"])
def test_unknown_modality_raises(text):
    with pytest.raises(RecordError, match="unknown modality"):
        canonical_modality(text)


def test_canonicalize_full_record():
    record = canonicalize(raw(3, task=" disease  diagnosis "))
    assert record == {
        "question_id": "DS_0003",
        "dataset": "DS",
        "modality": "CT",
        "task": "Disease Diagnosis",
        "question": "What is shown in image 3?",
        "options": ["malignant", "benign", "normal"],
        "answer": "B",
        "image": "Images/DS/3.png",
    }


def test_canonicalize_accepts_modality_key():
    record = raw(1, modality=...)
    record["modality"] = "CT(Computed Tomography)"
    assert "modality_type" not in record
    assert canonicalize(record)["modality"] == "CT"


@pytest.mark.parametrize(
    "gt, options, letter",
    [
        ("  Left   Kidney ", {"option_A": "liver", "option_B": "left kidney"}, "B"),
        ("LIVER", {"option_A": " liver ", "option_B": "left kidney"}, "A"),
        ("a\tb", {"option_A": "x", "option_B": "y", "option_C": "z", "option_D": "A B"}, "D"),
    ],
)
def test_gold_letter_normalises_whitespace_and_case(gt, options, letter):
    record = raw(0, gt_answer=gt, option_A=..., option_B=..., option_C=...)
    record.update(options)
    assert canonicalize(record)["answer"] == letter


def test_missing_none_and_blank_options_are_skipped():
    record = canonicalize(raw(0, option_C="  ", option_D=None))
    assert record["options"] == ["malignant", "benign"]


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"question": ...}, "missing field: question"),
        ({"question_id": ...}, "missing field: question_id"),
        ({"gt_answer": None}, "missing field: gt_answer"),
        ({"image_path": ""}, "missing field: image_path"),
        ({"dataset": ...}, "missing field: dataset"),
        ({"question_type": ...}, "missing field: question_type"),
        ({"modality_type": ...}, "missing field: modality_type"),
        ({"gt_answer": "cyst"}, "gt_answer matches no option"),
        ({"option_C": "Benign"}, "gt_answer matches several options: B,C"),
        ({"option_B": ..., "option_C": ...}, "too few options: 1"),
        ({"option_D": "cyst", "option_E": "scar"}, "too many options: 5"),
        ({"option_B": ...}, "non-contiguous options"),
        ({"question_type": "Counting"}, "unknown task"),
        ({"modality_type": "PET"}, "unknown modality"),
        ({"question": ["not", "text"]}, "field question is not text"),
    ],
)
def test_canonicalize_errors(overrides, reason):
    with pytest.raises(RecordError) as info:
        canonicalize(raw(0, **overrides))
    assert info.value.reason.startswith(reason)


# ---------------------------------------------------------------------------------------------
# parse_problem / parse_solution
# ---------------------------------------------------------------------------------------------


def test_parse_problem_plain():
    assert parse_problem("What organ is this? A)liver, B)kidney, C)spleen") == (
        "What organ is this?",
        ["liver", "kidney", "spleen"],
    )


@pytest.mark.parametrize(
    "question, options",
    [
        ("Which grade (I-IV) is it?", ["grade I, mild", "grade II, moderate)", "grade (III), severe"]),
        ("What is seen?", ["IgA), IgG", "a, b, c", "C) looks like a letter", "D)"]),
        ("Is it (A) or (B)?", ["yes", "no"]),  # "A)" in the question, not preceded by whitespace
        ("Which, if any?", ["A) first", "B)", "x), y)", "(c), d)"]),
    ],
)
def test_parse_problem_round_trip_with_commas_and_parens(question, options):
    assert parse_problem(format_problem(question, options)) == (question, options)


def test_parse_problem_documented_ambiguity():
    # An option text containing the NEXT letter's separator (", B)" inside option A) is split there:
    # the format cannot tell the two apart. The official import matches raw records instead.
    problem = format_problem("Pick one:", ["x, B) y", "z"])
    assert problem == "Pick one: A)x, B) y, B)z"
    assert parse_problem(problem) == ("Pick one:", ["x", "y, B)z"])


def test_parse_problem_question_with_a_paren_followed_by_real_options():
    # " A)" inside the question is skipped when no ", B)" follows it... but here one does, so the
    # leftmost candidate wins: documented limitation, the official import matches raw records instead.
    assert parse_problem("Type A) lesion? A)yes, B)no") == ("Type", ["lesion? A)yes", "no"])
    assert parse_problem("Q A)only, one C)x, B)y") == ("Q", ["only, one C)x", "y"])


@pytest.mark.parametrize("problem", ["no options here", "Q A)only one", "A)x, B)y", "Q A), B)y", 7])
def test_parse_problem_rejects_unparseable(problem):
    with pytest.raises(RecordError, match="problem"):
        parse_problem(problem)


def test_parse_solution():
    assert parse_solution("<answer> C </answer>") == "C"
    assert parse_solution("<answer>b</answer>") == "B"
    for bad in ("C", "<answer> E </answer>", "<answer>CT</answer>", None):
        with pytest.raises(RecordError):
            parse_solution(bad)


# ---------------------------------------------------------------------------------------------
# prepare: outputs
# ---------------------------------------------------------------------------------------------


def test_prepare_writes_records_splits_report_manifest(tmp_path):
    records = balanced_records(20)
    root = make_tree(tmp_path / "omv", {"A.json": records[:80], "B.json": records[80:]})
    out = tmp_path / "data"
    assert main(["--omnimedvqa", str(root), "--out", str(out)]) == 0

    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    written = [json.loads(line) for line in lines]
    assert len(written) == 160
    assert [r["question_id"] for r in written] == sorted(r["question_id"] for r in written)
    assert lines[0] == json.dumps(written[0], ensure_ascii=False, sort_keys=True)

    report = json.loads((out / "prepare_report.json").read_text())
    assert (report["records_read"], report["records_kept"], report["records_skipped"]) == (160, 160, 0)
    assert report["counts"]["modality"] == {m: 20 for m in MODALITIES}
    assert report["counts"]["task"] == {t: 32 for t in TASKS}
    for kind, groups, n in (("modality", MODALITIES, 20), ("task", TASKS, 32)):
        for group in groups:
            train = read_jsonl(out / "splits" / kind / group / "train.jsonl")
            test = read_jsonl(out / "splits" / kind / group / "test.jsonl")
            assert len(test) == round(0.2 * n) and len(train) + len(test) == n
            assert report["splits"][kind][group]["train"] == len(train)
            assert report["splits"][kind][group]["test"] == len(test)
            assert all(r[kind] == group and set(r) == set(written[0]) for r in train + test)
    assert (out / "splits" / "task" / "Disease Diagnosis" / "test.jsonl").is_file()

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["image_root"] == str(root.resolve())
    assert (manifest["seed"], manifest["image_disjoint"], manifest["source"]) == (42, False, "medr1-split")
    assert len(manifest["files"]) == 1 + 2 * (len(MODALITIES) + len(TASKS))
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest


def test_prepare_reads_restricted_access_too(tmp_path):
    root = make_tree(tmp_path / "omv", {"A.json": [raw(1), raw(2)]})
    restricted = root / "QA_information" / "Restricted-access"
    restricted.mkdir()
    (restricted / "R.json").write_text(json.dumps([raw(3, dataset="R")]))
    write_png(root / "Images" / "R" / "3.png")
    report = prepare(root, tmp_path / "data")
    assert report["records_kept"] == 3 and report["files_read"] == 2


def test_no_metadata_is_an_error(tmp_path):
    (tmp_path / "omv").mkdir()
    with pytest.raises(PrepareError, match="no metadata"):
        prepare(tmp_path / "omv", tmp_path / "data")
    assert main(["--omnimedvqa", str(tmp_path / "omv"), "--out", str(tmp_path / "data")]) == 1


# ---------------------------------------------------------------------------------------------
# prepare: every bad input is a named, counted skip
# ---------------------------------------------------------------------------------------------


def _bad_tree(tmp_path):
    root = tmp_path / "omv"
    good = [raw(i) for i in range(10)]
    outside = tmp_path / "outside.png"
    write_png(outside)
    bad = [
        raw(100, question=...),  # missing field
        raw(101, gt_answer="cyst"),  # gt matches no option
        raw(102, option_B=..., option_C=..., gt_answer="malignant"),  # one option
        raw(103, option_D="cyst", option_E="scar"),  # five options
        raw(1, image="Images/DS/dup.png"),  # duplicate question_id of DS_0001 in A_Good.json
        raw(104, modality="PET"),  # unknown modality
        raw(105, image="Images/DS/missing.png"),
        raw(106, image="Images/DS/empty.png"),
        raw(107, image="Images/DS/truncated.png"),
        raw(108, image="Images/DS/text.png"),
        raw(109, image="Images/../../outside.png"),
        raw(110, image="Images/DS/link.png"),
        "not a record",
    ]
    make_tree(root, {"A_Good.json": good, "B_Bad.json": bad, "C_Broken.json": '[{"question_id": "x",'})
    (root / "Images/DS/missing.png").unlink()
    (root / "Images/DS/empty.png").write_bytes(b"")
    png = root / "Images/DS/truncated.png"
    write_png(png, size=(64, 64))
    png.write_bytes(png.read_bytes()[:-20])
    (root / "Images/DS/text.png").write_text("hello, not an image")
    (root / "Images/DS/link.png").unlink()
    (root / "Images/DS/link.png").symlink_to(outside)
    return root


EXPECTED_SKIPS = {
    # (file, question_id, reason prefix)
    ("QA_information/Open-access/B_Bad.json", "DS_0100", "missing field: question"),
    ("QA_information/Open-access/B_Bad.json", "DS_0101", "gt_answer matches no option"),
    ("QA_information/Open-access/B_Bad.json", "DS_0102", "too few options"),
    ("QA_information/Open-access/B_Bad.json", "DS_0103", "too many options"),
    ("QA_information/Open-access/B_Bad.json", "DS_0001", "duplicate question_id"),
    ("QA_information/Open-access/B_Bad.json", "DS_0104", "unknown modality"),
    ("QA_information/Open-access/B_Bad.json", "DS_0105", "image missing"),
    ("QA_information/Open-access/B_Bad.json", "DS_0106", "image empty"),
    ("QA_information/Open-access/B_Bad.json", "DS_0107", "image truncated"),
    ("QA_information/Open-access/B_Bad.json", "DS_0108", "not an image"),
    ("QA_information/Open-access/B_Bad.json", "DS_0109", "path escapes root"),
    ("QA_information/Open-access/B_Bad.json", "DS_0110", "path escapes root"),
    ("QA_information/Open-access/B_Bad.json", None, "record is not an object"),
    ("QA_information/Open-access/C_Broken.json", None, "malformed JSON"),
}


def test_every_bad_input_is_a_named_counted_skip(tmp_path):
    root = _bad_tree(tmp_path)
    report = prepare(root, tmp_path / "data")
    found = {(s["file"], s["question_id"], s["reason"]) for s in report["skipped"]}
    for file, qid, prefix in EXPECTED_SKIPS:
        assert any(f == file and q == qid and r.startswith(prefix) for f, q, r in found), (file, qid, prefix)
    assert len(report["skipped"]) == len(EXPECTED_SKIPS)
    not_a_record = next(s for s in report["skipped"] if s["reason"].startswith("record is not"))
    assert not_a_record["index"] == 12
    assert report["skipped_by_reason"] == {
        "duplicate question_id": 1,
        "gt_answer matches no option": 1,
        "image empty": 1,
        "image missing": 1,
        "image truncated": 1,
        "malformed JSON": 1,
        "missing field": 1,
        "not an image": 1,
        "path escapes root": 2,
        "record is not an object": 1,
        "too few options": 1,
        "too many options": 1,
        "unknown modality": 1,
    }
    assert report["files_skipped"] == 1 and report["files_read"] == 2
    assert report["records_read"] == 23
    assert report["records_kept"] == 10 and report["records_skipped"] == 13
    kept = read_jsonl(tmp_path / "data" / "records.jsonl")
    assert sorted(r["question_id"] for r in kept) == [f"DS_{i:04d}" for i in range(10)]
    dup = next(r for r in kept if r["question_id"] == "DS_0001")
    assert dup["image"] == "Images/DS/1.png"  # the first one is kept


def test_skips_are_logged(tmp_path, caplog):
    root = _bad_tree(tmp_path)
    with caplog.at_level("INFO", logger="medr1.data.prepare"):
        prepare(root, tmp_path / "data")
    text = caplog.text
    assert "10 kept" in text and "skipped 2: path escapes root" in text and "malformed JSON" in text


def test_each_image_is_checked_once(tmp_path, monkeypatch):
    import medr1.data.prepare as prep

    calls = []
    real = prep.check_image

    def counting(root, rel, **kw):
        calls.append(rel)
        return real(root, rel, **kw)

    monkeypatch.setattr(prep, "check_image", counting)
    records = [raw(i, image=f"Images/DS/{i % 3}.png") for i in range(12)]
    report = prepare(make_tree(tmp_path / "omv", {"A.json": records}), tmp_path / "data")
    assert sorted(calls) == ["Images/DS/0.png", "Images/DS/1.png", "Images/DS/2.png"]
    assert report["images_checked"] == 3 and report["records_kept"] == 12


def test_max_image_pixels(tmp_path):
    root = make_tree(tmp_path / "omv", {"A.json": [raw(1), raw(2)]}, images=False)
    write_png(root / "Images/DS/1.png", size=(8, 8))
    write_png(root / "Images/DS/2.png", size=(40, 40))
    report = prepare(root, tmp_path / "data", max_image_pixels=1000)
    assert report["skipped_by_reason"] == {"image too large": 1}
    assert report["skipped"][0]["question_id"] == "DS_0002"


def test_strict_raises_naming_file_record_and_reason(tmp_path):
    root = make_tree(tmp_path / "omv", {"A.json": [raw(0), raw(1, gt_answer="cyst"), raw(2)]})
    with pytest.raises(PrepareError) as info:
        prepare(root, tmp_path / "data", strict=True)
    message = str(info.value)
    assert "QA_information/Open-access/A.json" in message
    assert "DS_0001" in message and "gt_answer matches no option" in message
    assert not (tmp_path / "data" / "manifest.json").exists()
    assert main(["--omnimedvqa", str(root), "--out", str(tmp_path / "d2"), "--strict"]) == 1


def test_strict_names_record_index_without_id_and_whole_bad_files(tmp_path):
    root = make_tree(tmp_path / "omv", {"A.json": [raw(0), 42]})
    with pytest.raises(PrepareError, match=r"A\.json: record #1: record is not an object"):
        prepare(root, tmp_path / "data", strict=True)
    root = make_tree(tmp_path / "omv2", {"B.json": "{oops"})
    with pytest.raises(PrepareError, match=r"B\.json: whole file: malformed JSON"):
        prepare(root, tmp_path / "data", strict=True)


# ---------------------------------------------------------------------------------------------
# prepare: determinism, seeds, image-disjoint
# ---------------------------------------------------------------------------------------------


def test_outputs_byte_identical_across_runs_and_input_order(tmp_path):
    records = balanced_records(25, images_per_question=2)
    a = make_tree(tmp_path / "a", {"A.json": records[:100], "B.json": records[100:]})
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    b = make_tree(tmp_path / "b", {"X.json": shuffled[:37], "Y.json": shuffled[37:]})
    prepare(a, tmp_path / "run1")
    prepare(a, tmp_path / "run2")
    prepare(b, tmp_path / "run3")
    first, second, third = (file_hashes(tmp_path / r) for r in ("run1", "run2", "run3"))
    assert first == second
    data_files = {k: v for k, v in first.items() if k.endswith(".jsonl")}
    assert data_files == {k: v for k, v in third.items() if k.endswith(".jsonl")}
    assert len(data_files) == 27


def test_seed_changes_the_split(tmp_path):
    root = make_tree(tmp_path / "omv", {"A.json": balanced_records(25)})
    prepare(root, tmp_path / "s1", seed=1)
    prepare(root, tmp_path / "s2", seed=2)
    h1, h2 = file_hashes(tmp_path / "s1"), file_hashes(tmp_path / "s2")
    assert h1["records.jsonl"] == h2["records.jsonl"]
    assert h1["splits/modality/CT/test.jsonl"] != h2["splits/modality/CT/test.jsonl"]
    assert json.loads((tmp_path / "s2" / "manifest.json").read_text())["seed"] == 2


def _shared_from_files(out: Path, kind: str, group: str) -> int:
    train = {r["image"] for r in read_jsonl(out / "splits" / kind / group / "train.jsonl")}
    test = {r["image"] for r in read_jsonl(out / "splits" / kind / group / "test.jsonl")}
    return len(train & test)


def test_image_disjoint_leaves_no_shared_images(tmp_path):
    root = make_tree(tmp_path / "omv", {"A.json": balanced_records(40, images_per_question=4)})
    default = prepare(root, tmp_path / "default")
    assert sum(g["shared_images"] for g in default["splits"]["modality"].values()) > 0
    assert default["splits"]["modality"]["CT"]["shared_images"] == _shared_from_files(
        tmp_path / "default", "modality", "CT"
    )
    assert main(["--omnimedvqa", str(root), "--out", str(tmp_path / "disjoint"), "--image-disjoint"]) == 0
    report = json.loads((tmp_path / "disjoint" / "prepare_report.json").read_text())
    for kind, groups in (("modality", MODALITIES), ("task", TASKS)):
        for group in groups:
            assert report["splits"][kind][group]["shared_images"] == 0
            assert _shared_from_files(tmp_path / "disjoint", kind, group) == 0
    for m in MODALITIES:
        assert 4 <= report["splits"]["modality"][m]["test"] <= 12  # ~20 % of 40, whole images of 4
    assert json.loads((tmp_path / "disjoint" / "manifest.json").read_text())["image_disjoint"] is True


# ---------------------------------------------------------------------------------------------
# prepare --official-splits
# ---------------------------------------------------------------------------------------------


def _entry(record, letter=None):
    options = [record[k] for k in ("option_A", "option_B", "option_C", "option_D") if record.get(k)]
    letter = letter or "ABCD"[options.index(record["gt_answer"])]
    return {
        "image": record["image_path"],
        "problem": format_problem(record["question"], options),
        "solution": f"<answer> {letter} </answer>",
    }


def _write_release(split_dir: Path, files: dict):
    for rel, entries in files.items():
        path = split_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries), encoding="utf-8")


def test_official_splits_import(tmp_path):
    ct = [raw(i) for i in range(6)]
    oct_ = [
        raw(10 + i, modality="OCT (Optical Coherence Tomography", task="Anatomy Identification")
        for i in range(3)
    ]
    # Two raw questions on one image with the same question text, told apart by their options.
    twin_a = raw(
        20,
        image="Images/DS/twin.png",
        question="Which side?",
        option_A="left",
        option_B="right",
        option_C=...,
        gt_answer="left",
    )
    twin_b = raw(
        21,
        image="Images/DS/twin.png",
        question="Which side?",
        option_A="up",
        option_B="down",
        option_C=...,
        gt_answer="down",
    )
    root = make_tree(tmp_path / "omv", {"DS.json": ct + oct_ + [twin_a, twin_b]})
    write_png(root / "Images/Other/new.png")
    orphan = {
        "image": "Images/Other/new.png",
        "problem": "Which finding, if any, is present? A)cyst, small, B)mass (large), C)none",
        "solution": "<answer> B </answer>",
    }
    split_dir = tmp_path / "Splits"
    files = {
        "modality/train/CT(Computed Tomography)_train.json": [_entry(r) for r in ct[:4]] + [_entry(twin_b)],
        "modality/test/CT(Computed Tomography)_test.json": [_entry(r) for r in ct[4:]]
        + [_entry(twin_a), orphan],
        "modality/train/OCT (Optical Coherence Tomography_train.json": [_entry(r) for r in oct_[:2]],
        "modality/test/OCT (Optical Coherence Tomography_test.json": [_entry(oct_[2])],
        "modality/test/CT(Computed Tomography)_filtered_test.json": [_entry(r) for r in ct],
        "question_type/train/Disease Diagnosis_train.json": [_entry(r) for r in ct[1:]],
        "question_type/test/Disease Diagnosis_test.json": [_entry(ct[0]), orphan],
        "question_type/test/Anatomy Identification_test.json": [_entry(r) for r in oct_],
    }
    _write_release(split_dir, files)
    out = tmp_path / "data"
    assert main(["--omnimedvqa", str(root), "--out", str(out), "--official-splits", str(split_dir)]) == 0
    report = json.loads((out / "prepare_report.json").read_text())

    counted = {rel: c for rel, c in report["official_counts"].items()}
    assert "modality/test/CT(Computed Tomography)_filtered_test.json" in report["official_ignored_files"]
    for rel, entries in files.items():
        if "filtered" in rel:
            assert rel not in counted
            continue
        assert counted[rel]["entries"] == counted[rel]["written"] == len(entries)
    assert report["reconstructed"] == 1
    assert report["official_reconstructed_entries"] == 2  # the orphan is in a modality and a task file
    assert report["official_matched"] == sum(len(v) for k, v in files.items() if "filtered" not in k) - 2

    ct_train = read_jsonl(out / "splits/modality/CT/train.jsonl")
    ct_test = read_jsonl(out / "splits/modality/CT/test.jsonl")
    assert [r["question_id"] for r in ct_train] == ["DS_0000", "DS_0001", "DS_0002", "DS_0003", "DS_0021"]
    assert [r["question_id"] for r in ct_test][:3] == ["DS_0004", "DS_0005", "DS_0020"]
    assert ct_test[2]["options"] == ["left", "right"] and ct_test[2]["answer"] == "A"
    recon = ct_test[3]
    assert recon["question_id"].startswith("official-") and len(recon["question_id"]) == len("official-") + 12
    assert recon == {
        "question_id": recon["question_id"],
        "dataset": "Other",
        "modality": "CT",
        "task": "Disease Diagnosis",  # from the task file the same entry appears in
        "question": "Which finding, if any, is present?",
        "options": ["cyst, small", "mass (large)", "none"],
        "answer": "B",
        "image": "Images/Other/new.png",
    }
    dd_test = read_jsonl(out / "splits/task/Disease Diagnosis/test.jsonl")
    assert [r["question_id"] for r in dd_test] == ["DS_0000", recon["question_id"]]
    assert len(read_jsonl(out / "splits/modality/OCT/train.jsonl")) == 2
    assert read_jsonl(out / "splits/modality/X-Ray/test.jsonl") == []
    assert report["splits"]["modality"]["CT"] == {"train": 5, "test": 4, "shared_images": 1}  # twin.png
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == len(ct) + len(oct_) + 2 + 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "official"
    assert "splits/task/Anatomy Identification/test.jsonl" in manifest["files"]


def test_official_entries_bad_and_reconstructed_without_raw(tmp_path):
    root = tmp_path / "omv"
    write_png(root / "Images/DS/a.png")
    (root / "Images/DS/gone.png").parent.mkdir(parents=True, exist_ok=True)
    split_dir = tmp_path / "Splits"
    good = {"image": "Images/DS/a.png", "problem": "Q? A)x, B)y", "solution": "<answer> A </answer>"}
    _write_release(
        split_dir,
        {
            "modality/train/X-Ray_train.json": [
                good,
                {"image": "Images/DS/gone.png", "problem": "Q? A)x, B)y", "solution": "<answer> A </answer>"},
                {"image": "Images/DS/a.png", "problem": "no options", "solution": "<answer> A </answer>"},
                {"image": "Images/DS/a.png", "problem": "Q? A)x, B)y", "solution": "maybe"},
                {"image": "Images/DS/a.png", "problem": "Q? A)x, B)y", "solution": "<answer> D </answer>"},
            ],
        },
    )
    report = prepare(root, tmp_path / "data", official_splits=split_dir)  # no raw metadata at all
    assert report["official_counts"]["modality/train/X-Ray_train.json"] == {
        "entries": 5,
        "written": 1,
        "matched": 0,
        "reconstructed": 1,
    }
    reasons = sorted(s["reason"].split(":")[0].split(" (")[0] for s in report["skipped"])
    assert reasons == [
        "answer D beyond the 2 options",
        "image missing",
        "unparseable problem",
        "unparseable solution",
    ]
    assert all(
        s["file"] == "modality/train/X-Ray_train.json" and s["index"] is not None for s in report["skipped"]
    )
    (written,) = read_jsonl(tmp_path / "data/splits/modality/X-Ray/train.jsonl")
    assert (written["modality"], written["task"], written["dataset"]) == ("X-Ray", None, "DS")
    with pytest.raises(PrepareError, match=r"X-Ray_train\.json: record #1: image missing"):
        prepare(root, tmp_path / "d2", official_splits=split_dir, strict=True)
