"""OmniMedVQA vocabulary (canonical modalities and tasks, the raw strings they appear as) and the
conversion of raw records and released Med-R1 split entries into canonical records."""

import re
import string

MODALITIES = (
    "CT",
    "MRI",
    "X-Ray",
    "Ultrasound",
    "Dermoscopy",
    "Fundus Photography",
    "OCT",
    "Microscopy",
)

TASKS = (
    "Anatomy Identification",
    "Disease Diagnosis",
    "Lesion Grading",
    "Modality Recognition",
    "Other Biological Attributes",
)

# The `modality_type` strings exactly as the open-access JSON files spell them (typos included);
# the released Med-R1 split file names use these too.
RAW_MODALITY = {
    "CT": "CT(Computed Tomography)",
    "MRI": "MR (Mag-netic Resonance Imaging)",
    "X-Ray": "X-Ray",
    "Ultrasound": "ultrasound",
    "Dermoscopy": "Dermoscopy",
    "Fundus Photography": "Fundus Photography",
    "OCT": "OCT (Optical Coherence Tomography",
    "Microscopy": "Microscopy Images",
}

OPTION_KEYS = ("option_A", "option_B", "option_C", "option_D")
LETTERS = "ABCD"

# ---------------------------------------------------------------------------------------------
# Raw record -> canonical record.
#
# A canonical record is a flat dict with exactly these keys:
#   question_id (str), dataset (str), modality (one of MODALITIES), task (one of TASKS),
#   question (str), options (list of 2..4 str, in letter order), answer ("A".."D"),
#   image (str: the raw `image_path`, relative to the OmniMedVQA root).
# A multi-image question (CT slices, a study's views) carries `images` (a list of 2 or more relative
# paths, in the order the model sees them; raw key `images`) in place of `image`.
# ---------------------------------------------------------------------------------------------

CANONICAL_KEYS = ("question_id", "dataset", "modality", "task", "question", "options", "answer", "image")
MULTI_IMAGE_KEY = "images"


class RecordError(ValueError):
    """A raw record that cannot become a canonical record; `reason` says why (short, human-readable)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _modality_key(text: str) -> str:
    # Letters and digits only, casefolded: absorbs "Mag-netic", the missing ")" of the OCT string,
    # spaces vs. no spaces before "(", "X-Ray" vs "xray", stray whitespace.
    return "".join(ch for ch in text.casefold() if ch.isalnum())


_MODALITY_ALIASES = {
    "CT": ("CT", "CT(Computed Tomography)", "Computed Tomography", "CT scan"),
    "MRI": (
        "MRI",
        "MR",
        "MR (Mag-netic Resonance Imaging)",
        "MRI (Magnetic Resonance Imaging)",
        "Magnetic Resonance Imaging",
        "Magnetic Resonance",
    ),
    "X-Ray": ("X-Ray", "X-Rays", "Xray", "X ray", "Radiography"),
    "Ultrasound": ("Ultrasound", "US", "Ultrasonography", "Ultrasound Images"),
    "Dermoscopy": ("Dermoscopy", "Dermatoscopy", "Dermoscopy Images"),
    "Fundus Photography": ("Fundus Photography", "Fundus", "Fundus Images", "Fundus Photograph"),
    "OCT": ("OCT", "OCT (Optical Coherence Tomography)", "Optical Coherence Tomography"),
    "Microscopy": ("Microscopy", "Microscopy Images", "Microscope", "Microscopic Images"),
}

_MODALITY_LOOKUP = {
    _modality_key(alias): canonical
    for canonical, aliases in _MODALITY_ALIASES.items()
    for alias in (*aliases, RAW_MODALITY[canonical])
}
_TASK_LOOKUP = {" ".join(task.split()).casefold(): task for task in TASKS}


def canonical_modality(raw: str) -> str:
    """Map a raw `modality_type` string (typos, case and spacing variants included) to a MODALITIES name."""
    if not isinstance(raw, str):
        raise RecordError(f"unknown modality: {raw!r}")
    canonical = _MODALITY_LOOKUP.get(_modality_key(raw))
    if canonical is None:
        raise RecordError(f"unknown modality: {raw.strip()!r}")
    return canonical


def canonical_task(raw: str) -> str:
    """Map a raw `question_type` (strip, collapse whitespace, case-insensitive) to a TASKS name."""
    task = _TASK_LOOKUP.get(normalize_text(raw)) if isinstance(raw, str) else None
    if task is None:
        raise RecordError(f"unknown task: {raw!r}")
    return task


def normalize_text(text: str) -> str:
    """Strip, collapse internal whitespace, casefold: the comparison form of answers and options."""
    return " ".join(text.split()).casefold()


def _text_field(raw: dict, key: str) -> str | None:
    """The field as stripped text; None when absent, null or blank. Numbers become text."""
    value = raw.get(key)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise RecordError(f"field {key} is not text: {type(value).__name__}")
    value = value.strip()
    return value or None


def _required(raw: dict, key: str) -> str:
    value = _text_field(raw, key)
    if value is None:
        raise RecordError(f"missing field: {key}")
    return value


_EXTRA_OPTION = re.compile(r"option_[E-Z]$")


def record_images(record: dict) -> list[str]:
    """A canonical record's image paths in prompt order: its `images`, or its one `image`."""
    if MULTI_IMAGE_KEY in record:
        return list(record[MULTI_IMAGE_KEY])
    if "image" in record:
        return [record["image"]]
    raise KeyError(f"record {record.get('question_id')!r} has neither 'image' nor 'images'")


def _image_fields(raw: dict) -> dict:
    """{"image": path} from `image_path`, or {"images": [paths]} from a raw `images` list (one path: `image`)."""
    listed = raw.get(MULTI_IMAGE_KEY)
    if listed is None:
        return {"image": _required(raw, "image_path")}
    if _text_field(raw, "image_path") is not None:
        raise RecordError("both image_path and images given")
    if not isinstance(listed, list) or not all(isinstance(p, str) and p.strip() for p in listed):
        raise RecordError("field images is not a list of image paths")
    paths = [p.strip() for p in listed]
    if not paths:
        raise RecordError("missing field: images (empty list)")
    return {"image": paths[0]} if len(paths) == 1 else {MULTI_IMAGE_KEY: paths}


def canonicalize(raw: dict) -> dict:
    """One raw OmniMedVQA record -> one canonical record (see CANONICAL_KEYS); RecordError if unusable.

    * `modality_type` (or, for the one odd record, `modality`) goes through canonical_modality.
    * options come from option_A..option_D, skipping absent/null/blank ones; they must be contiguous
      (A, B, then C, D) and number 2 to 4; a non-blank option_E or later counts as a fifth option.
    * the gold letter is the only option equal to `gt_answer` after normalize_text.
    * `image_path` becomes `image`; a raw `images` list (instead of `image_path`) becomes `images`.
    """
    if not isinstance(raw, dict):
        raise RecordError(f"record is not an object: {type(raw).__name__}")
    question_id = _required(raw, "question_id")
    dataset = _required(raw, "dataset")
    question = _required(raw, "question")
    gt_answer = _required(raw, "gt_answer")
    image = _image_fields(raw)
    task = canonical_task(_required(raw, "question_type"))
    modality_key = "modality_type" if raw.get("modality_type") is not None else "modality"
    if raw.get(modality_key) is None:
        raise RecordError("missing field: modality_type")
    modality = canonical_modality(_required(raw, modality_key))

    present = [_text_field(raw, key) for key in OPTION_KEYS]
    extra = sum(
        1
        for key in raw
        if key.startswith("option_")
        and key not in OPTION_KEYS
        and _EXTRA_OPTION.match(key)
        and _text_field(raw, key) is not None
    )
    n_options = sum(1 for text in present if text is not None) + extra
    if n_options > len(OPTION_KEYS):
        raise RecordError(f"too many options: {n_options} (at most {len(OPTION_KEYS)})")
    if extra:
        raise RecordError("non-contiguous options: option beyond option_D")
    options = []
    for key, text in zip(OPTION_KEYS, present):
        if text is None:
            break
        options.append(text)
    if len(options) != n_options:
        raise RecordError("non-contiguous options: " + ",".join(k for k, t in zip(OPTION_KEYS, present) if t))
    if n_options < 2:
        raise RecordError(f"too few options: {n_options} (at least 2)")

    gold = normalize_text(gt_answer)
    letters = [LETTERS[i] for i, text in enumerate(options) if normalize_text(text) == gold]
    if not letters:
        raise RecordError(f"gt_answer matches no option: {gt_answer!r}")
    if len(letters) > 1:
        raise RecordError(f"gt_answer matches several options: {','.join(letters)}")
    return {
        "question_id": question_id,
        "dataset": dataset,
        "modality": modality,
        "task": task,
        "question": question,
        "options": options,
        "answer": letters[0],
        **image,
    }


# ---------------------------------------------------------------------------------------------
# The released Med-R1 split entries: {"image", "problem", "solution"}.
# ---------------------------------------------------------------------------------------------


def format_options(options) -> str:
    """Options as the released splits render them: ``A)text, B)text, C)text`` (no space after ``)``)."""
    return ", ".join(f"{letter}){text}" for letter, text in zip(string.ascii_uppercase, options))


def format_problem(question: str, options) -> str:
    """The released `problem` string: "<question> A)<opt>, B)<opt>, ..."."""
    return f"{question} {format_options(options)}"


_FIRST_OPTION = re.compile(r"(?:^|\s)A\)")


def parse_problem(problem: str) -> tuple[str, list[str]]:
    """Inverse of format_problem: "<question> A)<o1>, B)<o2>, C)<o3>" -> (question, [o1, o2, o3]).

    The format is ambiguous: option texts may contain ", " and ")" themselves, and nothing escapes
    the separators. The rule used here is left-to-right: the question ends at the first
    whitespace-preceded "A)" that is followed later by ", B)"; each next option starts at the first
    ", X)" (X the next letter) after the previous one. Texts containing ", " or ")" in any other way
    parse correctly ("Type 1, 2", "IgA)", "(a), b)"), but an option text that itself contains
    ", B)" (the next letter's separator) or a question containing " A)" followed by ", B)" is split
    wrongly. Matching entries back to raw records (prepare's official import) avoids the ambiguity;
    this parser is only the fallback for entries with no raw record.
    """
    if not isinstance(problem, str):
        raise RecordError(f"problem is not text: {type(problem).__name__}")
    for match in _FIRST_OPTION.finditer(problem):
        start = match.end()
        if problem.find(", B)", start) >= 0:
            break
    else:
        raise RecordError("unparseable problem: no 'A)' ... ', B)' options")
    question = problem[: match.start()].strip()
    cuts = [start]
    for letter in LETTERS[1:]:
        pos = problem.find(f", {letter})", cuts[-1])
        if pos < 0:
            break
        cuts.append(pos)
    options = []
    for i, begin in enumerate(cuts):
        if i:
            begin += len(", X)")
        end = cuts[i + 1] if i + 1 < len(cuts) else len(problem)
        options.append(problem[begin:end].strip())
    if not question:
        raise RecordError("unparseable problem: empty question")
    if any(not text for text in options):
        raise RecordError("unparseable problem: empty option")
    return question, options


_SOLUTION = re.compile(r"<answer>\s*([A-Za-z])\s*</answer>")


def parse_solution(solution: str) -> str:
    """Return the letter of a released solution: `<answer> C </answer>` -> "C"."""
    match = _SOLUTION.search(solution) if isinstance(solution, str) else None
    if match is None or match.group(1).upper() not in LETTERS:
        raise RecordError(f"unparseable solution: {solution!r}")
    return match.group(1).upper()
