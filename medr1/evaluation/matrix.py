"""Cross-domain evaluation: every checkpoint on every test split of one axis (8 modalities or 5 tasks).

`medr1 matrix --axis modality --data DATA_DIR --base-model Qwen/Qwen2-VL-2B-Instruct` evaluates
- each `<checkpoints>/<modality>/` that exists (a row per training domain; absent ones are recorded
  as missing rows, never as zeros),
- any extra `--models`,
- the base model zero-shot (the baseline row),
on every test split of the axis. Each cell is `results/cells/<model>/<prompt>/<split>/` with its own
predictions and metrics, so only missing cells run and an interrupted cell resumes; a model's missing
cells run on one load of it. The layout of the matrix (rows, columns, cell folders) goes to
`results/matrix_<axis>[_<name>].json` for `medr1 tables`. Under torchrun/accelerate launch every cell is
shared over the processes (medr1/evaluation/sharding.py).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from medr1.sources.omnimedvqa import MODALITIES, TASKS

logger = logging.getLogger(__name__)

AXES = {"modality": MODALITIES, "task": TASKS}


def model_slug(model: str) -> str:
    """A folder name for a model path or hub id: `outputs/grpo/CT` -> `outputs__grpo__CT`."""
    return str(model).strip("/").replace("/", "__").replace(" ", "_")


def cell_dir(results: Path, model: str, prompt: str, split: str) -> Path:
    return Path(results) / "cells" / model_slug(model) / prompt / split


def is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file()


def axis_groups(axis: str, groups=None) -> list[str]:
    """The axis's domains in the paper's order, or the chosen subset of them."""
    if not groups:
        return list(AXES[axis])
    unknown = [g for g in groups if g not in AXES[axis]]
    if unknown:
        raise ValueError(f"unknown {axis} {unknown}; choose from {', '.join(AXES[axis])}")
    return [g for g in AXES[axis] if g in groups]


def plan_rows(axis: str, checkpoints: Path, prompt: str, base_model: str | None, models=(),
              zero_shot_only: bool = False, groups=None) -> list[dict]:
    """The matrix rows: one per training domain (missing if no checkpoint), extras, zero-shot base."""
    rows = []
    if not zero_shot_only:
        for group in axis_groups(axis, groups):
            path = Path(checkpoints) / group
            rows.append({"name": group, "trained_on": group, "model": str(path), "prompt": prompt,
                         "kind": "trained", "missing": not is_checkpoint(path)})
        for model in models:
            rows.append({"name": Path(model).name, "trained_on": None, "model": str(model), "prompt": prompt,
                         "kind": "extra", "missing": False})
    if base_model:
        rows.append({"name": f"{Path(base_model).name} (zero-shot)", "trained_on": None, "model": str(base_model),
                     "prompt": "zero-shot", "kind": "zero-shot", "missing": False})
    return rows


def by_model(cells: list[tuple]) -> list[tuple]:
    """(row, split, out) cells with each model's together, models in order of first appearance, cells in order."""
    first = {}
    for row, _, _ in cells:
        first.setdefault(row["model"], len(first))
    return sorted(cells, key=lambda cell: first[cell[0]["model"]])


def run_matrix(axis, data_dir, results, checkpoints, prompt="think", base_model=None, models=(),
               zero_shot_only=False, name=None, groups=None, **eval_kwargs) -> Path:
    from medr1.evaluation.evaluate import ModelCache, evaluate
    from medr1.evaluation.sharding import current_world

    results = Path(results)
    columns = axis_groups(axis, groups)
    rows = plan_rows(axis, checkpoints, prompt, base_model, models, zero_shot_only, groups)
    todo = []
    for row in rows:
        row["cells"] = {}
        if row["missing"]:
            logger.warning("no checkpoint at %s: row %r is reported as missing", row["model"], row["name"])
            continue
        for column in columns:
            split = f"{axis}/{column}/test"
            out = cell_dir(results, row["model"], row["prompt"], split)
            row["cells"][column] = str(out)
            if not (out / "metrics.json").is_file():
                todo.append((row, split, out))
    # One load per model: its missing cells run one after another on the model the first one loaded.
    cache = ModelCache()
    for row, split, out in by_model(todo):
        logger.info("cell %s -> %s", row["name"], split)
        evaluate(row["model"], data_dir, split, out, prompt=row["prompt"], cache=cache, **eval_kwargs)
    cache.release()
    manifest = results / f"matrix_{axis}{'_' + name if name else ''}.json"
    if current_world().rank > 0:  # data-parallel: every rank decoded its share of each cell; rank 0 writes
        return manifest
    if manifest.is_file() and zero_shot_only:
        # A zero-shot-only run adds its row to an existing matrix instead of replacing the trained rows.
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        rows = [r for r in previous["rows"] if r["kind"] != "zero-shot"] + rows
    results.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"axis": axis, "prompt": prompt, "data_dir": str(data_dir),
                                    "columns": columns, "rows": rows}, indent=2), encoding="utf-8")
    logger.info("matrix layout -> %s", manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    from medr1.evaluation.evaluate import add_arguments, eval_options

    parser = argparse.ArgumentParser(prog="medr1 matrix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--axis", choices=tuple(AXES), required=True)
    parser.add_argument("--data", type=Path, required=True, help="DATA_DIR written by `medr1 prepare`")
    parser.add_argument("--checkpoints", type=Path, default=Path("outputs/grpo"),
                        help="folder holding one checkpoint per training domain")
    parser.add_argument("--base-model", help="evaluated zero-shot as the baseline row")
    parser.add_argument("--models", nargs="*", default=[], help="extra checkpoints to add as rows")
    parser.add_argument("--zero-shot-only", action="store_true", help="only the base model's zero-shot row")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--name", help="variant name for the layout file, e.g. nothink")
    parser.add_argument("--groups", nargs="*", help="only these modalities/tasks (rows and columns)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    run_matrix(args.axis, args.data, args.results, args.checkpoints, base_model=args.base_model, models=args.models,
               zero_shot_only=args.zero_shot_only, name=args.name, groups=args.groups, **eval_options(args))
    return 0
