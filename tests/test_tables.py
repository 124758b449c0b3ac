"""Table semantics on real cells: a training domain without a checkpoint is missing (empty, never zero, and
outside every average), a zero-shot-only run merges its row into the trained matrix, and a no-think variant
gives the think-minus-no-think difference."""

import csv
import json
from pathlib import Path

import pytest

EVAL = dict(limit=3, image_size=56, max_new_tokens=6, num_workers=0)


def test_missing_row_zero_shot_merge_and_nothink_difference(synthetic_data, compact_model, diverse_model,
                                                           tmp_path):
    from PIL import Image

    from medr1.evaluation.matrix import run_matrix
    from medr1.evaluation.tables import load_matrix, think_minus_nothink, write_tables

    _, data = synthetic_data
    checkpoints, results = tmp_path / "grpo", tmp_path / "results"
    checkpoints.mkdir()
    (checkpoints / "CT").symlink_to(diverse_model, target_is_directory=True)  # MRI has no checkpoint
    groups = ["CT", "MRI"]
    run_matrix("modality", data, results, checkpoints, groups=groups, **EVAL)
    run_matrix("modality", data, results, checkpoints, base_model=str(compact_model), zero_shot_only=True,
               groups=groups, **EVAL)
    nothink = tmp_path / "grpo-nothink"
    nothink.mkdir()
    (nothink / "CT").symlink_to(diverse_model, target_is_directory=True)
    run_matrix("modality", data, results, nothink, prompt="nothink", name="nothink", groups=groups, **EVAL)
    written = write_tables(results)

    layout = load_matrix(results / "matrix_modality.json")
    rows = {r["name"]: r for r in layout["rows"]}
    # The zero-shot-only run kept the trained rows and added its own.
    assert [r["kind"] for r in layout["rows"]] == ["trained", "trained", "zero-shot"]
    assert rows["MRI"]["missing"] and rows["MRI"]["cells"] == {"CT": None, "MRI": None}
    assert rows["MRI"]["in_domain"] is None and rows["MRI"]["overall"] is None
    ct = rows["CT"]["cells"]
    assert all(value is not None for value in ct.values())
    # Averages over the rows that exist only: CT's diagonal is the in-domain average, CT->MRI the cross-domain.
    assert layout["summary"]["in_domain"] == pytest.approx(ct["CT"])
    assert layout["summary"]["cross_domain"] == pytest.approx(ct["MRI"])
    zero_shot = next(r for r in layout["rows"] if r["kind"] == "zero-shot")
    assert layout["summary"]["zero_shot_overall"] == pytest.approx(zero_shot["overall"])
    with open(results / "cross_modality.csv") as handle:
        table = {row[0]: row for row in csv.reader(handle)}
    assert table["MRI (missing)"][1:3] == ["", ""]  # empty, never 0.00
    assert "MRI (missing)" in (results / "cross_modality.md").read_text()

    think_layout, nothink_layout = layout, load_matrix(results / "matrix_modality_nothink.json")
    difference, labels = think_minus_nothink(think_layout, nothink_layout)
    nothink_ct = next(r for r in nothink_layout["rows"] if r["name"] == "CT")["cells"]
    assert labels == ["CT"]  # MRI is missing on both sides
    assert difference == [[pytest.approx(ct[c] - nothink_ct[c]) for c in ("CT", "MRI")]]
    png = results / "cross_modality_think_minus_nothink.png"
    assert png in written and Image.open(png).size[0] > 100
    # Each cell's metrics name the model that made it: the checkpoint for its row, the base for zero-shot.
    for row in json.loads((results / "matrix_modality.json").read_text())["rows"]:
        for cell in row["cells"].values():
            assert json.loads((Path(cell) / "metrics.json").read_text())["model"] == row["model"]


def test_think_minus_nothink_by_domain_and_column():
    """Per training domain in both layouts: think minus no-think, per column; missing cells stay None."""
    from medr1.evaluation.tables import think_minus_nothink

    def layout(rows):
        return {"columns": ["CT", "MRI"], "rows": [
            {"name": name, "trained_on": name, "kind": kind, "missing": missing, "cells": cells}
            for name, kind, missing, cells in rows]}

    think = layout([("CT", "trained", False, {"CT": 80.0, "MRI": 40.0}),
                    ("MRI", "trained", False, {"CT": 30.0, "MRI": None}),
                    ("OCT", "trained", True, {"CT": None, "MRI": None}),
                    ("base (zero-shot)", "zero-shot", False, {"CT": 20.0, "MRI": 25.0})])
    nothink = layout([("CT", "trained", False, {"CT": 70.0, "MRI": 45.0}),
                      ("MRI", "trained", False, {"CT": 10.0, "MRI": 60.0})])
    rows, labels = think_minus_nothink(think, nothink)
    assert labels == ["CT", "MRI"]
    assert rows == [[pytest.approx(10.0), pytest.approx(-5.0)], [pytest.approx(20.0), None]]
