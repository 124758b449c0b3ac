"""RLOO on the GRPO stage: `medr1 train --config configs/rloo/tiny_cpu.yaml --modality CT` (`algorithm: rloo`).

TRL's `RLOOTrainer` (REINFORCE leave-one-out: each completion's baseline is the mean reward of the other k-1 of its
group) takes `GRPOTrainer`'s place in `medr1.train.grpo.build_trainer`; everything else is the GRPO stage's: the
split and prompts, the training rewards, `outputs/<algorithm>/<target>/`, resume from the last checkpoint, and the
collapse guard (RLOO logs the same `reward` and `frac_reward_zero_std`). The recipe is an `RLOOConfig`, picked
before parsing from `--algorithm` or the recipe's `algorithm` key (:func:`config_class_for`).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

ALGORITHMS = ("grpo", "rloo")


def algorithm_of(argv: list[str] | None) -> str:
    """The `algorithm` a `medr1 train` command line asks for: `--algorithm X` wins over the recipe's key; grpo
    without either."""
    argv = list(argv or [])
    for i, arg in enumerate(argv):
        if arg == "--algorithm" and i + 1 < len(argv):
            return check_algorithm(argv[i + 1])
        if arg.startswith("--algorithm="):
            return check_algorithm(arg.split("=", 1)[1])
    for i, arg in enumerate(argv):
        config = argv[i + 1] if arg == "--config" and i + 1 < len(argv) else (
            arg.split("=", 1)[1] if arg.startswith("--config=") else None)
        if config:
            import yaml

            with open(config, encoding="utf-8") as handle:
                recipe = yaml.safe_load(handle) or {}
            return check_algorithm(str(recipe.get("algorithm", "grpo")))
    return "grpo"


def check_algorithm(name: str) -> str:
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {name!r}")
    return name


def config_class_for(argv: list[str] | None):
    """TRL's config dataclass of the command line's algorithm: GRPOConfig or RLOOConfig."""
    from trl import GRPOConfig, RLOOConfig

    return {"grpo": GRPOConfig, "rloo": RLOOConfig}[algorithm_of(argv)]


def trainer_class_for(script_args):
    """The trainer class of `script_args.algorithm` (grpo: the caller's own choice is kept, so None)."""
    algorithm = check_algorithm(script_args.algorithm)
    if algorithm == "grpo":
        return None
    if script_args.dynamic_sampling:
        raise ValueError("dynamic_sampling is a GRPO trainer (DAPO); it does not combine with algorithm: rloo")
    from trl import RLOOTrainer

    logger.info("algorithm rloo: TRL's RLOOTrainer")
    return RLOOTrainer
