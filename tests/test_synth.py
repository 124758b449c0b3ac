"""The synthetic dataset: the raw OmniMedVQA layout with its quirks, and answers the image decides."""

import json
from collections import Counter

from PIL import Image

from medr1.embedded.synth import CLASS_COLOURS, LABELS, write_synthetic_dataset
from medr1.sources.omnimedvqa import LETTERS, MODALITIES, RAW_MODALITY, TASKS, canonicalize


def read_raw(root):
    records = []
    for path in sorted((root / "QA_information" / "Open-access").glob("*.json")):
        records += json.loads(path.read_text())
    return records


def test_layout_quirks_and_coverage(synthetic_data):
    raw_root, _ = synthetic_data
    records = read_raw(raw_root)
    assert len(records) == 60 * len(MODALITIES)
    raw_modalities = {r.get("modality_type", r.get("modality")) for r in records}
    assert raw_modalities == set(RAW_MODALITY.values())  # typos included
    assert sum("modality" in r for r in records) == 1  # the one record keyed `modality`
    canonical = [canonicalize(r) for r in records]
    assert {(r["modality"], r["task"]) for r in canonical} == {(m, t) for m in MODALITIES for t in TASKS}
    assert {len(r["options"]) for r in canonical} == {2, 3, 4}
    letters = Counter(r["answer"] for r in canonical)
    assert set(letters) == set(LETTERS) and min(letters.values()) > 0.1 * len(canonical)
    for r in records:
        assert (raw_root / r["image_path"]).is_file()


def test_the_image_decides_the_answer(tmp_path):
    """Each finding is drawn in its class colour: the pixel at the drawing's centre names the answer."""
    root = tmp_path / "raw"
    write_synthetic_dataset(root, per_modality=25, image_size=64, seed=3)
    checked = 0
    for raw in read_raw(root):
        record = canonicalize(raw)
        if record["task"] == "Modality Recognition":
            continue
        label = record["options"][LETTERS.index(record["answer"])]
        colour = CLASS_COLOURS[LABELS[record["task"]].index(label)]
        pixels = Image.open(root / record["image"]).convert("RGB").getdata()
        share = sum(p == colour for p in pixels) / len(pixels)
        assert share > 0.03, (record["question_id"], share)
        checked += 1
    assert checked >= 100


def test_same_seed_same_dataset(tmp_path):
    write_synthetic_dataset(tmp_path / "a", per_modality=10, image_size=32, seed=1)
    write_synthetic_dataset(tmp_path / "b", per_modality=10, image_size=32, seed=1)
    assert read_raw(tmp_path / "a") == read_raw(tmp_path / "b")


def test_task_subset_and_letter_balance(tmp_path):
    """`tasks` restricts the questions; with the four finding tasks and fixed options, the gold letter is
    the class colour's index, so letters are balanced and no single letter is a shortcut."""
    tasks = [t for t in TASKS if t != "Modality Recognition"]
    write_synthetic_dataset(tmp_path / "raw", per_modality=200, image_size=32, seed=5, option_order="fixed",
                            tasks=tasks)
    records = [canonicalize(raw) for raw in read_raw(tmp_path / "raw")]
    assert {r["task"] for r in records} == set(tasks)
    for record in records:
        label = record["options"][LETTERS.index(record["answer"])]
        assert LETTERS.index(record["answer"]) == LABELS[record["task"]].index(label)
    for modality in MODALITIES:
        letters = Counter(r["answer"] for r in records if r["modality"] == modality)
        assert max(letters.values()) / sum(letters.values()) < 0.33, (modality, letters)


def test_unknown_task_is_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="subset"):
        write_synthetic_dataset(tmp_path / "raw", per_modality=2, image_size=32, tasks=["Radiomics"])


def test_finding_colour_reads_the_drawing_not_the_label(tmp_path):
    """The demo's perception: the colour named from the pixels is the class colour of every drawn finding,
    and nothing is named on an undrawn (Modality Recognition) CT image."""
    from medr1.data.images import load_image
    from medr1.embedded.synth import COLOUR_NAMES, finding_colour

    root = tmp_path / "raw"
    write_synthetic_dataset(root, per_modality=40, image_size=128, seed=7)
    checked = 0
    for raw in read_raw(root):
        record = canonicalize(raw)
        if record["modality"] != "CT":
            continue
        seen = finding_colour(load_image(root / record["image"], size=56))
        if record["task"] == "Modality Recognition":
            assert seen is None, record["question_id"]
            continue
        label = record["options"][LETTERS.index(record["answer"])]
        assert seen == COLOUR_NAMES[LABELS[record["task"]].index(label)], record["question_id"]
        checked += 1
    assert checked >= 30


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    """Reproducible to the byte: the same seed writes identical JSON and image files; another seed differs."""
    def tree(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_synthetic_dataset(tmp_path / name, per_modality=10, image_size=48, seed=seed)
    a, b, c = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    images = [path for path in a if path.startswith("Images")]
    assert len(images) == 10 * len(MODALITIES) and a == b
    assert any(a[path] != c.get(path) for path in images)
    assert read_raw(tmp_path / "a") != read_raw(tmp_path / "c")
