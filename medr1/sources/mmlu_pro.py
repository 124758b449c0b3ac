"""MMLU-Pro (Wang et al., 2024), its health and biology questions -> canonical text records.

Accepted layout: the hub's `data/{test,validation}-00000-of-00001.parquet` (the folder above `data/`, the
folder itself, or one file; also JSON or JSONL rows), each row {"question_id", "question", "options" (up
to 10 texts), "answer" (a letter), "answer_index" (0-9), "cot_content", "category", "src"}.

Kept: `category` health and biology; the other categories are counted as filtered. `answer` and
`answer_index` must name the same option (either alone is enough); when they disagree the record is a
named skip. `task` and `subject` are the category; `src` is kept, and `cot_content` as `reasoning` (the
validation split's worked answers; empty in the test split). The record id is `mmlu-pro-<question_id>`.
"""

from __future__ import annotations

from pathlib import Path

from medr1.sources.medqa import (
    LETTERS,
    Filtered,
    Row,
    choice_fields,
    index_letter,
    option_texts,
    read_rows,
    text_record,
)
from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import text_field

NAME = "mmlu-pro"
CATEGORIES = ("health", "biology")


def answer_letter(raw: dict, count: int) -> str:
    """The gold letter from `answer` and `answer_index`; RecordError when they disagree or neither is given."""
    letter = (text_field(raw, "answer", required=False) or "").upper() or None
    if raw.get("answer_index") is None:
        if letter is None:
            raise RecordError("missing field: answer")
        return letter
    by_index = index_letter(raw.get("answer_index"), "answer_index", 0, max(count, len(LETTERS)))
    if letter is not None and letter != by_index:
        raise RecordError(f"answer and answer_index disagree: answer {letter}, answer_index "
                          f"{raw['answer_index']} ({by_index})")
    return by_index


def canonicalize(raw: dict, row: Row) -> dict:
    row.question_id = f"{NAME}-{text_field(raw, 'question_id')}"
    category = (text_field(raw, "category", required=False) or "").lower()
    if category not in CATEGORIES:
        raise Filtered("category not health or biology")
    question = text_field(raw, "question")
    options = option_texts(raw.get("options"), "options")
    fields = choice_fields(options, answer_letter(raw, len(options)))
    return text_record(row.question_id, "MMLU-Pro", category, question, fields, subject=category,
                       src=text_field(raw, "src", required=False) or "",
                       reasoning=text_field(raw, "cot_content", required=False) or "")


def read(root: str | Path) -> dict:
    """The health and biology questions of the split files (see vqarad.new_result); bad ones are named skips."""
    return read_rows(root, canonicalize)
