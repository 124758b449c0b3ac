"""Deterministic per-group train/test splits of canonical records (pure functions, no I/O).

The split of a group depends only on the set of records (not their input order), the seed and the
group's name: records are sorted by question_id, then shuffled by `random.Random(f"{seed}:{group}")`,
which seeds from a SHA-512 of the string (not Python's salted `hash()`), so it is byte-identical
across runs, processes and machines. Each side is returned sorted by question_id.
"""

from __future__ import annotations

import random

from medr1.sources.omnimedvqa import MODALITIES, TASKS

GROUPS = {"modality": MODALITIES, "task": TASKS}


def _sort_key(record: dict) -> tuple[str, str, str]:
    return (str(record["question_id"]), str(record.get("image", "")), str(record.get("question", "")))


def split_group(
    records: list[dict],
    seed: int,
    test_fraction: float = 0.2,
    image_disjoint: bool = False,
    group: str = "",
) -> tuple[list[dict], list[dict]]:
    """Split one group's records into (train, test), each sorted by question_id.

    Per question (default): exactly round(test_fraction * n) records go to test.
    image_disjoint: whole images move together (every question on one image lands on the same side),
    so no image is in both; images are taken in a seeded order and each is added to test when that
    brings the test size closer to round(test_fraction * n), so the fraction is approximate.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    ordered = sorted(records, key=_sort_key)
    target = round(test_fraction * len(ordered))
    rng = random.Random(f"{seed}:{group}")
    if not image_disjoint:
        order = list(range(len(ordered)))
        rng.shuffle(order)
        test_idx = set(order[:target])
    else:
        by_image: dict[str, list[int]] = {}
        for i, record in enumerate(ordered):
            by_image.setdefault(str(record["image"]), []).append(i)
        images = sorted(by_image)
        rng.shuffle(images)
        test_idx = set()
        for image in images:
            members = by_image[image]
            if abs(len(test_idx) + len(members) - target) < abs(len(test_idx) - target):
                test_idx.update(members)
            if len(test_idx) == target:
                break
    train = [r for i, r in enumerate(ordered) if i not in test_idx]
    test = [r for i, r in enumerate(ordered) if i in test_idx]
    return train, test


def make_splits(
    records: list[dict],
    key: str,
    seed: int,
    image_disjoint: bool = False,
    test_fraction: float = 0.2,
) -> dict[str, dict[str, list[dict]]]:
    """{group: {"train": [...], "test": [...]}} for every modality (key="modality") or task (key="task").

    Every group is present, with empty lists when it has no records.
    """
    if key not in GROUPS:
        raise ValueError(f"key must be one of {sorted(GROUPS)}, got {key!r}")
    buckets: dict[str, list[dict]] = {group: [] for group in GROUPS[key]}
    for record in records:
        group = record[key]
        if group not in buckets:
            raise ValueError(f"record {record.get('question_id')!r} has unknown {key} {group!r}")
        buckets[group].append(record)
    splits = {}
    for group, members in buckets.items():
        train, test = split_group(members, seed, test_fraction, image_disjoint, group=group)
        splits[group] = {"train": train, "test": test}
    return splits


def shared_images(train: list[dict], test: list[dict]) -> int:
    """How many distinct images appear on both sides."""
    return len({r["image"] for r in train} & {r["image"] for r in test})
