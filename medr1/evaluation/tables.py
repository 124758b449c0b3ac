"""The paper's tables from the cached cells: `medr1 tables --results results`.

For each matrix layout written by `medr1 matrix`, writes `results/cross_<axis>[_<name>].{md,csv,tex}`
(rows = trained on, columns = tested on, plus in-domain, cross-domain and overall averages), a heatmap
PNG, a block of the paper's published numbers beside ours, and a think-minus-no-think heatmap when
both variants exist. Every cell's accuracy is recomputed from its predictions file, so a table can
never disagree with the predictions it summarises. Missing cells stay empty, never zero.

`--scoring NAME` (a convention of medr1/evaluation/scoring.py, e.g. `medevalkit` to compare with tables
made by MedEvalKit) builds the same tables from each cell's `metrics.json` `scoring[NAME].accuracy`,
written as `cross_<axis>[_<name>]_<NAME>.*`; a cell written before the conventions existed is an error
that names it (`medr1 rescore --cell DIR --data DATA_DIR` adds them).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

# Published Med-R1 numbers (percent). Only what the paper states is here; unknown cells stay empty.
REFERENCE = {
    "modality": {
        "trained_average": 69.91,
        "zero_shot_average": 39.97,
        "improvement": 29.94,
        "qwen2vl_72b_zero_shot": 68.05,
        "cells": {("OCT", "OCT"): 99.17},
    },
    "task": {"improvement": 32.06},
}


# ---- pure table maths ---------------------------------------------------------------------------

def mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def row_summary(row_name: str | None, cells: dict[str, float | None]) -> dict:
    """In-domain (the diagonal cell), cross-domain (the other cells) and overall means of one row."""
    if row_name is None:  # zero-shot and extra rows have no training domain
        return {"in_domain": None, "cross_domain": None, "overall": mean(cells.values())}
    cross = [v for column, v in cells.items() if column != row_name]
    return {"in_domain": cells.get(row_name), "cross_domain": mean(cross), "overall": mean(cells.values())}


def matrix_summary(rows: list[dict]) -> dict:
    """Averages over the trained rows: diagonal, off-diagonal and all present cells."""
    trained = [r for r in rows if r["kind"] == "trained" and not r["missing"]]
    diagonal = [r["cells"].get(r["trained_on"]) for r in trained]
    off = [v for r in trained for c, v in r["cells"].items() if c != r["trained_on"]]
    everything = [v for r in trained for v in r["cells"].values()]
    return {"in_domain": mean(diagonal), "cross_domain": mean(off), "overall": mean(everything),
            "trained_rows": len(trained)}


class MissingScoring(ValueError):
    """A cell whose metrics lack the requested scoring convention."""


def scored_accuracy(cell: Path, scoring: str) -> float | None:
    """Accuracy in percent by convention `scoring`, from the cell's `metrics.json` `scoring` block."""
    path = Path(cell) / "metrics.json"
    if not path.is_file():
        return None
    entry = json.loads(path.read_text(encoding="utf-8")).get("scoring", {}).get(scoring)
    if entry is None:
        raise MissingScoring(f"cell {cell} has no scoring[{scoring!r}] in its metrics.json (made before the scoring "
                             f"conventions existed): run `medr1 rescore --cell {cell} --data DATA_DIR` first")
    return 100.0 * entry["accuracy"]


def cell_accuracy(cell: Path, scoring: str | None = None) -> float | None:
    """Accuracy in percent, recomputed from the cell's predictions file (or, with `scoring`, that
    convention's accuracy from its metrics)."""
    if scoring is not None:
        return scored_accuracy(cell, scoring) if str(cell) else None
    path = Path(cell) / "predictions.jsonl"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        correct = [json.loads(line)["correct"] for line in handle if line.strip()]
    return 100.0 * sum(correct) / len(correct) if correct else None


def load_matrix(layout_path: Path, scoring: str | None = None) -> dict:
    layout = json.loads(Path(layout_path).read_text(encoding="utf-8"))
    layout["scoring"] = scoring
    for row in layout["rows"]:
        row["cells"] = {c: (None if row["missing"] else cell_accuracy(row["cells"].get(c, ""), scoring))
                        for c in layout["columns"]}
        row.update(row_summary(row["trained_on"], row["cells"]))
    layout["summary"] = matrix_summary(layout["rows"])
    zero_shot = [r for r in layout["rows"] if r["kind"] == "zero-shot"]
    layout["summary"]["zero_shot_overall"] = zero_shot[0]["overall"] if zero_shot else None
    return layout


def reference_block(axis: str, layout: dict) -> list[tuple[str, float | None, float | None]]:
    """(quantity, ours, paper) triples; the paper column is None where it published nothing."""
    ref = REFERENCE.get(axis, {})
    summary = layout["summary"]
    ours_gain = (None if summary["overall"] is None or summary["zero_shot_overall"] is None
                 else summary["overall"] - summary["zero_shot_overall"])
    lines = [
        ("Med-R1 average over the matrix", summary["overall"], ref.get("trained_average")),
        ("Base model zero-shot average", summary["zero_shot_overall"], ref.get("zero_shot_average")),
        ("Improvement over zero-shot (points)", ours_gain, ref.get("improvement")),
        ("Qwen2-VL-72B zero-shot average", None, ref.get("qwen2vl_72b_zero_shot")),
    ]
    by_name = {r["trained_on"]: r for r in layout["rows"] if r["kind"] == "trained"}
    for (row, column), value in ref.get("cells", {}).items():
        ours = by_name[row]["cells"].get(column) if row in by_name else None
        lines.append((f"{row} -> {column}", ours, value))
    return lines


# ---- rendering ----------------------------------------------------------------------------------

def fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def table_rows(layout: dict) -> tuple[list[str], list[list[str]]]:
    header = ["Trained on \\ Tested on", *layout["columns"], "In-domain", "Cross-domain", "Overall"]
    body = []
    for row in layout["rows"]:
        label = row["name"] + (" (missing)" if row["missing"] else "")
        body.append([label, *(fmt(row["cells"][c]) for c in layout["columns"]),
                     fmt(row["in_domain"]), fmt(row["cross_domain"]), fmt(row["overall"])])
    summary = layout["summary"]
    body.append(["Average (trained rows)", *("" for _ in layout["columns"]), fmt(summary["in_domain"]),
                 fmt(summary["cross_domain"]), fmt(summary["overall"])])
    return header, body


def markdown(layout: dict, axis: str) -> str:
    header, body = table_rows(layout)
    scored = f" Scoring convention: {layout['scoring']}." if layout.get("scoring") else ""
    lines = [f"# Cross-{axis} accuracy (%)", "", f"Rows: trained on; columns: tested on.{scored}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    lines += ["", "## Published reference (Med-R1) beside ours", "",
              "| Quantity | Ours | Paper | Ours - Paper |", "|---|---|---|---|"]
    for name, ours, paper in reference_block(axis, layout):
        diff = None if ours is None or paper is None else ours - paper
        lines.append(f"| {name} | {fmt(ours)} | {fmt(paper)} | {fmt(diff)} |")
    return "\n".join(lines) + "\n"


def latex(layout: dict, axis: str) -> str:
    header, body = table_rows(layout)

    def escape(text: str) -> str:
        return text.replace("\\", "/").replace("&", r"\&").replace("_", r"\_").replace("%", r"\%")

    lines = [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}", f"% cross-{axis} accuracy (%), rows: trained on"]
    return "\n".join(lines) + "\n"


def write_csv(layout: dict, path: Path) -> None:
    header, body = table_rows(layout)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(body)


def heatmap(matrix, row_labels, column_labels, title, path, cmap="viridis", center_zero=False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(column_labels) + 3, 0.6 * len(row_labels) + 2))
    limit = np.nanmax(np.abs(data)) if center_zero and np.isfinite(data).any() else None
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=-limit if limit else 0,
                      vmax=limit if limit else 100, aspect="auto")
    ax.set_xticks(range(len(column_labels)), column_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    for i, row in enumerate(data):
        for j, value in enumerate(row):
            ax.text(j, i, "" if np.isnan(value) else f"{value:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if not center_zero and value < 60 else "black")
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_tables(results: Path, scoring: str | None = None) -> list[Path]:
    results = Path(results)
    written = []
    layouts = {}
    suffix = f"_{scoring}" if scoring else ""
    for layout_path in sorted(results.glob("matrix_*.json")):
        variant = layout_path.stem[len("matrix_"):]
        axis = variant.split("_")[0]
        layout = load_matrix(layout_path, scoring)
        layouts[variant] = layout
        stem = results / f"cross_{variant}{suffix}"
        stem.with_suffix(".md").write_text(markdown(layout, axis), encoding="utf-8")
        stem.with_suffix(".tex").write_text(latex(layout, axis), encoding="utf-8")
        write_csv(layout, stem.with_suffix(".csv"))
        (results / f"cross_{variant}{suffix}_summary.json").write_text(
            json.dumps({"summary": layout["summary"], "rows": layout["rows"]}, indent=2), encoding="utf-8")
        heatmap([[r["cells"][c] for c in layout["columns"]] for r in layout["rows"]],
                [r["name"] for r in layout["rows"]], layout["columns"], f"Cross-{axis} accuracy (%)",
                stem.with_suffix(".png"))
        written += [stem.with_suffix(s) for s in (".md", ".csv", ".tex", ".png")]
    for axis in ("modality", "task"):
        think, nothink = layouts.get(axis), layouts.get(f"{axis}_nothink")
        if think and nothink:
            if think_minus_nothink(think, nothink)[0]:
                written.append(difference_heatmap(think, nothink,
                                                  results / f"cross_{axis}{suffix}_think_minus_nothink.png"))
            else:
                logger.warning("no training domain has both a think and a no-think row on the %s axis: no "
                               "think-minus-no-think heatmap", axis)
    for path in written:
        logger.info("wrote %s", path)
    if not layouts:
        logger.warning("no matrix layouts in %s: run `make eval-cross-modality` or `make eval-cross-task`", results)
    return written


def think_minus_nothink(think: dict, nothink: dict) -> tuple[list[list[float | None]], list[str]]:
    """Per training domain present in both layouts, think accuracy minus no-think accuracy per column
    (points); a cell missing on either side stays None."""
    by_domain = {r["trained_on"]: r for r in nothink["rows"] if r["kind"] == "trained" and not r["missing"]}
    rows, labels = [], []
    for row in think["rows"]:
        if row["kind"] != "trained" or row["missing"] or row["trained_on"] not in by_domain:
            continue
        other = by_domain[row["trained_on"]]["cells"]
        rows.append([None if row["cells"][c] is None or other.get(c) is None else row["cells"][c] - other[c]
                     for c in think["columns"]])
        labels.append(row["name"])
    return rows, labels


def difference_heatmap(think: dict, nothink: dict, path: Path) -> Path:
    rows, labels = think_minus_nothink(think, nothink)
    heatmap(rows, labels, think["columns"], "Think minus no-think (points)", path, cmap="RdBu", center_zero=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medr1 tables", description=__doc__.split("\n\n")[0])
    from medr1.evaluation.scoring import CONVENTIONS

    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--scoring", choices=tuple(CONVENTIONS),
                        help="build the tables from this convention's accuracy in each cell's metrics.json")
    args = parser.parse_args(argv)
    try:
        write_tables(args.results, args.scoring)
    except MissingScoring as error:
        logger.error("%s", error)
        return 1
    return 0
