"""Multi-image questions end to end: `medr1 synth --slices N` -> prepare (every slice validated) -> prompts
with N image parts in order -> 2 GRPO steps, 2 SFT steps and an evaluation on the tiny model."""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLICES = 3


@pytest.fixture(scope="module")
def slice_data(tmp_path_factory):
    """(raw root, DATA_DIR) of a multi-slice synthetic set: 20 questions per modality, 3 slices each."""
    from medr1.data.prepare import prepare
    from medr1.embedded.synth import write_synthetic_dataset

    base = tmp_path_factory.mktemp("slices")
    raw, data = base / "omnimedvqa", base / "data"
    write_synthetic_dataset(raw, per_modality=20, image_size=64, seed=0, slices=SLICES)
    prepare(raw, data, seed=42)
    return raw, data


def test_synth_writes_slice_questions_and_prepare_keeps_them(slice_data):
    from medr1.data.records import load_split

    raw, data = slice_data
    report = json.loads((data / "prepare_report.json").read_text())
    assert report["records_kept"] == 160 and report["records_skipped"] == 0
    assert report["images_checked"] == 160 * SLICES  # every slice was checked, not just the first
    for record in load_split(data, "modality/CT/train"):
        assert "image" not in record and len(record["images"]) == SLICES
        assert all((raw / path).is_file() for path in record["images"])
        assert record["options"][ord(record["answer"]) - 65].startswith("Slice ")
    assert report["splits"]["modality"]["CT"]["shared_images"] == 0


def test_prepare_names_the_bad_slice(tmp_path):
    """One truncated slice and one missing slice: each record is a named skip saying which image."""
    from medr1.data.prepare import prepare
    from medr1.embedded.synth import write_synthetic_dataset

    raw = tmp_path / "raw"
    write_synthetic_dataset(raw, per_modality=4, image_size=64, seed=1, slices=SLICES)
    records = json.loads((raw / "QA_information/Open-access/Synthetic CT.json").read_text())
    missing, cut = records[1]["images"][1], records[2]["images"][2]
    (raw / missing).unlink()
    (raw / cut).write_bytes((raw / cut).read_bytes()[:60])
    report = prepare(raw, tmp_path / "data")
    skips = {s["question_id"]: s["reason"] for s in report["skipped"]}
    assert skips == {
        records[1]["question_id"]: f"image missing: image 2 of {SLICES}, {missing}",
        records[2]["question_id"]: f"image truncated (PNG end marker missing): image 3 of {SLICES}, {cut}",
    }
    assert report["skipped_by_reason"] == {"image missing": 1, "image truncated": 1}
    assert report["records_kept"] == 8 * 4 - 2


def test_raw_images_field_rules():
    from medr1.sources.omnimedvqa import RecordError, canonicalize, record_images

    raw = {"question_id": "q", "dataset": "D", "question": "Which slice?", "gt_answer": "Slice 2",
           "question_type": "Disease Diagnosis", "modality_type": "CT", "option_A": "Slice 1", "option_B": "Slice 2"}
    assert canonicalize({**raw, "images": ["a.png", " b.png "]})["images"] == ["a.png", "b.png"]
    assert canonicalize({**raw, "images": ["a.png"]})["image"] == "a.png"  # one image: the single-image shape
    assert record_images(canonicalize({**raw, "image_path": "x.png"})) == ["x.png"]
    for bad, reason in (({"images": []}, "missing field: images"), ({"images": ["a", ""]}, "not a list"),
                        ({"images": "a.png"}, "not a list"), ({"images": ["a"], "image_path": "b"}, "both")):
        with pytest.raises(RecordError, match=reason):
            canonicalize({**raw, **bad})


def test_prompt_has_one_image_part_per_slice_in_order(slice_data, compact_model):
    """The prompt holds N image parts then the text; the images come in slice order (the finding is on the
    gold slice only), and the processor sees N image blocks, whose token count the budget predicts."""
    from transformers import AutoProcessor

    from medr1.data.budget import dataset_prompts, prompt_costs
    from medr1.data.records import image_size_reader, prompt_dataset
    from medr1.embedded.synth import finding_colour

    _, data = slice_data
    dataset = prompt_dataset(data, "modality/CT/train", style="think", stage="train", image_size=56)
    processor = AutoProcessor.from_pretrained(compact_model)
    question_ids, texts, paths = dataset_prompts(dataset, processor)
    size_of = image_size_reader(data, 56)
    costs = prompt_costs(processor, question_ids, texts, [[size_of(p) for p in ps] for ps in paths])
    for i in range(4):
        row = dataset[i]
        content = row["prompt"][0]["content"]
        assert [part["type"] for part in content] == ["image"] * SLICES + ["text"]
        assert len(row["images"]) == SLICES and all(im.size == (56, 56) for im in row["images"])
        gold_slice = int(row["options"][ord(row["answer"]) - 65].split()[-1])
        drawn = [finding_colour(im) is not None for im in row["images"]]
        assert drawn == [k + 1 == gold_slice for k in range(SLICES)]
        assert texts[i].count("<|vision_start|><|image_pad|><|vision_end|>") == SLICES
        inputs = processor(text=[texts[i]], images=row["images"], return_tensors="pt")
        assert inputs["image_grid_thw"].shape[0] == SLICES
        assert costs[i].tokens == inputs["input_ids"].shape[1] and costs[i].images == SLICES


def test_grpo_two_steps_on_slices(slice_data, compact_model, tmp_path):
    from trl import GRPOConfig

    from medr1.train.grpo import parse_args, train

    seen = []

    def slice_reward(completions, image_paths, **kwargs):
        seen.extend(len(paths) for paths in image_paths)  # every record column reaches the reward
        return [float(len(str(c)) % 3) for c in completions]

    _, data = slice_data
    out = train(*parse_args(
        ["--config", str(REPO / "configs/grpo/tiny_cpu.yaml"), "--data_dir", str(data), "--modality", "CT",
         "--model_name_or_path", str(compact_model), "--output_dir", str(tmp_path / "grpo"), "--report_to", "none",
         "--log_completions", "false", "--max_steps", "2", "--save_strategy", "no", "--max_completion_length", "8",
         "--image_size", "56"], GRPOConfig, "test"), reward_funcs=[slice_reward])
    assert (out / "model.safetensors").is_file()
    assert seen and set(seen) == {SLICES}
    assert json.loads((out / "medr1_run.json").read_text())["n_questions"] == 16


def test_sft_two_steps_on_slices(slice_data, compact_model, tmp_path):
    from trl import SFTConfig

    from medr1.train.grpo import parse_args
    from medr1.train.sft import build_trainer

    _, data = slice_data
    trainer = build_trainer(*parse_args(
        ["--config", str(REPO / "configs/sft/tiny_cpu.yaml"), "--data_dir", str(data), "--modality", "CT",
         "--model_name_or_path", str(compact_model), "--output_dir", str(tmp_path / "sft"), "--report_to", "none",
         "--save_strategy", "no", "--max_steps", "2", "--per_device_train_batch_size", "2"], SFTConfig, "test"))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    assert batch["image_grid_thw"].shape[0] == 2 * SLICES  # every slice of both questions went in
    trainer.train()
    assert trainer.state.global_step == 2


def test_eval_on_slices(slice_data, compact_model, tmp_path):
    from medr1.data.records import load_split
    from medr1.evaluation.evaluate import evaluate

    _, data = slice_data
    metrics = evaluate(compact_model, data, "modality/CT/test", tmp_path / "eval", image_size=56, max_new_tokens=8,
                       num_workers=0, batch_size=2)
    lines = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert metrics["n"] == len(load_split(data, "modality/CT/test")) == len(lines) == 4
    assert all(p["prompt_text"].count("<|image_pad|>") == SLICES for p in lines)


def test_compact_corpus_takes_every_text_part(tmp_path):
    """corpus_from_records takes the prompt text of every record shape: after one image part, after three
    (slices), and a text record's plain-string prompt; a vocabulary built on it covers their words."""
    from medr1.data.prompts import PROMPT_STYLES, build_conversation
    from medr1.embedded.tiny_model import corpus_from_records
    from medr1.sources.medqa import TEXT_MODALITY

    base = {"dataset": "D", "task": "Disease Diagnosis", "answer": "A"}
    records = [
        {**base, "question_id": "one", "modality": "CT", "image": "a.png", "question": "Which lobe?",
         "options": ["left", "right"]},
        {**base, "question_id": "slices", "modality": "CT", "images": ["s1.png", "s2.png", "s3.png"],
         "question": "Which slice shows the haemorrhage?", "options": ["Slice 1", "Slice 2", "Slice 3"]},
        {**base, "question_id": "text", "modality": TEXT_MODALITY, "question": "Which vitamin deficiency causes "
         "scurvy?", "options": ["Vitamin C", "Vitamin D"]},
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    corpus = corpus_from_records(path)
    for record in records:
        for style in PROMPT_STYLES:
            for stage in ("train", "eval"):
                content = build_conversation(record, style=style, stage=stage)[0]["content"]
                text = content if isinstance(content, str) else content[-1]["text"]
                assert text in corpus, (record["question_id"], style, stage)
    assert any("haemorrhage" in text and "Slice 3" in text for text in corpus)
    assert any(text.startswith("Which vitamin deficiency") for text in corpus)
