"""Every scoring convention side by side, and `medr1 rescore --cell DIR --data DATA_DIR`.

Published tables score the same model outputs by different rules, so the same predictions can differ by
several points between papers. Each prediction line carries `parsed_by` and `correct_by` (one entry per
convention in `CONVENTIONS`), and `metrics.json` carries `scoring` ({name: accuracy, ci95,
answered_rate}); the top-level accuracy stays the convention chosen with `--parse`. The rules themselves
are pure functions in `medr1.rewards.answers`.

Two things depend on the prompt style (`style`, the `medr1 eval --prompt`): in HuatuoGPT-o1's `huatuo` style every
convention reads the final response (the text after `## Final Response`) of a well-formed output, else the whole
output. Open-ended records (`options: []`, `answer` the reference text) have no letter to read: each convention's
answer is the style's final response (`medr1.rewards.verifiers.final_response`: after `## Final Response`, or the
`<answer>` span), and the lenient conventions fall back to the whole output; the rule verifier
(`medr1.rewards.verifiers.rule_verdict`, the offline `verifier: rule` of training) decides whether it is right.

`medr1 rescore` re-scores an existing cell in place, without generating: older cells gain `parsed_by`,
`correct_by` and `scoring`; every other field is kept; both files are replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from medr1.rewards.answers import JUDGES, huatuo_final_response, is_correct, judge_is_correct, parse_answer_letter
from medr1.rewards.verifiers import final_response, rule_verdict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Convention:
    """One scoring convention: its answer rule (an answers-module mode or judge), who published with it, and how it
    reads an open-ended answer: `strict` (the style's final response only) or `lenient` (else the whole output)."""

    rule: str
    summary: str
    published: str
    open_ended: str = "lenient"


CONVENTIONS: dict[str, Convention] = {
    "robust": Convention(
        "robust", "medr1's parser: a clearly stated single letter (tags optional), else unanswered",
        "medr1 default"),
    "medr1-compat": Convention(
        "medr1-compat-eval", "the released Med-R1 scripts: the word inside <answer>\\s*(\\w+)\\s*</answer>",
        "Med-R1 paper", open_ended="strict"),
    "medevalkit": Convention(
        "medevalkit", "MedEvalKit's judge: answer phrase, bare letter, contained option text, most similar option",
        "Lingshu / MedEvalKit-based tables"),
    "omnimedvqa": Convention(
        "omnimedvqa", "OmniMedVQA's score: the option most similar to the raw output (difflib ratio)",
        "OmniMedVQA paper"),
    "huatuo": Convention(
        "huatuo", "HuatuoGPT-o1's evaluation: the final response, `answer is X`, a delimited bare letter, an option's "
        "text, else the most similar option (A-J)", "HuatuoGPT-o1 paper"),
}
# The convention a prompt style is scored by when none is chosen (`medr1 eval --parse`).
DEFAULT_PARSE = {"huatuo": "huatuo"}


class RescoreError(ValueError):
    """A cell that cannot be re-scored; the message names the cell and the record."""


# ---- pure scoring -------------------------------------------------------------------------------

def convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown scoring convention {name!r}; choose one of {tuple(CONVENTIONS)}") from None


def default_parse(prompt: str) -> str:
    """The convention `prompt` is scored by unless one is chosen: HuatuoGPT-o1's for `huatuo`, else `robust`."""
    return DEFAULT_PARSE.get(prompt, "robust")


def is_open_ended(options) -> bool:
    """An open-ended record's options: an empty list (`None`, options unknown, is not open-ended)."""
    return options is not None and not isinstance(options, str) and len(options) == 0


def answer_text(output, style: str):
    """What the letter conventions read: in the `huatuo` style the final response of a well-formed output, else
    the output itself."""
    final = huatuo_final_response(output) if style == "huatuo" else None
    return output if final is None else final


def open_response(name: str, output, style: str = "think") -> str | None:
    """The answer convention `name` reads from `output` for an open-ended record: the style's final response; a
    lenient convention takes the whole output when there is none. None: unanswered (also for an empty answer)."""
    response = final_response(output, style)
    if response is None and convention(name).open_ended == "lenient" and isinstance(output, str):
        response = output.strip()
    return response or None


def choice(name: str, output: str, options, style: str = "think") -> str | None:
    """What convention `name` reads as the answer of `output` (None: unanswered): a letter, or for an open-ended
    record (no options) the answer text."""
    if is_open_ended(options):
        return open_response(name, output, style)
    rule = convention(name).rule
    text = answer_text(output, style)
    if rule in JUDGES:
        return JUDGES[rule](text, options)
    return parse_answer_letter(text, options, mode=rule)


def correct(name: str, output: str, answer: str, options, style: str = "think") -> bool:
    """Whether convention `name` scores `output` correct for the gold letter `answer`, or for an open-ended record
    whether the rule verifier accepts its answer (`open_response`) for the reference text `answer`."""
    if is_open_ended(options):
        response = open_response(name, output, style)
        return response is not None and rule_verdict(response, answer)
    rule = convention(name).rule
    text = answer_text(output, style)
    if rule in JUDGES:
        return bool(judge_is_correct(rule, text, answer, options))
    return bool(is_correct(text, answer, options, mode=rule))


def score_all(output: str, options, answer: str, style: str = "think") -> dict:
    """`{"parsed_by": {name: choice}, "correct_by": {name: bool}}` over every convention, in prompt `style`."""
    return {
        "parsed_by": {name: choice(name, output, options, style) for name in CONVENTIONS},
        "correct_by": {name: correct(name, output, answer, options, style) for name in CONVENTIONS},
    }


def scoring_summary(predictions: list[dict], known_ci: dict | None = None) -> dict | None:
    """{name: {"accuracy", "ci95": [lo, hi], "answered_rate"}} per convention; None unless every prediction
    carries `correct_by` (a cell written before the conventions existed: run `medr1 rescore`).

    Conventions that agree on every question share one bootstrap (`known_ci`: tuple of hits -> interval
    already computed), which is most of the cost on a large split."""
    from medr1.evaluation.evaluate import bootstrap_ci

    if not all("correct_by" in p for p in predictions):
        return None
    n, summary, intervals = len(predictions), {}, dict(known_ci or {})
    for name in CONVENTIONS:
        hits = tuple(bool(p["correct_by"].get(name)) for p in predictions)
        if hits not in intervals:
            intervals[hits] = tuple(bootstrap_ci(list(hits)))
        answered = sum(p.get("parsed_by", {}).get(name) is not None for p in predictions)
        summary[name] = {"accuracy": sum(hits) / n if n else float("nan"), "ci95": list(intervals[hits]),
                         "answered_rate": answered / n if n else float("nan")}
    return summary


def rescore_predictions(predictions: list[dict], records: dict[str, dict], prompt: str, parse: str,
                        where: str = "predictions") -> list[dict]:
    """Each prediction with `parsed`, `correct`, `parsed_by` and `correct_by` recomputed from its output and
    its record (`records`: question_id -> canonical record); every other field kept as it was."""
    from medr1.evaluation.evaluate import score_prediction

    rescored = []
    for index, prediction in enumerate(predictions):
        record = records.get(prediction.get("question_id"))
        if record is None or not isinstance(prediction.get("output"), str):
            problem = "no output" if record is not None else "its question is not in the split"
            raise RescoreError(f"{where}: line {index + 1} (question_id {prediction.get('question_id')!r}): {problem}")
        fresh = score_prediction(record, prediction["output"], prompt, parse, every_convention=True)
        rescored.append({**prediction, **{key: fresh[key] for key in ("parsed", "correct", "parsed_by", "correct_by")}})
    return rescored


def complete_scoring(predictions: list[dict], records: list[dict], prompt: str, parse: str) -> list[dict]:
    """Predictions where those made by older code (no `correct_by`) are re-scored from their records."""
    stale = [p for p in predictions if "correct_by" not in p]
    if not stale:
        return predictions
    logger.info("%d predictions predate the scoring conventions; re-scored for the metrics (run `medr1 "
                "rescore` to update the file too)", len(stale))
    by_id = {r["question_id"]: r for r in records}
    fresh = iter(rescore_predictions(stale, by_id, prompt, parse))
    return [p if "correct_by" in p else next(fresh) for p in predictions]


# ---- re-scoring a cell in place -----------------------------------------------------------------

def _replace(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file in the same folder, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def rescore_cell(cell: str | Path, data_dir: str | Path) -> dict:
    """Re-score `cell` (a `medr1 eval` output folder) against the split its metrics name, in place."""
    from medr1.data.records import load_split
    from medr1.evaluation.evaluate import read_done, summarize

    cell = Path(cell)
    metrics_path, predictions_path = cell / "metrics.json", cell / "predictions.jsonl"
    for path in (metrics_path, predictions_path):
        if not path.is_file():
            raise RescoreError(f"{path} is missing: {cell} is not a finished `medr1 eval` cell")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    if "split" not in metrics:
        raise RescoreError(f"{metrics_path}: no 'split' field, so the records to score against are unknown")
    prompt = metrics.get("prompt", "think")
    parse = metrics.get("parse") or default_parse(prompt)
    convention(parse)
    records = {r["question_id"]: r for r in load_split(data_dir, metrics["split"])}
    predictions = rescore_predictions(read_done(predictions_path), records, prompt, parse, where=str(predictions_path))
    _replace(predictions_path, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions))
    metrics = {**metrics, **summarize(predictions)}
    _replace(metrics_path, json.dumps(metrics, indent=2))
    logger.info("%s re-scored: %s", cell, ", ".join(f"{name} {entry['accuracy']:.4f}"
                                                     for name, entry in metrics["scoring"].items()))
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medr1 rescore", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", required=True, type=Path, action="append",
                        help="a `medr1 eval` output folder (repeat for several)")
    parser.add_argument("--data", required=True, type=Path, help="the DATA_DIR the cell was evaluated on")
    args = parser.parse_args(argv)
    try:
        for cell in args.cell:
            rescore_cell(cell, args.data)
    except (RescoreError, FileNotFoundError) as error:
        logger.error("rescore failed: %s", error)
        return 1
    return 0
