"""MMMU (Yue et al., 2024), its five medical subjects: multiple-choice questions -> canonical records.

Accepted layout under the folder given as `--input` (searched recursively): the hub's
`<Subject>/{dev,validation,test}-00000-of-00001.parquet` (needs pyarrow), or the same rows as JSON lists or
JSONL named by split. Row fields: `id` (`validation_Clinical_Medicine_12`), `question`, `options` (a
Python list written as a string), `answer` (a letter), `image_1` ... `image_7` ({"bytes", "path"} in
parquet, a file path relative to the input folder in JSON), `question_type`.

Kept: `question_type == "multiple-choice"` of the subjects in `SUBJECTS` (from the id, else the folder
name). Filtered (counted, not bad): other subjects, open questions, hidden answers (the test split's),
options that are images. `<image k>` in the question becomes "the image" when there is one image and
"image k" when there are several (then the record has `images`, in placeholder order); a placeholder that
opens the question is dropped.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import new_result, skip, table_rows, text_field

NAME = "mmmu"
SUBJECTS = ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
            "Public_Health")
SPLITS = ("dev", "validation", "test")
SUFFIXES = (".parquet", ".jsonl", ".json")
_PLACEHOLDER = re.compile(r"<image (\d+)>")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Filtered(Exception):
    """A row left out by design (not a bad record); the message is the counted reason."""


def split_of(path: Path) -> str | None:
    word = re.split(r"[-_.]", path.name, maxsplit=1)[0].lower()
    return word if word in SPLITS else None


def subject_of(row_id: str, folder: str) -> str:
    """`validation_Clinical_Medicine_12` -> `Clinical_Medicine`; else the file's folder name."""
    match = re.fullmatch(r"(?:dev|validation|test)_(.+)_\d+", row_id)
    return match.group(1) if match else folder


def parse_options(value) -> list[str]:
    """The `options` field (a list, or a Python list literal as text) -> option texts."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise RecordError("unparseable options (not a list literal)") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(o, (str, int, float)) for o in value):
        raise RecordError("unparseable options (not a list of texts)")
    options = [str(o).strip() for o in value]
    if len(options) < 2 or len(options) > len(_LETTERS) or not all(options):
        raise RecordError(f"bad options: {len(options)} given, blank ones included or fewer than 2")
    return options


def fill_placeholders(question: str, several: bool) -> str:
    """`<image k>` -> "the image" (one image) or "image k" (several); a placeholder that opens the question
    before a capitalised sentence (`<image 1> What is shown?`) is dropped."""
    opening = re.match(r"\s*<image \d+>\s+(?=[A-Z])", question)
    if opening:
        question = question[opening.end():]
    text = _PLACEHOLDER.sub(lambda m: f"image {m.group(1)}" if several else "the image", question)
    return text[:1].upper() + text[1:]


def image_value(value):
    """A parquet image cell ({"bytes", "path"}) or a JSON path -> bytes or a relative path; None when absent."""
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) or None
    return value.strip() if isinstance(value, str) and value.strip() else None


def canonicalize(raw: dict, split: str, folder: str) -> dict:
    if not isinstance(raw, dict):
        raise RecordError(f"record is not an object: {type(raw).__name__}")
    row_id = text_field(raw, "id")
    subject = subject_of(row_id, folder)
    if subject not in SUBJECTS:
        raise Filtered("not a medical subject")
    if (text_field(raw, "question_type", required=False) or "multiple-choice") != "multiple-choice":
        raise Filtered("open question")
    question = text_field(raw, "question")
    options = parse_options(raw.get("options"))
    if any(_PLACEHOLDER.search(o) for o in options):
        raise Filtered("options are images")
    answer = (text_field(raw, "answer", required=False) or "").upper()
    if answer in ("", "?"):
        raise Filtered("answer hidden")
    if answer not in _LETTERS[: len(options)]:
        raise RecordError(f"answer {answer!r} is not an option letter (A-{_LETTERS[len(options) - 1]})")
    order = list(dict.fromkeys(int(k) for k in _PLACEHOLDER.findall(question))) or [1]
    images = [image_value(raw.get(f"image_{k}")) for k in order]
    if any(image is None for image in images):
        raise RecordError(f"missing image: image_{order[images.index(None)]}")
    pictures = {"image": images[0]} if len(images) == 1 else {"images": images}
    return {"question_id": f"mmmu-{row_id}", "dataset": "MMMU", "modality": "Mixed", "task": subject,
            "question": fill_placeholders(question, several=len(images) > 1), "options": options, "answer": answer,
            **pictures, "split": split}


def read(root: str | Path) -> dict:
    """The medical multiple-choice rows of every split file (see vqarad.new_result)."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file() and split_of(p))
    if not files:
        raise FileNotFoundError(f"{root}: no dev/validation/test .parquet, .jsonl or .json files (the MMMU layout)")
    result = new_result(root, [p.relative_to(root).as_posix() for p in files])
    for path in files:
        rel = path.relative_to(root).as_posix()
        for index, raw in enumerate(table_rows(result, path, rel)):
            result["rows"] += 1
            if raw is None:
                continue
            try:
                result["records"].append({**canonicalize(raw, split_of(path), path.parent.name), "file": rel})
            except Filtered as reason:
                result["filtered"][str(reason)] += 1
            except RecordError as error:
                row_id = raw.get("id") if isinstance(raw, dict) else None
                skip(result, rel, None if row_id is None else f"mmmu-{row_id}", index, error.reason)
    return result
