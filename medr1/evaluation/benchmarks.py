"""More benchmarks through the same harness: `medr1 benchmarks --model M --data DATA_DIR [--results results]`.

DATA_DIR is written by `medr1 prepare --benchmark NAME --input PATH ...` (VQA-RAD, SLAKE, PathVQA, PMC-VQA,
MMMU's medical subjects). Each benchmark's evaluation split (`test`; MMMU's `validation`, its test answers
being hidden) goes through `medr1 eval` into its own cell, `results/benchmarks/<model>/<prompt>/<benchmark>/`
(a finished cell is not run again, an interrupted one resumes), and every cell under `results/benchmarks/`
goes into one table, `results/benchmarks.{md,csv}`: n, accuracy with its 95 % bootstrap interval, the
answered rate, and the accuracy by every scoring convention (medr1/evaluation/scoring.py).
Open-ended questions (`benchmark/<name>-open/...`) are not scored here.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

from medr1.evaluation.matrix import model_slug
from medr1.evaluation.scoring import CONVENTIONS

logger = logging.getLogger(__name__)

EVAL_SPLITS = {"mmmu": "validation"}  # the split each benchmark is scored on when not `test`


def eval_split(name: str) -> str:
    return f"benchmark/{name}/{EVAL_SPLITS.get(name, 'test')}"


def benchmark_names(data_dir: str | Path) -> list[str]:
    """The benchmarks a DATA_DIR holds: its manifest's list, else the multiple-choice split folders."""
    manifest = Path(data_dir) / "manifest.json"
    if manifest.is_file():
        names = json.loads(manifest.read_text(encoding="utf-8")).get("benchmarks")
        if names:
            return list(names)
    folder = Path(data_dir) / "splits" / "benchmark"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.endswith("-open"))


def benchmark_cell(results: str | Path, model: str, prompt: str, name: str, folder: str = "benchmarks") -> Path:
    return Path(results) / folder / model_slug(model) / prompt / name


def run_benchmarks(model: str, data_dir: str | Path, results: str | Path = "results", names=None, prompt="think",
                   **eval_kwargs) -> list[Path]:
    """Evaluate `model` on each benchmark's evaluation split (cells that exist are kept), then write the table."""
    available = benchmark_names(data_dir)
    if not available:
        raise ValueError(f"{data_dir} holds no benchmarks: run `medr1 prepare --benchmark NAME --input PATH --out "
                         f"{data_dir}` first")
    unknown = sorted(set(names or ()) - set(available))
    if unknown:
        raise ValueError(f"{data_dir} has no benchmark {unknown}; it has {', '.join(available)}")
    evaluate_cells(model, data_dir, {name: eval_split(name) for name in names or available}, results, prompt=prompt,
                   **eval_kwargs)
    return write_benchmark_table(results)


def evaluate_cells(model: str, data_dir: str | Path, splits: dict[str, str], results: str | Path, prompt="think",
                   folder: str = "benchmarks", **eval_kwargs) -> dict[str, str]:
    """`medr1 eval` of `model` on each {name: split} into its cell `results/<folder>/<model>/<prompt>/<name>/` (a
    finished cell is kept, an interrupted one resumes); {name: "evaluated" | "kept" | "empty"} (an empty or
    missing split is warned about and not evaluated)."""
    from medr1.evaluation.evaluate import evaluate

    status = {}
    for name, split in splits.items():
        out = benchmark_cell(results, model, prompt, name, folder)
        path = Path(data_dir) / "splits" / f"{split}.jsonl"
        if not path.is_file() or not path.read_text(encoding="utf-8").strip():
            logger.warning("%s: no questions in %s; not evaluated", name, path)
            status[name] = "empty"
        elif (out / "metrics.json").is_file():
            logger.info("%s: cell %s exists; kept", name, out)
            status[name] = "kept"
        else:
            evaluate(model, data_dir, split, out, prompt=prompt, **eval_kwargs)
            status[name] = "evaluated"
    return status


# ---- the table ----------------------------------------------------------------------------------

def collect_cells(results: str | Path, folder: str = "benchmarks") -> list[dict]:
    """One row per finished cell under `results/<folder>/<model>/<prompt>/<benchmark>/`, in path order."""
    rows = []
    for path in sorted((Path(results) / folder).glob("*/*/*/metrics.json")):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        model, prompt, name = path.parent.relative_to(Path(results) / folder).parts
        rows.append({"model": metrics.get("model", model), "prompt": prompt, "benchmark": name,
                     "split": metrics.get("split", ""), "parse": metrics.get("parse", "robust"), "n": metrics["n"],
                     "accuracy": metrics["accuracy"], "ci95": metrics["ci95"],
                     "answered_rate": metrics.get("answered_rate"), "scoring": metrics.get("scoring") or {}})
    return rows


def percent(value) -> str:
    return "" if value is None or value != value else f"{100 * value:.2f}"  # value != value: NaN


def table_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "Prompt", "Benchmark", "Split", "n", "Scoring", "Accuracy (%)", "95% CI (%)",
              "Answered (%)", *(f"{name} (%)" for name in CONVENTIONS)]
    body = []
    for row in rows:
        low, high = row["ci95"]
        body.append([row["model"], row["prompt"], row["benchmark"], row["split"], str(row["n"]), row["parse"],
                     percent(row["accuracy"]), f"{percent(low)}-{percent(high)}", percent(row["answered_rate"]),
                     *(percent(row["scoring"].get(name, {}).get("accuracy")) for name in CONVENTIONS)])
    return header, body


def markdown(rows: list[dict]) -> str:
    header, body = table_rows(rows)
    lines = ["# Benchmarks: accuracy (%) with 95 % bootstrap intervals", "",
             "Accuracy and its interval follow the cell's `Scoring` convention; the last columns score the same "
             "outputs by each convention (`medr1 rescore` fills them in for older cells).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def write_benchmark_table(results: str | Path) -> list[Path]:
    """`results/benchmarks.md` and `.csv` from every cell under `results/benchmarks/`."""
    results = Path(results)
    rows = collect_cells(results)
    if not rows:
        logger.warning("no benchmark cells under %s/benchmarks: run `make eval-benchmarks MODEL=...`", results)
    return write_md_csv(results / "benchmarks", markdown(rows), *table_rows(rows))


def write_md_csv(stem: Path, markdown_text: str, header: list[str], body: list[list[str]]) -> list[Path]:
    """`stem.md` (the markdown text) and `stem.csv` (header and body)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, csv_path = stem.with_suffix(".md"), stem.with_suffix(".csv")
    md.write_text(markdown_text, encoding="utf-8")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(body)
    logger.info("wrote %s and %s (%d rows)", md, csv_path, len(body))
    return [md, csv_path]


def main(argv: list[str] | None = None) -> int:
    from medr1.evaluation.evaluate import add_arguments, eval_options

    parser = argparse.ArgumentParser(prog="medr1 benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (or hub id where online)")
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare --benchmark`")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--benchmarks", nargs="*", help="only these benchmarks (default: every one in DATA_DIR)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_benchmarks(args.model, args.data, args.results, names=args.benchmarks, **eval_options(args))
    except ValueError as error:
        logger.error("benchmarks: %s", error)
        return 1
    return 0
