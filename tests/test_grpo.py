"""GRPO stage: advantage maths pinned against TRL, reward-column alignment, collapse guard, resume."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

from medr1.train.grpo import (
    CollapseGuard,
    group_advantages,
    is_collapsed,
    resolve_output_dir,
    shuffled_within_groups,
)

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "configs" / "grpo" / "tiny_cpu.yaml"
CPU = ("--bf16", "false", "--use_cpu", "true")


def grpo_argv(data, model, out, *extra):
    return [
        "--config", str(TINY_RECIPE), "--data_dir", str(data), "--modality", "CT",
        "--model_name_or_path", str(model), "--output_dir", str(out), "--report_to", "none",
        "--log_completions", "false", "--max_completion_length", "8", "--image_size", "56", *extra,
    ]


def parse(argv):
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args

    return parse_args(argv, GRPOConfig, "test")


# ---- pure pieces --------------------------------------------------------------------------------

def test_group_advantages_by_hand():
    advantages = group_advantages([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0], num_generations=4)
    a = 0.5 / ((4 * 0.25 / 3) ** 0.5 + 1e-4)  # deviation 0.5 over the unbiased std of [1, 0, 0, 1]
    assert advantages[:4] == pytest.approx([a, -a, -a, a])
    assert advantages[4:] == [0.0, 0.0, 0.0, 0.0]  # a zero-variance group teaches nothing
    with pytest.raises(ValueError):
        group_advantages([1.0, 2.0, 3.0], num_generations=2)


def test_is_collapsed_distinguishes_collapse_from_success():
    assert is_collapsed({"frac_reward_zero_std": 1.0, "reward": 0.0}, max_reward=2.0)
    assert not is_collapsed({"frac_reward_zero_std": 1.0, "reward": 2.0}, max_reward=2.0)  # all solved
    assert not is_collapsed({"frac_reward_zero_std": 0.5, "reward": 0.0}, max_reward=2.0)
    assert not is_collapsed({"loss": 1.0}, max_reward=2.0)


def test_collapse_guard_counts_consecutive_steps():
    from transformers import TrainerControl, TrainerState

    guard = CollapseGuard(max_reward=2.0, patience=3, action="stop")
    state, control = TrainerState(), TrainerControl()
    dead, alive = {"frac_reward_zero_std": 1.0, "reward": 0.0}, {"frac_reward_zero_std": 0.2, "reward": 0.5}
    for logs in (dead, dead, alive, dead, dead):
        guard.on_log(None, state, control, logs=logs)
    assert guard.fired_at_step is None and not control.should_training_stop
    guard.on_log(None, state, control, logs=dead)
    assert guard.fired_at_step == state.global_step
    assert control.should_training_stop and control.should_save


def test_shuffled_rewards_keep_each_group_multiset_but_break_the_pairing():
    def reward(completions, **kwargs):
        return [float(i) for i in range(len(completions))]

    shuffled = shuffled_within_groups(reward, num_generations=4, seed=0)
    assert shuffled.__name__ == "reward"
    out = shuffled(list(range(16)))
    for start in range(0, 16, 4):
        assert sorted(out[start:start + 4]) == [float(i) for i in range(start, start + 4)]
    assert out != [float(i) for i in range(16)]


def test_output_dir_names_the_training_domain():
    from medr1.train.configs import MedR1Arguments

    assert resolve_output_dir("outputs/grpo/{target}", MedR1Arguments(task="Lesion Grading")) == (
        "outputs/grpo/Lesion Grading")


@pytest.mark.parametrize("recipe", sorted((REPO / "configs" / "grpo").glob("*.yaml")), ids=lambda p: p.name)
def test_every_grpo_recipe_parses(recipe):
    # GPU recipes ask for bf16, which TrainingArguments refuses on a CPU-only machine.
    script_args, training_args, model_args = parse(["--config", str(recipe), "--modality", "OCT", *CPU])
    assert training_args.num_generations >= 2
    from medr1.data.prompts import get_style

    get_style(script_args.prompt_style)  # a style the prompt builder knows (image or text styles)
    assert "{target}" not in training_args.output_dir


def test_paper_recipe_matches_the_released_settings():
    _, args, model_args = parse(["--config", str(REPO / "configs/grpo/medr1_qwen2vl_2b.yaml"), "--modality", "CT",
                                 *CPU])
    assert (args.num_generations, args.learning_rate, args.beta, args.max_completion_length) == (4, 1e-6, 0.04, 256)
    assert args.temperature == 1.0 and args.loss_type == "grpo" and args.scale_rewards == "group"
    questions_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps // args.num_generations
    assert questions_per_step == 4
    assert model_args.model_name_or_path == "Qwen/Qwen2-VL-2B-Instruct"
    # the released reward rule, prompt and image size
    script_args, _, _ = parse(["--config", str(REPO / "configs/grpo/medr1_qwen2vl_2b.yaml"), "--modality", "CT", *CPU])
    assert (script_args.answer_parsing, script_args.prompt_style, script_args.image_size) == (
        "medr1-compat", "think", 384)
    # one epoch of AdamW, linear decay from 1e-6 without warm-up, no weight decay, clip 1.0, seed 42
    assert args.num_train_epochs == 1 and args.max_steps == -1 and args.num_iterations == 1
    assert args.lr_scheduler_type.value == "linear" and args.warmup_steps == 0
    assert args.optim.value.startswith("adamw") and args.weight_decay == 0.0 and args.max_grad_norm == 1.0
    assert args.seed == 42 and args.gradient_checkpointing and model_args.dtype == "float32"
    assert model_args.attn_implementation == "flash_attention_2"
    assert not script_args.dynamic_sampling  # the released setting


def test_dapo_recipe_departs_only_where_it_says():
    paper = parse(["--config", str(REPO / "configs/grpo/medr1_qwen2vl_2b.yaml"), "--modality", "CT", *CPU])
    dapo = parse(["--config", str(REPO / "configs/grpo/medr1_qwen2vl_2b_dapo.yaml"), "--modality", "CT", *CPU])
    assert dapo[0].dynamic_sampling and dapo[0].max_resample_rounds == 3
    assert (dapo[1].loss_type, dapo[1].epsilon, dapo[1].epsilon_high) == ("dapo", 0.2, 0.28)
    differ = {k for k, v in paper[1].to_dict().items() if dapo[1].to_dict()[k] != v}
    assert differ == {"loss_type", "epsilon_high", "output_dir"}, differ
    script_differ = {k for k, v in vars(paper[0]).items() if vars(dapo[0])[k] != v}
    assert script_differ == {"dynamic_sampling"}, script_differ


# ---- against TRL's GRPOTrainer ------------------------------------------------------------------

def test_advantages_match_trl_and_reward_columns_stay_row_aligned(synthetic_data, compact_model, tmp_path):
    """per-device batch (16 completions) > G (4) and gradient accumulation 2: every reward call must
    see each completion's own question's gold letter and options, and TRL's advantages must equal
    the project's group formula on the rewards it logged."""
    import random

    from medr1.data.records import load_split
    from medr1.train.grpo import build_trainer

    _, data = synthetic_data
    gold = {r["question_id"]: r for r in load_split(data, "modality/CT/train")}
    calls = []
    rng = random.Random(0)

    def checking_reward(completions, prompts, answer, options, question_id, **kwargs):
        calls.append(len(completions))
        for prompt, letter, opts, qid in zip(prompts, answer, options, question_id, strict=True):
            record = gold[qid]
            assert letter == record["answer"] and opts == record["options"]
            assert record["question"] in prompt[-1]["content"][-1]["text"]
        return [rng.choice([0.0, 0.5, 1.0]) for _ in completions]  # varied, so advantages are non-trivial

    script_args, training_args, model_args = parse(grpo_argv(
        data, compact_model, tmp_path / "run", "--max_steps", "2", "--per_device_train_batch_size", "16",
        "--gradient_accumulation_steps", "2", "--num_generations", "4", "--save_strategy", "no"))
    trainer, _ = build_trainer(script_args, training_args, model_args, reward_funcs=[checking_reward])
    trainer.train()
    assert calls and all(n == 32 for n in calls)  # one call per generation batch: 16 x 2 accumulation
    rewards = list(trainer._logs["rewards"]["checking_reward"])
    ours = group_advantages(rewards, num_generations=4)
    assert list(trainer._logs["advantages"]) == pytest.approx(ours, abs=1e-5)
    assert any(abs(a) > 0.1 for a in ours)


def test_collapse_guard_stops_a_collapsed_run_with_a_checkpoint(synthetic_data, compact_model, tmp_path):
    """One-token completions can never close the answer format: every group scores 0, the guard fires."""
    from medr1.cli import main

    _, data = synthetic_data
    out = tmp_path / "collapsed"
    code = main(["train", *grpo_argv(data, compact_model, out, "--max_completion_length", "1", "--max_steps", "8",
                                     "--collapse_patience", "2", "--collapse_action", "stop", "--save_steps", "100")])
    assert code == 3
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert [p.name for p in checkpoints] == ["checkpoint-2"]  # saved at the step it stopped, long before 8
    assert (out / "model.safetensors").is_file()


KILLED_RUN = """
import os, signal, sys
from transformers import TrainerCallback
from trl import GRPOConfig
from medr1.train.grpo import parse_args, train
sys.path.insert(0, os.environ["TESTS_DIR"])
from test_grpo import length_reward

class KillAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):  # called once the checkpoint is on disk
        if state.global_step == int(os.environ["KILL_AT_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)

train(*parse_args(sys.argv[1:], GRPOConfig, "killed"), callbacks=[KillAfterCheckpoint()], reward_funcs=[length_reward])
"""


def length_reward(completions, **kwargs):
    """A deterministic reward with variance in every group, so each step moves the weights."""
    return [float(len(str(completion)) % 5) for completion in completions]


class StepRecorder(TrainerCallback):
    """The optimizer steps this process performed."""

    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_killed_run_resumes_exactly_where_it_stopped(synthetic_data, compact_model, tmp_path):
    """kill -9 a training process right after its step-2 checkpoint is written (a callback kills it, so no
    race with a fast run); rerunning the same arguments performs only steps 3-6, keeps the earlier log
    history, and ends with exactly the weights of an uninterrupted run of the same seed."""
    import torch
    from safetensors.torch import load_file

    from medr1.train.grpo import train

    _, data = synthetic_data

    def argv(out):
        return grpo_argv(data, compact_model, out, "--max_steps", "6", "--save_steps", "2", "--save_total_limit", "5",
                         "--learning_rate", "0.01")

    killed, uninterrupted = tmp_path / "killed", tmp_path / "uninterrupted"
    env = {**os.environ, "KILL_AT_STEP": "2", "TESTS_DIR": str(Path(__file__).parent), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", KILLED_RUN, *argv(killed)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert sorted(p.name for p in killed.glob("checkpoint-*")) == ["checkpoint-2"]
    history_at_kill = json.loads((killed / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed process ran: same arithmetic, so weights can be compared exactly
    try:
        resumed_steps, full_steps = StepRecorder(), StepRecorder()
        train(*parse(argv(killed)), callbacks=[resumed_steps], reward_funcs=[length_reward])
        train(*parse(argv(uninterrupted)), callbacks=[full_steps], reward_funcs=[length_reward])
    finally:
        torch.set_num_threads(threads)
    assert resumed_steps.steps == [3, 4, 5, 6] and full_steps.steps == [1, 2, 3, 4, 5, 6]

    history = json.loads((killed / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    assert history[:len(history_at_kill)] == history_at_kill  # the earlier log history is kept
    assert [e["step"] for e in history if "loss" in e] == [1, 2, 3, 4, 5, 6]
    reference = json.loads((uninterrupted / "checkpoint-6" / "trainer_state.json").read_text())["log_history"]
    assert [e["reward"] for e in history if "reward" in e] == [e["reward"] for e in reference if "reward" in e]

    base, resumed, full = (load_file(path / "model.safetensors") for path in (compact_model, killed, uninterrupted))
    assert resumed.keys() == full.keys()
    assert all(torch.equal(resumed[k], full[k]) for k in full)
    assert any(not torch.equal(base[k], full[k]) for k in full)  # training moved the weights


def test_run_resumable_silences_only_trls_deprecated_property_warning():
    import warnings

    from medr1.train.grpo import run_resumable

    class Trainer:
        model = None

        def train(self, resume_from_checkpoint=None):
            warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
            warnings.warn("something else", FutureWarning)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_resumable(Trainer(), None)
    assert [str(w.message) for w in caught] == ["something else"]
