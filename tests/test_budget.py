"""The prompt-token budget: its count equals what the processor and the trainers produce, and training and
evaluation setup stop on a prompt that would be cut, naming the record, the tokens, the limit and the fix."""

import json
import shutil
from pathlib import Path

import pytest

from medr1.data.budget import Limit, PromptCost, context_limit, over_limit_message, setting_limit

REPO = Path(__file__).resolve().parents[1]


def test_limits_and_the_message():
    from transformers import Qwen2VLConfig

    config = Qwen2VLConfig(text_config={"max_position_embeddings": 1000})
    assert context_limit(config, 256, "--max_completion_length") == Limit(
        744, "the model's max_position_embeddings 1000 less max_completion_length 256", "lower --max_completion_length")
    assert context_limit(config).tokens == 1000
    assert setting_limit(None, "--max_prompt_length") is None
    assert setting_limit(512, "--max_length") == Limit(512, "max_length 512", "raise --max_length")
    limit = Limit(300, "max_length 300", "raise --max_length")
    message = over_limit_message(PromptCost("q7", 90, 400, 2), 3, 10, limit, "--image_size")
    for part in ("'q7'", "490 prompt tokens", "90 text + 400 for 2 images", "limit is 300", "2 more of the 10",
                 "raise --max_length", "--image_size", "max_pixels"):
        assert part in message, part


def test_image_sizes_come_from_headers(tmp_path):
    from PIL import Image

    from medr1.data.images import image_dimensions, load_image

    Image.new("RGB", (90, 40)).save(tmp_path / "wide.png")
    rotated = Image.new("RGB", (90, 40))
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    rotated.save(tmp_path / "rotated.jpg", exif=exif)
    for name in ("wide.png", "rotated.jpg"):
        assert image_dimensions(tmp_path / name) == load_image(tmp_path / name, size=None).size
    assert image_dimensions(tmp_path / "rotated.jpg") == (40, 90)
    with pytest.raises(ValueError, match="missing.png"):
        image_dimensions(tmp_path / "missing.png")


def test_count_equals_the_processor_for_any_image_size(qwen_vocab_model):
    """Real Qwen2 vocabulary, a processor with a pixel range (min 56², max 224²): smart-resize rounds, grows
    and shrinks each image; the budget's count is the processor's input length every time."""
    from PIL import Image
    from transformers import AutoProcessor

    from medr1.data.budget import prompt_costs
    from medr1.data.prompts import build_conversation
    from medr1.embedded.tiny_model import build_processor

    processor = build_processor(AutoProcessor.from_pretrained(qwen_vocab_model).tokenizer, image_size=224)
    record = {"question": "Which slice shows the lesion?", "options": ["Slice 1", "Slice 2", "Slice 3"]}
    cases = [[(100, 37)], [(300, 200)], [(20, 20)], [(57, 57), (1000, 90), (224, 224)]]
    for sizes in cases:
        conversation = build_conversation({**record, "images": ["x"] * len(sizes)} if len(sizes) > 1 else record)
        text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        images = [Image.new("RGB", size) for size in sizes]
        expected = processor(text=[text], images=images, return_tensors="pt")["input_ids"].shape[1]
        [cost] = prompt_costs(processor, ["q"], [text], [sizes])
        assert cost.tokens == expected, sizes
    with pytest.raises(ValueError, match="3 image placeholders for 2 images"):
        prompt_costs(processor, ["q"], [text], [[(56, 56), (56, 56)]])


def test_count_equals_what_grpo_and_sft_feed_the_model(synthetic_data, compact_model, tmp_path):
    """GRPO: TRL tokenizes the conversation with its images; SFT: the collator's sequence (prompt and completion)
    for the same rows. The budget's counts match both, at the recipe's image size and at native size."""
    from trl import SFTConfig

    from medr1.data.budget import dataset_prompts, prompt_costs
    from medr1.data.records import image_size_reader, prompt_dataset
    from medr1.train.grpo import parse_args
    from medr1.train.sft import build_trainer

    _, data = synthetic_data
    trainer = build_trainer(*parse_args(
        ["--config", str(REPO / "configs/sft/tiny_cpu.yaml"), "--data_dir", str(data), "--modality", "CT",
         "--model_name_or_path", str(compact_model), "--output_dir", str(tmp_path / "sft"), "--report_to", "none",
         "--save_strategy", "no"], SFTConfig, "test"))
    processor = trainer.processing_class
    ids, texts, paths = dataset_prompts(trainer.train_dataset, processor)
    size_of = image_size_reader(data, 56)
    costs = prompt_costs(processor, ids, texts, [[size_of(p) for p in ps] for ps in paths])
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    assert [c.tokens for c in costs[:4]] == batch["attention_mask"].sum(dim=1).tolist()

    for image_size in (56, None):  # native: the 64-px images through the processor's own resize
        dataset = prompt_dataset(data, "modality/CT/train", image_size=image_size)
        ids, texts, paths = dataset_prompts(dataset, processor)
        size_of = image_size_reader(data, image_size)
        costs = prompt_costs(processor, ids, texts, [[size_of(p) for p in ps] for ps in paths])
        for i in range(3):
            row = dataset[i]
            from trl.data_utils import prepare_multimodal_messages

            tokenized = processor.apply_chat_template(prepare_multimodal_messages(row["prompt"], [row["image"]]),
                                                      add_generation_prompt=True, tokenize=True, return_dict=True)
            assert costs[i].tokens == len(tokenized["input_ids"][0]), (image_size, i)


def with_context(model: Path, out: Path, tokens: int) -> Path:
    """A copy of `model` whose language model has a `tokens`-long context."""
    shutil.copytree(model, out)
    config = json.loads((out / "config.json").read_text())
    config["text_config"]["max_position_embeddings"] = tokens
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def short_context_model(tmp_path_factory, compact_model):
    """The compact tiny model with a 64-token context: every synthetic prompt (~130 tokens) is cut."""
    return with_context(compact_model, tmp_path_factory.mktemp("models") / "tiny-short", 64)


def test_grpo_setup_stops_on_a_cut_prompt(synthetic_data, short_context_model, tmp_path):
    from trl import GRPOConfig

    from medr1.train.grpo import build_trainer, parse_args

    _, data = synthetic_data
    args = parse_args(["--config", str(REPO / "configs/grpo/tiny_cpu.yaml"), "--data_dir", str(data),
                       "--modality", "CT", "--model_name_or_path", str(short_context_model),
                       "--output_dir", str(tmp_path / "grpo"), "--report_to", "none", "--max_completion_length", "8"],
                      GRPOConfig, "test")
    with pytest.raises(ValueError) as error:
        build_trainer(*args)
    message = str(error.value)
    assert message.startswith("record 'Synthetic_CT_") and "prompt tokens" in message
    assert "limit is 56 (the model's max_position_embeddings 64 less max_completion_length 8)" in message
    for fix in ("lower --max_completion_length", "--image_size", "max_pixels"):
        assert fix in message


def test_sft_setup_stops_on_a_cut_sequence(synthetic_data, compact_model, tmp_path):
    from trl import SFTConfig

    from medr1.train.grpo import parse_args
    from medr1.train.sft import build_trainer

    _, data = synthetic_data
    args = parse_args(["--config", str(REPO / "configs/sft/tiny_cpu.yaml"), "--data_dir", str(data),
                       "--modality", "CT", "--model_name_or_path", str(compact_model), "--output_dir",
                       str(tmp_path / "sft"), "--report_to", "none", "--max_length", "40"], SFTConfig, "test")
    with pytest.raises(ValueError, match=r"limit is 40 \(max_length 40\).*raise --max_length"):
        build_trainer(*args)


def test_eval_setup_stops_on_a_cut_prompt_and_passes_a_normal_one(synthetic_data, compact_model,
                                                                   short_context_model, tmp_path):
    from medr1.evaluation.evaluate import check_eval_budget, evaluate

    _, data = synthetic_data
    with pytest.raises(ValueError, match=r"limit is 56 .*lower --max-new-tokens.*--image-size"):
        evaluate(short_context_model, data, "modality/CT/test", tmp_path / "cut", image_size=56, max_new_tokens=8,
                 num_workers=0)
    assert not (tmp_path / "cut" / "predictions.jsonl").exists()  # stopped before generating anything
    from medr1.data.records import load_split

    records = load_split(data, "modality/CT/test")
    processor = check_eval_budget(compact_model, records, data, "think", "eval", 56, 8, "hf")
    assert processor.tokenizer is not None
    long_context = with_context(compact_model, tmp_path / "tiny-long", 32768)
    check_eval_budget(long_context, records, data, "think", "eval", 56, 4090, "hf")
    with pytest.raises(ValueError, match=r"vLLM's max_model_len 4096 less max-new-tokens 4090"):
        check_eval_budget(long_context, records, data, "think", "eval", 56, 4090, "vllm")


def test_max_prompt_length_is_a_recipe_setting_every_stage_parses():
    """medr1's own field (TRL 1.16's configs have none, so no clash): GRPO, RLOO, SFT and DPO parse it."""
    import dataclasses

    from trl import DPOConfig, GRPOConfig, RLOOConfig, SFTConfig

    from medr1.train.grpo import parse_args

    cpu = ["--output_dir", "x", "--modality", "CT", "--bf16", "false", "--use_cpu", "true"]
    for config_class in (GRPOConfig, RLOOConfig, SFTConfig, DPOConfig):
        assert "max_prompt_length" not in {f.name for f in dataclasses.fields(config_class)}, config_class
        script_args, _, _ = parse_args(["--max_prompt_length", "77", *cpu], config_class, "test")
        assert script_args.max_prompt_length == 77
    assert parse_args(cpu, GRPOConfig, "test")[0].max_prompt_length is None


def test_grpo_setup_stops_at_max_prompt_length(synthetic_data, compact_model, tmp_path):
    """A 4096-token context fits every prompt; --max_prompt_length below the longest stops setup with the
    record, its tokens and the setting to raise; at exactly the longest prompt's tokens setup passes."""
    import re

    from trl import GRPOConfig

    from medr1.train.grpo import build_trainer, parse_args

    _, data = synthetic_data

    def setup(max_prompt_length):
        return build_trainer(*parse_args(
            ["--config", str(REPO / "configs/grpo/tiny_cpu.yaml"), "--data_dir", str(data), "--modality", "CT",
             "--model_name_or_path", str(compact_model), "--output_dir", str(tmp_path / "grpo"), "--report_to",
             "none", "--max_completion_length", "8", "--image_size", "56", "--max_prompt_length",
             str(max_prompt_length)], GRPOConfig, "test"))

    with pytest.raises(ValueError) as error:
        setup(50)
    message = str(error.value)
    found = re.match(r"record '(Synthetic_CT_[^']+)' needs (\d+) prompt tokens \((\d+) text \+ (\d+) for 1 image\)",
                     message)
    assert found, message
    needed = int(found[2])
    assert needed == int(found[3]) + int(found[4]) > 50
    assert "but the limit is 50 (max_prompt_length 50)" in message and "raise --max_prompt_length" in message
    with pytest.raises(ValueError, match=rf"needs {needed} prompt tokens .* limit is {needed - 1} "):
        setup(needed - 1)
    trainer, _ = setup(needed)  # the longest prompt fits exactly
    assert len(trainer.train_dataset) > 0
