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

OPTION_COUNT_WEIGHTS = {2: 0.15, 3: 0.25, 4: 0.6}
OPTION_ORDERS = ("shuffled", "fixed")


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
    return lambda record: finding_colour(load(record["image_path"])) or "none"


def choose_options(task: str, answer_label: str, rng: random.Random, order: str = "shuffled") -> list[str]:
    labels = LABELS[task]
    if order == "fixed":
        n_options = 4
    elif order == "shuffled":
        counts, weights = zip(*OPTION_COUNT_WEIGHTS.items())
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


def write_synthetic_dataset(root: Path, per_modality: int = 1000, image_size: int = 128, seed: int = 42,
                            option_order: str = "shuffled", tasks: tuple[str, ...] = TASKS) -> dict:
    """Write `root/Images/...` and `root/QA_information/Open-access/<dataset>.json`; returns counts.

    `tasks`: the tasks the questions cycle through (all five by default)."""
    from medr1.embedded.sample_images import sample_images

    tasks = tuple(tasks)
    unknown = [task for task in tasks if task not in TASKS]
    if not tasks or unknown:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {list(tasks)}")
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
            record, task, label_index = synth_record(modality, dataset, index, rng, option_order, tasks)
            image = backgrounds[rng.randrange(len(backgrounds))]
            if task != "Modality Recognition":
                image = draw_finding(image, task, label_index, rng)
            image.save(root / record["image_path"])
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
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS),
                        help="tasks the questions cycle through (the CPU demo uses the four finding tasks)")
    args = parser.parse_args(argv)
    write_synthetic_dataset(args.out, per_modality=args.per_modality, image_size=args.image_size, seed=args.seed,
                            option_order=args.option_order, tasks=args.tasks)
    return 0
