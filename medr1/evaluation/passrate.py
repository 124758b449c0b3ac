"""Pass rates: `medr1 passrate --model M --data DATA_DIR --split modality/CT/train --k 8 --out F.jsonl`.

Samples k completions per question at temperature 1.0 with the training prompt, scores each with the
training accuracy reward, and writes one line per question: `question_id`, `pass_rate` (the share of the
k completions that were right), `k`. Batched like `medr1 eval`, and resumable: questions already in F are
not sampled again. `medr1 train --pass_rates F --min_pass_rate a --max_pass_rate b` then trains only on the
questions in between (all-right and all-wrong questions give GRPO groups with no gradient).
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


@functools.cache
def training_accuracy_reward(style: str, parse: str):
    """The accuracy reward GRPO trains with for this prompt style and answer parsing (built once)."""
    from medr1.rewards.functions import reward_functions

    return next(f for f in reward_functions(style=style, mode=parse) if f.__name__ == "accuracy_reward")


def pass_rate(outputs: list[str], record: dict, style: str, parse: str) -> float:
    """The share of `outputs` the training accuracy reward scores correct for this record."""
    n = len(outputs)
    rewards = training_accuracy_reward(style, parse)(outputs, answer=[record["answer"]] * n,
                                                     options=[record["options"]] * n)
    return sum(rewards) / len(rewards)


def measure_pass_rates(model, data_dir, split, out, k=8, style="think", parse="robust", limit=None, image_size=384,
                       max_new_tokens=256, batch_size=8, num_workers=2, engine="hf") -> dict:
    from medr1.data.records import image_loader, load_split
    from medr1.evaluation.evaluate import ENGINE_FUNCS, append_predictions, longest_first, read_done

    if k < 2:
        raise ValueError("k must be at least 2: a pass rate of one sample is a coin toss, not a rate")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = load_split(data_dir, split, limit)
    done = {p["question_id"] for p in read_done(out)}
    pending = [r for r in records if r["question_id"] not in done]
    if done:
        logger.info("%s: %d of %d questions already measured; continuing", out, len(records) - len(pending),
                    len(records))

    def on_batch(batch_records, samples, texts):
        append_predictions(out, [{"question_id": r["question_id"], "pass_rate": pass_rate(s, r, style, parse), "k": k}
                                 for r, s in zip(batch_records, samples, strict=True)])

    if pending:
        ENGINE_FUNCS[engine](model, longest_first(pending), image_loader(data_dir, image_size), style, "train",
                             batch_size, max_new_tokens, num_workers, on_batch, samples=k)
    wanted = {r["question_id"] for r in records}
    rates = [p["pass_rate"] for p in read_done(out) if p["question_id"] in wanted]
    summary = {"questions": len(rates), "k": k, "all_right": sum(r == 1.0 for r in rates),
               "all_wrong": sum(r == 0.0 for r in rates), "mean_pass_rate": sum(rates) / len(rates) if rates else None}
    logger.info("pass rates of %s on %s: %s", model, split, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    from medr1.data.prompts import PROMPT_STYLES
    from medr1.evaluation.evaluate import ENGINES, PARSE_MODES

    parser = argparse.ArgumentParser(prog="medr1 passrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare`")
    parser.add_argument("--split", required=True, help="e.g. modality/CT/train")
    parser.add_argument("--out", required=True, type=Path, help="JSONL of pass rates (appended, resumable)")
    parser.add_argument("--k", type=int, default=8, help="completions sampled per question")
    parser.add_argument("--prompt", choices=PROMPT_STYLES, default="think",
                        help="the training prompt style")
    parser.add_argument("--parse", choices=tuple(PARSE_MODES), default="robust",
                        help="the training reward's answer parsing")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="questions per batch (k completions each)")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--engine", choices=ENGINES, default="hf")
    args = parser.parse_args(argv)
    measure_pass_rates(args.model, args.data, args.split, args.out, k=args.k, style=args.prompt, parse=args.parse,
                       limit=args.limit, image_size=args.image_size, max_new_tokens=args.max_new_tokens,
                       batch_size=args.batch_size, num_workers=args.num_workers, engine=args.engine)
    return 0
