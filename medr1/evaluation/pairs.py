"""On-policy preference pairs: `medr1 pairs --model M --data DATA_DIR --split modality/CT/train --k 4 --out F.jsonl`.

Samples k completions per training question (images included; a text split with a text style, e.g. `--split
dataset/huatuo-verifiable/train --prompt huatuo`) with the training prompt, as `medr1 passrate` does
(medr1/evaluation/sampling.py), scores each with the training rewards (format + accuracy of the prompt style; an
open-ended record's accuracy is the rule verifier's verdict, as `medr1 eval` scores it), and pairs a correct
completion (the best-scored one) with an incorrect one (the worst-scored one): :func:`pair_for`. One line per
question: `question_id`, `chosen`, `rejected`, their rewards, `n_correct`, `k`; a question with no such pair
(all k right, or all k wrong) gets a line with `unpaired` (`all_correct` | `all_wrong`) instead, so that it is
counted, not silently dropped, and a rerun does not sample it again (resumable: questions in F are skipped).
The counts go to the log and to `F.report.json`. `medr1 dpo --train_file F --data_dir DATA_DIR --modality CT`
(or `--split S`, the split sampled) trains on the pairs (the prompt and image are read back from the split).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from medr1.evaluation.sampling import sample_split, samples_correct, sampling_options, sampling_parser

logger = logging.getLogger(__name__)

ALL_CORRECT, ALL_WRONG = "all_correct", "all_wrong"


def pair_for(samples: list[str], correct: list[bool], scores: list[float]) -> dict:
    """The pairing rule: chosen = the correct sample with the highest score, rejected = the incorrect sample with the
    lowest score (the first one on ties); {'unpaired': all_correct | all_wrong} when every sample is alike."""
    if not (len(samples) == len(correct) == len(scores)) or not samples:
        raise ValueError("samples, correct and scores must be non-empty and of one length")
    right = [i for i, c in enumerate(correct) if c]
    wrong = [i for i, c in enumerate(correct) if not c]
    if not wrong:
        return {"unpaired": ALL_CORRECT, "n_correct": len(right)}
    if not right:
        return {"unpaired": ALL_WRONG, "n_correct": 0}
    best = max(right, key=lambda i: (scores[i], -i))
    worst = min(wrong, key=lambda i: (scores[i], i))
    return {"chosen": samples[best], "rejected": samples[worst], "chosen_reward": scores[best],
            "rejected_reward": scores[worst], "n_correct": len(right)}


def score_samples(samples: list[str], record: dict, style: str, parse: str) -> tuple[list[bool], list[float]]:
    """(correct, total training reward) of each sample: correct by the training accuracy reward (an open-ended
    record: by the rule verifier, `medr1.evaluation.sampling.samples_correct`), the total its format reward plus
    1.0 when correct."""
    from medr1.rewards.functions import format_reward

    correct = samples_correct(samples, record, style, parse)
    formats = format_reward(samples, style=style)
    return correct, [float(f) + float(c) for f, c in zip(formats, correct, strict=True)]


def pair_summary(lines: list[dict]) -> dict:
    unpaired = [line.get("unpaired") for line in lines if "unpaired" in line]
    summary = {"questions": len(lines), "pairs": len(lines) - len(unpaired), "unpaired": len(unpaired),
               ALL_CORRECT: unpaired.count(ALL_CORRECT), ALL_WRONG: unpaired.count(ALL_WRONG)}
    if any("completion_tokens" in line for line in lines):
        summary["completion_tokens"] = sum(line.get("completion_tokens", 0) for line in lines)
    return summary


def make_pairs(model, data_dir, split, out, k=4, style="think", parse="robust", limit=None, image_size=384,
               max_new_tokens=256, batch_size=8, num_workers=2, engine="hf", tokenizer=None) -> dict:
    """Write `out` (and `out.report.json`); with a `tokenizer`, each line also counts its k samples' tokens
    (`completion_tokens`, summed in the summary)."""
    if k < 2:
        raise ValueError("k must be at least 2: one sample cannot be both correct and incorrect")
    out = Path(out)

    def line_of(record, outputs):
        correct, scores = score_samples(outputs, record, style, parse)
        tokens = {} if tokenizer is None else {"completion_tokens": sum(
            len(ids) for ids in tokenizer(list(outputs), add_special_tokens=False)["input_ids"])}
        return {"question_id": record["question_id"], "split": split, "k": k, **pair_for(outputs, correct, scores),
                **tokens}

    lines = sample_split(model, data_dir, split, out, k, style, line_of, limit=limit, image_size=image_size,
                         max_new_tokens=max_new_tokens, batch_size=batch_size, num_workers=num_workers, engine=engine)
    summary = {"model": str(model), "split": split, "k": k, "style": style, **pair_summary(lines)}
    report = out.with_name(out.name + ".report.json")
    report.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info("pairs of %s on %s: %d pairs from %d questions; %d unpaired (%d all correct, %d all wrong) -> %s",
                model, split, summary["pairs"], summary["questions"], summary["unpaired"], summary[ALL_CORRECT],
                summary[ALL_WRONG], out)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = sampling_parser("medr1 pairs", __doc__.split("\n\n")[0], "dataset/huatuo-verifiable/train",
                           "JSONL of pairs (appended, resumable)", default_k=4).parse_args(argv)
    make_pairs(args.model, args.data, args.split, args.out, **sampling_options(args))
    return 0
