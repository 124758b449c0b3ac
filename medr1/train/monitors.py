"""What a GRPO run reports beyond TRL's own metrics: held-out accuracy while it trains, and the accuracy
reward per task and per dataset within each step (a run on mixed data shows which domain learns)."""

from __future__ import annotations

import functools
import logging
from collections import defaultdict

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def domain_means(rewards: list[float], domains: list[str]) -> dict[str, float]:
    """Mean reward per domain value, in first-seen order."""
    totals: dict[str, list[float]] = defaultdict(list)
    for reward, domain in zip(rewards, domains, strict=True):
        totals[domain].append(reward)
    return {domain: sum(values) / len(values) for domain, values in totals.items()}


class with_domain_metrics:  # noqa: N801 - used like a decorator
    """The reward function, also logging its mean per value of each column through TRL's `log_metric`
    (averaged over the step's reward calls and processes), as `<reward>/<column>/<value>`. A class, not a
    closure, so that TRL's async rollout worker can pickle it."""

    def __init__(self, reward_func, columns=("task", "dataset")):
        self.reward_func, self.columns = reward_func, columns
        functools.update_wrapper(self, reward_func)

    def __call__(self, completions, **kwargs):
        rewards = self.reward_func(completions, **kwargs)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for column in self.columns:
                if kwargs.get(column) is not None:
                    for value, mean in domain_means(list(rewards), list(kwargs[column])).items():
                        log_metric(f"{self.__name__}/{column}/{value}", mean)
        return rewards


class HeldOutAccuracy(TrainerCallback):
    """Every `every` steps, greedy accuracy of the policy on a fixed slice of the test split, through
    `medr1 eval`'s scoring (the prompt style's default convention; open-ended records, `options: []`, by the rule
    verifier on the final response, as `medr1 eval` scores them); logged as `held_out/accuracy` with the step's
    metrics (TensorBoard and the log history). `curve` holds (step, accuracy) from step 0. Runs on the main process
    only. `load_image` may be None for text records."""

    def __init__(self, records, load_image, every: int, prompt: str, max_new_tokens: int, batch_size: int = 50):
        self.records, self.load_image, self.every = records, load_image, every
        self.prompt, self.max_new_tokens, self.batch_size = prompt, max_new_tokens, batch_size
        self.trainer = None
        self.curve: list[tuple[int, float]] = []

    def attach(self, trainer) -> None:
        self.trainer = trainer

    def _accuracy(self) -> float:
        import torch

        from medr1.evaluation.evaluate import evaluate_in_memory

        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        # Measuring must not change the run: a DataLoader draws its base seed from the global generator, so
        # without this a run with eval_every_steps would sample different completions from one without.
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            metrics = evaluate_in_memory(model, self.trainer.processing_class, self.records, self.load_image,
                                         prompt=self.prompt, stage="train", batch_size=self.batch_size,
                                         max_new_tokens=self.max_new_tokens)
        return metrics["accuracy"]

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and state.global_step == 0:
            self.curve.append((0, self._accuracy()))

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or state.global_step % self.every:
            return
        accuracy = self._accuracy()
        self.curve.append((state.global_step, accuracy))
        # TRL averages this dict into the next logged step (the same mechanism as its own metrics).
        self.trainer._metrics["train"]["held_out/accuracy"].append(accuracy)
        logger.info("step %d: held-out accuracy %.3f (n=%d)", state.global_step, accuracy, len(self.records))
