"""Continued pretraining on medical text: `medr1 pt --config configs/pt/tiny_cpu.yaml --train_file corpus/`.

MedicalGPT's PT stage. `train_file` is a folder (searched recursively) of `.txt` files, each non-empty line one
document, and `.jsonl` files, each line a JSON object with a non-empty string `text`. Documents are tokenized, each
followed by the EOS token, concatenated and cut into blocks of `block_size` tokens (:func:`pack_blocks`; the tail
shorter than a block is dropped). A plain causal-LM `Trainer` trains on the blocks (labels = inputs). Lines that are
not a document (not JSON, no `text`, empty text) are counted, logged with their file and line, and listed in
`output_dir/pt_data.json`; they never stop a run. `--resume` continues from the last checkpoint in output_dir.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt",)
JSON_SUFFIXES = (".jsonl", ".json")


def parse_text_line(line: str, suffix: str) -> tuple[str | None, str | None]:
    """(document, None) or (None, why the line is not one). Blank lines in `.txt` files separate documents and are
    neither."""
    if suffix in TEXT_SUFFIXES:
        return (line.strip() or None), None
    if not line.strip():
        return None, None
    try:
        entry = json.loads(line)
    except ValueError as error:
        return None, f"not JSON ({error})"
    if not isinstance(entry, dict) or "text" not in entry:
        return None, "no `text` field"
    if not isinstance(entry["text"], str) or not entry["text"].strip():
        return None, "`text` is not a non-empty string"
    return entry["text"], None


def read_corpus(folder) -> tuple[list[str], list[dict]]:
    """(documents, bad lines as {file, line, reason}) of every .txt/.jsonl file under `folder`, in path order."""
    folder = Path(folder)
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES + JSON_SUFFIXES)
    else:
        raise FileNotFoundError(f"train_file {folder} does not exist (a folder of .txt / .jsonl files)")
    documents, bad = [], []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                text, reason = parse_text_line(line, path.suffix)
                if text is not None:
                    documents.append(text)
                elif reason is not None:
                    bad.append({"file": str(path), "line": number, "reason": reason})
    if not documents:
        raise ValueError(f"no documents in {folder} ({len(files)} files, {len(bad)} bad lines)")
    return documents, bad


def pack_blocks(token_lists: list[list[int]], block_size: int, eos_id: int | None) -> list[list[int]]:
    """Documents' token ids, each followed by `eos_id` (when there is one), concatenated and cut into blocks of
    exactly `block_size`; the tail shorter than a block is dropped."""
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, not {block_size}")
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        if eos_id is not None:
            stream.append(eos_id)
    return [stream[i:i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]


def block_dataset(documents: list[str], tokenizer, block_size: int):
    from datasets import Dataset

    token_lists = tokenizer(documents, add_special_tokens=False)["input_ids"]
    blocks = pack_blocks(token_lists, block_size, tokenizer.eos_token_id)
    if not blocks:
        raise ValueError(f"{sum(map(len, token_lists))} tokens do not fill one block of {block_size}; "
                         "lower block_size or add text")
    return Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * block_size for _ in blocks],
                              "labels": blocks})


def build_trainer(script_args, training_args, model_args):
    from transformers import Trainer, default_data_collator

    from medr1.data.model_kinds import tokenizer_of
    from medr1.train.grpo import load_policy, peft_config_for

    if not script_args.train_file:
        raise ValueError("medr1 pt needs --train_file: a folder of .txt / .jsonl files")
    documents, bad = read_corpus(script_args.train_file)
    if bad:
        logger.warning("%s: %d lines are not documents and were skipped, e.g. %s", script_args.train_file, len(bad),
                       "; ".join(f"{b['file']}:{b['line']} ({b['reason']})" for b in bad[:5]))
    model, processor = load_policy(model_args, script_args)
    tokenizer = tokenizer_of(processor)
    dataset = block_dataset(documents, tokenizer, script_args.block_size)
    peft_config = peft_config_for(model_args, model)
    if peft_config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
    training_args.remove_unused_columns = False
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset, data_collator=default_data_collator,
                      processing_class=processor)
    out = Path(training_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"train_file": str(script_args.train_file), "documents": len(documents), "blocks": len(dataset),
              "block_size": script_args.block_size, "bad_lines": len(bad), "bad": bad}
    (out / "pt_data.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    logger.info("PT on %d documents -> %d blocks of %d tokens (%d bad lines) -> %s", len(documents), len(dataset),
                script_args.block_size, len(bad), out)
    return trainer


def resume_point(script_args, training_args) -> str | None:
    """The checkpoint to continue from: `resume_from_checkpoint`, or with `--resume` the last one in output_dir."""
    from medr1.train.grpo import last_checkpoint

    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    if not script_args.resume:
        return None
    found = last_checkpoint(training_args.output_dir)
    if found is None:
        logger.warning("--resume: no checkpoint in %s; starting afresh", training_args.output_dir)
    return found


def train(script_args, training_args, model_args, build=None) -> Path:
    """Build the stage's trainer (`build`, default this module's `build_trainer`; DPO passes its own), train from
    `resume_point`, save model and processing class to output_dir."""
    from medr1.train.grpo import run_resumable

    trainer = (build or build_trainer)(script_args, training_args, model_args)
    run_resumable(trainer, resume_point(script_args, training_args))
    out = Path(training_args.output_dir)
    trainer.save_model(str(out))
    trainer.processing_class.save_pretrained(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    from transformers import TrainingArguments

    from medr1.train.grpo import parse_args

    train(*parse_args(argv, TrainingArguments, "medr1 pt"))
    return 0
