"""The learning demo over seeds and thread counts (not a test): does `medr1 demo` learn on every seed?

Runs `medr1 demo --seed S --threads T --out OUT/t{T}-s{S}` for every seed and thread count, as separate
processes (`--jobs` at a time; default: as many as the cores hold at that thread count), skips runs whose
summary.json already exists (so an interrupted sweep resumes), and prints one row per run (held-out accuracy
before and after GRPO, the first logged step with held-out >= the target, seconds) and min / median / max
of the after-accuracy, the steps to target and the seconds per thread count.

    python bench/demo_seeds.py [--seeds 42,1,2,3,4] [--threads 1,2] [--modality CT] [--out outputs/demo-seeds]
                               [--jobs N] [demo flags, e.g. --grpo-set dynamic_sampling=false]

Unknown flags go to every `medr1 demo` run. Runs that share the machine slow each other down: the seconds
column is what each run took while `--jobs` ran side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def run_one(out: Path, seed: int, threads: int, modality: str, demo_flags: list[str]) -> dict:
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        command = [sys.executable, "-m", "medr1.cli", "demo", "--seed", str(seed), "--threads", str(threads),
                   "--modality", modality, "--out", str(out), *demo_flags]
        out.mkdir(parents=True, exist_ok=True)
        with open(out.with_suffix(".log"), "w", encoding="utf-8") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True)
    return {"seed": seed, "threads": threads, **json.loads(summary_path.read_text(encoding="utf-8"))}


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{min(values):.3g} / {statistics.median(values):.3g} / {max(values):.3g}"


def report(runs: list[dict]) -> str:
    lines = ["| seed | threads | before | after | steps to target | seconds |", "|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['seed']} | {run['threads']} | {run['before_accuracy']:.3f} | "
                     f"{run['after_accuracy']:.3f} | {run['steps_to_target']} | {run['seconds']:.0f} |")
    lines += ["", "| threads | runs | after (min / median / max) | reached target | steps to target "
              "(min / median / max) | seconds (min / median / max) |", "|---|---|---|---|---|---|"]
    for threads in sorted({run["threads"] for run in runs}):
        group = [run for run in runs if run["threads"] == threads]
        target = group[0]["target_accuracy"]
        reached = [run["steps_to_target"] for run in group if run["steps_to_target"] is not None]
        after_ok = sum(run["after_accuracy"] >= target for run in group)
        lines.append(f"| {threads} | {len(group)} | {spread([r['after_accuracy'] for r in group])} | "
                     f"{after_ok}/{len(group)} | {spread(reached)} | {spread([r['seconds'] for r in group])} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="42,1,2,3,4")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--modality", default="CT")
    parser.add_argument("--out", type=Path, default=Path("outputs/demo-seeds"))
    parser.add_argument("--jobs", type=int, help="runs at a time (default: cores // threads)")
    parser.add_argument("--report-only", action="store_true", help="report the finished runs; start none")
    args, demo_flags = parser.parse_known_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    runs = []
    if args.report_only:
        for path in sorted(args.out.glob(f"{args.modality}-t*-s*/summary.json")):
            threads, seed = (int(part[1:]) for part in path.parent.name.split("-")[-2:])
            runs.append({"seed": seed, "threads": threads, **json.loads(path.read_text(encoding="utf-8"))})
        print(report(sorted(runs, key=lambda run: (run["threads"], run["seed"]))))
        return 0
    for threads in (int(t) for t in args.threads.split(",")):
        jobs = args.jobs or max(1, (os.cpu_count() or 1) // threads)
        with ThreadPoolExecutor(jobs) as pool:
            runs += pool.map(lambda seed, t=threads: run_one(args.out / f"{args.modality}-t{t}-s{seed}", seed, t,
                                                             args.modality, demo_flags), seeds)
    (args.out / f"{args.modality}_runs.json").write_text(json.dumps(runs, indent=1), encoding="utf-8")
    print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
