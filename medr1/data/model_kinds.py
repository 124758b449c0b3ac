"""Which transformers auto class loads a checkpoint: a text-only causal LM (Qwen2.5, Qwen3, Llama 3.1, ...) or an
image-text-to-text VLM (the families of `medr1/data/families.py`).

The kind is read from the checkpoint's config alone (:func:`model_kind`, pure), so `medr1 train`, `medr1 sft` and
`medr1 eval` load either the same way. A text model's processing class is its tokenizer; code that needs the
tokenizer of either kind takes :func:`tokenizer_of`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CAUSAL_LM", "IMAGE_TEXT_TO_TEXT", "KINDS", "checkpoint_kind", "load_model", "load_processing_class",
           "media_token_ids", "model_kind", "tokenizer_of"]

CAUSAL_LM = "causal-lm"
IMAGE_TEXT_TO_TEXT = "image-text-to-text"
KINDS = (CAUSAL_LM, IMAGE_TEXT_TO_TEXT)
_AUTO_MODEL = {CAUSAL_LM: "AutoModelForCausalLM", IMAGE_TEXT_TO_TEXT: "AutoModelForImageTextToText"}
# Config attributes naming a media placeholder token: Qwen-VL and Idefics3 say *_token_id, LLaVA-OneVision and
# Gemma 3 *_token_index.
_MEDIA_TOKEN_ATTRIBUTES = ("image_token_id", "image_token_index", "video_token_id", "video_token_index")


def model_kind(config) -> str:
    """``image-text-to-text`` for a config with a vision part (a ``vision_config``, as every VLM in transformers
    has), else ``causal-lm``. ``config``: a transformers config or its dict (``config.json``)."""
    data = config if isinstance(config, Mapping) else config.to_dict()
    return IMAGE_TEXT_TO_TEXT if data.get("vision_config") is not None else CAUSAL_LM


def checkpoint_kind(path, revision: str | None = None) -> str:
    """:func:`model_kind` of the checkpoint at ``path`` (a folder or a hub id)."""
    from transformers import AutoConfig

    return model_kind(AutoConfig.from_pretrained(path, revision=revision))


def load_model(path, kind: str | None = None, **kwargs):
    """The checkpoint's model through the auto class of its kind; ``kwargs`` go to ``from_pretrained``."""
    import transformers

    kind = kind or checkpoint_kind(path, kwargs.get("revision"))
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    return getattr(transformers, _AUTO_MODEL[kind]).from_pretrained(path, **kwargs)


def load_processing_class(path, kind: str | None = None, revision: str | None = None):
    """The tokenizer of a text model, the processor of a VLM. A VLM's processor is loaded with the settings its
    family relies on (`processor_settings`, e.g. Idefics3's `do_image_splitting=False`) over what the checkpoint's
    processor config says or leaves to the class default: training, evaluation and the budget check all load
    their processor here, so they see an image the same way."""
    from transformers import AutoProcessor, AutoTokenizer

    from medr1.data.families import processor_settings

    config = _config_or_none(path, revision)
    # No model config (an adapter folder) and no kind: checkpoint_kind raises the loader's own error.
    kind = kind or (model_kind(config) if config is not None else checkpoint_kind(path, revision))
    if kind == CAUSAL_LM:
        return AutoTokenizer.from_pretrained(path, revision=revision)
    settings = processor_settings(config.model_type) if config is not None else {}
    return AutoProcessor.from_pretrained(path, revision=revision, **settings)


def _config_or_none(path, revision: str | None = None):
    """The checkpoint's config, or None for a folder without a model config (a LoRA adapter's, whose saved
    processor already carries the settings it was trained with)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, revision=revision)
    except (OSError, ValueError):
        return None


def media_token_ids(config) -> list[int]:
    """The placeholder tokens (image, video) a VLM must never generate, from its config; [] for a text model.

    A generated placeholder stands for image features that are not there. TRL's GRPO rollouts suppress the image
    token, so a trained policy is never taught against it and its logit can drift to the top; evaluation
    suppresses the same tokens so that greedy scores read the policy that was trained.
    """
    configs = [config, getattr(config, "text_config", None)]
    found = {value for c in configs if c is not None for name in _MEDIA_TOKEN_ATTRIBUTES
             if isinstance(value := getattr(c, name, None), int) and value >= 0}
    return sorted(found)


def tokenizer_of(processing_class):
    """The tokenizer inside a processor, or the processing class itself when it is a tokenizer (text models)."""
    return getattr(processing_class, "tokenizer", processing_class)
