"""The one answer parser, shared by the training rewards and the evaluation.

Three modes (``MODES``):

``"robust"`` (default)
    Reads the chosen option letter from a completion as leniently as is safe; see
    :func:`parse_answer_letter` for the accepted grammar.
``"medr1-compat"``
    Exactly the released training accuracy reward (R1-V ``accuracy_reward``): the prediction is
    ``re.search(r"<answer>(.*?)</answer>", text)`` group 1 stripped, or the whole completion stripped when
    that finds nothing. The released regex has no DOTALL, so an answer span containing a newline is not
    found and the whole completion becomes the prediction. The released reward first tried math-verify's
    symbolic check; it extracts nothing from a letter (checked with math-verify 0.8), so it never changed
    a multiple-choice reward and is not reproduced.
``"medr1-compat-eval"``
    Exactly the released evaluation scripts: ``re.search(r"<answer>\\s*(\\w+)\\s*</answer>", text)``
    group 1, or None when there is no such tag.

Every function here is pure, linear-time in the input length and never raises on any input.
"""

from __future__ import annotations

import re
import string

__all__ = ["MODES", "answer_span", "is_correct", "parse_answer_letter"]

MODES = ("robust", "medr1-compat", "medr1-compat-eval")

_OPEN, _CLOSE = "<answer>", "</answer>"
_LETTERS = string.ascii_uppercase

# The released evaluation regex, verbatim. It cannot backtrack badly: \s and \w are disjoint.
_EVAL_RE = re.compile(r"<answer>\s*(\w+)\s*</answer>")

# An unclosed <answer> span is read up to the next structural tag or chat special token.
_SPAN_END_RE = re.compile(r"</?think>|<answer>|<\|")

# Robust grammar pieces. They run on whitespace-normalised text (single spaces only), so no
# quantifier can compete with another for a long run: matching is linear.
_PREFIX = (
    r"(?:(?:the|my|final|correct|right|best)\s)*"
    r"(?:answer|option|choice)"
    r"(?:\s(?:is|would\sbe|should\sbe|will\sbe))?"
    r"(?:\s?[:=]\s?|\s)"
    r"(?:(?:option|choice)\s?)?"
)
_CORE = r"(?:\((?P<p>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<l>[A-Za-z])(?![A-Za-z0-9'’]))"
_DELIM = r"(?P<d>\s?(?:[).:\]]|-(?=\s)|–|—))?"
_FORM_RE = re.compile(rf"(?P<pre>(?i:{_PREFIX}))?{_CORE}{_DELIM}")

# An explicit statement anywhere in the text: "answer is C", "Answer: (C)", "the correct option is C".
# A bare letter must be upper case here and followed by punctuation, the end, or a word that continues
# a sentence, so "the answer is A lesion ..." (article) is not read as a choice.
_EXPLICIT_RE = re.compile(
    r"(?i:\b(?:answer|option|choice)(?:\s(?:is|would\sbe|should\sbe|will\sbe)\s?:?|\s?[:=])\s?"
    r"(?:(?:option|choice)\s?)?)"
    r"(?:\((?P<p>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<l>[A-Z])(?![A-Za-z0-9'’]))"
    r"(?=\s?(?:$|[^\w\s])|\s(?i:because|since|as|which|given|due|based|with|from|so|for)\b)"
    # What follows, up to the end of the sentence, captured without consuming it (statements may overlap).
    r"(?=[\s).\]:,\-–—]*(?P<rest>[^;]{0,160}))"
)

# A second choice right after the first one: "A or B", "A, C", "A/B", "(A) (B)", "A B".
_SECOND_RE = re.compile(
    r"(?:(?:or|and|nor|vs\.?|versus)\s|[,/&;+]\s?)?[(\[]?([A-Za-z])(?:[)\].:,;]|\s(?:or|and)\b|$)",
    re.IGNORECASE,
)
# "C is correct", "(C) is the right answer": the rest confirms the letter.
_AFFIRM_RE = re.compile(
    r"\s?(?:is|seems|appears)\s(?:to\sbe\s)?(?:the\s)?(?:correct|right|best)\b", re.IGNORECASE
)
# Another letter marker such as "B)" or "(B)" anywhere in the rest.
_MARKER_RE = re.compile(r"(?<![A-Za-z0-9])[(\[]?([A-Z])[)\]]")


def answer_span(text: object) -> str | None:
    """The text inside the first ``<answer>...</answer>`` (newlines included), or None."""
    if not isinstance(text, str):
        return None
    start = text.find(_OPEN)
    if start < 0:
        return None
    end = text.find(_CLOSE, start + len(_OPEN))
    if end < 0:
        return None
    return text[start + len(_OPEN) : end]


def _released_train_span(text: str) -> str | None:
    """``re.search(r"<answer>(.*?)</answer>", text)`` group 1 (no DOTALL), in linear time.

    The regex itself is quadratic on a long line with many unclosed ``<answer>`` tags, so the same
    leftmost match is found with ``str.find``: the first opening tag whose next closing tag comes before
    the next newline.
    """
    n_open = len(_OPEN)
    start = text.find(_OPEN)
    close = newline = -2  # cached look-ups; only recomputed when they fall behind the search point
    while start >= 0:
        body = start + n_open
        if close != -1 and close < body:
            close = text.find(_CLOSE, body)
        if close == -1:
            return None
        if newline != -1 and newline < body:
            newline = text.find("\n", body)
        if newline == -1 or newline >= close:
            return text[body:close]
        start = text.find(_OPEN, newline + 1)
    return None


def _norm(text: str) -> str:
    """Case- and whitespace-insensitive key for comparing option texts."""
    return " ".join(text.split()).casefold().rstrip(".").strip()


def _clean(text: str) -> str:
    """Whitespace-normalised text without markdown emphasis or wrapping quotes."""
    text = " ".join(text.replace("**", " ").replace("__", " ").split())
    return text.strip("`'\"*“”‘’ ")


def _letter(match: re.Match) -> str:
    return (match.group("p") or match.group("b") or match.group("l")).upper()


def _judge(letter: str, rest: str, delimited: bool, valid: str, keys: list | None) -> str | None:
    """Accept ``letter`` given what follows it, or None.

    ``rest`` naming the letter's own option text confirms it; the text of another option contradicts it;
    a second letter makes the answer ambiguous; any other rest is a paraphrase, accepted only when the
    letter was clearly delimited (``C)``, ``(C)``, ``C.``, ``C:``).
    """
    if letter not in valid:
        return None
    rest = rest.strip()
    if not rest:
        return letter
    if keys is not None:
        key = _norm(rest.lstrip(",;-–— "))  # "C, X-Ray" names the text as well
        if keys[_LETTERS.index(letter)] == key:
            return letter
        if key in keys:
            return None
    second = _SECOND_RE.match(rest)
    if second is not None and second.group(1).upper() != letter or rest.upper() in ("OR", "AND"):
        return None
    if any(m.group(1) != letter for m in _MARKER_RE.finditer(rest)):
        return None
    return letter if delimited else None


def _robust(text: str, options) -> str | None:
    try:  # any sequence of option texts (list, tuple, numpy array); anything else counts as no options
        options = None if options is None or isinstance(options, (str, bytes)) else list(options)
    except TypeError:
        options = None
    if options:
        valid = _LETTERS[: len(options)]
        keys = [_norm(o) if isinstance(o, str) else None for o in options[: len(valid)]]
    else:
        valid, keys = _LETTERS, None

    start = text.find(_OPEN)
    tagged = start >= 0
    if tagged:
        body = start + len(_OPEN)
        end = text.find(_CLOSE, body)
        if end < 0:  # unclosed tag: read to the next tag or special token
            stop = _SPAN_END_RE.search(text, body)
            end = stop.start() if stop else len(text)
        raw = text[body:end]
    else:
        # Without tags, what follows a closed reasoning block is the answer, and a stray closing tag ends it.
        raw = text
        think_end = raw.rfind("</think>")
        if think_end >= 0 and raw[think_end + len("</think>") :].strip():
            raw = raw[think_end + len("</think>") :]
        close = raw.find(_CLOSE)
        if close >= 0:
            raw = raw[:close]

    cand = _clean(raw)
    if not cand:
        return None

    # 1. The exact text of one option (a bare letter is always read as a letter, below).
    if keys is not None and len(cand.strip("()[]")) > 1:
        key = _norm(cand)
        hits = {letter for letter, k in zip(valid, keys) if k == key}
        if len(hits) == 1:
            return hits.pop()
        if hits:
            return None

    # 2. The whole answer is a choice: [prefix] letter [delimiter] [rest].
    form = _FORM_RE.match(cand)
    if form is not None:
        rest = cand[form.end() :]
        delimited = bool(form.group("d") or form.group("p") or form.group("b") or _AFFIRM_RE.match(rest))
        if not tagged:
            # Free text must look like a choice: one short line, not a sentence that starts with "A".
            delimited = delimited and "\n" not in raw.strip() and len(cand) <= 300
        got = _judge(_letter(form), rest, delimited, valid, keys)
        if got is not None:
            # A paraphrase must not go on to state another letter ("C. The answer is B").
            stated = _stated(rest, valid, keys) if rest.strip() else set()
            return got if stated <= {got} else None

    # 3. Explicit statements anywhere ("... so the answer is C."); they must all agree.
    stated = _stated(cand, valid, keys)
    return stated.pop() if len(stated) == 1 else None


def _stated(text: str, valid: str, keys: list | None) -> set[str]:
    """The letters of all acceptable explicit statements ("answer is C") in ``text``."""
    found: set[str] = set()
    seen: set[tuple[str, str]] = set()  # repeated statements are judged once (keeps spam inputs fast)
    for m in _EXPLICIT_RE.finditer(text):
        rest = m.group("rest").split(". ", 1)[0]  # the statement ends with its sentence
        letter = _letter(m)
        if (letter, rest) in seen:
            continue
        seen.add((letter, rest))
        got = _judge(letter, rest, True, valid, keys)
        if got is not None:
            found.add(got)
            if len(found) > 1:
                break
    return found


def parse_answer_letter(text: str, options: list[str] | None = None, mode: str = "robust") -> str | None:
    """The option letter a completion chose, or None when no single choice can be read.

    ``mode="robust"`` grammar. The candidate is the first ``<answer>...</answer>`` span; an unclosed
    ``<answer>`` reads up to the next ``<think>``/``</think>``/``<answer>``/``<|`` or the end; without any
    ``<answer>`` it is the whole text (or what follows a closed ``</think>``, up to a stray ``</answer>``).
    Whitespace is collapsed and ``**``/quotes/backticks around it are dropped. Then, in order:

    1. the exact text of one option (case-, whitespace- and trailing-period-insensitive) -> its letter;
    2. ``[prefix] LETTER [delim] [rest]`` as the whole candidate, where prefix is e.g. ``Answer:``,
       ``The answer is``, ``The correct answer is option``, ``Option``, ``Choice``; LETTER is ``C``, ``c``,
       ``(C)`` or ``[C]``; delim is ``)``, ``.``, ``:``, ``]`` or a spaced dash. So ``C``, ``c``, ``(C)``,
       ``C)``, ``C) CT``, ``C)CT``, ``C. CT``, ``C: CT``, ``Answer: C``, ``The answer is C``, ``option C``.
       ``rest`` may be empty, the letter's own option text, or (only after a delimiter, or as in
       ``C is correct``) a paraphrase;
    3. explicit statements anywhere: ``answer is C``, ``answer: C``, ``correct option is (C)``, where a
       bare letter is upper case and followed by punctuation, the end or a linking word (``because``,
       ``since``, ...); all such statements must name the same letter, and a form-2 paraphrase must not
       state another one.

    Rejected (None): letters beyond ``len(options)``; two letters (``A or B``, ``A, C``, ``A/B``);
    a letter with another option's text (``B) <text of C>``); a free-text sentence such as
    ``A lesion is seen in the liver`` (the article "A"); in tag-free text a paraphrase over several lines.

    ``mode="medr1-compat"`` returns the released training reward's prediction string as-is (``"C) CT"``
    stays ``"C) CT"``); ``mode="medr1-compat-eval"`` returns the released evaluation regex's word or None.
    A non-str ``text`` gives None; an unknown ``mode`` raises ValueError (a configuration error).
    """
    if not isinstance(text, str):
        return None
    if mode == "robust":
        return _robust(text, options)
    if mode == "medr1-compat":
        span = _released_train_span(text)
        return (span if span is not None else text).strip()
    if mode == "medr1-compat-eval":
        match = _EVAL_RE.search(text)
        return match.group(1) if match else None
    raise ValueError(f"unknown answer mode {mode!r}; expected one of {MODES}")


def _gold(answer_letter: object, mode: str) -> str | None:
    """The gold letter; a released ``solution`` string (``<answer> C </answer>``) is accepted too."""
    if not isinstance(answer_letter, str):
        return None
    if mode == "medr1-compat-eval":
        match = _EVAL_RE.search(answer_letter)
        return match.group(1) if match else answer_letter.strip()
    span = _released_train_span(answer_letter)
    gold = (span if span is not None else answer_letter).strip()
    return gold.upper() if mode == "robust" else gold


def is_correct(text: str, answer_letter: str, options: list[str] | None = None, mode: str = "robust") -> bool:
    """Whether ``text`` chose ``answer_letter``; compat modes compare stripped strings, as released."""
    gold = _gold(answer_letter, mode)
    pred = parse_answer_letter(text, options, mode)
    return gold is not None and pred is not None and pred == gold
