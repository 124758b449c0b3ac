"""PathVQA (He et al., 2020): pathology questions -> canonical records.

Accepted layouts under the folder given as `--input` (searched recursively, files in sorted order):

* the hub's parquet files, e.g. `data/train-00000-of-00002.parquet`, with columns `image` ({"bytes",
  "path"}), `question`, `answer` (needs pyarrow; the image bytes are written out by `medr1 prepare`);
* the same rows as JSON lists or JSONL (`train.jsonl`, `validation.json`, ...) whose `image` is an image
  file path relative to the input folder (e.g. `images/train/train_0422.jpg`).

The split is the first word of the file name (`train`, `val`/`validation`, `test`); other files are
ignored and listed. A yes/no answer makes a two-option question (options ["yes", "no"], task `yes/no`);
every other question is kept open-ended (options [], answer text, task `open`) for a later verifier
reward. PathVQA has no question ids: a record's id is `pathvqa-<split>-<n>`, n counting the split's rows
in file order.
"""

from __future__ import annotations

import re
from pathlib import Path

from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import closed_fields, new_result, skip, table_rows, text_field

NAME = "pathvqa"
SPLIT_WORDS = {"train": "train", "val": "validation", "valid": "validation", "validation": "validation",
               "test": "test"}
SUFFIXES = (".parquet", ".jsonl", ".json")


def split_of(path: Path) -> str | None:
    """`train-00000-of-00002.parquet` -> "train", `val.jsonl` -> "validation"; None for other names."""
    return SPLIT_WORDS.get(re.split(r"[-_.]", path.name, maxsplit=1)[0].lower())


def image_of(raw: dict):
    """The row's image: a path (text) or the embedded bytes of a hub row."""
    value = raw.get("image")
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)) and value:
        return bytes(value)
    if not isinstance(value, str) or not value.strip():
        raise RecordError("missing field: image")
    return value.strip()


def canonicalize(raw: dict, split: str, number: int) -> dict:
    if not isinstance(raw, dict):
        raise RecordError(f"record is not an object: {type(raw).__name__}")
    fields = closed_fields(text_field(raw, "answer"))
    return {
        "question_id": f"{NAME}-{split}-{number:05d}",
        "dataset": "PathVQA",
        "modality": "Pathology",
        "task": "yes/no" if fields["options"] else "open",
        "question": text_field(raw, "question"),
        **fields,
        "image": image_of(raw),
        "split": split,
    }


def read(root: str | Path) -> dict:
    """Every row of the split files (see vqarad.new_result); a bad row is a named skip."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    chosen = [p for p in files if split_of(p)]
    if not chosen:
        raise FileNotFoundError(f"{root}: no train/val/test .parquet, .jsonl or .json files (the PathVQA layout)")
    result = new_result(root, [p.relative_to(root).as_posix() for p in chosen])
    result["ignored_files"] = [p.relative_to(root).as_posix() for p in files if not split_of(p)]
    numbers: dict[str, int] = {}
    for path in chosen:
        rel, split = path.relative_to(root).as_posix(), split_of(path)
        for index, raw in enumerate(table_rows(result, path, rel)):
            result["rows"] += 1
            if raw is None:
                continue
            number = numbers[split] = numbers.get(split, -1) + 1
            try:
                result["records"].append({**canonicalize(raw, split, number), "file": rel})
            except RecordError as error:
                skip(result, rel, f"{NAME}-{split}-{number:05d}", index, error.reason)
    return result
