"""SLAKE (Liu et al., 2021), English part: the released split files and image folder -> canonical records.

Released layout (the `Slake1.0` folder given as `--input`)::

    train.json  validate.json  test.json    JSON lists of {"img_id", "img_name", "question", "answer",
                                            "answer_type", "q_lang", "content_type", "modality", "location",
                                            "base_type", "qid"}
    imgs/<img_name>                         e.g. imgs/xmlab102/source.jpg

Only `q_lang == "en"` is kept (the Chinese half is counted as filtered). The split is the file's
(`validate.json` -> `validation`). A closed yes/no question becomes options ["yes", "no"] with the letter
answer; every other question is kept open-ended (options [], answer text).
"""

from __future__ import annotations

from pathlib import Path

from medr1.sources.omnimedvqa import RecordError
from medr1.sources.vqarad import closed_fields, load_json_list, new_result, skip, text_field

NAME = "slake"
SPLIT_FILES = {"train.json": "train", "validate.json": "validation", "test.json": "test"}
IMAGE_DIR = "imgs"


def canonicalize(raw: dict, split: str) -> dict:
    """One released English record -> a canonical record with its `split`; RecordError when unusable."""
    qid = text_field(raw, "qid")
    answer = text_field(raw, "answer")
    closed = (text_field(raw, "answer_type", required=False) or "").upper() == "CLOSED"
    return {
        "question_id": f"{NAME}-{qid}",
        "dataset": "SLAKE",
        "modality": text_field(raw, "modality", required=False) or "unknown",
        "task": text_field(raw, "content_type", required=False) or "unknown",
        "question": text_field(raw, "question"),
        **(closed_fields(answer) if closed else {"options": [], "answer": answer}),
        "image": f"{IMAGE_DIR}/{text_field(raw, 'img_name')}",
        "split": split,
    }


def read(root: str | Path) -> dict:
    """The English records of every split file present (see vqarad.new_result); bad records are named skips."""
    root = Path(root)
    present = [name for name in SPLIT_FILES if (root / name).is_file()]
    if not present:
        raise FileNotFoundError(f"{root}: none of {', '.join(SPLIT_FILES)} found (the SLAKE release folder)")
    result = new_result(root, present)
    for name in present:
        for index, raw in enumerate(load_json_list(result, root / name, name) or []):
            result["rows"] += 1
            qid = raw.get("qid") if isinstance(raw, dict) else None
            try:
                if not isinstance(raw, dict):
                    raise RecordError(f"record is not an object: {type(raw).__name__}")
                language = text_field(raw, "q_lang", required=False)
                if language != "en":
                    result["filtered"][f"q_lang {language or 'missing'} (only English is kept)"] += 1
                    continue
                result["records"].append({**canonicalize(raw, SPLIT_FILES[name]), "file": name})
            except RecordError as error:
                skip(result, name, None if qid is None else f"{NAME}-{qid}", index, error.reason)
    return result
