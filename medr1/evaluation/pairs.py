"""On-policy preference pairs: `medr1 pairs --model M --data DATA_DIR --split modality/CT/train --k 4 --out F.jsonl`.

Samples k completions per training question (images included) with the training prompt, as `medr1 passrate`
does, scores each with the training rewards (format + accuracy of the prompt style), and pairs a correct
completion (the best-scored one) with an incorrect one (the worst-scored one): :func:`pair_for`. One line per
question: `question_id`, `chosen`, `rejected`, their rewards, `n_correct`, `k`; a question with no such pair
(all k right, or all k wrong) gets a line with `unpaired` (`all_correct` | `all_wrong`) instead, so that it is
counted, not silently dropped, and a rerun does not sample it again (resumable: questions in F are skipped).
The counts go to the log and to `F.report.json`. `medr1 dpo --train_file F --data_dir DATA_DIR --modality CT`
trains on the pairs (the prompt and image are read back from the split).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

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
    """(correct by the training accuracy reward, total training reward) of each sample."""
    from medr1.rewards.functions import reward_functions

    n = len(samples)
    kwargs = {"answer": [record["answer"]] * n, "options": [record["options"]] * n}
    totals = [0.0] * n
    correct = [False] * n
    for func in reward_functions(style=style, mode=parse):
        values = func(samples, **kwargs)
        totals = [t + float(v) for t, v in zip(totals, values, strict=True)]
        if func.__name__ == "accuracy_reward":
            correct = [float(v) >= 1.0 for v in values]
    return correct, totals


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
    from medr1.data.records import image_loader, load_split
    from medr1.evaluation.evaluate import ENGINE_FUNCS, append_predictions, longest_first, read_done

    if k < 2:
        raise ValueError("k must be at least 2: one sample cannot be both correct and incorrect")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = load_split(data_dir, split, limit)
    done = {p["question_id"] for p in read_done(out)}
    pending = [r for r in records if r["question_id"] not in done]
    if done:
        logger.info("%s: %d of %d questions already sampled; continuing", out, len(records) - len(pending),
                    len(records))

    def on_batch(batch_records, samples, texts):
        lines = []
        for record, outputs in zip(batch_records, samples, strict=True):
            correct, scores = score_samples(outputs, record, style, parse)
            tokens = {} if tokenizer is None else {"completion_tokens": sum(
                len(ids) for ids in tokenizer(list(outputs), add_special_tokens=False)["input_ids"])}
            lines.append({"question_id": record["question_id"], "split": split, "k": k,
                          **pair_for(outputs, correct, scores), **tokens})
        append_predictions(out, lines)

    if pending:
        ENGINE_FUNCS[engine](model, longest_first(pending), image_loader(data_dir, image_size), style, "train",
                             batch_size, max_new_tokens, num_workers, on_batch, samples=k)
    wanted = {r["question_id"] for r in records}
    summary = {"model": str(model), "split": split, "k": k, "style": style,
               **pair_summary([p for p in read_done(out) if p["question_id"] in wanted])}
    report = out.with_name(out.name + ".report.json")
    report.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info("pairs of %s on %s: %d pairs from %d questions; %d unpaired (%d all correct, %d all wrong) -> %s",
                model, split, summary["pairs"], summary["questions"], summary["unpaired"], summary[ALL_CORRECT],
                summary[ALL_WRONG], out)
    return summary


def main(argv: list[str] | None = None) -> int:
    from medr1.data.prompts import PROMPT_STYLES
    from medr1.evaluation.evaluate import ENGINES, PARSE_MODES

    parser = argparse.ArgumentParser(prog="medr1 pairs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare`")
    parser.add_argument("--split", required=True, help="e.g. modality/CT/train")
    parser.add_argument("--out", required=True, type=Path, help="JSONL of pairs (appended, resumable)")
    parser.add_argument("--k", type=int, default=4, help="completions sampled per question")
    parser.add_argument("--prompt", choices=PROMPT_STYLES, default="think", help="the training prompt style")
    parser.add_argument("--parse", choices=tuple(PARSE_MODES), default="robust",
                        help="the training reward's answer parsing")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8, help="questions per batch (k completions each)")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--engine", choices=ENGINES, default="hf")
    args = parser.parse_args(argv)
    make_pairs(args.model, args.data, args.split, args.out, k=args.k, style=args.prompt, parse=args.parse,
               limit=args.limit, image_size=args.image_size, max_new_tokens=args.max_new_tokens,
               batch_size=args.batch_size, num_workers=args.num_workers, engine=args.engine)
    return 0
