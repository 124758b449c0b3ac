"""One comparison of training methods: `medr1 compare --modality CT` (`make compare MODALITY=CT`).

From one starting model on one training split it trains SFT, DPO (LoRA, on on-policy pairs that `medr1 pairs`
samples from that starting model, merged with `medr1 merge-lora`), RLOO and GRPO, then evaluates each and the
starting model itself (the zero-shot row) on the domain's test split (in-domain) and on the other domains' test
splits (cross-domain, pooled), and writes `results/compare_<domain>.{md,csv,png,json}`: accuracy with 95 % bootstrap
intervals, format compliance, training wall time and completion tokens generated during training (RLOO/GRPO: counted
from the completion ids the rewards see; DPO: the k samples per question of the pairs; SFT: none). The JSON names
every cell the table was built from (`<results>/compare/<domain>/cells/<method>/<split>/`).

The embedded default (no `--data`) is the CPU demo's setting (medr1/embedded/demo.py): its synthetic data (fixed
option order, the four finding tasks), its compact tiny model and its format warm start (format-only SFT with the
letters drawn at random, so accuracy stays at chance, `<think>` naming the finding's colour). Every method starts
from that warm start and the zero-shot row is the warm start, so on-policy DPO pairs exist; the recipes are
`configs/<method>/compare_cpu.yaml` and `--steps` sizes the run (`--steps 3 --steps warm-start=120` in CI).
`--data DATA_DIR --base-model M` compares from your own base (no warm start, zero-shot prompt for the base row) with
`--recipe METHOD=PATH` recipes.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import time
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
METHODS = ("sft", "dpo", "rloo", "grpo")
WARM_START = "warm-start"
# The embedded default's recipes (every method from the warm start) and those of a run on your own --data.
EMBEDDED_RECIPES = {method: f"{method}/compare_cpu.yaml" for method in METHODS}
RECIPES = {"sft": "sft/tiny_cpu.yaml", "dpo": "dpo/tiny_cpu.yaml", "rloo": "rloo/tiny_cpu.yaml",
           "grpo": "grpo/tiny_cpu.yaml"}
BASE = "base"


def parse_steps(items: list[str], allowed: tuple[str, ...]) -> dict[str, int]:
    """`--steps` values: `N` (every method) or `METHOD=N` (one of `allowed`, e.g. warm-start=120) -> {name: N}."""
    steps = {}
    for item in items:
        name, _, value = item.rpartition("=")
        if name and name not in allowed:
            raise ValueError(f"--steps {item!r}: {name!r} is not one of {allowed}")
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"--steps {item!r}: the number of optimizer steps must be a positive integer")
        for target in [name] if name else METHODS:
            steps[target] = int(value)
    return steps


# ---- pure: table rows from cells ----------------------------------------------------------------

def pooled(predictions: list[list[dict]]) -> dict:
    """Accuracy and 95 % bootstrap interval of several cells' predictions taken together (cross-domain)."""
    from medr1.evaluation.evaluate import bootstrap_ci

    correct = [bool(p["correct"]) for cell in predictions for p in cell]
    return {"n": len(correct), "accuracy": sum(correct) / len(correct) if correct else None,
            "ci95": list(bootstrap_ci(correct)) if correct else [None, None]}


def read_cell(cell: Path) -> tuple[dict, list[dict]]:
    from medr1.evaluation.evaluate import read_done

    metrics = json.loads((Path(cell) / "metrics.json").read_text(encoding="utf-8"))
    return metrics, read_done(Path(cell) / "predictions.jsonl")


def table_row(entry: dict) -> dict:
    """One method's row from its cells (`entry`: method, in_domain cell, cross_domain cells, training facts)."""
    row = {"method": entry["method"], "model": entry.get("model")}
    if entry.get("missing"):
        return {**row, "missing": entry["missing"]}
    metrics, _ = read_cell(entry["in_domain"])
    cross = pooled([read_cell(cell)[1] for cell in entry["cross_domain"]])
    return {**row, "in_n": metrics["n"], "in_accuracy": metrics["accuracy"], "in_ci95": metrics["ci95"],
            "cross_n": cross["n"], "cross_accuracy": cross["accuracy"], "cross_ci95": cross["ci95"],
            "format_compliance": metrics["format_compliance"], "train_seconds": entry.get("train_seconds"),
            "completion_tokens": entry.get("completion_tokens"), "pairs": entry.get("pairs"),
            "note": entry.get("note", "")}


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _ci(ci) -> str:
    return "—" if not ci or ci[0] is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}"


COLUMNS = ("method", "in-domain acc %", "95 % CI", "cross-domain acc %", "95 % CI", "format %", "train s",
           "completion tokens", "note")


def row_cells(row: dict) -> list[str]:
    if row.get("missing"):
        return [row["method"], "—", "—", "—", "—", "—", "—", "—", f"missing: {row['missing']}"]
    seconds = row["train_seconds"]
    tokens = row["completion_tokens"]
    return [row["method"], _pct(row["in_accuracy"]), _ci(row["in_ci95"]), _pct(row["cross_accuracy"]),
            _ci(row["cross_ci95"]), _pct(row["format_compliance"]), "—" if seconds is None else f"{seconds:.1f}",
            "—" if tokens is None else str(tokens), row["note"]]


def markdown(rows: list[dict], domain: str, split: str, base: str, warm: dict | None = None) -> str:
    shown = [row for row in rows if not row.get("missing")]
    sizes = f" (n = {shown[0]['in_n']} and {shown[0]['cross_n']})" if shown else ""
    start = (f"Every method starts from the shared format warm start `{base}` ({warm['steps']} steps of format-only "
             f"SFT, letters drawn at random, {warm['seconds']:.0f} s; the base row)" if warm else f"Base `{base}`")
    lines = [f"# Methods compared on {domain}", "",
             f"{start}, trained on `{split}`; in-domain = its test split, cross-domain = the other domains' "
             f"test splits pooled{sizes}; 95 % bootstrap intervals.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_outputs(rows: list[dict], layout: dict, results: Path, slug: str) -> list[Path]:
    results.mkdir(parents=True, exist_ok=True)
    stem = results / f"compare_{slug}"
    md, csv_path, png, layout_path = (stem.with_suffix(s) for s in (".md", ".csv", ".png", ".json"))
    md.write_text(markdown(rows, layout["domain"], layout["split"], layout["base_model"], layout.get("warm_start")),
                  encoding="utf-8")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        fields = ["method", "model", "in_n", "in_accuracy", "in_ci_low", "in_ci_high", "cross_n", "cross_accuracy",
                  "cross_ci_low", "cross_ci_high", "format_compliance", "train_seconds", "completion_tokens",
                  "pairs", "note", "missing"]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            flat = {k: v for k, v in row.items() if k in fields}
            for prefix in ("in", "cross"):
                low, high = row.get(f"{prefix}_ci95") or (None, None)
                flat[f"{prefix}_ci_low"], flat[f"{prefix}_ci_high"] = low, high
            writer.writerow(flat)
    plot(rows, png, layout["domain"])
    layout_path.write_text(json.dumps({**layout, "rows": rows}, indent=2), encoding="utf-8")
    return [md, csv_path, png, layout_path]


def plot(rows: list[dict], path: Path, domain: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if not r.get("missing")]
    fig, ax = plt.subplots(figsize=(1.4 * max(len(shown), 2) + 2, 3.5))
    width = 0.38
    for offset, prefix, label in ((-width / 2, "in", "in-domain"), (width / 2, "cross", "cross-domain")):
        values = [100 * (r[f"{prefix}_accuracy"] or 0.0) for r in shown]
        errors = [[100 * max(0.0, (r[f"{prefix}_accuracy"] or 0) - (r[f"{prefix}_ci95"][0] or 0)) for r in shown],
                  [100 * max(0.0, (r[f"{prefix}_ci95"][1] or 0) - (r[f"{prefix}_accuracy"] or 0)) for r in shown]]
        ax.bar([i + offset for i in range(len(shown))], values, width, yerr=errors, capsize=3, label=label)
    ax.set_xticks(range(len(shown)), [r["method"] for r in shown])
    ax.set_ylabel("accuracy %")
    ax.set_ylim(0, 100)
    ax.set_title(f"Methods on {domain} (95 % CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- the runs -----------------------------------------------------------------------------------

class TokenCounter:
    """Wraps a TRL reward function and counts the completion tokens it is shown (each completion once)."""

    def __init__(self, func):
        self.func, self.tokens = func, 0
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, completions, completion_ids=None, **kwargs):
        self.tokens += sum(len(ids) for ids in completion_ids or [])
        return self.func(completions, **kwargs)


def recipe_for(method: str, opts) -> Path:
    default = (EMBEDDED_RECIPES if opts.embedded else RECIPES)[method]
    return Path(opts.recipes.get(method) or REPO_CONFIGS / default)


def steps_flag(opts, name: str) -> list[str]:
    """`--max_steps N` where `--steps` sized `name`; nothing (the recipe's max_steps) otherwise."""
    return ["--max_steps", str(opts.steps[name])] if name in opts.steps else []


def stage_argv(recipe: Path, opts, method: str, out: Path, extra=()) -> list[str]:
    argv = ["--config", str(recipe), "--model_name_or_path", str(opts.base_model), "--data_dir", str(opts.data),
            opts.axis_flag, opts.domain, "--output_dir", str(out), *steps_flag(opts, method),
            "--report_to", "none", "--image_size", str(opts.image_size), "--prompt_style", opts.prompt,
            "--save_strategy", "no", "--seed", str(opts.seed), *extra]
    if method in ("rloo", "grpo"):
        argv += ["--max_completion_length", str(opts.max_new_tokens), "--log_completions", "false"]
    return argv + list(opts.stage_args)


def warm_start_base(opts, outputs: Path) -> dict:
    """The embedded default's starting point, made by the demo's own stages: its synthetic data, its tiny model and
    its format warm start (medr1/embedded/demo.py). Sets opts.data and opts.base_model; returns the facts."""
    from medr1.embedded.demo import SFT_RECIPE, DemoSettings, build_data, build_model, read_recipe, warm_start

    started = time.perf_counter()
    demo = DemoSettings()
    data = build_data(outputs, opts.per_modality, opts.seed)
    model = build_model(outputs, data, opts.image_size, demo.hidden_size, demo.layers, opts.seed,
                        demo.whole_think_words)
    recipe = opts.recipes.get(WARM_START, SFT_RECIPE)
    overrides = [*steps_flag(opts, WARM_START), "--image_size", str(opts.image_size), "--prompt_style", opts.prompt]
    from trl import SFTConfig

    steps = read_recipe(recipe, overrides, SFTConfig)[1].max_steps
    logger.info("compare %s: format warm start (%d steps of %s)", opts.domain, steps, recipe)
    opts.base_model = warm_start(model, data, opts.domain, outputs / "warmstart", opts.seed, recipe, overrides)
    opts.data = data
    return {"recipe": str(recipe), "steps": steps, "seconds": time.perf_counter() - started,
            "tiny_model": str(model), "data_dir": str(data), "per_modality": opts.per_modality,
            "vocabulary": "whole think words" if demo.whole_think_words else "spelled think words"}


def run_method(method: str, opts, outputs: Path) -> dict:
    """Train one method from opts.base_model; {model, train_seconds, completion_tokens, note} or {missing}."""
    from medr1.train.grpo import parse_args

    recipe = recipe_for(method, opts)
    out = outputs / method
    started = time.perf_counter()
    if method == "sft":
        from trl import SFTConfig

        from medr1.train.sft import train

        args = parse_args(stage_argv(recipe, opts, method, out), SFTConfig, "medr1 sft")
        reasoning = None
        if opts.embedded:  # the warm start's <think> (the finding's colour); SFT changes the letter after it
            from medr1.embedded.synth import finding_colour_reasoning

            reasoning = finding_colour_reasoning(args[0].data_dir, args[0].image_size)
        train(*args, reasoning=reasoning)
        return {"model": str(out), "train_seconds": time.perf_counter() - started, "completion_tokens": 0,
                "steps": args[1].max_steps}
    if method == "dpo":
        return run_dpo(recipe, opts, outputs, started)
    from medr1.train import grpo
    from medr1.train.monitors import with_domain_metrics
    from medr1.train.rloo import config_class_for

    argv = stage_argv(recipe, opts, method, out, ["--algorithm", method])
    script_args, training_args, model_args = parse_args(argv, config_class_for(argv), f"medr1 train ({method})")
    funcs = [with_domain_metrics(f) if f.__name__ in ("accuracy_reward", "verifier_reward") else f
             for f in grpo.build_reward_funcs(script_args, training_args.num_generations, training_args.seed)]
    funcs[0] = counter = TokenCounter(funcs[0])
    grpo.train(script_args, training_args, model_args, reward_funcs=funcs)
    return {"model": str(out), "train_seconds": time.perf_counter() - started, "completion_tokens": counter.tokens,
            "steps": training_args.max_steps}


def run_dpo(recipe: Path, opts, outputs: Path, started: float) -> dict:
    """On-policy pairs sampled from opts.base_model (`medr1 pairs`), DPO with LoRA on them, the adapter merged."""
    from trl import DPOConfig

    from medr1.data.model_kinds import load_processing_class, tokenizer_of
    from medr1.evaluation.pairs import make_pairs
    from medr1.train.dpo import train
    from medr1.train.grpo import parse_args
    from medr1.train.merge import merge_adapter

    pairs_file = outputs / "pairs.jsonl"
    summary = make_pairs(opts.base_model, opts.data, opts.split, pairs_file, k=opts.k, style=opts.prompt,
                         limit=opts.pair_questions, image_size=opts.image_size, max_new_tokens=opts.max_new_tokens,
                         batch_size=opts.batch_size, num_workers=0,
                         tokenizer=tokenizer_of(load_processing_class(opts.base_model)))
    facts = {"pairs": summary["pairs"], "pair_questions": summary["questions"], "pairs_file": str(pairs_file),
             "completion_tokens": summary.get("completion_tokens")}
    note = (f"{summary['pairs']} on-policy pairs of {summary['questions']} questions, k={opts.k} "
            f"({summary['unpaired']} unpaired: {summary['all_correct']} all correct, {summary['all_wrong']} all wrong)")
    if not summary["pairs"]:
        logger.warning("DPO: no question had a correct and an incorrect sample among %d; row missing", opts.k)
        return {**facts, "missing": f"no pairs: {note}"}
    adapter = outputs / "dpo-adapter"
    args = parse_args(stage_argv(recipe, opts, "dpo", adapter, ["--train_file", str(pairs_file)]), DPOConfig,
                      "medr1 dpo")
    train(*args)
    merged = merge_adapter(adapter, outputs / "dpo", base=str(opts.base_model))
    return {**facts, "model": str(merged), "train_seconds": time.perf_counter() - started, "note": note,
            "steps": args[1].max_steps}


def evaluate_all(entries: list[dict], opts, cells: Path) -> None:
    """Fill each entry's in_domain / cross_domain cells."""
    from medr1.evaluation.evaluate import ModelCache, evaluate

    cache = ModelCache()
    for entry in entries:
        if entry.get("missing"):
            continue
        # The warm start knows the format, so it is asked in it; a base of your own is asked zero-shot.
        prompt = "zero-shot" if entry["method"] == BASE and not opts.embedded else opts.prompt
        entry["in_domain"], entry["cross_domain"] = None, []
        for column in [opts.domain, *opts.cross]:
            split = f"{opts.axis}/{column}/test"
            out = cells / entry["method"] / split
            evaluate(entry["model"], opts.data, split, out, prompt=prompt, batch_size=opts.batch_size,
                     limit=opts.limit, image_size=opts.image_size, max_new_tokens=opts.max_new_tokens,
                     num_workers=0, stage=opts.prompt_stage, cache=cache)
            if column == opts.domain:
                entry["in_domain"] = str(out)
            else:
                entry["cross_domain"].append(str(out))
    cache.release()


def run_comparison(opts) -> list[Path]:
    if opts.threads:
        import torch

        torch.set_num_threads(opts.threads)
    results = Path(opts.results)
    slug = opts.domain.replace(" ", "_")
    outputs = Path(opts.outputs) / slug
    cells = results / "compare" / slug / "cells"
    # A run is made whole each time: models, pairs and cells of an earlier run would not match this one's.
    for path in (outputs, cells):
        shutil.rmtree(path, ignore_errors=True)
    outputs.mkdir(parents=True)
    warm = warm_start_base(opts, outputs) if opts.embedded else None
    note = "format warm start (random letters): every method's start" if warm else "zero-shot"
    entries = [{"method": BASE, "model": str(opts.base_model), "train_seconds": 0.0, "completion_tokens": 0,
                "note": note}]
    for method in opts.methods:
        logger.info("compare %s: training %s from %s", opts.domain, method, opts.base_model)
        entries.append({"method": method, **run_method(method, opts, outputs)})
    evaluate_all(entries, opts, cells)
    rows = [table_row(entry) for entry in entries]
    layout = {"domain": opts.domain, "axis": opts.axis, "split": opts.split, "base_model": str(opts.base_model),
              "data_dir": str(opts.data), "cross_domains": list(opts.cross), "steps": opts.steps,
              "limit": opts.limit, "prompt": opts.prompt, "prompt_stage": opts.prompt_stage, "k": opts.k,
              "warm_start": warm, "entries": entries}
    paths = write_outputs(rows, layout, results, slug)
    logger.info("comparison on %s -> %s", opts.domain, paths[0])
    return paths


def parse(argv: list[str] | None):
    from medr1.evaluation.matrix import AXES, axis_groups

    parser = argparse.ArgumentParser(prog="medr1 compare", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--modality")
    target.add_argument("--task")
    parser.add_argument("--data", type=Path,
                        help="DATA_DIR written by `medr1 prepare` (with --base-model); default: the embedded "
                             "demo data, tiny model and format warm start, built under --outputs")
    parser.add_argument("--base-model", help="the starting model of every method, with --data")
    parser.add_argument("--per-modality", type=int, default=1000,
                        help="embedded default: synthetic questions per modality (80 %% train)")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--outputs", type=Path, default=Path("outputs/compare"))
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--recipe", action="append", default=[], metavar="METHOD=PATH",
                        help=f"a method's recipe (default: configs/<method>/compare_cpu.yaml embedded, "
                             f"tiny_cpu.yaml with --data); METHOD may be {WARM_START} (embedded)")
    parser.add_argument("--steps", action="append", default=[], metavar="[METHOD=]N",
                        help=f"optimizer steps: N for every method or METHOD=N (METHOD may be {WARM_START}); "
                             "default: each recipe's max_steps")
    parser.add_argument("--prompt", default="think", help="the prompt style every method trains and is evaluated in")
    parser.add_argument("--prompt-stage", choices=("train", "eval"),
                        help="the prompt wording of the evaluation (default: train on the embedded default, whose "
                             "tiny model knows only that wording, as the demo; eval with --data)")
    parser.add_argument("--k", type=int, default=8, help="DPO: samples per question for the on-policy pairs")
    parser.add_argument("--pair-questions", type=int, help="DPO: sample pairs on the first N training questions")
    parser.add_argument("--limit", type=int, help="evaluate the first N questions of each test split")
    parser.add_argument("--cross", nargs="*", help="cross-domain test splits (default: every other domain)")
    parser.add_argument("--image-size", type=int, default=56)
    parser.add_argument("--max-new-tokens", type=int, default=28,
                        help="generation length of pairs, RL and evaluation (the warm start's answer is 20 tokens)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--stage-arg", dest="stage_args", action="append", default=[],
                        help="an extra recipe override for every method, e.g. --stage-arg=--learning_rate=1e-5")
    opts = parser.parse_args(argv)
    opts.axis, opts.domain = ("modality", opts.modality) if opts.modality else ("task", opts.task)
    opts.axis_flag = f"--{opts.axis}"
    opts.embedded = opts.data is None
    if opts.domain not in AXES[opts.axis]:
        parser.error(f"unknown {opts.axis} {opts.domain!r}")
    if opts.embedded and opts.axis != "modality":
        parser.error("the embedded default warm-starts on a modality (--modality); for a task, pass --data "
                     "DATA_DIR --base-model M")
    if not opts.embedded and not opts.base_model:
        parser.error("--data needs --base-model (the starting model of every method)")
    if opts.embedded and opts.base_model:
        parser.error("--base-model needs --data; the embedded default starts from its own format warm start")
    opts.prompt_stage = opts.prompt_stage or ("train" if opts.embedded else "eval")
    opts.cross = axis_groups(opts.axis, opts.cross) if opts.cross else [g for g in AXES[opts.axis]
                                                                           if g != opts.domain]
    opts.cross = [g for g in opts.cross if g != opts.domain]
    opts.split = f"{opts.axis}/{opts.domain}/train"
    try:
        opts.steps = parse_steps(opts.steps, (*METHODS, WARM_START))
    except ValueError as error:
        parser.error(str(error))
    recipes = {}
    for item in opts.recipe:
        method, _, path = item.partition("=")
        if method not in (*METHODS, WARM_START) or not path:
            parser.error(f"--recipe takes METHOD=PATH with METHOD in {(*METHODS, WARM_START)}, not {item!r}")
        recipes[method] = path
    opts.recipes = recipes
    return opts


def main(argv: list[str] | None = None) -> int:
    run_comparison(parse(argv))
    return 0
