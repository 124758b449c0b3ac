"""The text benchmark table: `medr1 text-benchmarks --model M --data DATA_DIR [--results results] [--prompt P]`.

DATA_DIR is written by `medr1 prepare --dataset NAME --input PATH ...` (medr1/data/text_sources.py). Each text
benchmark it holds (`TEXT_BENCHMARKS`: MedQA, MedMCQA, PubMedQA, MMLU's medical subjects, MMLU-Pro's health and
biology) is evaluated on its scoring split (MedMCQA's `validation`, its test answers being unreleased; the others'
`test`) by `medr1 eval` (greedy, batched, resumable) into its own cell,
`results/text_benchmarks/<model>/<prompt>/<benchmark>/`, through the same cell loop as the VQA benchmarks
(`medr1.evaluation.benchmarks.evaluate_cells`: a finished cell is kept, an interrupted one resumes). Every cell
under `results/text_benchmarks/` goes into one table, `results/text_benchmarks.{md,csv}`: n, accuracy with its
95 % bootstrap interval, the answered rate, and the HuatuoGPT-o1 paper's number for that benchmark where one is
published (`PUBLISHED`), with the row it comes from. Any causal LM or VLM checkpoint works; the prompt style is
`--prompt` (HuatuoGPT-o1's evaluation prompt, `huatuo`, by default where `medr1 eval` accepts it).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from medr1.evaluation.benchmarks import collect_cells, evaluate_cells, percent, write_md_csv

logger = logging.getLogger(__name__)

FOLDER = "text_benchmarks"  # the cells' folder under results/, and the table's file name
# --dataset name -> the split it is scored on.
TEXT_BENCHMARKS = {
    "medqa": "test",
    "medmcqa": "validation",  # the released test split has no answers (`cop`)
    "pubmedqa": "test",
    "mmlu": "test",           # the six medical subjects (medr1/sources/mmlu.py)
    "mmlu-pro": "test",       # health and biology (medr1/sources/mmlu_pro.py)
}
LABELS = {"medqa": "MedQA (USMLE)", "medmcqa": "MedMCQA", "pubmedqa": "PubMedQA",
          "mmlu": "MMLU medical (6 subjects)", "mmlu-pro": "MMLU-Pro health/biology"}


@dataclass(frozen=True)
class Published:
    """One published accuracy (%) and the row of the paper's table it is read from."""

    accuracy: float
    row: str


# HuatuoGPT-o1 (Chen et al., arXiv 2412.18925), per-benchmark accuracy of HuatuoGPT-o1-8B (LLaMA-3.1-8B-Instruct
# base), as listed in the project's reference facts. The paper scores sampled outputs (temperature 0.5, top-p 0.9);
# these cells are greedy. Its other published figures are averages over several benchmarks, not per benchmark.
HUATUO_8B = "HuatuoGPT-o1-8B"
PUBLISHED = {
    "medqa": Published(72.6, HUATUO_8B),
    "medmcqa": Published(60.4, HUATUO_8B),
    "pubmedqa": Published(79.2, HUATUO_8B),
}


def default_prompt() -> str:
    """`huatuo` (HuatuoGPT-o1's evaluation prompt) where `medr1 eval` accepts it, else `think`."""
    from medr1.evaluation.evaluate import PROMPTS

    return "huatuo" if "huatuo" in PROMPTS else "think"


def dataset_names(data_dir: str | Path) -> list[str]:
    """The datasets a text DATA_DIR holds: its manifest's list, else its `splits/dataset/` folders."""
    manifest = Path(data_dir) / "manifest.json"
    if manifest.is_file():
        names = json.loads(manifest.read_text(encoding="utf-8")).get("datasets")
        if names:
            return list(names)
    folder = Path(data_dir) / "splits" / "dataset"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def plan(data_dir: str | Path, names=None) -> tuple[dict[str, str], list[str]]:
    """({benchmark: split} to evaluate, the text benchmarks DATA_DIR lacks); ValueError when it holds none, or
    when `names` asks for one it lacks."""
    held = set(dataset_names(data_dir)) & set(TEXT_BENCHMARKS)
    if not held:
        raise ValueError(f"{data_dir} holds none of the text benchmarks {', '.join(TEXT_BENCHMARKS)}: run `medr1 "
                         f"prepare --dataset NAME --input PATH --out {data_dir}` first")
    unknown = [name for name in names or () if name not in held]
    if unknown:
        raise ValueError(f"{data_dir} has no text benchmark {unknown}; it has {', '.join(sorted(held))}")
    chosen = [name for name in TEXT_BENCHMARKS if name in (names or held)]
    return {name: f"dataset/{name}/{TEXT_BENCHMARKS[name]}" for name in chosen}, sorted(set(TEXT_BENCHMARKS) - held)


def run_text_benchmarks(model: str, data_dir: str | Path, results: str | Path = "results", names=None,
                        prompt: str | None = None, **eval_kwargs) -> list[Path]:
    """Evaluate `model` on each text benchmark of DATA_DIR (cells that exist are kept), then write the table."""
    splits, missing = plan(data_dir, names)
    if missing and not names:
        logger.warning("%s lacks %d of the %d text benchmarks, not evaluated: %s", data_dir, len(missing),
                       len(TEXT_BENCHMARKS), ", ".join(missing))
    status = evaluate_cells(model, data_dir, splits, results, prompt=prompt or default_prompt(), folder=FOLDER,
                            **eval_kwargs)
    empty = [name for name, state in status.items() if state == "empty"]
    if empty:
        logger.warning("%d text benchmarks had no questions in their scoring split: %s", len(empty), ", ".join(empty))
    return write_text_table(results)


# ---- the table ----------------------------------------------------------------------------------

HEADER = ["Model", "Prompt", "Benchmark", "Split", "n", "Scoring", "Accuracy (%)", "95% CI (%)", "Answered (%)",
          "Paper (%)", "Paper row"]


def table_rows(rows: list[dict]) -> list[list[str]]:
    """One line per cell (`medr1.evaluation.benchmarks.collect_cells` rows), in `TEXT_BENCHMARKS` order per model
    and prompt, with the published number of its benchmark."""
    order = {name: i for i, name in enumerate(TEXT_BENCHMARKS)}
    body = []
    for row in sorted(rows, key=lambda r: (r["model"], r["prompt"], order.get(r["benchmark"], len(order)),
                                           r["benchmark"])):
        low, high = row["ci95"]
        paper = PUBLISHED.get(row["benchmark"])
        body.append([row["model"], row["prompt"], row["benchmark"], row["split"], str(row["n"]), row["parse"],
                     percent(row["accuracy"]), f"{percent(low)}-{percent(high)}", percent(row["answered_rate"]),
                     "" if paper is None else f"{paper.accuracy:.1f}", "" if paper is None else paper.row])
    return body


def markdown(body: list[list[str]]) -> str:
    lines = ["# Text benchmarks: accuracy (%) with 95 % bootstrap intervals", "",
             "Greedy decoding; accuracy and its interval follow the cell's `Scoring` convention. `Paper (%)` is the "
             f"HuatuoGPT-o1 paper's accuracy (Chen et al., arXiv 2412.18925) of the model in `Paper row` "
             f"({HUATUO_8B}: LLaMA-3.1-8B-Instruct base), sampled at temperature 0.5 / top-p 0.9; blank where the "
             "paper gives no number for that benchmark.", "",
             "Benchmarks: " + "; ".join(f"`{name}` {LABELS[name]}, split `{split}`"
                                        for name, split in TEXT_BENCHMARKS.items()) + ".", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def write_text_table(results: str | Path) -> list[Path]:
    """`results/text_benchmarks.md` and `.csv` from every cell under `results/text_benchmarks/`."""
    results = Path(results)
    rows = collect_cells(results, FOLDER)
    if not rows:
        logger.warning("no text benchmark cells under %s/%s: run `make eval-text MODEL=...`", results, FOLDER)
    body = table_rows(rows)
    return write_md_csv(results / FOLDER, markdown(body), HEADER, body)


def main(argv: list[str] | None = None) -> int:
    from medr1.evaluation.evaluate import add_arguments, eval_options

    parser = argparse.ArgumentParser(prog="medr1 text-benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (or hub id where online)")
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare --dataset`")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--benchmarks", nargs="*", choices=tuple(TEXT_BENCHMARKS),
                        help="only these benchmarks (default: every text benchmark in DATA_DIR)")
    add_arguments(parser)
    parser.set_defaults(prompt=default_prompt())
    args = parser.parse_args(argv)
    try:
        run_text_benchmarks(args.model, args.data, args.results, names=args.benchmarks, **eval_options(args))
    except ValueError as error:
        logger.error("text-benchmarks: %s", error)
        return 1
    return 0
