"""What a GRPO run reports and selects beyond TRL: held-out accuracy during training, the accuracy reward per
domain, pass rates (`medr1 passrate`) and training on the questions between two pass rates."""

import json
from pathlib import Path

import pytest

from medr1.train.monitors import domain_means, with_domain_metrics

REPO = Path(__file__).resolve().parents[1]
TINY_RECIPE = REPO / "configs" / "grpo" / "tiny_cpu.yaml"


def grpo_args(data, model, out, *extra):
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args

    return parse_args(["--config", str(TINY_RECIPE), "--data_dir", str(data), "--modality", "CT",
                       "--model_name_or_path", str(model), "--output_dir", str(out), "--report_to", "none",
                       "--log_completions", "false", "--max_completion_length", "6", "--save_strategy", "no",
                       *extra], GRPOConfig, "test")


def test_domain_means_and_the_logging_wrapper():
    assert domain_means([1.0, 0.0, 1.0, 1.0], ["a", "b", "a", "b"]) == {"a": 1.0, "b": 0.5}
    logged = []

    def accuracy_reward(completions, **kwargs):
        return [1.0, 0.0, 0.0]

    wrapped = with_domain_metrics(accuracy_reward)
    assert wrapped.__name__ == "accuracy_reward"
    out = wrapped(["x", "y", "z"], task=["T1", "T2", "T2"], dataset=["D", "D", "E"],
                  log_metric=lambda name, value: logged.append((name, value)))
    assert out == [1.0, 0.0, 0.0]
    assert sorted(logged) == [("accuracy_reward/dataset/D", 0.5), ("accuracy_reward/dataset/E", 0.0),
                              ("accuracy_reward/task/T1", 1.0), ("accuracy_reward/task/T2", 0.0)]
    assert wrapped(["x"], task=["T1"]) == [1.0, 0.0, 0.0]  # without TRL's log_metric it only scores


def test_training_logs_held_out_accuracy_and_per_domain_rewards(synthetic_data, diverse_model, tmp_path):
    """eval_every_steps=2 over 4 steps: held-out accuracy is logged at steps 2 and 4, equal to what
    `medr1 eval` scores for the same weights on the same slice; the accuracy reward is logged per task."""
    from medr1.data.records import image_loader, load_split
    from medr1.evaluation.evaluate import evaluate_in_memory
    from medr1.train.grpo import build_trainer

    _, data = synthetic_data
    script_args, training_args, model_args = grpo_args(data, diverse_model, tmp_path / "run", "--max_steps", "4",
                                                       "--eval_every_steps", "2", "--eval_questions", "6",
                                                       "--learning_rate", "0.0")
    trainer, _ = build_trainer(script_args, training_args, model_args)
    trainer.train()
    logged = [(e["step"], e["held_out/accuracy"]) for e in trainer.state.log_history if "held_out/accuracy" in e]
    assert [step for step, _ in logged] == [2, 4]
    monitor = next(c for c in trainer.callback_handler.callbacks if type(c).__name__ == "HeldOutAccuracy")
    assert [step for step, _ in monitor.curve] == [0, 2, 4]
    records = load_split(data, "modality/CT/test", 6)
    expected = evaluate_in_memory(trainer.model, trainer.processing_class, records, image_loader(data, 56),
                                  prompt="think", stage="train", max_new_tokens=6)["accuracy"]
    assert all(value == pytest.approx(expected) for _, value in logged)  # lr 0: the weights never moved
    # measuring does not move the global RNG, so it cannot change what the run samples
    import torch

    state = torch.get_rng_state()
    monitor._accuracy()
    assert torch.equal(torch.get_rng_state(), state)
    per_task = [k for e in trainer.state.log_history for k in e if k.startswith("accuracy_reward/task/")]
    assert per_task and all(k.split("/")[-1] in {r["task"] for r in load_split(data, "modality/CT/train")}
                            for k in per_task)


def test_passrate_writes_a_rate_per_question_and_resumes(synthetic_data, diverse_model, tmp_path):
    from medr1.cli import main

    _, data = synthetic_data
    out = tmp_path / "rates.jsonl"
    argv = ["passrate", "--model", str(diverse_model), "--data", str(data), "--split", "modality/CT/train",
            "--k", "4", "--out", str(out), "--limit", "3", "--image-size", "56", "--max-new-tokens", "8",
            "--batch-size", "2", "--num-workers", "0"]
    assert main(argv) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and all(line["k"] == 4 and line["pass_rate"] in (0, 0.25, 0.5, 0.75, 1.0) for line in lines)
    assert main([*argv[:-10], "--limit", "5", *argv[-8:]]) == 0  # resumes: only the two new questions
    again = [json.loads(line) for line in out.read_text().splitlines()]
    assert again[:3] == lines and len(again) == 5 and len({line["question_id"] for line in again}) == 5


def test_pass_rate_sampling_follows_the_reward(monkeypatch):
    """pass_rate is the share of samples the training accuracy reward scores right."""
    from medr1.evaluation.passrate import pass_rate

    record = {"answer": "B", "options": ["cyst", "mass", "none"]}
    outputs = ["<think>x</think><answer> B </answer>", "<think>x</think><answer> A </answer>",
               "<think>x</think><answer>mass</answer>", "nothing"]
    assert pass_rate(outputs, record, "think", "robust") == 0.5
    assert pass_rate(outputs, record, "think", "medr1-compat") == 0.25


def test_training_keeps_only_questions_between_the_pass_rates(synthetic_data, compact_model, tmp_path):
    from medr1.data.records import load_split
    from medr1.train.grpo import build_trainer

    _, data = synthetic_data
    records = load_split(data, "modality/CT/train")
    rates = tmp_path / "rates.jsonl"
    values = [0.0, 0.25, 0.5, 1.0]
    # every question but the last gets a rate; the last is left out of the file
    rates.write_text("".join(json.dumps({"question_id": r["question_id"], "pass_rate": values[i % 4], "k": 4}) + "\n"
                             for i, r in enumerate(records[:-1])))
    script_args, training_args, model_args = grpo_args(data, compact_model, tmp_path / "run", "--max_steps", "1",
                                                       "--pass_rates", str(rates), "--min_pass_rate", "0.0",
                                                       "--max_pass_rate", "1.0")
    trainer, _ = build_trainer(script_args, training_args, model_args)
    expected = [r["question_id"] for i, r in enumerate(records[:-1]) if values[i % 4] in (0.25, 0.5)]
    assert list(trainer.train_dataset["question_id"]) == expected
    run = json.loads((tmp_path / "run" / "medr1_run.json").read_text())
    assert run["n_questions"] == len(expected)
    assert run["pass_rate_filter"]["kept"] == len(expected)
    assert run["pass_rate_filter"]["dropped_no_rate"] == 1
    assert run["pass_rate_filter"]["dropped_by_rate"] == len(records) - 1 - len(expected)

    rates.write_text(rates.read_text() + "not json\n")
    with pytest.raises(ValueError, match=f"{rates.name}:{len(records)}"):
        build_trainer(*grpo_args(data, compact_model, tmp_path / "bad", "--pass_rates", str(rates)))


def test_steps_to_target_reads_the_held_out_curve():
    from medr1.embedded.demo import reward_curves, steps_to_reach

    history = [{"step": 50, "held_out/accuracy": 0.3}, {"step": 60, "loss": 1.0},
               {"step": 100, "held_out/accuracy": 0.8}, {"step": 150, "held_out/accuracy": 0.95}]
    curve = reward_curves(history)["held-out accuracy (greedy)"]
    assert curve == [(50, 0.3), (100, 0.8), (150, 0.95)]
    assert steps_to_reach(curve, 0.80) == 100  # >= target, the first such step
    assert steps_to_reach(curve, 0.96) is None
    assert steps_to_reach([], 0.5) is None
