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


# --------------------------------------------------------------------------------------------------
# text splits through the user commands: split names, the budget, SFT answers, rewards, held-out scoring, end to end

@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    """A DATA_DIR prepared from `medr1 synth-text`'s files (every text dataset; `dataset/<name>/<split>`)."""
    from medr1.data.text_sources import prepare_text
    from medr1.embedded.synth_text import write_text_fixtures

    base = tmp_path_factory.mktemp("text")
    write_text_fixtures(base / "raw", per_split=4)
    pairs = [(name, base / "raw" / name) for name in ("medqa", "medmcqa", "huatuo-verifiable")]
    prepare_text(pairs, base / "data")
    return base / "data"


def test_a_text_split_is_named_in_full(text_data):
    from medr1.data.records import available_splits, load_split, split_name, split_path
    from medr1.train.configs import MedR1Arguments
    from medr1.train.grpo import training_split

    assert split_name(split="dataset/medqa/train") == "dataset/medqa/train"
    assert split_name(split="dataset/medqa/train", part="test") == "dataset/medqa/test"
    assert split_name("CT", part="test") == "modality/CT/test"  # the image splits are unchanged
    for bad in ("dataset/medqa/train.jsonl", "/abs/train", "dataset/../x", "dataset//train", ""):
        with pytest.raises(ValueError, match="name a split by its path"):
            split_name(split=bad)
    with pytest.raises(ValueError, match="exactly one of --modality, --task or --split"):
        split_name("CT", split="dataset/medqa/train")
    assert "dataset/huatuo-verifiable/test" in available_splits(text_data)
    with pytest.raises(FileNotFoundError, match="has: dataset/huatuo-verifiable/test"):
        split_path(text_data, "dataset/medqa/tset")
    args = MedR1Arguments(data_dir=str(text_data), split="dataset/medmcqa/train")
    assert args.target() == "dataset-medmcqa-train" and training_split(args) == "dataset/medmcqa/train"
    assert training_split(args, "test") == "dataset/medmcqa/test"  # MedMCQA has none: eval_split names another
    args.eval_split = "dataset/medmcqa/validation"
    assert training_split(args, "test") == "dataset/medmcqa/validation"
    assert all(r["options"] == [] for r in load_split(text_data, "dataset/huatuo-verifiable/train"))


def test_the_budget_counts_text_tokens_of_text_records(text_data, tiny_qwen3):
    from transformers import AutoConfig, AutoTokenizer

    from medr1.data.budget import check_dataset_budget, dataset_prompts, prompt_costs
    from medr1.data.records import prompt_dataset

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen3)
    dataset = prompt_dataset(text_data, "dataset/medqa/train", style="huatuo")
    ids, texts, paths = dataset_prompts(dataset, tokenizer)
    assert paths == [[]] * len(dataset) and ids == dataset["question_id"]
    costs = prompt_costs(tokenizer, ids, texts, paths)
    for cost, text in zip(costs, texts, strict=True):
        assert cost.image_tokens == cost.images == 0
        assert cost.text_tokens == len(tokenizer(text, add_special_tokens=False)["input_ids"]) > 10
    config = AutoConfig.from_pretrained(tiny_qwen3)
    report = check_dataset_budget(dataset, tokenizer, config, text_data, None, reserve=16)
    assert report["max_tokens"] == max(c.tokens for c in costs) and report["records"] == len(dataset)
    longest = max(costs, key=lambda c: c.tokens)
    with pytest.raises(ValueError, match=rf"record '{longest.question_id}' needs {longest.tokens} prompt tokens "
                                         r"\(text only, no image\).*max_prompt_length"):
        check_dataset_budget(dataset, tokenizer, config, text_data, None, max_prompt_length=longest.tokens - 1)


def test_a_vlm_takes_text_only_prompts(text_data, tmp_path):
    """A VLM's processor on text records: text tokens only (no image placeholder), and generation without images."""
    from transformers import AutoProcessor

    from medr1.data.budget import dataset_prompts, prompt_costs
    from medr1.data.records import load_split, prompt_dataset
    from medr1.embedded.tiny_model import build_tiny_model, corpus_from_records
    from medr1.evaluation.evaluate import evaluate_in_memory, load_for_generation

    vlm = build_tiny_model(tmp_path / "vlm", vocab="compact", corpus=corpus_from_records(text_data / "records.jsonl"),
                           image_size=56)
    processor = AutoProcessor.from_pretrained(vlm)
    assert processor.image_token  # a VLM processor, with an image token none of these prompts holds
    costs = prompt_costs(processor, *dataset_prompts(prompt_dataset(text_data, "dataset/medqa/test"), processor))
    assert costs and all(c.images == c.image_tokens == 0 and c.text_tokens > 10 for c in costs)
    model, processor = load_for_generation(vlm)
    records = load_split(text_data, "dataset/medqa/test", limit=2)
    metrics = evaluate_in_memory(model, processor, records, load_image=None, prompt="huatuo", max_new_tokens=3)
    assert metrics["n"] == 2


def test_sft_answers_of_open_ended_records(text_data, tmp_path):
    from trl import ModelConfig, SFTConfig

    from medr1.train.configs import MedR1Arguments
    from medr1.train.sft import answer_letter_for, build_trainer, placeholder_reasoning, target_text

    record = {"question_id": "o1", "options": [], "answer": "Metformin"}
    assert answer_letter_for(record, "gold", 0) == "Metformin"
    with pytest.raises(ValueError, match=r"f\.jsonl: record 'o1' is open-ended .* needs multiple-choice records"):
        answer_letter_for(record, "random", 0, "f.jsonl")
    assert answer_letter_for({"question_id": "m", "options": ["a", "b"], "answer": "A"}, "random", 0) in ("A", "B")
    assert target_text("Metformin", "medicalgpt", "why") == "<think>why</think><answer>Metformin</answer>"
    assert "image" not in placeholder_reasoning({**record, "modality": "text"})
    assert "image" in placeholder_reasoning({"modality": "CT", "image_path": "x.png"})
    assert "image" in placeholder_reasoning({})
    # Through the stage: the split file and the record are named before any model is loaded.
    script_args = MedR1Arguments(data_dir=str(text_data), split="dataset/huatuo-verifiable/train", sft_answers="random",
                                 prompt_style="huatuo")
    split_file = text_data / "splits" / "dataset" / "huatuo-verifiable" / "train.jsonl"
    with pytest.raises(ValueError, match=rf"{split_file}: record 'huatuo-verifiable-\d+' is open-ended"):
        build_trainer(script_args, SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False),
                      ModelConfig(model_name_or_path=str(tmp_path / "no-model")))


def test_grpo_on_open_ended_records_needs_a_verifier(text_data, tmp_path):
    from trl import GRPOConfig, ModelConfig

    from medr1.train.configs import MedR1Arguments
    from medr1.train.grpo import build_trainer

    script_args = MedR1Arguments(data_dir=str(text_data), split="dataset/huatuo-verifiable/train",
                                 prompt_style="huatuo")
    with pytest.raises(ValueError, match=r"records are open-ended .* Set verifier: rule"):
        build_trainer(script_args, GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False),
                      ModelConfig(model_name_or_path=str(tmp_path / "no-model")))


def test_held_out_accuracy_scores_open_ended_records_by_the_verifier(tiny_qwen3, monkeypatch):
    """The training callback scores as `medr1 eval` does: an open-ended answer by the rule verifier, a letter by the
    prompt's convention. Generation is replaced by fixed outputs so that the scoring alone is measured."""
    from types import SimpleNamespace

    import medr1.evaluation.evaluate as evaluate
    from medr1.train.monitors import HeldOutAccuracy

    records = [*RECORDS, {**RECORDS[1], "question_id": "t3", "answer": "insulin"}]
    finals = {"t1": "B", "t2": "Metformin.", "t3": "metformin"}  # right, right (normalised), wrong

    def fixed_outputs(model, processor, batches, on_batch, max_new_tokens, samples=1):
        for batch_records, texts, inputs in batches:
            assert set(inputs) == {"input_ids", "attention_mask"}  # text records: no image tensors
            on_batch(batch_records, [f"## Thinking\n\nx\n\n## Final Response\n\n{finals[r['question_id']]}"
                                     for r in batch_records], texts)

    monkeypatch.setattr(evaluate, "generate_batches", fixed_outputs)
    model, tokenizer = evaluate.load_for_generation(tiny_qwen3)
    monitor = HeldOutAccuracy(records, None, every=1, prompt="huatuo", max_new_tokens=4)
    monitor.attach(SimpleNamespace(model=model, processing_class=tokenizer,
                                   accelerator=SimpleNamespace(unwrap_model=lambda m: m)))
    assert monitor._accuracy() == pytest.approx(2 / 3)


def test_text_split_end_to_end_through_the_commands(tmp_path, caplog):
    """prepare -> tiny causal LM -> sft 2 steps -> GRPO 2 steps (rule verifier, held-out accuracy each step) ->
    eval --prompt huatuo, on HuatuoGPT-o1-style open-ended records, all through `medr1.cli.main`."""
    import logging

    from medr1.cli import main
    from medr1.data.records import load_split
    from medr1.rewards.verifiers import final_response, rule_verdict

    caplog.set_level(logging.INFO)
    raw, data, model, out = tmp_path / "raw", tmp_path / "data", tmp_path / "model", tmp_path / "out"
    assert main(["synth-text", "--out", str(raw), "--per-split", "4"]) == 0
    assert main(["prepare", "--dataset", "huatuo-verifiable", "--input", str(raw / "huatuo-verifiable"),
                 "--dataset", "medqa", "--input", str(raw / "medqa"), "--out", str(data)]) == 0
    assert main(["tiny-model", "--arch", "qwen3", "--vocab", "compact", "--corpus", str(data / "records.jsonl"),
                 "--out", str(model)]) == 0
    split = "dataset/huatuo-verifiable/train"
    common = ["--data_dir", str(data), "--split", split, "--prompt_style", "huatuo", "--dtype", "float32", *CPU,
              "--report_to", "none", "--save_strategy", "no", "--max_steps", "2", "--logging_steps", "1",
              "--dataloader_num_workers", "0", "--seed", "0"]
    assert main(["sft", *common, "--model_name_or_path", str(model), "--output_dir", str(out / "sft/{target}"),
                 "--per_device_train_batch_size", "4", "--max_length", "256"]) == 0
    sft = out / "sft" / "dataset-huatuo-verifiable-train"
    assert json.loads((sft / "medr1_run.json").read_text())["split"] == split
    assert main(["train", *common, "--model_name_or_path", str(sft), "--output_dir", str(out / "grpo/{target}"),
                 "--verifier", "rule", "--num_generations", "2", "--per_device_train_batch_size", "4",
                 "--max_completion_length", "12", "--eval_every_steps", "1", "--eval_questions", "4"]) == 0
    grpo = out / "grpo" / "dataset-huatuo-verifiable-train"
    run = json.loads((grpo / "medr1_run.json").read_text())
    assert run["split"] == split and run["n_questions"] == len(load_split(data, split))
    assert (grpo / "model.safetensors").is_file()
    assert caplog.text.count("held-out accuracy") == 2  # steps 1 and 2 (the step-0 point is not logged)
    test = "dataset/huatuo-verifiable/test"
    assert main(["eval", "--model", str(grpo), "--data", str(data), "--split", test, "--out", str(out / "eval"),
                 "--prompt", "huatuo", "--max-new-tokens", "12", "--num-workers", "0"]) == 0
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    records = {r["question_id"]: r for r in load_split(data, test)}
    assert metrics["n"] == metrics["open_ended"] == len(records) > 0 and metrics["parse"] == "huatuo"
    assert set(metrics["scoring"]) >= {"robust", "huatuo"}
    lines = [json.loads(line) for line in (out / "eval" / "predictions.jsonl").read_text().splitlines()]
    for line in lines:  # each verdict is the rule verifier's on the final response (else the whole output)
        answer = final_response(line["output"], "huatuo") or line["output"].strip()
        assert line["correct"] == (bool(answer) and rule_verdict(answer, records[line["question_id"]]["answer"]))
    assert metrics["correct"] == sum(line["correct"] for line in lines)
