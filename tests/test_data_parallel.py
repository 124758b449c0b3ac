"""Data-parallel evaluation: the shard rule and the merge (pure), and two CPU processes under torchrun writing
the files one process writes, also when they resume from a killed run's shard files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medr1.evaluation.sharding import World, merge_predictions, shard, shard_path, shard_paths, world_from_env

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("modality/CT/test", "modality/MRI/test")  # CT: a fresh cell; MRI: resumed from a killed run's files
EVAL = dict(limit=6, image_size=56, max_new_tokens=8, num_workers=0, batch_size=2)
RUN_ONLY = ("seconds_this_run", "questions_this_run", "world_size", "questions_by_rank")


def line(question_id, output="x"):
    return {"question_id": question_id, "output": output}


def test_the_world_comes_from_the_launchers_variables():
    assert world_from_env({}) == World(rank=0, size=1, local_rank=0)
    assert world_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == World(3, 4, 1)
    assert world_from_env({"WORLD_SIZE": "2", "RANK": "1"}) == World(1, 2, 1)  # LOCAL_RANK defaults to RANK
    for bad in ({"WORLD_SIZE": "2", "RANK": "2"}, {"WORLD_SIZE": "0"}, {"WORLD_SIZE": "two"}):
        with pytest.raises(ValueError, match="WORLD_SIZE"):
            world_from_env(bad)


def test_the_shards_are_round_robin_disjoint_and_cover_the_order():
    order = list("abcdefg")
    shards = [shard(order, rank, 3) for rank in range(3)]
    assert shards == [["a", "d", "g"], ["b", "e"], ["c", "f"]]
    assert sorted(sum(shards, [])) == order
    assert shard(order, 0, 1) == order
    with pytest.raises(ValueError):
        shard(order, 3, 3)


def test_the_merge_keeps_existing_lines_then_follows_the_decoding_order():
    existing = [line("c"), line("stale")]  # a killed 1-process run's lines stay first, as they are
    sources = [[line("d", "rank0"), line("a")], [line("b"), line("d", "again"), line("old-limit")]]
    merged = merge_predictions(existing, sources, order=["a", "b", "c", "d"])
    assert [p["question_id"] for p in merged] == ["c", "stale", "a", "b", "d", "old-limit"]
    assert merged[4]["output"] == "rank0"  # a question in two files is written once, from the first
    assert merge_predictions([], [], ["a"]) == []


def test_shard_files_are_found_by_rank(tmp_path):
    for rank in (10, 2, 0):
        shard_path(tmp_path, rank).write_text("")
    (tmp_path / "predictions.rankx.jsonl").write_text("")
    (tmp_path / "predictions.jsonl").write_text("")
    assert [p.name for p in shard_paths(tmp_path)] == [f"predictions.rank{r}.jsonl" for r in (0, 2, 10)]


@pytest.fixture(scope="module")
def reference(synthetic_data, diverse_model, tmp_path_factory):
    """(checkpoints, {split: (predictions bytes, metrics)}) of 1-process runs of the CT row on both splits."""
    from medr1.evaluation.evaluate import evaluate
    from medr1.evaluation.matrix import cell_dir

    _, data = synthetic_data
    base = tmp_path_factory.mktemp("dp-reference")
    checkpoints = base / "grpo"
    checkpoints.mkdir()
    (checkpoints / "CT").symlink_to(diverse_model, target_is_directory=True)
    expected = {}
    for split in SPLITS:
        out = cell_dir(base / "results", str(checkpoints / "CT"), "think", split)
        metrics = evaluate(str(checkpoints / "CT"), data, split, out, **EVAL)
        expected[split] = ((out / "predictions.jsonl").read_bytes(), metrics)
    lines = expected[SPLITS[0]][0].splitlines()
    assert len(lines) == 6 and len({json.loads(x)["output"] for x in lines}) > 1  # outputs differ: a real check
    return checkpoints, expected


def prewrite_killed_run(cell: Path, predictions: bytes) -> None:
    """What a killed run leaves: a 1-process run's first line in predictions.jsonl, then (relaunched on 2
    processes) rank 1's first two questions in its shard file and half a line torn by the kill."""
    lines = predictions.splitlines(keepends=True)  # in decoding order: q0 .. q5; rank 1's share is q1, q3, q5
    cell.mkdir(parents=True)
    (cell / "predictions.jsonl").write_bytes(lines[0])
    shard_path(cell, 1).write_bytes(lines[1] + lines[3] + lines[5][:20])


@pytest.fixture(scope="module")
def two_processes(synthetic_data, reference, tmp_path_factory):
    """`torchrun --nproc_per_node 2 -m medr1.cli matrix` on the CT row's two cells, one of them part-done."""
    from medr1.evaluation.matrix import cell_dir

    _, data = synthetic_data
    checkpoints, expected = reference
    results = tmp_path_factory.mktemp("dp-two") / "results"
    prewrite_killed_run(cell_dir(results, str(checkpoints / "CT"), "think", SPLITS[1]), expected[SPLITS[1]][0])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "medr1.cli", "matrix", "--axis", "modality", "--groups", "CT", "MRI", "--data", str(data),
               "--checkpoints", str(checkpoints), "--results", str(results),
               *[f"--{key.replace('_', '-')}={value}" for key, value in EVAL.items()]]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return results, checkpoints, expected


def test_two_processes_write_what_one_process_writes(two_processes):
    """Both ranks decode (in batches unlike one process's), and rank 0's merged file is byte for byte the
    1-process file: the same question order, outputs and scores; the metrics differ only in the run fields."""
    from medr1.evaluation.matrix import cell_dir

    results, checkpoints, expected = two_processes
    cell = cell_dir(results, str(checkpoints / "CT"), "think", SPLITS[0])
    one_process, one_metrics = expected[SPLITS[0]]
    assert (cell / "predictions.jsonl").read_bytes() == one_process
    assert shard_paths(cell) == []  # merged, then removed
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["questions_by_rank"] == [3, 3]
    assert one_metrics["world_size"] == 1 and one_metrics["questions_by_rank"] == [6]
    assert {k: v for k, v in metrics.items() if k not in RUN_ONLY} == \
        {k: v for k, v in one_metrics.items() if k not in RUN_ONLY}
    layout = json.loads((results / "matrix_modality.json").read_text())  # written once, by rank 0
    assert layout["rows"][0]["cells"] == {"CT": str(cell), "MRI": str(cell.parents[1] / "MRI" / "test")}


def test_a_killed_run_resumes_from_its_shard_and_merged_files(two_processes):
    """Rank 0 skips the question already in predictions.jsonl, rank 1 the two in its shard file (whose torn
    line is cut off); the merge still writes the uninterrupted 1-process file."""
    from medr1.evaluation.matrix import cell_dir

    results, checkpoints, expected = two_processes
    cell = cell_dir(results, str(checkpoints / "CT"), "think", SPLITS[1])
    assert (cell / "predictions.jsonl").read_bytes() == expected[SPLITS[1]][0]
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["questions_by_rank"] == [2, 1] and metrics["questions_this_run"] == 3 and metrics["n"] == 6
    assert shard_paths(cell) == []


def test_one_process_finishes_what_two_processes_left(synthetic_data, reference, tmp_path):
    """A killed 2-process run relaunched as one process: the shard files count as done and are merged in."""
    from medr1.evaluation.evaluate import evaluate

    _, data = synthetic_data
    checkpoints, expected = reference
    one_process = expected[SPLITS[1]][0]
    prewrite_killed_run(tmp_path / "cell", one_process)
    lines = one_process.splitlines(keepends=True)
    shard_path(tmp_path / "cell", 0).write_bytes(lines[2])
    metrics = evaluate(str(checkpoints / "CT"), data, SPLITS[1], tmp_path / "cell", **EVAL)
    assert (tmp_path / "cell" / "predictions.jsonl").read_bytes() == one_process
    assert metrics["questions_by_rank"] == [2] and shard_paths(tmp_path / "cell") == []


def test_a_lost_shard_is_an_error_not_a_short_file(tmp_path):
    from medr1.evaluation.evaluate import read_done
    from medr1.evaluation.sharding import finish_merge

    shard_path(tmp_path, 0).write_text(json.dumps(line("a")) + "\n")
    with pytest.raises(RuntimeError, match="1 questions have no prediction"):
        finish_merge(tmp_path, [], ["a", "b"], read_done)
    assert shard_path(tmp_path, 0).is_file()  # nothing removed
