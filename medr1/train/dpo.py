"""DPO: `medr1 dpo --config configs/dpo/tiny_cpu.yaml --train_file pairs.jsonl [--modality CT | --split S]`.

TRL's `DPOTrainer` with LoRA and the implicit reference model (the policy with its adapter disabled; no second
copy), as MedicalGPT trains DPO. `train_file` is JSONL in one of two formats, told apart per record:

MedicalGPT's pairs
    `conversations` ([{"from": "human", "value": ...}], ShareGPT turns ending with the human's), `chosen`,
    `rejected` (strings): text records.
on-policy pairs (`medr1 pairs`)
    `question_id`, `chosen`, `rejected`: the prompt (and the image) are rebuilt from the record of that question in
    `data_dir`'s training split (of `modality`, `task`, or `split`, e.g. `dataset/huatuo-verifiable/train`, as GRPO
    and SFT name it), in the recipe's `prompt_style`, so image records train as vision DPO and text records as text
    DPO. Lines marked `unpaired` (no correct/incorrect pair among the samples) are counted and skipped.

A record that fits neither, or names a question the split lacks, stops the run with its file and line.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def medicalgpt_row(entry: dict, where: str) -> dict:
    """A MedicalGPT pair as a conversational TRL preference row."""
    from medr1.train.rm import pair_row

    if "conversations" not in entry:
        raise ValueError(f"{where}: a MedicalGPT pair needs `conversations`")
    return pair_row(entry, where)


def split_pairs(rows: list[tuple[str, dict]]) -> tuple[list[dict], list[tuple[str, dict]], int]:
    """(MedicalGPT rows, on-policy (where, entry) lines, unpaired lines skipped)."""
    text_rows, on_policy, unpaired = [], [], 0
    for where, entry in rows:
        if "unpaired" in entry:
            unpaired += 1
        elif "question_id" in entry and {"chosen", "rejected"} <= entry.keys():
            on_policy.append((where, entry))
        elif {"conversations", "chosen", "rejected"} <= entry.keys():
            text_rows.append(medicalgpt_row(entry, where))
        else:
            raise ValueError(f"{where}: neither a MedicalGPT pair (conversations, chosen, rejected) nor a "
                             "`medr1 pairs` line (question_id, chosen, rejected)")
    return text_rows, on_policy, unpaired


def on_policy_rows(on_policy: list[tuple[str, dict]], script_args) -> list[dict]:
    """Preference rows of `medr1 pairs` lines: each question's training prompt (with `image_path(s)`) from the split."""
    from medr1.data.records import load_split, prompt_rows
    from medr1.train.grpo import training_split

    split = training_split(script_args)
    records = {r["question_id"]: r for r in load_split(script_args.data_dir, split)}
    chosen = []
    for where, entry in on_policy:
        if entry["question_id"] not in records:
            raise ValueError(f"{where}: question {entry['question_id']!r} is not in {split} of {script_args.data_dir}")
        chosen.append(records[entry["question_id"]])
    rows = prompt_rows(chosen, style=script_args.prompt_style, stage="train")
    keep = ("prompt", "image_path", "image_paths")
    return [{**{key: row[key] for key in keep if key in row},
             "chosen": [{"role": "assistant", "content": entry["chosen"]}],
             "rejected": [{"role": "assistant", "content": entry["rejected"]}]}
            for row, (_, entry) in zip(rows, on_policy, strict=True)]


def preference_dataset(script_args):
    """The DPO dataset of `train_file`; images are attached when a row is read."""
    from datasets import Dataset

    from medr1.data.records import image_loader
    from medr1.train.rm import read_jsonl

    if not script_args.train_file:
        raise ValueError("medr1 dpo needs --train_file: MedicalGPT pairs or `medr1 pairs` output (JSONL)")
    train_file = script_args.train_file.replace("{target}", script_args.target())
    text_rows, on_policy, unpaired = split_pairs(read_jsonl(train_file))
    if text_rows and on_policy:
        raise ValueError(f"{train_file} mixes MedicalGPT pairs and `medr1 pairs` lines; use one format")
    rows = text_rows or (on_policy_rows(on_policy, script_args) if on_policy else [])
    logger.info("%s: %d pairs (%s), %d questions without a pair skipped", train_file, len(rows),
                "MedicalGPT" if text_rows else "on-policy", unpaired)
    if not rows:
        raise ValueError(f"{train_file}: no pairs ({unpaired} unpaired questions)")
    dataset = Dataset.from_list(rows)
    columns = dataset.column_names
    if "image_path" not in columns and "image_paths" not in columns:
        return dataset, unpaired
    load = image_loader(script_args.data_dir, script_args.image_size)

    def attach_images(batch):
        if "image_paths" in batch:
            batch["images"] = [[load(path) for path in paths] for paths in batch.pop("image_paths")]
        else:
            batch["images"] = [[load(path)] for path in batch.pop("image_path")]
        return batch

    return dataset.with_transform(attach_images), unpaired


def build_trainer(script_args, training_args, model_args):
    from trl import DPOTrainer

    from medr1.train.grpo import load_policy, peft_config_for

    dataset, unpaired = preference_dataset(script_args)
    model, processor = load_policy(model_args, script_args)
    training_args.remove_unused_columns = False  # images are attached from `image_path(s)` when a row is read
    peft_config = peft_config_for(model_args, model)
    if peft_config is None:
        logger.warning("DPO without use_peft: TRL loads a second copy of the model as the reference")
    trainer = DPOTrainer(model=model, ref_model=None, args=training_args, train_dataset=dataset,
                         processing_class=processor, peft_config=peft_config)
    logger.info("DPO on %d pairs -> %s", len(dataset), training_args.output_dir)
    return trainer


def train(script_args, training_args, model_args) -> Path:
    from medr1.train import pt

    return pt.train(script_args, training_args, model_args, build=build_trainer)


def main(argv: list[str] | None = None) -> int:
    from trl import DPOConfig

    from medr1.train.grpo import parse_args

    train(*parse_args(argv, DPOConfig, "medr1 dpo"))
    return 0
