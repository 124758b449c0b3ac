"""Benchmark `medr1 prepare` at full OmniMedVQA scale (not a test).

Generates raw metadata shaped like the open-access OmniMedVQA release under a temporary folder:
42 dataset JSON files, 88,996 records with the reference modality and task totals (RadImageNet over
60 % of the items, the raw modality typos, the one record keyed `modality`), and 82,059 distinct
image paths that are hard links to four small real PNG/JPEG files (so the disk cost is inodes only).
Then runs `prepare` in a subprocess and reports wall seconds, records/s and the subprocess's peak RSS
(from wait4's rusage, so the generator's own memory does not count), against the targets
(<= 30 s, <= 1.5 GB).

    python bench/prepare.py [--official] [--keep] [--workdir DIR]

--official also writes released-format split files (an 80/20 per-question split of every modality
and task) and times `prepare --official-splits` on them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medr1.sources.omnimedvqa import LETTERS, MODALITIES, RAW_MODALITY, TASKS, format_problem

N_RECORDS = 88_996
N_IMAGES = 82_059
TARGET_SECONDS = 30.0
TARGET_BYTES = 1.5e9

# QA items per modality (open access); CT has one more than the table so that the total is 88,996
# (the record keyed `modality` instead of `modality_type` is a CT record in `Chest CT Scan.json`).
MODALITY_COUNTS = {
    "CT": 15_809,
    "MRI": 31_877,
    "X-Ray": 7_916,
    "Ultrasound": 10_991,
    "Dermoscopy": 6_679,
    "Fundus Photography": 5_398,
    "OCT": 4_646,
    "Microscopy": 5_680,
}
TASK_COUNTS = {
    "Anatomy Identification": 16_448,
    "Disease Diagnosis": 55_387,
    "Lesion Grading": 2_098,
    "Modality Recognition": 11_565,
    "Other Biological Attributes": 3_498,
}
# RadImageNet's share per modality (53,500 items, 60.1 %); the rest goes to 41 other datasets.
RADIMAGENET = {"CT": 13_000, "MRI": 31_000, "Ultrasound": 9_500}
OTHER_DATASETS = {
    "CT": ["Chest CT Scan", "Covid CT", "Kidney CT"],
    "MRI": ["Brain Tumor MRI", "Knee MRI"],
    "Ultrasound": ["BUSI", "Thyroid US"],
    "X-Ray": ["COVIDx CXR", "JSRT", "MIAS", "Knee X-ray", "Chest X-ray PA", "Pediatric CXR", "Hand X-ray"],
    "Dermoscopy": ["HAM10000", "ISIC2016", "ISIC2017", "ISIC2018", "PAD-UFES-20", "Monkeypox"],
    "Fundus Photography": ["ACRIMA", "APTOS", "DeepDRiD", "PALM2019", "ODIR", "RFMiD", "Adam", "REFUGE"],
    "OCT": ["OCT 2017", "OLIVES", "Retinal OCT-C8"],
    "Microscopy": [
        "BioMediTech",
        "Blood Cell",
        "CRC100k",
        "MHIST",
        "BreakHis",
        "Malaria",
        "PCam",
        "LC25000",
        "NuCLS",
        "Cervix",
    ],
}
WORDS = [
    "lesion",
    "tissue",
    "lobe",
    "nodule",
    "artery",
    "cortex",
    "fracture",
    "effusion",
    "benign",
    "malignant",
    "normal",
    "abnormal",
    "left",
    "right",
    "upper",
    "lower",
    "grade",
    "stage",
    "cell",
    "nucleus",
    "retina",
    "macula",
    "optic",
    "disc",
    "fluid",
    "mass",
]


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _source_images(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i, (mode, size, ext) in enumerate(
        [("L", 32, "png"), ("RGB", 48, "png"), ("L", 40, "jpg"), ("RGB", 64, "jpg")]
    ):
        path = folder / f"src{i}.{ext}"
        Image.new(mode, (size, size), color=40 * (i + 1) if mode == "L" else (40 * i, 90, 200)).save(path)
        paths.append(path)
    return paths


def generate(root: Path, seed: int = 0) -> list[dict]:
    """Write the raw tree under root; return the raw records (for the optional official files)."""
    rng = random.Random(seed)
    sources = _source_images(root.parent / "src")
    tasks = [t for t, n in TASK_COUNTS.items() for _ in range(n)]
    rng.shuffle(tasks)
    # (dataset, modality) for every record, grouped by dataset.
    plan: dict[str, list[str]] = {"RadImageNet": []}
    for modality in MODALITIES:
        rad = RADIMAGENET.get(modality, 0)
        plan["RadImageNet"] += [modality] * rad
        others = OTHER_DATASETS[modality]
        rest = MODALITY_COUNTS[modality] - rad
        for k, name in enumerate(others):
            plan[name] = [modality] * (rest // len(others) + (1 if k < rest % len(others) else 0))
    assert len(plan) == 42 and sum(map(len, plan.values())) == N_RECORDS
    # Records after the first of each dataset may reuse the previous record's image.
    slots = [(name, j) for name, mods in plan.items() for j in range(1, len(mods))]
    reuse = set(rng.sample(slots, N_RECORDS - N_IMAGES))

    qa_dir = root / "QA_information" / "Open-access"
    qa_dir.mkdir(parents=True)
    all_records, task_iter, n_images = [], iter(tasks), 0
    for name, modalities in plan.items():
        records, image = [], None
        for j, modality in enumerate(modalities):
            if (name, j) not in reuse:
                source = sources[n_images % len(sources)]
                rel = f"Images/{name}/{j // 1000:03d}/{name.replace(' ', '_')}_{j:06d}{source.suffix}"
                os.makedirs(root / os.path.dirname(rel), exist_ok=True)
                os.link(source, root / rel)
                image, n_images = rel, n_images + 1
            n_options = rng.choice((2, 3, 4, 4))
            options = list(dict.fromkeys(_text(rng, rng.randint(1, 4)) for _ in range(12)))[:n_options]
            while len(options) < n_options:
                options.append(f"none of the {len(options)} others")
            record = {
                "dataset": name,
                "question_id": f"{name}_{j:06d}",
                "question_type": next(task_iter),
                "question": f"What does this {modality} image show about the {_text(rng, rng.randint(3, 9))}?",
                "gt_answer": rng.choice(options),
                "image_path": image,
                "modality_type": RAW_MODALITY[modality],
            }
            record.update({f"option_{LETTERS[k]}": text for k, text in enumerate(options)})
            records.append(record)
        if name == "Chest CT Scan":
            records[0]["modality"] = records[0].pop("modality_type")
        (qa_dir / f"{name}.json").write_text(json.dumps(records, indent=4), encoding="utf-8")
        all_records += records
    assert n_images == N_IMAGES
    return all_records


def write_official(records: list[dict], split_dir: Path, seed: int = 1) -> int:
    """Released-format split files from an 80/20 per-question split; returns the entry count."""
    rng = random.Random(seed)
    task_of = {t.casefold(): t for t in TASKS}
    total = 0
    for kind, sub, key in (
        ("modality", "modality", "modality_type"),
        ("task", "question_type", "question_type"),
    ):
        groups: dict[str, list[dict]] = {}
        for r in records:
            raw = r.get(key) or r.get("modality")
            groups.setdefault(raw if kind == "modality" else task_of[raw.casefold()], []).append(r)
        for name, members in groups.items():
            members = members[:]
            rng.shuffle(members)
            n_test = round(0.2 * len(members))
            for split, part in (("test", members[:n_test]), ("train", members[n_test:])):
                entries = []
                for r in part:
                    options = [r[f"option_{c}"] for c in LETTERS if r.get(f"option_{c}")]
                    letter = LETTERS[options.index(r["gt_answer"])]
                    entries.append(
                        {
                            "image": r["image_path"],
                            "problem": format_problem(r["question"], options),
                            "solution": f"<answer> {letter} </answer>",
                        }
                    )
                folder = split_dir / sub / split
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}_{split}.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")
                total += len(entries)
    return total


def time_prepare(args: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit code) of `medr1 prepare ARGS` in a fresh subprocess."""
    code = "import sys; from medr1.cli import main; sys.exit(main(['prepare'] + sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024, proc.returncode


def report(label: str, n: int, wall: float, peak: int, rc: int) -> bool:
    ok = rc == 0 and wall <= TARGET_SECONDS and peak <= TARGET_BYTES
    print(
        f"{label}: {n:,} records in {wall:.1f} s = {n / wall:,.0f} records/s, peak RSS {peak / 1e6:,.0f} MB, "
        f"exit {rc}; targets <= {TARGET_SECONDS:.0f} s and <= {TARGET_BYTES / 1e9:.1f} GB: "
        f"{'MET' if ok else 'NOT MET'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", help="folder to generate into (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated tree")
    parser.add_argument("--official", action="store_true", help="also time --official-splits")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="medr1-bench-"))
    try:
        start = time.perf_counter()
        root = work / "OmniMedVQA"
        records = generate(root)
        print(
            f"generated {len(records):,} records, {N_IMAGES:,} image links in {time.perf_counter() - start:.1f} s"
        )
        wall, peak, rc = time_prepare(["--omnimedvqa", str(root), "--out", str(work / "data")])
        ok = report("prepare", len(records), wall, peak, rc)
        summary = json.loads((work / "data" / "prepare_report.json").read_text())
        print(
            f"  kept {summary['records_kept']:,}, skipped {summary['records_skipped']:,}, "
            f"images checked {summary['images_checked']:,}"
        )
        if args.official:
            n_entries = write_official(records, work / "Splits")
            wall, peak, rc = time_prepare(
                [
                    "--omnimedvqa",
                    str(root),
                    "--out",
                    str(work / "data-official"),
                    "--official-splits",
                    str(work / "Splits"),
                ]
            )
            ok &= report("prepare --official-splits", len(records), wall, peak, rc)
            summary = json.loads((work / "data-official" / "prepare_report.json").read_text())
            written = sum(c["written"] for c in summary["official_counts"].values())
            print(
                f"  official entries {n_entries:,}, written {written:,}, "
                f"matched {summary['official_matched']:,}, reconstructed {summary['reconstructed']:,}"
            )
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
