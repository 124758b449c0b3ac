"""`medr1 prepare --dataset NAME --input PATH [--dataset NAME --input PATH ...] --out DATA_DIR`: text datasets.

Each released format is read by its reader in `medr1/sources/` (`TEXT_DATASETS`: name -> reader) and
written to one DATA_DIR laid out like the benchmarks' one (`medr1/data/benchmarks.py`):

* `records.jsonl` - every kept record (canonical keys, `modality` "text", no image), sorted by question_id;
  multiple-choice records have 2-10 `options` (letters A-J) and `answer` the letter, open-ended ones
  (HuatuoGPT-o1) `options: []` and `answer` the reference text;
* `splits/dataset/<name>/<split>.jsonl` - the dataset's released splits where it has them (from the file
  names or a `split` column: `train`, `validation`, `test`, MMLU's `dev`); records without one get seeded
  `train`/`test` splits, `--test-fraction` of each subject (`task`) in test
  (`medr1.data.splits.split_group`, group `<name>/<task>`, so they do not depend on input order);
* `prepare_report.json` - per dataset: files read and ignored, rows read, records kept (multiple-choice /
  open-ended), filtered rows by reason (left out by design: MMLU's other subjects, MMLU-Pro's other
  categories), skipped records, how its splits were made and their sizes, and notes (which `cop`
  numbering each MedMCQA file was read with); and every skipped record with its file, id, index and
  reason (with --strict the first one fails);
* `manifest.json` - the datasets, seed and each file's sha256 (`image_root` is DATA_DIR: no images);
  written last.

`medr1.data.records.prompt_dataset(DATA_DIR, "dataset/medqa/test")` reads a split back; a text record's
prompt has no image part.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import time
from pathlib import Path

from medr1.data.prepare import PrepareError, _Run, _write_json, _Writer
from medr1.data.splits import split_group

log = logging.getLogger(__name__)

# --dataset NAME -> (reader module in medr1/sources, its function `f(path) -> dict`, see vqarad.new_result).
TEXT_DATASETS = {
    "medqa": ("medr1.sources.medqa", "read"),
    "medmcqa": ("medr1.sources.medmcqa", "read"),
    "pubmedqa": ("medr1.sources.pubmedqa", "read"),
    "mmlu": ("medr1.sources.mmlu", "read"),
    "mmlu-pro": ("medr1.sources.mmlu_pro", "read"),
    "huatuo-verifiable": ("medr1.sources.huatuo", "read_verifiable"),
    "huatuo-sft": ("medr1.sources.huatuo", "read_sft"),
}
SEEDED = ("train", "test")


def read_dataset(name: str, path: str | Path) -> dict:
    """The reader's result for one `--dataset NAME --input PATH` pair; PrepareError when it cannot start."""
    if name not in TEXT_DATASETS:
        raise PrepareError(f"unknown dataset {name!r}; choose one of {', '.join(TEXT_DATASETS)}")
    path = Path(os.path.abspath(path))
    if not path.exists():
        raise PrepareError(f"--dataset {name} --input {path}: no such file or folder")
    module, function = TEXT_DATASETS[name]
    try:
        return getattr(importlib.import_module(module), function)(path)
    except FileNotFoundError as error:
        raise PrepareError(f"--dataset {name}: {error}") from error


def assign_splits(records: list[dict], name: str, seed: int, test_fraction: float) -> dict[str, list[dict]]:
    """{split: records sorted by question_id}: a record's own `split` where it has one, else a seeded
    train/test split of its subject (`task`)."""
    splits: dict[str, list[dict]] = {}
    unsplit: dict[str, list[dict]] = {}
    for record in records:
        if record.get("split"):
            splits.setdefault(record["split"], []).append(record)
        else:
            unsplit.setdefault(record["task"], []).append(record)
    for task, members in sorted(unsplit.items()):
        train, test = split_group(members, seed, test_fraction, group=f"{name}/{task}")
        for side, part in zip(SEEDED, (train, test)):
            splits.setdefault(side, []).extend(part)
    return {split: sorted(part, key=lambda r: r["question_id"]) for split, part in sorted(splits.items())}


def split_source(records: list[dict]) -> str:
    """"released", "seeded" or "released+seeded": where a dataset's splits came from."""
    kinds = {bool(record.get("split")) for record in records}
    return {frozenset({True}): "released", frozenset({False}): "seeded"}.get(frozenset(kinds), "released+seeded")


def place_records(run: _Run, name: str, result: dict, seen: set) -> list[dict]:
    """The reader's records minus duplicate ids (a named skip each), `file` moved off (kept: `split`)."""
    kept = []
    for raw in result["records"]:
        record = dict(raw)
        file = f"{name}/{record.pop('file')}"
        if record["question_id"] in seen:
            run.skip(file, record["question_id"], None, "duplicate question_id")
            continue
        seen.add(record["question_id"])
        kept.append(record)
    return kept


def dataset_summary(path: Path, result: dict, records: list[dict], splits: dict, skips: list[dict]) -> dict:
    files_skipped = sum(1 for s in skips if s["question_id"] is None and s["index"] is None)
    return {
        "input": str(path), "files": result["files"], "ignored_files": result.get("ignored_files", []),
        "files_skipped": files_skipped, "rows_read": result["rows"], "records_kept": len(records),
        "records_skipped": len(skips) - files_skipped, "filtered": dict(sorted(result["filtered"].items())),
        "multiple_choice": sum(1 for r in records if r["options"]),
        "open_ended": sum(1 for r in records if not r["options"]),
        "split_source": split_source(records) if records else "none",
        "splits": {split: len(part) for split, part in splits.items()}, "notes": result.get("notes", []),
    }


def prepare_text(pairs, out: str | Path, seed: int = 42, test_fraction: float = 0.2, strict: bool = False) -> dict:
    """Read each (name, path) pair and write DATA_DIR (see the module docstring); returns the report."""
    start = time.perf_counter()
    names = [name for name, _ in pairs]
    if not pairs or len(set(names)) != len(names):
        raise PrepareError(f"give each dataset once as --dataset NAME --input PATH (got {names})")
    if not 0.0 <= test_fraction <= 1.0:
        raise PrepareError(f"--test-fraction must be in [0, 1], got {test_fraction}")
    out = Path(os.path.abspath(out))
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # a manifest only ever describes a finished run
    results = [(name, Path(os.path.abspath(path)), read_dataset(name, path)) for name, path in pairs]
    run = _Run(out, strict, None)
    records, report, seen, writer = [], {}, set(), _Writer(out)
    for name, path, result in results:
        before = len(run.skipped)
        for s in result["skips"]:
            run.skip(f"{name}/{s['file']}", s["question_id"], s["index"], s["reason"])
        kept = place_records(run, name, result, seen)
        splits = assign_splits(kept, name, seed, test_fraction)
        report[name] = dataset_summary(path, result, kept, splits, run.skipped[before:])
        for split, part in splits.items():
            part = [{k: v for k, v in r.items() if k != "split"} for r in part]
            writer.write(f"splits/dataset/{name}/{split}.jsonl", part)
            records += part
    records.sort(key=lambda r: r["question_id"])
    writer.write("records.jsonl", records)
    record_skips = sum(entry["records_skipped"] for entry in report.values())
    full = {"source": "text", "seed": seed, "test_fraction": test_fraction, "datasets": report,
            "records_written": len(records), "records_skipped": record_skips,
            "files_skipped": sum(entry["files_skipped"] for entry in report.values()),
            "skipped_by_reason": dict(sorted(run.by_reason.items())), "skipped": run.skipped}
    _write_json(out / "prepare_report.json", full)
    _write_json(out / "manifest.json", {"image_root": str(out), "source": "text", "datasets": names, "seed": seed,
                                        "test_fraction": test_fraction, "files": dict(sorted(writer.hashes.items()))})
    for name, entry in report.items():
        log.info("prepare %s: %d rows read, %d multiple-choice and %d open-ended kept, %d skipped, %d filtered; "
                 "%s splits %s", name, entry["rows_read"], entry["multiple_choice"], entry["open_ended"],
                 entry["records_skipped"], sum(entry["filtered"].values()), entry["split_source"], entry["splits"])
    for reason, count in sorted(run.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        log.warning("prepare: skipped %d: %s", count, reason)
    log.info("prepare: %d records written to %s in %.1fs", len(records), out, time.perf_counter() - start)
    return full


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--dataset NAME` (repeatable, each paired with an `--input PATH`) for `medr1 prepare`'s parser."""
    parser.add_argument("--dataset", action="append", choices=tuple(TEXT_DATASETS), metavar="NAME",
                        help=f"a text dataset to prepare ({', '.join(TEXT_DATASETS)}), each with an --input PATH "
                             "(its file or folder); repeatable")
    parser.set_defaults(prepare_text=main_from_args)  # what `medr1 prepare` runs for dataset pairs


def main_from_args(args: argparse.Namespace) -> int:
    """`medr1 prepare` with `--dataset NAME --input PATH` pairs."""
    datasets, inputs = args.dataset or [], args.input or []
    if args.omnimedvqa or args.benchmark or not datasets or len(datasets) != len(inputs):
        log.error("prepare: give --dataset NAME --input PATH pairs (one --input per --dataset), without "
                  "--omnimedvqa or --benchmark: got %d --dataset and %d --input%s", len(datasets), len(inputs),
                  " with --omnimedvqa" if args.omnimedvqa else " with --benchmark" if args.benchmark else "")
        return 2
    if args.official_splits or args.image_disjoint or args.max_image_pixels:
        log.info("--official-splits, --image-disjoint and --max-image-pixels do not apply to text datasets")
    try:
        prepare_text(list(zip(datasets, inputs)), args.out, seed=args.seed, test_fraction=args.test_fraction,
                     strict=args.strict)
    except PrepareError as error:
        log.error("prepare failed: %s", error)
        return 1
    return 0
