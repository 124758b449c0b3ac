"""VQA-RAD (Lau et al., 2018, Scientific Data): the released JSON list and image folder -> canonical records.

Released layout (the folder given as `--input`)::

    VQA_RAD Dataset Public.json     a JSON list of {"qid", "image_name", "image_organ", "answer", "answer_type",
                                    "question_type", "question", "phrase_type", ...}
    VQA_RAD Image Folder/<image_name>

(any single `*.json` and an `images/` folder are accepted too). `phrase_type` `test_freeform`/`test_para`
is the test split, `freeform`/`para` the train split. A closed question answered yes or no becomes a
two-option question (options ["yes", "no"], answer "A" or "B"); every other question is kept open-ended
(options [], answer = the answer text) for a verifier reward.

This module also holds the small pieces the other benchmark readers share (`text_field`, `closed_fields`,
`new_result`, `skip`, `table_rows`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from medr1.sources.omnimedvqa import RecordError

NAME = "vqa-rad"
JSON_NAME = "VQA_RAD Dataset Public.json"
IMAGE_DIRS = ("VQA_RAD Image Folder", "images")
YES_NO = ("yes", "no")
PHRASE_SPLITS = {"freeform": "train", "para": "train", "test_freeform": "test", "test_para": "test"}


# ---- shared by the benchmark readers ------------------------------------------------------------

def text_field(raw: dict, key: str, required: bool = True) -> str | None:
    """`raw[key]` as stripped text (numbers become text); RecordError when required and absent or blank."""
    value = raw.get(key)
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)):
        value = str(value)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"field {key} is not text: {type(value).__name__}")
    value = value.strip() if value else None
    if required and not value:
        raise RecordError(f"missing field: {key}")
    return value or None


def closed_fields(answer: str) -> dict:
    """A yes/no answer -> {"options": ["yes", "no"], "answer": "A"|"B"}; any other -> open-ended
    {"options": [], "answer": text}."""
    key = answer.strip().casefold()
    if key in YES_NO:
        return {"options": list(YES_NO), "answer": "AB"[YES_NO.index(key)]}
    return {"options": [], "answer": answer.strip()}


def new_result(base: Path, files: list[str]) -> dict:
    """What every reader returns: records (canonical keys plus `split` and the `file` read; `image` relative
    to `base`, or the image's bytes when the release embeds them; `images` for several), skips ({file,
    question_id, index, reason}), filtered (reason -> count: records left out by design, not bad), the files
    read (relative to `base`) and the rows seen."""
    return {"base": str(base), "records": [], "skips": [], "filtered": Counter(), "files": files, "rows": 0}


def skip(result: dict, file: str, question_id, index: int | None, reason: str) -> None:
    result["skips"].append({"file": file, "question_id": question_id, "index": index, "reason": reason})


def load_json_list(result: dict, path: Path, rel: str) -> list | None:
    """A JSON list from `path`, or None after recording the whole file as a skip."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:
        skip(result, rel, None, None, f"unreadable JSON: {error}")
        return None
    if not isinstance(data, list):
        skip(result, rel, None, None, f"not a JSON list: {type(data).__name__}")
        return None
    return data


def table_rows(result: dict, path: Path, rel: str):
    """Rows (dicts) of a `.json` list, a `.jsonl` file or a `.parquet` file (pyarrow, read in batches; an
    image column holds {"bytes", "path"}). An unreadable file is one skip; a bad JSONL line is one skip and
    comes out as None, so that callers count it as a row read."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            skip(result, rel, None, None, "parquet needs pyarrow (pip install pyarrow), or give the JSON form")
            return
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=256)
            for batch in batches:
                yield from batch.to_pylist()
        except (OSError, ValueError) as error:  # pyarrow's errors derive from these
            skip(result, rel, None, None, f"unreadable parquet: {error}")
        return
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as error:
                    skip(result, rel, None, index, f"unreadable JSON line: {error}")
                    yield None  # still a row read
        return
    yield from load_json_list(result, path, rel) or []


# ---- VQA-RAD --------------------------------------------------------------------------------------

def metadata_file(root: Path) -> Path:
    """The released JSON (by name, else the only `*.json` in the folder); `root` may be the file itself."""
    if root.is_file():
        return root
    named = root / JSON_NAME
    if named.is_file():
        return named
    found = sorted(root.glob("*.json"))
    if len(found) != 1:
        raise FileNotFoundError(f"{root}: expected {JSON_NAME!r} (or a single *.json), found {len(found)} JSON files")
    return found[0]


def image_folder(root: Path) -> str:
    """The image folder relative to `root`: the released name, else `images/`, else `root` itself."""
    return next((name for name in IMAGE_DIRS if (root / name).is_dir()), "")


def canonicalize(raw: dict, image_dir: str) -> dict:
    """One released record -> a canonical record with its `split`; RecordError when unusable."""
    if not isinstance(raw, dict):
        raise RecordError(f"record is not an object: {type(raw).__name__}")
    qid = text_field(raw, "qid")
    phrase = text_field(raw, "phrase_type")
    if phrase not in PHRASE_SPLITS:
        raise RecordError(f"unknown phrase_type: {phrase!r}")
    answer = text_field(raw, "answer")
    closed = (text_field(raw, "answer_type", required=False) or "").upper() == "CLOSED"
    fields = closed_fields(answer) if closed else {"options": [], "answer": answer}
    image = text_field(raw, "image_name")
    return {
        "question_id": f"{NAME}-{qid}",
        "dataset": "VQA-RAD",
        "modality": "Radiology",
        "task": text_field(raw, "question_type", required=False) or "unknown",
        "question": text_field(raw, "question"),
        **fields,
        "image": f"{image_dir}/{image}" if image_dir else image,
        "split": PHRASE_SPLITS[phrase],
    }


def read(root: str | Path) -> dict:
    """Every record of the release (see `new_result`); a bad record is a named skip."""
    root = Path(root)
    path = metadata_file(root)
    folder = path.parent
    rel = path.name
    result = new_result(folder, [rel])
    data = load_json_list(result, path, rel)
    image_dir = image_folder(folder)
    for index, raw in enumerate(data or []):
        result["rows"] += 1
        try:
            record = {**canonicalize(raw, image_dir), "file": rel}
        except RecordError as error:
            qid = raw.get("qid") if isinstance(raw, dict) else None
            skip(result, rel, None if qid is None else f"{NAME}-{qid}", index, error.reason)
            continue
        result["records"].append(record)
    return result
