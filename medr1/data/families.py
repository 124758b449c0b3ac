"""What differs between the vision-language model families medr1 trains, in one table.

Everything else (prompts, rewards, TRL's trainers, evaluation) is family-blind: a stage that needs a
family fact looks it up here by the model config's `model_type`. No heavy imports: a row is plain data
plus small pure rules, so the tests pin them without a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# The decoder projections LoRA adapts: attention and MLP of every language-model layer, never the
# vision tower (whose linear layers share these names in SigLIP-style encoders).
_LORA_PROJECTIONS = r"(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))"


def _merged_patch_tokens(config, side: int) -> int:
    """Qwen-VL dynamic resolution: one token per (patch x merge)² square, the side rounded to it."""
    vision = config.vision_config
    unit = vision.patch_size * vision.spatial_merge_size
    return max(1, round(side / unit)) ** 2


def _fixed_tokens(attribute: str) -> Callable[[Any, int], int]:
    def tokens(config, side: int) -> int:
        return int(getattr(config, attribute))

    return tokens


def _pixel_shuffle_tokens(config, side: int) -> int:
    """Idefics3 (one tile, no splitting): encoder patches over scale_factor²."""
    vision = config.vision_config
    return (vision.image_size // vision.patch_size) ** 2 // config.scale_factor ** 2


def _internvl_tokens(config, side: int) -> int:
    """InternVL (one tile): encoder patches times downsample_ratio²."""
    vision = config.vision_config
    size = vision.image_size[0] if isinstance(vision.image_size, (list, tuple)) else vision.image_size
    patch = vision.patch_size[0] if isinstance(vision.patch_size, (list, tuple)) else vision.patch_size
    return int((size // patch) ** 2 * config.downsample_ratio ** 2)


def _anyres_one_crop_tokens(config, side: int) -> int:
    """LLaVA-OneVision, a square image that fits one crop: the base view (n² tokens) plus the same crop
    again with a newline token closing each of its n rows."""
    vision = config.vision_config
    n = vision.image_size // vision.patch_size
    return 2 * n * n + n


def _single_image_prompts_only(outputs) -> None:
    """LLaVA-OneVision's processor also returns `batch_num_images` (images per prompt). TRL 1.16's GRPO and RLOO
    hand every processor output but input_ids and attention_mask to their log-prob pass, whose fixed signature
    has no such argument (TypeError at the first step). Without it the model reads each image as its prompt's
    only one (base view plus anyres crops), which is how the processor treated it when every prompt has one
    image: the key is dropped then. A prompt with several images was processed without crops, so the model
    would misread it: refused, naming the counts."""
    counts = outputs.pop("batch_num_images", None)
    if counts is not None and any(int(n) != 1 for n in counts):
        raise ValueError(f"LLaVA-OneVision prompts with several images ({[int(n) for n in counts]} images per "
                         "prompt) cannot train with TRL 1.16's GRPO/RLOO, which drops the processor's "
                         "batch_num_images; use one image per question for this family (SFT and evaluation take "
                         "several)")


@dataclass(frozen=True)
class Family:
    """One VLM family: how its checkpoints are laid out and how they see an image."""

    arch: str                               # `medr1 tiny-model --arch` name
    model_types: tuple[str, ...]            # `config.model_type` of its checkpoints
    checkpoints: tuple[str, ...]            # released checkpoints of this architecture (examples)
    vision_modules: tuple[str, ...]         # module names holding the vision encoder and its projector
    projector_modules: tuple[str, ...]      # those of the projector alone (vision features -> decoder inputs)
    language_model: str                     # module path of the decoder inside the *ForConditionalGeneration
    image_tokens_rule: Callable[[Any, int], int]  # (model config, square image side) -> tokens per image
    image_handling: str                     # how the processor sizes an image (the pixel limits to know)
    padding_side: str = "left"              # generation needs every prompt to end where decoding starts
    # Processor settings medr1 relies on: baked into the tiny checkpoints, and applied by
    # `medr1.data.model_kinds.load_processing_class` to any checkpoint of the family, over its own processor config.
    processor_defaults: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # GRPO/RLOO only: edits the processor's output in place before TRL sees it (keys its log-prob pass does not
    # take); applied by `medr1.train.grpo.rl_processing_class`.
    rl_processor_rule: Callable[[Any], None] | None = None

    @property
    def lora_target_modules(self) -> str:
        """A PEFT regex (matched against full module names) for the decoder's projections only."""
        return rf"{re.escape(self.language_model)}\.layers\.\d+\.{_LORA_PROJECTIONS}"

    def is_vision_parameter(self, name: str) -> bool:
        """True for a parameter (named as in `model.named_parameters()`) of the vision tower or projector."""
        return _under(name, self.vision_modules)

    def is_projector_parameter(self, name: str) -> bool:
        """True for a parameter of the projector that maps the vision encoder's features into the decoder."""
        return self.is_vision_parameter(name) and _under(name, self.projector_modules)

    def image_tokens(self, config, side: int) -> int:
        return self.image_tokens_rule(config, side)


_QWEN_PIXELS = ("dynamic: the image keeps its size, rounded to {unit} px per token, within the processor's "
                "min_pixels..max_pixels")


def _under(name: str, modules: tuple[str, ...]) -> bool:
    """True when a dotted parameter name passes through one of these module names."""
    parts = name.split(".")
    return any(module in parts for module in modules)


_LM = "model.language_model"
_TOWER = ("vision_tower", "multi_modal_projector")
_QWEN_PROJECTOR = ("merger",)

FAMILIES: dict[str, Family] = {f.arch: f for f in (
    Family(arch="qwen2-vl", model_types=("qwen2_vl",), checkpoints=("Qwen/Qwen2-VL-2B-Instruct",),
           vision_modules=("visual",), projector_modules=_QWEN_PROJECTOR, language_model=_LM,
           image_tokens_rule=_merged_patch_tokens,
           image_handling=_QWEN_PIXELS.format(unit=28)),
    Family(arch="qwen2.5-vl", model_types=("qwen2_5_vl",),
           checkpoints=("Qwen/Qwen2.5-VL-3B-Instruct", "lingshu-medical-mllm/Lingshu-7B"),
           vision_modules=("visual",), projector_modules=_QWEN_PROJECTOR, language_model=_LM,
           image_tokens_rule=_merged_patch_tokens,
           image_handling=_QWEN_PIXELS.format(unit=28)),
    Family(arch="qwen3-vl", model_types=("qwen3_vl",),
           checkpoints=("Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-4B-Instruct"),
           vision_modules=("visual",), projector_modules=(*_QWEN_PROJECTOR, "deepstack_merger_list"),
           language_model=_LM, image_tokens_rule=_merged_patch_tokens,
           image_handling=_QWEN_PIXELS.format(unit=32)),
    Family(arch="gemma3", model_types=("gemma3",), checkpoints=("google/medgemma-4b-it", "google/gemma-3-4b-it"),
           vision_modules=_TOWER, projector_modules=_TOWER[1:], language_model=_LM,
           image_tokens_rule=_fixed_tokens("mm_tokens_per_image"),
           image_handling="fixed: resized to the encoder's square (896 px) and pooled to mm_tokens_per_image (256); "
                          "pan-and-scan off"),
    Family(arch="idefics3", model_types=("idefics3",), checkpoints=("HuggingFaceTB/SmolVLM-256M-Instruct",),
           vision_modules=("vision_model", "connector"), projector_modules=("connector",),
           language_model="model.text_model",
           image_tokens_rule=_pixel_shuffle_tokens,
           image_handling="one tile of the encoder's size; with splitting on, a small image is upscaled to 4x4 "
                          "tiles plus a global view (17x the tokens)",
           processor_defaults=MappingProxyType({"do_image_splitting": False})),
    Family(arch="llava-onevision", model_types=("llava_onevision",),
           checkpoints=("llava-hf/llava-onevision-qwen2-0.5b-ov-hf",),
           vision_modules=(*_TOWER, "image_newline"), projector_modules=(*_TOWER[1:], "image_newline"),
           language_model=_LM, image_tokens_rule=_anyres_one_crop_tokens,
           image_handling="anyres: a base view plus crops on image_grid_pinpoints (one crop for an image up to the "
                          "encoder's 384 px)", rl_processor_rule=_single_image_prompts_only),
    Family(arch="internvl", model_types=("internvl",), checkpoints=("OpenGVLab/InternVL3-1B-hf",),
           vision_modules=_TOWER, projector_modules=_TOWER[1:], language_model=_LM,
           image_tokens_rule=_internvl_tokens,
           image_handling="tiles of the encoder's square (448 px); a square image up to one tile is one tile"),
)}

ARCHES = tuple(FAMILIES)
BY_MODEL_TYPE: dict[str, Family] = {t: f for f in FAMILIES.values() for t in f.model_types}


def get_family(arch: str) -> Family:
    try:
        return FAMILIES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHES)}") from None


def family_for_model_type(model_type: str) -> Family:
    """The family of a model config's `model_type` (e.g. `qwen2_5_vl`); ValueError names the known ones."""
    if model_type in BY_MODEL_TYPE:
        return BY_MODEL_TYPE[model_type]
    known = ", ".join(BY_MODEL_TYPE)
    raise ValueError(f"no VLM family for model_type {model_type!r}; medr1 knows {known} (medr1/data/families.py)")


def processor_settings(model_type: str) -> dict[str, Any]:
    """The processor settings medr1 relies on for a checkpoint of `model_type`, to pass to `from_pretrained`
    (released SmolVLM checkpoints split images into 4x4 tiles plus a global view; medr1 sees one tile); {} for
    a family without any and for a model type outside the table."""
    family = BY_MODEL_TYPE.get(model_type)
    return dict(family.processor_defaults) if family is not None else {}


def family_of(model) -> Family:
    """The family of a loaded model (or a PEFT wrapper around one), from its config."""
    return family_for_model_type(model.config.model_type)
