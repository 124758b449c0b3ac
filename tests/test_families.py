"""Every VLM family medr1 trains, on its tiny checkpoint: the real classes load it, its chat template and image
tokens are the family's, GRPO trains it with the vision tower frozen, SFT trains a LoRA adapter on it, and
greedy evaluation does not depend on the batch size."""

import json
import logging
import time
from pathlib import Path

import pytest
from transformers import TrainerCallback

from medr1.data.families import ARCHES, FAMILIES, family_for_model_type, get_family
from medr1.data.model_kinds import media_token_ids

REPO = Path(__file__).resolve().parents[1]

# The first turn each family's template renders for one image and "Which organ?", ready for the answer.
PROMPTS = {
    "qwen2-vl": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                "<|vision_start|><|image_pad|><|vision_end|>Which organ?<|im_end|>\n<|im_start|>assistant\n",
    "qwen2.5-vl": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  "<|vision_start|><|image_pad|><|vision_end|>Which organ?<|im_end|>\n<|im_start|>assistant\n",
    "qwen3-vl": "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Which organ?<|im_end|>\n"
                "<|im_start|>assistant\n",
    "gemma3": "<bos><start_of_turn>user\n<start_of_image>Which organ?<end_of_turn>\n<start_of_turn>model\n",
    "idefics3": "<|im_start|>User:<image>Which organ?<end_of_utterance>\nAssistant:",
    "llava-onevision": "<|im_start|>user\n<image>\nWhich organ?<|im_end|>\n<|im_start|>assistant\n",
    "internvl": "<|im_start|>user\n<IMG_CONTEXT>\nWhich organ?<|im_end|>\n<|im_start|>assistant\n",
}
# Released ids of the image placeholder where the real Qwen2 vocabulary is the family's own.
REAL_IMAGE_TOKEN_IDS = {"qwen2.5-vl": 151655, "qwen3-vl": 151655, "llava-onevision": 151646, "internvl": 151667}


@pytest.fixture(scope="session")
def family_models(tmp_path_factory, synthetic_data):
    """arch -> its tiny checkpoint with a compact vocabulary (built on first use)."""
    from medr1.embedded.tiny_model import build_tiny_model, corpus_from_records

    _, data = synthetic_data
    corpus = corpus_from_records(data / "records.jsonl")
    base = tmp_path_factory.mktemp("families")
    built = {}

    def get(arch):
        if arch not in built:
            built[arch] = build_tiny_model(base / arch, arch=arch, vocab="compact", corpus=corpus, image_size=56)
        return built[arch]

    return get


def image_token_id(config) -> int:
    return getattr(config, "image_token_id", None) or config.image_token_index


# ---- the table ----------------------------------------------------------------------------------

def test_the_table_covers_every_family_once():
    model_types = [t for f in FAMILIES.values() for t in f.model_types]
    assert len(model_types) == len(set(model_types))
    assert family_for_model_type("qwen2_5_vl").arch == "qwen2.5-vl" and get_family("gemma3").arch == "gemma3"
    with pytest.raises(ValueError, match="qwen2_vl"):
        family_for_model_type("bert")
    qwen = get_family("qwen2-vl")  # the rule freeze_vision_tower had before the table: `.visual.` in the name
    assert qwen.is_vision_parameter("model.visual.blocks.0.attn.qkv.weight")
    assert qwen.is_vision_parameter("base_model.model.model.visual.merger.mlp.0.bias")
    assert not qwen.is_vision_parameter("model.language_model.layers.0.mlp.visual_gate.weight")


def test_qwen2vl_lora_targets_are_the_decoder_projections():
    import re

    target = get_family("qwen2-vl").lora_target_modules
    assert re.fullmatch(target, "model.language_model.layers.11.self_attn.q_proj")
    assert re.fullmatch(target, "model.language_model.layers.0.mlp.down_proj")
    assert not re.fullmatch(target, "model.visual.blocks.0.attn.qkv")
    assert not re.fullmatch(target, "lm_head")


# ---- each family's tiny checkpoint --------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHES)
def test_tiny_checkpoint_is_the_family(arch, family_models):
    """The Auto classes load the family's own classes; its template renders the family's prompt; the processor
    expands one image into as many tokens as the family's rule says; the table's vision modules and LoRA
    regex split the model into vision tower and decoder."""
    import re

    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = family_models(arch)
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    family = family_for_model_type(model.config.model_type)
    assert family.arch == arch
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which organ?"}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    assert text == PROMPTS[arch]
    inputs = processor(text=[text], images=[Image.new("RGB", (56, 56), "red")], return_tensors="pt")
    assert int((inputs["input_ids"] == image_token_id(model.config)).sum()) == family.image_tokens(model.config, 56)
    assert image_token_id(model.config) in media_token_ids(model.config)  # what evaluation never generates
    assert processor.tokenizer.padding_side == family.padding_side
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()

    names = [n for n, _ in model.named_parameters()]
    vision = [n for n in names if family.is_vision_parameter(n)]
    assert vision and len(vision) < len(names)
    projector = [n for n in names if family.is_projector_parameter(n)]  # what freeze_vision_encoder leaves to train
    assert projector and set(projector) < set(vision)
    lora = [n for n, m in model.named_modules() if re.fullmatch(family.lora_target_modules, n)]
    per_layer = 7  # q, k, v, o, gate, up, down
    assert len(lora) == per_layer * model.config.get_text_config().num_hidden_layers
    assert not any(family.is_vision_parameter(n) for n in lora)


@pytest.mark.slow  # converting the 151k Qwen2 ranks takes seconds per family
@pytest.mark.parametrize("arch", sorted(REAL_IMAGE_TOKEN_IDS))
def test_real_qwen2_vocabulary_where_it_is_the_familys(arch, tmp_path):
    """Families built on a Qwen2 LM get the real vocabulary by default, with their added tokens at the released ids."""
    from transformers import AutoConfig, AutoTokenizer

    from medr1.embedded.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path / arch, arch=arch, image_size=56, hidden_size=16, layers=1)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer("Hello, world!").input_ids == [9707, 11, 1879, 0]
    assert image_token_id(AutoConfig.from_pretrained(path)) == REAL_IMAGE_TOKEN_IDS[arch]
    if arch == "qwen3-vl":  # single tokens that decode as text, so the format reward sees them
        ids = tokenizer("<think>a</think>").input_ids
        assert ids[0] == 151667 and ids[-1] == 151668
        assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>a</think>"


def test_families_without_a_packaged_vocabulary_refuse_the_qwen_one(tmp_path):
    from medr1.embedded.tiny_model import build_tiny_model

    with pytest.raises(ValueError, match="compact"):
        build_tiny_model(tmp_path / "g", arch="gemma3", vocab="qwen")


def as_released_idefics3(tiny: Path, out: Path, splitting=None) -> Path:
    """The tiny Idefics3 with its processor config as a released SmolVLM's: `size` 4x the tile
    (`max_image_size`), and `do_image_splitting` absent (the class default, on) or as given."""
    import shutil

    shutil.copytree(tiny, out)
    saved = json.loads((out / "processor_config.json").read_text())
    images = saved["image_processor"]
    del images["do_image_splitting"]
    if splitting is not None:
        images["do_image_splitting"] = splitting
    images["size"] = {"longest_edge": 4 * images["max_image_size"]["longest_edge"]}
    (out / "processor_config.json").write_text(json.dumps(saved))
    return out


def test_idefics3_processor_gets_the_family_settings_at_load(family_models, tmp_path):
    """A checkpoint whose processor config lacks do_image_splitting (or turns it on, as SmolVLM's do) splits an
    image into 4x4 tiles plus a global view under plain AutoProcessor; medr1's one loader applies the family's
    processor_defaults, so the image is one tile: the family rule's tokens, the budget's count, what the saved
    processor keeps."""
    from PIL import Image
    from transformers import AutoConfig, AutoProcessor

    from medr1.data.budget import image_token_counter
    from medr1.data.families import processor_settings
    from medr1.data.model_kinds import load_processing_class

    family = get_family("idefics3")
    assert processor_settings("idefics3") == dict(family.processor_defaults) == {"do_image_splitting": False}
    assert all(processor_settings(t) == {} for f in FAMILIES.values() if f.arch != "idefics3" for t in f.model_types)
    assert processor_settings("bert") == {}
    tiny = family_models("idefics3")
    config = AutoConfig.from_pretrained(tiny)
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which organ?"}]}]

    def image_tokens(processor):
        text = processor.apply_chat_template(conversation, add_generation_prompt=True)
        inputs = processor(text=[text], images=[[Image.new("RGB", (56, 56), "red")]], return_tensors="pt")
        return int((inputs["input_ids"] == config.image_token_id).sum()), inputs["input_ids"].shape[1]

    for splitting in (None, True):
        released = as_released_idefics3(tiny, tmp_path / f"released-{splitting}", splitting)
        plain = AutoProcessor.from_pretrained(released)
        assert plain.image_processor.do_image_splitting is True
        assert image_tokens(plain)[0] == 17 * family.image_tokens(config, 56)  # the gap: 16 tiles + global view
        ours = load_processing_class(released)
        assert ours.image_processor.do_image_splitting is False
        placeholders, length = image_tokens(ours)
        assert placeholders == family.image_tokens(config, 56)
        assert image_tokens(AutoProcessor.from_pretrained(tiny)) == (placeholders, length)  # as the tiny one sees it
        text_only = len(ours.tokenizer(ours.apply_chat_template(conversation, add_generation_prompt=True),
                                       add_special_tokens=False).input_ids) - 1  # less the one <image>
        assert image_token_counter(ours)(56, 56) == length - text_only
        ours.save_pretrained(tmp_path / f"saved-{splitting}")
        saved = AutoProcessor.from_pretrained(tmp_path / f"saved-{splitting}")
        assert saved.image_processor.do_image_splitting is False


# ---- training and evaluation --------------------------------------------------------------------

def varied_reward(completions, **kwargs):
    """Deterministic, with variance in every group, so every step has a gradient even for a random model."""
    return [float(len(str(completion)) % 5) for completion in completions]


class ParameterWatch(TrainerCallback):
    """Copies of the vision-tower and decoder parameters when training starts, compared when it ends."""

    def __init__(self, family):
        self.family, self.vision, self.decoder, self.moved, self.step_seconds = family, {}, {}, None, []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        for name, param in model.named_parameters():
            (self.vision if self.family.is_vision_parameter(name) else self.decoder)[name] = param.detach().clone()
        self.frozen = all(not p.requires_grad for n, p in model.named_parameters() if n in self.vision)

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.perf_counter() - self.step_started)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        after = dict(model.named_parameters())
        self.vision_moved = [n for n, v in self.vision.items() if not after[n].detach().equal(v)]
        self.decoder_moved = [n for n, v in self.decoder.items() if not after[n].detach().equal(v)]


# ---- LLaVA-OneVision under TRL's GRPO/RLOO: what medr1's processor rule relies on ---------------------------

def test_llava_onevision_rule_drops_single_image_counts_and_refuses_several():
    rule = get_family("llava-onevision").rl_processor_rule
    outputs = {"input_ids": [[1]], "pixel_values": [0], "image_sizes": [[56, 56]], "batch_num_images": [1, 1]}
    rule(outputs)
    assert outputs == {"input_ids": [[1]], "pixel_values": [0], "image_sizes": [[56, 56]]}
    rule(outputs)  # no counts (a text-only call): nothing to do
    with pytest.raises(ValueError, match=r"\[1, 3\] images per prompt.*one image per question"):
        rule({"batch_num_images": [1, 3]})
    assert [f.arch for f in FAMILIES.values() if f.rl_processor_rule is not None] == ["llava-onevision"]


@pytest.mark.parametrize("trainer_name", ["GRPOTrainer", "RLOOTrainer"])
def test_trl_forwards_every_processor_output_to_a_fixed_signature(trainer_name):
    """Pins TRL 1.16: the log-prob pass takes a fixed list of image inputs (no batch_num_images, no **kwargs),
    and the trainer forwards every processor output but input_ids and attention_mask to it. When TRL takes or
    forwards the key differently, this fails: revisit `_single_image_prompts_only` in medr1/data/families.py
    (a TRL that passes batch_num_images on would let LLaVA-OneVision train on several images per prompt)."""
    import inspect

    import trl

    trainer = getattr(trl, trainer_name)
    parameters = inspect.signature(trainer._get_per_token_logps_and_entropies).parameters
    assert "batch_num_images" not in parameters and "image_sizes" in parameters
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    source = inspect.getsource(trainer._generate_and_score_completions)
    assert 'k not in ["input_ids", "attention_mask"]' in source
    assert "batch_num_images" not in inspect.getsource(inspect.getmodule(trainer))


def test_llava_onevision_model_reads_no_counts_as_one_image_each(family_models):
    """What dropping the key relies on: without batch_num_images the model gives the logits it gives with a
    count of 1 per prompt, and the processor's output for one image per prompt is the same either way."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = family_models("llava-onevision")
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which organ?"}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    images = [[Image.new("RGB", (56, 56), "red")], [Image.new("RGB", (40, 56), "blue")]]
    inputs = processor(text=[text, text], images=images, padding=True, return_tensors="pt")
    assert inputs["batch_num_images"].tolist() == [1, 1]
    with torch.no_grad():
        counted = model(**inputs).logits
        dropped = model(**{k: v for k, v in inputs.items() if k != "batch_num_images"}).logits
    assert torch.equal(counted, dropped)


def test_rl_processing_class_filters_llava_onevision_only(family_models, tmp_path):
    """The processor GRPO/RLOO get: for LLaVA-OneVision the same object, its outputs without batch_num_images and
    a prompt with two images refused; it saves and reloads as LlavaOnevisionProcessor. Other families' processors
    are handed over untouched."""
    from PIL import Image
    from transformers import AutoConfig, AutoProcessor

    from medr1.train.grpo import rl_processing_class

    path = family_models("llava-onevision")
    processor = AutoProcessor.from_pretrained(path)
    base = type(processor)
    config = AutoConfig.from_pretrained(path)
    wrapped = rl_processing_class(processor, type("M", (), {"config": config})())
    assert wrapped is processor and isinstance(wrapped, base) and type(wrapped).__name__ == base.__name__
    image = {"type": "image"}
    one = processor.apply_chat_template([{"role": "user", "content": [image, {"type": "text", "text": "Q?"}]}],
                                        add_generation_prompt=True)
    outputs = wrapped(text=[one], images=[[Image.new("RGB", (56, 56))]], return_tensors="pt")
    assert "batch_num_images" not in outputs and {"pixel_values", "image_sizes"} <= set(outputs)
    two = processor.apply_chat_template([{"role": "user", "content": [image, image, {"type": "text", "text": "Q?"}]}],
                                        add_generation_prompt=True)
    with pytest.raises(ValueError, match=r"\[2\] images per prompt"):
        wrapped(text=[two], images=[[Image.new("RGB", (56, 56)), Image.new("RGB", (56, 56))]], return_tensors="pt")
    wrapped.save_pretrained(tmp_path / "saved")
    reloaded = AutoProcessor.from_pretrained(tmp_path / "saved")
    assert type(reloaded) is base and "batch_num_images" in reloaded(
        text=[one], images=[[Image.new("RGB", (56, 56))]], return_tensors="pt")
    qwen = AutoProcessor.from_pretrained(family_models("qwen2-vl"))
    qwen_class = type(qwen)
    qwen_model = type("M", (), {"config": AutoConfig.from_pretrained(family_models("qwen2-vl"))})()
    assert rl_processing_class(qwen, qwen_model) is qwen and type(qwen) is qwen_class


GRPO_ARCHES = ARCHES


@pytest.mark.slow
@pytest.mark.parametrize("arch", GRPO_ARCHES)
def test_grpo_two_steps_with_the_vision_tower_frozen(arch, family_models, synthetic_data, tmp_path):
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args, train

    _, data = synthetic_data
    watch = ParameterWatch(get_family(arch))
    out = train(*parse_args(
        ["--config", str(REPO / "configs/grpo/tiny_cpu.yaml"), "--data_dir", str(data), "--modality", "CT",
         "--model_name_or_path", str(family_models(arch)), "--output_dir", str(tmp_path / "grpo"),
         "--report_to", "none", "--log_completions", "false", "--max_completion_length", "8", "--image_size", "56",
         "--max_steps", "2", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
         "--save_strategy", "no", "--learning_rate", "0.01", "--freeze_vision_tower", "true"],
        GRPOConfig, "test"), callbacks=[watch], reward_funcs=[varied_reward])
    assert watch.vision and watch.frozen and watch.vision_moved == []
    assert watch.decoder_moved  # the language model did train
    assert len(watch.step_seconds) == 2
    logging.getLogger(__name__).warning("GRPO %s: %.2f s/step on CPU (steps: %s)", arch,
                                        sum(watch.step_seconds) / 2, ", ".join(f"{t:.2f}" for t in watch.step_seconds))
    history = json.loads((out / "medr1_run.json").read_text())
    assert history["split"] == "modality/CT/train"
    reloaded = AutoModelForImageTextToText.from_pretrained(out)  # the saved checkpoint is the trained one
    assert reloaded.config.model_type in get_family(arch).model_types


def test_sft_with_the_vision_encoder_frozen_trains_the_projector_and_decoder(family_models, synthetic_data, tmp_path):
    """`freeze_vision_encoder`: two SFT steps leave every encoder tensor as loaded and move the projector's and the
    decoder's (the demo's warm start relies on it)."""
    from trl import SFTConfig

    from medr1.train.grpo import parse_args
    from medr1.train.sft import build_trainer

    _, data = synthetic_data
    family = get_family("qwen2-vl")
    watch = ParameterWatch(family)
    trainer = build_trainer(*parse_args(
        ["--config", str(REPO / "configs/sft/tiny_cpu.yaml"), "--data_dir", str(data), "--modality", "CT",
         "--model_name_or_path", str(family_models("qwen2-vl")), "--output_dir", str(tmp_path / "sft"),
         "--report_to", "none", "--save_strategy", "no", "--max_steps", "2", "--learning_rate", "0.01",
         "--image_size", "56", "--freeze_vision_encoder", "true"], SFTConfig, "test"))
    trainer.add_callback(watch)
    trainer.train()
    projector = {n for n in watch.vision if family.is_projector_parameter(n)}
    assert projector and set(watch.vision_moved) == projector
    assert watch.decoder_moved


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
def test_sft_two_steps_trains_a_lora_adapter_on_the_decoder(arch, family_models, synthetic_data, tmp_path):
    """LoRA without lora_target_modules adapts the family's decoder projections (PEFT has no default for these
    VLMs); two SFT steps move the adapters (lora_B starts at zero)."""
    from safetensors.torch import load_file
    from trl import SFTConfig

    from medr1.train.grpo import parse_args
    from medr1.train.sft import train

    _, data = synthetic_data
    family = get_family(arch)
    out = train(*parse_args(
        ["--config", str(REPO / "configs/sft/tiny_cpu.yaml"), "--data_dir", str(data), "--task", "Lesion Grading",
         "--model_name_or_path", str(family_models(arch)), "--output_dir", str(tmp_path / "sft"),
         "--report_to", "none", "--save_strategy", "no", "--max_steps", "2", "--use_peft", "true",
         "--lora_r", "4", "--lora_alpha", "8", "--learning_rate", "0.01"], SFTConfig, "test"))
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["target_modules"] == family.lora_target_modules
    weights = load_file(out / "adapter_model.safetensors")
    lora_b = [name for name in weights if "lora_B" in name]
    assert len(lora_b) == 7 * 2  # 7 projections x 2 decoder layers, nothing in the vision tower
    assert not any(family.is_vision_parameter(name) for name in weights)
    assert any(weights[name].abs().sum() > 0 for name in lora_b)


# evaluate() hands the processor one image list per record: a flat list is one prompt's images to Gemma 3.
EVAL_ARCHES = ARCHES


@pytest.mark.slow
@pytest.mark.parametrize("arch", EVAL_ARCHES)
def test_greedy_evaluation_does_not_depend_on_batch_size(arch, family_models, synthetic_data, tmp_path):
    """Batch 1 and batch 4 (left padding) write the same predictions, with weights scaled up so that the
    random model's outputs differ from question to question."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from medr1.evaluation.evaluate import evaluate

    _, data = synthetic_data
    diverse = tmp_path / "model"
    model = AutoModelForImageTextToText.from_pretrained(family_models(arch))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    model.save_pretrained(diverse)
    AutoProcessor.from_pretrained(family_models(arch)).save_pretrained(diverse)
    kwargs = dict(limit=8, image_size=56, max_new_tokens=8, num_workers=0)
    evaluate(diverse, data, "modality/MRI/test", tmp_path / "b1", batch_size=1, **kwargs)
    evaluate(diverse, data, "modality/MRI/test", tmp_path / "b4", batch_size=4, **kwargs)
    one = (tmp_path / "b1" / "predictions.jsonl").read_text().splitlines()
    four = (tmp_path / "b4" / "predictions.jsonl").read_text().splitlines()
    assert len(one) == 8 and one == four
    assert len({json.loads(line)["output"] for line in one}) > 1


# ---- recipes ------------------------------------------------------------------------------------

# recipe -> (family, the keys it changes from the Qwen2-VL recipe beside the model and output_dir, visual tokens).
RECIPES = {
    "qwen25vl_3b.yaml": ("qwen2.5-vl", set(), 196),
    "qwen3vl_2b.yaml": ("qwen3-vl", {"attn_implementation", "image_size"}, 196),
    "qwen3vl_4b.yaml": ("qwen3-vl", {"attn_implementation", "image_size"}, 196),
    "medgemma_4b.yaml": ("gemma3", {"attn_implementation", "image_size"}, 256),
    "lingshu_7b.yaml": ("qwen2.5-vl", {"attn_implementation"}, 196),
}
# The released vision settings of each family's checkpoints, for the table's token rule.
RELEASED_VISION = {
    "qwen2.5-vl": {"vision_config": {"patch_size": 14, "spatial_merge_size": 2}},
    "qwen3-vl": {"vision_config": {"patch_size": 16, "spatial_merge_size": 2}},
    "gemma3": {"mm_tokens_per_image": 256},
}


def released_config(arch):
    from types import SimpleNamespace

    settings = RELEASED_VISION[arch]
    return SimpleNamespace(**{k: SimpleNamespace(**v) if isinstance(v, dict) else v for k, v in settings.items()})


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_family_recipes_depart_from_the_qwen2vl_recipe_only_where_they_say(recipe):
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args

    def parse(name):
        return parse_args(["--config", str(REPO / "configs/grpo" / name), "--modality", "CT", "--bf16", "false",
                           "--use_cpu", "true"], GRPOConfig, "test")

    arch, changed, visual_tokens = RECIPES[recipe]
    paper, ours = parse("medr1_qwen2vl_2b.yaml"), parse(recipe)
    family = get_family(arch)
    assert ours[2].model_name_or_path in family.checkpoints
    assert (REPO / "configs/grpo" / recipe).read_text().startswith("# The ")
    differ = set()
    for theirs, mine in zip(paper, ours, strict=True):
        theirs_dict = theirs.to_dict() if hasattr(theirs, "to_dict") else vars(theirs)
        mine_dict = mine.to_dict() if hasattr(mine, "to_dict") else vars(mine)
        differ |= {k for k, v in theirs_dict.items() if mine_dict[k] != v}
    assert differ == changed | {"model_name_or_path", "output_dir"}, differ
    assert ours[2].dtype == "float32" and ours[1].gradient_checkpointing  # fp32 master weights, as the paper's
    assert family.image_tokens(released_config(arch), ours[0].image_size) == visual_tokens
