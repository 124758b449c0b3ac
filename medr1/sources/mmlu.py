"""MMLU (Hendrycks et al., 2021), its medical subjects -> canonical text records.

Accepted layout: the hub's `all/` folder (or the repository above it, one subject's folder, one file) with
`{test,validation,dev}-00000-of-00001.parquet` (also JSON or JSONL rows), each row {"question", "choices"
(4 texts), "answer" (0-3), "subject"}. `auxiliary_train` (not medical) names no split and is ignored;
`dev` (five few-shot questions per subject) is kept as its own split.

Kept: the six conventional medical subjects (`MEDICAL_SUBJECTS`); the other subjects are counted as
filtered, not skipped. A row without `subject` takes its folder's name when that is a medical subject.
`task` and `subject` are the subject; the record id is `mmlu-<subject>-<split>-<n>`, n counting the
subject's rows of that split, so the same question has the same id in `all/` and in its subject's folder.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from medr1.sources.medqa import Filtered, Row, choice_fields, index_letter, option_texts, read_rows, text_record
from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import text_field

NAME = "mmlu"
MEDICAL_SUBJECTS = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine", "medical_genetics",
                    "professional_medicine")
SPLIT_WORDS = {"test": "test", "validation": "validation", "val": "validation", "dev": "dev"}


def subject_of(raw: dict, file: str) -> str:
    """The row's `subject`, else its folder's name when that is a medical subject."""
    subject = text_field(raw, "subject", required=False)
    folder = Path(file).parent.name
    if subject is None and folder in MEDICAL_SUBJECTS:
        return folder
    if subject is None:
        raise RecordError("missing field: subject")
    return subject


def converter():
    """`convert(raw, Row)` for read_rows, numbering each subject's rows of a split."""
    numbers: Counter = Counter()

    def convert(raw: dict, row: Row) -> dict:
        subject = subject_of(raw, row.file)
        if subject not in MEDICAL_SUBJECTS:
            raise Filtered("not a medical subject")
        key = (row.split or "all", subject)
        row.question_id = f"{NAME}-{subject}-{key[0]}-{numbers[key]:05d}"
        numbers[key] += 1
        question = text_field(raw, "question")
        options = option_texts(raw.get("choices"), "choices")
        fields = choice_fields(options, index_letter(raw.get("answer"), "answer", 0, len(options)))
        return text_record(row.question_id, "MMLU", subject, question, fields, subject=subject)

    return convert


def read(root: str | Path) -> dict:
    """The medical questions of the split files (see vqarad.new_result); a bad one is a named skip."""
    return read_rows(root, converter(), words=SPLIT_WORDS, subfolders=("all", "data"))
