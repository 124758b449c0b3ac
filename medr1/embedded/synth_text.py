"""Synthetic files in the released formats of the text datasets `medr1 prepare --dataset` reads.

`medr1 synth-text --out RAW [--prepare DATA_DIR]` writes one folder per dataset under RAW (named as
`--dataset` names them; nothing is downloaded) and, with --prepare, prepares those seven into DATA_DIR.
`medmcqa-hub` and `pubmedqa-hub` hold the hub's parquet forms of MedMCQA (`cop` 0-3) and PubMedQA
(`pqa_labeled`), written when pyarrow is installed, as are MMLU's and MMLU-Pro's parquet files (else JSON
rows). Every fixture holds the bad records a reader must report as named skips, and the rows it must
leave out by design:

* medqa: a malformed JSONL line (train), answer_idx E of four options (dev), an answer text that is not the
  answer_idx option (test); `US_qbank.jsonl` names no split and is ignored;
* medmcqa: cop 0 in the 1-4 JSON (train), a malformed line (dev), every test row (no cop);
* medmcqa-hub: cop 4 in the 0-3 parquet (train), every test row (cop -1);
* pubmedqa: final_decision "perhaps", an entry without QUESTION, an entry that is not an object;
* pubmedqa-hub: a row without final_decision;
* mmlu: answer 4 of four choices and a single choice (test); two non-medical subjects are filtered;
  `auxiliary_train` is ignored;
* mmlu-pro: answer and answer_index disagreeing, answer_index beyond the options (test); category law
  is filtered;
* huatuo-verifiable: an entry without Ground-True Answer, an entry that is not an object;
* huatuo-sft: a blank Response; `medical_o1_sft_Chinese.json` is ignored.

PubMedQA's raw fixture has `test_ground_truth.json` (half its PMIDs: the released test split); the hub
form and both HuatuoGPT-o1 sets have no splits (seeded ones are made). MMLU-Pro questions have four or
ten options (answers up to J).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

DATASET_FOLDERS = ("medqa", "medmcqa", "pubmedqa", "mmlu", "mmlu-pro", "huatuo-verifiable", "huatuo-sft")
HUB_FOLDERS = ("medmcqa-hub", "pubmedqa-hub")
MEDICAL = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
           "professional_medicine")
OTHER_SUBJECTS = ("astronomy", "high_school_physics")
DRUGS = ("Aspirin", "Insulin", "Heparin", "Warfarin", "Metformin", "Atenolol", "Lisinopril", "Omeprazole",
         "Furosemide", "Digoxin")
SUBJECTS = ("Anatomy", "Physiology", "Pharmacology", "Pathology")


def _jsonl(path: Path, rows: list, bad_line: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, ensure_ascii=False) for row in rows] + ([bad_line] if bad_line else [])
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def _table(path: Path, rows: list[dict], fmt: str) -> None:
    """Rows as a parquet file (pyarrow), or with fmt="json" as a JSON list next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        _json(path.with_suffix(".json"), rows)


def medqa_row(i: int, split: str) -> dict:
    """Five options for even i, four for odd (as in the 4_options files)."""
    options = {letter: DRUGS[(i + k) % len(DRUGS)] for k, letter in enumerate("ABCDE"[: 5 - i % 2])}
    letter = "ABCDE"[i % len(options)]
    return {"question": f"A {30 + i}-year-old patient in the {split} set needs treatment. Which drug is best?",
            "answer": options[letter], "options": options, "answer_idx": letter,
            "meta_info": ("step1", "step2&3")[i % 2]}


def write_medqa(root: Path, n: int) -> None:
    train = [medqa_row(i, "train") for i in range(n)]
    _jsonl(root / "train.jsonl", train, bad_line='{"question": "A truncated line')
    dev = [medqa_row(i, "dev") for i in range(n)]
    _jsonl(root / "dev.jsonl", dev + [dict(medqa_row(1, "dev"), answer_idx="E")])
    test = [medqa_row(i, "test") for i in range(n)]
    _jsonl(root / "test.jsonl", test + [dict(medqa_row(0, "test"), answer="Not an option")])
    _jsonl(root / "US_qbank.jsonl", [medqa_row(i, "qbank") for i in range(2)])  # names no split: ignored


def medmcqa_row(i: int, split: str, first: int) -> dict:
    """A MedMCQA row whose `cop` numbers option A as `first` (1 in the release, 0 on the hub)."""
    row = {"id": f"{split}-{i:04d}-5a1c", "question": f"Which drug is used in case {i} ({split})?",
           **{key: DRUGS[(i + k) % len(DRUGS)] for k, key in enumerate(("opa", "opb", "opc", "opd"))},
           "cop": i % 4 + first, "choice_type": "single", "exp": f"Explanation {i}.",
           "subject_name": SUBJECTS[i % len(SUBJECTS)], "topic_name": "General"}
    if split == "test" and first == 1:
        del row["cop"]  # the release's test split has no answers
    elif split == "test":
        row["cop"] = -1  # the hub's test rows
    return row


def write_medmcqa(root: Path, n: int) -> None:
    train = [medmcqa_row(i, "train", 1) for i in range(n)] + [dict(medmcqa_row(0, "train", 1), id="bad-cop", cop=0)]
    _jsonl(root / "train.json", train)  # the release's .json files are JSON lines
    _jsonl(root / "dev.json", [medmcqa_row(i, "dev", 1) for i in range(n)], bad_line='{"id": "dev-broken",')
    _jsonl(root / "test.json", [medmcqa_row(i, "test", 1) for i in range(n)])


def write_medmcqa_hub(root: Path, n: int) -> None:
    train = [medmcqa_row(i, "train", 0) for i in range(n)] + [dict(medmcqa_row(0, "train", 0), id="bad-cop", cop=4)]
    _table(root / "data" / "train-00000-of-00001.parquet", train, "parquet")
    _table(root / "data" / "validation-00000-of-00001.parquet", [medmcqa_row(i, "dev", 0) for i in range(n)],
           "parquet")
    _table(root / "data" / "test-00000-of-00001.parquet", [medmcqa_row(i, "test", 0) for i in range(n)], "parquet")


def pubmed_entry(i: int) -> dict:
    return {"QUESTION": f"Does treatment {i} reduce mortality?",
            "CONTEXTS": [f"Background of study {i}.", f"Results of study {i}."], "LABELS": ["BACKGROUND", "RESULTS"],
            "MESHES": ["Humans"], "YEAR": "2010", "reasoning_required_pred": "yes", "reasoning_free_pred": "yes",
            "final_decision": ("yes", "no", "maybe")[i % 3], "LONG_ANSWER": f"Study {i} answers it."}


def write_pubmedqa(root: Path, n: int) -> None:
    entries = {str(10000000 + i): pubmed_entry(i) for i in range(2 * n)}
    bad = {"20000001": dict(pubmed_entry(0), final_decision="perhaps"),
           "20000002": {k: v for k, v in pubmed_entry(1).items() if k != "QUESTION"}, "20000003": "not an object"}
    _json(root / "ori_pqal.json", {**entries, **bad})
    _json(root / "test_ground_truth.json", {pmid: e["final_decision"] for pmid, e in list(entries.items())[n:]})


def write_pubmedqa_hub(root: Path, n: int) -> None:
    rows = []
    for i in range(2 * n):
        entry = pubmed_entry(i)
        rows.append({"pubid": 10000000 + i, "question": entry["QUESTION"],
                     "context": {"contexts": entry["CONTEXTS"], "labels": entry["LABELS"], "meshes": entry["MESHES"]},
                     "long_answer": entry["LONG_ANSWER"], "final_decision": entry["final_decision"]})
    rows.append(dict(rows[0], pubid=20000009, final_decision=None))
    _table(root / "pqa_labeled" / "train-00000-of-00001.parquet", rows, "parquet")


def mmlu_row(subject: str, i: int, split: str) -> dict:
    return {"question": f"In {subject.replace('_', ' ')}, which is true ({split} {i})?",
            "subject": subject, "choices": [f"Statement {k + 1}" for k in range(4)], "answer": i % 4}


def write_mmlu(root: Path, n: int, fmt: str) -> None:
    per_subject = max(1, n // 4)
    for split in ("test", "validation", "dev"):
        rows = [mmlu_row(s, i, split) for s in MEDICAL + OTHER_SUBJECTS for i in range(per_subject)]
        if split == "test":
            rows += [dict(mmlu_row("anatomy", 90, split), answer=4),
                     dict(mmlu_row("college_medicine", 91, split), choices=["Only one"], answer=0)]
        _table(root / "all" / f"{split}-00000-of-00001.parquet", rows, fmt)
    _table(root / "all" / "auxiliary_train-00000-of-00001.parquet",
           [dict(mmlu_row("anatomy", i, "aux"), subject="") for i in range(2)], fmt)


def mmlu_pro_row(i: int, split: str) -> dict:
    count = 10 if i % 2 == 0 else 4
    index = (count - 1 - i) % count  # question 0 is answered J
    return {"question_id": (1000 if split == "test" else 0) + i, "question": f"Which drug fits case {i} ({split})?",
            "options": list(DRUGS[:count]), "answer": "ABCDEFGHIJ"[index], "answer_index": index,
            "cot_content": f"A: Let's think step by step. Case {i}." if split == "validation" else "",
            "category": ("health", "biology", "law")[i % 3], "src": f"ori_mmlu-{split}"}


def write_mmlu_pro(root: Path, n: int, fmt: str) -> None:
    test = [mmlu_pro_row(i, "test") for i in range(n)]
    test += [dict(mmlu_pro_row(1, "test"), question_id=1900, answer="B", answer_index=3),
             dict(mmlu_pro_row(1, "test"), question_id=1901, answer=None, answer_index=7)]
    _table(root / "data" / "test-00000-of-00001.parquet", test, fmt)
    _table(root / "data" / "validation-00000-of-00001.parquet", [mmlu_pro_row(i, "validation") for i in range(n // 2)],
           fmt)


def write_huatuo(verifiable: Path, sft: Path, n: int) -> None:
    problems = [{"Open-ended Verifiable Question": f"A patient presents with finding {i}. What is the diagnosis?",
                 "Ground-True Answer": f"Diagnosis {i}"} for i in range(2 * n)]
    problems += [{"Open-ended Verifiable Question": "A question without an answer?"}, ["not", "an", "object"]]
    _json(verifiable / "medical_o1_verifiable_problem.json", problems)
    examples = [{"Question": f"What causes symptom {i}?", "Complex_CoT": f"Symptom {i} suggests cause {i}.",
                 "Response": f"Cause {i} is the most likely explanation."}
                for i in range(2 * n)]
    _json(sft / "medical_o1_sft.json", examples + [dict(examples[0], Response="  ")])
    _json(sft / "medical_o1_sft_Chinese.json", examples[:2])  # the hub's other files: ignored


def write_text_fixtures(out: str | Path, per_split: int = 8, fmt: str | None = None) -> dict[str, Path]:
    """Write every fixture under `out`; returns {folder name: its path} (the seven datasets, then the hub forms,
    which need pyarrow and are left out without it)."""
    if fmt is None:
        try:
            import pyarrow  # noqa: F401
            fmt = "parquet"
        except ImportError:
            fmt = "json"
    out = Path(out)
    names = DATASET_FOLDERS + (HUB_FOLDERS if fmt == "parquet" else ())
    folders = {name: out / name for name in names}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    write_medqa(folders["medqa"], per_split)
    write_medmcqa(folders["medmcqa"], per_split)
    write_pubmedqa(folders["pubmedqa"], per_split)
    write_mmlu(folders["mmlu"], per_split, fmt)
    write_mmlu_pro(folders["mmlu-pro"], per_split, fmt)
    write_huatuo(folders["huatuo-verifiable"], folders["huatuo-sft"], per_split)
    if fmt == "parquet":
        write_medmcqa_hub(folders["medmcqa-hub"], per_split)
        write_pubmedqa_hub(folders["pubmedqa-hub"], per_split)
    logger.info("synthetic text fixtures (%s) written to %s", fmt, out)
    return folders


def main(argv: list[str] | None = None) -> int:
    from medr1.data.prepare import PrepareError
    from medr1.data.text_sources import prepare_text

    parser = argparse.ArgumentParser(prog="medr1 synth-text", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the raw fixtures to")
    parser.add_argument("--prepare", type=Path, metavar="DATA_DIR", help="also prepare the seven datasets into it")
    parser.add_argument("--per-split", type=int, default=8, help="questions per split and dataset")
    parser.add_argument("--format", choices=("parquet", "json"), help="MMLU/MMLU-Pro files (default: parquet when "
                        "pyarrow is installed; the hub forms need it)")
    args = parser.parse_args(argv)
    folders = write_text_fixtures(args.out, args.per_split, args.format)
    if args.prepare:
        try:
            prepare_text([(name, folders[name]) for name in DATASET_FOLDERS], args.prepare)
        except PrepareError as error:
            logger.error("prepare failed: %s", error)
            return 1
    return 0
