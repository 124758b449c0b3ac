"""`medr1 demo`: prove on a CPU that GRPO learns, end to end, in minutes.

synthetic OmniMedVQA -> prepared DATA_DIR -> tiny Qwen2-VL (compact vocabulary) -> a short supervised
warm-start that teaches the format and to name the finding's colour in <think>, answer letters at random
(so accuracy stays at chance) -> GRPO (TRL's GRPOTrainer via
`medr1.train.grpo.train`) on one modality's train split -> greedy evaluation of the warm-start ("before") and
of the GRPO policy ("after") on that modality's held-out test split -> a reward-curve plot and
`summary.json`. Every stage is the project's own stage function, configured from the recipe files
`configs/sft/demo_warmstart_cpu.yaml` and `configs/grpo/demo_cpu.yaml` exactly as `medr1 sft` and
`medr1 train` would be.

`--reward-ablation shuffle` runs the control: the same rewards permuted within each group, so no
completion is rewarded for what it did; accuracy must then not rise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
GRPO_RECIPE = "configs/grpo/demo_cpu.yaml"
SFT_RECIPE = "configs/sft/demo_warmstart_cpu.yaml"


def recipe_path(path: str | Path) -> Path:
    """A recipe path as given, or else relative to the source checkout (so `medr1 demo` works anywhere)."""
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    return REPO_ROOT / path


@dataclass
class DemoSettings:
    out: Path = Path("outputs/demo")
    modality: str = "CT"
    per_modality: int = 1000
    seed: int = 42
    reward_ablation: str = "none"
    grpo_recipe: str = GRPO_RECIPE
    sft_recipe: str = SFT_RECIPE
    # Extra `--key value` overrides on top of the recipes (the same flags `medr1 train`/`medr1 sft` take).
    grpo_overrides: list[str] = field(default_factory=list)
    sft_overrides: list[str] = field(default_factory=list)
    # The tiny model.
    hidden_size: int = 64
    layers: int = 2
    whole_think_words: bool = True  # each <think> word one token of the compact vocabulary (see think_words)
    eval_batch_size: int = 50
    # torch threads; None keeps torch's default (all cores). The outcome depends on it (summation order).
    threads: int | None = None
    target_accuracy: float = 0.80


class LogHistory(TrainerCallback):
    """Keeps every `on_log` dict: the reward curve comes from the trainer's own log history."""

    def __init__(self):
        self.history: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            self.history.append({"step": state.global_step, **logs})


# ---- stages -------------------------------------------------------------------------------------

def build_data(out: Path, per_modality: int, seed: int) -> Path:
    """Synthetic raw OmniMedVQA under out/raw, prepared into out/data; returns DATA_DIR."""
    from medr1.data.prepare import prepare
    from medr1.embedded.synth import FINDING_TASKS, write_synthetic_dataset

    raw, data_dir = Path(out) / "raw", Path(out) / "data"
    for path in (raw, data_dir):
        shutil.rmtree(path, ignore_errors=True)
    # Fixed option order, so the letter follows from the image alone (see medr1/embedded/synth.py for why), and only
    # the four finding tasks, so every letter is gold equally often: no single letter beats chance.
    write_synthetic_dataset(raw, per_modality=per_modality, seed=seed, option_order="fixed", tasks=FINDING_TASKS)
    prepare(raw, data_dir, seed=seed)
    return data_dir


def build_model(out: Path, data_dir: Path, image_size: int, hidden_size: int, layers: int, seed: int,
                whole_think_words: bool = True) -> Path:
    """The tiny Qwen2-VL with a compact vocabulary trained on the dataset's prompt texts; with `whole_think_words`,
    also on the warm start's <think> words (`think_words`), so that each is one token."""
    from medr1.embedded.tiny_model import build_tiny_model, corpus_from_records

    model_dir = Path(out) / "tiny-model"
    shutil.rmtree(model_dir, ignore_errors=True)
    corpus = corpus_from_records(Path(data_dir) / "records.jsonl")
    vocab_size = 512
    if whole_think_words:
        # A tenth of the corpus, so BPE merges each word whole; 64 more merges, so the prompts keep theirs
        # (about 125 tokens each, 132 at 512 without the words).
        corpus += think_words() * (len(corpus) // 10)
        vocab_size = 576
    return build_tiny_model(model_dir, vocab="compact", corpus=corpus, image_size=image_size,
                            hidden_size=hidden_size, layers=layers, seed=seed, compact_vocab_size=vocab_size)


def think_words() -> list[str]:
    """The words the warm start writes in <think>, one token each of the demo's compact vocabulary (a colour name
    is one token in a real VLM's vocabulary). Spelled out letter by letter (`--spelled-think-words`: nothing in
    the prompts has them), GRPO can drift one into another: on MRI (seed 42) every blue finding came to be called
    "blllow" and answered with yellow's letter (0.705). Whole, GRPO learns the colour -> letter mapping within
    50-150 steps (README, "The learning demo")."""
    from medr1.embedded.synth import COLOUR_NAMES, NO_FINDING

    return [f"<think>{word}</think>" for word in (*COLOUR_NAMES, NO_FINDING)]


def _stage_args(recipe: str, model: Path, data_dir: Path, modality: str, output_dir: Path, seed: int,
                overrides: list[str], config_class, prog: str, extra: list[str] = ()):
    from medr1.train.grpo import parse_args

    argv = [
        "--config", str(recipe_path(recipe)),
        "--model_name_or_path", str(model),
        "--data_dir", str(data_dir),
        "--modality", modality,
        "--output_dir", str(output_dir),
        "--seed", str(seed),
        *extra,
        *overrides,
    ]
    return parse_args(argv, config_class, prog)


def read_recipe(recipe: str, overrides: list[str] = (), config_class=None):
    """The recipe's (MedR1Arguments, config, ModelConfig) without running anything."""
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args

    return parse_args(["--config", str(recipe_path(recipe)), *overrides], config_class or GRPOConfig, "medr1 demo")


def warm_start(model: Path, data_dir: Path, modality: str, output_dir: Path, seed: int,
               recipe: str = SFT_RECIPE, overrides: list[str] = ()) -> Path:
    """Format-only SFT (answer letters at random) via `medr1.train.sft.train`, with `<think>` naming the
    finding's colour read from each image (`finding_colour_reasoning`)."""
    from trl import SFTConfig

    from medr1.embedded.synth import finding_colour_reasoning
    from medr1.train import sft

    shutil.rmtree(output_dir, ignore_errors=True)
    args = _stage_args(recipe, model, data_dir, modality, output_dir, seed, list(overrides), SFTConfig, "medr1 sft")
    if args[0].sft_answers not in ("random", "balanced"):
        raise ValueError("the demo's warm-start must not train on the gold letters (sft_answers: random or balanced)")
    return sft.train(*args, reasoning=finding_colour_reasoning(args[0].data_dir, args[0].image_size))


def run_grpo(model: Path, data_dir: Path, modality: str, output_dir: Path, seed: int, reward_ablation: str = "none",
             recipe: str = GRPO_RECIPE, overrides: list[str] = ()) -> tuple[Path, list[dict], object]:
    """GRPO via `medr1.train.grpo.train`; returns the policy, the trainer's log history and the parsed config."""
    from trl import GRPOConfig

    from medr1.train import grpo

    shutil.rmtree(output_dir, ignore_errors=True)
    script_args, training_args, model_args = _stage_args(
        recipe, model, data_dir, modality, output_dir, seed, list(overrides), GRPOConfig, "medr1 train",
        extra=["--reward_ablation", reward_ablation],
    )
    history = LogHistory()
    path = grpo.train(script_args, training_args, model_args, callbacks=[history])
    return path, history.history, (script_args, training_args)


def held_out_accuracy(model: Path, data_dir: Path, modality: str, out: Path, prompt: str, image_size: int,
                      max_new_tokens: int, batch_size: int = 50) -> dict:
    """Greedy accuracy on the modality's test split, with the training prompt wording (stage="train")."""
    from medr1.evaluation.evaluate import evaluate

    shutil.rmtree(out, ignore_errors=True)
    return evaluate(model, data_dir, f"modality/{modality}/test", out, prompt=prompt, batch_size=batch_size,
                    image_size=image_size, max_new_tokens=max_new_tokens, num_workers=0, stage="train")


# ---- reporting ----------------------------------------------------------------------------------

def colours_seen(data_dir: Path, modality: str, image_size: int) -> dict[str, str]:
    """question_id -> the colour read from that test question's image (`finding_colour_reasoning`)."""
    from medr1.data.records import load_split
    from medr1.embedded.synth import finding_colour_reasoning

    seen = finding_colour_reasoning(data_dir, image_size)
    return {r["question_id"]: seen({**r, "image_path": r["image"]})
            for r in load_split(data_dir, f"modality/{modality}/test")}


def colour_named_rate(eval_dir: Path, seen: dict[str, str]) -> float:
    """The share of an evaluation's predictions whose <think> word is the colour seen in that question's image
    (`colours_seen`): what the model sees, whatever letter it then answers."""
    import re

    n = named = 0
    with open(Path(eval_dir) / "predictions.jsonl", encoding="utf-8") as handle:
        for line in handle:
            prediction = json.loads(line)
            said = re.search(r"<think>\s*(\S+?)\s*</think>", prediction["output"])
            n += 1
            named += bool(said) and said.group(1) == seen[prediction["question_id"]]
    return named / n if n else 0.0


REWARD_KEYS = {
    "total reward": "reward",
    "accuracy reward": "rewards/accuracy_reward/mean",
    "format reward": "rewards/format_reward/mean",
    "held-out accuracy (greedy)": "held_out/accuracy",  # logged every eval_every_steps
}


def reward_curves(history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    curves = {}
    for label, key in REWARD_KEYS.items():
        curves[label] = [(entry["step"], float(entry[key])) for entry in history if key in entry]
    return curves


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first logged step whose held-out accuracy is >= target (None if the curve never gets there)."""
    return next((step for step, accuracy in curve if accuracy >= target), None)


def plot_rewards(history: list[dict], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    curves = reward_curves(history)
    longest = max(len(points) for points in curves.values())
    for label, points in curves.items():
        if points:
            steps, values = zip(*points)
            sparse = len(points) < 0.2 * longest
            ax.plot(steps, values, label=label, linewidth=1, marker="o" if sparse else None)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean reward over the step's completions; accuracy")
    ax.set_ylim(-0.05, 2.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def cross_modality_table(out: Path, data_dir: Path, modality: str, policy: Path, start: Path, prompt: str,
                         image_size: int, max_new_tokens: int, per_cell: int = 50) -> Path:
    """A small cross-modality table: the GRPO policy (trained on `modality`) and its warm start, each on
    the first `per_cell` questions of every modality's test split, through `medr1 matrix` and `tables`."""
    from medr1.evaluation.matrix import run_matrix
    from medr1.evaluation.tables import write_tables

    checkpoints, results = Path(out) / "checkpoints", Path(out) / "results"
    shutil.rmtree(checkpoints, ignore_errors=True)
    shutil.rmtree(results, ignore_errors=True)
    checkpoints.mkdir(parents=True)
    (checkpoints / modality).symlink_to(Path(policy).resolve(), target_is_directory=True)
    run_matrix("modality", data_dir, results, checkpoints, prompt=prompt, models=[str(start)], limit=per_cell,
               image_size=image_size, max_new_tokens=max_new_tokens, num_workers=0, stage="train")
    write_tables(results)
    return results / "cross_modality.md"


# ---- the whole demo -----------------------------------------------------------------------------

@contextlib.contextmanager
def timed(timings: dict[str, float], stage: str):
    """Adds the seconds the `with` block took to `timings[stage]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = time.perf_counter() - start


def run_demo(settings: DemoSettings) -> dict:
    import torch

    started = time.perf_counter()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    script_args, grpo_config, _ = read_recipe(settings.grpo_recipe, settings.grpo_overrides)
    image_size, prompt = script_args.image_size, script_args.prompt_style
    max_new_tokens = grpo_config.max_completion_length
    timings = {}

    with timed(timings, "data_and_model"):
        data_dir = build_data(out, settings.per_modality, settings.seed)
        model_dir = build_model(out, data_dir, image_size, settings.hidden_size, settings.layers, settings.seed,
                                settings.whole_think_words)
    with timed(timings, "warm_start"):
        start = warm_start(model_dir, data_dir, settings.modality, out / "warmstart", settings.seed,
                           settings.sft_recipe, settings.sft_overrides)
    with timed(timings, "eval_before"):
        before = held_out_accuracy(start, data_dir, settings.modality, out / "eval" / "before", prompt, image_size,
                                   max_new_tokens, settings.eval_batch_size)
    with timed(timings, "grpo"):
        policy, history, (grpo_script, grpo_args) = run_grpo(
            start, data_dir, settings.modality, out / "grpo", settings.seed, settings.reward_ablation,
            settings.grpo_recipe, settings.grpo_overrides,
        )
    with timed(timings, "eval_after"):
        after = held_out_accuracy(policy, data_dir, settings.modality, out / "eval" / "after", prompt, image_size,
                                  max_new_tokens, settings.eval_batch_size)
    with timed(timings, "cross_modality_table"):
        table = cross_modality_table(out, data_dir, settings.modality, policy, start, prompt, image_size,
                                     max_new_tokens)

    plot = plot_rewards(history, out / "reward_curve.png",
                        f"GRPO on {settings.modality} (reward ablation: {settings.reward_ablation})")
    (out / "log_history.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    vocab_size = _vocab_size(model_dir)
    curve = reward_curves(history)["held-out accuracy (greedy)"]
    seen = colours_seen(data_dir, settings.modality, image_size)  # each test image decoded once for both
    summary = {
        "before_accuracy": before["accuracy"],
        "after_accuracy": after["accuracy"],
        # the share of test questions whose <think> names the colour drawn in the image: the warm start's perception
        "before_colour_named": colour_named_rate(out / "eval" / "before", seen),
        "after_colour_named": colour_named_rate(out / "eval" / "after", seen),
        "before_format_compliance": before["format_compliance"],
        "after_format_compliance": after["format_compliance"],
        "n_test": after["n"],
        # greedy accuracy on the first eval_questions of the test split, every eval_every_steps steps
        "held_out_curve": curve,
        "target_accuracy": settings.target_accuracy,
        "steps_to_target": steps_to_reach(curve, settings.target_accuracy),
        "seconds": time.perf_counter() - started,
        "torch_threads": torch.get_num_threads(),
        "stage_seconds": timings,
        "vocabulary": f"compact ({vocab_size} tokens, byte-level BPE trained on the synthetic prompts; "
                      "not the real Qwen2 vocabulary)",
        "modality": settings.modality,
        "reward_ablation": settings.reward_ablation,
        "eval_prompt": f"{prompt}, training wording (stage=train), greedy, max_new_tokens={max_new_tokens}",
        "settings": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()},
            "image_size": image_size,
            "prompt_style": prompt,
            "grpo": {k: getattr(grpo_args, k) for k in (
                "num_generations", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                "learning_rate", "lr_scheduler_type", "beta", "loss_type", "temperature",
                "max_completion_length", "scale_rewards")},
            "grpo_steps_done": max((e["step"] for e in history), default=0),
        },
        "paths": {
            "data_dir": str(data_dir), "tiny_model": str(model_dir), "warm_start": str(start),
            "grpo_policy": str(policy), "eval_before": str(out / "eval" / "before"),
            "eval_after": str(out / "eval" / "after"), "reward_curve": str(plot),
            "log_history": str(out / "log_history.json"), "cross_modality_table": str(table),
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


def _vocab_size(model_dir: Path) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(model_dir))


FAST_PER_MODALITY = 500  # the CI-size data


def format_report(summary: dict, out: Path) -> str:
    """The demo's closing report: the cross-modality table, before/after accuracy and where the files are."""
    lines = [
        Path(summary["paths"]["cross_modality_table"]).read_text(encoding="utf-8").split("\n## ")[0],
        f"held-out {summary['modality']} test accuracy (n={summary['n_test']}, greedy):",
        f"  before GRPO (warm-start, letters at random): {summary['before_accuracy']:.3f}",
        f"  after GRPO:                               {summary['after_accuracy']:.3f}",
        f"  first step with held-out >= {summary['target_accuracy']:.2f}: {summary['steps_to_target']}",
        f"<think> named the drawn colour: {summary['before_colour_named']:.3f} before, "
        f"{summary['after_colour_named']:.3f} after",
        f"demo took {summary['seconds']:.0f} s; vocabulary: {summary['vocabulary']}",
        *(f"  {name:<12} {path}" for name, path in summary["paths"].items()),
        f"  summary      {Path(out) / 'summary.json'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medr1 demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--modality", default="CT")
    parser.add_argument("--per-modality", type=int, help="synthetic questions per modality")
    parser.add_argument("--fast", action="store_true",
                        help=f"the CI-size data: {FAST_PER_MODALITY} synthetic questions per modality")
    parser.add_argument("--reward-ablation", choices=("none", "shuffle"), default="none")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--grpo-recipe", default=GRPO_RECIPE)
    parser.add_argument("--sft-recipe", default=SFT_RECIPE)
    parser.add_argument("--grpo-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a GRPO recipe setting (repeatable)")
    parser.add_argument("--sft-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a warm-start recipe setting (repeatable)")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, i.e. all cores)")
    parser.add_argument("--spelled-think-words", action="store_true",
                        help="leave the <think> words out of the compact vocabulary's corpus, so they are spelled "
                             "letter by letter (the demo's default before; GRPO may drift one word into another)")
    args = parser.parse_args(argv)

    def flags(pairs):
        result = []
        for pair in pairs:
            key, _, value = pair.partition("=")
            result += [f"--{key}", value]
        return result

    settings = DemoSettings(
        out=args.out, modality=args.modality, seed=args.seed, reward_ablation=args.reward_ablation,
        grpo_recipe=args.grpo_recipe, sft_recipe=args.sft_recipe,
        grpo_overrides=flags(args.grpo_set), sft_overrides=flags(args.sft_set),
        hidden_size=args.hidden_size, layers=args.layers, threads=args.threads,
        whole_think_words=not args.spelled_think_words,
    )
    if args.fast:
        settings.per_modality = FAST_PER_MODALITY
    if args.per_modality:
        settings.per_modality = args.per_modality
    summary = run_demo(settings)
    logger.info("demo finished\n%s", format_report(summary, settings.out))
    return 0
