"""Dynamic sampling (DAPO-style) on TRL's GRPOTrainer: groups whose rewards have zero variance give no
policy gradient, so they are dropped and the batch is refilled with fresh questions.

A group of G completions that are all right (an easy question) or all wrong (a hard one) has advantage 0
for every completion: it costs a full rollout and teaches nothing. `DynamicSamplingGRPOTrainer` generates,
keeps the informative groups, and generates again on freshly drawn questions of the split until the
generation batch is full or `max_resample_rounds` extra rounds are spent; a batch still short then keeps
some uninformative groups with their loss masked off, so the batch shape TRL expects never changes. With
`keep_kl_of_filler` (and beta > 0) those groups keep their loss instead: their advantages are 0, so that is
their KL term alone, the pull back to the reference that a policy certain of a wrong answer needs (its groups
are all wrong, so the policy gradient never reaches it).
With `keep_kl_of_truncated` (and TRL's `mask_truncated_completions`, beta > 0) a completion cut at
`max_completion_length` gets advantage 0 but stays in the loss, instead of TRL masking it off whole: once every
completion is cut, TRL's masking leaves no gradient at all, so a policy that stopped emitting its end token can
never learn it back; the KL term pulls it towards the reference, which stops.
Each step logs `dynamic_sampling/groups_generated`, `groups_kept` and `rounds`.

It relies on two things TRL 1.16 does (pinned by tests/test_dynamic_sampling.py): the generation batch
of a process holds whole groups of `num_generations` consecutive rows, and
`GRPOTrainer._generate_and_score_completions(rows) -> batch` returns per-row tensors whose `advantages`
are exactly 0 for a zero-variance group.
"""

from __future__ import annotations

import random

import torch
from trl import GRPOTrainer
from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

# Rollout tensors padded on the left (prompts end where completions start); everything else on the right.
LEFT_PADDED = ("prompt_ids", "prompt_mask")
# Tensors over prompt + completion (Qwen2.5/Qwen2-VL's multimodal token types, Gemma's token types): the
# prompt part is padded on the left, the completion part on the right.
PROMPT_AND_COMPLETION = ("mm_token_type_ids", "token_type_ids")
# Per-token tensors whose padding must not count: a masked-off row contributes nothing to the loss.
LOSS_MASKS = ("completion_mask", "tool_mask")


def informative_groups(advantages: torch.Tensor, num_generations: int, tolerance: float = 1e-6) -> list[bool]:
    """Per group of `num_generations` consecutive rows: does any completion have a non-zero advantage?"""
    if advantages.shape[0] % num_generations:
        raise ValueError(f"{advantages.shape[0]} rows do not split into groups of {num_generations}")
    by_group = advantages.reshape(-1, num_generations, *advantages.shape[1:]).abs()
    return [bool(group.max() > tolerance) for group in by_group]


def group_rows(groups: list[int], num_generations: int) -> list[int]:
    return [g * num_generations + i for g in groups for i in range(num_generations)]


def batch_rows(batch: dict) -> int:
    return batch["advantages"].shape[0]


def select_rows(batch: dict, rows: list[int]) -> dict:
    """The rows of a per-row batch (pixel values already split by `split_pixel_values_by_grid`)."""
    n = batch_rows(batch)
    index = torch.tensor(rows, dtype=torch.long)
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == n:
            out[key] = value[index.to(value.device)]
        elif isinstance(value, list) and len(value) == n:
            out[key] = [value[i] for i in rows]
        else:
            out[key] = value
    return out


def _pad_to(tensor: torch.Tensor, width: int, left: bool) -> torch.Tensor:
    missing = width - tensor.shape[1]
    if missing <= 0:
        return tensor
    pad = torch.zeros(tensor.shape[0], missing, *tensor.shape[2:], dtype=tensor.dtype, device=tensor.device)
    return torch.cat([pad, tensor] if left else [tensor, pad], dim=1)


def concat_rows(first: dict | None, second: dict) -> dict:
    """Two per-row batches as one; sequence tensors are padded to the longer one (prompts on the left).
    Padding values are 0: masks then mark them as padding, and padded ids are never attended to."""
    if first is None:
        return second
    n_first = batch_rows(first)
    prompt_a, prompt_b = first["prompt_ids"].shape[1], second["prompt_ids"].shape[1]
    prompt_width = max(prompt_a, prompt_b)
    out = {}
    for key, a in first.items():
        b = second[key]
        if key in PROMPT_AND_COMPLETION and isinstance(a, torch.Tensor):
            parts_a, parts_b = (a[:, :prompt_a], a[:, prompt_a:]), (b[:, :prompt_b], b[:, prompt_b:])
            completion_width = max(parts_a[1].shape[1], parts_b[1].shape[1])
            a, b = (torch.cat([_pad_to(prompt, prompt_width, True), _pad_to(completion, completion_width, False)],
                              dim=1) for prompt, completion in (parts_a, parts_b))
            out[key] = torch.cat([a, b], dim=0)
        elif isinstance(a, torch.Tensor) and a.ndim > 0 and a.shape[0] == n_first:
            if a.ndim > 1:
                width = max(a.shape[1], b.shape[1])
                a, b = _pad_to(a, width, key in LEFT_PADDED), _pad_to(b, width, key in LEFT_PADDED)
            out[key] = torch.cat([a, b], dim=0)
        elif isinstance(a, list) and len(a) == n_first:
            out[key] = a + list(b)
        else:
            out[key] = a
    return out


def truncated_rows(completion_ids: torch.Tensor, completion_mask: torch.Tensor, end_ids: list[int]) -> torch.Tensor:
    """Per row, True where the completion was cut: its last token inside the mask is not an end (or pad) token,
    the rule TRL's `mask_truncated_completions` applies to the unpadded completions."""
    lengths = completion_mask.sum(dim=1).long()
    last = completion_ids.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    ended = torch.isin(last, torch.tensor(end_ids, device=completion_ids.device))
    return (lengths > 0) & ~ended


def mask_rows_off(batch: dict, rows: list[int]) -> dict:
    """Zero the loss masks of these rows, so they stay in the batch but contribute nothing to the loss."""
    out = dict(batch)
    for key in LOSS_MASKS:
        if isinstance(out.get(key), torch.Tensor):
            out[key] = out[key].clone()
            out[key][rows] = 0
    return out


class DynamicSamplingGRPOTrainer(GRPOTrainer):
    """GRPOTrainer with dynamic sampling; `max_resample_rounds` bounds the extra generation rounds."""

    def __init__(self, *args, max_resample_rounds: int = 3, keep_kl_of_filler: bool = False,
                 keep_kl_of_truncated: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_kl_of_filler = keep_kl_of_filler
        self.keep_kl_of_truncated = keep_kl_of_truncated and self.mask_truncated_completions and self.beta != 0.0
        if self.keep_kl_of_truncated:
            self.mask_truncated_completions = False  # this trainer zeroes their advantages instead (_rollout)
        if max_resample_rounds < 0:
            raise ValueError("max_resample_rounds must be >= 0")
        self.max_resample_rounds = max_resample_rounds
        rows = self.args.per_device_train_batch_size * self.args.steps_per_generation
        if rows % self.num_generations:
            raise ValueError(
                f"dynamic sampling needs whole groups on each process: per_device_train_batch_size x "
                f"steps_per_generation = {rows} is not a multiple of num_generations = {self.num_generations}")

    def _fresh_rows(self, n_groups: int, round_index: int) -> list[dict]:
        """n_groups questions drawn from the training split, each repeated num_generations times; the draw
        depends only on (seed, process, step, round), so a resumed run draws what the first run would have."""
        rng = random.Random(f"{self.args.seed}:{self.accelerator.process_index}:{self.state.global_step}:"
                            f"{round_index}")
        indices = rng.sample(range(len(self.train_dataset)), min(n_groups, len(self.train_dataset)))
        while len(indices) < n_groups:  # a split smaller than a batch
            indices.append(rng.randrange(len(self.train_dataset)))
        rows = []
        for index in indices:
            row = self.train_dataset[index]
            rows += [row] * self.num_generations
        return rows

    def _any_process(self, flag: bool) -> bool:
        # Every process must make the same number of generation calls (they gather inside), so the decision
        # to draw another round is global.
        flags = self.accelerator.gather(torch.tensor([int(flag)], device=self.accelerator.device))
        return bool(flags.max().item())

    def _rollout(self, inputs) -> dict:
        """TRL's generation and scoring of these rows; with keep_kl_of_truncated, cut completions' advantages 0."""
        batch = super()._generate_and_score_completions(inputs)
        if self.keep_kl_of_truncated:
            cut = truncated_rows(batch["completion_ids"], batch["completion_mask"],
                                 [*self.eos_token_ids, self._tokenizer.pad_token_id])
            batch["advantages"] = batch["advantages"].masked_fill(cut, 0.0)
        return batch

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        G = self.num_generations
        target = len(inputs) // G
        kept, spare = None, None
        generated = rounds = n_kept = 0
        batch = split_pixel_values_by_grid(self._rollout(inputs))
        while True:
            informative = informative_groups(batch["advantages"], G)
            generated += len(informative)
            take = [g for g, ok in enumerate(informative) if ok][: target - n_kept]
            if take:
                kept = concat_rows(kept, select_rows(batch, group_rows(take, G)))
                n_kept += len(take)
            dropped = [g for g, ok in enumerate(informative) if not ok]
            if dropped:
                spare = select_rows(batch, group_rows(dropped, G))
            if not self._any_process(n_kept < target) or rounds >= self.max_resample_rounds:
                break
            rounds += 1
            batch = split_pixel_values_by_grid(self._rollout(self._fresh_rows(target, rounds)))
        if n_kept < target:  # still short: fill with uninformative groups that do not count in the loss
            filler = select_rows(spare, list(range((target - n_kept) * G)))
            start = n_kept * G
            kept = concat_rows(kept, filler)
            if not (self.keep_kl_of_filler and self.beta != 0.0):
                kept = mask_rows_off(kept, list(range(start, target * G)))
        loss_mask = kept["completion_mask"] * kept["tool_mask"] if "tool_mask" in kept else kept["completion_mask"]
        kept["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        for name, value in (("groups_generated", generated), ("groups_kept", n_kept), ("rounds", rounds)):
            self._metrics["train"][f"dynamic_sampling/{name}"].append(float(value))
        return unsplit_pixel_values_by_grid(kept)
