"""`medr1 prepare --benchmark NAME --input PATH [--benchmark NAME --input PATH ...] --out DATA_DIR`.

More benchmarks through the same harness: each released layout is read by its reader in `medr1/sources/`
(`BENCHMARKS`: name -> reader module) and written to one DATA_DIR that `medr1 eval` reads like the
OmniMedVQA one:

* `records.jsonl` - every kept record (canonical keys), sorted by question_id;
* `splits/benchmark/<name>/<split>.jsonl` - the multiple-choice records of each released split (yes/no
  questions as two options); `splits/benchmark/<name>-open/<split>.jsonl` - open-ended ones (options [],
  answer text), for a verifier reward;
* `prepare_report.json` - per benchmark: files read, rows read, records kept (multiple-choice / open),
  filtered rows by reason (left out by design: SLAKE's Chinese half, MMMU's other subjects), per-split
  sizes; and every skipped record with its file, id, index and reason (with --strict the first one fails);
* `manifest.json` - `image_root` (the folder holding every input and DATA_DIR; image paths are relative
  to it), the benchmarks and each file's sha256; written last.

Images a release embeds (parquet rows) are written to `DATA_DIR/images/<name>/`. Every image is checked
like OmniMedVQA's (missing, empty, not an image, truncated, too large: a named skip).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import time
from pathlib import Path

from medr1.data.prepare import PrepareError, _Run, _write_json, _Writer

log = logging.getLogger(__name__)

# --benchmark NAME -> the reader module in medr1/sources (each has `read(path) -> dict`, see vqarad.new_result).
BENCHMARKS = {
    "vqa-rad": "medr1.sources.vqarad",
    "slake": "medr1.sources.slake",
    "pathvqa": "medr1.sources.pathvqa",
    "pmc-vqa": "medr1.sources.pmcvqa",
    "mmmu": "medr1.sources.mmmu",
}
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"II*\x00", ".tif"),
          (b"MM\x00*", ".tif"), (b"RIFF", ".webp"))


def image_suffix(data: bytes) -> str:
    """The file suffix of embedded image bytes, from their magic number (".img" when unknown)."""
    return next((suffix for magic, suffix in _MAGIC if data.startswith(magic)), ".img")


def escapes(rel_path: str) -> bool:
    """An absolute path or one with a `..` component (never followed out of a release folder)."""
    return rel_path.startswith(("/", "\\")) or bool(re.match(r"[A-Za-z]:", rel_path)) or ".." in re.split(
        r"[\\/]", rel_path)


def read_benchmark(name: str, path: str | Path) -> dict:
    """The reader's result for one `--benchmark NAME --input PATH` pair; PrepareError when it cannot start."""
    if name not in BENCHMARKS:
        raise PrepareError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    path = Path(os.path.abspath(path))
    if not path.exists():
        raise PrepareError(f"--benchmark {name} --input {path}: no such file or folder")
    try:
        return importlib.import_module(BENCHMARKS[name]).read(path)
    except FileNotFoundError as error:
        raise PrepareError(f"--benchmark {name}: {error}") from error


def _place_image(image, base: Path, root: Path, out: Path, name: str, stem: str) -> str:
    """An image path relative to `root`: a path inside the release, or embedded bytes written under out."""
    if isinstance(image, bytes):
        path = out / "images" / name / (re.sub(r"[^\w.-]", "_", stem) + image_suffix(image))
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.stat().st_size != len(image) or path.read_bytes() != image:
            path.write_bytes(image)
    else:
        path = base / image
    return Path(os.path.relpath(path, root)).as_posix()


def place_records(run: _Run, name: str, result: dict, root: Path, out: Path, seen: set) -> dict:
    """{(group, split): [records]} from one reader result: image paths made relative to `root` and checked,
    duplicates and bad images skipped; `split` and `file` moved off the records."""
    base, groups = Path(result["base"]), {}
    for raw in result["records"]:
        record = dict(raw)
        split, file = record.pop("split"), f"{name}/{record.pop('file')}"
        many = "images" in record
        images = record.pop("images") if many else [record.pop("image")]
        if any(isinstance(i, str) and escapes(i) for i in images):
            run.skip(file, record["question_id"], None, "path escapes root")
            continue
        if record["question_id"] in seen:
            run.skip(file, record["question_id"], None, "duplicate question_id")
            continue
        suffixes = [f"_{k + 1}" for k in range(len(images))] if many else [""]
        paths = [_place_image(image, base, root, out, name, record["question_id"] + suffix)
                 for image, suffix in zip(images, suffixes)]
        problem = next((f"{p}: {path}" for path in paths if (p := run.image_problem(path)) is not None), None)
        if problem is not None:
            run.skip(file, record["question_id"], None, problem)
            continue
        seen.add(record["question_id"])
        record.update({"images": paths} if many else {"image": paths[0]})
        group = name if record["options"] else f"{name}-open"
        groups.setdefault((group, split), []).append(record)
    return groups


def benchmark_summary(path, result: dict, groups: dict, skipped: int) -> dict:
    splits: dict[str, dict] = {}
    for (group, split), records in sorted(groups.items()):
        kind = "open_ended" if group.endswith("-open") else "multiple_choice"
        splits.setdefault(split, {"multiple_choice": 0, "open_ended": 0})[kind] = len(records)
    return {
        "input": str(path), "files": result["files"], "ignored_files": result.get("ignored_files", []),
        "rows_read": result["rows"], "records_skipped": skipped,
        "filtered": dict(sorted(result["filtered"].items())),
        "multiple_choice": sum(s["multiple_choice"] for s in splits.values()),
        "open_ended": sum(s["open_ended"] for s in splits.values()), "splits": splits,
    }


def prepare_benchmarks(pairs, out: str | Path, strict: bool = False, max_image_pixels: int | None = None) -> dict:
    """Read each (name, path) pair and write DATA_DIR (see the module docstring); returns the report."""
    start = time.perf_counter()
    names = [name for name, _ in pairs]
    if not pairs or len(set(names)) != len(names):
        raise PrepareError(f"give each benchmark once as --benchmark NAME --input PATH (got {names})")
    out = Path(os.path.abspath(out))
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # a manifest only ever describes a finished run
    results = [(name, Path(os.path.abspath(path)), read_benchmark(name, path)) for name, path in pairs]
    root = Path(os.path.commonpath([str(out), *(r["base"] for _, _, r in results)]))
    run = _Run(root, strict, max_image_pixels)
    records, report, seen, writer = [], {}, set(), _Writer(out)
    for name, path, result in results:
        before = len(run.skipped)
        for s in result["skips"]:
            run.skip(f"{name}/{s['file']}", s["question_id"], s["index"], s["reason"])
        groups = place_records(run, name, result, root, out, seen)
        for (group, split), part in sorted(groups.items()):
            writer.write(f"splits/benchmark/{group}/{split}.jsonl", part)
            records += part
        report[name] = benchmark_summary(path, result, groups, len(run.skipped) - before)
    records.sort(key=lambda r: r["question_id"])
    writer.write("records.jsonl", records)
    full = {"source": "benchmarks", "benchmarks": report, "records_written": len(records),
            "images_checked": len(run.image_cache), "skipped_by_reason": dict(sorted(run.by_reason.items())),
            "skipped": run.skipped}
    _write_json(out / "prepare_report.json", full)
    _write_json(out / "manifest.json", {"image_root": str(root), "source": "benchmarks", "benchmarks": names,
                                        "files": dict(sorted(writer.hashes.items()))})
    for name, entry in report.items():
        log.info("prepare %s: %d rows read, %d multiple-choice and %d open-ended kept, %d skipped, %d filtered",
                 name, entry["rows_read"], entry["multiple_choice"], entry["open_ended"], entry["records_skipped"],
                 sum(entry["filtered"].values()))
    for reason, count in sorted(run.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        log.warning("prepare: skipped %d: %s", count, reason)
    log.info("prepare: %d records written to %s in %.1fs", len(records), out, time.perf_counter() - start)
    return full


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--benchmark NAME --input PATH` pairs (repeatable) for `medr1 prepare`'s parser."""
    parser.add_argument("--benchmark", action="append", choices=tuple(BENCHMARKS), metavar="NAME",
                        help=f"a benchmark to prepare instead of OmniMedVQA ({', '.join(BENCHMARKS)}); repeatable")
    parser.add_argument("--input", action="append", metavar="PATH", help="the release folder of each --benchmark")
    parser.set_defaults(prepare_benchmarks=main_from_args)  # what `medr1 prepare` runs for benchmark pairs


def main_from_args(args: argparse.Namespace) -> int:
    """`medr1 prepare` with benchmark pairs (or with neither --omnimedvqa nor a pair: an error)."""
    benchmarks, inputs = args.benchmark or [], args.input or []
    if args.omnimedvqa or not benchmarks or len(benchmarks) != len(inputs):
        log.error("prepare: give --omnimedvqa ROOT, or --benchmark NAME --input PATH pairs (one --input per "
                  "--benchmark), not both: got %d --benchmark and %d --input%s", len(benchmarks), len(inputs),
                  " with --omnimedvqa" if args.omnimedvqa else "")
        return 2
    if args.official_splits or args.image_disjoint:
        log.info("--official-splits and --image-disjoint do not apply to benchmarks: their released splits are kept")
    try:
        prepare_benchmarks(list(zip(benchmarks, inputs)), args.out, strict=args.strict,
                           max_image_pixels=args.max_image_pixels)
    except PrepareError as error:
        log.error("prepare failed: %s", error)
        return 1
    return 0
