"""Synthetic fixtures in the exact released layouts of VQA-RAD, SLAKE, PathVQA, PMC-VQA and MMMU.

`medr1 synth-benchmarks --out RAW [--prepare DATA_DIR]` writes one folder per benchmark under RAW (named
as `medr1 prepare --benchmark` names them) and, with --prepare, prepares them all into DATA_DIR. Each
fixture holds yes/no, open-ended and multiple-choice questions as the release has them, small PIL images,
the rows a reader must leave out by design (SLAKE's Chinese questions, MMMU's other subjects, open
questions and hidden test answers) and exactly one bad record, which `medr1 prepare` reports as a named
skip:

| benchmark | bad record |
|---|---|
| vqa-rad | a test question without `question` |
| slake | an English test question whose image file is missing |
| pathvqa | a test row with an empty `answer` |
| pmc-vqa | a test row whose `Answer_label` is `E` |
| mmmu | a validation row whose `options` is not a list |

PathVQA and MMMU are written as the hub's parquet files when pyarrow is installed (`fmt="parquet"`, image
bytes embedded), else (or with `fmt="json"`) as JSON rows with image files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import random
from pathlib import Path

from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

BENCHMARK_NAMES = ("vqa-rad", "slake", "pathvqa", "pmc-vqa", "mmmu")
ORGANS = ("Lung", "Liver", "Brain", "Kidney")


def synth_image(rng: random.Random, size: int) -> Image.Image:
    """A small RGB image: a random background with one filled ellipse."""
    image = Image.new("RGB", (size, size), tuple(rng.randrange(40, 200) for _ in range(3)))
    x, y = rng.randrange(0, size // 2), rng.randrange(0, size // 2)
    colour = tuple(rng.randrange(256) for _ in range(3))
    ImageDraw.Draw(image).ellipse([x, y, x + size // 3, y + size // 3], fill=colour)
    return image


def _save(rng: random.Random, path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    synth_image(rng, size).save(path)


def _image_bytes(rng: random.Random, size: int) -> bytes:
    buffer = io.BytesIO()
    synth_image(rng, size).save(buffer, format="PNG")
    return buffer.getvalue()


def _closed_open(i: int) -> tuple[str, str]:
    """(answer, answer_type) cycling through yes, no, a closed non-yes/no answer and an open one."""
    return (("yes", "CLOSED"), ("no", "CLOSED"), ("left", "CLOSED"), (ORGANS[i % 4], "OPEN"))[i % 4]


def _write_json(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


def _write_table(path: Path, rows: list[dict], fmt: str) -> None:
    """Rows as a parquet file (pyarrow) or, with fmt="json", a JSON list next to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        _write_json(path.with_suffix(".json"), rows)


def write_vqarad(root: Path, n: int, size: int, rng: random.Random) -> None:
    rows = []
    for split, phrases in (("train", ("freeform", "para")), ("test", ("test_freeform", "test_para"))):
        for i in range(n):
            answer, kind = _closed_open(i)
            image = f"synpic{len(rows) // 2:05d}.jpg"  # two questions per image, as in the release
            _save(rng, root / "VQA_RAD Image Folder" / image, size)
            rows.append({"qid": len(rows) + 1, "image_name": image, "image_organ": "CHEST", "answer": answer,
                         "answer_type": kind, "question_type": "PRES" if kind == "CLOSED" else "ORGAN",
                         "question": f"Is there an abnormality in the {ORGANS[i % 4].lower()}?",
                         "phrase_type": phrases[i % 2], "qid_linked_id": f"{split}{i}"})
    bad = dict(rows[-1], qid=len(rows) + 1, question="")
    _write_json(root / "VQA_RAD Dataset Public.json", rows + [bad])


def write_slake(root: Path, n: int, size: int, rng: random.Random) -> None:
    qid = 0
    for name in ("train.json", "validate.json", "test.json"):
        rows = []
        for i in range(n + n // 2):
            qid += 1
            answer, kind = _closed_open(i)
            folder = f"xmlab{qid}"
            _save(rng, root / "imgs" / folder / "source.jpg", size)
            english = i < n
            question = "Does the picture contain a lung?" if english else "图片中有肺吗?"
            rows.append({"img_id": qid, "img_name": f"{folder}/source.jpg", "question": question,
                         "answer": answer if english else "是", "answer_type": kind,
                         "q_lang": "en" if english else "zh", "location": "Chest", "modality": "CT",
                         "content_type": "Organ", "base_type": "vqa", "qid": qid})
        if name == "test.json":
            qid += 1
            rows.append(dict(rows[0], img_name="xmlab_missing/source.jpg", qid=qid))
        _write_json(root / name, rows)


def write_pathvqa(root: Path, n: int, size: int, rng: random.Random, fmt: str) -> None:
    for split in ("train", "test"):
        rows = []
        for i in range(n):
            answer = ("yes", "no", "fibrosis")[i % 3]
            image = f"images/{split}/{split}_{i:04d}.jpg"
            _save(rng, root / image, size)
            rows.append({"image": image, "question": "Is there fibrosis in this tissue?" if i % 3 < 2
                         else "What is shown in this tissue?", "answer": answer})
        if split == "test":
            rows.append(dict(rows[0], answer=" "))
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rows = [{"image": {"bytes": _image_bytes(rng, size), "path": f"val_{i}.png"}, "question": "Is this a tumor?",
             "answer": ("yes", "no", "necrosis")[i % 3]} for i in range(n)]
    if fmt == "parquet":
        _write_table(root / "data" / "validation-00000-of-00001.parquet", rows, fmt)
    else:
        for i, row in enumerate(rows):
            image = f"images/validation/val_{i:04d}.png"
            (root / image).parent.mkdir(parents=True, exist_ok=True)
            (root / image).write_bytes(row["image"]["bytes"])
            row["image"] = image
        _write_json(root / "validation.json", rows)


def write_pmcvqa(root: Path, n: int, size: int, rng: random.Random) -> None:
    header = ["index", "Figure_path", "Caption", "Question", "Choice A", "Choice B", "Choice C", "Choice D",
              "Answer", "Answer_label"]
    for split in ("train", "test"):
        lines = []
        for i in range(n):
            figure = f"PMC{len(lines) + (0 if split == 'train' else 1000) + 1}_fig{i}.jpg"
            _save(rng, root / "images" / figure, size)
            texts = list(ORGANS if i % 2 == 0 else ORGANS[:3])  # some questions have three choices
            label = "ABCD"[i % len(texts)]
            choices = [f"{letter}:{text} " for letter, text in zip("ABCD", texts)] + [""] * (4 - len(texts))
            lines.append([i, figure, "a caption", "Which organ is shown?", *choices, texts["ABCD".index(label)], label])
        if split == "test":
            lines.append([n, lines[0][1], "a caption", "Which organ is shown?", *lines[0][4:8], "Lung", "E"])
        with open(root / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(lines)


def write_mmmu(root: Path, n: int, size: int, rng: random.Random, fmt: str) -> None:
    for subject in ("Clinical_Medicine", "Pharmacy", "Art"):
        for split in ("dev", "validation", "test"):
            rows = []
            for i in range(n):
                two = split == "dev" and i == 0  # one question over two images, in the dev split
                question = ("Compare <image 1> and <image 2>. Which drug is shown?" if two
                            else f"<image 1> Which finding is shown (case {i})?")
                images = {f"image_{k}": None for k in range(1, 8)}
                for k in (1, 2) if two else (1,):
                    if fmt == "parquet":
                        images[f"image_{k}"] = {"bytes": _image_bytes(rng, size), "path": f"{i}_{k}.png"}
                    else:
                        path = f"images/{subject}/{split}_{i}_{k}.png"
                        _save(rng, root / path, size)
                        images[f"image_{k}"] = path
                rows.append({"id": f"{split}_{subject}_{i + 1}", "question": question,
                             "options": str(["Aspirin", "Insulin", "Heparin", "Warfarin"][: 2 + i % 3]),
                             "explanation": "", **images, "img_type": "['Body Scans: MRI, CT, and PET']",
                             "answer": "?" if split == "test" else "AB"[i % 2], "topic_difficulty": "Medium",
                             "question_type": "open" if i == n - 1 else "multiple-choice",
                             "subfield": "Clinical Radiology"})
            if split == "validation" and subject == "Clinical_Medicine":
                rows.append(dict(rows[0], id=f"validation_{subject}_{n + 1}", options="not a list"))
            _write_table(root / subject / f"{split}-00000-of-00001.parquet", rows, fmt)


def write_benchmark_fixtures(out: str | Path, per_split: int = 8, image_size: int = 32, seed: int = 0,
                             fmt: str | None = None) -> dict[str, Path]:
    """Write every fixture under `out`; returns {benchmark name: its release folder}."""
    if fmt is None:
        try:
            import pyarrow  # noqa: F401
            fmt = "parquet"
        except ImportError:
            fmt = "json"
    out, rng = Path(out), random.Random(seed)
    folders = {name: out / name for name in BENCHMARK_NAMES}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    write_vqarad(folders["vqa-rad"], per_split, image_size, rng)
    write_slake(folders["slake"], per_split, image_size, rng)
    write_pathvqa(folders["pathvqa"], per_split, image_size, rng, fmt)
    write_pmcvqa(folders["pmc-vqa"], per_split, image_size, rng)
    write_mmmu(folders["mmmu"], per_split, image_size, rng, fmt)
    logger.info("synthetic benchmark fixtures (%s) written to %s", fmt, out)
    return folders


def main(argv: list[str] | None = None) -> int:
    from medr1.data.benchmarks import prepare_benchmarks

    parser = argparse.ArgumentParser(prog="medr1 synth-benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the raw fixtures to")
    parser.add_argument("--prepare", type=Path, metavar="DATA_DIR", help="also prepare them all into DATA_DIR")
    parser.add_argument("--per-split", type=int, default=8, help="questions per split and benchmark")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("parquet", "json"), help="PathVQA/MMMU files (default: parquet "
                        "when pyarrow is installed)")
    args = parser.parse_args(argv)
    folders = write_benchmark_fixtures(args.out, args.per_split, args.image_size, args.seed, args.format)
    if args.prepare:
        prepare_benchmarks(list(folders.items()), args.prepare)
    return 0
