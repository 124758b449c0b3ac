"""Pass rates: `medr1 passrate --model M --data DATA_DIR --split modality/CT/train --k 8 --out F.jsonl`.

Samples k completions per question at temperature 1.0 with the training prompt (an image style, or a text style
on a text split: `--split dataset/medqa/train --prompt huatuo`), scores each with the training accuracy reward (an
open-ended record, `options: []`, by the rule verifier as `medr1 eval` scores it: medr1/evaluation/sampling.py),
and writes one line per question: `question_id`, `pass_rate` (the share of the k completions that were right),
`k`. Batched like `medr1 eval`, and resumable: questions already in F are not sampled again.
`medr1 train --pass_rates F --min_pass_rate a --max_pass_rate b` then trains only on the questions in between
(all-right and all-wrong questions give GRPO groups with no gradient).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from medr1.evaluation.sampling import sample_split, samples_correct, sampling_styles

logger = logging.getLogger(__name__)


def pass_rate(outputs: list[str], record: dict, style: str, parse: str) -> float:
    """The share of `outputs` scored correct for this record (`medr1.evaluation.sampling.samples_correct`)."""
    verdicts = samples_correct(outputs, record, style, parse)
    return sum(verdicts) / len(verdicts)


def measure_pass_rates(model, data_dir, split, out, k=8, style="think", parse="robust", limit=None, image_size=384,
                       max_new_tokens=256, batch_size=8, num_workers=2, engine="hf") -> dict:
    if k < 2:
        raise ValueError("k must be at least 2: a pass rate of one sample is a coin toss, not a rate")

    def line_of(record, samples):
        return {"question_id": record["question_id"], "pass_rate": pass_rate(samples, record, style, parse), "k": k}

    lines = sample_split(model, data_dir, split, out, k, style, line_of, limit=limit, image_size=image_size,
                         max_new_tokens=max_new_tokens, batch_size=batch_size, num_workers=num_workers, engine=engine)
    rates = [line["pass_rate"] for line in lines]
    summary = {"questions": len(rates), "k": k, "all_right": sum(r == 1.0 for r in rates),
               "all_wrong": sum(r == 0.0 for r in rates), "mean_pass_rate": sum(rates) / len(rates) if rates else None}
    logger.info("pass rates of %s on %s: %s", model, split, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    from medr1.evaluation.evaluate import ENGINES, PARSE_MODES

    parser = argparse.ArgumentParser(prog="medr1 passrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare`")
    parser.add_argument("--split", required=True, help="e.g. modality/CT/train or dataset/medqa/train")
    parser.add_argument("--out", required=True, type=Path, help="JSONL of pass rates (appended, resumable)")
    parser.add_argument("--k", type=int, default=8, help="completions sampled per question")
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
    args = parser.parse_args(argv)
    measure_pass_rates(args.model, args.data, args.split, args.out, k=args.k, style=args.prompt, parse=args.parse,
                       limit=args.limit, image_size=args.image_size, max_new_tokens=args.max_new_tokens,
                       batch_size=args.batch_size, num_workers=args.num_workers, engine=args.engine)
    return 0
