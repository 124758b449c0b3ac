"""Benchmark evaluation throughput: `medr1.evaluate.evaluate` against a naive one-question loop (not a test).

CPU section (always): builds a synthetic OmniMedVQA and the tiny offline Qwen2-VL in a temp folder,
writes one benchmark split of N questions (default 128) and measures, side by side in this process,

  A  medr1: `evaluate(..., engine="hf", batch_size=16, num_workers=2, max_new_tokens=32)`: batched
     greedy decoding with left padding, questions in longest-first order, images decoded and tokenised
     in DataLoader workers, predictions scored and appended to predictions.jsonl;
  B  naive: the loop many research scripts use: for each question, load the image, apply the chat
     template, run the processor, `model.generate` one question, decode, check the answer.

Both decode exactly max_new_tokens for every question: the model is the tiny one with the (tied)
embedding rows of its end tokens zeroed (`build_tiny_model(endless=True)`), so the end tokens' logit
is 0 while the largest of the other random logits is > 0 and greedy decoding never stops early (no
change to `evaluate` needed).
A timing-neutral wrapper on the model class's `generate` counts the tokens each path generated and
checks that no row stopped early. Runs alternate A B, B A, ... after a discarded warm-up pair.

Prints questions/s and generated tokens/s overall and in the steady state (after the first
batch_size questions, i.e. without model loading and DataLoader start-up), the speedup (target
>= 8x at batch 16; pooled over the rounds, and the median of the per-round ratios, which is less
sensitive to the host's speed drifting during a round), `model.generate` alone at batch 1 vs batch 16
(the most that batching can give on this machine), peak memory (this process's RSS plus the
DataLoader workers' unique memory) and whether both paths produced the same answers. Both paths use
`--threads` torch threads (default 1).

    python bench/eval_throughput.py [--questions 128] [--rounds 3] [--vocab compact|qwen] [--gpu]

--gpu (CUDA only; skipped with a message otherwise): a Qwen2-VL-2B-shaped model with random weights,
the real Qwen2 vocabulary, 384 px images, fixed 256 new tokens: first the side-by-side above on the
GPU (medr1 at --batch-size vs the naive loop, --gpu-compare-questions questions), then the `hf` and
`vllm` engines at --gpu-batch-size; prints questions/s, start-up vs steady-state time, and an
estimate for the 17,662 test questions.

Timings on a shared 2-core machine are noisy; compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medr1.embedded.workbench import (  # noqa: E402
    MemoryMonitor,
    add_section_arguments,
    build_workbench,
    quiet_libraries,
    run_sections,
)

TARGET_SPEEDUP = 8.0
SPLIT = "bench/questions"
FULL_TEST_QUESTIONS = 17_662
END_TOKENS = ("<|im_end|>", "<|endoftext|>")


# ---- measurement ---------------------------------------------------------------------------------

class TokenCount:
    """Wraps the model class's `generate` (both paths call it with input_ids=...): counts the new tokens
    of every row and the rows that ended before max_new_tokens (an end token among the new tokens)."""

    def __init__(self, model_class, end_ids: list[int]):
        self.model_class, self.end_ids = model_class, end_ids
        self.tokens = self.rows = self.early = 0

    def __enter__(self):
        import torch

        original = self.model_class.generate
        self._original = self.model_class.__dict__.get("generate")

        def generate(model, *args, **kwargs):
            out = original(model, *args, **kwargs)
            new = out[:, kwargs["input_ids"].shape[1]:]
            ended = torch.isin(new, torch.tensor(self.end_ids, device=new.device)).any(dim=1)
            self.tokens += new.numel()
            self.rows += new.shape[0]
            self.early += int(ended.sum())
            return out

        self.model_class.generate = generate
        return self

    def __exit__(self, *exc):
        if self._original is None:
            del self.model_class.generate
        else:
            self.model_class.generate = self._original

    def take(self) -> tuple[int, int, int]:
        out = (self.tokens, self.rows, self.early)
        self.tokens = self.rows = self.early = 0
        return out


class BatchClock:
    """Wraps `medr1.evaluation.evaluate.append_predictions` (called once per finished batch) to time the first and
    the last batch: start-up (model load, workers, first batch) vs the steady state after it."""

    def __enter__(self):
        import medr1.evaluation.evaluate as ev

        self._ev, self._original = ev, ev.append_predictions
        self.times: list[tuple[float, int]] = []

        def append_predictions(path, predictions):
            self._original(path, predictions)
            self.times.append((time.perf_counter(), len(predictions)))

        ev.append_predictions = append_predictions
        return self

    def __exit__(self, *exc):
        self._ev.append_predictions = self._original


# ---- setup ---------------------------------------------------------------------------------------

def write_question_split(data: Path, n: int) -> list[dict]:
    """`DATA_DIR/splits/bench/questions.jsonl`: n records from records.jsonl, cycled over all modalities
    and tasks (repeats get a distinct question_id, since predictions are keyed by it)."""
    from medr1.data.records import read_records

    records = read_records(data / "records.jsonl")
    picked = []
    for i in range(n):
        record = dict(records[i % len(records)])
        if i >= len(records):
            record["question_id"] = f"{record['question_id']}#{i // len(records)}"
        picked.append(record)
    path = data / "splits" / f"{SPLIT}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    return picked


def build_workdir(work: Path, vocab: str, per_modality: int, image_size: int, n_questions: int):
    """The workbench with an endless tiny model (every row decodes max_new_tokens) and the benchmark split."""
    data, model = build_workbench(work, vocab, per_modality, image_size, endless=True)
    questions = write_question_split(data, n_questions)
    return data, model, end_token_ids(model), questions


def end_token_ids(model_dir: Path) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [tokenizer.convert_tokens_to_ids(t) for t in END_TOKENS]


# ---- the two paths -------------------------------------------------------------------------------

def run_medr1(model: Path, data: Path, out: Path, limit: int, args) -> dict[str, str]:
    from medr1.evaluation.evaluate import evaluate

    evaluate(model, data, SPLIT, out, prompt="think", engine="hf", batch_size=args.batch_size, limit=limit,
             image_size=args.image_size, max_new_tokens=args.max_new_tokens, num_workers=args.num_workers)
    with open(out / "predictions.jsonl", encoding="utf-8") as handle:
        return {p["question_id"]: p["output"] for p in map(json.loads, handle)}


def run_naive(model_path: Path, data: Path, questions: list[dict], image_size: int, max_new_tokens: int,
              marks: list[float], every: int, device: str = "cpu") -> dict[str, str]:
    """One question at a time, the way many research evaluation scripts do it. Appends to `marks` the
    time after every `every` questions (to compare steady states with the batched path). On a GPU the
    model runs in bf16, as `evaluate` runs it."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from medr1.data.prompts import build_conversation

    image_root = Path(json.loads((data / "manifest.json").read_text())["image_root"])
    processor = AutoProcessor.from_pretrained(model_path)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).to(device).eval()
    outputs, correct = {}, 0
    for i, record in enumerate(questions):
        image = Image.open(image_root / record["image"]).convert("RGB")
        if image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
        messages = build_conversation(record, style="think", stage="eval")
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=[image], return_tensors="pt").to(device)
        with torch.no_grad():
            output_ids = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answer = processor.decode(output_ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        match = re.search(r"<answer>\s*(\w+)\s*</answer>", answer)
        correct += bool(match and match.group(1) == record["answer"])
        outputs[record["question_id"]] = answer
        if (i + 1) % every == 0 or i + 1 == len(questions):
            marks.append(time.perf_counter())
    return outputs


def generate_ceiling(model_path: Path, data: Path, questions: list[dict], args, repeats: int = 3):
    """Seconds per question of `model.generate` alone (inputs prepared beforehand) on one batch of
    batch_size questions, one at a time vs all at once, interleaved; best of `repeats`."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from medr1.data.records import image_loader
    from medr1.evaluation.evaluate import _Batches

    processor = AutoProcessor.from_pretrained(model_path)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32).eval()
    collate = _Batches(processor, image_loader(data, args.image_size), "think", "eval")
    batch = questions[:args.batch_size]
    singles = [collate([r])[-1] for r in batch]
    together = collate(batch)[-1]
    one, many = [], []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            for inputs in singles:
                model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False)
            one.append((time.perf_counter() - start) / len(batch))
            start = time.perf_counter()
            model.generate(**together, max_new_tokens=args.max_new_tokens, do_sample=False)
            many.append((time.perf_counter() - start) / len(batch))
    return min(one), min(many)


# ---- the CPU comparison --------------------------------------------------------------------------

def cpu_section(args) -> None:
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    work = Path(args.workdir or tempfile.mkdtemp(prefix="medr1-bench-eval-"))
    try:
        start = time.perf_counter()
        data, model, end_ids, questions = build_workdir(work, args.vocab, args.per_modality, args.image_size,
                                                        args.questions)
        print(f"setup: synthetic data, {len(questions)} benchmark questions, tiny model ({args.vocab} vocabulary, end "
              f"tokens {end_ids} zeroed), {time.perf_counter() - start:.1f} s; torch threads {torch.get_num_threads()}")
        results = {"medr1": [], "naive": []}
        answers = {}
        with MemoryMonitor() as memory, TokenCount(Qwen2VLForConditionalGeneration, end_ids) as count:
            def run(name, n, tag):
                memory.label = name
                begin = time.perf_counter()
                if name == "medr1":
                    with BatchClock() as clock:
                        out = run_medr1(model, data, work / f"eval-{tag}", n, args)
                    marks = [t for t, _ in clock.times]
                else:
                    marks = []
                    out = run_naive(model, data, questions[:n], args.image_size, args.max_new_tokens, marks,
                                    every=args.batch_size)
                seconds = time.perf_counter() - begin
                memory.label = None
                tokens, rows, early = count.take()
                gc.collect()
                # steady state: from the end of the first batch_size questions to the end
                return out, {"seconds": seconds, "questions": len(out), "tokens": tokens, "rows": rows,
                             "early": early, "startup": marks[0] - begin, "steady_seconds": marks[-1] - marks[0],
                             "steady_questions": len(out) - min(args.batch_size, len(out))}

            # Warm-up pair (discarded): first imports, first kernels, allocator growth.
            for name in ("medr1", "naive"):
                run(name, min(args.batch_size, len(questions)), f"warmup-{name}")
            for i in range(args.rounds):
                for name in (("medr1", "naive") if i % 2 == 0 else ("naive", "medr1")):
                    out, r = run(name, len(questions), f"{name}-{i}")
                    results[name].append(r)
                    answers[name] = out
                    print(f"  round {i + 1} {name:>5}: {r['questions']} questions in {r['seconds']:.2f} s = "
                          f"{r['questions'] / r['seconds']:.2f} q/s, {r['tokens']} new tokens", flush=True)
            ceiling = generate_ceiling(model, data, questions, args)

        def total(name, key):
            return sum(r[key] for r in results[name])

        rate = {n: total(n, "questions") / total(n, "seconds") for n in results}
        token_rate = {n: total(n, "tokens") / total(n, "seconds") for n in results}
        steady = {n: total(n, "steady_questions") / total(n, "steady_seconds") if total(n, "steady_seconds") > 0
                  else float("nan") for n in results}  # nan when --questions <= --batch-size
        per_round = [a["seconds"] / b["seconds"] for a, b in zip(results["naive"], results["medr1"])]
        median_round = statistics.median(per_round)
        speedup = rate["medr1"] / rate["naive"]
        steady_speedup = steady["medr1"] / steady["naive"]
        full = {n: total(n, "rows") == total(n, "questions") and total(n, "early") == 0
                and total(n, "tokens") == total(n, "questions") * args.max_new_tokens for n in results}
        same = sum(answers["medr1"].get(q) == a for q, a in answers["naive"].items())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print()
        print(f"==== evaluation throughput, tiny Qwen2-VL ({args.vocab} vocabulary), CPU, {args.questions} questions "
              f"x {args.rounds} rounds (shared 2-core machine: noisy) ====")
        print(f"{'':34}{'medr1':>12}{'naive loop':>12}")
        print(f"{'batch size / DataLoader workers':34}{f'{args.batch_size} / {args.num_workers}':>12}{'1 / 0':>12}")
        print(f"{'questions/s':34}{rate['medr1']:>12.2f}{rate['naive']:>12.2f}")
        print(f"{'generated tokens/s':34}{token_rate['medr1']:>12.1f}{token_rate['naive']:>12.1f}")
        print(f"{'start-up + first batch_size q, s':34}"
              + "".join(f"{statistics.fmean(r['startup'] for r in results[n]):>12.2f}" for n in results))
        print(f"{'steady questions/s (after those)':34}{steady['medr1']:>12.2f}{steady['naive']:>12.2f}")
        print(f"{'seconds per round (mean)':34}{statistics.fmean(r['seconds'] for r in results['medr1']):>12.2f}"
              f"{statistics.fmean(r['seconds'] for r in results['naive']):>12.2f}")
        print(f"{'new tokens per question':34}{total('medr1', 'tokens') / total('medr1', 'questions'):>12.1f}"
              f"{total('naive', 'tokens') / total('naive', 'questions'):>12.1f}")
        print(f"{'all rows decoded max_new_tokens':34}{str(full['medr1']):>12}{str(full['naive']):>12}")
        print(f"{'peak RSS (+ workers USS), MB':34}" + "".join(f"{memory.rss[n] / 1e6:>12,.0f}" for n in results))
        print(f"process peak RSS (ru_maxrss): {peak / 1e6:,.0f} MB")
        print(f"same answer text in both paths: {same} of {len(answers['naive'])} questions")
        print(f"model.generate alone, s/question at batch 1 vs batch {args.batch_size}: {ceiling[0]:.4f} vs "
              f"{ceiling[1]:.4f} = {ceiling[0] / ceiling[1]:.2f}x (the most batching alone can give here)")
        print(f"speedup medr1/naive: {speedup:.2f}x overall (per round {', '.join(f'{s:.2f}' for s in per_round)}; "
              f"median {median_round:.2f}x), {steady_speedup:.2f}x steady state; target >= {TARGET_SPEEDUP:.0f}x at "
              f"batch {args.batch_size}: {'MET' if speedup >= TARGET_SPEEDUP else 'NOT MET'} overall, "
              f"{'MET' if median_round >= TARGET_SPEEDUP else 'NOT MET'} median round, "
              f"{'MET' if steady_speedup >= TARGET_SPEEDUP else 'NOT MET'} steady state")
        print(f"medr1's overall speedup is {speedup / (ceiling[0] / ceiling[1]):.0%} of what batching "
              f"model.generate alone gives on this machine")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# ---- the GPU section -----------------------------------------------------------------------------

def gpu_eval_leg(model: Path, data: Path, out: Path, engine: str, n: int, max_new_tokens: int, args,
                 memory: MemoryMonitor, end_ids: list[int], batch_size: int | None = None) -> dict:
    """One `evaluate` run; start-up (until the first batch is written) vs steady state after it."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from medr1.evaluation.evaluate import evaluate

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    memory.label = engine
    try:
        with BatchClock() as clock, TokenCount(Qwen2VLForConditionalGeneration, end_ids) as count:
            begin = time.perf_counter()
            evaluate(model, data, SPLIT, out, engine=engine, batch_size=batch_size or args.gpu_batch_size, limit=n,
                     image_size=args.gpu_image_size, max_new_tokens=max_new_tokens, num_workers=args.num_workers)
            seconds = time.perf_counter() - begin
    finally:
        memory.label = None
    (t_first, n_first), (t_last, _) = clock.times[0], clock.times[-1]
    startup = t_first - begin
    steady = (n - n_first) / (t_last - t_first) if t_last > t_first else n / seconds
    tokens, rows, early = count.take()  # the hf engine only: vLLM generates in its own engine
    return {
        "seconds": seconds, "startup": startup, "steady": steady,
        "estimate": startup + (FULL_TEST_QUESTIONS - n_first) / steady,
        "allocated": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0,
        "device_used": memory.gpu_used[engine],
        "full_length": None if rows == 0 else (early == 0 and tokens == rows * max_new_tokens),
        "first_batch": n_first,
    }


def gpu_side_by_side(model: Path, data: Path, work: Path, questions: list[dict], args, memory: MemoryMonitor,
                     end_ids: list[int]) -> None:
    """The CPU section's comparison on the GPU: `evaluate` at --batch-size against the naive loop, same
    model, same questions, same number of new tokens (the end tokens are zeroed, so every row runs to
    the limit in both)."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    n = len(questions)
    batched = gpu_eval_leg(model, data, work / "eval-side-by-side", "hf", n, args.gpu_max_new_tokens, args, memory,
                           end_ids, batch_size=args.batch_size)
    marks: list[float] = []
    with TokenCount(Qwen2VLForConditionalGeneration, end_ids) as count:
        begin = time.perf_counter()
        run_naive(model, data, questions, args.gpu_image_size, args.gpu_max_new_tokens, marks, every=1,
                  device="cuda" if torch.cuda.is_available() else "cpu")
        seconds = time.perf_counter() - begin
        tokens, rows, early = count.take()
    naive_steady = (n - 1) / (marks[-1] - marks[0]) if n > 1 else n / seconds
    first = batched["first_batch"]
    batched_steady = batched["steady"]
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"\n==== side by side on {where}: Qwen2-VL-2B architecture (random weights), {n} "
          f"questions, {args.gpu_max_new_tokens} new tokens each ====")
    print(f"medr1 (batch {args.batch_size}): {batched['seconds']:.1f} s = {n / batched['seconds']:.3f} q/s; after "
          f"the first {first} questions {batched_steady:.3f} q/s")
    print(f"naive loop (batch 1): {seconds:.1f} s = {n / seconds:.3f} q/s; after the first question "
          f"{naive_steady:.3f} q/s; every row decoded {args.gpu_max_new_tokens} tokens: "
          f"{early == 0 and tokens == rows * args.gpu_max_new_tokens and rows == n}")
    print(f"speedup medr1/naive: {seconds / batched['seconds']:.2f}x overall, {batched_steady / naive_steady:.2f}x "
          f"steady state; target >= {TARGET_SPEEDUP:.0f}x at batch {args.batch_size}")


def gpu_section(args) -> None:
    import importlib.util

    import torch

    print()
    if not torch.cuda.is_available():
        print("GPU section skipped: no CUDA device is available.")
        return
    from medr1.data.prepare import prepare
    from medr1.embedded.synth import write_synthetic_dataset
    from medr1.embedded.tiny_model import build_qwen2vl_2b

    has_vllm = importlib.util.find_spec("vllm") is not None
    work = Path(tempfile.mkdtemp(prefix="medr1-bench-eval-gpu-"))
    try:
        print(f"GPU section on {torch.cuda.get_device_name()} (vllm {'yes' if has_vllm else 'no'})")
        write_synthetic_dataset(work / "omnimedvqa", per_modality=20, image_size=args.gpu_image_size, seed=0)
        prepare(work / "omnimedvqa", work / "data", seed=42)
        questions = write_question_split(work / "data", max(args.gpu_questions, args.gpu_hf_questions,
                                                            args.gpu_compare_questions))
        model = build_qwen2vl_2b(work / "qwen2vl-2b-random-endless", image_size=args.gpu_image_size, endless=True)
        end_ids = end_token_ids(model)
        legs = ([("hf", args.gpu_hf_questions)] if args.gpu_hf_questions > 0 else []) + (
            [("vllm", args.gpu_questions)] if has_vllm and args.gpu_questions > 0 else [])
        results = []
        with MemoryMonitor(interval=0.5, gpu=True) as memory:
            if args.gpu_compare_questions > 0:  # before vLLM, which keeps its memory in this process
                gpu_side_by_side(model, work / "data", work, questions[:args.gpu_compare_questions], args, memory,
                                 end_ids)
            for engine, n in legs:  # hf first: a vLLM engine does not give its memory back in-process
                try:
                    r = gpu_eval_leg(model, work / "data", work / f"eval-{engine}", engine, n,
                                     args.gpu_max_new_tokens, args, memory, end_ids)
                except Exception as error:  # report and go on: one failed engine should not lose the other
                    print(f"  {engine}: FAILED: {type(error).__name__}: {error}", flush=True)
                    continue
                results.append((engine, n, r))
                print(f"  {engine}: {n} questions in {r['seconds']:.1f} s", flush=True)
        print()
        print(f"==== evaluation throughput, Qwen2-VL-2B architecture (random weights), {torch.cuda.get_device_name()}, "
              f"{args.gpu_max_new_tokens} new tokens per question, batch {args.gpu_batch_size} ====")
        for engine, n, r in results:
            print(f"{engine:>5}: {n} questions in {r['seconds']:.1f} s = {n / r['seconds']:.2f} q/s "
                  f"({n * args.gpu_max_new_tokens / r['seconds']:,.0f} tokens/s); start-up + first batch "
                  f"{r['startup']:.1f} s, then {r['steady']:.2f} q/s; estimate for {FULL_TEST_QUESTIONS:,} questions: "
                  f"{r['estimate'] / 60:.1f} min; peak allocated (this process) {r['allocated'] / 1e9:.1f} GB, "
                  f"device memory in use {r['device_used'] / 1e9:.1f} GB"
                  + ("" if r["full_length"] is None else f"; every row decoded {args.gpu_max_new_tokens} tokens: "
                     f"{r['full_length']}"))
        if not has_vllm:
            print("vllm engine skipped: vllm is not installed (pip install -e '.[vllm]').")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=128, help="questions per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating medr1/naive pairs after the warm-up")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=2, help="evaluate's DataLoader workers (its default)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--vocab", choices=("compact", "qwen"), default="compact")
    parser.add_argument("--per-modality", type=int, default=20, help="synthetic questions per modality")
    parser.add_argument("--image-size", type=int, default=56)
    add_section_arguments(parser)
    parser.add_argument("--gpu-questions", type=int, default=2000, help="questions for the vllm engine")
    parser.add_argument("--gpu-hf-questions", type=int, default=512,
                        help="questions for the hf engine (2000 at 256 tokens, batch 16, take over 10 minutes)")
    parser.add_argument("--gpu-batch-size", type=int, default=64, help="hf engine batch size on the GPU")
    parser.add_argument("--gpu-compare-questions", type=int, default=32,
                        help="questions for the GPU side-by-side of medr1 at --batch-size vs the naive loop (0: skip)")
    parser.add_argument("--gpu-max-new-tokens", type=int, default=256)
    parser.add_argument("--gpu-image-size", type=int, default=384, help="the paper's image size")
    args = parser.parse_args()

    quiet_libraries()
    return run_sections(args, cpu_section, gpu_section)


if __name__ == "__main__":
    sys.exit(main())
