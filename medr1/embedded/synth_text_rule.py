"""The text learning proof: GRPO with the rule verifier teaches a tiny causal LM an open-ended rule it cannot
guess, on a CPU in minutes.

Questions name one of eight keywords inside varied wording ("Case 17: the report mentions the spleen. What colour
is associated with it?"); a fixed rule maps the keyword to one of four colour words, the reference answer
(open-ended: `options: []`). A format warm-start (supervised, in HuatuoGPT-o1's `## Thinking` / `## Final
Response` format) names the keyword in its thinking and gives a colour drawn at random, so held-out accuracy
starts at chance (0.25); GRPO with `verifier: rule` must learn keyword -> colour from the reward alone. The
shuffled-reward control (`reward_ablation: shuffle`) runs the same with the rewards permuted within each group.

The records are canonical text records; the stages are the project's own pieces (`medr1.data.records.prompt_rows`,
`medr1.train.sft.target_text`, `medr1.train.grpo.load_policy` / `build_reward_funcs` / `CollapseGuard`, the
verifier reward) around TRL's SFTTrainer and GRPOTrainer.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DATASET = "synth-text-rule"
COLOURS = ("red", "green", "blue", "yellow")
# The fixed rule: two keywords per colour, so every colour is the answer equally often.
RULE = {"kidney": "red", "spleen": "red", "liver": "green", "brain": "green",
        "lung": "blue", "bone": "blue", "heart": "yellow", "skin": "yellow"}
TEMPLATES = (
    "What colour is associated with the {cue}?",
    "Case {n}: the report mentions the {cue}. What colour is associated with it?",
    "Patient {n} has a finding in the {cue}. Which colour goes with it?",
    "Note {n} names the {cue}. What is its colour?",
)
STYLE = "huatuo"


def question_record(index: int, split: str, cue: str, template: int, n: int) -> dict:
    """One canonical open-ended text record; `cue` is the keyword the rule reads."""
    return {"question_id": f"{DATASET}-{split}-{index}", "dataset": DATASET, "modality": "text", "task": "colour rule",
            "question": TEMPLATES[template].format(cue=cue, n=n), "options": [], "answer": RULE[cue], "cue": cue}


def make_records(n_train: int, n_test: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Train and held-out test records, balanced over keywords; no test question text occurs in train."""
    rng = random.Random(f"{DATASET}:{seed}")
    cues = sorted(RULE)
    seen: set[str] = set()
    splits = {"train": [], "test": []}
    for split, size in (("train", n_train), ("test", n_test)):
        while len(splits[split]) < size:
            record = question_record(len(splits[split]), split, cues[len(splits[split]) % len(cues)],
                                     rng.randrange(len(TEMPLATES)), rng.randrange(1, 1000))
            if record["question"] in seen:
                continue
            seen.add(record["question"])
            splits[split].append(record)
    return splits["train"], splits["test"]


def warm_start_completion(record: dict, seed: int) -> str:
    """The warm-start target: thinking names the keyword; the final response is a colour drawn at random."""
    from medr1.train.sft import target_text

    colour = random.Random(f"{seed}:{record['question_id']}").choice(COLOURS)
    return target_text(colour, STYLE, f"The question names the {record['cue']}.")


@dataclass
class TextRuleSettings:
    out: Path = Path("outputs/text-rule")
    seed: int = 0
    reward_ablation: str = "none"
    n_train: int = 2000
    n_test: int = 200
    arch: str = "qwen3"  # no default system turn: prompts half as long as Qwen2.5's
    hidden_size: int = 64
    layers: int = 2
    compact_vocab_size: int = 512
    sft_steps: int = 300
    sft_lr: float = 2e-3
    sft_batch: int = 16
    grpo_steps: int = 300
    grpo_lr: float = 1e-3
    questions_per_step: int = 8  # 4 did not learn in 300 steps (lr 1e-3 or 3e-3); 8 learned by step ~200
    num_generations: int = 8
    beta: float = 0.04
    max_completion_length: int = 20  # the warm-start's completion is 14 tokens and the end token
    dynamic_sampling: bool = False
    threads: int | None = 1


def build_model(settings: TextRuleSettings, train: list[dict]) -> Path:
    """The tiny causal LM with a compact vocabulary trained on the questions and the answer format."""
    from medr1.embedded.tiny_causal import build_tiny_causal, text_corpus

    out = Path(settings.out) / "tiny-model"
    shutil.rmtree(out, ignore_errors=True)
    # Only this style's prompts and the warm-start's completions: the merges go to what the model reads and writes.
    completions = [warm_start_completion(r, settings.seed) for r in train]
    corpus = text_corpus(train, completions=completions, styles=[STYLE])
    return build_tiny_causal(out, arch=settings.arch, vocab="compact", corpus=corpus,
                             hidden_size=settings.hidden_size, layers=settings.layers, seed=settings.seed,
                             compact_vocab_size=settings.compact_vocab_size)


def _script_args(settings: TextRuleSettings):
    from medr1.train.configs import MedR1Arguments

    return MedR1Arguments(prompt_style=STYLE, verifier="rule", reward_ablation=settings.reward_ablation,
                          dynamic_sampling=settings.dynamic_sampling, collapse_patience=10)


def _model_args(path: Path):
    from trl import ModelConfig

    return ModelConfig(model_name_or_path=str(path), dtype="float32")


def _common(settings: TextRuleSettings, output_dir: Path) -> dict:
    return {"output_dir": str(output_dir), "seed": settings.seed, "use_cpu": True, "bf16": False,
            "gradient_checkpointing": False, "dataloader_num_workers": 0, "save_strategy": "no", "report_to": "none",
            "lr_scheduler_type": "constant", "warmup_steps": 0, "weight_decay": 0.0}


def warm_start(settings: TextRuleSettings, model: Path, train: list[dict]) -> Path:
    """Supervised format warm-start on `train` (random colours); returns the saved checkpoint."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from medr1.data.records import prompt_rows
    from medr1.train.grpo import load_policy

    out = Path(settings.out) / "warmstart"
    shutil.rmtree(out, ignore_errors=True)
    rows = prompt_rows(train, style=STYLE, completion=lambda r: warm_start_completion(r, settings.seed))
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    policy, tokenizer = load_policy(_model_args(model), _script_args(settings))
    config = SFTConfig(**_common(settings, out), max_steps=settings.sft_steps, learning_rate=settings.sft_lr,
                       per_device_train_batch_size=settings.sft_batch, logging_steps=50, max_length=256)
    trainer = SFTTrainer(model=policy, args=config, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def run_grpo(settings: TextRuleSettings, model: Path, train: list[dict]) -> tuple[Path, list[dict]]:
    """GRPO with the rule verifier (and the huatuo format reward); returns the policy and the log history."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from medr1.data.records import prompt_rows
    from medr1.embedded.demo import LogHistory
    from medr1.train.grpo import CollapseGuard, build_reward_funcs, load_policy

    out = Path(settings.out) / "grpo"
    shutil.rmtree(out, ignore_errors=True)
    script_args = _script_args(settings)
    dataset = Dataset.from_list(prompt_rows(train, style=STYLE))
    policy, tokenizer = load_policy(_model_args(model), script_args)
    config = GRPOConfig(**_common(settings, out), max_steps=settings.grpo_steps, learning_rate=settings.grpo_lr,
                        num_generations=settings.num_generations,
                        per_device_train_batch_size=settings.questions_per_step * settings.num_generations,
                        max_completion_length=settings.max_completion_length, temperature=1.0, beta=settings.beta,
                        loss_type="grpo", scale_rewards="group", logging_steps=1, log_completions=False)
    funcs = build_reward_funcs(script_args, settings.num_generations, settings.seed)
    history = LogHistory()
    trainer_class, extra = GRPOTrainer, {}
    if settings.dynamic_sampling:
        from medr1.train.dynamic_sampling import DynamicSamplingGRPOTrainer

        trainer_class, extra = DynamicSamplingGRPOTrainer, {"max_resample_rounds": 3}
    trainer = trainer_class(model=policy, reward_funcs=funcs, args=config, train_dataset=dataset,
                            processing_class=tokenizer,
                            callbacks=[CollapseGuard(float(len(funcs)), script_args.collapse_patience), history],
                            **extra)
    trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    return out, history.history


def held_out_accuracy(model: Path, records: list[dict], max_new_tokens: int, batch_size: int = 100) -> dict:
    """Greedy verifier accuracy (the rule verifier on the final response) and format rate on `records`."""
    import torch

    from medr1.data.records import prompt_rows
    from medr1.evaluation.evaluate import load_for_generation
    from medr1.rewards.answers import huatuo_is_well_formed
    from medr1.rewards.verifiers import final_response, rule_verdict

    policy, tokenizer = load_for_generation(model)
    outputs = []
    for start in range(0, len(records), batch_size):
        rows = prompt_rows(records[start:start + batch_size], style=STYLE)
        texts = [tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False) for r in rows]
        inputs = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            ids = policy.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        outputs += tokenizer.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    correct = [rule_verdict(final_response(o, STYLE) or "", r["answer"]) for o, r in zip(outputs, records, strict=True)]
    answers = [final_response(o, STYLE) for o in outputs]
    return {"accuracy": sum(correct) / len(records), "format": sum(map(huatuo_is_well_formed, outputs)) / len(records),
            "n": len(records), "answers": {c: answers.count(c) for c in (*COLOURS, None)}, "example": outputs[0]}


def run(settings: TextRuleSettings) -> dict:
    """Data, tiny model, warm-start, held-out accuracy before, GRPO, held-out accuracy after; the summary."""
    import torch

    started, cpu_started = time.perf_counter(), time.process_time()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    train, test = make_records(settings.n_train, settings.n_test, settings.seed)
    seconds = {}
    clock = time.perf_counter()
    model = build_model(settings, train)
    start = warm_start(settings, model, train)
    seconds["warm_start"] = time.perf_counter() - clock
    before = held_out_accuracy(start, test, settings.max_completion_length)
    clock = time.perf_counter()
    policy, history = run_grpo(settings, start, train)
    seconds["grpo"] = time.perf_counter() - clock
    after = held_out_accuracy(policy, test, settings.max_completion_length)
    verifier = [e["rewards/verifier_reward/mean"] for e in history if "rewards/verifier_reward/mean" in e]
    summary = {"before": before, "after": after, "seconds": time.perf_counter() - started,
               "cpu_seconds": time.process_time() - cpu_started, "stage_seconds": seconds,
               "verifier_reward_first_10": sum(verifier[:10]) / max(1, len(verifier[:10])),
               "verifier_reward_last_10": sum(verifier[-10:]) / max(1, len(verifier[-10:])),
               "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}}
    logger.info("text rule (seed %d, ablation %s): held-out verifier accuracy %.3f -> %.3f in %.0f s",
                settings.seed, settings.reward_ablation, before["accuracy"], after["accuracy"], summary["seconds"])
    return summary


def main(argv: list[str] | None = None) -> int:
    """`python -m medr1.embedded.synth_text_rule --out DIR [--seed N] [--reward-ablation shuffle]`: one run,
    its summary in DIR/summary.json."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m medr1.embedded.synth_text_rule",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-ablation", choices=("none", "shuffle"), default="none")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a TextRuleSettings field (repeatable)")
    args = parser.parse_args(argv)
    overrides = {key: json.loads(value) for key, _, value in (pair.partition("=") for pair in args.set)}
    settings = TextRuleSettings(out=args.out, seed=args.seed, reward_ablation=args.reward_ablation,
                                threads=args.threads or None, **overrides)
    summary = run(settings)
    Path(args.out, "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
