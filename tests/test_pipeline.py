"""End to end on the embedded default: synth -> prepare -> prompts -> model, SFT, and the 2x2 chain
(train two modalities -> cross-evaluate -> tables) with the tables checked against the predictions."""

import csv
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_synth_prepare_prompts_generate(synthetic_data, qwen_vocab_model):
    """The real-vocabulary tiny model reads a prepared split's prompt and image and generates."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from medr1.data.records import prompt_dataset

    _, data = synthetic_data
    report = json.loads((data / "prepare_report.json").read_text())
    assert report["records_kept"] == 480 and report["records_skipped"] == 0
    dataset = prompt_dataset(data, "modality/X-Ray/test", style="think", stage="eval", image_size=56)
    row = dataset[0]
    assert row["image"].size == (56, 56) and row["image"].mode == "RGB"
    processor = AutoProcessor.from_pretrained(qwen_vocab_model)
    model = AutoModelForImageTextToText.from_pretrained(qwen_vocab_model)
    text = processor.apply_chat_template(row["prompt"], add_generation_prompt=True)
    assert "A)" in text and "<think>...</think>" in text
    inputs = processor(text=[text], images=[row["image"]], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
        generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert logits.shape[-1] == 151657 and torch.isfinite(logits).all()
    assert inputs.input_ids.shape[1] < generated.shape[1] <= inputs.input_ids.shape[1] + 5


def sft_args(compact_model, data, out, *extra):
    from trl import SFTConfig

    from medr1.train.grpo import parse_args

    return parse_args(
        ["--config", str(REPO / "configs/sft/tiny_cpu.yaml"), "--data_dir", str(data),
         "--task", "Lesion Grading", "--model_name_or_path", str(compact_model),
         "--output_dir", str(out), "--report_to", "none", "--save_strategy", "no", *extra],
        SFTConfig, "test")


def test_sft_labels_cover_the_answer_only(synthetic_data, compact_model, tmp_path):
    """The batches SFT trains on: label -100 on every prompt token (image tokens included) and on padding;
    over the completion the labels are the input ids and spell exactly `<answer> X </answer><|im_end|>`
    with X the gold letter."""
    import torch

    from medr1.train.sft import build_trainer

    trainer = build_trainer(*sft_args(compact_model, synthetic_data[1], tmp_path / "sft"))
    rows = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(rows)
    tokenizer = trainer.processing_class.tokenizer
    image_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for i, row in enumerate(rows):
        ids, labels, mask = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        trained = (labels != -100).nonzero().flatten()
        assert len(trained) and torch.equal(trained, torch.arange(trained[0], trained[-1] + 1))  # one span
        assert torch.equal(labels[trained], ids[trained])
        assert tokenizer.decode(ids[trained]) == f"<answer> {row['answer']} </answer><|im_end|>\n"
        prompt = ids[:trained[0]][mask[:trained[0]] == 1]
        assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")  # everything before is prompt
        assert (ids == image_token).sum() > 0 and (labels[ids == image_token] == -100).all()
        assert (labels[mask == 0] == -100).all()


def test_sft_trains_and_writes_its_run(synthetic_data, compact_model, tmp_path):
    from medr1.train.sft import target_text, train

    assert target_text("C", "nothink") == "<answer> C </answer>"
    assert target_text("C", "think").startswith("<think>") and target_text("C", "think-after").endswith("</think>")
    assert target_text("B", "think", "red") == "<think>red</think><answer> B </answer>"
    script_args, training_args, model_args = sft_args(compact_model, tmp_path / "unused", tmp_path / "sft/{target}")
    script_args.data_dir = str(synthetic_data[1])
    out = train(script_args, training_args, model_args)
    assert out == tmp_path / "sft" / "Lesion Grading"
    assert (out / "model.safetensors").is_file() and (out / "medr1_run.json").is_file()
    run = json.loads((out / "medr1_run.json").read_text())
    assert run["split"] == "task/Lesion Grading/train" and run["n_questions"] > 0
    # provenance: the recorded hashes are those of the files the run read
    import hashlib

    data = synthetic_data[1]
    split_file = data / "splits" / "task" / "Lesion Grading" / "train.jsonl"
    assert run["split_sha256"] == hashlib.sha256(split_file.read_bytes()).hexdigest()
    assert run["manifest_sha256"] == hashlib.sha256((data / "manifest.json").read_bytes()).hexdigest()
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["files"]["splits/task/Lesion Grading/train.jsonl"] == run["split_sha256"]
    assert run["n_questions"] == len(split_file.read_text().splitlines())


@pytest.mark.slow
def test_two_by_two_chain_train_cross_evaluate_tables(synthetic_data, compact_model, tmp_path):
    from trl import GRPOConfig

    from medr1.cli import main
    from medr1.evaluation.tables import load_matrix
    from medr1.train.grpo import parse_args, train

    def varied_reward(completions, **kwargs):
        # An untrained policy never earns the format reward, and zero rewards leave the weights where they
        # were: this deterministic reward has variance in every group, so each checkpoint really trains.
        return [float(len(str(completion)) % 5) for completion in completions]

    _, data = synthetic_data
    checkpoints, results = tmp_path / "grpo", tmp_path / "results"
    for modality in ("CT", "MRI"):
        train(*parse_args(["--config", str(REPO / "configs/grpo/tiny_cpu.yaml"), "--data_dir", str(data),
                           "--modality", modality, "--model_name_or_path", str(compact_model),
                           "--output_dir", str(checkpoints / "{target}"), "--report_to", "none",
                           "--log_completions", "false", "--max_steps", "2", "--save_strategy", "no",
                           "--max_completion_length", "8", "--learning_rate", "0.01"], GRPOConfig, "test"),
              reward_funcs=[varied_reward])
    eval_args = ["--limit", "6", "--image-size", "56", "--max-new-tokens", "8", "--num-workers", "0"]
    assert main(["matrix", "--axis", "modality", "--data", str(data), "--checkpoints", str(checkpoints),
                 "--base-model", str(compact_model), "--results", str(results), "--groups", "CT", "MRI",
                 *eval_args]) == 0
    cells_before = sorted(p.stat().st_mtime for p in results.glob("cells/**/metrics.json"))
    assert len(cells_before) == 6  # 2 trained rows x 2 columns + the zero-shot row
    # Cached: a second run evaluates nothing.
    main(["matrix", "--axis", "modality", "--data", str(data), "--checkpoints", str(checkpoints),
          "--base-model", str(compact_model), "--results", str(results), "--groups", "CT", "MRI", *eval_args])
    assert sorted(p.stat().st_mtime for p in results.glob("cells/**/metrics.json")) == cells_before
    assert main(["tables", "--results", str(results)]) == 0
    for suffix in ("md", "csv", "tex", "png"):
        assert (results / f"cross_modality.{suffix}").is_file()

    layout = load_matrix(results / "matrix_modality.json")
    rows = {r["name"]: r for r in layout["rows"]}
    cell_dirs = {r["name"]: r["cells"] for r in json.loads((results / "matrix_modality.json").read_text())["rows"]}
    for name in ("CT", "MRI"):
        for column in ("CT", "MRI"):
            cell_dir = Path(cell_dirs[name][column])
            lines = [json.loads(line) for line in (cell_dir / "predictions.jsonl").read_text().splitlines()]
            assert len(lines) == 6
            assert rows[name]["cells"][column] == pytest.approx(100 * sum(p["correct"] for p in lines) / 6)
            metrics = json.loads((cell_dir / "metrics.json").read_text())
            assert metrics["accuracy"] * 100 == pytest.approx(rows[name]["cells"][column])
            # the cell was made by its own row's checkpoint, on its own column's split
            assert metrics["model"] == str(checkpoints / name) and metrics["split"] == f"modality/{column}/test"
    # and the two checkpoints are trained models, not the base model twice
    from safetensors.torch import load_file

    base = load_file(compact_model / "model.safetensors")
    trained = {name: load_file(checkpoints / name / "model.safetensors") for name in ("CT", "MRI")}
    for weights in trained.values():
        assert any(not weights[k].equal(base[k]) for k in base)
    assert any(not trained["CT"][k].equal(trained["MRI"][k]) for k in base)
    zero_shot = next(r for r in json.loads((results / "matrix_modality.json").read_text())["rows"]
                     if r["kind"] == "zero-shot")
    for cell in zero_shot["cells"].values():
        assert json.loads((Path(cell) / "metrics.json").read_text())["model"] == str(compact_model)
    diagonal = [rows["CT"]["cells"]["CT"], rows["MRI"]["cells"]["MRI"]]
    off = [rows["CT"]["cells"]["MRI"], rows["MRI"]["cells"]["CT"]]
    assert layout["summary"]["in_domain"] == pytest.approx(sum(diagonal) / 2)
    assert layout["summary"]["cross_domain"] == pytest.approx(sum(off) / 2)
    assert layout["summary"]["overall"] == pytest.approx(sum(diagonal + off) / 4)
    with open(results / "cross_modality.csv") as handle:
        table = list(csv.reader(handle))
    assert table[0][:3] == ["Trained on \\ Tested on", "CT", "MRI"]
    ct_row = next(r for r in table if r[0] == "CT")
    assert float(ct_row[1]) == pytest.approx(rows["CT"]["cells"]["CT"], abs=0.005)
    markdown = (results / "cross_modality.md").read_text()
    assert "69.91" in markdown and "99.17" in markdown  # the paper's numbers beside ours


def test_warm_start_reasoning_names_what_is_drawn(synthetic_data):
    """The demo's warm-start reasoning: <think> says the colour seen in the record's image, independently of the
    (random) answer letter."""
    from medr1.data.records import load_split
    from medr1.embedded.synth import COLOUR_NAMES, LABELS, finding_colour_reasoning

    _, data = synthetic_data
    reasoning = finding_colour_reasoning(data, image_size=56)
    for record in load_split(data, "modality/CT/train", limit=20):
        said = reasoning({**record, "image_path": record["image"]})
        if record["task"] == "Modality Recognition":
            assert said == "none"
        else:
            label = record["options"][ord(record["answer"]) - ord("A")]
            assert said == COLOUR_NAMES[LABELS[record["task"]].index(label)]


def test_demo_vocabulary_has_each_think_word_whole(synthetic_data, tmp_path):
    """The demo's compact vocabulary writes every <think> word as one token (as a real VLM's
    does; spelled letter by letter, GRPO drifted "blue" into "blllow"), and the prompts stay as short."""
    from transformers import AutoTokenizer

    from medr1.embedded.demo import build_model, think_words
    from medr1.embedded.tiny_model import build_tiny_model, corpus_from_records

    _, data = synthetic_data
    with_words = AutoTokenizer.from_pretrained(build_model(tmp_path / "a", data, 56, 16, 1, seed=0))  # the default
    plain = AutoTokenizer.from_pretrained(build_model(tmp_path / "b", data, 56, 16, 1, seed=0,
                                                      whole_think_words=False))
    assert len(plain) == len(AutoTokenizer.from_pretrained(build_tiny_model(  # spelled: the prompts alone
        tmp_path / "c" / "tiny-model", vocab="compact", corpus=corpus_from_records(data / "records.jsonl"),
        image_size=56, hidden_size=16, layers=1, seed=0)))
    def pieces(tokenizer, text):
        return [tokenizer.decode([i]) for i in tokenizer(text)["input_ids"]]

    for text in think_words():
        word = text.removeprefix("<think>").removesuffix("</think>")
        assert any(word in piece for piece in pieces(with_words, text)), pieces(with_words, text)
        assert not any(word in piece for piece in pieces(plain, text))  # spelled out without them in the corpus
    question = "What organ does the highlighted region show? A. Liver B. Brain C. Lung D. Kidney"
    assert len(with_words(question)["input_ids"]) <= len(plain(question)["input_ids"])


def test_colour_named_rate_reads_think_against_the_image(synthetic_data, tmp_path):
    """The demo's perception figure: a <think> counts when it is the colour read from that question's image."""
    from medr1.data.records import load_split
    from medr1.embedded.demo import colour_named_rate, colours_seen
    from medr1.embedded.synth import finding_colour_reasoning

    _, data = synthetic_data
    seen = finding_colour_reasoning(data, image_size=56)
    records = [r for r in load_split(data, "modality/CT/test") if r["task"] != "Modality Recognition"][:4]
    colours = [seen({**r, "image_path": r["image"]}) for r in records]
    outputs = [f"<think>{colours[0]}</think><answer> A </answer>", f"<think> {colours[1]} </think><answer> B </answer>",
               "<think>purple</think><answer> C </answer>", "<answer> D </answer>"]
    with open(tmp_path / "predictions.jsonl", "w") as handle:
        for record, output in zip(records, outputs):
            handle.write(json.dumps({"question_id": record["question_id"], "output": output}) + "\n")
    assert colour_named_rate(tmp_path, colours_seen(data, "CT", 56)) == 0.5


def test_sft_think_sources():
    """sft_think: the fixed placeholder, a record column (named in the error when missing), nothing else."""
    import pytest

    from medr1.train.configs import MedR1Arguments
    from medr1.train.sft import reasoning_for

    assert reasoning_for(MedR1Arguments(sft_think="fixed"))({}).startswith("I look")
    from_column = reasoning_for(MedR1Arguments(sft_think="column:trace"))
    assert from_column({"question_id": "q1", "trace": "the mass is bright"}) == "the mass is bright"
    with pytest.raises(ValueError, match="'q2'.*'trace'"):
        from_column({"question_id": "q2"})
    for bad in ("caption", "finding-colour", "column:"):
        with pytest.raises(ValueError, match="sft_think"):
            reasoning_for(MedR1Arguments(sft_think=bad))


@pytest.mark.slow
def test_demo_command_runs_end_to_end(tmp_path, monkeypatch):
    """`medr1 demo`, the first quick-start command, at a small size from another working directory: it
    writes the summary with its keys, a reward-curve PNG and the cross-modality table."""
    from PIL import Image

    from medr1.cli import main

    monkeypatch.chdir(tmp_path)  # the recipes are found beside the package, not in the working directory
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--per-modality", "40", "--grpo-set", "max_steps=3",
                 "--sft-set", "max_steps=3", "--sft-set", "logging_steps=1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("before_accuracy", "after_accuracy", "before_colour_named", "after_colour_named", "n_test", "seconds",
                "vocabulary", "paths"):
        assert key in summary, key
    assert 0 <= summary["before_accuracy"] <= 1 and 0 <= summary["after_accuracy"] <= 1
    assert summary["n_test"] == 8  # 40 CT questions, 20 % test
    curve = Path(summary["paths"]["reward_curve"])
    assert curve.suffix == ".png" and Image.open(curve).size[0] > 100
    table = Path(summary["paths"]["cross_modality_table"]).read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Trained on"))
    for modality in ("CT", "MRI", "X-Ray", "Ultrasound", "Dermoscopy", "Fundus Photography", "OCT", "Microscopy"):
        assert modality in header
    assert "\n| CT |" in table or "\n| CT (" in table
