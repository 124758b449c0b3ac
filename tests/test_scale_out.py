"""Scale-out paths on a CPU: accelerate configs, LoRA, a frozen vision tower, gradient checkpointing,
vLLM arguments, and a real two-process data-parallel run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "configs" / "grpo" / "tiny_cpu.yaml"
PAPER_RECIPE = REPO / "configs" / "grpo" / "medr1_qwen2vl_2b.yaml"


def tiny_argv(data, model, out, *extra):
    return ["--config", str(TINY_RECIPE), "--data_dir", str(data), "--modality", "Fundus Photography",
            "--model_name_or_path", str(model), "--output_dir", str(out), "--report_to", "none",
            "--log_completions", "false", "--max_completion_length", "8", "--save_strategy", "no", *extra]


def random_reward(completions, **kwargs):
    """Varied rewards, so every group has a gradient even for an untrained model."""
    import random

    return [random.random() for _ in completions]


def build(argv):
    from trl import GRPOConfig

    from medr1.train.grpo import build_trainer, parse_args

    return build_trainer(*parse_args(argv, GRPOConfig, "test"), reward_funcs=[random_reward])[0]


@pytest.mark.parametrize("name,kind", [("ddp", "MULTI_GPU"), ("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED"),
                                       ("fsdp", "FSDP")])
def test_accelerate_configs_load(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(REPO / "configs" / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.name == kind and config.mixed_precision == "bf16"
    if name.startswith("zero"):
        assert config.deepspeed_config["zero_stage"] == int(name[-1])


def test_lora_trains_only_adapters(synthetic_data, compact_model, tmp_path):
    """After LoRA training every base weight is bit-identical to before, and the adapters moved (lora_B
    starts at zero, so a changed lora_B is a trained adapter)."""
    _, data = synthetic_data
    trainer = build(tiny_argv(data, compact_model, tmp_path / "lora", "--max_steps", "2", "--use_peft", "true",
                              "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj",
                              "--learning_rate", "0.01"))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    base = [n for n in before if "lora_" not in n]
    assert base and all(torch_equal(after[n], before[n]) for n in base)
    lora_b = [n for n in before if "lora_B" in n]
    assert lora_b and any(not torch_equal(after[n], before[n]) for n in lora_b)


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a.detach(), b)


def test_frozen_vision_tower_does_not_move(synthetic_data, compact_model, tmp_path):
    _, data = synthetic_data
    trainer = build(tiny_argv(data, compact_model, tmp_path / "frozen", "--max_steps", "2",
                              "--freeze_vision_tower", "true", "--learning_rate", "0.01"))
    visual = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if ".visual." in f".{n}"}
    text = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "layers.0.mlp" in n}
    assert visual and not any(p.requires_grad for n, p in trainer.model.named_parameters() if n in visual)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(after[n].equal(v) for n, v in visual.items())
    assert any(not after[n].equal(v) for n, v in text.items())  # the language model did train


@pytest.mark.parametrize("checkpointing", [True, False])
def test_gradient_checkpointing_is_on_the_model(synthetic_data, compact_model, tmp_path, checkpointing):
    """With --gradient_checkpointing the decoder layers run their forward again during backward (that is
    the memory saving); without it each runs once per training forward."""
    _, data = synthetic_data
    trainer = build(tiny_argv(data, compact_model, tmp_path / "gc", "--max_steps", "1",
                              "--gradient_checkpointing", str(checkpointing).lower()))
    import torch

    # Checkpointing wraps the layer's own forward and keeps module hooks out of the replay, so count calls
    # of the forward of a module inside the layer.
    mlp = trainer.model.model.language_model.layers[0].mlp
    calls, forward = [], mlp.forward

    def counting_forward(*args, **kwargs):
        if torch.is_grad_enabled():
            calls.append(1)
        return forward(*args, **kwargs)

    mlp.forward = counting_forward
    trainer.train()
    assert trainer.state.global_step == 1 and trainer.model.is_gradient_checkpointing == checkpointing
    # One policy forward with gradients per accumulation step; checkpointing replays each in backward.
    assert len(calls) == (2 if checkpointing else 1) * trainer.args.gradient_accumulation_steps, calls


@pytest.mark.parametrize("mode", ["colocate", "server"])
def test_vllm_arguments_reach_the_config(mode):
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args

    _, args, _ = parse_args(["--config", str(PAPER_RECIPE), "--modality", "CT", "--bf16", "false", "--use_cpu",
                             "true", "--use_vllm", "true", "--vllm_mode", mode,
                             "--vllm_gpu_memory_utilization", "0.4"], GRPOConfig, "test")
    assert args.use_vllm and args.vllm_mode == mode and args.vllm_gpu_memory_utilization == 0.4


@pytest.mark.slow
def test_two_process_data_parallel_run(synthetic_data, compact_model, tmp_path):
    """`torchrun --nproc_per_node 2` starts two CPU processes (gloo) of `medr1 train`: the run records a world
    size of 2, both ranks write their own RNG state into each checkpoint, and groups still score. (`accelerate
    launch --cpu --num_processes 2` would start only one process.)"""
    _, data = synthetic_data
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "medr1.cli", "train",
               *tiny_argv(data, compact_model, out, "--max_steps", "2", "--logging_steps", "1",
                          "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
                          "--num_generations", "4", "--save_strategy", "steps", "--save_steps", "2")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "medr1_run.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in (out / "checkpoint-2").glob("rng_state*.pth")) == ["rng_state_0.pth",
                                                                                       "rng_state_1.pth"]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    logged = [entry for entry in state["log_history"] if "reward" in entry]
    assert len(logged) == 2 and all("frac_reward_zero_std" in entry for entry in logged)
    assert (out / "model.safetensors").is_file()
