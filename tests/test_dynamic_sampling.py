"""Dynamic sampling: the pure row operations, and what it relies on in TRL's GRPOTrainer (these fail on a TRL
upgrade that changes it): whole groups of consecutive rows per process, exact zero advantages for a
zero-variance group, and a loss that only sees informative groups."""

import random
import zlib
from pathlib import Path

import pytest
import torch

from medr1.train.dynamic_sampling import (
    DynamicSamplingGRPOTrainer,
    concat_rows,
    group_rows,
    informative_groups,
    mask_rows_off,
    select_rows,
)

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "configs" / "grpo" / "tiny_cpu.yaml"


# ---- pure pieces --------------------------------------------------------------------------------

def test_informative_groups_are_those_with_a_nonzero_advantage():
    advantages = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.5, -0.5, 0.5, -0.5, 0.0, 0.0, 0.0, 1e-9])
    assert informative_groups(advantages, 4) == [False, True, False]
    with pytest.raises(ValueError):
        informative_groups(torch.zeros(6), 4)
    assert group_rows([0, 2], 3) == [0, 1, 2, 6, 7, 8]


def test_rows_are_selected_concatenated_and_masked_consistently():
    a = {"prompt_ids": torch.tensor([[0, 5], [6, 7]]), "prompt_mask": torch.tensor([[0, 1], [1, 1]]),
         "completion_ids": torch.tensor([[1], [2]]), "completion_mask": torch.tensor([[1], [1]]),
         "advantages": torch.tensor([1.0, -1.0]), "pixel_values": [torch.ones(2, 3), torch.zeros(1, 3)],
         "num_images": [1, 1], "num_items_in_batch": torch.tensor(2)}
    b = {"prompt_ids": torch.tensor([[9, 9, 9]]), "prompt_mask": torch.tensor([[1, 1, 1]]),
         "completion_ids": torch.tensor([[3, 4, 4]]), "completion_mask": torch.tensor([[1, 1, 0]]),
         "advantages": torch.tensor([0.5]), "pixel_values": [torch.full((4, 3), 2.0)], "num_images": [1],
         "num_items_in_batch": torch.tensor(2)}
    both = concat_rows(a, b)
    assert both["prompt_ids"].tolist() == [[0, 0, 5], [0, 6, 7], [9, 9, 9]]  # prompts padded on the left
    assert both["prompt_mask"].tolist() == [[0, 0, 1], [0, 1, 1], [1, 1, 1]]
    assert both["completion_ids"].tolist() == [[1, 0, 0], [2, 0, 0], [3, 4, 4]]  # completions on the right
    assert both["completion_mask"].tolist() == [[1, 0, 0], [1, 0, 0], [1, 1, 0]]
    assert both["advantages"].tolist() == [1.0, -1.0, 0.5] and both["num_images"] == [1, 1, 1]
    assert [p.shape[0] for p in both["pixel_values"]] == [2, 1, 4]
    picked = select_rows(both, [2, 0])
    assert picked["completion_ids"].tolist() == [[3, 4, 4], [1, 0, 0]]
    assert [p.shape[0] for p in picked["pixel_values"]] == [4, 2] and picked["num_items_in_batch"] == 2
    masked = mask_rows_off(picked, [1])
    assert masked["completion_mask"].tolist() == [[1, 1, 0], [0, 0, 0]]
    assert picked["completion_mask"].tolist() == [[1, 1, 0], [1, 0, 0]]  # the input is not changed
    assert concat_rows(None, a) is a


def test_prompt_and_completion_token_types_are_padded_part_by_part():
    """Qwen2-VL's mm_token_type_ids span prompt + completion: each part is padded on its own side, so the
    token types stay aligned with prompt_ids + completion_ids (a misalignment crashes the rope index)."""
    def batch(prompt, completion, types):
        return {"prompt_ids": torch.tensor([prompt]), "prompt_mask": torch.ones(1, len(prompt), dtype=torch.long),
                "completion_ids": torch.tensor([completion]), "completion_mask": torch.ones(1, len(completion)),
                "advantages": torch.tensor([1.0]), "mm_token_type_ids": torch.tensor([types])}

    both = concat_rows(batch([5, 6, 7], [8], [1, 1, 0, 0]), batch([5, 6], [8, 9, 9], [1, 0, 0, 0, 0]))
    assert both["prompt_ids"].tolist() == [[5, 6, 7], [0, 5, 6]]
    assert both["completion_ids"].tolist() == [[8, 0, 0], [8, 9, 9]]
    assert both["mm_token_type_ids"].tolist() == [[1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]]
    ids = torch.cat([both["prompt_ids"], both["completion_ids"]], dim=1)
    assert both["mm_token_type_ids"].shape == ids.shape


# ---- on TRL's GRPOTrainer -----------------------------------------------------------------------

def mixed_reward(completions, question_id, **kwargs):
    """Half the questions (by id) always score 1 (a zero-variance group); the others get 0/1 rewards that
    differ within the group (never all equal), so each of their completions has a non-zero advantage."""
    rewards = []
    for start in range(0, len(completions), 4):
        qid = question_id[start]
        if zlib.crc32(qid.encode()) % 2 == 0:
            rewards += [1.0] * 4
        else:
            rng = random.Random(qid + str(len(rewards)))
            group = [float(rng.random() < 0.5) for _ in range(3)]
            rewards += group + [1.0 - group[0]]
    return rewards


def constant_reward(completions, **kwargs):
    return [1.0] * len(completions)


def build(data, model, out, reward, rounds, *extra):
    from trl import GRPOConfig

    from medr1.train.grpo import build_trainer, parse_args

    argv = ["--config", str(TINY_RECIPE), "--data_dir", str(data), "--modality", "CT",
            "--model_name_or_path", str(model), "--output_dir", str(out), "--report_to", "none",
            "--log_completions", "false", "--max_completion_length", "6", "--save_strategy", "no",
            "--dynamic_sampling", "true", "--max_resample_rounds", str(rounds), "--max_steps", "2", *extra]
    trainer, _ = build_trainer(*parse_args(argv, GRPOConfig, "test"), reward_funcs=[reward])
    return trainer


class LossInputs:
    """Records the batches the loss sees (after TRL's shuffle and split)."""

    def __init__(self, trainer):
        self.batches = []
        original = trainer._compute_loss

        def recording(model, inputs):
            self.batches.append({k: v for k, v in inputs.items()
                                 if k in ("advantages", "completion_mask", "completion_ids")})
            return original(model, inputs)

        trainer._compute_loss = recording


def test_trl_generation_batch_holds_whole_consecutive_groups(synthetic_data, compact_model, tmp_path):
    """What dynamic sampling relies on in plain TRL: each reward call sees groups of G consecutive rows
    of one question, and the scored batch gives a zero-variance group advantages of exactly 0."""
    from trl import GRPOTrainer

    _, data = synthetic_data
    seen = []

    def recording_reward(completions, question_id, **kwargs):
        seen.append(list(question_id))
        return mixed_reward(completions, question_id)

    trainer = build(data, compact_model, tmp_path / "plain", recording_reward, 0)
    assert isinstance(trainer, DynamicSamplingGRPOTrainer)
    rows = [trainer.train_dataset[i] for i in range(4) for _ in range(4)]
    trainer.model.train()
    batch = GRPOTrainer._generate_and_score_completions(trainer, rows)
    assert len(seen[-1]) == 16
    for start in range(0, 16, 4):
        assert len(set(seen[-1][start:start + 4])) == 1
    assert batch["advantages"].shape == (16,)
    for g, qid in enumerate(seen[-1][::4]):
        group = batch["advantages"][g * 4:(g + 1) * 4]
        if zlib.crc32(qid.encode()) % 2 == 0:
            assert torch.equal(group, torch.zeros(4))
        else:
            assert (group.abs() > 1e-3).all()


def test_the_loss_sees_only_informative_groups(synthetic_data, compact_model, tmp_path):
    _, data = synthetic_data
    trainer = build(data, compact_model, tmp_path / "dapo", mixed_reward, 8)
    loss_inputs = LossInputs(trainer)
    trainer.train()
    assert trainer.state.global_step == 2 and loss_inputs.batches
    for batch in loss_inputs.batches:
        assert (batch["advantages"].abs() > 1e-3).all()  # no row of a zero-variance group reached the loss
        assert (batch["completion_mask"].sum(dim=1) > 0).all()
    logged = [e for e in trainer.state.log_history if "dynamic_sampling/groups_kept" in e]
    target = trainer.args.per_device_train_batch_size * trainer.args.steps_per_generation // 4
    assert len(logged) == 2
    for entry in logged:
        assert entry["dynamic_sampling/groups_kept"] == target
        assert entry["dynamic_sampling/groups_generated"] > target  # some groups were dropped and refilled
        assert entry["dynamic_sampling/rounds"] >= 1


def test_a_batch_that_stays_uninformative_trains_on_nothing(synthetic_data, compact_model, tmp_path):
    """Every group has zero variance: after max_resample_rounds the batch keeps its shape with every loss
    mask off, and training goes on."""
    _, data = synthetic_data
    trainer = build(data, compact_model, tmp_path / "flat", constant_reward, 2)
    loss_inputs = LossInputs(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    assert trainer.state.global_step == 2
    for batch in loss_inputs.batches:
        assert batch["completion_mask"].sum() == 0
    logged = [e for e in trainer.state.log_history if "dynamic_sampling/rounds" in e]
    assert [e["dynamic_sampling/rounds"] for e in logged] == [2.0, 2.0]
    assert all(e["dynamic_sampling/groups_kept"] == 0 for e in logged)
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(after[n].detach(), p) for n, p in before.items())  # nothing was learned from nothing


def test_filler_groups_can_keep_their_kl_pull(synthetic_data, compact_model, tmp_path):
    """dropped_groups_keep_kl with beta > 0: a batch that stays uninformative keeps its loss masks, so the KL term
    alone moves the policy (the test above: with the masks off nothing moves); with beta 0 it stays masked."""
    _, data = synthetic_data
    trainer = build(data, compact_model, tmp_path / "kl", constant_reward, 1, "--beta", "0.5",
                    "--dropped_groups_keep_kl", "true", "--learning_rate", "1e-2")
    assert trainer.keep_kl_of_filler and trainer.beta == 0.5
    with torch.no_grad():  # move the policy off its reference, so the KL term has a gradient
        for p in trainer.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    loss_inputs = LossInputs(trainer)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    for batch in loss_inputs.batches:
        assert batch["completion_mask"].sum() > 0
        assert torch.equal(batch["advantages"], torch.zeros_like(batch["advantages"]))
    after = dict(trainer.model.named_parameters())
    # Every advantage is 0: only the KL term can have moved anything.
    assert any(not torch.equal(after[n].detach(), p) for n, p in before.items())
    no_beta = build(data, compact_model, tmp_path / "kl0", constant_reward, 1, "--beta", "0.0",
                    "--dropped_groups_keep_kl", "true")
    loss_inputs = LossInputs(no_beta)
    no_beta.train()
    assert all(batch["completion_mask"].sum() == 0 for batch in loss_inputs.batches)


def test_truncated_rows_follow_trls_rule():
    from medr1.train.dynamic_sampling import truncated_rows

    end, pad = 7, 0
    ids = torch.tensor([[3, 4, 7, 0], [3, 4, 5, 6], [3, 7, 0, 0], [5, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])
    assert truncated_rows(ids, mask, [end, pad]).tolist() == [False, True, False, False]


def test_truncated_completions_can_keep_their_kl_pull(synthetic_data, compact_model, tmp_path):
    """truncated_keep_kl: a completion cut at max_completion_length (6 tokens: nearly every one from a random
    model) stays in the loss with advantage 0, where TRL's mask_truncated_completions drops it whole."""
    from medr1.train.dynamic_sampling import truncated_rows

    _, data = synthetic_data
    seen = {}
    for keep in (True, False):
        trainer = build(data, compact_model, tmp_path / f"cut-{keep}", mixed_reward, 0, "--beta", "0.5",
                        "--mask_truncated_completions", "true", "--truncated_keep_kl", str(keep).lower(),
                        "--dropped_groups_keep_kl", "true")  # so that only truncation can mask a row off
        assert trainer.keep_kl_of_truncated is keep and trainer.mask_truncated_completions is not keep
        end_ids = [*trainer.eos_token_ids, trainer.processing_class.tokenizer.pad_token_id]
        loss_inputs = LossInputs(trainer)
        trainer.train()
        batches = loss_inputs.batches
        seen[keep] = sum(int(truncated_rows(b["completion_ids"], b["completion_mask"], end_ids).sum())
                         for b in batches)
        masked = sum(int((b["completion_mask"].sum(dim=1) == 0).sum()) for b in batches)
        if keep:
            for b in batches:
                cut = truncated_rows(b["completion_ids"], b["completion_mask"], end_ids)
                assert torch.equal(b["advantages"][cut], torch.zeros_like(b["advantages"][cut]))
            assert masked == 0
        else:
            assert masked > 0  # TRL's masking: the cut rows leave the loss
    assert seen[True] > 0 and seen[False] == 0
    with pytest.raises(ValueError, match="dynamic_sampling"):
        build(data, compact_model, tmp_path / "no-ds", mixed_reward, 0, "--dynamic_sampling", "false",
              "--truncated_keep_kl", "true")


def test_rollouts_of_different_prompt_lengths_concatenate_into_a_batch_the_model_accepts(
        synthetic_data, compact_model, tmp_path):
    """Two real rollouts whose prompts differ in length, concatenated as a refill does, go through the loss."""
    from trl import GRPOTrainer
    from trl.trainer.utils import split_pixel_values_by_grid, unsplit_pixel_values_by_grid

    _, data = synthetic_data
    trainer = build(data, compact_model, tmp_path / "widths", mixed_reward, 0)
    trainer.model.train()
    lengths = {}
    for i in range(len(trainer.train_dataset)):
        row = trainer.train_dataset[i]
        lengths.setdefault(len(row["prompt"][-1]["content"][-1]["text"]), row)
    short, long = lengths[min(lengths)], lengths[max(lengths)]
    first, second = (split_pixel_values_by_grid(GRPOTrainer._generate_and_score_completions(trainer, [row] * 4))
                     for row in (short, long))
    assert first["prompt_ids"].shape[1] != second["prompt_ids"].shape[1]
    both = unsplit_pixel_values_by_grid(concat_rows(first, second))
    ids = torch.cat([both["prompt_ids"], both["completion_ids"]], dim=1)
    image_pad = trainer.processing_class.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert torch.equal(both["mm_token_type_ids"] == 1, ids == image_pad)  # token types still on the image tokens
    # the policy forward the loss makes: prompt + completion ids with the images and token types
    logits = trainer.model(input_ids=torch.cat([both["prompt_ids"], both["completion_ids"]], dim=1),
                           attention_mask=torch.cat([both["prompt_mask"], both["completion_mask"]], dim=1),
                           pixel_values=both["pixel_values"], image_grid_thw=both["image_grid_thw"],
                           mm_token_type_ids=both["mm_token_type_ids"]).logits
    assert logits.shape[0] == 8 and torch.isfinite(logits).all()
