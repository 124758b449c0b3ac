"""`medr1 prepare`: raw OmniMedVQA metadata -> canonical records, per-group splits, a report, a manifest.

Reads `ROOT/QA_information/{Open-access,Restricted-access}/*.json` (sorted) and writes under DATA_DIR:

* `records.jsonl` - one canonical record (medr1.sources.omnimedvqa.CANONICAL_KEYS) per valid question, sorted
  by question_id, `json.dumps(record, ensure_ascii=False, sort_keys=True)` one per line.
* `splits/modality/<modality>/{train,test}.jsonl`, `splits/task/<task>/{train,test}.jsonl` - full
  canonical records in the same serialization (self-contained for training and evaluation); every
  group of MODALITIES/TASKS is written, empty when it has no records.
* `prepare_report.json` - counts, skips (each `{"file", "question_id", "index", "reason"}`), skip
  counts per reason, per-group split sizes and images shared between train and test.
* `manifest.json` - `{"image_root", "seed", "image_disjoint", "source", "files": {path: sha256}}`,
  written last (and removed first), so a manifest always describes a complete run.

A multi-image record (`images`, e.g. CT slices) has every image checked (a bad one skips it, the reason
naming which); its images move together under --image-disjoint. Bad input never crashes the run and never
disappears silently: every dropped file, record or official entry is a named skip in the report (with
--strict, the first one raises PrepareError).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import time
from collections import Counter
from pathlib import Path

from medr1.data.images import check_image
from medr1.data.splits import GROUPS, make_splits, shared_images
from medr1.sources.omnimedvqa import (
    LETTERS,
    MODALITIES,
    TASKS,
    RecordError,
    canonical_modality,
    canonical_task,
    canonicalize,
    format_problem,
    normalize_text,
    parse_problem,
    parse_solution,
    record_images,
)

log = logging.getLogger(__name__)

RAW_SUBDIRS = ("Open-access", "Restricted-access")
SPLITS = ("train", "test")
# Split kind -> (directory under DATA_DIR/splits and key in the record, directory in the release).
OFFICIAL_DIRS = {"modality": "modality", "task": "question_type"}


class PrepareError(RuntimeError):
    """A problem with the input that --strict turns into a failure (or an input that cannot be used)."""


def reason_key(reason: str) -> str:
    """The category of a skip reason, for counting: the text before the first ':' or ' ('."""
    return re.split(r":| \(", reason, maxsplit=1)[0].strip()


def raw_json_files(root: Path) -> list[Path]:
    """The metadata files, Open-access then Restricted-access, each in sorted order."""
    files: list[Path] = []
    for sub in RAW_SUBDIRS:
        folder = Path(root) / "QA_information" / sub
        if folder.is_dir():
            files.extend(sorted(p for p in folder.glob("*.json") if p.is_file()))
    return files


class _Run:
    """Skip bookkeeping and the per-image check cache shared by the raw and the official readers."""

    def __init__(self, root: Path, strict: bool, max_image_pixels: int | None):
        self.root = root
        self.strict = strict
        self.image_kwargs = {} if max_image_pixels is None else {"max_pixels": max_image_pixels}
        self.skipped: list[dict] = []
        self.by_reason: Counter[str] = Counter()
        self.image_cache: dict[str, str | None] = {}

    def skip(self, file: str, question_id, index: int | None, reason: str) -> None:
        if question_id is not None and not isinstance(question_id, str):
            question_id = str(question_id) if isinstance(question_id, (int, float)) else None
        if self.strict:
            where = f"question_id {question_id!r}" if question_id is not None else f"record #{index}"
            if index is None and question_id is None:
                where = "whole file"
            raise PrepareError(f"{file}: {where}: {reason}")
        self.skipped.append({"file": file, "question_id": question_id, "index": index, "reason": reason})
        self.by_reason[reason_key(reason)] += 1

    def record_problem(self, record: dict) -> str | None:
        """The first bad image of a record; a multi-image record's reason also names which one."""
        paths = record_images(record)
        for i, rel_path in enumerate(paths, 1):
            problem = self.image_problem(rel_path)
            if problem is not None:
                return problem if len(paths) == 1 else f"{problem}: image {i} of {len(paths)}, {rel_path}"
        return None

    def image_problem(self, rel_path: str) -> str | None:
        try:
            return self.image_cache[rel_path]
        except KeyError:
            problem = check_image(self.root, rel_path, **self.image_kwargs)
            self.image_cache[rel_path] = problem
            return problem


def _load_json(run: _Run, path: Path, rel: str) -> list | None:
    """A JSON list from path, or None after recording the whole file as skipped."""
    try:
        data = json.loads(path.read_bytes())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        run.skip(rel, None, None, f"malformed JSON: {exc}")
        return None
    except OSError as exc:
        run.skip(rel, None, None, f"unreadable file: {exc.strerror or exc}")
        return None
    if not isinstance(data, list):
        run.skip(rel, None, None, f"malformed JSON: top level is {type(data).__name__}, not a list")
        return None
    return data


def _read_raw(run: _Run, stats: Counter) -> list[dict]:
    """Valid canonical records from the raw metadata, in file order (first of a duplicate id kept)."""
    root = run.root
    kept: list[dict] = []
    first_file: dict[str, str] = {}
    for path in raw_json_files(root):
        rel = path.relative_to(root).as_posix()
        data = _load_json(run, path, rel)
        if data is None:
            stats["files_skipped"] += 1
            continue
        stats["files_read"] += 1
        stats["records_read"] += len(data)
        for index, raw in enumerate(data):
            question_id = raw.get("question_id") if isinstance(raw, dict) else None
            try:
                record = canonicalize(raw)
            except RecordError as exc:
                run.skip(rel, question_id, index, exc.reason)
                continue
            problem = run.record_problem(record)
            if problem is not None:
                run.skip(rel, record["question_id"], index, problem)
                continue
            # A question_id belongs to the first record that is kept with it.
            if record["question_id"] in first_file:
                run.skip(
                    rel,
                    record["question_id"],
                    index,
                    f"duplicate question_id (first kept from {first_file[record['question_id']]})",
                )
                continue
            first_file[record["question_id"]] = rel
            kept.append(record)
    stats["records_skipped"] = stats["records_read"] - len(kept)
    return kept


# ----------------------------------------------------------------------------------------------
# Importing the released Med-R1 split files.
# ----------------------------------------------------------------------------------------------


def _norm_image(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def official_files(split_dir: Path) -> tuple[list[tuple[str, str, str, Path]], list[str]]:
    """([(kind, group, split, path)], ignored) for the release's `modality/` and `question_type/` files.

    File names use the raw group strings (`CT(Computed Tomography)_train.json`); they go through the
    same tolerant mapping as raw records. `*_filtered_test.json` (overlaps the modality train set) and
    files whose name maps to no group are ignored with a logged note.
    """
    resolve = {"modality": canonical_modality, "task": canonical_task}
    found, ignored = [], []
    for kind, sub in OFFICIAL_DIRS.items():
        for split in SPLITS:
            folder = split_dir / sub / split
            if not folder.is_dir():
                log.warning("official splits: no folder %s", folder)
                continue
            for path in sorted(folder.glob("*.json")):
                rel = path.relative_to(split_dir).as_posix()
                suffix = f"_{split}.json"
                if path.name.endswith("_filtered_test.json"):
                    log.info(
                        "official splits: ignoring %s (the filtered test set overlaps the train set)", rel
                    )
                    ignored.append(rel)
                    continue
                try:
                    if not path.name.endswith(suffix):
                        raise RecordError(f"name does not end in {suffix}")
                    group = resolve[kind](path.name[: -len(suffix)])
                except RecordError as exc:
                    log.warning("official splits: ignoring %s (%s)", rel, exc.reason)
                    ignored.append(rel)
                    continue
                found.append((kind, group, split, path))
    return found, ignored


class _RawIndex:
    """(image, question) lookup of raw canonical records, for matching released split entries."""

    def __init__(self, records: list[dict]):
        self.by_image: dict[str, list[tuple[str, str, dict]]] = {}
        for record in (r for r in records if "image" in r):  # released entries are single-image
            entry = (
                normalize_text(record["question"]) + " a)",
                normalize_text(format_problem(record["question"], record["options"])),
                record,
            )
            self.by_image.setdefault(_norm_image(record["image"]), []).append(entry)

    def match(self, image: str, problem: str, used: set[str]) -> dict | None:
        candidates = self.by_image.get(_norm_image(image))
        if not candidates:
            return None
        norm = normalize_text(problem)
        same_question = [c for c in candidates if norm.startswith(c[0])]
        if not same_question:
            return None
        exact = [c[2] for c in same_question if c[1] == norm]
        if exact:
            pool = exact
        else:
            option_sets = {tuple(normalize_text(o) for o in c[2]["options"]) for c in same_question}
            if len(option_sets) == 1:
                pool = [c[2] for c in same_question]
            else:  # several raw questions share image+question: disambiguate by the option list
                try:
                    _, options = parse_problem(problem)
                except RecordError:
                    return None
                wanted = tuple(normalize_text(o) for o in options)
                pool = [
                    c[2] for c in same_question if tuple(normalize_text(o) for o in c[2]["options"]) == wanted
                ]
                if not pool:
                    return None
        for record in pool:  # identical duplicates: use each raw record once per file where possible
            if record["question_id"] not in used:
                return record
        return pool[0]


def _majority(counter: Counter) -> str | None:
    if not counter:
        return None
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _import_official(run: _Run, split_dir: Path, raw_records: list[dict], stats: Counter, report: dict):
    """Split lists from the released files: {kind: {group: {split: [records]}}} plus reconstructed records."""
    files, ignored = official_files(split_dir)
    if not files:
        raise PrepareError(f"no official split files under {split_dir}")
    index = _RawIndex(raw_records)
    # Fallbacks for the attribute a reconstructed entry's file name does not give.
    by_image: dict[str, dict[str, Counter]] = {}
    by_dataset: dict[str, dict[str, Counter]] = {}
    for record in raw_records:
        for key in ("modality", "task"):
            if "image" in record:
                by_image.setdefault(_norm_image(record["image"]), {}).setdefault(key, Counter())[record[key]] += 1
            by_dataset.setdefault(record["dataset"], {}).setdefault(key, Counter())[record[key]] += 1

    placed: list[tuple[str, str, str, str, object]] = []  # (kind, group, split, file, record or key)
    recon: dict[tuple[str, str], dict] = {}  # (image, problem) -> facts for a reconstructed record
    counts: dict[str, dict] = {}
    answer_mismatches = 0
    for kind, group, split, path in files:
        rel = path.relative_to(split_dir).as_posix()
        file_counts = counts[rel] = {"entries": 0, "written": 0, "matched": 0, "reconstructed": 0}
        data = _load_json(run, path, rel)
        if data is None:
            stats["official_files_skipped"] += 1
            continue
        file_counts["entries"] = len(data)
        used: set[str] = set()
        skips_before = len(run.skipped)
        for i, entry in enumerate(data):
            if not isinstance(entry, dict):
                run.skip(rel, None, i, f"entry is not an object: {type(entry).__name__}")
                continue
            image, problem, solution = entry.get("image"), entry.get("problem"), entry.get("solution")
            missing = [
                k for k, v in (("image", image), ("problem", problem), ("solution", solution)) if not v
            ]
            if missing or not all(isinstance(v, str) for v in (image, problem, solution)):
                run.skip(
                    rel, None, i, f"missing field: {', '.join(missing) or 'non-text image/problem/solution'}"
                )
                continue
            try:
                letter = parse_solution(solution)
            except RecordError as exc:
                run.skip(rel, None, i, exc.reason)
                continue
            record = index.match(image, problem, used)
            if record is not None:
                used.add(record["question_id"])
                if record["answer"] != letter:
                    answer_mismatches += 1
                    record = dict(record, answer=letter)  # the released file is what was trained/tested
                file_counts["matched"] += 1
                placed.append((kind, group, split, rel, record))
                continue
            key = (image, problem)
            facts = recon.get(key)
            try:
                if facts is None:
                    question, options = parse_problem(problem)
                else:
                    options = facts["options"]
                if LETTERS.index(letter) >= len(options):
                    raise RecordError(f"answer {letter} beyond the {len(options)} options")
                if facts is not None and facts["answer"] != letter:
                    raise RecordError(
                        f"conflicting answer: {letter} here, {facts['answer']} in an earlier entry"
                        " with the same image and problem"
                    )
            except RecordError as exc:
                run.skip(rel, None, i, exc.reason)
                continue
            if facts is None:
                problem_msg = run.image_problem(image)
                if problem_msg is not None:
                    run.skip(rel, None, i, problem_msg)
                    continue
                digest = hashlib.sha1((image + problem).encode("utf-8")).hexdigest()[:12]
                parts = _norm_image(image).split("/")
                facts = recon[key] = {
                    "question_id": f"official-{digest}",
                    "dataset": parts[1] if len(parts) > 2 else "",
                    "question": question,
                    "options": options,
                    "answer": letter,
                    "image": image,
                    "modality": Counter(),
                    "task": Counter(),
                }
            facts[kind][group] += 1
            file_counts["reconstructed"] += 1
            placed.append((kind, group, split, rel, key))
        stats["official_entries_skipped"] += len(run.skipped) - skips_before

    reconstructed: dict[tuple[str, str], dict] = {}
    for key, facts in recon.items():
        record = {k: v for k, v in facts.items() if k not in ("modality", "task")}
        for attr in ("modality", "task"):
            value = _majority(facts[attr])
            if value is None:  # the entry was only in the other kind's files: infer from raw records
                hints = by_image.get(_norm_image(facts["image"]), {}).get(attr) or by_dataset.get(
                    facts["dataset"], {}
                ).get(attr)
                value = _majority(hints or Counter())
                stats[f"reconstructed_{attr}_inferred" if value else f"reconstructed_{attr}_unknown"] += 1
            record[attr] = value
        reconstructed[key] = record

    splits: dict[str, dict[str, dict[str, list[dict]]]] = {
        kind: {g: {s: [] for s in SPLITS} for g in groups}
        for kind, groups in (("modality", MODALITIES), ("task", TASKS))
    }
    for kind, group, split, rel, item in placed:
        record = item if isinstance(item, dict) else reconstructed[item]
        splits[kind][group][split].append(record)
        counts[rel]["written"] += 1
    stats["official_matched"] = sum(c["matched"] for c in counts.values())
    stats["official_reconstructed_entries"] = sum(c["reconstructed"] for c in counts.values())
    stats["reconstructed"] = len(reconstructed)
    report["official_counts"] = counts
    report["official_ignored_files"] = ignored
    report["official_answer_mismatches"] = answer_mismatches
    return splits, list(reconstructed.values())


# ----------------------------------------------------------------------------------------------
# Writing.
# ----------------------------------------------------------------------------------------------


class _Writer:
    """Writes JSONL files, serializing each record once, and remembers each file's sha256."""

    def __init__(self, out: Path):
        self.out = out
        self.lines: dict[int, bytes] = {}
        self.hashes: dict[str, str] = {}

    def line(self, record: dict) -> bytes:
        key = id(record)
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        return line

    def write(self, rel: str, records: list[dict]) -> None:
        data = b"".join([self.line(r) for r in records])
        path = os.path.join(self.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        self.hashes[rel] = hashlib.sha256(data).hexdigest()


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def prepare(
    omnimedvqa: str | Path,
    out: str | Path,
    seed: int = 42,
    image_disjoint: bool = False,
    strict: bool = False,
    official_splits: str | Path | None = None,
    test_fraction: float = 0.2,
    max_image_pixels: int | None = None,
) -> dict:
    """Run the whole stage and return the report (also written to `out/prepare_report.json`)."""
    start = time.perf_counter()
    root = Path(os.path.abspath(omnimedvqa))
    out = Path(out)
    if not root.is_dir():
        raise PrepareError(f"OmniMedVQA root {root} is not a directory")
    if not raw_json_files(root) and official_splits is None:
        raise PrepareError(f"no metadata files under {root}/QA_information/{{{','.join(RAW_SUBDIRS)}}}")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        manifest_path.unlink()  # a manifest only ever describes a finished run

    run = _Run(root, strict, max_image_pixels)
    stats: Counter = Counter(files_read=0, files_skipped=0, records_read=0, records_skipped=0)
    records = _read_raw(run, stats)
    report: dict = {}
    if official_splits is not None:
        source = "official"
        if image_disjoint:
            log.info("--image-disjoint has no effect with --official-splits (the released splits are used)")
        splits, extra = _import_official(run, Path(official_splits), records, stats, report)
        records = records + extra
    else:
        source = "medr1-split"
        splits = {kind: make_splits(records, kind, seed, image_disjoint, test_fraction) for kind in GROUPS}
    records.sort(key=lambda r: r["question_id"])

    writer = _Writer(out)
    writer.write("records.jsonl", records)
    split_report: dict = {}
    for kind, groups in splits.items():
        split_report[kind] = {}
        for group, sides in groups.items():
            for split in SPLITS:
                writer.write(f"splits/{kind}/{group}/{split}.jsonl", sides[split])
            split_report[kind][group] = {
                "train": len(sides["train"]),
                "test": len(sides["test"]),
                "shared_images": shared_images(sides["train"], sides["test"]),
            }

    n_raw_kept = len(records) - stats["reconstructed"]
    report.update(
        {
            "source": source,
            "seed": seed,
            "image_disjoint": image_disjoint,
            "test_fraction": test_fraction,
            "files_read": stats["files_read"],
            "files_skipped": stats["files_skipped"],
            "records_read": stats["records_read"],
            "records_kept": n_raw_kept,
            "records_skipped": stats["records_skipped"],
            "records_written": len(records),
            "reconstructed": stats["reconstructed"],
            "images_checked": len(run.image_cache),
            "skipped_by_reason": dict(sorted(run.by_reason.items())),
            "skipped": run.skipped,
            "counts": {
                "modality": dict(Counter(r["modality"] for r in records)),
                "task": dict(Counter(r["task"] for r in records)),
                "dataset": dict(sorted(Counter(r["dataset"] for r in records).items())),
            },
            "splits": split_report,
        }
    )
    for key in sorted(stats):
        if key.startswith(("official_", "reconstructed_")):
            report[key] = stats[key]
    for kind, names in (("modality", MODALITIES), ("task", TASKS)):
        report["counts"][kind] = {name: report["counts"][kind].get(name, 0) for name in names}
    _write_json(out / "prepare_report.json", report)
    _write_json(
        manifest_path,
        {
            "image_root": str(root),
            "seed": seed,
            "image_disjoint": image_disjoint,
            "source": source,
            "files": dict(sorted(writer.hashes.items())),
        },
    )

    log.info(
        "prepare: %d files read (%d skipped), %d records read, %d kept, %d skipped, %d reconstructed, "
        "%d images checked, %d records written to %s in %.1fs",
        stats["files_read"],
        stats["files_skipped"],
        stats["records_read"],
        n_raw_kept,
        len(run.skipped),
        stats["reconstructed"],
        len(run.image_cache),
        len(records),
        out,
        time.perf_counter() - start,
    )
    for reason, count in sorted(run.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        log.warning("prepare: skipped %d: %s", count, reason)
    return report


def build_parser() -> argparse.ArgumentParser:
    from medr1.data.benchmarks import add_arguments as add_benchmark_arguments
    from medr1.data.text_sources import add_arguments as add_text_arguments

    parser = argparse.ArgumentParser(prog="medr1 prepare", description=__doc__.split("\n")[0])
    parser.add_argument("--omnimedvqa", metavar="ROOT", help="OmniMedVQA root (Images/, QA_information/)")
    add_benchmark_arguments(parser)  # --benchmark NAME --input PATH pairs (medr1/data/benchmarks.py)
    add_text_arguments(parser)  # --dataset NAME --input PATH pairs (medr1/data/text_sources.py)
    parser.add_argument("--out", required=True, metavar="DATA_DIR", help="output folder")
    parser.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    parser.add_argument("--image-disjoint", action="store_true", help="keep every image on one side of each split")
    parser.add_argument("--strict", action="store_true", help="fail on the first bad file, record or image")
    parser.add_argument(
        "--official-splits",
        metavar="DIR",
        help="import the released Med-R1 splits (DIR/modality/..., DIR/question_type/...) instead of splitting",
    )
    parser.add_argument("--test-fraction", type=float, default=0.2, help="test share per group (default 0.2)")
    parser.add_argument("--max-image-pixels", type=int, default=None, help="reject images with more pixels than this")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.benchmark or args.input or args.dataset or not args.omnimedvqa:  # benchmarks or text_sources.main_from_args
        return (args.prepare_text if args.dataset else args.prepare_benchmarks)(args)
    try:
        prepare(
            args.omnimedvqa,
            args.out,
            seed=args.seed,
            image_disjoint=args.image_disjoint,
            strict=args.strict,
            official_splits=args.official_splits,
            test_fraction=args.test_fraction,
            max_image_pixels=args.max_image_pixels,
        )
    except PrepareError as exc:
        log.error("prepare failed: %s", exc)
        return 1
    return 0
