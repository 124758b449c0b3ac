"""The shared answer parser: every accepted and rejected form, per mode, plus properties."""

import re
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medr1.rewards.answers import MODES, _released_train_span, answer_span, is_correct, parse_answer_letter

OPTS = ["MRI", "CT", "X-Ray"]  # A, B, C
OPTS4 = ["Glioma", "Meningioma", "Pituitary tumor", "No tumor"]

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_modes():
    assert MODES == ("robust", "medr1-compat", "medr1-compat-eval")


# --------------------------------------------------------------------------------------------------
# answer_span


@pytest.mark.parametrize(
    "text, span",
    [
        ("<answer>C</answer>", "C"),
        ("<think>x</think><answer> C </answer>", " C "),
        ("<answer>\nC\n</answer>", "\nC\n"),  # DOTALL
        ("<answer>A</answer><answer>B</answer>", "A"),  # the first one
        ("<answer><answer>C</answer>", "<answer>C"),
        ("<answer></answer>", ""),
        ("<answer>C", None),
        ("C", None),
        ("C</answer>", None),
        ("", None),
        (None, None),
        (123, None),
    ],
)
def test_answer_span(text, span):
    assert answer_span(text) == span


# --------------------------------------------------------------------------------------------------
# robust mode: accepted forms


@pytest.mark.parametrize(
    "text, options, letter",
    [
        # bare and delimited letters
        ("C", OPTS, "C"),
        ("c", OPTS, "C"),
        ("(C)", OPTS, "C"),
        ("[C]", OPTS, "C"),
        ("C)", OPTS, "C"),
        ("C.", OPTS, "C"),
        ("C) X-Ray", OPTS, "C"),
        ("C)X-Ray", OPTS, "C"),  # the released option rendering, copied back
        ("C. X-Ray", OPTS, "C"),
        ("C: X-Ray", OPTS, "C"),
        ("C - X-Ray", OPTS, "C"),
        ("(C) x-ray", OPTS, "C"),
        ("C X-Ray", OPTS, "C"),
        ("C, X-Ray", OPTS, "C"),
        ("**Answer:** C", OPTS, "C"),
        ("The correct answer is: **C**", OPTS, "C"),  # no delimiter, but the letter's own option text
        ("C) Radiograph of the chest", OPTS, "C"),  # a paraphrase after a clear delimiter
        # prefixed
        ("Answer: C", OPTS, "C"),
        ("answer: c", OPTS, "C"),
        ("Answer:C", OPTS, "C"),
        ("The answer is C", OPTS, "C"),
        ("The answer is: C", OPTS, "C"),
        ("The correct answer is (C)", OPTS, "C"),
        ("Final answer: C) X-Ray", OPTS, "C"),
        ("option C", OPTS, "C"),
        ("Option (C)", OPTS, "C"),
        ("Answer: option C", OPTS, "C"),
        ("The answer is C because the bones are bright", OPTS, "C"),
        ("Based on the image, the answer is C.", OPTS, "C"),
        ("A lesion is visible, so the answer is B.", OPTS, "B"),
        ("The correct option is (C), the radiograph.", OPTS, "C"),
        ("Option C is correct.", OPTS, "C"),
        ("(C) is the right answer", OPTS, "C"),
        # exact option text
        ("X-Ray", OPTS, "C"),
        ("  x-RAY. ", OPTS, "C"),
        ("pituitary   TUMOR", OPTS4, "C"),
        ("No tumor", OPTS4, "D"),
        # tags
        ("<answer>C</answer>", OPTS, "C"),
        ("<answer> C </answer>", OPTS, "C"),
        ("<answer>\nC\n</answer>", OPTS, "C"),
        ("<think>It could be A or B, but the bones say otherwise.</think>\n<answer>C</answer>", OPTS, "C"),
        ("<answer>C) X-Ray</answer>", OPTS, "C"),
        ("<answer>X-Ray</answer>", OPTS, "C"),
        ("<answer>**C**</answer>", OPTS, "C"),
        ("<answer>`C`</answer>", OPTS, "C"),
        ("<answer>C</answer><think>Bones are bright.</think>", OPTS, "C"),  # think-after
        ("<answer>A</answer><answer>C</answer>", OPTS, "A"),  # the first span decides
        ("<answer>The correct answer is (B) CT</answer>", OPTS, "B"),
        # unclosed / stray tags
        ("<think>bones</think><answer>C", OPTS, "C"),
        ("<answer>C<|im_end|>", OPTS, "C"),
        ("<answer>C <think>because bones</think>", OPTS, "C"),
        ("<think>bones</think> C", OPTS, "C"),
        ("C</answer>", OPTS, "C"),
        # without options every letter is allowed
        ("D", None, "D"),
        ("<answer>(F)</answer>", None, "F"),
        ("The answer is E.", None, "E"),
    ],
)
def test_robust_accepts(text, options, letter):
    assert parse_answer_letter(text, options) == letter
    assert parse_answer_letter(text, options, mode="robust") == letter
    assert is_correct(text, letter, options)


# --------------------------------------------------------------------------------------------------
# robust mode: rejected forms


@pytest.mark.parametrize(
    "text, options",
    [
        ("", OPTS),
        ("   \n ", OPTS),
        ("<answer></answer>", OPTS),
        ("<answer>   </answer>", OPTS),
        # beyond the options
        ("D", OPTS),
        ("<answer>D</answer>", OPTS),
        ("The answer is D.", OPTS),
        # two letters
        ("A or B", OPTS),
        ("A, C", OPTS),
        ("A and C", OPTS),
        ("A/B", OPTS),
        ("A B", OPTS),
        ("(A) (B)", OPTS),
        ("A) B)", OPTS),
        ("<answer>A or C</answer>", OPTS),
        ("<answer>A, C</answer>", OPTS),
        ("The answer is A or B", OPTS),
        ("The answer is A, C", OPTS),
        ("The answer is A. Actually, the answer is B.", OPTS),
        ("C. The answer is B.", OPTS),
        ("C) X-Ray, B) CT", OPTS),
        # letter contradicting the option text
        ("B) X-Ray", OPTS),
        ("<answer>B) X-Ray</answer>", OPTS),
        ("<answer>C) CT</answer>", OPTS),
        ("Answer: B) X-Ray", OPTS),
        ("The answer is B) X-Ray", OPTS),
        # English words, not choices
        ("A lesion is seen in the liver", OPTS),
        ("<answer>A lesion is seen in the liver</answer>", OPTS),
        ("A lesion is seen in the liver", None),
        ("The answer is A lesion in the liver", OPTS),
        ("I think so", None),
        ("A is incorrect", OPTS),
        ("i.e.", None),
        ("Computed tomography of the brain", OPTS),
        ("<answer>Magnetic resonance</answer>", OPTS),
        ("The answer is likely C", OPTS),
        ("CT scan", None),
        ("X-Ray", None),  # an option text, but no options were given
        # tag-free paraphrase over several lines is not a choice
        ("A.\nThe lesion is large and the liver is enlarged", OPTS),
        # non-str
        (None, OPTS),
        (b"C", OPTS),
    ],
)
def test_robust_rejects(text, options):
    assert parse_answer_letter(text, options) is None


def test_robust_ambiguous_option_texts():
    # Two options with the same text cannot be told apart by their text.
    assert parse_answer_letter("CT", ["CT", "MRI", "ct"]) is None
    assert parse_answer_letter("B", ["CT", "MRI", "ct"]) == "B"


def test_robust_odd_options():
    assert parse_answer_letter("B", [None, "CT"]) == "B"
    assert parse_answer_letter("CT", [None, "CT"]) == "B"
    assert parse_answer_letter("B", []) == "B"  # no options: any letter
    assert parse_answer_letter("B", ("CT", "MRI")) == "B"
    assert parse_answer_letter("MRI", np.array(["CT", "MRI"])) == "B"
    assert parse_answer_letter("Z", [f"o{i}" for i in range(30)]) == "Z"  # only 26 letters exist
    assert parse_answer_letter("o29", [f"o{i}" for i in range(30)]) is None
    assert parse_answer_letter("B", "CT") == "B"  # a string is not a list of options
    assert parse_answer_letter("B", 5) == "B"


# --------------------------------------------------------------------------------------------------
# released semantics


@pytest.mark.parametrize(
    "text, pred, correct_c",
    [
        ("<answer> C </answer>", "C", True),  # the reference's example: scores
        ("<answer>C) CT</answer>", "C) CT", False),  # the reference's example: does not
        ("<think>bones</think><answer>C</answer>", "C", True),
        ("C", "C", True),  # no tag: the whole completion, stripped
        ("  C \n", "C", True),
        ("c", "c", False),  # no case folding
        ("(C)", "(C)", False),
        ("<answer>A</answer><answer>C</answer>", "A", False),  # first span
        ("<answer>C", "<answer>C", False),  # unclosed: the whole completion
        ("<answer>\nC\n</answer>", "<answer>\nC\n</answer>", False),  # released regex has no DOTALL
        ("<answer>\nA</answer><answer>C</answer>", "C", True),  # ... so the first single-line span wins
        ("<answer></answer>", "", False),
        ("", "", False),
    ],
)
def test_medr1_compat(text, pred, correct_c):
    assert parse_answer_letter(text, OPTS, mode="medr1-compat") == pred
    assert is_correct(text, "C", OPTS, mode="medr1-compat") is correct_c
    # The gold may also be the released `solution` string.
    assert is_correct(text, "<answer> C </answer>", mode="medr1-compat") is correct_c


@pytest.mark.parametrize(
    "text, pred, correct_c",
    [
        ("<answer> C </answer>", "C", True),
        ("<answer>\nC\n</answer>", "C", True),  # \s matches newlines
        ("<think>A</think><answer>C</answer>", "C", True),
        ("<answer>C) CT</answer>", None, False),
        ("<answer>(C)</answer>", None, False),
        ("<answer>CT</answer>", "CT", False),
        ("<answer>c</answer>", "c", False),
        ("<answer>C) x</answer> <answer>C</answer>", "C", True),  # re.search skips the non-matching tag
        ("C", None, False),  # no tag counts as wrong
        ("<answer>C", None, False),
        ("", None, False),
    ],
)
def test_medr1_compat_eval(text, pred, correct_c):
    assert parse_answer_letter(text, OPTS, mode="medr1-compat-eval") == pred
    assert is_correct(text, "C", OPTS, mode="medr1-compat-eval") is correct_c
    assert is_correct(text, "<answer> C </answer>", mode="medr1-compat-eval") is correct_c


def test_is_correct_robust():
    assert is_correct("<answer>c</answer>", "C", OPTS)
    assert is_correct("<answer>C</answer>", " c ", OPTS)
    assert is_correct("<answer>C</answer>", "<answer> C </answer>", OPTS)
    assert not is_correct("<answer>B</answer>", "C", OPTS)
    assert not is_correct("<answer>A or C</answer>", "C", OPTS)
    assert not is_correct("<answer>C</answer>", None, OPTS)
    assert not is_correct(None, "C", OPTS)


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="unknown answer mode"):
        parse_answer_letter("C", OPTS, mode="strict")


# --------------------------------------------------------------------------------------------------
# properties

_WORDS = st.from_regex(r"[a-z]{3,9}", fullmatch=True).filter(
    lambda w: w not in {"answer", "option", "choice", "the", "and", "nor", "versus", "final", "correct"}
)
_OPTION = st.lists(_WORDS, min_size=1, max_size=3).map(" ".join) | st.sampled_from(
    ["CT", "MRI", "X-Ray", "Ultrasound", "B-cell lymphoma", "Grade 2", "Normal", "No tumor", "Type II"]
)
_CASE = st.sampled_from([str, str.upper, str.title])


def _normkey(text):
    return " ".join(text.split()).casefold()


@st.composite
def _question(draw):
    options = draw(st.lists(_OPTION, min_size=2, max_size=4, unique_by=_normkey))
    options = [draw(_CASE)(o) for o in options]
    index = draw(st.integers(0, len(options) - 1))
    return options, string.ascii_uppercase[index], options[index]


def _renderings(x, t):
    return [
        *(x, x.lower(), f"({x})", f"[{x}]", f"{x})", f"{x}."),
        *(f"{x}) {t}", f"{x}){t}", f"{x}. {t}", f"{x}: {t}", f"({x}) {t}", f"{x} {t}", f"{x}, {t}"),
        *(f"Answer: {x}", f"answer: {x.lower()}", f"The answer is {x}", f"The correct answer is ({x})"),
        *(f"option {x}", f"Option {x}: {t}", f"The answer is {x}) {t}.", f"Option {x} is correct."),
        *(t, t.upper(), f"  {t.lower()}  "),
    ]


_WRAPS = [
    "{}",
    "<answer>{}</answer>",
    "<think>A or B? Not sure.</think>\n<answer> {} </answer>",
    "<answer>{}",
    "<answer>{}</answer>\n<think>because</think>",
]
_TWO = [
    "{x} or {y}",
    "{x}, {y}",
    "{x} and {y}",
    "{x}/{y}",
    "({x}) ({y})",
    "{x}) {y})",
    "{x} {y}",
    "Answer: {x} or {y}",
    "The answer is {x}, {y}",
    "The answer is {x}. Actually the answer is {y}.",
    "{x}. The answer is {y}.",
]


@FAST
@given(_question(), st.sampled_from(_WRAPS))
def test_every_rendering_parses_back(question, wrap):
    options, letter, text = question
    for form in _renderings(letter, text):
        completion = wrap.format(form)
        assert parse_answer_letter(completion, options) == letter, completion
        assert is_correct(completion, letter, options), completion


@FAST
@given(_question(), st.data())
def test_two_letters_never_parse(question, data):
    options = question[0]
    letters = st.sampled_from(string.ascii_uppercase[: len(options)])
    x, y = data.draw(st.lists(letters, min_size=2, max_size=2, unique=True))
    form = data.draw(st.sampled_from(_TWO))
    wrap = data.draw(st.sampled_from(["{}", "<answer>{}</answer>", "<think>t</think><answer>{}</answer>"]))
    completion = wrap.format(form.format(x=x, y=y))
    assert parse_answer_letter(completion, options) is None, completion
    assert parse_answer_letter(completion) is None, completion


@FAST
@given(_question())
def test_letters_beyond_the_options_never_parse(question):
    options = question[0]
    for x in string.ascii_uppercase[len(options) :]:
        for form in (x, f"({x})", f"<answer>{x}</answer>", f"The answer is {x}."):
            assert parse_answer_letter(form, options) is None


_PIECES = ["<answer>", "</answer>", "<think>", "</think>", "<answer", "answer>", "<|im_end|>", "A", "b", "C)"]
_PIECES += ["(D)", " ", "\n", "\t", "answer is ", "Answer: ", " or ", ", ", ".", "CT", "X-Ray", "é", "\u200b"]
_SOUP = st.lists(st.sampled_from([*_PIECES, "\x00", "**"]), max_size=30).map("".join)


@FAST
@given(st.text() | _SOUP, st.none() | st.lists(st.text(max_size=5), max_size=5) | st.just(OPTS))
def test_never_raises(text, options):
    for mode in MODES:
        pred = parse_answer_letter(text, options, mode=mode)
        assert pred is None or isinstance(pred, str)
        assert is_correct(text, "C", options, mode=mode) in (True, False)
    assert answer_span(text) is None or isinstance(answer_span(text), str)
    pred = parse_answer_letter(text, options)
    if pred is not None:  # robust answers are always a valid letter
        assert len(pred) == 1 and pred in string.ascii_uppercase[: len(options) if options else 26]


@FAST
@given(_SOUP)
def test_compat_spans_match_the_released_regexes(text):
    match = re.search(r"<answer>(.*?)</answer>", text)
    assert _released_train_span(text) == (match.group(1) if match else None)
    expected = match.group(1).strip() if match else text.strip()
    assert parse_answer_letter(text, mode="medr1-compat") == expected
    match = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
    assert answer_span(text) == (match.group(1) if match else None)


# --------------------------------------------------------------------------------------------------
# huge and adversarial inputs: the same reading as short ones (their time: bench/answer_parser.py)


@pytest.mark.parametrize(
    ("text", "with_options", "without_options"),
    [
        ("x" * 1_000_000, None, None),
        (" " * 1_000_000 + "C", "C", "C"),
        ("<answer>" * 120_000, None, None),
        ("<answer>" + " " * 1_000_000 + "x", None, "X"),  # x is not among four options
        ("<answer>C" * 100_000, "C", "C"),  # the first unclosed span ends at the next tag
        ("answer is " * 100_000, None, None),
        ("The answer is A, " * 50_000, "A", "A"),  # every statement agrees
        ("answer " * 150_000 + "C", None, None),
        ("(A) " * 200_000, None, None),  # untagged and far longer than a choice
        ("<think>" + "</think><answer>" * 60_000, None, None),
        ("A" * 1_000_000, None, None),
        ("é中\n" * 300_000, None, None),
    ],
    ids=lambda t: repr(t[:12]) if isinstance(t, str) else None,
)
def test_huge_inputs_read_like_short_ones(text, with_options, without_options):
    assert parse_answer_letter(text, OPTS4) == with_options
    assert parse_answer_letter(text, None) == without_options
    assert parse_answer_letter(text, OPTS4, mode="medr1-compat-eval") is None
    assert parse_answer_letter(text, OPTS4, mode="medr1-compat") == text.strip()  # no closed span anywhere
    assert answer_span(text) is None
