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

import logging

from medr1.evaluation.sampling import sample_split, samples_correct, sampling_options, sampling_parser

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
    args = sampling_parser("medr1 passrate", __doc__.split("\n\n")[0], "dataset/medqa/train",
                           "JSONL of pass rates (appended, resumable)", default_k=8).parse_args(argv)
    measure_pass_rates(args.model, args.data, args.split, args.out, **sampling_options(args))
    return 0
