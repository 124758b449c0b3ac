"""PMC-VQA (Zhang et al., 2023): the released CSV files and figure folder -> canonical records.

Released layout (the folder given as `--input`)::

    train.csv  test.csv  (test_clean.csv, train_2.csv, ...)   columns Figure_path, Question, Answer,
                                                              Choice A, Choice B, Choice C, Choice D, Answer_label
    images/<Figure_path>      (or figures/<Figure_path>)

Each CSV is one split named after the file (`test_clean.csv` -> split `test_clean`). Choices are written
`A:text` in the release; the `A:` prefix is dropped. Blank choices at the end are left out (at least two
must remain); `Answer_label` is the gold letter and must name a present choice.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import new_result, skip, text_field

NAME = "pmc-vqa"
LETTERS = "ABCD"
COLUMNS = ("Figure_path", "Question", "Answer_label", *(f"Choice {letter}" for letter in LETTERS))
IMAGE_DIRS = ("images", "figures")


def strip_choice(text: str, letter: str) -> str:
    """`A:CT scan` / `A. CT scan` / `A) CT scan` -> `CT scan` (only the choice's own letter is dropped)."""
    return re.sub(rf"^\s*{letter}\s*[:.)]\s*", "", text, count=1).strip()


def canonicalize(raw: dict, split: str, image_dir: str, index: int) -> dict:
    choices = [text_field(raw, f"Choice {letter}", required=False) for letter in LETTERS]
    options = [strip_choice(c, letter) for c, letter in zip(choices, LETTERS) if c]
    if len(options) != sum(1 for c in choices[: len(options)] if c):
        raise RecordError("non-contiguous choices")
    if len(options) < 2:
        raise RecordError(f"too few choices: {len(options)} (at least 2)")
    if any(not option for option in options):
        raise RecordError("empty choice after its letter")
    label = text_field(raw, "Answer_label").upper()
    if label not in LETTERS[: len(options)]:
        raise RecordError(f"Answer_label {label!r} names no choice (choices A-{LETTERS[len(options) - 1]})")
    figure = text_field(raw, "Figure_path")
    return {
        "question_id": f"{NAME}-{split}-{index:06d}",
        "dataset": "PMC-VQA",
        "modality": "Mixed",
        "task": "multiple choice",
        "question": text_field(raw, "Question"),
        "options": options,
        "answer": label,
        "image": f"{image_dir}/{figure}" if image_dir else figure,
        "split": split,
    }


def read(root: str | Path) -> dict:
    """Every row of every CSV in the folder (see vqarad.new_result); a bad row is a named skip."""
    root = Path(root)
    paths = sorted(root.glob("*.csv"))
    if not paths:
        raise FileNotFoundError(f"{root}: no *.csv files (the PMC-VQA release folder)")
    result = new_result(root, [p.name for p in paths])
    image_dir = next((name for name in IMAGE_DIRS if (root / name).is_dir()), "")
    for path in paths:
        split = path.stem
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    skip(result, path.name, None, None, f"missing columns: {', '.join(missing)}")
                    continue
                for index, raw in enumerate(reader):
                    result["rows"] += 1
                    try:
                        result["records"].append({**canonicalize(raw, split, image_dir, index), "file": path.name})
                    except RecordError as error:
                        skip(result, path.name, f"{NAME}-{split}-{index:06d}", index, error.reason)
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            skip(result, path.name, None, None, f"unreadable CSV: {error}")
    return result
