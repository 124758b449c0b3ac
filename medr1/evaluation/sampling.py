"""k sampled completions per training question, judged right or wrong: what `medr1 passrate` and `medr1 pairs` share.

:func:`sample_split` samples k completions (temperature 1.0, as GRPO samples) per question of a split with the
training prompt, batched like `medr1 eval`, and appends one JSONL line per question (the caller's
``line_of(record, samples)``), so a rerun samples only the questions not yet in the file. :func:`samples_correct`
is the verdict on each sample: a multiple-choice record by the training accuracy reward of the prompt style and
answer parsing; an open-ended record (``options: []``, ``answer`` the reference text) as `medr1 eval` scores it
(medr1/evaluation/scoring.py: the style's final response, read by the parsing's convention, checked by the rule
verifier of medr1/rewards/verifiers.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def sampling_styles() -> tuple[str, ...]:
    """The training prompt styles a split can be sampled in: the Med-R1 (image) styles and the text styles."""
    from medr1.data.prompts import PROMPT_STYLES, TEXT_STYLES

    return (*PROMPT_STYLES, *TEXT_STYLES)


@functools.cache
def training_accuracy_reward(style: str, parse: str):
    """The accuracy reward GRPO trains with for this prompt style and answer parsing (built once)."""
    from medr1.rewards.functions import reward_functions

    return next(f for f in reward_functions(style=style, mode=parse) if f.__name__ == "accuracy_reward")


def samples_correct(samples: list[str], record: dict, style: str, parse: str) -> list[bool]:
    """Whether each sample answers `record` right: by the training accuracy reward (multiple choice), or by the rule
    verifier on the answer convention `parse` reads, as `medr1 eval` scores an open-ended record."""
    from medr1.evaluation.scoring import correct, is_open_ended

    reward = training_accuracy_reward(style, parse)  # also checks style and parse, whatever the record
    if is_open_ended(record["options"]):
        return [correct(parse, sample, record["answer"], record["options"], style) for sample in samples]
    n = len(samples)
    return [float(v) >= 1.0 for v in reward(samples, answer=[record["answer"]] * n, options=[record["options"]] * n)]


def sample_split(model, data_dir, split: str, out, k: int, style: str,
                 line_of: Callable[[dict, list[str]], dict], *, limit=None, image_size=384, max_new_tokens=256,
                 batch_size=8, num_workers=2, engine="hf") -> list[dict]:
    """Append `line_of(record, k samples)` to `out` for each question of `split` (its first `limit`) not yet there;
    the lines of `out` for those questions, earlier runs' included, in file order."""
    from medr1.data.records import check_split_name, image_loader, load_split
    from medr1.evaluation.evaluate import ENGINE_FUNCS, append_predictions, longest_first, read_done

    if style not in sampling_styles():
        raise ValueError(f"unknown prompt style {style!r}; choose one of {sampling_styles()}")
    check_split_name(split)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = load_split(data_dir, split, limit)
    done = {p["question_id"] for p in read_done(out)}
    pending = [r for r in records if r["question_id"] not in done]
    if len(pending) < len(records):
        logger.info("%s: %d of %d questions already sampled; continuing", out, len(records) - len(pending),
                    len(records))

    def on_batch(batch_records, samples, texts):
        append_predictions(out, [line_of(record, list(outputs))
                                 for record, outputs in zip(batch_records, samples, strict=True)])

    if pending:
        ENGINE_FUNCS[engine](model, longest_first(pending), image_loader(data_dir, image_size), style, "train",
                             batch_size, max_new_tokens, num_workers, on_batch, samples=k)
    wanted = {r["question_id"] for r in records}
    return [p for p in read_done(out) if p["question_id"] in wanted]


def sampling_parser(prog: str, description: str, split_example: str, out_help: str, default_k: int):
    """The command line `medr1 passrate` and `medr1 pairs` share: model, split, output, k and the sampling knobs.
    :func:`sampling_options` turns its parsed args into the keyword arguments of both stages."""
    import argparse

    from medr1.evaluation.evaluate import ENGINES, PARSE_MODES

    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare`")
    parser.add_argument("--split", required=True, help=f"e.g. modality/CT/train or {split_example}")
    parser.add_argument("--out", required=True, type=Path, help=out_help)
    parser.add_argument("--k", type=int, default=default_k, help="completions sampled per question")
    parser.add_argument("--prompt", choices=sampling_styles(), default="think",
                        help="the training prompt style (huatuo | medicalgpt on text splits)")
    parser.add_argument("--parse", choices=tuple(PARSE_MODES), default="robust",
                        help="the training reward's answer parsing")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="questions per batch (k completions each)")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--engine", choices=ENGINES, default="hf")
    return parser


def sampling_options(args) -> dict:
    """`sampling_parser`'s parsed args as the stages' keyword arguments (after model, data, split, out)."""
    return {"k": args.k, "style": args.prompt, "parse": args.parse, "limit": args.limit,
            "image_size": args.image_size, "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
            "num_workers": args.num_workers, "engine": args.engine}
