"""Verifier rewards: is a free-text answer right? For open-ended questions (HuatuoGPT-o1's verifiable
problems: ``options: []`` and the reference answer text), and for multiple choice (the reference is then
the gold option: its letter and text).

One reward function, :class:`VerifierReward` (logged as ``verifier_reward``), with three backends chosen in the
recipe (``verifier: rule | classifier | judge``; ``medr1/train/configs.py``):

``rule``
    Offline pure functions (:func:`rule_verdict`): normalised exact match, the gold option's letter or text,
    numbers with units (``5 mg`` = ``5mg`` = ``0.005 g``).
``classifier``
    A sequence-classification checkpoint with HuatuoGPT-o1's verifier interface (``medical_o1_verifier_3B``):
    :func:`classifier_input` holds the final response and the reference; ``softmax(logits)[1] > threshold``
    is correct. Batched, on its own device (``verifier_device``).
``judge``
    A generative model behind an OpenAI-compatible chat endpoint (a vLLM or SGLang server, or any provider),
    asked :func:`judge_messages` and read by :func:`parse_verdict`; bounded concurrency, a timeout and
    retries per request, and a cache of judgements keyed by (response, reference). A judge that cannot be
    reached raises :class:`JudgeUnavailable` (never a silent zero), unless the recipe falls back to the rule
    verifier (``verifier_fallback: rule``), which is counted (``verifier/fallbacks``) and logged.

Reward values (``verifier_rewards``, HuatuoGPT-o1's by default): correct 1.0, incorrect 0.1, malformed 0.0 (no
final response: the style's format is broken). The final response is the text after ``## Final Response\\n\\n``
in the ``huatuo`` style, else the ``<answer>`` span.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
import unicodedata
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

from medr1.rewards.answers import answer_span, huatuo_final_response, parse_answer_letter
from medr1.rewards.functions import _row, completion_text

__all__ = ["FALLBACKS", "VERIFIERS", "ClassifierVerifier", "Item", "JudgeUnavailable", "JudgeVerifier",
           "RewardValues", "RuleVerifier", "VerifierReward", "VerifierSettings", "build_backend", "classifier_input",
           "final_response", "judge_messages", "normalize_answer", "parse_quantity", "parse_verdict", "reference_text",
           "rule_verdict", "verifier_reward"]

logger = logging.getLogger(__name__)

VERIFIERS = ("none", "rule", "classifier", "judge")
FALLBACKS = ("none", "rule")
_LETTERS = "ABCDEFGHIJ"


class JudgeUnavailable(RuntimeError):
    """The judge endpoint did not answer (connection refused, timeouts, server errors) after every retry."""


# ---- settings -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RewardValues:
    correct: float = 1.0
    incorrect: float = 0.1
    malformed: float = 0.0

    @classmethod
    def parse(cls, text: str) -> RewardValues:
        """``"correct,incorrect,malformed"``, e.g. ``"1.0,0.1,0.0"``."""
        try:
            values = [float(part) for part in str(text).split(",")]
        except ValueError:
            values = []
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"verifier_rewards must be three numbers 'correct,incorrect,malformed', not {text!r}")
        return cls(*values)


@dataclass(frozen=True)
class VerifierSettings:
    """The recipe's ``verifier*`` fields (``MedR1Arguments``), checked."""

    backend: str = "rule"
    model: str | None = None
    url: str | None = None
    api_key_env: str | None = None
    fallback: str = "none"
    rewards: str = "1.0,0.1,0.0"
    threshold: float = 0.4
    concurrency: int = 8
    timeout: float = 60.0
    retries: int = 2
    max_tokens: int = 16
    device: str | None = None
    batch_size: int = 16

    def __post_init__(self):
        if self.backend not in VERIFIERS[1:]:
            raise ValueError(f"verifier must be one of {VERIFIERS}, not {self.backend!r}")
        if self.fallback not in FALLBACKS:
            raise ValueError(f"verifier_fallback must be one of {FALLBACKS}, not {self.fallback!r}")
        if self.fallback != "none" and self.backend != "judge":
            raise ValueError("verifier_fallback applies to the judge only (verifier: judge)")
        if self.backend in ("classifier", "judge") and not self.model:
            raise ValueError(f"verifier: {self.backend} needs verifier_model (a checkpoint or the served model name)")
        if self.backend == "judge" and not self.url:
            raise ValueError("verifier: judge needs verifier_url, the OpenAI-compatible endpoint "
                             "(e.g. http://localhost:8000/v1)")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"verifier_threshold must lie in [0, 1], not {self.threshold}")
        for name in ("concurrency", "max_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"verifier_{name} must be at least 1, not {getattr(self, name)}")
        if self.retries < 0 or self.timeout <= 0:
            raise ValueError("verifier_retries must be >= 0 and verifier_timeout > 0")
        RewardValues.parse(self.rewards)

    @classmethod
    def from_args(cls, args) -> VerifierSettings:
        """From a recipe: ``verifier`` is the backend, ``verifier_<name>`` each other field."""
        values = {f.name: getattr(args, f"verifier_{f.name}") for f in fields(cls)
                  if f.name != "backend" and hasattr(args, f"verifier_{f.name}")}
        return cls(backend=args.verifier, **values)


# ---- pure rules ---------------------------------------------------------------------------------

def final_response(text: object, style: str) -> str | None:
    """The answer part of a completion: HuatuoGPT-o1's final response (``huatuo``), else the ``<answer>`` span;
    None when the completion has none (malformed)."""
    if style == "huatuo":
        return huatuo_final_response(text)
    span = answer_span(text)
    return None if span is None else span.strip()


def reference_text(answer: str, options) -> str:
    """What a model verifier compares against: the reference text, or for multiple choice ``C. <option text>``."""
    options = list(options or [])
    letter = answer.strip().upper() if isinstance(answer, str) else ""
    if options and len(letter) == 1 and letter in _LETTERS[: len(options)]:
        return f"{letter}. {options[_LETTERS.index(letter)]}"
    return str(answer)


# "The final answer is", "Answer:", "the correct answer:" before the answer itself.
_ANSWER_PHRASE_RE = re.compile(r"^(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is\b\s*:?|:)\s*", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|[^\W_]+|%")
_ARTICLES = frozenset({"a", "an", "the"})


def normalize_answer(text: str) -> str:
    """Case-, punctuation- and article-insensitive form: ``"The answer is: **Iron-deficiency anaemia.**"`` ->
    ``"iron deficiency anaemia"``; ``"1,000 mg"`` -> ``"1000 mg"``."""
    text = unicodedata.normalize("NFKC", text).replace("**", " ").strip().strip("`'\"*“”‘’ ")
    text = _THOUSANDS_RE.sub("", _ANSWER_PHRASE_RE.sub("", text))
    return " ".join(t for t in _TOKEN_RE.findall(text.casefold()) if t not in _ARTICLES)


# unit -> (dimension, factor to the dimension's base unit); spelled-out names map onto these below.
_UNITS = {
    "mcg": ("mass", 1e-6), "ug": ("mass", 1e-6), "µg": ("mass", 1e-6), "mg": ("mass", 1e-3), "g": ("mass", 1.0),
    "kg": ("mass", 1e3), "ml": ("volume", 1e-3), "dl": ("volume", 1e-1), "l": ("volume", 1.0),
    "mm": ("length", 1e-3), "cm": ("length", 1e-2), "m": ("length", 1.0), "%": ("percent", 1.0),
    "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0), "d": ("time", 86400.0),
    "wk": ("time", 604800.0), "mmhg": ("pressure", 1.0), "bpm": ("rate", 1.0),
    "mg/dl": ("concentration", 1e-2), "g/dl": ("concentration", 10.0), "g/l": ("concentration", 1.0),
    "mg/l": ("concentration", 1e-3), "mmol/l": ("molarity", 1e-3), "mol/l": ("molarity", 1.0),
    "meq/l": ("equivalents", 1e-3), "iu": ("units", 1.0), "u": ("units", 1.0),
}
_UNIT_NAMES = {
    "microgram": "mcg", "milligram": "mg", "gram": "g", "kilogram": "kg", "milliliter": "ml", "millilitre": "ml",
    "deciliter": "dl", "decilitre": "dl", "liter": "l", "litre": "l", "millimeter": "mm", "millimetre": "mm",
    "centimeter": "cm", "centimetre": "cm", "meter": "m", "metre": "m", "percent": "%", "second": "s",
    "sec": "s", "min": "min", "minute": "min", "hour": "h", "hr": "h", "day": "d", "week": "wk", "wk": "wk",
    "unit": "u", "beats/min": "bpm",
}
_QUANTITY_RE = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*([^\W\d_][\w/%]*|%)?\.?")


def _unit_key(unit: str) -> str:
    """A unit's key in `_UNITS`: case-folded, a name or plural name mapped to its symbol (``milligrams`` -> mg)."""
    unit = unit.casefold().replace("μ", "µ")  # NFKC turns the micro sign into the Greek mu
    if unit in _UNIT_NAMES:
        return _UNIT_NAMES[unit]
    return _UNIT_NAMES.get(unit[:-1], unit) if unit.endswith("s") else unit


def parse_quantity(text: str) -> tuple[float, str] | None:
    """``(value in the unit's base, dimension or unit)`` when the whole answer is a number with an optional unit
    (``"5 mg"``, ``"0.005 g"``, ``"12%"``, ``"120 mmHg"``); None otherwise. Unknown units compare as written."""
    text = _THOUSANDS_RE.sub("", _ANSWER_PHRASE_RE.sub("", unicodedata.normalize("NFKC", text).strip()))
    match = _QUANTITY_RE.fullmatch(text.strip().rstrip("."))
    if match is None:
        return None
    value, unit = float(match.group(1)), _unit_key(match.group(2) or "")
    dimension, factor = _UNITS.get(unit, (unit, 1.0))
    return value * factor, dimension


def _same_quantity(a: tuple[float, str], b: tuple[float, str]) -> bool:
    return a[1] == b[1] and math.isclose(a[0], b[0], rel_tol=1e-6, abs_tol=1e-12)


def _gold_letter(answer: str, options: list) -> str | None:
    """The gold option's letter: the answer itself when it is one, else the option whose text it is."""
    valid = _LETTERS[: len(options)]
    letter = answer.strip().upper()
    if len(letter) == 1 and letter in valid:
        return letter
    key = normalize_answer(answer)
    hits = [v for v, option in zip(valid, options) if isinstance(option, str) and normalize_answer(option) == key]
    return hits[0] if len(hits) == 1 else None


def rule_verdict(response: str, answer: str, options=None) -> bool:
    """Whether ``response`` (a final response) gives the reference ``answer``.

    Multiple choice (``options``): the letter read from the response (``medr1.rewards.answers.parse_answer_letter``,
    which also maps an option's exact text to its letter) is the gold letter (``answer``, or the option whose text
    ``answer`` is). Open-ended: the normalised texts are equal (:func:`normalize_answer`), or both are numbers with
    units that are equal after unit conversion (:func:`parse_quantity`).
    """
    if not isinstance(response, str) or not isinstance(answer, str):
        return False
    options = list(options) if options is not None and not isinstance(options, str) else []
    if options:
        gold = _gold_letter(answer, options)
        if gold is not None:
            return parse_answer_letter(response, options) == gold
    if normalize_answer(response) == normalize_answer(answer) != "":
        return True
    got, want = parse_quantity(response), parse_quantity(answer)
    return got is not None and want is not None and _same_quantity(got, want)


def classifier_input(response: str, reference: str, eos: str) -> str:
    """HuatuoGPT-o1's verifier input, exactly (no question; the tokenizer's EOS token at the end)."""
    return (
        f"<Model Response>\n{response}\n</Model Response>\n\n<Reference Answer>\n{reference}\n</Reference Answer>\n\n"
        "Your task is to evaluate the model response by comparing it to the reference answer. If the model "
        'response is correct and aligns with the reference answer, output "True" . If it is incorrect or fails to '
        f'select the correct option (if options are provided), output "False" . {eos}'
    )


def judge_messages(response: str, reference: str) -> list[dict]:
    """The judge's one user turn: the two blocks, then a request for a one-word True/False verdict."""
    return [{"role": "user", "content": (
        f"<Model Response>\n{response}\n</Model Response>\n\n<Reference Answer>\n{reference}\n</Reference Answer>\n\n"
        "You are checking an answer to a medical question. If the model response is correct and agrees with the "
        "reference answer (for a multiple-choice question: it selects the reference option), output True. "
        "Otherwise output False. Output only the one word True or False."
    )}]


_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)
_VERDICT_RE = re.compile(r"\b(true|false)\b", re.IGNORECASE)


def parse_verdict(reply: object) -> bool | None:
    """The judge's verdict: the first word ``true`` or ``false`` (any case) after any ``<think>`` block;
    None when there is neither."""
    if not isinstance(reply, str):
        return None
    match = _VERDICT_RE.search(_THINK_BLOCK_RE.sub(" ", reply))
    return None if match is None else match.group(1).lower() == "true"


# ---- backends -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One completion to verify: its final response and the record's gold answer and options."""

    response: str
    answer: str
    options: tuple = ()

    @property
    def reference(self) -> str:
        return reference_text(self.answer, self.options)


class RuleVerifier:
    counts: Counter

    def __init__(self):
        self.counts = Counter()

    def verify(self, items: list[Item]) -> list[bool | None]:
        return [rule_verdict(item.response, item.answer, item.options) for item in items]


class ClassifierVerifier:
    """HuatuoGPT-o1's verifier interface on a sequence-classification checkpoint, loaded on first use."""

    MAX_TOKENS = 4000  # HuatuoGPT-o1 truncates the verifier input here (at the end)

    def __init__(self, model: str, threshold: float = 0.4, device: str | None = None, batch_size: int = 16):
        self.model_path, self.threshold, self.device, self.batch_size = model, threshold, device, batch_size
        self.counts = Counter()
        self._model = self._tokenizer = None

    def __getstate__(self):  # picklable for TRL's rollout worker: the weights are loaded again there
        return {**self.__dict__, "_model": None, "_tokenizer": None}

    def _load(self):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        device = self.device or (f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self._tokenizer.padding_side = "right"  # the score is read at the last real token; positions stay 0..n
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        model = AutoModelForSequenceClassification.from_pretrained(self.model_path, dtype=dtype)
        if model.config.num_labels != 2:
            raise ValueError(f"verifier_model {self.model_path}: a two-label classifier is needed (False, True), "
                             f"it has {model.config.num_labels} labels")
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self._tokenizer.pad_token_id
        self._model = model.to(device).eval()
        logger.info("verifier classifier %s on %s", self.model_path, device)

    def scores(self, items: list[Item]) -> list[float]:
        """p(True) = softmax(logits)[1] for each item, in batches of ``batch_size``."""
        import torch

        if self._model is None:
            self._load()
        eos = self._tokenizer.eos_token or ""
        texts = [classifier_input(item.response, item.reference, eos) for item in items]
        limit = min(self.MAX_TOKENS, getattr(self._model.config, "max_position_embeddings", None) or self.MAX_TOKENS)
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer(texts[start:start + self.batch_size], add_special_tokens=False, truncation=True,
                                    max_length=limit, padding=True, return_tensors="pt")
            with torch.inference_mode():
                logits = self._model(input_ids=batch["input_ids"].to(self._model.device),
                                     attention_mask=batch["attention_mask"].to(self._model.device)).logits
            out += logits.float().softmax(-1)[:, 1].tolist()
            self.counts["batches"] += 1
        return out

    def verify(self, items: list[Item]) -> list[bool | None]:
        return [p > self.threshold for p in self.scores(items)]


class JudgeVerifier:
    """A judge model behind an OpenAI-compatible chat endpoint, through the `openai` client.

    Requests run ``concurrency`` at a time; each gets ``timeout`` seconds and ``retries`` more attempts on a
    connection error, timeout, rate limit or server error (then the item counts as failed). Another HTTP error
    (a wrong model name, a bad key) raises at once. Verdicts are cached by (response, reference).
    """

    RETRY_BACKOFF = 0.5  # seconds before the first retry, doubling after each

    def __init__(self, model: str, url: str, api_key_env: str | None = None, concurrency: int = 8,
                 timeout: float = 60.0, retries: int = 2, max_tokens: int = 16, cache_size: int = 200_000):
        self.model, self.url, self.api_key_env = model, url, api_key_env
        self.concurrency, self.timeout, self.retries, self.max_tokens = concurrency, timeout, retries, max_tokens
        self.cache_size = cache_size
        self.counts = Counter()
        self.last_error: Exception | None = None
        self._cache: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._client = None

    def __getstate__(self):
        return {**self.__dict__, "_client": None, "_lock": None, "_cache": OrderedDict()}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _api_key(self) -> str:
        if not self.api_key_env:
            return "EMPTY"  # local vLLM/SGLang servers take any key
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(f"verifier_api_key_env names {self.api_key_env!r}, which is not set in the environment")
        return key

    def client(self):
        if self._client is None:
            try:
                import openai
            except ImportError as error:
                raise ImportError("verifier: judge needs the openai client: pip install openai") from error
            self._client = openai.OpenAI(base_url=self.url, api_key=self._api_key(), timeout=self.timeout,
                                         max_retries=0)
        return self._client

    def ask(self, response: str, reference: str) -> bool | None:
        """One judgement (None: a reply with no verdict); JudgeUnavailable when every attempt failed."""
        import openai

        transient = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.RETRY_BACKOFF * 2 ** (attempt - 1))
                self._count("retries")
            self._count("requests")
            try:
                reply = self.client().chat.completions.create(
                    model=self.model, messages=judge_messages(response, reference), temperature=0.0,
                    max_tokens=self.max_tokens)
            except transient as error:  # APITimeoutError is an APIConnectionError
                self.last_error = error
                continue
            except openai.APIStatusError as error:
                raise RuntimeError(f"verifier judge {self.model!r} at {self.url} refused the request: "
                                   f"{error}") from error
            verdict = parse_verdict(reply.choices[0].message.content if reply.choices else None)
            if verdict is None:
                self._count("unparsed")
                logger.warning("verifier judge gave no True/False verdict: %r", reply.choices[0].message.content
                               if reply.choices else reply)
            return verdict
        raise JudgeUnavailable(f"verifier judge {self.model!r} at {self.url} did not answer after {self.retries + 1} "
                               f"attempt(s) of {self.timeout:g} s: {type(self.last_error).__name__}: {self.last_error}")

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def _judge_or_fail(self, key: tuple[str, str]):
        try:
            return self.ask(*key)
        except JudgeUnavailable as error:
            return error

    def verify(self, items: list[Item]) -> list[bool | None | JudgeUnavailable]:
        """Each item's verdict; a JudgeUnavailable in place of the items the judge never answered. Repeated pairs
        (in this batch or since the start) are asked once."""
        keys = [(item.response, item.reference) for item in items]
        with self._lock:
            known = {key: self._cache[key] for key in keys if key in self._cache}
        todo = list(dict.fromkeys(key for key in keys if key not in known))
        self._count("cache_hits", len(keys) - len(todo))
        if todo:
            self.client()  # once, before the threads
            with ThreadPoolExecutor(min(self.concurrency, len(todo))) as pool:
                answers = dict(zip(todo, pool.map(self._judge_or_fail, todo)))
            with self._lock:
                for key, verdict in answers.items():
                    if not isinstance(verdict, JudgeUnavailable):
                        self._cache[key] = verdict
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            known.update(answers)
        return [known[key] for key in keys]


def build_backend(settings: VerifierSettings):
    if settings.backend == "rule":
        return RuleVerifier()
    if settings.backend == "classifier":
        return ClassifierVerifier(settings.model, settings.threshold, settings.device, settings.batch_size)
    return JudgeVerifier(settings.model, settings.url, settings.api_key_env, settings.concurrency, settings.timeout,
                         settings.retries, settings.max_tokens)


# ---- the reward function ------------------------------------------------------------------------

class VerifierReward:
    """``verifier_reward(completions, answer, options, ...)`` for TRL's GRPOTrainer: per completion, the final
    response (``style``) is verified against the record's ``answer`` (with its ``options``, if any).

    Logs through TRL's ``log_metric``: ``verifier/malformed`` (share of completions without a final response),
    ``verifier/fallbacks`` (judge items scored by the rule verifier instead), and the judge's
    ``verifier/cache_hits``. ``counts`` keeps the totals since the start.
    """

    __name__ = "verifier_reward"

    def __init__(self, settings: VerifierSettings, style: str = "huatuo", backend=None):
        self.settings, self.style = settings, style
        self.values = RewardValues.parse(settings.rewards)
        self.backend = backend or build_backend(settings)
        self.counts = Counter()

    def __repr__(self) -> str:
        return f"<verifier_reward({self.settings.backend}, style={self.style!r}, values={self.values})>"

    def _verdicts(self, items: list[Item]) -> list[bool]:
        verdicts = self.backend.verify(items)
        failed = [i for i, v in enumerate(verdicts) if isinstance(v, JudgeUnavailable)]
        if failed:
            if self.settings.fallback != "rule":
                raise verdicts[failed[0]]
            logger.warning("verifier: the judge failed on %d of %d items (%s); scored by the rule verifier",
                           len(failed), len(items), verdicts[failed[0]])
            for i in failed:
                verdicts[i] = rule_verdict(items[i].response, items[i].answer, items[i].options)
            self.counts["fallbacks"] += len(failed)
        self.counts["unparsed"] += sum(v is None for v in verdicts)
        return [bool(v) for v in verdicts]

    def __call__(self, completions, answer=None, options=None, log_metric=None, **kwargs) -> list[float]:
        if answer is None:
            raise ValueError("verifier_reward needs the dataset's `answer` column (the reference answer)")
        rewards: list[float | None] = [self.values.malformed] * len(completions)
        items, where = [], []
        for i, completion in enumerate(completions):
            response = final_response(completion_text(completion), self.style)
            gold = _row(answer, i)
            if response is None or not isinstance(gold, str):
                continue
            opts = _row(options, i)
            items.append(Item(response, gold, tuple(opts) if opts is not None and not isinstance(opts, str) else ()))
            where.append(i)
        before = Counter(self.counts)
        hits_before = getattr(self.backend, "counts", Counter())["cache_hits"]
        for i, verdict in zip(where, self._verdicts(items) if items else [], strict=True):
            rewards[i] = self.values.correct if verdict else self.values.incorrect
        self.counts["malformed"] += len(completions) - len(items)
        self.counts["scored"] += len(items)
        if log_metric is not None and completions:
            log_metric("verifier/malformed", (len(completions) - len(items)) / len(completions))
            log_metric("verifier/fallbacks", float(self.counts["fallbacks"] - before["fallbacks"]))
            if isinstance(self.backend, JudgeVerifier):
                log_metric("verifier/cache_hits", float(self.backend.counts["cache_hits"] - hits_before))
        return rewards


def verifier_reward(settings: VerifierSettings, style: str = "huatuo") -> VerifierReward:
    """The verifier reward of a recipe; ValueError on a bad setting (checked now, not at the first step)."""
    from medr1.data.prompts import get_style

    get_style(style)
    return VerifierReward(settings, style)
