"""Prompt-token budget: before training or evaluation, check that no record's prompt would be cut.

A prompt costs the tokens of its chat-templated text plus, per image, the tokens its image placeholder
expands into. Those come from the processor's own rule (`_get_num_multimodal_tokens`, else the image
processor's `get_number_of_image_patches`): for Qwen2-VL the image after smart-resize within the
processor's min_pixels..max_pixels, in 14-px patches merged 2x2. The rule is fed the size the model sees
(the configured `image_size` square, or the size in the file's header), so no image is decoded.

The limits a prompt must fit (the tightest wins): the model's context (`max_position_embeddings`) less what
generation needs (GRPO's max_completion_length, evaluation's max new tokens); SFT's `max_length`, which cuts
prompt and completion together; GRPO's and RLOO's `max_prompt_length`, a medr1 recipe setting
(`MedR1Arguments`, `--max_prompt_length`; unset: the context alone). TRL 1.16's GRPOConfig has no such field
and GRPO never cuts a prompt, so without this check a prompt past the context fails, or degrades silently, in
the middle of a run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """The most tokens a prompt may have, why (`source`), and how to move it (`advice`)."""

    tokens: int
    source: str
    advice: str


@dataclass(frozen=True)
class PromptCost:
    question_id: str
    text_tokens: int  # the templated text, image placeholders excluded
    image_tokens: int  # what the placeholders expand into
    images: int

    @property
    def tokens(self) -> int:
        return self.text_tokens + self.image_tokens


def context_length(model_config) -> int | None:
    """`max_position_embeddings` of the language model (a VLM keeps it in its text config), or None."""
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    value = getattr(text, "max_position_embeddings", None) or getattr(model_config, "max_position_embeddings", None)
    return int(value) if value else None


def context_limit(model_config, reserve: int = 0, reserve_setting: str = "") -> Limit | None:
    """The model's context less `reserve` tokens for the completion; None when the config names no context."""
    context = context_length(model_config)
    if context is None:
        return None
    source = f"the model's max_position_embeddings {context}"
    if reserve:
        source += f" less {reserve_setting.lstrip('-')} {reserve}"
    advice = f"lower {reserve_setting}" if reserve else "use a model with a longer context"
    return Limit(context - (reserve or 0), source, advice)


def setting_limit(tokens: int | None, setting: str) -> Limit | None:
    """A limit set directly (`max_prompt_length`, `max_length`); None when unset."""
    return None if tokens is None else Limit(int(tokens), f"{setting.lstrip('-')} {tokens}", f"raise {setting}")


def image_token_counter(processor) -> Callable[[int, int], int]:
    """(width, height) of an image as the processor receives it -> the tokens it becomes (memoised)."""
    cache: dict[tuple[int, int], int] = {}
    image_processor = getattr(processor, "image_processor", None)

    def count(width: int, height: int) -> int:
        key = (width, height)
        if key not in cache:
            if hasattr(processor, "_get_num_multimodal_tokens"):
                cache[key] = int(processor._get_num_multimodal_tokens(image_sizes=[[height, width]])
                                 .num_image_tokens[0])
            elif hasattr(image_processor, "get_number_of_image_patches"):
                merge = getattr(image_processor, "merge_size", 1)
                cache[key] = int(image_processor.get_number_of_image_patches(height, width, {})) // merge**2
            else:
                raise ValueError(f"{type(processor).__name__} has no rule for the tokens of an image; "
                                 "the prompt budget cannot be checked")
        return cache[key]

    return count


def _image_token_id(processor, tokenizer) -> int:
    token = getattr(processor, "image_token", None)
    token_id = getattr(processor, "image_token_id", None)
    if token_id is None and token is not None:
        token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None:
        raise ValueError(f"{type(processor).__name__} names no image token; the prompt budget cannot be checked")
    return int(token_id)


def _optional_image_token_id(processor, tokenizer) -> int | None:
    """The image token of a VLM processor, None for a text model's tokenizer (text records need none)."""
    try:
        return _image_token_id(processor, tokenizer)
    except ValueError:
        return None


def prompt_costs(processor, question_ids: Sequence[str], texts: Sequence[str],
                 image_sizes: Sequence[Sequence[tuple[int, int]]]) -> list[PromptCost]:
    """The tokens of each templated prompt text with its images ((width, height) each, in prompt order). Prompts
    without images (text records) cost their text tokens alone, for a VLM's processor or a text model's tokenizer
    (which has no image token and no image rule)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    with_images = any(len(sizes) for sizes in image_sizes)
    image_token = (_image_token_id if with_images else _optional_image_token_id)(processor, tokenizer)
    count = image_token_counter(processor)
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    costs = []
    for question_id, row, sizes in zip(question_ids, ids, image_sizes, strict=True):
        placeholders = 0 if image_token is None else row.count(image_token)
        if placeholders != len(sizes):
            raise ValueError(f"record {question_id!r}: its templated prompt holds {placeholders} image placeholders "
                             f"for {len(sizes)} images")
        image_tokens = sum(count(width, height) for width, height in sizes)
        costs.append(PromptCost(str(question_id), len(row) - placeholders, image_tokens, len(sizes)))
    return costs


def over_limit_message(worst: PromptCost, n_over: int, n_records: int, limit: Limit, image_setting: str) -> str:
    """The error for prompts over the limit: the worst record, its tokens, the limit and what to change."""
    others = f"; {n_over - 1} more of the {n_records} records are over too" if n_over > 1 else ""
    if not worst.images:  # a text record: only its text to shorten
        return (f"record {worst.question_id!r} needs {worst.tokens} prompt tokens (text only, no image) but the limit "
                f"is {limit.tokens} ({limit.source}){others}. To fit: {limit.advice}, or shorten the question.")
    return (f"record {worst.question_id!r} needs {worst.tokens} prompt tokens ({worst.text_tokens} text + "
            f"{worst.image_tokens} for {worst.images} image{'s' if worst.images != 1 else ''}) but the limit is "
            f"{limit.tokens} ({limit.source}){others}. To fit: {limit.advice}, or give images fewer tokens: a smaller "
            f"{image_setting}, or a lower max_pixels in the processor (preprocessor_config.json), or fewer images "
            f"per question.")


def check_prompt_budget(question_ids: Sequence[str], texts: Sequence[str], image_paths: Sequence[Sequence[str]],
                        processor, size_of: Callable[[str], tuple[int, int]], limits: Sequence[Limit | None],
                        image_setting: str = "--image_size") -> dict:
    """Raise ValueError when a prompt is over the tightest of `limits` (see `over_limit_message`); else return
    {records, max_tokens, question_id (of the longest), limit, source, seconds}. `size_of(path)` gives the
    (width, height) the processor receives for an image path (`medr1.data.records.image_size_reader`)."""
    started = time.perf_counter()
    known = [limit for limit in limits if limit is not None]
    sizes = [[size_of(path) for path in paths] for paths in image_paths]
    costs = prompt_costs(processor, question_ids, texts, sizes)
    if not costs:
        return {"records": 0, "max_tokens": 0, "question_id": None, "limit": None, "source": None, "seconds": 0.0}
    longest = max(costs, key=lambda cost: cost.tokens)
    if not known:
        log.warning("prompt budget: no limit known (no max_position_embeddings); longest prompt %d tokens (%s)",
                    longest.tokens, longest.question_id)
        limit = None
    else:
        limit = min(known, key=lambda item: item.tokens)
        over = [cost for cost in costs if cost.tokens > limit.tokens]
        if over:
            raise ValueError(over_limit_message(longest, len(over), len(costs), limit, image_setting))
    seconds = time.perf_counter() - started
    log.info("prompt budget: %d records, longest %d tokens (%s), limit %s; checked in %.2fs", len(costs),
             longest.tokens, longest.question_id, f"{limit.tokens} ({limit.source})" if limit else "none", seconds)
    return {"records": len(costs), "max_tokens": longest.tokens, "question_id": longest.question_id,
            "limit": limit.tokens if limit else None, "source": limit.source if limit else None, "seconds": seconds}


def dataset_prompts(dataset, processor) -> tuple[list[str], list[str], list[list[str]]]:
    """(question_ids, templated texts, image paths) of a `medr1.data.records.prompt_dataset`, read without
    decoding its images: the prompt with the generation prompt, or (SFT) prompt and completion as one sequence.
    A split of text records has no image columns: every record's list of paths is empty."""
    plain = dataset.with_format(None)
    columns = plain.column_names
    if "image_paths" in columns:
        paths = plain["image_paths"]
    elif "image_path" in columns:
        paths = [[path] for path in plain["image_path"]]
    else:
        paths = [[] for _ in range(len(plain))]
    prompts = plain["prompt"]
    if "completion" in columns:
        texts = [processor.apply_chat_template(prompt + completion, tokenize=False)
                 for prompt, completion in zip(prompts, plain["completion"], strict=True)]
    else:
        texts = [processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
                 for prompt in prompts]
    return [str(q) for q in plain["question_id"]], texts, paths


def check_dataset_budget(dataset, processor, model_config, data_dir, image_size: int | None, *, reserve: int = 0,
                         max_prompt_length: int | None = None, max_length: int | None = None) -> dict:
    """`check_prompt_budget` for a training `prompt_dataset` (GRPO, SFT): the model's context less `reserve`
    completion tokens (GRPO's max_completion_length), the recipe's `max_prompt_length` (medr1's setting: TRL 1.16's
    GRPOConfig has none) and SFT's `max_length` (prompt and completion together)."""
    from medr1.data.records import image_size_reader

    limits = [context_limit(model_config, reserve, "--max_completion_length"),
              setting_limit(max_prompt_length, "--max_prompt_length"), setting_limit(max_length, "--max_length")]
    return check_prompt_budget(*dataset_prompts(dataset, processor), processor, image_size_reader(data_dir, image_size),
                               limits)
