"""Deterministic per-group train/test splits of canonical records (pure functions, no I/O).

The split of a group depends only on the set of records (not their input order), the seed and the
group's name: records are sorted by question_id, then shuffled by `random.Random(f"{seed}:{group}")`,
which seeds from a SHA-512 of the string (not Python's salted `hash()`), so it is byte-identical
across runs, processes and machines. Each side is returned sorted by question_id.

A record's images are its `image`, or every path of a multi-image record's `images` (e.g. CT slices); a text
record has none. Under image_disjoint, records that share any image (directly or through other records)
move together, so no image file is on both sides.
"""

from __future__ import annotations

import random

from medr1.sources.omnimedvqa import MODALITIES, MULTI_IMAGE_KEY, TASKS, record_images

GROUPS = {"modality": MODALITIES, "task": TASKS}


def images_of(record: dict) -> list[str]:
    """The image paths of a record: its `images` (multi-image), its `image`, or none (a text record)."""
    has_images = MULTI_IMAGE_KEY in record or "image" in record
    return [str(path) for path in record_images(record)] if has_images else []


def _sort_key(record: dict) -> tuple[str, str, str]:
    return (str(record["question_id"]), "\n".join(images_of(record)), str(record.get("question", "")))


def image_units(records: list[dict]) -> dict[str, list[int]]:
    """{unit: indices of `records`}: the records that must land on one side for no image to be on both.
    Records sharing an image are joined (union-find over their paths); a unit is named by its smallest path
    (a single-image record's unit is its image); a record without images is a unit of its own."""
    parent: dict[str, str] = {}

    def root(path: str) -> str:
        while parent[path] != path:
            parent[path] = parent[parent[path]]
            path = parent[path]
        return path

    for record in records:
        paths = images_of(record)
        for path in paths:
            parent.setdefault(path, path)
        for path in paths[1:]:
            a, b = root(paths[0]), root(path)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the smaller path names the unit
    units: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        paths = images_of(record)
        key = root(paths[0]) if paths else f"\0no image: {record['question_id']}\0{i}"
        units.setdefault(key, []).append(i)
    return units


def split_group(
    records: list[dict],
    seed: int,
    test_fraction: float = 0.2,
    image_disjoint: bool = False,
    group: str = "",
) -> tuple[list[dict], list[dict]]:
    """Split one group's records into (train, test), each sorted by question_id.

    Per question (default): exactly round(test_fraction * n) records go to test.
    image_disjoint: whole images move together (every question on one image lands on the same side, and a
    multi-image record's images with it: `image_units`), so no image is in both; the units are taken in a
    seeded order and each is added to test when that brings the test size closer to round(test_fraction * n),
    so the fraction is approximate.
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
        by_image = image_units(ordered)
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
    """How many distinct image files appear on both sides (each image of a multi-image record counts)."""
    return len({p for r in train for p in images_of(r)} & {p for r in test for p in images_of(r)})
