"""MedQA (Jin et al., 2021), USMLE questions: the released JSONL files -> canonical text records.

Released layout (`data_clean/questions/US/`; give that folder, `US/4_options/`, or one file as `--input`)::

    train.jsonl  dev.jsonl  test.jsonl     one question a line: {"question", "answer" (the text),
                                           "options" {"A": text, ..., "E": text}, "answer_idx" ("C"),
                                           "meta_info" ("step1", "step2&3")}
    4_options/phrases_no_exclude_{train,dev,test}.jsonl    the same with options A-D (and "metamap_phrases")

Only the files directly in the folder are read (so `US/` is the five-option set, `US/4_options/` the
four-option one); when some name a split (`train`, `dev` -> `validation`, `test`), only those are read and
the rest (`US_qbank.jsonl`) are listed as ignored. `answer_idx` is the gold letter; an `answer` text that
is not that option's text makes the record a named skip. MedQA has no question ids: a record's id is
`medqa-<split>-<n>`, n counting the split's rows in file order. `task` is `meta_info`.

This module also holds what the text readers share (`TEXT_MODALITY`, `Row`, `input_files`, `text_rows`,
`read_rows`, `choice_fields`, `option_texts`, `index_letter`, `text_record`): a text record has the
canonical keys with `modality` "text" and no image; a multiple-choice one has 2-10 `options` (letters
A-J) and `answer` its letter, an open-ended one `options: []` and `answer` the reference text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from medr1.sources.mmmu import Filtered
from medr1.sources.omnimedvqa import RecordError, normalize_text
from medr1.sources.vqarad import new_result, skip, table_rows, text_field

NAME = "medqa"
TEXT_MODALITY = "text"
LETTERS = "ABCDEFGHIJ"
SUFFIXES = (".jsonl", ".json", ".parquet")
SPLIT_WORDS = {"train": "train", "dev": "validation", "val": "validation", "valid": "validation",
               "validation": "validation", "test": "test"}


# ---- shared by the text readers -----------------------------------------------------------------

@dataclass
class Row:
    """Where a row was read: its file (relative to the result's base), the file's split (None when the name
    gives none), its index in the file and `number`, how many rows of that split came before it in the
    files read; a reader sets `question_id` as soon as it knows it, so that a skip names the record."""

    file: str
    split: str | None
    index: int
    number: int
    question_id: str | None = None


def split_of(path: Path, words: dict[str, str]) -> str | None:
    """The split a file name names (`dev.jsonl` -> validation, `phrases_no_exclude_test.jsonl`,
    `train-00000-of-00002.parquet`); None when no word of the name is a split word, or several are."""
    found = {words[word] for word in re.split(r"[-_.\s]+", path.stem.lower()) if word in words}
    return found.pop() if len(found) == 1 else None


def input_files(root: Path, words: dict[str, str] = SPLIT_WORDS, preferred: tuple[str, ...] = (),
                subfolders: tuple[str, ...] = ("data",)):
    """(base, files to read, ignored files) for `--input root`: the file itself, else the JSON(L) and parquet
    files directly in the folder (or, when it has none, in the first of its `subfolders` that has some: the
    hub's `data/`). Of those, the `preferred` names when present, else the ones whose name gives a split,
    else all."""
    if root.is_file():
        return root.parent, [root], []
    for folder in (root, *(root / sub for sub in subfolders)):
        found = sorted(p for p in folder.glob("*") if p.suffix in SUFFIXES and p.is_file())
        if found:
            chosen = ([p for p in found if p.name in preferred] or [p for p in found if split_of(p, words)]
                      or found)
            return root, chosen, [p for p in found if p not in chosen]
    raise FileNotFoundError(f"{root}: no .jsonl, .json or .parquet files in it or in its "
                            f"{' or '.join(f'{sub}/' for sub in subfolders)} folder")


def _json_rows(result: dict, path: Path, rel: str):
    """Rows of a JSON list, or of JSON lines (`.jsonl`, or a `.json` file holding lines, as MedMCQA's release
    does); a bad line is one skip and comes out as None (a row read)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        skip(result, rel, None, None, f"unreadable file: {error.strerror or error}")
        return
    lines = data.splitlines()
    if path.suffix == ".json" and not data.lstrip().startswith(b"{"):
        try:
            rows = json.loads(data)
        except ValueError as error:
            skip(result, rel, None, None, f"unreadable JSON: {error}")
            return
        if not isinstance(rows, list):
            skip(result, rel, None, None, f"not a JSON list: {type(rows).__name__}")
            return
        yield from rows
        return
    if path.suffix == ".json" and sum(1 for line in lines if line.strip()) > 1:
        try:
            json.loads(data)
        except ValueError:
            pass  # JSON lines, as expected
        else:
            skip(result, rel, None, None, "a single JSON object, not a list or JSON lines")
            return
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            skip(result, rel, None, index, f"unreadable JSON line: {error}")
            yield None


def text_rows(result: dict, path: Path, rel: str):
    """Rows (dicts, or None for a bad line) of a `.json`/`.jsonl`/`.parquet` file; a bad file is one skip."""
    if path.suffix == ".parquet":
        yield from table_rows(result, path, rel)
    else:
        yield from _json_rows(result, path, rel)


def row_split(raw: dict, file_split: str | None, words: dict[str, str]) -> str | None:
    """A row's `split` column when it has one (mapped like file names), else its file's split."""
    column = text_field(raw, "split", required=False)
    if column is None:
        return file_split
    split = words.get(column.lower(), column.lower() if column.lower() in words.values() else None)
    if split is None:
        raise RecordError(f"unknown split: {column!r}")
    return split


def read_rows(root: str | Path, convert, words: dict[str, str] = SPLIT_WORDS, preferred: tuple[str, ...] = (),
              file_splits: bool = True, subfolders: tuple[str, ...] = ("data",)) -> dict:
    """The records of every row of the input (see vqarad.new_result): `convert(raw, Row) -> record` for each
    object row; a RecordError is a named skip, `Filtered` a counted reason. `file_splits=False` when the
    file names give no dataset split (PubMedQA's hub file is all called `train`)."""
    base, files, ignored = input_files(Path(root), words, preferred, subfolders)
    result = new_result(base, [p.relative_to(base).as_posix() for p in files])
    result["ignored_files"] = [p.relative_to(base).as_posix() for p in ignored]
    numbers: Counter = Counter()
    for path in files:
        rel = path.relative_to(base).as_posix()
        file_split = split_of(path, words) if file_splits else None
        for index, raw in enumerate(text_rows(result, path, rel)):
            result["rows"] += 1
            if raw is None:
                continue
            row = Row(rel, file_split, index, numbers[file_split])
            numbers[file_split] += 1
            try:
                if not isinstance(raw, dict):
                    raise RecordError(f"record is not an object: {type(raw).__name__}")
                record = convert(raw, row)
                record.update(split=row_split(raw, file_split, words), file=rel)
            except Filtered as reason:
                result["filtered"][str(reason)] += 1
                continue
            except RecordError as error:
                skip(result, rel, row.question_id, index, error.reason)
                continue
            result["records"].append(record)
    return result


def option_texts(values, field: str) -> list[str]:
    """A list of option texts (numbers become text), stripped; RecordError naming `field` when one is blank."""
    if not isinstance(values, (list, tuple)):
        raise RecordError(f"field {field} is not a list: {type(values).__name__}")
    texts = [text_field({field: value}, field, required=False) for value in values]
    if None in texts:
        raise RecordError(f"blank option: {field} number {texts.index(None) + 1}")
    return texts


def choice_fields(options: list[str], letter: str) -> dict:
    """{"options", "answer"} of a multiple-choice record: 2-10 options and `letter` one of theirs."""
    if not 2 <= len(options) <= len(LETTERS):
        raise RecordError(f"bad options: {len(options)} given (2 to {len(LETTERS)} expected)")
    if letter not in LETTERS[: len(options)]:
        raise RecordError(f"answer not an option letter: {letter!r} (options A-{LETTERS[len(options) - 1]})")
    return {"options": options, "answer": letter}


def index_letter(value, field: str, first: int, count: int) -> str:
    """The letter an option number names (`first` is the number of option A: 0 or 1); RecordError otherwise."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if value is None:
        raise RecordError(f"missing field: {field}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"field {field} is not a number: {value!r}")
    if not first <= value < first + count:
        raise RecordError(f"{field} out of range: {value} (expected {first}-{first + count - 1})")
    return LETTERS[value - first]


def text_record(question_id: str, dataset: str, task: str, question: str, fields: dict, **extra) -> dict:
    """A canonical text record: `fields` holds options and answer; `extra` the source's own columns."""
    return {"question_id": question_id, "dataset": dataset, "modality": TEXT_MODALITY, "task": task,
            "question": question, **fields, **extra}


# ---- MedQA --------------------------------------------------------------------------------------

def medqa_options(value) -> list[str]:
    """`options` {"A": text, ...} (a parquet struct may add null letters at the end) or a list -> texts."""
    if isinstance(value, (list, tuple)):
        return option_texts(value, "options")
    if not isinstance(value, dict):
        raise RecordError(f"field options is not an object: {type(value).__name__}")
    present = {str(k).strip().upper(): v for k, v in value.items() if v is not None and str(v).strip()}
    letters = LETTERS[: len(present)]
    if sorted(present) != list(letters):
        raise RecordError(f"non-contiguous options: {','.join(sorted(present))}")
    return option_texts([present[letter] for letter in letters], "options")


def canonicalize(raw: dict, row: Row) -> dict:
    row.question_id = f"{NAME}-{row.split or 'all'}-{row.number:05d}"
    question = text_field(raw, "question")
    options = medqa_options(raw.get("options"))
    fields = choice_fields(options, text_field(raw, "answer_idx").upper())
    answer = text_field(raw, "answer", required=False)
    chosen = options[LETTERS.index(fields["answer"])]
    if answer is not None and normalize_text(answer) != normalize_text(chosen):
        raise RecordError(f"answer text is not the answer_idx option: {answer!r}, option {fields['answer']} is "
                          f"{chosen!r}")
    task = text_field(raw, "meta_info", required=False) or "unknown"
    return text_record(row.question_id, "MedQA", task, question, fields, subject=task)


def read(root: str | Path) -> dict:
    """Every question of the split files (see vqarad.new_result); a bad one is a named skip."""
    return read_rows(root, canonicalize)
