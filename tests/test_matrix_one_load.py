"""`medr1 matrix` loads each model once for all of its missing cells, and writes what per-cell evaluation writes."""

import json
from pathlib import Path

EVAL = dict(limit=3, image_size=56, max_new_tokens=6, num_workers=0)
GROUPS = ["CT", "MRI", "OCT", "X-Ray"]  # rows CT and MRI have checkpoints: 2 models x 4 columns = 8 cells


def count_loads(monkeypatch) -> list:
    """A spy on the model class's from_pretrained: one entry per model load."""
    from transformers import AutoModelForImageTextToText

    loads, original = [], AutoModelForImageTextToText.from_pretrained

    def counted(cls, path, *args, **kwargs):
        loads.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", classmethod(counted))
    return loads


def test_one_load_per_model_and_the_same_cells_as_per_cell_evaluation(synthetic_data, diverse_model, tmp_path,
                                                                      monkeypatch):
    from medr1.evaluation.evaluate import evaluate
    from medr1.evaluation.matrix import run_matrix

    _, data = synthetic_data
    checkpoints = tmp_path / "grpo"
    checkpoints.mkdir()
    for group in ("CT", "MRI"):
        (checkpoints / group).symlink_to(diverse_model, target_is_directory=True)
    loads = count_loads(monkeypatch)

    manifest = run_matrix("modality", data, tmp_path / "results", checkpoints, groups=GROUPS, **EVAL)
    rows = [r for r in json.loads(manifest.read_text())["rows"] if not r["missing"]]
    cells = [(row["model"], column, cell) for row in rows for column, cell in row["cells"].items()]
    assert len(cells) == 8
    assert sorted(loads) == [str(checkpoints / "CT"), str(checkpoints / "MRI")]

    loads.clear()  # what the matrix did before: a fresh evaluate (and load) per cell
    for model, column, cell in cells:
        alone = tmp_path / "alone" / model.rsplit("/", 1)[-1] / column
        evaluate(model, data, f"modality/{column}/test", alone, **EVAL)
        assert (alone / "predictions.jsonl").read_bytes() == (Path(cell) / "predictions.jsonl").read_bytes()
        run_fields = ("seconds_this_run",)
        matrix_metrics, alone_metrics = (json.loads((d / "metrics.json").read_text())
                                         for d in (Path(cell), alone))
        assert {k: v for k, v in matrix_metrics.items() if k not in run_fields} == \
            {k: v for k, v in alone_metrics.items() if k not in run_fields}
    assert len(loads) == 8

    loads.clear()  # every cell done: a rerun loads nothing
    run_matrix("modality", data, tmp_path / "results", checkpoints, groups=GROUPS, **EVAL)
    assert loads == []


def test_cells_run_grouped_by_model_in_order_of_first_appearance():
    from medr1.evaluation.matrix import by_model

    a, b = {"model": "a"}, {"model": "b"}
    cells = [(a, "s1", 1), (b, "s1", 2), (a, "s2", 3), (b, "s2", 4), ({"model": "a"}, "zero-shot", 5)]
    assert [cell[2] for cell in by_model(cells)] == [1, 3, 5, 2, 4]


def test_the_cache_builds_once_per_model_and_releases_the_previous_one():
    from medr1.evaluation.evaluate import ModelCache

    built = []

    def build(value):
        return lambda: built.append(value) or value

    cache = ModelCache()
    assert cache.get("m1", "hf", build("m1")) == "m1" and cache.get("m1", "hf", build("again")) == "m1"
    assert cache.get("m1", "processor", build("p1")) == "p1"
    assert cache.get("m2", "hf", build("m2")) == "m2" and cache.entries == {"hf": "m2"}  # m1's entries dropped
    assert cache.get("m2", "hf", build("bigger"), fits=lambda held: held != "m2") == "bigger"  # did not fit
    assert built == ["m1", "p1", "m2", "bigger"]
