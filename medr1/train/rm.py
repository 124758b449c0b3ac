"""A reward model or verifier: `medr1 rm --config configs/rm/tiny_cpu.yaml --train_file pairs.jsonl`.

MedicalGPT's RM stage, on one of two kinds of JSONL `train_file` (the kind is read from the first record):

pairs
    `chosen`, `rejected` (strings), with the prompt as `prompt` (a string) or MedicalGPT's `conversations`
    ([{"from": "human", "value": ...}, ...]; the last human turn and those before it). TRL's `RewardTrainer`
    (Bradley-Terry) on a one-label sequence classifier: a scalar reward per response.
triples
    `response`, `reference` (the reference answer; for multiple choice the gold letter with the record's `options`),
    `correct` (bool). A two-label sequence classifier (False, True) trained with cross-entropy on HuatuoGPT-o1's
    verifier input (:func:`medr1.rewards.verifiers.classifier_input`, the very function the `classifier` verifier
    backend scores with), so the saved checkpoint is a `verifier_model` for `verifier: classifier`.

A record that fits neither kind, or mixes them, stops the run with its file and line. `model_name_or_path` is a
causal-LM (or sequence-classification) checkpoint; the classification head is new.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

PAIRS, TRIPLES = "pairs", "triples"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def conversation_messages(turns, where: str) -> list[dict]:
    """MedicalGPT's ShareGPT turns ({from, value}) as chat messages ({role, content})."""
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{where}: `conversations` must be a non-empty list of {{from, value}} turns")
    messages = []
    for turn in turns:
        role = ROLES.get(str(turn.get("from", "")).lower()) if isinstance(turn, dict) else None
        if role is None or not isinstance(turn.get("value"), str):
            raise ValueError(f"{where}: a turn must be {{from: human|gpt|system, value: str}}, not {turn!r}")
        messages.append({"role": role, "content": turn["value"]})
    if messages[-1]["role"] != "user":
        raise ValueError(f"{where}: the last turn of `conversations` must be the human's (the prompt)")
    return messages


def record_kind(entry: dict) -> str | None:
    if isinstance(entry, dict) and {"chosen", "rejected"} <= entry.keys():
        return PAIRS
    if isinstance(entry, dict) and {"response", "reference", "correct"} <= entry.keys():
        return TRIPLES
    return None


def read_jsonl(path) -> list[tuple[str, dict]]:
    """[(`file:line`, object)] of a JSONL file; a line that is not a JSON object raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"train_file {path} is not a file")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                entry = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{where}: not JSON ({error})") from None
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: not a JSON object")
            rows.append((where, entry))
    if not rows:
        raise ValueError(f"{path} holds no records")
    return rows


def read_rm_file(path) -> tuple[str, list[dict]]:
    """(kind, rows): pairs as {prompt?, chosen, rejected} (conversational when the record has a prompt), triples as
    {response, reference, correct}."""
    rows = read_jsonl(path)
    kind = record_kind(rows[0][1])
    if kind is None:
        raise ValueError(f"{rows[0][0]}: neither a pair (chosen, rejected) nor a triple (response, reference, correct)")
    out = []
    for where, entry in rows:
        if record_kind(entry) != kind:
            raise ValueError(f"{where}: not a {kind[:-1]} like the file's first record ({rows[0][0]})")
        out.append(pair_row(entry, where) if kind == PAIRS else triple_row(entry, where))
    return kind, out


def pair_row(entry: dict, where: str) -> dict:
    if not (isinstance(entry["chosen"], str) and isinstance(entry["rejected"], str)):
        raise ValueError(f"{where}: `chosen` and `rejected` must be strings")
    if "conversations" in entry:
        prompt = conversation_messages(entry["conversations"], where)
    elif isinstance(entry.get("prompt"), str):
        prompt = [{"role": "user", "content": entry["prompt"]}]
    else:
        return {"chosen": entry["chosen"], "rejected": entry["rejected"]}
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": entry["chosen"]}],
            "rejected": [{"role": "assistant", "content": entry["rejected"]}]}


def triple_row(entry: dict, where: str) -> dict:
    from medr1.rewards.verifiers import reference_text

    if not isinstance(entry["response"], str) or not isinstance(entry["correct"], bool):
        raise ValueError(f"{where}: `response` must be a string and `correct` true or false")
    return {"response": entry["response"], "reference": reference_text(str(entry["reference"]), entry.get("options")),
            "label": int(entry["correct"])}


def verifier_dataset(rows: list[dict], tokenizer, max_length: int | None):
    """Triples -> tokenized HuatuoGPT-o1 verifier inputs with labels (0 False, 1 True), as the backend reads them."""
    from datasets import Dataset

    from medr1.rewards.verifiers import ClassifierVerifier, classifier_input

    eos = tokenizer.eos_token or ""
    texts = [classifier_input(r["response"], r["reference"], eos) for r in rows]
    encoded = tokenizer(texts, add_special_tokens=False, truncation=True,
                        max_length=max_length or ClassifierVerifier.MAX_TOKENS)
    return Dataset.from_dict({**encoded, "labels": [r["label"] for r in rows]})


def load_tokenizer(model_args):
    from medr1.data.model_kinds import load_processing_class, tokenizer_of

    tokenizer = tokenizer_of(load_processing_class(model_args.model_name_or_path, revision=model_args.model_revision))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_classifier(model_args, num_labels: int, tokenizer):
    import torch
    from transformers import AutoModelForSequenceClassification

    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    labels = {"id2label": {0: "False", 1: "True"}, "label2id": {"False": 0, "True": 1}} if num_labels == 2 else {}
    model = AutoModelForSequenceClassification.from_pretrained(
        model_args.model_name_or_path, num_labels=num_labels, dtype=dtype, revision=model_args.model_revision,
        **labels)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def build_trainer(script_args, training_args, model_args):
    from transformers import DataCollatorWithPadding, Trainer
    from trl import RewardTrainer, get_peft_config

    if not script_args.train_file:
        raise ValueError("medr1 rm needs --train_file: JSONL pairs (chosen, rejected) or triples "
                         "(response, reference, correct)")
    kind, rows = read_rm_file(script_args.train_file)
    tokenizer = load_tokenizer(model_args)
    peft_config = get_peft_config(model_args)
    training_args.remove_unused_columns = False
    if kind == PAIRS:
        from datasets import Dataset

        model = load_classifier(model_args, 1, tokenizer)
        trainer = RewardTrainer(model=model, args=training_args, train_dataset=Dataset.from_list(rows),
                                processing_class=tokenizer, peft_config=peft_config)
    else:
        model = load_classifier(model_args, 2, tokenizer)
        if peft_config is not None:
            from peft import get_peft_model

            peft_config.task_type = "SEQ_CLS"
            model = get_peft_model(model, peft_config)
        tokenizer.padding_side = "right"  # as the verifier backend pads
        trainer = Trainer(model=model, args=training_args,
                          train_dataset=verifier_dataset(rows, tokenizer, getattr(training_args, "max_length", None)),
                          data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer)
    logger.info("RM on %d %s from %s -> %s", len(rows), kind, script_args.train_file, training_args.output_dir)
    return trainer, kind


def train(script_args, training_args, model_args) -> Path:
    from medr1.train.grpo import run_resumable
    from medr1.train.pt import resume_point

    trainer, kind = build_trainer(script_args, training_args, model_args)
    run_resumable(trainer, resume_point(script_args, training_args))
    out = Path(training_args.output_dir)
    model = trainer.model
    if kind == TRIPLES and getattr(model, "peft_config", None):
        model = model.merge_and_unload()  # the classifier backend loads a plain checkpoint
        model.save_pretrained(str(out))
    else:
        trainer.save_model(str(out))
    trainer.processing_class.save_pretrained(str(out))
    (out / "medr1_rm.json").write_text(json.dumps({"kind": kind, "train_file": str(script_args.train_file)}),
                                       encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    from trl import RewardConfig

    from medr1.train.grpo import parse_args

    train(*parse_args(argv, RewardConfig, "medr1 rm"))
    return 0
