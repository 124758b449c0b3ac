"""Splits -> model inputs: read a split written by `medr1 prepare`, attach prompts and lazily loaded images.

A split is named by its path under `DATA_DIR/splits/` without the suffix, e.g. `modality/CT/train` or
`task/Lesion Grading/test` (OmniMedVQA's, chosen with --modality/--task), `dataset/medqa/train` (the text
datasets of `medr1 prepare --dataset`, chosen with --split). Images are decoded only when a row is read, so a
25k-question split costs no image memory up front; text records have none.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medr1.sources.omnimedvqa import MODALITIES, MULTI_IMAGE_KEY, TASKS, record_images


def split_name(modality: str | None = None, task: str | None = None, part: str = "train",
               split: str | None = None) -> str:
    """`modality/CT/train`, `task/Disease Diagnosis/train`, or a split named in full (`split`, e.g.
    `dataset/medqa/train`); exactly one of modality/task/split. `split` is the training split: `part` "train"
    gives it as named, any other part its sibling in the same folder (`dataset/medqa/test` for "test")."""
    if sum(value is not None for value in (modality, task, split)) != 1:
        raise ValueError("name exactly one of --modality, --task or --split")
    if split is not None:
        check_split_name(split)
        if part == "train":
            return split
        folder = split.rpartition("/")[0]
        return f"{folder}/{part}" if folder else part
    if modality is not None:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
        return f"modality/{modality}/{part}"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return f"task/{task}/{part}"


def check_split_name(split: str) -> str:
    """`split` when it names a split as `medr1 prepare` writes them (a relative path under `splits/`, no
    `.jsonl`); ValueError otherwise."""
    parts = split.split("/") if isinstance(split, str) else [""]
    if not split or split.startswith("/") or split.endswith(".jsonl") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"--split {split!r}: name a split by its path under DATA_DIR/splits without .jsonl, "
                         "e.g. dataset/medqa/train or modality/CT/train")
    return split


def available_splits(data_dir: str | Path) -> list[str]:
    """The names of the split files under `DATA_DIR/splits`, sorted."""
    root = Path(data_dir) / "splits"
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.jsonl")) if root.is_dir() else []


def split_path(data_dir: str | Path, split: str) -> Path:
    path = Path(data_dir) / "splits" / f"{split}.jsonl"
    if not path.is_file():
        known = available_splits(data_dir)
        if not known:
            raise FileNotFoundError(f"split {split!r} not found at {path}: {data_dir} has no splits; run `medr1 "
                                    f"prepare --omnimedvqa ROOT --out {data_dir}` (or --dataset NAME --input PATH) "
                                    "first")
        shown = ", ".join(known[:12]) + (f", ... ({len(known)} in all)" if len(known) > 12 else "")
        raise FileNotFoundError(f"split {split!r} not found at {path}; {data_dir} has: {shown}")
    return path


def read_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {data_dir} was not written by `medr1 prepare`")
    return json.loads(path.read_text(encoding="utf-8"))


def manifest_sha256(data_dir: str | Path) -> str:
    """Identifies the exact splits a run used (the manifest lists every split file's sha256)."""
    return hashlib.sha256((Path(data_dir) / "manifest.json").read_bytes()).hexdigest()


def read_records(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_split(data_dir: str | Path, split: str, limit: int | None = None) -> list[dict]:
    records = read_records(split_path(data_dir, split))
    return records[:limit] if limit else records


def image_loader(data_dir: str | Path, image_size: int | None):
    """A function mapping a record's relative image path to the RGB image the model sees."""
    from medr1.data.images import load_image

    root = Path(read_manifest(data_dir)["image_root"])

    def load(rel_path: str):
        return load_image(root / rel_path, size=image_size)

    return load


def image_size_reader(data_dir: str | Path, image_size: int | None):
    """A function mapping a record's relative image path to the (width, height) the model sees, without
    decoding: `image_size` square when images are resized, else the size in the file's header."""
    from medr1.data.images import image_dimensions

    if image_size:
        return lambda rel_path: (image_size, image_size)
    root = Path(read_manifest(data_dir)["image_root"])
    return lambda rel_path: image_dimensions(root / rel_path)


def prompt_rows(records: list[dict], style="think", stage="train", zero_shot=False, completion=None) -> list[dict]:
    """The dataset rows of `prompt_dataset`, images not yet attached: each record's own columns, `prompt`,
    and its image path as `image_path`; when any record has several images, every row has `image_paths`
    (a list) instead, and images are attached as `images` (TRL's multi-image column); a split of text records
    (no `image`) has neither."""
    from medr1.data.prompts import build_conversation

    multi = any(MULTI_IMAGE_KEY in record for record in records)
    text_only = not any("image" in record or MULTI_IMAGE_KEY in record for record in records)
    rows = []
    for record in records:
        row = {key: value for key, value in record.items() if key not in ("image", MULTI_IMAGE_KEY)}
        if multi:
            row["image_paths"] = record_images(record)
        elif not text_only:
            row["image_path"] = record["image"]
        row["prompt"] = build_conversation(record, style=style, stage=stage, zero_shot=zero_shot)
        if completion is not None:
            row["completion"] = [{"role": "assistant", "content": completion(row)}]
        rows.append(row)
    return rows


def prompt_dataset(data_dir, split, style="think", stage="train", image_size=384, limit=None, zero_shot=False,
                   completion=None, keep=None):
    """A `datasets.Dataset` with TRL's columns: `prompt` (conversation), `image` (PIL, decoded on access) or,
    for a split with multi-image records, `images` (a list of PIL, in prompt order), and the record's own
    columns (`answer`, `options`, ...) which reach reward functions as keyword args.
    `completion(record) -> str`, when given, adds the assistant turn SFT trains on; `keep(record) -> bool`,
    when given, selects records (before `limit`)."""
    from datasets import Dataset

    records = load_split(data_dir, split)
    if keep is not None:
        records = [r for r in records if keep(r)]
    records = records[:limit] if limit else records
    if not records:
        raise ValueError(f"split {split!r} in {data_dir} is empty")
    rows = prompt_rows(records, style=style, stage=stage, zero_shot=zero_shot, completion=completion)
    dataset = Dataset.from_list(rows)
    if "image_path" not in dataset.column_names and "image_paths" not in dataset.column_names:
        return dataset  # text records: nothing to attach
    load = image_loader(data_dir, image_size)

    def attach_images(batch):
        if "image_paths" in batch:
            batch["images"] = [[load(path) for path in paths] for paths in batch["image_paths"]]
        else:
            batch["image"] = [load(path) for path in batch["image_path"]]
        return batch

    return dataset.with_transform(attach_images)
