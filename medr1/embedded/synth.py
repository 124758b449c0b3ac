"""A synthetic dataset in the exact raw OmniMedVQA layout, for running the real pipeline end to end.

Every question's answer is decided by the image, so a model can learn it:
- the background is a real medical sample image of the question's modality (see `sample_images`),
  so the modality is visible;
- a finding is drawn on top: its shape says which task it belongs to, its colour says the class
  (the disease, the anatomy, the grade, the attribute). Modality Recognition questions carry no
  finding: the background alone answers them.
The cue-to-label mapping is shared by all modalities, so a model trained on one modality has
something to transfer to the others, as in the paper's cross-modality study.

Options (`option_order`):
- `shuffled` (default, like the real data): 2–4 labels of the question's task in random order, so the
  model must read the options to find the letter of what it sees;
- `fixed`: the task's four labels always in one order, so the letter follows from the image alone.
  The CPU learning demo uses it: a tiny model learns image -> letter in a few hundred steps, but not
  option-text matching (gold-answer SFT for 600 steps stayed at chance on the shuffled form).
Raw modality strings keep the real typos, and one record uses the `modality` key variant.

Multi-slice questions (`--slices N`, N >= 2): each question has N images, consecutive "slices" of one
background (shifted a little from slice to slice), and the task's finding is drawn on exactly one of
them; the question asks which slice shows it, with options `Slice k`. No single image answers it: the
model has to compare the slices and know their order. The raw record carries `images` (the N paths in
slice order) instead of `image_path`; the finding tasks only (Modality Recognition has no finding).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

from medr1.sources.omnimedvqa import LETTERS, MODALITIES, RAW_MODALITY, TASKS

logger = logging.getLogger(__name__)

LABELS = {
    "Anatomy Identification": ("Liver", "Brain", "Lung", "Kidney"),
    "Disease Diagnosis": ("Tumor", "Cyst", "Hemorrhage", "Fracture"),
    "Lesion Grading": ("Grade 1", "Grade 2", "Grade 3", "Grade 4"),
    "Modality Recognition": MODALITIES,
    "Other Biological Attributes": ("Infant", "Child", "Adult", "Elderly"),
}

QUESTIONS = {
    "Anatomy Identification": (
        "Which anatomical structure is marked in this image?",
        "What organ does the highlighted region show?",
    ),
    "Disease Diagnosis": (
        "What is the most likely diagnosis based on this image?",
        "Which abnormality is present in this image?",
    ),
    "Lesion Grading": ("What is the grade of the lesion shown?", "How severe is the lesion in this image?"),
    "Modality Recognition": (
        "What imaging modality was used to acquire this image?",
        "Which modality is shown in this image?",
    ),
    "Other Biological Attributes": (
        "What is the age group of the patient in this image?",
        "Which age group does this image most likely come from?",
    ),
}

# Shape says the task, colour says the class: strong cues that survive a 56x56 resize.
TASK_SHAPE = {
    "Anatomy Identification": "square",
    "Disease Diagnosis": "disc",
    "Lesion Grading": "triangle",
    "Other Biological Attributes": "ring",
}
# The tasks whose answer is drawn on the image (Modality Recognition is answered by the background).
FINDING_TASKS = tuple(TASK_SHAPE)
CLASS_COLOURS = ((230, 30, 30), (30, 200, 30), (40, 80, 255), (250, 220, 0))
COLOUR_NAMES = ("red", "green", "blue", "yellow")
NO_FINDING = "none"  # what the warm start's <think> says when no finding colour is read

OPTION_COUNT_WEIGHTS = {2: 0.15, 3: 0.25, 4: 0.6}
OPTION_ORDERS = ("shuffled", "fixed")

SLICE_QUESTIONS = (
    "Which slice shows the finding? The {n} images are consecutive slices, numbered 1 to {n} in order.",
    "On which of the {n} slices (shown in order, slice 1 first) is the finding visible?",
)


def slice_label(number: int) -> str:
    """The option text naming slice `number` (1-based)."""
    return f"Slice {number}"


def slice_stack(background, n_slices: int):
    """`n_slices` images of one background, each shifted down a little more: a stand-in for a scan's slices."""
    from PIL import ImageChops

    step = max(1, background.height // 32)
    return [ImageChops.offset(background, 0, k * step) for k in range(n_slices)]


def draw_finding(image, task: str, label_index: int, rng: random.Random):
    """Draw the task's shape in the class colour at a jittered position, covering ~40 % of the side."""
    from PIL import ImageDraw

    image = image.copy()
    side = image.width
    radius = int(side * rng.uniform(0.17, 0.23))
    cx = int(side * rng.uniform(0.35, 0.65))
    cy = int(side * rng.uniform(0.35, 0.65))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    colour = CLASS_COLOURS[label_index]
    draw = ImageDraw.Draw(image)
    shape = TASK_SHAPE[task]
    if shape == "disc":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(2, radius // 3))
    return image


def finding_colour(image, tolerance: int = 40, min_share: float = 0.02) -> str | None:
    """The colour name of the drawn finding, read from the pixels alone (None when there is none).

    Perception, not knowledge: it says what is drawn, never which option that means. The CPU demo's
    warm-start writes it into `<think>`, standing in for what an instruction-tuned VLM already sees."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"), dtype=np.int16).reshape(-1, 3)
    shares = [float((np.abs(pixels - np.array(colour)).max(axis=1) <= tolerance).mean()) for colour in CLASS_COLOURS]
    best = int(np.argmax(shares))
    return COLOUR_NAMES[best] if shares[best] >= min_share else None


def finding_colour_reasoning(data_dir, image_size: int | None):
    """record -> the <think> text of the demo's warm-start: the finding's colour read from the record's image,
    never the option it means. One word, since the compact demo vocabulary spells long sentences letter by
    letter; "none" when nothing is drawn. Passed to `medr1.train.sft.train(reasoning=...)`."""
    from medr1.data.records import image_loader

    load = image_loader(data_dir, image_size)
    return lambda record: finding_colour(load(record["image_path"])) or NO_FINDING


def choose_options(task: str, answer_label: str, rng: random.Random, order: str = "shuffled",
                   labels: tuple[str, ...] | None = None) -> list[str]:
    """2-4 of `labels` (the task's labels by default), the answer among them; `fixed` keeps label order."""
    labels = labels or LABELS[task]
    if order == "fixed":
        n_options = min(4, len(labels))
    elif order == "shuffled":
        counts, weights = zip(*[(k, w) for k, w in OPTION_COUNT_WEIGHTS.items() if k <= len(labels)])
        n_options = rng.choices(counts, weights=weights)[0]
    else:
        raise ValueError(f"option order must be one of {OPTION_ORDERS}, not {order!r}")
    distractors = rng.sample([label for label in labels if label != answer_label], n_options - 1)
    options = [answer_label, *distractors]
    if order == "fixed":
        return sorted(options, key=labels.index)
    rng.shuffle(options)
    return options


def synth_record(modality: str, dataset: str, index: int, rng: random.Random,
                 option_order: str = "shuffled", tasks: tuple[str, ...] = TASKS) -> tuple[dict, str, int]:
    """One raw OmniMedVQA record; also returns the task and class index the image must show."""
    task = tasks[index % len(tasks)]
    if task == "Modality Recognition":
        label_index = MODALITIES.index(modality)
    else:
        label_index = rng.randrange(len(LABELS[task]))
    answer_label = LABELS[task][label_index]
    options = choose_options(task, answer_label, rng, option_order)
    question_id = f"{dataset.replace(' ', '_')}_{index:06d}"
    record = {
        "dataset": dataset,
        "question_id": question_id,
        "question_type": task,
        "question": rng.choice(QUESTIONS[task]),
        "gt_answer": answer_label,
        "image_path": f"Images/{dataset}/{question_id}.png",
        "modality_type": RAW_MODALITY[modality],
    }
    record.update({f"option_{letter}": text for letter, text in zip(LETTERS, options)})
    return record, task, label_index


def synth_slice_record(modality: str, dataset: str, index: int, rng: random.Random, n_slices: int,
                       option_order: str = "shuffled",
                       tasks: tuple[str, ...] = FINDING_TASKS) -> tuple[dict, str, int, int]:
    """One raw multi-slice record asking which of `n_slices` slices shows the finding; also returns the task,
    the class index drawn and the 0-based slice it is drawn on."""
    task = tasks[index % len(tasks)]
    label_index = rng.randrange(len(LABELS[task]))
    finding_slice = rng.randrange(n_slices)
    labels = tuple(slice_label(k + 1) for k in range(n_slices))
    options = choose_options(task, labels[finding_slice], rng, option_order, labels=labels)
    question_id = f"{dataset.replace(' ', '_')}_{index:06d}"
    record = {
        "dataset": dataset,
        "question_id": question_id,
        "question_type": task,
        "question": rng.choice(SLICE_QUESTIONS).format(n=n_slices),
        "gt_answer": labels[finding_slice],
        "images": [f"Images/{dataset}/{question_id}_s{k + 1}.png" for k in range(n_slices)],
        "modality_type": RAW_MODALITY[modality],
    }
    record.update({f"option_{letter}": text for letter, text in zip(LETTERS, options)})
    return record, task, label_index, finding_slice


def _question_images(record: dict, task: str, label_index: int, background, rng: random.Random,
                     finding_slice: int | None) -> list:
    """The images of one question in path order: the background with its finding, or a slice stack with the
    finding on `finding_slice`."""
    if finding_slice is None:
        return [background if task == "Modality Recognition" else draw_finding(background, task, label_index, rng)]
    stack = slice_stack(background, len(record["images"]))
    stack[finding_slice] = draw_finding(stack[finding_slice], task, label_index, rng)
    return stack


def check_tasks(tasks, slices: int) -> tuple[str, ...]:
    """The tasks to cycle through: all five (the four finding tasks with slices) when None; ValueError for
    unknown ones, or Modality Recognition with slices (it has no finding to find)."""
    if slices < 1:
        raise ValueError(f"slices must be at least 1, got {slices}")
    allowed = TASKS if slices == 1 else FINDING_TASKS
    tasks = allowed if tasks is None else tuple(tasks)
    unknown = [task for task in tasks if task not in allowed]
    if not tasks or unknown:
        raise ValueError(f"tasks must be a non-empty subset of {allowed}"
                         f"{' with --slices' if slices > 1 else ''}, got {list(tasks)}")
    return tasks


def write_synthetic_dataset(root: Path, per_modality: int = 1000, image_size: int = 128, seed: int = 42,
                            option_order: str = "shuffled", tasks: tuple[str, ...] | None = None,
                            slices: int = 1) -> dict:
    """Write `root/Images/...` and `root/QA_information/Open-access/<dataset>.json`; returns counts.

    `tasks`: the tasks the questions cycle through (None: all five, or the four finding tasks with slices).
    `slices` >= 2: multi-slice questions (which slice shows the finding), `slices` images each."""
    from medr1.embedded.sample_images import sample_images

    tasks = check_tasks(tasks, slices)
    root = Path(root)
    qa_dir = root / "QA_information" / "Open-access"
    qa_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for modality in MODALITIES:
        rng = random.Random(f"{seed}:{modality}")
        backgrounds = sample_images(modality, size=image_size)
        dataset = f"Synthetic {modality}"
        (root / "Images" / dataset).mkdir(parents=True, exist_ok=True)
        records = []
        for index in range(per_modality):
            finding_slice = None
            if slices > 1:
                record, task, label_index, finding_slice = synth_slice_record(modality, dataset, index, rng, slices,
                                                                              option_order, tasks)
            else:
                record, task, label_index = synth_record(modality, dataset, index, rng, option_order, tasks)
            background = backgrounds[rng.randrange(len(backgrounds))]
            images = _question_images(record, task, label_index, background, rng, finding_slice)
            for path, image in zip(record.get("images") or [record["image_path"]], images, strict=True):
                image.save(root / path, compress_level=1)  # 4x faster than the default 6, files 10 % larger
            records.append(record)
        if modality == "CT" and records:
            # The real `Chest CT Scan.json` has one record keyed `modality` instead of `modality_type`.
            records[0]["modality"] = records[0].pop("modality_type")
        (qa_dir / f"{dataset}.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
        counts[modality] = len(records)
    logger.info("synthetic OmniMedVQA: %d questions over %d modalities -> %s", sum(counts.values()),
                len(counts), root)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medr1 synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="dataset root to write (OmniMedVQA layout)")
    parser.add_argument("--per-modality", type=int, default=1000, help="questions per modality")
    parser.add_argument("--image-size", type=int, default=128, help="side of the written square images")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--option-order", choices=OPTION_ORDERS, default="shuffled")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=None,
                        help="tasks the questions cycle through (default: all five, or the four finding tasks with "
                             "--slices; the CPU demo uses the four finding tasks)")
    parser.add_argument("--slices", type=int, default=1,
                        help="N >= 2: multi-slice questions, N images each, asking which slice shows the finding")
    args = parser.parse_args(argv)
    write_synthetic_dataset(args.out, per_modality=args.per_modality, image_size=args.image_size, seed=args.seed,
                            option_order=args.option_order, tasks=args.tasks, slices=args.slices)
    return 0
