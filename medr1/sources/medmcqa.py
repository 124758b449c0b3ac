"""MedMCQA (Pal et al., 2022): Indian medical entrance questions -> canonical text records.

Accepted layouts (the folder given as `--input`, or one file):

* the released `train.json`, `dev.json`, `test.json`: JSON lines (despite the suffix) of {"id", "question",
  "opa", "opb", "opc", "opd", "cop", "choice_type", "exp", "subject_name", "topic_name"}; `cop` numbers the
  correct option 1-4;
* the hub's parquet files (`data/train-00000-of-00001.parquet`, `validation-...`, `test-...`), the same
  columns with `cop` numbered 0-3.

The numbering is decided by the file type, never guessed from the values: a `cop` outside the file type's
range is a named skip (the report's notes say which numbering each file was read with). The test split is
released without answers: each of its rows (no `cop`, or -1) is a counted skip. `task` and `subject` are
`subject_name`; `topic`, `choice_type` and `explanation` (`exp`) are kept.
"""

from __future__ import annotations

from pathlib import Path

from medr1.sources.medqa import Row, choice_fields, index_letter, option_texts, read_rows, text_record
from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import text_field

NAME = "medmcqa"
OPTION_KEYS = ("opa", "opb", "opc", "opd")


def cop_base(file: str) -> int:
    """The number of option A in a file's `cop`: 0 in the hub's parquet, 1 in the released JSON(L)."""
    return 0 if file.endswith(".parquet") else 1


def cop_note(file: str) -> str:
    if cop_base(file) == 0:
        return f"{file}: cop read as 0-3 (the hub's parquet numbering)"
    return f"{file}: cop read as 1-4 (the released JSON numbering)"


def answer_letter(raw: dict, file: str) -> str:
    """The gold letter from `cop` by the file type's numbering; RecordError for a missing or foreign one."""
    cop = raw.get("cop")
    if cop is None or cop == -1 or cop == "":
        raise RecordError("missing answer: cop (MedMCQA's test split is released without answers)")
    base = cop_base(file)
    try:
        return index_letter(cop, "cop", base, len(OPTION_KEYS))
    except RecordError as error:
        numbering = "the hub's parquet numbers options 0-3" if base == 0 else "the released JSON numbers them 1-4"
        raise RecordError(f"{error.reason[:-1]}; {numbering})") from None


def canonicalize(raw: dict, row: Row) -> dict:
    row.question_id = f"{NAME}-{text_field(raw, 'id')}"
    question = text_field(raw, "question")
    options = option_texts([raw.get(key) for key in OPTION_KEYS], "opa-opd")
    fields = choice_fields(options, answer_letter(raw, row.file))
    subject = text_field(raw, "subject_name", required=False) or "unknown"
    return text_record(
        row.question_id, "MedMCQA", subject, question, fields, subject=subject,
        topic=text_field(raw, "topic_name", required=False) or "",
        choice_type=text_field(raw, "choice_type", required=False) or "",
        explanation=text_field(raw, "exp", required=False) or "",
    )


def read(root: str | Path) -> dict:
    """Every answered question of the split files (see vqarad.new_result); a bad one is a named skip."""
    result = read_rows(root, canonicalize)
    result["notes"] = [cop_note(file) for file in result["files"]]
    return result
