"""Data-parallel evaluation: the questions of one split shared over the processes of a launcher.

`torchrun --nproc_per_node N -m medr1.cli eval ...` (CPU processes, gloo) or `accelerate launch -m medr1.cli
eval ...` (one process per GPU) start N copies of the command; each finds its place in WORLD_SIZE/RANK/
LOCAL_RANK. The split is put in the order a 1-process run decodes it (longest first), and rank R takes every
N-th question of that order from the R-th on (`shard`), so every rank gets prompts of every length. Each rank
appends to its own `predictions.rank{R}.jsonl`; when all are done, rank 0 merges them into
`predictions.jsonl` in the order a 1-process run writes (`merge_predictions`) and removes the shard files.
A killed run resumes: every question already in `predictions.jsonl` or in any shard file is skipped.

torch.distributed (gloo, whatever the device) is used only to wait for the other ranks and to gather how
many questions each one decoded; the model and the outputs never travel between processes.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

logger = logging.getLogger(__name__)

MERGED = "predictions.jsonl"
SHARD = "predictions.rank{rank}.jsonl"
# Ranks wait for each other only at the start and the end of a split; the slowest rank's share of a large
# split may take hours, so the wait is bounded generously (torch's default is 30 minutes).
WAIT_TIMEOUT = timedelta(hours=24)


# ---- pure rules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class World:
    """This process's place among the launched ones: `rank` of `size`, `local_rank` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0


def world_from_env(env: Mapping[str, str]) -> World:
    """The World a launcher (torchrun, accelerate launch) describes in WORLD_SIZE/RANK/LOCAL_RANK; one process
    when WORLD_SIZE is unset. ValueError on values that cannot be a launch."""
    if not env.get("WORLD_SIZE"):
        return World()
    try:
        size = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as error:
        raise ValueError(f"WORLD_SIZE/RANK/LOCAL_RANK must be integers: {error}") from error
    if size < 1 or not 0 <= rank < size or local_rank < 0:
        raise ValueError(f"RANK={rank} of WORLD_SIZE={size} (LOCAL_RANK={local_rank}) is not a launch: "
                         "need WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE")
    return World(rank=rank, size=size, local_rank=local_rank)


def shard(items: list, rank: int, size: int) -> list:
    """Rank `rank`'s share of `items`: every `size`-th item from the `rank`-th on (round robin), in order."""
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"rank {rank} of {size} processes")
    return items[rank::size]


def merge_predictions(existing: list[dict], sources: list[list[dict]], order: list[str]) -> list[dict]:
    """The prediction file a 1-process run would hold: `existing` lines as they are, then each question of
    `order` (the decoding order) not among them, with its line from the first of `sources` that has one.
    Source lines of questions outside `order` (a run with another --limit) are kept, after, so no work is
    lost; a question repeated in several sources is written once."""
    seen = {p["question_id"] for p in existing}
    found: dict[str, dict] = {}
    for lines in sources:
        for p in lines:
            found.setdefault(p["question_id"], p)
    merged = list(existing)
    for question_id in [*order, *found]:
        if question_id in found and question_id not in seen:
            merged.append(found[question_id])
            seen.add(question_id)
    return merged


# ---- files --------------------------------------------------------------------------------------

def shard_path(out: Path, rank: int) -> Path:
    return Path(out) / SHARD.format(rank=rank)


def shard_paths(out: Path) -> list[Path]:
    """The shard files in `out`, by rank (also those of a run launched with more processes)."""
    def rank_of(path: Path) -> int:
        middle = path.name[len("predictions.rank"):-len(".jsonl")]
        return int(middle) if middle.isdigit() else -1

    return sorted((p for p in Path(out).glob(SHARD.format(rank="*")) if rank_of(p) >= 0), key=rank_of)


def write_atomically(path: Path, predictions: list[dict]) -> None:
    """`path` holds all of `predictions` or is left as it was (a kill mid-write leaves a stray .tmp)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for p in predictions:
            handle.write(json.dumps(p, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# ---- the process group --------------------------------------------------------------------------

class Group:
    """Waiting for and gathering from the other ranks; with one process, both are immediate."""

    def __init__(self, world: World):
        self.world = world

    def barrier(self) -> None:
        if self.world.size > 1:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, value) -> list:
        """`value` of every rank, by rank, on every rank."""
        if self.world.size == 1:
            return [value]
        import torch.distributed as dist

        values = [None] * self.world.size
        dist.all_gather_object(values, value)
        return values


def current_world() -> World:
    return world_from_env(os.environ)


def join(world: World) -> Group:
    """The Group of `world`: joins the launcher's process group (gloo) unless one is already up, and puts
    this rank on its own GPU (cuda:LOCAL_RANK) when there are GPUs."""
    if world.size == 1:
        return Group(world)
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        if not os.environ.get("MASTER_ADDR"):
            raise RuntimeError(f"WORLD_SIZE={world.size} without MASTER_ADDR: start data-parallel evaluation "
                               "with torchrun or accelerate launch")
        dist.init_process_group("gloo", timeout=WAIT_TIMEOUT)
        atexit.register(dist.destroy_process_group)
        logger.info("rank %d of %d joined the process group (gloo)", world.rank, world.size)
    elif dist.get_world_size() != world.size:
        raise RuntimeError(f"a process group of {dist.get_world_size()} is up, but WORLD_SIZE={world.size}")
    return Group(world)


def read_progress(out: Path, group: Group, read_done) -> tuple[list[dict], list[list[dict]]]:
    """(lines of predictions.jsonl, lines of each shard file) as the previous runs left them. Rank 0 first cuts
    torn last lines (`read_done`); then every rank reads; no rank writes before all have read."""
    out = Path(out)
    if group.world.rank == 0:
        for path in [out / MERGED, *shard_paths(out)]:
            read_done(path)
    group.barrier()
    existing = read_done(out / MERGED)
    shards = [read_done(path) for path in shard_paths(out)]
    group.barrier()
    return existing, shards


def finish_merge(out: Path, existing: list[dict], order: list[str], read_done) -> list[dict]:
    """Rank 0, once every rank is done: predictions.jsonl as a 1-process run writes it, the shard files gone.
    Returns its lines. A question of `order` that no file holds is an error (a rank lost its work)."""
    out = Path(out)
    merged_path, paths = out / MERGED, shard_paths(out)
    current = read_done(merged_path)  # a 1-process run appends here; shard files come from other launches
    if not paths:
        return current
    merged = merge_predictions(existing, [current[len(existing):], *(read_done(p) for p in paths)], order)
    written = {p["question_id"] for p in merged}
    missing = [q for q in order if q not in written]
    if missing:
        raise RuntimeError(f"{out}: {len(missing)} questions have no prediction in any file after every rank "
                           f"finished (first: {missing[0]}); rerun to decode them")
    write_atomically(merged_path, merged)
    for path in paths:
        path.unlink()
    logger.info("%s: merged %d shard files into %d predictions", merged_path, len(paths), len(merged))
    return merged
