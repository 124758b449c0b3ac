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

Two more scoring conventions, used only to score evaluations (``JUDGES``; not training-reward modes):

``"medevalkit"`` (:func:`medevalkit_choice`)
    MedEvalKit's multiple-choice judge as documented: the ``<answer>`` text (else the whole output), then
    an answer phrase, a bare letter, an option's text contained in it, and at last the most similar
    option, so every output with options gets a letter.
``"omnimedvqa"`` (:func:`omnimedvqa_choice`)
    OmniMedVQA's question-answering score: the option whose text is most similar to the raw output
    (``difflib.SequenceMatcher`` ratio); correct when that option's text is the gold option's text.
``"huatuo"`` (:func:`huatuo_choice`)
    HuatuoGPT-o1's evaluation: the final response, then ``answer is X``, a delimited bare letter, an
    option's text, the most similar option (up to ten options, A-J).

HuatuoGPT-o1's response format ``## Thinking\\n\\n...\\n\\n## Final Response\\n\\n...`` is read by
:func:`huatuo_is_well_formed` and :func:`huatuo_final_response`.

Every function here is pure, linear-time in the input length and never raises on any input.
"""

from __future__ import annotations

import difflib
import re
import string

__all__ = ["HUATUO_FINAL", "HUATUO_THINKING", "JUDGES", "MODES", "answer_span", "huatuo_choice",
           "huatuo_final_response", "huatuo_is_well_formed", "is_correct", "medevalkit_choice", "omnimedvqa_choice",
           "parse_answer_letter"]

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


# ---- evaluation-only judges: other papers' scoring conventions ---------------------------------

# Similarity is measured on at most this many characters of an output (a 256-token output has about
# 1,000), which bounds difflib's cost on adversarial inputs without changing any real score.
_SIMILARITY_CHARS = 4000
# "the answer is", "answer:", "Answer is:", "final answer: " (the phrase only; what follows is read apart).
_MEK_PHRASE_RE = re.compile(r"\banswer\s*(?:is(?!\w)\s*:?|:)[ \t]*", re.IGNORECASE)
# A letter at the start of a text: "C", "(C)", "[c]", "C.", "C)" ...; group 2 is what closes it.
_MEK_LETTER_RE = re.compile(r"[(\[]?([A-Za-z])([)\]]|[.:,;!?](?!\w)|(?=\s|$))")
# The whole candidate is a letter ("B", "(b)", "B."), or the option echoed as the prompt lists it ("B. MRI").
_MEK_BARE_RE = re.compile(r"[(\[]?([A-Za-z])[)\].:]?$|(?:\(([A-Za-z])\)|\[([A-Za-z])\]|([A-Za-z])[.):])\s")


def _option_texts(options) -> list[str] | None:
    """Options as a list of texts (non-text entries as ""), or None when there are none to choose from."""
    try:
        options = None if options is None or isinstance(options, (str, bytes)) else list(options)
    except TypeError:
        return None
    if not options or len(options) > len(_LETTERS):
        return None
    return [o if isinstance(o, str) else "" for o in options]


def _leading_letter(text: str, valid: str) -> str | None:
    """The option letter ``text`` starts with, or None.

    Upper case: ``C``, ``C.``, ``(C)``, ``C)``, ``C rest`` all count. Lower case only when closed by a
    bracket or punctuation or standing alone, so the article in ``a lesion`` is not read as option A.
    """
    match = _MEK_LETTER_RE.match(text)
    if match is None:
        return None
    letter, closer = match.group(1), match.group(2)
    if letter.islower() and not closer and text[match.end():].strip():
        return None
    letter = letter.upper()
    return letter if letter in valid else None


def _most_similar(text: str, options: list[str], fold: bool) -> str:
    """The letter of the option most similar to ``text`` by SequenceMatcher ratio (the first on ties)."""
    text = text[:_SIMILARITY_CHARS]
    if fold:
        text, options = text.casefold(), [o.casefold() for o in options]
    scores = [difflib.SequenceMatcher(None, text, option).ratio() for option in options]
    return _LETTERS[scores.index(max(scores))]


def _contained_option(text: str, options: list[str]) -> str | None:
    """The letter of the longest option text found in ``text`` as a whole phrase (case-insensitive).

    Whole phrase: not inside a longer word, so option ``CT`` is not found in ``OCT``. Equally long hits
    go to the earlier option.
    """
    folded = text.casefold()
    best, best_len = None, 0
    for letter, option in zip(_LETTERS, options):
        key = " ".join(option.split()).casefold()
        if len(key) <= best_len:
            continue
        if re.search(rf"(?<!\w){re.escape(key)}(?!\w)", folded):
            best, best_len = letter, len(key)
    return best


def medevalkit_choice(text: str, options) -> str | None:
    """MedEvalKit's multiple-choice judge (for OmniMedVQA and the other closed benchmarks) as documented.

    The candidate is the first ``<answer>...</answer>`` span, else the whole output. Then, in order:

    1. answer phrase: after the last ``answer is`` / ``answer:``, a letter (``the answer is (B)``) is the
       choice; any other text there (``the answer is MRI.``) becomes the candidate for the rules below;
    2. a bare option letter: ``B``, ``(b)``, ``B.``, or the option echoed as written ``B. MRI``;
    3. the longest option text contained in the candidate as a whole phrase (``it is an MRI scan``);
    4. the option most similar to the candidate (SequenceMatcher ratio, case-insensitive; the first on
       ties), so every output gets a letter as long as there are options.

    None only for non-text output or no options. Letters beyond the options are never chosen.
    """
    options = _option_texts(options)
    if not isinstance(text, str) or options is None:
        return None
    valid = _LETTERS[: len(options)]
    span = answer_span(text)
    cand = text if span is None else span
    phrase = None
    for phrase in _MEK_PHRASE_RE.finditer(cand):
        pass
    if phrase is not None:
        rest = cand[phrase.end():].split("\n", 1)[0]
        letter = _leading_letter(_clean(rest), valid)
        if letter is not None:
            return letter
        if _clean(rest).rstrip(".!"):
            cand = rest
    cand = _clean(cand)
    bare = _MEK_BARE_RE.match(cand)
    if bare is not None:
        letter = next(g for g in bare.groups() if g).upper()
        if letter in valid:
            return letter
    return _contained_option(cand, options) or _most_similar(cand, options, fold=True)


def omnimedvqa_choice(text: str, options) -> str | None:
    """OmniMedVQA's question-answering score: the letter of the option whose text is most similar to the
    raw output by ``difflib.SequenceMatcher(None, output, option).ratio()`` (case-sensitive, nothing
    stripped; the first option on ties). None only for non-text output or no options."""
    options = _option_texts(options)
    if not isinstance(text, str) or options is None:
        return None
    return _most_similar(text, options, fold=False)


# ---- HuatuoGPT-o1: its response format and its multiple-choice extraction ----------------------

HUATUO_THINKING = "## Thinking"
HUATUO_FINAL = "## Final Response\n\n"
_HUATUO_MAX_OPTIONS = 10  # A-J, as many as MMLU-Pro has
# The documented rule, letters limited to A-J: "answer is Hypertension" reads as H when H is an option.
_HUATUO_STATED_RE = re.compile(r"answer is\s*?([A-J])")
# A capital letter between non-word characters, not the article opening a phrase ("A 45-year-old", "A lesion").
_HUATUO_BARE_RE = re.compile(r"(?<!\w)(?!A [a-z\d])([A-J])(?!\w)")


def huatuo_is_well_formed(text: object) -> bool:
    """HuatuoGPT-o1's RL format check: ``## Thinking`` and ``## Final Response\\n\\n`` each occur exactly once,
    the thinking heading first."""
    if not isinstance(text, str) or text.count(HUATUO_THINKING) != 1 or text.count(HUATUO_FINAL) != 1:
        return False
    return text.find(HUATUO_THINKING) < text.find(HUATUO_FINAL)


def huatuo_final_response(text: object) -> str | None:
    """The text after ``## Final Response\\n\\n`` to the end, stripped; None for a response that is not well
    formed (:func:`huatuo_is_well_formed`)."""
    if not huatuo_is_well_formed(text):
        return None
    return text[text.find(HUATUO_FINAL) + len(HUATUO_FINAL):].strip()


def huatuo_choice(text: str, options) -> str | None:
    """HuatuoGPT-o1's multiple-choice extraction as documented.

    The candidate is the text after the last ``## Final Response\\n\\n`` (else the whole output). Then, in order:

    1. the first ``answer is\\s*?X`` whose X names an option (case-sensitive, as released);
    2. the first bare option letter delimited by non-word characters (``(C)``, ``C.``, ``is C,``), except the
       article ``A`` before a lower-case word or a digit;
    3. the longest option text contained in the candidate as a whole phrase (case-insensitive);
    4. the option most similar to the candidate (SequenceMatcher ratio, case-insensitive; the first on ties).

    None only for non-text output, no options or more than ten (the convention's letters are A-J).
    """
    options = _option_texts(options)
    if not isinstance(text, str) or options is None or len(options) > _HUATUO_MAX_OPTIONS:
        return None
    valid = _LETTERS[: len(options)]
    final = text.rfind(HUATUO_FINAL)
    cand = text if final < 0 else text[final + len(HUATUO_FINAL):]
    for pattern in (_HUATUO_STATED_RE, _HUATUO_BARE_RE):
        letter = next((m.group(1) for m in pattern.finditer(cand) if m.group(1) in valid), None)
        if letter is not None:
            return letter
    return _contained_option(cand, options) or _most_similar(cand, options, fold=True)


JUDGES = {"medevalkit": medevalkit_choice, "omnimedvqa": omnimedvqa_choice, "huatuo": huatuo_choice}


def judge_is_correct(name: str, text: str, answer_letter: str, options) -> bool:
    """Whether judge ``name`` (a ``JUDGES`` key) scores ``text`` correct for gold ``answer_letter``.

    MedEvalKit: the chosen letter is the gold letter. OmniMedVQA: the chosen option's text is the gold
    option's text (so two options with the same text are both right). An unknown name raises ValueError.
    """
    if name not in JUDGES:
        raise ValueError(f"unknown judge {name!r}; expected one of {tuple(JUDGES)}")
    gold = _gold(answer_letter, "robust")
    choice = JUDGES[name](text, options)
    if choice is None or not gold:
        return False
    if name == "omnimedvqa":
        texts = _option_texts(options)
        return gold in _LETTERS[: len(texts)] and texts[_LETTERS.index(choice)] == texts[_LETTERS.index(gold)]
    return choice == gold
