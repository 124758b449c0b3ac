"""PubMedQA (Jin et al., 2019), the expert-labelled PQA-L questions -> canonical text records.

Accepted inputs (a file, or the folder holding it):

* the raw `ori_pqal.json`: a JSON object keyed by PMID, each {"QUESTION", "CONTEXTS" (the abstract's
  paragraphs), "LABELS" (their headings), "MESHES", "YEAR", "final_decision" (yes/no/maybe),
  "LONG_ANSWER", ...}. When the release's `test_ground_truth.json` (PMID -> decision) sits next to it, its
  PMIDs are the test split and the others the train split;
* the hub's `pqa_labeled` parquet (`pqa_labeled/train-00000-of-00001.parquet`; also JSONL): rows of
  {"pubid", "question", "context" {"contexts", "labels", "meshes"}, "long_answer", "final_decision"}. Its
  one file is named `train` but holds the whole labelled set, so no split is taken from the name.

Without released splits `medr1 prepare` makes seeded ones. A question is multiple-choice with the options
yes / no / maybe; its text is the abstract ("Context:", a `LABEL: text` line per paragraph) followed by
"Question: ..."; `long_answer` is kept. The record id is `pubmedqa-<PMID>`.
"""

from __future__ import annotations

import json
from pathlib import Path

from medr1.sources.medqa import Row, choice_fields, read_rows, text_record
from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import new_result, skip, text_field

NAME = "pubmedqa"
RAW_NAME = "ori_pqal.json"
TEST_NAME = "test_ground_truth.json"
HUB_FOLDER = "pqa_labeled"
DECISIONS = ("yes", "no", "maybe")
TASK = "yes/no/maybe"


def with_contexts(question: str, contexts, labels) -> str:
    """The question after the abstract it is asked about: "Context:", one line per paragraph (`LABEL: text`
    when the headings match the paragraphs), a blank line, "Question: <question>"."""
    if not isinstance(contexts, (list, tuple)) or not contexts:
        raise RecordError("missing field: contexts")
    if not all(isinstance(c, str) and c.strip() for c in contexts):
        raise RecordError("blank or non-text context paragraph")
    paragraphs = [c.strip() for c in contexts]
    if isinstance(labels, (list, tuple)) and len(labels) == len(paragraphs) and all(
            isinstance(label, str) and label.strip() for label in labels):
        paragraphs = [f"{label.strip()}: {text}" for label, text in zip(labels, paragraphs)]
    return "Context:\n" + "\n".join(paragraphs) + f"\n\nQuestion: {question}"


def decision_fields(value) -> dict:
    decision = (value.strip().lower() if isinstance(value, str) else None) or None
    if decision is None:
        raise RecordError("missing field: final_decision")
    if decision not in DECISIONS:
        raise RecordError(f"bad final_decision: {value!r} (yes, no or maybe expected)")
    return choice_fields(list(DECISIONS), "ABC"[DECISIONS.index(decision)])


def raw_record(pmid: str, entry) -> dict:
    """One `ori_pqal.json` entry -> a canonical record."""
    if not isinstance(entry, dict):
        raise RecordError(f"record is not an object: {type(entry).__name__}")
    question = with_contexts(text_field(entry, "QUESTION"), entry.get("CONTEXTS"), entry.get("LABELS"))
    fields = decision_fields(entry.get("final_decision"))
    return text_record(f"{NAME}-{pmid}", "PubMedQA", TASK, question, fields,
                       long_answer=text_field(entry, "LONG_ANSWER", required=False) or "")


def hub_record(raw: dict, row: Row) -> dict:
    """One `pqa_labeled` row -> a canonical record."""
    row.question_id = f"{NAME}-{text_field(raw, 'pubid')}"
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    question = with_contexts(text_field(raw, "question"), context.get("contexts"), context.get("labels"))
    fields = decision_fields(raw.get("final_decision"))
    return text_record(row.question_id, "PubMedQA", TASK, question, fields,
                       long_answer=text_field(raw, "long_answer", required=False) or "")


def _load_object(result: dict, path: Path, rel: str) -> dict | None:
    """A JSON object from `path`, or None after recording the whole file as a skip."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        skip(result, rel, None, None, f"unreadable JSON: {error}")
        return None
    if not isinstance(data, dict):
        skip(result, rel, None, None, f"not a JSON object keyed by PMID: {type(data).__name__}")
        return None
    return data


def read_raw(path: Path) -> dict:
    """The entries of `ori_pqal.json` (see vqarad.new_result), split by `test_ground_truth.json` if present."""
    base, rel = path.parent, path.name
    test_path = base / TEST_NAME
    result = new_result(base, [rel] + ([TEST_NAME] if test_path.is_file() else []))
    result["notes"] = []
    test_ids = None
    if test_path.is_file() and (truth := _load_object(result, test_path, TEST_NAME)) is not None:
        test_ids = set(truth)
        result["notes"].append(f"{TEST_NAME}: its {len(test_ids)} PMIDs are the test split, the others train")
    for index, (pmid, entry) in enumerate((_load_object(result, path, rel) or {}).items()):
        result["rows"] += 1
        try:
            record = raw_record(str(pmid).strip(), entry)
        except RecordError as error:
            skip(result, rel, f"{NAME}-{pmid}", index, error.reason)
            continue
        split = None if test_ids is None else ("test" if pmid in test_ids else "train")
        result["records"].append({**record, "split": split, "file": rel})
    return result


def read(root: str | Path) -> dict:
    """The labelled questions of the raw file or the hub's rows (see vqarad.new_result)."""
    root = Path(root)
    if root.is_file() and root.suffix == ".json":
        return read_raw(root)
    if root.is_dir() and (root / RAW_NAME).is_file():
        return read_raw(root / RAW_NAME)
    if root.is_dir() and (root / HUB_FOLDER).is_dir():
        root = root / HUB_FOLDER
    return read_rows(root, hub_record, file_splits=False)
