"""The tiny checkpoint of each VLM family: its tokenizer layout, chat template, config and processor.

Every family is one `TinyFamily` row; `medr1.embedded.tiny_model.build_tiny_model(arch=...)` builds any of
them the same way. Sizes are the smallest the family's patching allows: a 64-wide, 2-layer decoder, a
32-wide 2-layer vision encoder, and a handful of image tokens. Families with a fixed encoder resolution
see 56 px (the processor resizes to it); the Qwen families keep the `image_size` they are given.
The chat templates are written out to render prompts as each family's released template does for the
conversations medr1 builds (one user turn of image + text, an assistant answer); tool calls and videos
beyond a placeholder are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from medr1.data.families import FAMILIES, Family
from medr1.embedded.tiny_model import (
    QWEN2_VL_CHAT_TEMPLATE,
    QWEN2_VL_VOCABULARY,
    SPECIAL_TOKENS,
    Vocabulary,
    build_processor,
    tiny_config,
)

FIXED_SIDE = 56  # the tiny encoder's input for fixed-resolution families: 4x4 patches of 14 px
VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}

# Qwen2.5's added tokens after Qwen2-VL's: tool calls and fill-in-the-middle, all plain text.
QWEN25_LATER = ("<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                "<|repo_name|>", "<|file_sep|>")
# Qwen3's after those; <think> and </think> are single tokens that decode as text.
QWEN3_LATER = QWEN25_LATER + ("<tool_response>", "</tool_response>", "<think>", "</think>")

# Qwen3-VL-Instruct: as Qwen2-VL but no default system turn.
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Gemma 3 instruct: <bos>, turns named user/model, a system text folded into the first user turn, stripped text.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% set lead = namespace(text='', start=0) %}"
    "{% if messages[0]['role'] == 'system' %}{% set lead.start = 1 %}"
    "{% set lead.text = (messages[0]['content'] if messages[0]['content'] is string "
    "else messages[0]['content'][0]['text']) + '\n\n' %}{% endif %}"
    "{% for message in messages[lead.start:] %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if loop.first %}{{ lead.text }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<start_of_image>"
    "{% elif content['type'] == 'text' %}{{ content['text'] | trim }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# SmolVLM (Idefics3): "User:<image>text<end_of_utterance>\nAssistant:", a space after the colon before text.
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}: {{ message['content'] }}"
    "{% else %}{{ ':' if message['content'][0]['type'] == 'image' else ': ' }}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<image>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


def _im_template(image: str, video: str) -> str:
    """ChatML turns with each image (video) part rendered as `image` (`video`): LLaVA-OneVision, InternVL."""
    return (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for content in message['content'] %}"
        f"{{% if content['type'] == 'image' %}}{image}{{% elif content['type'] == 'video' %}}{video}"
        "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


LLAVA_ONEVISION_CHAT_TEMPLATE = _im_template("<image>\n", "<video>\n")
INTERNVL_CHAT_TEMPLATE = _im_template("<IMG_CONTEXT>\n", "<video>\n")

VOCABULARIES = {
    "qwen2-vl": QWEN2_VL_VOCABULARY,
    "qwen2.5-vl": Vocabulary(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                             chat_template=QWEN2_VL_CHAT_TEMPLATE, later_tokens=QWEN25_LATER,
                             plain=frozenset(QWEN25_LATER)),
    "qwen3-vl": Vocabulary(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                           chat_template=QWEN3_VL_CHAT_TEMPLATE, later_tokens=QWEN3_LATER,
                           plain=frozenset(QWEN3_LATER)),
    # Gemma's real ids start <pad> 0, <eos> 1, <bos> 2, <unk> 3; its 262k SentencePiece vocabulary is on no
    # PyPI package, so only the compact BPE is offered.
    "gemma3": Vocabulary(("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                          "<end_of_image>", "<image_soft_token>"),
                         eos="<end_of_turn>", pad="<pad>", bos="<bos>", chat_template=GEMMA3_CHAT_TEMPLATE,
                         named_tokens=(("boi_token", "<start_of_image>"), ("eoi_token", "<end_of_image>"),
                                       ("image_token", "<image_soft_token>")),
                         real_ranks=False, end_tokens=("<end_of_turn>", "<eos>")),
    # SmolLM2's first ids, then SmolVLM's image tokens (the processor looks up all of them).
    "idefics3": Vocabulary(("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>",
                            "<end_of_utterance>", "<global-img>",
                            *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7))),
                           eos="<end_of_utterance>", pad="<|im_end|>", bos="<|im_start|>",
                           chat_template=IDEFICS3_CHAT_TEMPLATE, named_tokens=(("image_token", "<image>"),),
                           real_ranks=False, end_tokens=("<end_of_utterance>", "<|endoftext|>")),
    # llava-onevision-qwen2: Qwen2's three added tokens, then <image> 151646 and <video> 151647.
    "llava-onevision": Vocabulary(("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"),
                                  eos="<|im_end|>", pad="<|endoftext|>", chat_template=LLAVA_ONEVISION_CHAT_TEMPLATE,
                                  named_tokens=(("image_token", "<image>"), ("video_token", "<video>"))),
    # InternVL3-hf: Qwen2.5's tokens, then <img> 151665, </img>, <IMG_CONTEXT> 151667 and the grounding tags.
    "internvl": Vocabulary(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", chat_template=INTERNVL_CHAT_TEMPLATE,
                           later_tokens=QWEN25_LATER + ("<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>",
                                                        "<ref>", "</ref>", "<box>", "</box>", "<video>"),
                           plain=frozenset(QWEN25_LATER),
                           named_tokens=(("start_image_token", "<img>"), ("end_image_token", "</img>"),
                                         ("context_image_token", "<IMG_CONTEXT>"), ("video_token", "<video>"))),
}


def _text(tokenizer, hidden_size: int, layers: int, heads: int = 4, **extra) -> dict:
    """A decoder config on this tokenizer: GQA with half the heads, tied embeddings (most of a tiny model
    is its embedding table)."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        "vocab_size": len(tokenizer), "hidden_size": hidden_size, "intermediate_size": hidden_size * 2,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": max(1, heads // 2),
        "max_position_embeddings": 4096, "tie_word_embeddings": True,
        "pad_token_id": tokenizer.pad_token_id, "eos_token_id": ids(tokenizer.eos_token),
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token else tokenizer.pad_token_id, **extra,
    }


def _mrope(head_dim: int) -> list[int]:
    """M-RoPE's split of head_dim/2 rotary frequencies over (time, height, width)."""
    half = head_dim // 2
    return [half - 2 * (half // 3), half // 3, half // 3]


def _qwen_vision_ids(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return {"image_token_id": ids("<|image_pad|>"), "video_token_id": ids("<|video_pad|>"),
            "vision_start_token_id": ids("<|vision_start|>"), "vision_end_token_id": ids("<|vision_end|>")}


def qwen25vl_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    from transformers import Qwen2_5_VLConfig

    rope = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": _mrope(hidden_size // 4)}
    # Window attention over 56 px windows (2x2 merged tokens); the last block attends globally, as 7, 15, ... do.
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": hidden_size,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
              "fullatt_block_indexes": [1]}
    return Qwen2_5_VLConfig(text_config=_text(tokenizer, hidden_size, layers, rope_parameters=rope),
                            vision_config=vision, tie_word_embeddings=True, **_qwen_vision_ids(tokenizer))


def qwen3vl_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    from transformers import Qwen3VLConfig

    head_dim = hidden_size // 4
    rope = {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": _mrope(head_dim),
            "mrope_interleaved": True}
    # 16 px patches merged 2x2: one token per 32 px; DeepStack feeds block 0's features into the first layer.
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": hidden_size,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64,
              "deepstack_visual_indexes": [0]}
    return Qwen3VLConfig(text_config=_text(tokenizer, hidden_size, layers, head_dim=head_dim, rope_parameters=rope),
                         vision_config=vision, tie_word_embeddings=True, **_qwen_vision_ids(tokenizer))


def gemma3_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    from transformers import Gemma3Config

    ids = tokenizer.convert_tokens_to_ids
    head_dim = hidden_size // 4
    # Gemma 3 alternates local (sliding-window) and global layers; the tiny one has one of each.
    # Untied, unlike the real model: with Gemma's sqrt(hidden) embedding scale a 2-layer tied decoder only
    # echoes its last input token, whatever the image and question.
    text = _text(tokenizer, hidden_size, layers, head_dim=head_dim, query_pre_attn_scalar=head_dim,
                 sliding_window=64, layer_types=["sliding_attention" if i % 2 == 0 else "full_attention"
                                                 for i in range(layers)], tie_word_embeddings=False)
    vision = {"model_type": "siglip_vision_model", **VISION, "image_size": FIXED_SIDE, "patch_size": 14}
    # 4x4 SigLIP patches average-pooled to 2x2: 4 soft tokens per image (the real model: 64x64 -> 16x16 = 256).
    return Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                        boi_token_index=ids("<start_of_image>"), eoi_token_index=ids("<end_of_image>"),
                        image_token_index=ids("<image_soft_token>"), tie_word_embeddings=False)


def idefics3_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    from transformers import Idefics3Config

    vision = {**VISION, "image_size": FIXED_SIDE, "patch_size": 14}
    # Pixel shuffle by 2: 4x4 patches -> 4 tokens per image.
    return Idefics3Config(text_config={"model_type": "llama", **_text(tokenizer, hidden_size, layers)},
                          vision_config=vision, scale_factor=2,
                          image_token_id=tokenizer.convert_tokens_to_ids("<image>"), tie_word_embeddings=True)


def llava_onevision_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    from transformers import LlavaOnevisionConfig

    ids = tokenizer.convert_tokens_to_ids
    vision = {"model_type": "siglip_vision_model", **VISION, "image_size": FIXED_SIDE, "patch_size": 14}
    # One anyres grid point, the encoder's own size: an image is its base view plus one crop.
    return LlavaOnevisionConfig(text_config={"model_type": "qwen2", **_text(tokenizer, hidden_size, layers)},
                                vision_config=vision, image_token_index=ids("<image>"),
                                video_token_index=ids("<video>"), image_grid_pinpoints=[[FIXED_SIDE, FIXED_SIDE]],
                                vision_feature_layer=-1, vision_feature_select_strategy="full",
                                tie_word_embeddings=True)


def internvl_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    from transformers import InternVLConfig

    vision = {**VISION, "image_size": [FIXED_SIDE, FIXED_SIDE], "patch_size": [14, 14]}
    # Pixel unshuffle by 0.5: 4x4 patches -> 4 tokens per tile.
    return InternVLConfig(text_config={"model_type": "qwen2", **_text(tokenizer, hidden_size, layers)},
                          vision_config=vision, image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
                          image_seq_length=4, downsample_ratio=0.5, tie_word_embeddings=True)


def _pixel_budget(image_size: int, unit: int) -> dict:
    """min/max_pixels that admit an `image_size`² image unresized (at least 2x2 tokens of `unit` px)."""
    pixels, floor = image_size * image_size, (2 * unit) ** 2
    return {"min_pixels": min(pixels, floor), "max_pixels": max(-(-image_size // unit) * unit, 2 * unit) ** 2}


def qwen25vl_processor(tokenizer, image_size: int = 384):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    return Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**_pixel_budget(image_size, 28)),
                               tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
                               chat_template=tokenizer.chat_template)


def qwen3vl_processor(tokenizer, image_size: int = 384):
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    half = [0.5, 0.5, 0.5]
    images = Qwen2VLImageProcessor(patch_size=16, merge_size=2, image_mean=half, image_std=half,
                                   **_pixel_budget(image_size, 32))
    return Qwen3VLProcessor(image_processor=images, tokenizer=tokenizer,
                            video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2),
                            chat_template=tokenizer.chat_template)


def gemma3_processor(tokenizer, image_size: int = 384):
    from transformers import Gemma3ImageProcessor, Gemma3Processor

    half = [0.5, 0.5, 0.5]
    images = Gemma3ImageProcessor(size={"height": FIXED_SIDE, "width": FIXED_SIDE}, image_mean=half, image_std=half)
    return Gemma3Processor(image_processor=images, tokenizer=tokenizer, image_seq_length=4,
                           chat_template=tokenizer.chat_template)


def idefics3_processor(tokenizer, image_size: int = 384):
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    images = Idefics3ImageProcessor(size={"longest_edge": FIXED_SIDE}, max_image_size={"longest_edge": FIXED_SIDE},
                                    **FAMILIES["idefics3"].processor_defaults)
    return Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4,
                             chat_template=tokenizer.chat_template)


def llava_onevision_processor(tokenizer, image_size: int = 384):
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

    side = {"height": FIXED_SIDE, "width": FIXED_SIDE}
    images = LlavaOnevisionImageProcessor(size=side, image_grid_pinpoints=[[FIXED_SIDE, FIXED_SIDE]])
    return LlavaOnevisionProcessor(image_processor=images, tokenizer=tokenizer,
                                   video_processor=LlavaOnevisionVideoProcessor(size=side),
                                   num_image_tokens=(FIXED_SIDE // 14) ** 2, vision_feature_select_strategy="full",
                                   chat_template=tokenizer.chat_template)


def internvl_processor(tokenizer, image_size: int = 384):
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    side = {"height": FIXED_SIDE, "width": FIXED_SIDE}
    return InternVLProcessor(image_processor=GotOcr2ImageProcessor(size=side, crop_to_patches=False),
                             tokenizer=tokenizer, video_processor=InternVLVideoProcessor(size=side),
                             image_seq_length=4, chat_template=tokenizer.chat_template)


@dataclass(frozen=True)
class TinyFamily:
    family: Family
    label: str  # for logs
    vocabulary: Vocabulary
    config: Callable  # (tokenizer, hidden_size=, layers=) -> the model config
    processor: Callable  # (tokenizer, image_size) -> the processor


def _qwen2vl_config(tokenizer, hidden_size: int = 64, layers: int = 2):
    return tiny_config(tokenizer, hidden_size=hidden_size, layers=layers)


_BUILDERS = {
    "qwen2-vl": ("Qwen2-VL", _qwen2vl_config, build_processor),
    "qwen2.5-vl": ("Qwen2.5-VL", qwen25vl_config, qwen25vl_processor),
    "qwen3-vl": ("Qwen3-VL", qwen3vl_config, qwen3vl_processor),
    "gemma3": ("Gemma 3", gemma3_config, gemma3_processor),
    "idefics3": ("Idefics3", idefics3_config, idefics3_processor),
    "llava-onevision": ("LLaVA-OneVision", llava_onevision_config, llava_onevision_processor),
    "internvl": ("InternVL", internvl_config, internvl_processor),
}

# The tokenizer pads on the side the family table says.
TINY_FAMILIES = {
    arch: TinyFamily(FAMILIES[arch], label, replace(VOCABULARIES[arch], padding_side=FAMILIES[arch].padding_side),
                     config, processor)
    for arch, (label, config, processor) in _BUILDERS.items()
}


def tiny_family(arch: str) -> TinyFamily:
    if arch not in TINY_FAMILIES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(TINY_FAMILIES)}")
    return TINY_FAMILIES[arch]
