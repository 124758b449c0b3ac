"""Supervised fine-tuning on the same splits: `medr1 sft --config configs/sft/<recipe>.yaml --modality CT` (or
`--split dataset/medqa/train`, a text dataset's split).

TRL's `SFTTrainer` with the loss on the completion only. The target is the answer in the prompt
style's format (`<answer> C </answer>` for no-think, as the released SFT baseline). With
`sft_answers: random` the letter is drawn at random, and with `sft_answers: balanced` dealt so that each
gold answer gets every letter equally often: a warm-start that teaches the format, not the answer, standing in
for an instruction-tuned base model in the CPU demo. `<think>` holds a fixed
placeholder sentence (`sft_think: fixed`), each record's own text (`sft_think: column:NAME`, e.g. a
reasoning trace), or what a caller passes as `train(..., reasoning=...)` (the demo names what it sees).

Open-ended text records (`options: []`) train on their reference text as the answer (`sft_answers: gold`);
`sft_answers: random` draws option letters, so it needs multiple-choice records and stops with an error naming the
split file and the first open-ended record.
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path

from medr1.sources.medqa import TEXT_MODALITY
from medr1.sources.omnimedvqa import LETTERS

logger = logging.getLogger(__name__)

# The warm-start teaches the shape of an answer, not its content.
PLACEHOLDER_REASONING = "I look at the image and compare it with each option."
TEXT_PLACEHOLDER_REASONING = "I read the question and weigh what each answer would mean."  # records without images


ANSWER_SOURCES = ("gold", "random", "balanced")
THINK_SOURCES = ("fixed", "column:NAME")
COLUMN_PREFIX = "column:"


def target_text(letter: str, style: str, reasoning: str = PLACEHOLDER_REASONING) -> str:
    """The completion a prompt style asks for, with `letter` (or an open-ended record's reference text) as the answer
    and `reasoning` in <think> (in the huatuo style: `## Thinking`, then the answer as the `## Final Response`;
    medicalgpt: `<think>...</think><answer>...</answer>`, nothing between)."""
    if style == "huatuo":
        return f"## Thinking\n\n{reasoning}\n\n## Final Response\n\n{letter}"
    if style == "medicalgpt":
        return f"<think>{reasoning}</think><answer>{letter}</answer>"
    answer = f"<answer> {letter} </answer>"
    if style == "nothink":
        return answer
    think = f"<think>{reasoning}</think>"
    if style == "think":
        return think + answer
    if style == "think-after":
        return answer + think
    raise ValueError(f"unknown prompt style {style!r}")


def answer_letter_for(record: dict, answers: str, seed: int, where: str = "", dealt: dict | None = None) -> str:
    """The gold letter (an open-ended record's reference text), or (answers='random') a letter drawn per question,
    reproducibly, or (answers='balanced') the record's letter in `dealt` (`balanced_letters` of its split); random
    and balanced letters need options, so an open-ended record is a ValueError naming it (`where`: its file)."""
    if answers == "gold":
        return record["answer"]
    if answers not in ANSWER_SOURCES:
        raise ValueError(f"sft_answers must be one of {ANSWER_SOURCES}, not {answers!r}")
    if not record.get("options"):
        raise ValueError(f"{where + ': ' if where else ''}record {record.get('question_id')!r} is open-ended "
                         f"(options: []): sft_answers: {answers} draws an option letter and needs multiple-choice "
                         "records; use sft_answers: gold (its reference text), or a multiple-choice split")
    if answers == "balanced":
        if not dealt or record["question_id"] not in dealt:
            raise ValueError(f"{where + ': ' if where else ''}record {record.get('question_id')!r} has no dealt "
                             "letter: sft_answers: balanced needs balanced_letters() of the record's split")
        return dealt[record["question_id"]]
    rng = random.Random(f"{seed}:{record['question_id']}")
    return rng.choice(LETTERS[: len(record["options"])])


def balanced_letters(records: list[dict], seed: int) -> dict[str, str]:
    """question_id -> a letter, dealt in turn to the questions of each (gold answer, number of options) in a seeded
    order: every letter goes to each gold answer equally often (to within one), so a model trained on these
    letters cannot beat chance by learning which letter goes with which answer. Independent random draws leave
    such an imbalance (a warm start trained long enough memorises it and starts above chance). Open-ended records
    get none."""
    by_kind: dict[tuple, list[str]] = {}
    for record in records:
        if record.get("options"):
            by_kind.setdefault((record["answer"], len(record["options"])), []).append(record["question_id"])
    dealt = {}
    for (_, n_options), ids in sorted(by_kind.items()):
        ids.sort(key=lambda qid: hashlib.sha256(f"{seed}:{qid}".encode()).hexdigest())
        for i, qid in enumerate(ids):
            dealt[qid] = LETTERS[i % n_options]
    return dealt


def placeholder_reasoning(record: dict) -> str:
    """The fixed <think> sentence: about the question for a text record (`modality` "text", no image), else about
    the image."""
    has_image = any(record.get(key) for key in ("image", "images", "image_path", "image_paths"))
    return TEXT_PLACEHOLDER_REASONING if record.get("modality") == TEXT_MODALITY and not has_image \
        else PLACEHOLDER_REASONING


def reasoning_for(script_args):
    """record -> the <think> text SFT trains on (`sft_think`)."""
    source = script_args.sft_think
    if source == "fixed":
        return placeholder_reasoning
    if source.startswith(COLUMN_PREFIX) and source[len(COLUMN_PREFIX):]:
        column = source[len(COLUMN_PREFIX):]

        def from_column(record):
            if not isinstance(record.get(column), str):
                raise ValueError(f"sft_think {source!r}: record {record.get('question_id')!r} has no text "
                                 f"column {column!r}")
            return record[column]

        return from_column
    raise ValueError(f"sft_think must be one of {THINK_SOURCES}, not {source!r}")


def build_trainer(script_args, training_args, model_args, reasoning=None):
    """The SFTTrainer for a recipe; `reasoning(record) -> str`, when given, is the <think> text (it replaces
    `sft_think`)."""
    from trl import SFTTrainer

    from medr1.data.budget import check_dataset_budget
    from medr1.data.records import prompt_dataset, read_records, split_path
    from medr1.train.grpo import load_policy, peft_config_for, training_split, write_run_metadata

    split = training_split(script_args)
    where = str(split_path(script_args.data_dir, split))
    reasoning = reasoning or reasoning_for(script_args)
    dealt = balanced_letters(read_records(where), training_args.seed) \
        if script_args.sft_answers == "balanced" else None
    dataset = prompt_dataset(
        script_args.data_dir, split, style=script_args.prompt_style, stage="train",
        image_size=script_args.image_size, limit=script_args.max_train_samples,
        completion=lambda record: target_text(
            answer_letter_for(record, script_args.sft_answers, training_args.seed, where, dealt),
            script_args.prompt_style,
            reasoning(record),
        ),
    )
    model, processor = load_policy(model_args, script_args)
    check_dataset_budget(dataset, processor, model.config, script_args.data_dir, script_args.image_size,
                         max_length=training_args.max_length)
    # Images are attached when a row is read (from its `image_path(s)`), so that column must survive.
    training_args.remove_unused_columns = False
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config_for(model_args, model),
    )
    write_run_metadata(training_args.output_dir, script_args, training_args, model_args, split, len(dataset))
    logger.info("SFT on %s (%s answers): %d questions -> %s", split, script_args.sft_answers, len(dataset),
                training_args.output_dir)
    return trainer


def train(script_args, training_args, model_args, reasoning=None) -> Path:
    """Train (resuming from the last checkpoint in output_dir if there is one) and save the final model."""
    from medr1.train.grpo import last_checkpoint, run_resumable

    trainer = build_trainer(script_args, training_args, model_args, reasoning)
    output_dir = Path(training_args.output_dir)
    run_resumable(trainer, training_args.resume_from_checkpoint or last_checkpoint(training_args.output_dir))
    trainer.save_model(str(output_dir))
    trainer.processing_class.save_pretrained(str(output_dir))
    return output_dir


def main(argv: list[str] | None = None) -> int:
    from trl import SFTConfig

    from medr1.train.grpo import parse_args

    train(*parse_args(argv, SFTConfig, "medr1 sft"))
    return 0
