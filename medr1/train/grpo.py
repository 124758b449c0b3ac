"""GRPO training on one modality, task or split: `medr1 train --config configs/grpo/<recipe>.yaml --modality CT`
(or `--split dataset/medqa/train`, a text dataset's split from `medr1 prepare --dataset`).

TRL's `GRPOTrainer` is the engine; this module supplies the data (split -> prompts + images), the
rule-based rewards, the output layout (`outputs/grpo/<modality-or-task>/`), resume, and a guard that
makes a collapsed run (no reward variance left, so no gradient ever again) loud instead of silent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

from transformers import TrainerCallback

from medr1.train.configs import MedR1Arguments
from medr1.train.monitors import HeldOutAccuracy, with_domain_metrics

logger = logging.getLogger(__name__)

COLLAPSE_EXIT_CODE = 3
DEPRECATED_PROPERTY_WARNING = r"`is_gradient_checkpointing` is deprecated"


class CollapseError(RuntimeError):
    pass


def group_advantages(rewards: list[float], num_generations: int, eps: float = 1e-4) -> list[float]:
    """(r - group mean) / (group std + eps), std unbiased: the GRPO advantage the recipes rely on
    (TRL's `scale_rewards="group"`). A group whose rewards are all equal gets zero advantage."""
    if len(rewards) % num_generations:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {num_generations}")
    advantages = []
    for start in range(0, len(rewards), num_generations):
        group = rewards[start:start + num_generations]
        mean = sum(group) / len(group)
        var = sum((r - mean) ** 2 for r in group) / (len(group) - 1) if len(group) > 1 else 0.0
        advantages += [(r - mean) / (var ** 0.5 + eps) for r in group]
    return advantages


def is_collapsed(logs: dict, max_reward: float) -> bool:
    """Every group had zero reward variance and the reward is below its maximum: nothing left to learn
    from, yet not solved. (All-correct groups also have zero variance; that is success, not collapse.)"""
    frac_zero_std = logs.get("frac_reward_zero_std")
    reward = logs.get("reward")
    if frac_zero_std is None or reward is None:
        return False
    return frac_zero_std >= 0.999 and reward < max_reward - 1e-6


class CollapseGuard(TrainerCallback):
    """Counts consecutive collapsed logging steps; after `patience`, warns, or saves and stops."""

    def __init__(self, max_reward: float, patience: int = 5, action: str = "warn"):
        if action not in ("warn", "stop"):
            raise ValueError(f"collapse_action must be warn or stop, not {action!r}")
        self.max_reward, self.patience, self.action = max_reward, patience, action
        self.streak = 0
        self.fired_at_step: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "frac_reward_zero_std" not in logs:
            return
        self.streak = self.streak + 1 if is_collapsed(logs, self.max_reward) else 0
        if self.patience <= 0 or self.streak < self.patience or self.fired_at_step is not None:
            return
        self.fired_at_step = state.global_step
        message = (
            f"GRPO collapse at step {state.global_step}: for {self.streak} logging steps every group had zero "
            f"reward variance (frac_reward_zero_std={logs['frac_reward_zero_std']:.2f}, "
            f"reward={logs['reward']:.3f} of {self.max_reward:.1f}), so no gradient flows. "
            "Lower the learning rate, raise max_completion_length, or warm-start the answer format."
        )
        logger.error(message)
        if self.action == "stop":
            control.should_save = True
            control.should_training_stop = True


def shuffled_within_groups(reward_func, num_generations: int, seed: int = 0):
    """A control with the learning signal removed: the same rewards, permuted inside each group, so
    a reward no longer belongs to the completion that earned it."""
    rng = random.Random(seed)

    def wrapped(completions, **kwargs):
        rewards = list(reward_func(completions, **kwargs))
        for start in range(0, len(rewards), num_generations):
            group = rewards[start:start + num_generations]
            rng.shuffle(group)
            rewards[start:start + num_generations] = group
        return rewards

    wrapped.__name__ = reward_func.__name__
    return wrapped


def build_reward_funcs(args: MedR1Arguments, num_generations: int, seed: int = 0) -> list:
    """[format_reward, accuracy_reward]; with a `verifier`, verifier_reward takes accuracy_reward's place (it
    checks open-ended answers against the reference text and multiple choice against the gold option)."""
    from medr1.rewards.functions import reward_functions

    funcs = reward_functions(style=args.prompt_style, mode=args.answer_parsing)
    if args.verifier != "none":
        from medr1.rewards.verifiers import VerifierSettings, verifier_reward

        funcs = [funcs[0], verifier_reward(VerifierSettings.from_args(args), style=args.prompt_style)]
    if args.reward_ablation == "shuffle":
        funcs = [shuffled_within_groups(f, num_generations, seed + i) for i, f in enumerate(funcs)]
    elif args.reward_ablation != "none":
        raise ValueError(f"reward_ablation must be none or shuffle, not {args.reward_ablation!r}")
    return funcs


def freeze_vision_tower(model, keep_projector: bool = False) -> int:
    """Stop gradients into the vision encoder and its projector, the modules the family table names for the
    model's `model_type` (`medr1/data/families.py`); with `keep_projector`, into the encoder alone, so the
    projector still learns what the decoder should read from it. Returns the number of frozen tensors."""
    from medr1.data.families import family_of

    family = family_of(model)
    frozen = 0
    for name, param in model.named_parameters():
        if family.is_vision_parameter(name) and not (keep_projector and family.is_projector_parameter(name)):
            param.requires_grad_(False)
            frozen += 1
    if not frozen:
        raise ValueError(f"{type(model).__name__} has no parameters under {family.vision_modules}; "
                         "cannot freeze a vision tower")
    return frozen


def peft_config_for(model_args, model):
    """TRL's LoRA config of the recipe (None without `use_peft`). Without `lora_target_modules`, a VLM of the
    family table gets its decoder's projections: PEFT knows no default for these VLMs, and `all-linear` also
    adapts the vision tower. Other models keep PEFT's own default for their model_type."""
    from trl import get_peft_config

    from medr1.data.families import BY_MODEL_TYPE

    peft_config = get_peft_config(model_args)
    family = BY_MODEL_TYPE.get(model.config.model_type)
    if peft_config is not None and peft_config.target_modules is None and family is not None:
        peft_config.target_modules = family.lora_target_modules
        logger.info("LoRA on the decoder projections: %s", peft_config.target_modules)
    return peft_config


def resolve_output_dir(output_dir: str, args: MedR1Arguments) -> str:
    """Recipes write `output_dir: outputs/grpo/{target}`; {target} is the modality or task."""
    return output_dir.replace("{target}", args.target())


def write_run_metadata(output_dir, script_args, training_args, model_args, split: str, n_questions: int,
                       pass_rate_filter: dict | None = None):
    from medr1.data.records import manifest_sha256, split_path

    if training_args.process_index != 0:  # one writer in a multi-process run
        return
    split_file = split_path(script_args.data_dir, split)
    metadata = {
        "split": split,
        "n_questions": n_questions,
        "data_dir": str(Path(script_args.data_dir).resolve()),
        "manifest_sha256": manifest_sha256(script_args.data_dir),
        "split_sha256": hashlib.sha256(split_file.read_bytes()).hexdigest(),
        "world_size": training_args.world_size,
        "pass_rate_filter": pass_rate_filter,
        "medr1": asdict(script_args),
        "model": asdict(model_args),
        "training": training_args.to_dict(),
        "command": sys.argv,
    }
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    (Path(output_dir) / "medr1_run.json").write_text(json.dumps(metadata, indent=2, default=str), encoding="utf-8")


def load_policy(model_args, script_args):
    """(model, processing class): a VLM and its processor, or a text causal LM and its tokenizer, as the
    checkpoint's config says (`medr1.data.model_kinds`)."""
    import torch

    from medr1.data.model_kinds import checkpoint_kind, load_model, load_processing_class

    path, revision = model_args.model_name_or_path, model_args.model_revision
    kind = checkpoint_kind(path, revision)
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    model = load_model(path, kind, dtype=dtype, attn_implementation=model_args.attn_implementation, revision=revision)
    if script_args.freeze_vision_tower:
        logger.info("froze %d vision-tower tensors", freeze_vision_tower(model))
    elif script_args.freeze_vision_encoder:
        logger.info("froze %d vision-encoder tensors (the projector trains)",
                    freeze_vision_tower(model, keep_projector=True))
    processor = load_processing_class(path, kind, revision)
    return model, processor


def rl_processing_class(processor, model):
    """The processing class GRPO/RLOO get: `processor` itself, or, for a family with an `rl_processor_rule`
    (LLaVA-OneVision: `medr1/data/families.py`), the same object with its outputs passed through the rule. The
    class keeps its name and module, so the saved processor loads as the family's own."""
    from medr1.data.families import BY_MODEL_TYPE

    family = BY_MODEL_TYPE.get(model.config.model_type)
    rule = family.rl_processor_rule if family is not None else None
    if rule is None:
        return processor
    base = type(processor)

    def __call__(self, *args, **kwargs):
        outputs = base.__call__(self, *args, **kwargs)
        rule(outputs)
        return outputs

    processor.__class__ = type(base.__name__, (base,), {"__call__": __call__, "__module__": base.__module__,
                                                        "__doc__": base.__doc__})
    logger.info("%s: processor outputs pass through %s for %s", family.arch, rule.__name__, type(processor).__name__)
    return processor


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None


class _SpuriousResumeWarning(logging.Filter):
    """Drops the Trainer's missing/unexpected-keys warnings of a resume whose weights medr1 restored itself."""

    def filter(self, record):
        return not record.getMessage().startswith(("There were missing keys in the checkpoint model loaded",
                                                   "There were unexpected keys in the checkpoint model loaded"))


def restore_policy_weights(model, checkpoint: str) -> bool:
    """Load a checkpoint's weights into `model` through `from_pretrained`, which maps the saved key names
    back to the model's. The Trainer's resume loads the raw file instead, and for models that rename
    their keys on save (Qwen2-VL and most VLMs in transformers 5) it loads none of them and trains on from
    the base weights (transformers#43701). Returns False where the Trainer's own path is right (adapters,
    sharded or DeepSpeed/FSDP states)."""
    if getattr(model, "peft_config", None) or not (Path(checkpoint) / "model.safetensors").is_file():
        return False
    dtype = next(model.parameters()).dtype
    restored = type(model).from_pretrained(checkpoint, dtype=dtype)
    model.load_state_dict(restored.state_dict())  # strict: every tensor is restored or this raises
    return True


def parse_args(argv, config_class, prog: str):
    from trl import ModelConfig, TrlParser

    parser = TrlParser((MedR1Arguments, config_class, ModelConfig), prog=prog)
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    training_args.output_dir = resolve_output_dir(training_args.output_dir, script_args)
    return script_args, training_args, model_args


def training_split(script_args: MedR1Arguments, part: str = "train") -> str:
    """The split a recipe trains on (`part` "train": its modality, task or `split`), or its held-out sibling
    (`part` "test"; `eval_split` where the recipe names one)."""
    from medr1.data.records import check_split_name, split_name

    if part != "train" and script_args.eval_split:
        return check_split_name(script_args.eval_split)
    return split_name(script_args.modality, script_args.task, part, split=script_args.split)


def check_rewards_fit(dataset, script_args: MedR1Arguments, split: str) -> None:
    """ValueError when the split has open-ended records (`options: []`) and no verifier: the letter
    accuracy_reward would give every one of them 0, so they would carry no learning signal."""
    if script_args.verifier != "none" or "options" not in dataset.column_names:
        return
    plain = dataset.with_format(None)  # the columns alone, no image decoded
    open_ended = [qid for qid, options in zip(plain["question_id"], plain["options"], strict=True) if not options]
    if open_ended:
        raise ValueError(f"split {split!r}: {len(open_ended)} of {len(dataset)} records are open-ended (options: [], "
                         f"e.g. {open_ended[0]!r}); the letter accuracy_reward cannot score them. Set verifier: rule "
                         "(or classifier | judge) in the recipe")


def build_trainer(script_args: MedR1Arguments, training_args, model_args, callbacks=(), reward_funcs=None):
    """The GRPOTrainer for a recipe, plus the collapse guard watching it."""
    from trl import GRPOTrainer

    from medr1.data.budget import check_dataset_budget
    from medr1.data.records import prompt_dataset

    split = training_split(script_args)
    keep, pass_rate_filter = pass_rate_selection(script_args, split)
    dataset = prompt_dataset(
        script_args.data_dir, split, style=script_args.prompt_style, stage="train",
        image_size=script_args.image_size, limit=script_args.max_train_samples, keep=keep,
    )
    if reward_funcs is None:
        check_rewards_fit(dataset, script_args, split)
    model, processor = load_policy(model_args, script_args)
    check_dataset_budget(dataset, processor, model.config, script_args.data_dir, script_args.image_size,
                         reserve=training_args.max_completion_length,
                         max_prompt_length=script_args.max_prompt_length)
    if reward_funcs is None:
        reward_funcs = [with_domain_metrics(f) if f.__name__ in ("accuracy_reward", "verifier_reward") else f
                        for f in build_reward_funcs(script_args, training_args.num_generations, training_args.seed)]
    held_out = held_out_monitor(script_args, training_args)
    if held_out is not None:
        callbacks = [*callbacks, held_out]
    guard = CollapseGuard(
        max_reward=float(len(reward_funcs)),
        patience=script_args.collapse_patience,
        action=script_args.collapse_action,
    )
    trainer_class, extra = GRPOTrainer, {}
    if script_args.dynamic_sampling:
        from medr1.train.dynamic_sampling import DynamicSamplingGRPOTrainer

        trainer_class, extra = DynamicSamplingGRPOTrainer, {
            "max_resample_rounds": script_args.max_resample_rounds,
            "keep_kl_of_filler": script_args.dropped_groups_keep_kl,
            "keep_kl_of_truncated": script_args.truncated_keep_kl}
    elif script_args.truncated_keep_kl:
        raise ValueError("truncated_keep_kl is part of dynamic sampling's trainer: set dynamic_sampling: true")
    if script_args.truncated_keep_kl and not (training_args.mask_truncated_completions and training_args.beta):
        logger.warning("truncated_keep_kl does nothing without mask_truncated_completions: true and beta > 0")
    if script_args.algorithm != "grpo":  # medr1/train/rloo.py: RLOO on the same data, rewards and guard
        from medr1.train.rloo import trainer_class_for

        trainer_class = trainer_class_for(script_args)
    trainer = trainer_class(
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        processing_class=rl_processing_class(processor, model),
        peft_config=peft_config_for(model_args, model),
        callbacks=[guard, *callbacks],
        **extra,
    )
    if held_out is not None:
        held_out.attach(trainer)
    write_run_metadata(training_args.output_dir, script_args, training_args, model_args, split, len(dataset),
                       pass_rate_filter=pass_rate_filter)
    return trainer, guard


def held_out_monitor(script_args: MedR1Arguments, training_args):
    """The held-out accuracy callback of `eval_every_steps`, or None."""
    if script_args.eval_every_steps <= 0:
        return None
    from medr1.data.records import image_loader, load_split

    test_split = training_split(script_args, "test")
    try:
        records = load_split(script_args.data_dir, test_split, script_args.eval_questions)
    except FileNotFoundError as error:  # e.g. MedMCQA has train and validation only
        raise FileNotFoundError(f"eval_every_steps needs a held-out split: {error}. Name one with eval_split") from None
    return HeldOutAccuracy(records, image_loader(script_args.data_dir, script_args.image_size),
                           script_args.eval_every_steps, script_args.prompt_style, training_args.max_completion_length)


def pass_rate_selection(script_args: MedR1Arguments, split: str):
    """(keep(record) -> bool, summary) for `pass_rates`; (None, None) without it."""
    if not script_args.pass_rates:
        return None, None
    from medr1.data.records import load_split

    rates = read_pass_rates(script_args.pass_rates)
    low, high = script_args.min_pass_rate, script_args.max_pass_rate
    records = load_split(script_args.data_dir, split)
    kept = {r["question_id"] for r in records if low < rates.get(r["question_id"], float("nan")) < high}
    summary = {"file": str(script_args.pass_rates), "min_pass_rate": low, "max_pass_rate": high,
               "split_questions": len(records), "kept": len(kept),
               "dropped_by_rate": sum(r["question_id"] in rates for r in records) - len(kept),
               "dropped_no_rate": sum(r["question_id"] not in rates for r in records)}
    logger.info("pass-rate filter %s: kept %d of %d questions with %s < rate < %s (%d outside, %d without a rate)",
                script_args.pass_rates, len(kept), len(records), low, high, summary["dropped_by_rate"],
                summary["dropped_no_rate"])
    if not kept:
        raise ValueError(f"no question of {split} has a pass rate strictly between {low} and {high} in "
                         f"{script_args.pass_rates}")
    return (lambda record: record["question_id"] in kept), summary


def read_pass_rates(path) -> dict[str, float]:
    """question_id -> pass_rate from a `medr1 passrate` file; a malformed line names the file and line."""
    rates = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                rates[str(entry["question_id"])] = float(entry["pass_rate"])
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a pass-rate line ({error}): {line.strip()[:120]}") from None
    return rates


def run_resumable(trainer, resume: str | None) -> None:
    """`trainer.train`, resuming from `resume` (weights, optimizer, scheduler, RNG and data position)."""
    with warnings.catch_warnings():
        # TRL 1.16 reads a deprecated transformers property on every generation: one warning per step.
        warnings.filterwarnings("ignore", message=DEPRECATED_PROPERTY_WARNING, category=FutureWarning)
        if not resume or not restore_policy_weights(trainer.model, resume):
            trainer.train(resume_from_checkpoint=resume)
            return
        trainer_logger = logging.getLogger("transformers.trainer")
        spurious = _SpuriousResumeWarning()
        trainer_logger.addFilter(spurious)
        try:
            trainer.train(resume_from_checkpoint=resume)
        finally:
            trainer_logger.removeFilter(spurious)


def train(script_args: MedR1Arguments, training_args, model_args, callbacks=(), reward_funcs=None) -> Path:
    """Train (resuming from the last checkpoint in output_dir if there is one) and save the final model.
    `reward_funcs` replaces the recipe's rewards (TRL reward functions)."""
    trainer, guard = build_trainer(script_args, training_args, model_args, callbacks, reward_funcs)
    output_dir = Path(training_args.output_dir)
    resume = training_args.resume_from_checkpoint or last_checkpoint(training_args.output_dir)
    if resume:
        logger.info("resuming from %s", resume)
    logger.info("GRPO on %d questions, %d completions each -> %s", len(trainer.train_dataset),
                training_args.num_generations, output_dir)
    run_resumable(trainer, resume)
    trainer.save_model(str(output_dir))
    trainer.processing_class.save_pretrained(str(output_dir))
    if guard.fired_at_step is not None and guard.action == "stop":
        raise CollapseError(
            f"training stopped by the collapse guard at step {guard.fired_at_step}; "
            f"the last checkpoint is in {output_dir}"
        )
    return output_dir


def main(argv: list[str] | None = None) -> int:
    from medr1.train.rloo import config_class_for

    script_args, training_args, model_args = parse_args(argv, config_class_for(argv), "medr1 train")
    try:
        train(script_args, training_args, model_args)
    except CollapseError as error:
        logger.error("%s", error)
        return COLLAPSE_EXIT_CODE
    return 0
