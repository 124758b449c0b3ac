"""Benchmark GRPO optimizer steps: medr1's training path against a bare TRL script (not a test).

CPU section (always): builds a synthetic OmniMedVQA and the tiny offline Qwen2-VL in a temp folder,
then times optimizer steps of

  A  medr1: `medr1.train.grpo.parse_args` on configs/grpo/tiny_cpu.yaml (+ report_to none, log_completions
     false, save_strategy no, max_steps) -> `medr1.train.grpo.build_trainer` -> `trainer.train()`, i.e. what
     `medr1 train` runs (lazy image decoding, the collapse guard, run metadata);
  B  bare: `trl.GRPOTrainer(model=<the same path>, ...)` with a GRPOConfig written out by hand with the
     same values, `datasets.Dataset.from_list` of rows built by hand (conversational prompt with an
     image part, the PIL image loaded up front, answer, options; `datasets` stores the image as PNG
     bytes and decodes it on access, as for a hub dataset) and the same two rewards from
     `medr1.rewards.functions.reward_functions()`.

Runs alternate A B, B A, A B, ... in this one process (so CPU contention hits both alike) after a
discarded warm-up pair; the first step of every run (data loader start-up) is reported apart and
not counted. Both paths run with `--threads` torch threads (default 1). Prints seconds/step, the
medr1/bare ratio (target <= 1.10), where a step's time goes and peak RSS.

Step-time breakdown, by timing wrappers installed on the GRPOTrainer class for the benchmark:
  generation  `GRPOTrainer._generate_single_turn` (TRL internal: the model.generate / vLLM call)
  scoring     the rest of `GRPOTrainer._generate_and_score_completions` (TRL internal: prompt
              tokenising, processor, reference-model log-probs, rewards, advantages)
  loss+bwd    the rest of `Trainer.training_step` (public override point): policy forward, loss, backward
  optimizer   between the public `on_pre_optimizer_step` and `on_optimizer_step` callbacks
  other       the rest of the step: data loading (image decoding), grad clipping, scheduler, logging

    python bench/train_step.py [--vocab compact|qwen] [--steps N] [--rounds R] [--gpu]

--gpu (CUDA only; skipped with a message otherwise): a Qwen2-VL-2B-shaped model with random weights
(the real architecture values, the real Qwen2 vocabulary) trained with the paper recipe
configs/grpo/medr1_qwen2vl_2b.yaml: plain HF generation, LoRA, a frozen vision tower and vLLM colocate
(`--gpu-legs`; vLLM only when installed); reports s/step, completion tokens/s and peak GPU memory.

Timings on a shared 2-core machine are noisy; compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medr1.embedded.workbench import (  # noqa: E402
    MemoryMonitor,
    add_section_arguments,
    build_workbench,
    quiet_libraries,
    run_sections,
)

TARGET_RATIO = 1.10
TINY_RECIPE = REPO / "configs" / "grpo" / "tiny_cpu.yaml"
PAPER_RECIPE = REPO / "configs" / "grpo" / "medr1_qwen2vl_2b.yaml"
MODALITY = "CT"

# The GRPOConfig values of configs/grpo/tiny_cpu.yaml, written out by hand for the bare script.
# `check_same_settings` asserts they equal what medr1's parser makes of the recipe.
BARE_CONFIG = dict(
    num_generations=4,
    max_completion_length=24,
    temperature=1.0,
    beta=0.04,
    loss_type="grpo",
    scale_rewards="group",
    per_device_train_batch_size=8,
    gradient_accumulation_steps=2,
    learning_rate=1.0e-4,
    lr_scheduler_type="linear",
    seed=42,
    use_cpu=True,
    bf16=False,
    gradient_checkpointing=False,
    dataloader_num_workers=0,
    logging_steps=1,
    report_to="none",
    log_completions=False,
    save_strategy="no",
    disable_tqdm=True,
    model_init_kwargs={"dtype": "float32"},
)
COMPARED_FIELDS = [k for k in BARE_CONFIG if k != "model_init_kwargs"] + [
    "max_steps", "num_iterations", "steps_per_generation", "top_p", "top_k", "max_grad_norm", "weight_decay",
    "warmup_steps", "optim", "epsilon", "importance_sampling_level", "mask_truncated_completions",
]


# ---- measurement ---------------------------------------------------------------------------------

ACC: dict[str, float] = defaultdict(float)  # cumulative seconds per phase, across every run


def _timed(func, key):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            ACC[key] += time.perf_counter() - start

    wrapper.__wrapped__ = func
    return wrapper


@contextlib.contextmanager
def phase_timers():
    """Timing wrappers on GRPOTrainer's generation, rollout and training-step methods (class level, so
    both trainers get them); restored on exit."""
    from trl import GRPOTrainer

    patched = {
        "_generate_single_turn": "generation",  # TRL internal
        "_generate_and_score_completions": "rollout",  # TRL internal
        "training_step": "training_step",  # public override point of transformers.Trainer
    }
    originals = {name: GRPOTrainer.__dict__.get(name) for name in patched}
    for name, key in patched.items():
        setattr(GRPOTrainer, name, _timed(getattr(GRPOTrainer, name), key))
    try:
        yield
    finally:
        for name, original in originals.items():
            if original is None:
                delattr(GRPOTrainer, name)
            else:
                setattr(GRPOTrainer, name, original)


def step_clock():
    """A callback recording, at each optimizer step's end, the time and the phase accumulators."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, dict]] = []
            self._opt_start = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), dict(ACC)))

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            self._opt_start = time.perf_counter()

        def on_optimizer_step(self, args, state, control, **kwargs):
            ACC["optimizer"] += time.perf_counter() - self._opt_start

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), dict(ACC)))

        def steps(self) -> list[dict]:
            """Per optimizer step: wall seconds and seconds per phase."""
            out = []
            for (t0, a0), (t1, a1) in zip(self.marks, self.marks[1:]):
                d = {k: a1.get(k, 0.0) - a0.get(k, 0.0) for k in ("generation", "rollout", "training_step",
                                                                    "optimizer")}
                out.append({
                    "wall": t1 - t0,
                    "generation": d["generation"],
                    "scoring": d["rollout"] - d["generation"],
                    "loss_backward": d["training_step"] - d["rollout"],
                    "optimizer": d["optimizer"],
                    "other": (t1 - t0) - d["training_step"] - d["optimizer"],
                })
            return out

    return StepClock()


def quiet_trainer(trainer):
    from transformers import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    return trainer


def completion_lengths(trainer) -> list[float]:
    return [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]


# ---- setup ---------------------------------------------------------------------------------------

def medr1_args(recipe: Path, data: Path, model: Path, out: Path, steps: int, *extra: str):
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args

    argv = [
        "--config", str(recipe), "--data_dir", str(data), "--modality", MODALITY,
        "--model_name_or_path", str(model), "--output_dir", str(out),
        "--report_to", "none", "--log_completions", "false", "--save_strategy", "no",
        "--max_steps", str(steps), "--disable_tqdm", "true", *extra,
    ]
    return parse_args(argv, GRPOConfig, "bench")


def medr1_trainer(data: Path, model: Path, out: Path, steps: int, clock):
    """What `medr1 train --config configs/grpo/tiny_cpu.yaml ...` builds."""
    from medr1.train.grpo import build_trainer

    script_args, training_args, model_args = medr1_args(TINY_RECIPE, data, model, out, steps)
    trainer, _ = build_trainer(script_args, training_args, model_args, callbacks=[clock])
    return quiet_trainer(trainer)


def bare_rows(data: Path, image_size: int) -> list[dict]:
    """The modality's train split as a bare script would build it: prompt + decoded image + columns."""
    from PIL import Image

    from medr1.data.prompts import prompt_text

    image_root = Path(json.loads((data / "manifest.json").read_text())["image_root"])
    rows = []
    with open(data / "splits" / "modality" / MODALITY / "train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            problem = f"{record['question']} " + ", ".join(
                f"{chr(65 + i)}){text}" for i, text in enumerate(record["options"]))
            text = prompt_text(problem, "think", "train")
            with Image.open(image_root / record["image"]) as im:
                image = im.convert("RGB")
            if image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
            rows.append({
                "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}],
                "image": image,
                "answer": record["answer"],
                "options": record["options"],
            })
    return rows


def bare_config(out: Path, steps: int):
    from trl import GRPOConfig

    return GRPOConfig(output_dir=str(out), max_steps=steps, **BARE_CONFIG)


def bare_trainer(rows: list[dict], model: Path, out: Path, steps: int, clock):
    from datasets import Dataset
    from trl import GRPOTrainer

    from medr1.rewards.functions import reward_functions

    trainer = GRPOTrainer(
        model=str(model), reward_funcs=reward_functions(), args=bare_config(out, steps),
        train_dataset=Dataset.from_list(rows),
        callbacks=[clock],
    )
    return quiet_trainer(trainer)


def check_same_settings(data: Path, model: Path, out: Path, rows: list[dict], steps: int, image_size: int) -> None:
    """The bare script must train on exactly what medr1 trains on: same GRPOConfig values, same prompts,
    same pixels, same columns."""
    import numpy as np

    from medr1.data.records import prompt_dataset

    script_args, training_args, _ = medr1_args(TINY_RECIPE, data, model, out, steps)
    bare = bare_config(out, steps)
    differ = {f: (getattr(training_args, f), getattr(bare, f)) for f in COMPARED_FIELDS
              if getattr(training_args, f) != getattr(bare, f)}
    if differ:
        raise SystemExit(f"bare GRPOConfig differs from the recipe: {differ}")
    recipe = (script_args.image_size, script_args.prompt_style, script_args.answer_parsing)
    if recipe != (image_size, "think", "robust"):
        raise SystemExit("the recipe's image_size / prompt_style / answer_parsing changed; update the bare script")
    dataset = prompt_dataset(data, f"modality/{MODALITY}/train", style="think", stage="train", image_size=image_size)
    if len(dataset) != len(rows):
        raise SystemExit(f"medr1 has {len(dataset)} rows, the bare script {len(rows)}")
    def strip_none(value):  # Arrow gives the image part the text part's keys, set to None
        if isinstance(value, list):
            return [strip_none(v) for v in value]
        if isinstance(value, dict):
            return {k: strip_none(v) for k, v in value.items() if v is not None}
        return value

    for i, row in enumerate(rows):
        ours = dataset[i]
        same = strip_none(ours["prompt"]) == row["prompt"]
        if not same or ours["answer"] != row["answer"] or ours["options"] != row["options"]:
            raise SystemExit(f"row {i}: prompt or columns differ between medr1 and the bare script")
        if not np.array_equal(np.asarray(ours["image"]), np.asarray(row["image"])):
            raise SystemExit(f"row {i}: image pixels differ between medr1 and the bare script")


# ---- the CPU comparison --------------------------------------------------------------------------

def run_once(label: str, make, steps: int, rss: MemoryMonitor) -> dict:
    clock = step_clock()
    rss.label = label
    start = time.perf_counter()
    trainer = make(clock)
    setup = time.perf_counter() - start
    trainer.train()
    result = {"setup": setup, "steps": clock.steps(), "lengths": completion_lengths(trainer)}
    rss.label = None
    del trainer
    gc.collect()
    return result


def summarize(runs: list[dict]) -> dict:
    counted = [s for r in runs for s in r["steps"][1:]]
    firsts = [r["steps"][0]["wall"] for r in runs if r["steps"]]
    lengths = [x for r in runs for x in r["lengths"]]
    walls = [s["wall"] for s in counted]
    out = {
        "n": len(counted),
        "mean": statistics.fmean(walls),
        "median": statistics.median(walls),
        "stdev": statistics.stdev(walls) if len(walls) > 1 else 0.0,
        "first": statistics.fmean(firsts),
        "setup": statistics.fmean(r["setup"] for r in runs),
        "length": statistics.fmean(lengths) if lengths else float("nan"),
    }
    for key in ("generation", "scoring", "loss_backward", "optimizer", "other"):
        out[key] = statistics.fmean(s[key] for s in counted)
    return out


def cpu_section(args) -> bool:
    import torch

    work = Path(args.workdir or tempfile.mkdtemp(prefix="medr1-bench-train-"))
    try:
        start = time.perf_counter()
        data, model = build_workbench(work, args.vocab, args.per_modality, args.image_size)
        rows = bare_rows(data, args.image_size)
        check_same_settings(data, model, work / "check", rows, args.steps, args.image_size)
        print(f"setup: synthetic data ({len(rows)} {MODALITY} train questions), tiny model ({args.vocab} vocabulary, "
              f"{sum(1 for _ in model.iterdir())} files), settings checked identical, "
              f"{time.perf_counter() - start:.1f} s; torch threads {torch.get_num_threads()}")

        makers = {
            "medr1": lambda steps, i: lambda clock: medr1_trainer(data, model, work / f"out-medr1-{i}", steps, clock),
            "bare": lambda steps, i: lambda clock: bare_trainer(rows, model, work / f"out-bare-{i}", steps, clock),
        }
        runs: dict[str, list[dict]] = {"medr1": [], "bare": []}
        with MemoryMonitor(interval=0.02) as rss, phase_timers():
            # Warm-up pair (discarded): first imports, first kernels, allocator growth.
            for name in ("medr1", "bare"):
                run_once(f"warmup-{name}", makers[name](1, "warmup"), 1, rss)
            for i in range(args.rounds):
                order = ("medr1", "bare") if i % 2 == 0 else ("bare", "medr1")
                for name in order:
                    result = run_once(name, makers[name](args.steps, i), args.steps, rss)
                    runs[name].append(result)
                    walls = " ".join(f"{s['wall']:.2f}" for s in result["steps"])
                    print(f"  round {i + 1} {name:>5}: step seconds {walls} (first not counted)", flush=True)
        a, b = summarize(runs["medr1"]), summarize(runs["bare"])
        ratio = a["mean"] / b["mean"]
        ratio_median = a["median"] / b["median"]
        ok = ratio <= TARGET_RATIO
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print()
        print(f"==== GRPO step, tiny Qwen2-VL ({args.vocab} vocabulary), CPU, {args.rounds} rounds x "
              f"{args.steps} steps (shared 2-core machine: noisy) ====")
        print(f"{'':28}{'medr1':>10}{'bare TRL':>10}   (phase rows: s/step and share of the step)")
        print(f"{'counted steps':28}{a['n']:>10}{b['n']:>10}")
        print(f"{'s/step (mean)':28}{a['mean']:>10.3f}{b['mean']:>10.3f}")
        print(f"{'s/step (median)':28}{a['median']:>10.3f}{b['median']:>10.3f}")
        print(f"{'s/step (stdev)':28}{a['stdev']:>10.3f}{b['stdev']:>10.3f}")
        print(f"{'first step of a run (excl.)':28}{a['first']:>10.3f}{b['first']:>10.3f}")
        print(f"{'trainer construction s':28}{a['setup']:>10.3f}{b['setup']:>10.3f}")
        print(f"{'mean completion tokens':28}{a['length']:>10.2f}{b['length']:>10.2f}")
        for key, title in (("generation", "generation"), ("scoring", "scoring (ref logps, rewards)"),
                           ("loss_backward", "loss + backward"), ("optimizer", "optimizer step"),
                           ("other", "other (data, clip, logging)")):
            cells = (f"{s[key]:.3f} {100 * s[key] / s['mean']:.0f}%" for s in (a, b))
            print(f"{title:28}" + "".join(f"{cell:>10}" for cell in cells))
        for name in ("medr1", "bare"):
            print(f"peak RSS during {name:>5} runs: {rss.rss[name] / 1e6:,.0f} MB")
        print(f"process peak RSS: {peak / 1e6:,.0f} MB")
        print(f"ratio medr1/bare: {ratio:.3f} (mean), {ratio_median:.3f} (median); target <= {TARGET_RATIO:.2f}: "
              f"{'MET' if ok else 'NOT MET'}")
        return ok
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# ---- the GPU section -----------------------------------------------------------------------------

def gpu_leg(work: Path, model: Path, attn: str, tag: str, extra: list[str], args) -> dict:
    """Train `args.gpu_steps` steps with the paper recipe through medr1's path; the first step is not counted."""
    import torch

    from medr1.train.grpo import build_trainer

    script_args, training_args, model_args = medr1_args(
        PAPER_RECIPE, work / "data", model, work / f"out-{tag}", args.gpu_steps,
        "--attn_implementation", attn, *extra)
    clock = step_clock()
    start = time.perf_counter()
    trainer, _ = build_trainer(script_args, training_args, model_args, callbacks=[clock])
    quiet_trainer(trainer)
    setup = time.perf_counter() - start
    trainer.train()
    torch.cuda.synchronize()
    steps = clock.steps()[1:]  # the first step (CUDA / vLLM warm-up) is not counted
    lengths = completion_lengths(trainer)[1:]
    per_step = training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
    wall = statistics.fmean(s["wall"] for s in steps)
    gen = statistics.fmean(s["generation"] for s in steps)
    tokens = statistics.fmean(lengths) * per_step
    free, total = torch.cuda.mem_get_info()
    del trainer
    return {
        "s/step": wall, "generation s/step": gen, "loss+backward s/step": statistics.fmean(
            s["loss_backward"] for s in steps),
        "completion tokens/step": tokens, "completion tokens/s (step)": tokens / wall,
        "completion tokens/s (generation)": tokens / gen, "setup s": setup,
        "max_memory_allocated GB": torch.cuda.max_memory_allocated() / 1e9,
        "device memory in use at end GB": (total - free) / 1e9,
    }


def gpu_section(args) -> None:
    import importlib.util

    import torch

    print()
    if not torch.cuda.is_available():
        print("GPU section skipped: no CUDA device is available.")
        return
    has_vllm = importlib.util.find_spec("vllm") is not None
    attn = "flash_attention_2" if importlib.util.find_spec("flash_attn") is not None else "sdpa"
    work = Path(tempfile.mkdtemp(prefix="medr1-bench-train-gpu-"))
    try:
        from medr1.data.prepare import prepare
        from medr1.embedded.synth import write_synthetic_dataset
        from medr1.embedded.tiny_model import build_qwen2vl_2b

        print(f"GPU section on {torch.cuda.get_device_name()} (attention {attn}, vllm {'yes' if has_vllm else 'no'})")
        write_synthetic_dataset(work / "omnimedvqa", per_modality=30, image_size=384, seed=0)
        prepare(work / "omnimedvqa", work / "data", seed=42)
        model = build_qwen2vl_2b(work / "qwen2vl-2b-random", image_size=384)
        print(f"  Qwen2-VL-2B architecture, random weights -> {model}")
        available = {
            "hf": ("HF generate", []),
            # The scale-out switches the CPU tests only construct, here run for real on the 2B shape.
            "lora": ("HF + LoRA r16", ["--use_peft", "true", "--lora_r", "16", "--lora_alpha", "32",
                                       "--lora_target_modules", "q_proj", "k_proj", "v_proj", "o_proj"]),
            "frozen-vision": ("HF + frozen ViT", ["--freeze_vision_tower", "true"]),
            "vllm": ("vLLM colocate", ["--use_vllm", "true", "--vllm_mode", "colocate",
                                       "--vllm_gpu_memory_utilization", str(args.gpu_vllm_memory),
                                       "--vllm_max_model_length", "2048"]),
        }
        wanted = [name.strip() for name in args.gpu_legs.split(",") if name.strip()]
        unknown = sorted(set(wanted) - set(available))
        if unknown:
            raise SystemExit(f"unknown --gpu-legs {unknown}; choose from {sorted(available)}")
        if "vllm" in wanted and not has_vllm:
            wanted.remove("vllm")
        legs = [(name, *available[name]) for name in wanted]
        results = []
        with phase_timers():
            for tag, name, extra in legs:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                try:
                    results.append((name, gpu_leg(work, model, attn, tag, extra, args)))
                except Exception as error:  # report and go on: one failed leg should not lose the other
                    print(f"  {name}: FAILED: {type(error).__name__}: {error}", flush=True)
                    continue
                print(f"  {name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in results[-1][1].items()), flush=True)
                gc.collect()
        print()
        print(f"==== GRPO step, Qwen2-VL-2B architecture (random weights), {torch.cuda.get_device_name()}, "
              f"paper recipe, {args.gpu_steps - 1} counted steps ====")
        for name, r in results:
            print(f"{name:>14}: {r['s/step']:.2f} s/step (generation {r['generation s/step']:.2f} s), "
                  f"{r['completion tokens/step']:.0f} completion tokens/step = "
                  f"{r['completion tokens/s (step)']:.0f} tokens/s, peak allocated "
                  f"{r['max_memory_allocated GB']:.1f} GB")
        if not has_vllm:
            print("vLLM leg skipped: vllm is not installed (pip install -e '.[vllm]').")
        else:
            by_name = dict(results)
            if "HF generate" in by_name and "vLLM colocate" in by_name:
                print(f"vLLM speed-up per step: "
                      f"{by_name['HF generate']['s/step'] / by_name['vLLM colocate']['s/step']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", choices=("compact", "qwen"), default="compact",
                        help="tiny model vocabulary (qwen: the real 151k one, ~100x slower per step on CPU)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps per run, the first not counted (default 8; 2 with --vocab qwen)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating medr1/bare pairs after the warm-up pair (default 4; 1 with --vocab qwen)")
    parser.add_argument("--per-modality", type=int, default=50,
                        help="synthetic questions per modality (80 %% of them are the train split)")
    parser.add_argument("--image-size", type=int, default=56, help="must equal the recipe's image_size")
    add_section_arguments(parser)
    parser.add_argument("--gpu-steps", type=int, default=4, help="GPU optimizer steps per leg, the first not counted")
    parser.add_argument("--gpu-legs", default="hf,lora,frozen-vision,vllm",
                        help="GPU legs to run, comma-separated: hf, lora, frozen-vision, vllm (skipped if absent)")
    parser.add_argument("--gpu-vllm-memory", type=float, default=0.25, help="vllm_gpu_memory_utilization")
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 2 if args.vocab == "qwen" else 8
    if args.rounds is None:
        args.rounds = 1 if args.vocab == "qwen" else 4
    if args.steps < 2 or args.rounds < 1 or args.gpu_steps < 2:
        parser.error("--steps and --gpu-steps must be >= 2 (the first step of a run is not counted), --rounds >= 1")

    quiet_libraries()
    # The random model never earns a reward, so the collapse guard logs an error after 5 steps; it still
    # runs (its cost is part of medr1's path), only its message is silenced.
    logging.getLogger("medr1.train.grpo").setLevel(logging.CRITICAL)
    return run_sections(args, cpu_section, gpu_section)


if __name__ == "__main__":
    sys.exit(main())
