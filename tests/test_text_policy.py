"""Text policies: a causal LM is loaded as one (from its config), the tiny Qwen2/Qwen3 causal LMs, text records
through generation, and the text recipes."""

import json
from pathlib import Path

import pytest

from medr1.data.model_kinds import CAUSAL_LM, IMAGE_TEXT_TO_TEXT, model_kind, tokenizer_of

REPO = Path(__file__).resolve().parents[1]
CPU = ("--bf16", "false", "--use_cpu", "true")
TEXT_RECIPES = ("huatuo_o1_llama31_8b.yaml", "huatuo_o1_qwen25_7b.yaml", "medicalgpt_qwen25_1.5b.yaml")
RECORDS = [
    {"question_id": "t1", "dataset": "medqa", "modality": "text", "task": "step1", "question": "Which drug?",
     "options": ["Aspirin", "Metformin"], "answer": "B"},
    {"question_id": "t2", "dataset": "huatuo", "modality": "text", "task": "open", "question": "What lowers glucose?",
     "options": [], "answer": "metformin"},
]


def test_model_kind_is_read_from_the_config():
    from transformers import LlamaConfig, Qwen2Config, Qwen2VLConfig, Qwen3Config

    assert model_kind({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}) == CAUSAL_LM
    assert model_kind({"model_type": "qwen2_vl", "vision_config": {"depth": 2}}) == IMAGE_TEXT_TO_TEXT
    for config in (Qwen2Config(), Qwen3Config(), LlamaConfig()):
        assert model_kind(config) == CAUSAL_LM
    assert model_kind(Qwen2VLConfig()) == IMAGE_TEXT_TO_TEXT


def test_tokenizer_of():
    class Processor:
        tokenizer = "the tokenizer"

    assert tokenizer_of(Processor()) == "the tokenizer"
    assert tokenizer_of("a tokenizer") == "a tokenizer"


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory):
    from medr1.embedded.tiny_causal import build_tiny_causal, text_corpus

    out = tmp_path_factory.mktemp("causal") / "qwen3"
    return build_tiny_causal(out, arch="qwen3", vocab="compact", corpus=text_corpus(RECORDS) * 4)


def test_the_real_vocabularies_keep_their_ids():
    from medr1.embedded.tiny_causal import CAUSAL_ARCHES
    from medr1.embedded.tiny_model import qwen2_tokenizer

    qwen25 = qwen2_tokenizer(CAUSAL_ARCHES["qwen2"].vocabulary)
    assert len(qwen25) == 151665
    assert [qwen25.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [
        151643, 151644, 151645]
    qwen3 = qwen2_tokenizer(CAUSAL_ARCHES["qwen3"].vocabulary)
    assert len(qwen3) == 151669
    assert qwen3.convert_tokens_to_ids("<think>") == 151667 and qwen3.convert_tokens_to_ids("</think>") == 151668
    assert qwen3.decode(qwen3("<think>x</think>")["input_ids"], skip_special_tokens=True) == "<think>x</think>"
    conversation = [{"role": "user", "content": "Hi"}]
    assert qwen25.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert qwen3.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_tiny_model_command_builds_causal_lms(tmp_path):
    from medr1.cli import main

    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert main(["tiny-model", "--arch", "qwen2", "--vocab", "compact", "--corpus", str(records),
                 "--out", str(tmp_path / "qwen2")]) == 0
    config = json.loads((tmp_path / "qwen2" / "config.json").read_text())
    assert config["model_type"] == "qwen2" and model_kind(config) == CAUSAL_LM
    with pytest.raises(ValueError, match="causal architecture"):
        from medr1.embedded.tiny_causal import build_tiny_causal

        build_tiny_causal(tmp_path / "x", arch="llama")


def test_stages_load_a_causal_lm_and_its_tokenizer(tiny_qwen3):
    from transformers import PreTrainedModel
    from trl import ModelConfig

    from medr1.evaluation.evaluate import load_for_generation
    from medr1.train.configs import MedR1Arguments
    from medr1.train.grpo import load_policy

    model, tokenizer = load_policy(ModelConfig(model_name_or_path=str(tiny_qwen3), dtype="float32"), MedR1Arguments())
    assert type(model).__name__ == "Qwen3ForCausalLM" and isinstance(model, PreTrainedModel)
    assert not hasattr(tokenizer, "image_processor") and tokenizer_of(tokenizer) is tokenizer
    model, tokenizer = load_for_generation(tiny_qwen3)
    assert type(model).__name__ == "Qwen3ForCausalLM" and tokenizer.padding_side == "left"


def test_text_records_generate_and_score_without_images(tiny_qwen3):
    from medr1.data.records import prompt_rows
    from medr1.evaluation.evaluate import _Batches, evaluate_in_memory, load_for_generation

    model, tokenizer = load_for_generation(tiny_qwen3)
    rows = prompt_rows(RECORDS, style="huatuo")
    assert all(isinstance(row["prompt"][0]["content"], str) and "image_path" not in row for row in rows)
    records, texts, inputs = _Batches(tokenizer, load_image=None, prompt="think", stage="eval")(RECORDS)
    assert set(inputs) == {"input_ids", "attention_mask"} and "Which drug?" in texts[0]
    metrics = evaluate_in_memory(model, tokenizer, RECORDS, load_image=None, prompt="think", max_new_tokens=4)
    assert metrics["n"] == 2 and tokenizer.padding_side == "left"


@pytest.mark.parametrize("recipe", TEXT_RECIPES)
def test_text_recipes_parse(recipe):
    from trl import GRPOConfig

    from medr1.rewards.verifiers import VerifierSettings
    from medr1.train.grpo import parse_args

    script_args, args, model_args = parse_args(["--config", str(REPO / "configs" / "grpo" / recipe), *CPU],
                                               GRPOConfig, "test")
    VerifierSettings.from_args(script_args)  # the verifier settings are valid
    assert args.learning_rate == 5e-7 and "{target}" not in args.output_dir
    if recipe.startswith("huatuo"):
        assert script_args.prompt_style == "huatuo" and script_args.verifier == "classifier"
        assert (args.beta, args.max_completion_length, args.temperature) == (0.03, 1300, 0.5)
        questions = args.per_device_train_batch_size * args.gradient_accumulation_steps * 8 // args.num_generations
        assert questions == 128 and args.num_iterations == 3  # on 8 GPUs
        assert script_args.verifier_model == "FreedomIntelligence/medical_o1_verifier_3B"
    else:
        assert (script_args.prompt_style, script_args.verifier) == ("medicalgpt", "rule")
        assert (args.beta, args.num_generations, args.max_completion_length) == (0.001, 4, 512)
        assert model_args.use_peft and (model_args.lora_r, model_args.lora_alpha) == (16, 32)


def test_the_text_rule_harness_runs_end_to_end(tmp_path):
    """The learning proof's harness at a toy size (tests/test_text_learning.py runs it at full size)."""
    from medr1.embedded.synth_text_rule import RULE, TextRuleSettings, make_records, run

    train, test = make_records(40, 10, seed=0)
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert all(r["answer"] == RULE[r["cue"]] and r["cue"] in r["question"] and r["options"] == [] for r in train)
    summary = run(TextRuleSettings(out=tmp_path, n_train=16, n_test=8, sft_steps=2, grpo_steps=2, sft_batch=4,
                                   questions_per_step=2, num_generations=2, threads=None))
    assert summary["before"]["n"] == summary["after"]["n"] == 8
    assert 0.0 <= summary["after"]["accuracy"] <= 1.0 and summary["cpu_seconds"] > 0
