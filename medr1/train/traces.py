"""`medr1 traces`: HuatuoGPT-o1's first stage, verifier-guided reasoning traces, written as an SFT set.

    medr1 traces --data DATA_DIR --split dataset/huatuo-verifiable/train --out traces/medical_o1_sft.jsonl \\
        (--policy CHECKPOINT | --endpoint http://localhost:8000/v1 --endpoint-model NAME) [--verifier rule]

Per question (a record of a `medr1 prepare` split: `question`, `options` ([] when open-ended), `answer`):

1. the sampler (a local causal LM, or a model behind an OpenAI-compatible chat endpoint) answers the question in
   HuatuoGPT-o1's form, `## Thinking\\n\\n...\\n\\n## Final Response\\n\\n...` (:data:`FORMAT_REQUEST`);
2. the verifier (`medr1/rewards/verifiers.py`: `rule`, `classifier` or `judge`) checks the final response against
   the reference (for multiple choice, the gold option);
3. when it rejects it, the conversation goes on with one search strategy (:data:`STRATEGIES`: backtracking, exploring
   a new path, verification, correction; drawn per round with the seed, backtracking never at the first retry) for up
   to `--max-rounds` more rounds; a question that is still unverified starts afresh, up to `--attempts` times
   (HuatuoGPT-o1: N = 3 rounds, T = 3 attempts).

A sample without a well-formed trace (each heading once, thinking first, neither part blank) ends its attempt. A
verified chain becomes one line of `--out` in the HuatuoGPT-o1 SFT release's keys: `Question` (the question, with
its options one per line as `A. text`), `Complex_CoT` (every round's thinking, each rejected round followed by its
final response) and `Response` (the verified final response), plus `question_id`, `reference`, `round`, `attempt`,
`strategies` and sample counts. `medr1 prepare --dataset huatuo-sft --input OUT.jsonl` reads it as it reads
`medical_o1_sft.json`, and `medr1 sft` (`prompt_style: huatuo`, `sft_think: column:reasoning`) trains on
`## Thinking\\n\\n{Complex_CoT}\\n\\n## Final Response\\n\\n{Response}` for the bare question.

Questions that end unverified (or, when every attempt broke on a malformed sample, `malformed`) go to
`OUT.failed.jsonl`. A rerun skips every question in either file, so it continues where a run stopped;
`OUT.report.json` (rewritten after each batch of questions) counts the questions verified at round 0, 1, ...,
unverified and malformed over both files, and the samples, strategies and skipped records (a record without a
question or an answer is a named skip, never silent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from medr1.data.prompts import huatuo_problem
from medr1.rewards.answers import HUATUO_FINAL, HUATUO_THINKING, huatuo_final_response
from medr1.rewards.verifiers import (
    FALLBACKS,
    VERIFIERS,
    JudgeUnavailable,
    JudgeVerifier,
    VerifierReward,
    VerifierSettings,
    reference_text,
)

logger = logging.getLogger(__name__)

# The search strategies and the wording each one is asked with (HuatuoGPT-o1's four; the wording is ours).
STRATEGIES = {
    "backtracking": "Backtracking: go back to the step of your reasoning where it went wrong, say which step that "
                    "was, and reason on from there.",
    "exploring a new path": "Exploring a new path: set the previous approach aside and solve the problem along a "
                            "different line of reasoning.",
    "verification": "Verification: check each step of your previous reasoning and its conclusion against the facts "
                    "given in the question, and fix whatever does not hold.",
    "correction": "Correction: name the mistake in your previous reasoning, correct it, and reason on to a "
                  "corrected conclusion.",
}
NOT_AT_FIRST_RETRY = ("backtracking",)  # there is nothing to backtrack into before one retry

FORMAT_REQUEST = ("Think the problem through step by step, then answer it. Reply in exactly this form:\n\n"
                  "## Thinking\n\n<your reasoning>\n\n## Final Response\n\n<your answer>")
RETRY_REQUEST = ("Your final response, \"{final}\", was checked against the reference answer and it is not correct. "
                 "Continue your reasoning with this strategy. {wording}\n\nReply in the same form: `## Thinking` with "
                 "your continued reasoning (do not repeat the earlier thinking), then `## Final Response` with your "
                 "new answer.")
OUTCOMES = ("verified", "unverified", "malformed")


class SamplerUnavailable(RuntimeError):
    """The sampling endpoint did not answer (connection refused, timeouts, server errors) after every retry."""


# ---- pure rules ---------------------------------------------------------------------------------

def question_text(record: dict) -> str:
    """The question as HuatuoGPT-o1 trains on it: the question, then its options one per line as ``A. text``."""
    return huatuo_problem(record["question"], record["options"])


def first_turn(record: dict) -> dict:
    return {"role": "user", "content": f"{question_text(record)}\n\n{FORMAT_REQUEST}"}


def retry_turn(strategy: str, final: str) -> dict:
    return {"role": "user", "content": RETRY_REQUEST.format(final=final, wording=STRATEGIES[strategy])}


def choose_strategy(rng: random.Random, next_round: int) -> str:
    """The strategy of round ``next_round`` (1, 2, ...): any of :data:`STRATEGIES`, but not backtracking at round 1."""
    names = [name for name in STRATEGIES if next_round > 1 or name not in NOT_AT_FIRST_RETRY]
    return rng.choice(names)


def split_trace(text: object) -> tuple[str, str] | None:
    """(thinking, final response) of a well-formed trace (``## Thinking`` and ``## Final Response\\n\\n`` once each,
    in that order, neither part blank); None otherwise. Text before ``## Thinking`` is dropped."""
    final = huatuo_final_response(text)
    if final is None:
        return None
    thinking = text[text.find(HUATUO_THINKING) + len(HUATUO_THINKING):text.find(HUATUO_FINAL)].strip()
    return (thinking, final) if thinking and final else None


def chain_of_thought(rounds: list[dict]) -> str:
    """One attempt's rounds as one reasoning text: each round's thinking, a rejected round's final response after it."""
    parts = []
    for i, entry in enumerate(rounds):
        parts.append(entry["thinking"])
        if i < len(rounds) - 1:
            parts.append(entry["final"])
    return "\n\n".join(parts)


def sample_seed(seed: int, question_id: str, attempt: int, round_: int) -> int:
    digest = hashlib.sha256(f"{seed}:{question_id}:{attempt}:{round_}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def record_problem(record: object) -> str | None:
    """Why a split record cannot be searched (None when it can): it needs a question, options and an answer."""
    if not isinstance(record, dict):
        return f"record is not an object: {type(record).__name__}"
    if not isinstance(record.get("question_id"), str) or not record["question_id"]:
        return "missing field: question_id"
    for key in ("question", "answer"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"missing field: {key}"
    options = record.get("options")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        return "options is not a list of texts"
    return None


# ---- one question's search ----------------------------------------------------------------------

@dataclass
class Search:
    """The state of one question's search: the current attempt's conversation and rounds, and every sample's result."""

    record: dict
    max_rounds: int
    attempts: int
    seed: int
    attempt: int = 0
    outcome: str | None = None
    messages: list = field(default_factory=list)
    rounds: list = field(default_factory=list)
    samples: list = field(default_factory=list)  # {"attempt", "round", "strategy", "result"} per sample
    ended: list = field(default_factory=list)  # how each finished attempt ended: "unverified" or "malformed"
    strategy: str | None = None  # the strategy the pending sample was asked with (None at round 0)

    def __post_init__(self):
        self._start()

    def _start(self):
        self.messages, self.rounds, self.strategy = [first_turn(self.record)], [], None
        self.rng = random.Random(f"{self.seed}:{self.record['question_id']}:{self.attempt}")

    def next_seed(self) -> int:
        return sample_seed(self.seed, self.record["question_id"], self.attempt, len(self.rounds))

    def observe(self, text: str, parts: tuple[str, str] | None, verified: bool) -> None:
        """Take the pending sample (``parts``: its :func:`split_trace`) and its verdict; set up the next one."""
        entry = {"attempt": self.attempt, "round": len(self.rounds), "strategy": self.strategy}
        if parts is None:
            self.samples.append({**entry, "result": "malformed"})
            return self._end_attempt("malformed")
        self.rounds.append({"strategy": self.strategy, "thinking": parts[0], "final": parts[1]})
        self.samples.append({**entry, "result": "verified" if verified else "rejected"})
        if verified:
            self.outcome = "verified"
            return None
        if len(self.rounds) > self.max_rounds:
            return self._end_attempt("unverified")
        self.strategy = choose_strategy(self.rng, len(self.rounds))
        self.messages += [{"role": "assistant", "content": text}, retry_turn(self.strategy, parts[1])]
        return None

    def _end_attempt(self, how: str) -> None:
        self.ended.append(how)
        if len(self.ended) >= self.attempts:
            self.outcome = "unverified" if "unverified" in self.ended else "malformed"
        else:
            self.attempt += 1
            self._start()

    def _counts(self) -> dict:
        return {"samples": len(self.samples),
                "malformed_samples": sum(s["result"] == "malformed" for s in self.samples),
                "strategies_tried": [s["strategy"] for s in self.samples if s["strategy"]]}

    def trace_row(self) -> dict:
        """The SFT line of a verified search (the huatuo-sft keys first)."""
        record = self.record
        return {"Question": question_text(record), "Complex_CoT": chain_of_thought(self.rounds),
                "Response": self.rounds[-1]["final"], "question_id": record["question_id"],
                "reference": reference_text(record["answer"], record["options"]), "round": len(self.rounds) - 1,
                "attempt": self.attempt, "strategies": [r["strategy"] for r in self.rounds[1:]], **self._counts()}

    def failure_row(self) -> dict:
        return {"question_id": self.record["question_id"], "outcome": self.outcome, "attempts": self.ended,
                **self._counts()}


def verdicts(reward: VerifierReward, texts: list[str], records: list[dict]) -> list[bool]:
    """Whether the verifier accepts each trace's final response for its record (JudgeUnavailable propagates)."""
    if not texts:
        return []
    rewards = reward(texts, answer=[r["answer"] for r in records], options=[r["options"] for r in records])
    return [value == reward.values.correct for value in rewards]


def run_searches(records: list[dict], sampler, reward: VerifierReward, max_rounds: int, attempts: int,
                 seed: int) -> list[Search]:
    """Search every record to its end, all of them in step: each wave samples the next turn of every open search at
    once (one batched or concurrent call) and verifies the well-formed ones in one call."""
    searches = [Search(r, max_rounds, attempts, seed) for r in records]
    while active := [s for s in searches if s.outcome is None]:
        texts = sampler.sample([s.messages for s in active], [s.next_seed() for s in active])
        parts = [split_trace(text) for text in texts]
        formed = [i for i, p in enumerate(parts) if p is not None]
        accepted = dict(zip(formed, verdicts(reward, [texts[i] for i in formed],
                                             [active[i].record for i in formed]), strict=True))
        for i, search in enumerate(active):
            search.observe(texts[i], parts[i], accepted.get(i, False))
    return searches


# ---- samplers -----------------------------------------------------------------------------------

class LocalSampler:
    """A local checkpoint (any AutoModelForCausalLM; a VLM on text-only prompts) through `model.generate`, batched
    with left padding, on the GPU when there is one (``medr1.evaluation.evaluate.load_for_generation``)."""

    def __init__(self, model: str, max_new_tokens: int = 2048, temperature: float = 0.7, top_p: float = 1.0,
                 batch_size: int = 8):
        self.model_path, self.max_new_tokens, self.batch_size = model, max_new_tokens, batch_size
        self.temperature, self.top_p = temperature, top_p
        self.counts = Counter()
        self._model = self._processor = None

    def sample(self, conversations: list[list[dict]], seeds: list[int]) -> list[str]:
        import torch

        from medr1.data.model_kinds import tokenizer_of
        from medr1.evaluation.evaluate import load_for_generation

        if self._model is None:
            self._model, self._processor = load_for_generation(self.model_path)
        tokenizer = tokenizer_of(self._processor)
        greedy = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        sampling = ({"do_sample": True, "temperature": self.temperature, "top_p": self.top_p, "top_k": 0}
                    if self.temperature > 0 else greedy)
        out = []
        for start in range(0, len(conversations), self.batch_size):
            texts = [self._processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
                     for m in conversations[start:start + self.batch_size]]
            inputs = self._processor(text=texts, padding=True, add_special_tokens=False, return_tensors="pt")
            inputs = inputs.to(self._model.device)
            torch.manual_seed(seeds[start])
            with torch.inference_mode():
                ids = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, **sampling)
            new = ids[:, inputs["input_ids"].shape[1]:]
            self.counts["truncated"] += sum(int(tokenizer.pad_token_id not in row and len(row) == self.max_new_tokens)
                                            for row in new.tolist())
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
            self.counts["requests"] += len(texts)
        return out


class EndpointSampler:
    """A model behind an OpenAI-compatible chat endpoint (vLLM, SGLang, a provider), through the `openai` client
    that the judge verifier builds (`JudgeVerifier.client`: the key from ``api_key_env``, the timeout, no hidden
    retries). Requests run ``concurrency`` at a time; a connection error, timeout, rate limit or server error is
    retried ``retries`` times (then :class:`SamplerUnavailable`); another HTTP error raises at once."""

    def __init__(self, model: str, url: str, api_key_env: str | None = None, max_tokens: int = 2048,
                 temperature: float = 0.7, top_p: float = 1.0, concurrency: int = 8, timeout: float = 120.0,
                 retries: int = 2):
        self.model, self.url, self.max_tokens, self.temperature, self.top_p = model, url, max_tokens, temperature, top_p
        self.concurrency, self.timeout, self.retries = concurrency, timeout, retries
        self.endpoint = JudgeVerifier(model, url, api_key_env, timeout=timeout, retries=retries)
        self.counts = Counter()
        self._lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def ask(self, messages: list[dict], seed: int) -> str:
        import openai

        transient = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        error = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(JudgeVerifier.RETRY_BACKOFF * 2 ** (attempt - 1))
                self._count("retries")
            self._count("requests")
            try:
                reply = self.endpoint.client().chat.completions.create(
                    model=self.model, messages=messages, temperature=self.temperature, top_p=self.top_p,
                    max_tokens=self.max_tokens, seed=seed)
            except transient as caught:  # APITimeoutError is an APIConnectionError
                error = caught
                continue
            except openai.APIStatusError as caught:
                raise RuntimeError(f"traces endpoint {self.model!r} at {self.url} refused the request: "
                                   f"{caught}") from caught
            choice = reply.choices[0] if reply.choices else None
            if choice is not None and choice.finish_reason == "length":
                self._count("truncated")
            return (choice.message.content if choice is not None else None) or ""
        raise SamplerUnavailable(f"traces endpoint {self.model!r} at {self.url} did not answer after "
                                 f"{self.retries + 1} attempt(s) of {self.timeout:g} s: "
                                 f"{type(error).__name__}: {error}")

    def sample(self, conversations: list[list[dict]], seeds: list[int]) -> list[str]:
        self.endpoint.client()  # once, before the threads
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(conversations)))) as pool:
            return list(pool.map(self.ask, conversations, seeds))


# ---- the run ------------------------------------------------------------------------------------

def side_paths(out: Path, report: Path | None = None) -> tuple[Path, Path]:
    """(failures file, report file) beside ``out``: ``OUT.failed.jsonl`` and ``OUT.report.json``."""
    stem = out.name[:-len(out.suffix)] if out.suffix else out.name
    return out.with_name(f"{stem}.failed.jsonl"), report or out.with_name(f"{stem}.report.json")


def summarize(rows: list[dict], failures: list[dict], max_rounds: int) -> dict:
    """The counts of a run's files: questions verified at each round (and attempt), unverified, malformed, samples."""
    at_round = Counter(str(row["round"]) for row in rows)
    outcomes = Counter(row["outcome"] for row in failures)
    everything = rows + failures
    return {
        "questions_done": len(everything), "verified": len(rows),
        "verified_at_round": {str(r): at_round.get(str(r), 0) for r in range(max(
            [max_rounds, *(row["round"] for row in rows)]) + 1)},
        "verified_at_attempt": dict(sorted(Counter(str(row["attempt"]) for row in rows).items())),
        "unverified": outcomes.get("unverified", 0), "malformed": outcomes.get("malformed", 0),
        "samples": sum(row["samples"] for row in everything),
        "malformed_samples": sum(row["malformed_samples"] for row in everything),
        "strategies_tried": dict(sorted(Counter(s for row in everything for s in row["strategies_tried"]).items())),
        "verified_by_strategy": dict(sorted(Counter(row["strategies"][-1] if row["strategies"] else "none (round 0)"
                                                    for row in rows).items())),
    }


def read_split(path: Path, limit: int | None = None):
    """(record, None) per line of a split file, or (None, reason) for a line that is not JSON; its first ``limit``."""
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    for line in lines[:limit] if limit else lines:
        try:
            yield json.loads(line), None
        except ValueError as error:
            yield None, f"unreadable JSON line: {error}"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def build_traces(data_dir, split: str, out, sampler, reward: VerifierReward, max_rounds: int = 3, attempts: int = 3,
                 limit: int | None = None, seed: int = 0, batch_size: int = 16, report: Path | None = None,
                 settings: dict | None = None) -> dict:
    """Search every question of ``split`` (its first ``limit``) not yet in ``out`` or its failures file; append the
    results a batch of ``batch_size`` questions at a time and rewrite the report after each. Returns the report."""
    from medr1.data.records import split_path
    from medr1.evaluation.evaluate import append_predictions, read_done

    if max_rounds < 0 or attempts < 1 or batch_size < 1:
        raise ValueError(f"--max-rounds must be >= 0, --attempts and --batch-size >= 1 (got {max_rounds}, "
                         f"{attempts}, {batch_size})")
    start = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    failed_path, report_path = side_paths(out, report)
    source = split_path(data_dir, split)
    valid, skipped, seen = [], [], set()
    for index, (record, reason) in enumerate(read_split(source, limit)):
        reason = reason or record_problem(record)
        if reason is None and record["question_id"] in seen:
            reason = "duplicate question_id"
        if reason is not None:
            skipped.append({"file": str(source), "question_id": record.get("question_id") if isinstance(record, dict)
                            else None, "index": index, "reason": reason})
            logger.warning("traces: skipped %s record %d (%s): %s", source, index, skipped[-1]["question_id"], reason)
            continue
        seen.add(record["question_id"])
        valid.append(record)
    done = {row["question_id"] for row in read_done(out) + read_done(failed_path)}
    pending = [r for r in valid if r["question_id"] not in done]
    resumed = len(valid) - len(pending)
    if resumed:
        logger.info("traces: %d of %d questions already in %s or %s; continuing", resumed, len(valid), out.name,
                    failed_path.name)

    def write_report() -> dict:
        rows = [r for r in read_done(out) if r["question_id"] in seen]
        failures = [r for r in read_done(failed_path) if r["question_id"] in seen]
        full = {"data_dir": str(data_dir), "split": split, "out": str(out), "failures": str(failed_path),
                "questions": len(valid), "resumed": resumed, **summarize(rows, failures, max_rounds),
                "records_skipped": len(skipped), "skipped": skipped,
                "this_run": {"questions": len(pending), "seconds": round(time.perf_counter() - start, 3),
                             "sampler": dict(sampler.counts), "verifier": dict(reward.counts),
                             "verifier_backend": dict(getattr(reward.backend, "counts", {}))},
                "settings": {"max_rounds": max_rounds, "attempts": attempts, "seed": seed, "limit": limit,
                             **(settings or {})}}
        _write_json(report_path, full)
        return full

    full = write_report()
    for first in range(0, len(pending), batch_size):
        searches = run_searches(pending[first:first + batch_size], sampler, reward, max_rounds, attempts, seed)
        append_predictions(out, [s.trace_row() for s in searches if s.outcome == "verified"])
        append_predictions(failed_path, [s.failure_row() for s in searches if s.outcome != "verified"])
        full = write_report()
        logger.info("traces: %d of %d questions done, %d verified %s, %d unverified, %d malformed",
                    full["questions_done"], len(valid), full["verified"], full["verified_at_round"],
                    full["unverified"], full["malformed"])
    return full


# ---- command ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medr1 traces", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare`")
    parser.add_argument("--split", required=True, help="e.g. dataset/huatuo-verifiable/train")
    parser.add_argument("--out", required=True, type=Path, help="JSONL of verified traces (appended, resumable)")
    parser.add_argument("--report", type=Path, help="report JSON (default: OUT.report.json)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", help="a local checkpoint to sample with (any AutoModelForCausalLM)")
    source.add_argument("--endpoint", help="an OpenAI-compatible base URL to sample from, e.g. http://localhost:8000/v1")
    parser.add_argument("--endpoint-model", help="the served model name (with --endpoint)")
    parser.add_argument("--endpoint-api-key-env", help="environment variable holding the endpoint's API key")
    parser.add_argument("--verifier", choices=VERIFIERS[1:], default="rule", help="the verifier backend")
    parser.add_argument("--verifier-model", help="classifier checkpoint, or the judge's served model name")
    parser.add_argument("--verifier-url", help="the judge's OpenAI-compatible base URL")
    parser.add_argument("--verifier-api-key-env", help="environment variable holding the judge's API key")
    parser.add_argument("--verifier-fallback", choices=FALLBACKS, default="none",
                        help="score with the rule verifier when the judge fails (counted)")
    parser.add_argument("--verifier-threshold", type=float, default=0.4, help="classifier: p(True) above it is correct")
    parser.add_argument("--verifier-device", help="classifier device (default: the first GPU, else the CPU)")
    parser.add_argument("--max-rounds", type=int, default=3, help="strategy rounds after a rejected first answer")
    parser.add_argument("--attempts", type=int, default=3, help="fresh starts for a question still unverified")
    parser.add_argument("--limit", type=int, help="only the split's first N questions")
    parser.add_argument("--seed", type=int, default=0, help="strategy choice and sampling seeds")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0: greedy, local)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="tokens per sampled turn")
    parser.add_argument("--batch-size", type=int, default=16, help="questions searched together (and per write)")
    parser.add_argument("--concurrency", type=int, default=8, help="endpoint and judge requests in flight")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per endpoint or judge request")
    parser.add_argument("--retries", type=int, default=2, help="retries of a failed endpoint or judge request")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("httpx", "httpx2"):  # the openai client's HTTP library logs every request at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.endpoint and not args.endpoint_model:
        parser.error("--endpoint needs --endpoint-model (the served model name)")
    try:
        settings = VerifierSettings(
            backend=args.verifier, model=args.verifier_model, url=args.verifier_url,
            api_key_env=args.verifier_api_key_env, fallback=args.verifier_fallback, threshold=args.verifier_threshold,
            concurrency=args.concurrency, timeout=args.timeout, retries=args.retries, device=args.verifier_device,
            batch_size=args.batch_size)
    except ValueError as error:
        parser.error(str(error).replace("verifier_", "--verifier-").replace("verifier:", "--verifier"))
    reward = VerifierReward(settings, style="huatuo")  # default values: verified = 1.0, rejected 0.1, malformed 0.0
    if args.endpoint:
        sampler = EndpointSampler(args.endpoint_model, args.endpoint, args.endpoint_api_key_env, args.max_new_tokens,
                                  args.temperature, args.top_p, args.concurrency, args.timeout, args.retries)
    else:
        sampler = LocalSampler(args.policy, args.max_new_tokens, args.temperature, args.top_p, args.batch_size)
    described = {"sampler": args.endpoint_model or args.policy, "endpoint": args.endpoint, "verifier": args.verifier,
                 "verifier_model": args.verifier_model, "temperature": args.temperature, "top_p": args.top_p,
                 "max_new_tokens": args.max_new_tokens}
    try:
        report = build_traces(args.data, args.split, args.out, sampler, reward, args.max_rounds, args.attempts,
                              args.limit, args.seed, args.batch_size, args.report, described)
    except (FileNotFoundError, ValueError, SamplerUnavailable, JudgeUnavailable, RuntimeError) as error:
        logger.error("traces failed: %s", error)
        return 1
    logger.info("traces: %d verified of %d questions (by round %s), %d unverified, %d malformed -> %s",
                report["verified"], report["questions"], report["verified_at_round"], report["unverified"],
                report["malformed"], args.out)
    return 0
