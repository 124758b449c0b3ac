"""Evaluate one checkpoint on one split: `medr1 eval --model PATH --data DATA_DIR --split modality/CT/test --out DIR`.

Greedy decoding, batched with left padding; images are decoded and tokenized in DataLoader workers so
that this overlaps model time. Predictions are appended to `DIR/predictions.jsonl` as they are made,
so a rerun after a crash continues where it stopped; `DIR/metrics.json` is written at the end.
Under `torchrun --nproc_per_node N` or `accelerate launch`, the questions are shared over the processes
(medr1/evaluation/sharding.py) and the files are the ones a 1-process run writes.
Scoring uses the same answer parser as the training reward. Text records work the same way, with the text prompt
styles (`--prompt huatuo | medicalgpt`, scored by HuatuoGPT-o1's extraction by default in `huatuo`); open-ended
records (`options: []`) are scored by the rule verifier (medr1/evaluation/scoring.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time
from pathlib import Path

from medr1.data.model_kinds import tokenizer_of
from medr1.data.prompts import TEXT_STYLES
from medr1.evaluation.scoring import (
    CONVENTIONS,
    complete_scoring,
    convention,
    default_parse,
    is_open_ended,
    score_all,
    scoring_summary,
)
from medr1.evaluation.sharding import current_world, finish_merge, join, read_progress, shard, shard_path
from medr1.sources.omnimedvqa import MULTI_IMAGE_KEY, record_images

logger = logging.getLogger(__name__)

PROMPTS = ("think", "nothink", "think-after", "zero-shot", *TEXT_STYLES)
ENGINES = ("hf", "vllm")
VLLM_MAX_MODEL_LEN = 4096  # the context `--engine vllm` gives each prompt and its completion
# The released scoring: the word inside <answer>\s*(\w+)\s*</answer>, a missing tag is wrong. These two are
# also training-reward modes; `--parse` takes any scoring convention (medr1/evaluation/scoring.py).
PARSE_MODES = {"robust": "robust", "medr1-compat": "medr1-compat-eval"}


# ---- pure scoring -------------------------------------------------------------------------------

def images_of(record: dict) -> list[str]:
    """A record's image paths in prompt order; none for a text record."""
    return record_images(record) if "image" in record or MULTI_IMAGE_KEY in record else []


def score_prediction(record: dict, output: str, prompt: str, parse: str | None, prompt_text: str | None = None, *,
                     every_convention: bool = False) -> dict:
    """One prediction line: `parsed`/`correct` by the chosen convention `parse` (None: the prompt's default,
    `medr1.evaluation.scoring.default_parse`); with `every_convention` (what `medr1 eval` writes) also
    `parsed_by`/`correct_by` by each of medr1.evaluation.scoring.CONVENTIONS. An open-ended record's `parsed` is
    its answer text and `correct` the rule verifier's verdict."""
    from medr1.rewards.functions import format_reward

    parse = parse or default_parse(prompt)
    convention(parse)
    scored = score_all(output, record["options"], record["answer"], style=prompt)
    formatted = None if prompt == "zero-shot" else bool(format_reward([output], style=prompt)[0])
    return {
        "question_id": record["question_id"],
        "dataset": record["dataset"],
        "output": output,
        "parsed": scored["parsed_by"][parse],
        "answer": record["answer"],
        "correct": scored["correct_by"][parse],
        "format_ok": formatted,
        **({} if prompt_text is None else {"prompt_text": prompt_text}),  # what the model was shown
        **(scored if every_convention else {}),
    }


def bootstrap_ci(correct: list[bool], resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the accuracy."""
    if not correct:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(correct)
    values = [1.0 if c else 0.0 for c in correct]
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return (means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))])


def summarize(predictions: list[dict]) -> dict:
    n = len(predictions)
    correct = [p["correct"] for p in predictions]
    formats = [p["format_ok"] for p in predictions if p["format_ok"] is not None]
    per_dataset: dict[str, dict] = {}
    for p in predictions:
        entry = per_dataset.setdefault(p["dataset"], {"n": 0, "correct": 0})
        entry["n"] += 1
        entry["correct"] += int(p["correct"])
    for entry in per_dataset.values():
        entry["accuracy"] = entry["correct"] / entry["n"]
    low, high = bootstrap_ci(correct)
    metrics = {
        "n": n,
        "correct": sum(correct),
        "accuracy": sum(correct) / n if n else float("nan"),
        "ci95": [low, high],
        "answered_rate": sum(p["parsed"] is not None for p in predictions) / n if n else float("nan"),
        "format_compliance": sum(formats) / len(formats) if formats else None,
        "per_dataset": dict(sorted(per_dataset.items())),
    }
    # Every scoring convention, when the lines carry `correct_by` (the chosen one's interval is reused).
    scoring = scoring_summary(predictions, known_ci={tuple(map(bool, correct)): (low, high)})
    if scoring is not None:
        metrics["scoring"] = scoring
    return metrics


# ---- resumable prediction file ------------------------------------------------------------------

def read_done(path: Path) -> list[dict]:
    """Predictions already written; a torn last line (killed mid-write) is cut off the file."""
    if not path.is_file():
        return []
    done, good_bytes = [], 0
    with open(path, "rb") as handle:
        for line in handle:
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("torn line")
                done.append(json.loads(line))
            except ValueError:
                logger.warning("%s: dropping an incomplete last line (an interrupted write)", path)
                break
            good_bytes += len(line)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(good_bytes)
    return done


def append_predictions(path: Path, predictions: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for p in predictions:
            handle.write(json.dumps(p, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ---- engines ------------------------------------------------------------------------------------

def prompt_texts(processor, records: list[dict], prompt: str, stage: str = "eval") -> list[str]:
    from medr1.data.prompts import build_conversation

    style = "think" if prompt == "zero-shot" else prompt
    return [
        processor.apply_chat_template(
            build_conversation(r, style=style, stage=stage, zero_shot=prompt == "zero-shot"),
            add_generation_prompt=True, tokenize=False,
        )
        for r in records
    ]


def longest_first(records: list[dict]) -> list[dict]:
    """Records ordered by the length of their question and options text, longest first (ties keep split order).

    Records with more images (multi-image questions) come before all others. Neighbours in a batch then have
    similar prompt lengths, so left padding wastes little compute (on the
    synthetic benchmark split, 10 % fewer padded prompt tokens), and the largest batches come first, so
    an out-of-memory batch size fails at once rather than hours in. Batch-size invariant and deterministic,
    so a resumed run writes the same file as an uninterrupted one."""
    from medr1.data.prompts import problem_text

    def length(record):  # images first (a multi-image record's `images`), then the text the prompt is built from
        images = len(record.get("images") or [None])
        if "question" in record and "options" in record:
            return images, len(problem_text(record["question"], record["options"]))
        return images, len(record.get("problem", ""))

    return sorted(records, key=length, reverse=True)  # stable: equal lengths keep their order


class _Batches:
    """Collate function for the DataLoader: records -> processor tensors (runs in the workers)."""

    def __init__(self, processor, load_image, prompt, stage):
        self.processor, self.load_image, self.prompt, self.stage = processor, load_image, prompt, stage

    def __call__(self, records):
        texts = prompt_texts(self.processor, records, self.prompt, self.stage)
        # One list per record, in prompt order: a flat list reads as one prompt's images to some processors
        # (Gemma 3). Text records have none; their templated text already holds any BOS token (Llama 3.1), so the
        # tokenizer adds none, as TRL's trainers tokenize.
        images = [[self.load_image(path) for path in images_of(r)] for r in records if images_of(r)]
        extra = {"images": images} if images else {"add_special_tokens": False}
        inputs = self.processor(text=texts, **extra, padding=True, return_tensors="pt")
        return records, texts, inputs


class ModelCache:
    """What evaluating one checkpoint loads (model, processor, config), kept for the next evaluation of the same
    checkpoint: `medr1 matrix` decodes every cell of a row with one load. Holds one checkpoint at a time;
    asking for another releases the first. `evaluate` without one loads afresh."""

    def __init__(self):
        self.model, self.entries = None, {}

    def get(self, model, name: str, build, fits=lambda value: True):
        """Entry `name` of checkpoint `model`, built by `build()` when not held (or when `fits(entry)` is false)."""
        if str(model) != self.model:
            self.release()
            self.model = str(model)
        if name not in self.entries or not fits(self.entries[name]):
            self.entries.pop(name, None)
            self.entries[name] = build()
        return self.entries[name]

    def release(self) -> None:
        self.model, self.entries = None, {}


def load_for_generation(model_path):
    """(model, processor) on the GPU in bf16 when there is one (this rank's, cuda:LOCAL_RANK, in a data-parallel
    launch), else on the CPU in fp32; left padding. A VLM and its processor, or a text causal LM and its tokenizer,
    as the checkpoint's config says (`medr1.data.model_kinds`)."""
    import torch

    from medr1.data.model_kinds import checkpoint_kind, load_model, load_processing_class, tokenizer_of

    device = f"cuda:{current_world().local_rank}" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    kind = checkpoint_kind(model_path)
    processor = load_processing_class(model_path, kind)
    tokenizer_of(processor).padding_side = "left"
    model = load_model(model_path, kind, dtype=dtype).to(device).eval()
    return model, processor


def generate_batches(model, processor, batches, on_batch, max_new_tokens, samples: int = 1):
    """Decode each (records, texts, inputs) batch: greedily, or `samples` completions per prompt."""
    import torch

    from medr1.data.model_kinds import media_token_ids

    # Sampling as GRPO samples (temperature 1, no top-p/top-k), whatever the checkpoint's generation
    # config says (Qwen2-VL-Instruct's asks for near-greedy top_k=1).
    sampling = {"do_sample": True, "num_return_sequences": samples, "temperature": 1.0, "top_p": 1.0,
                "top_k": 0} if samples > 1 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    suppressed = media_token_ids(model.config)  # as GRPO's rollouts: never an image placeholder (model_kinds)
    if suppressed:
        sampling["suppress_tokens"] = suppressed
    for batch_records, texts, inputs in batches:
        inputs = inputs.to(model.device)
        with torch.inference_mode():
            output_ids = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
        decoded = processor.batch_decode(output_ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        if samples > 1:
            decoded = [decoded[i * samples:(i + 1) * samples] for i in range(len(batch_records))]
        on_batch(batch_records, decoded, texts)


def batch_loader(processor, records, load_image, prompt, stage, batch_size, num_workers):
    """Batches of (records, prompt texts, processor tensors) built in DataLoader workers."""
    from torch.utils.data import DataLoader

    # Left padding: every prompt ends where generation starts, so a batch decodes as its rows alone would.
    # Set before the workers fork, which copy the processor.
    tokenizer_of(processor).padding_side = "left"
    return DataLoader(
        records, batch_size=batch_size, shuffle=False, num_workers=num_workers,
        collate_fn=_Batches(processor, load_image, prompt, stage), persistent_workers=False,
    )


def generate_hf(model_path, records, load_image, prompt, stage, batch_size, max_new_tokens, num_workers, on_batch,
                samples: int = 1, processor=None, cache: ModelCache | None = None):
    from medr1.data.model_kinds import load_processing_class

    processor = processor or load_processing_class(model_path)
    # Workers start (and fill their prefetch queue) before the model loads, so image decoding overlaps
    # the load, and the forked workers do not map the model's memory (a cached model: loaded already).
    batches = iter(batch_loader(processor, records, load_image, prompt, stage, batch_size, num_workers))
    model = (cache or ModelCache()).get(model_path, "hf", lambda: load_for_generation(model_path)[0])
    generate_batches(model, processor, batches, on_batch, max_new_tokens, samples)


def evaluate_in_memory(model, processor, records, load_image, prompt="think", stage="eval", batch_size=16,
                       max_new_tokens=256, parse=None) -> dict:
    """Greedy accuracy of a loaded model on `records` (e.g. during training): `summarize`'s metrics, nothing
    written; scored as `medr1 eval` scores (`parse` None: the prompt's default convention; open-ended records by the
    rule verifier). The model is put in eval mode for the duration and the tokenizer's padding side restored."""
    parse = parse or default_parse(prompt)
    predictions = []

    def on_batch(batch_records, outputs, texts):
        predictions.extend(score_prediction(r, o, prompt, parse) for r, o in zip(batch_records, outputs, strict=True))

    was_training, padding_side = model.training, tokenizer_of(processor).padding_side
    model.eval()
    try:
        batches = batch_loader(processor, records, load_image, prompt, stage, batch_size, num_workers=0)
        generate_batches(model, processor, batches, on_batch, max_new_tokens)
    finally:
        model.train(was_training)
        tokenizer_of(processor).padding_side = padding_side
    return summarize(predictions)


def generate_vllm(model_path, records, load_image, prompt, stage, batch_size, max_new_tokens, num_workers, on_batch,
                  samples: int = 1, processor=None, cache: ModelCache | None = None):
    try:
        from vllm import LLM, SamplingParams
    except ImportError as error:
        raise SystemExit("--engine vllm needs the vllm extra: pip install -e '.[vllm]' (GPU only)") from error
    from medr1.data.model_kinds import load_processing_class

    processor = processor or load_processing_class(model_path)
    most_images = max(len(images_of(r)) for r in records)
    # An engine made for as many images per prompt as these records need (or more) is reused.
    # Text records (no images): no multimodal limit, which text-only models do not take.
    limits = {"limit_mm_per_prompt": {"image": most_images}} if most_images else {}
    _, llm = (cache or ModelCache()).get(model_path, "vllm", lambda: (most_images, LLM(
        model=str(model_path), max_model_len=VLLM_MAX_MODEL_LEN, **limits)),
        fits=lambda entry: entry[0] >= most_images)
    params = (SamplingParams(temperature=1.0, n=samples, max_tokens=max_new_tokens) if samples > 1
              else SamplingParams(temperature=0.0, max_tokens=max_new_tokens))
    # vLLM batches internally; chunks only bound memory and set how often progress is saved.
    chunk = max(batch_size, 256)
    for start in range(0, len(records), chunk):
        part = records[start:start + chunk]
        texts = prompt_texts(processor, part, prompt, stage)
        inputs = [{"prompt": t, **({"multi_modal_data": {"image": vllm_images(r, load_image)}} if images_of(r)
                                   else {})} for t, r in zip(texts, part)]  # text records: the prompt alone
        outputs = llm.generate(inputs, params, use_tqdm=False)
        decoded = [[c.text for c in o.outputs] if samples > 1 else o.outputs[0].text for o in outputs]
        on_batch(part, decoded, texts)


def vllm_images(record: dict, load_image):
    """A record's `multi_modal_data` image entry: one image, or a list in prompt order (multi-image)."""
    images = [load_image(path) for path in images_of(record)]
    return images[0] if len(images) == 1 else images


ENGINE_FUNCS = {"hf": generate_hf, "vllm": generate_vllm}


def check_eval_budget(model, records, data_dir, prompt, stage, image_size, max_new_tokens, engine,
                      cache: ModelCache | None = None):
    """The processor, once no record's prompt plus `max_new_tokens` is over the model's context (or vLLM's
    max_model_len); ValueError naming the record otherwise (`medr1.data.budget`)."""
    from transformers import AutoConfig

    from medr1.data.budget import Limit, check_prompt_budget, context_limit
    from medr1.data.model_kinds import load_processing_class
    from medr1.data.records import image_size_reader

    cache = cache or ModelCache()
    processor = cache.get(model, "processor", lambda: load_processing_class(model))
    config = cache.get(model, "config", lambda: AutoConfig.from_pretrained(model))
    limits = [context_limit(config, max_new_tokens, "--max-new-tokens")]
    if engine == "vllm":
        limits.append(Limit(VLLM_MAX_MODEL_LEN - max_new_tokens,
                            f"vLLM's max_model_len {VLLM_MAX_MODEL_LEN} less max-new-tokens {max_new_tokens}",
                            "lower --max-new-tokens"))
    check_prompt_budget([r["question_id"] for r in records], prompt_texts(processor, records, prompt, stage),
                        [images_of(r) for r in records], processor, image_size_reader(data_dir, image_size),
                        limits, image_setting="--image-size")
    return processor


# ---- the stage ----------------------------------------------------------------------------------

def evaluate(model, data_dir, split, out, prompt="think", engine="hf", batch_size=16, limit=None,
             parse=None, image_size=384, max_new_tokens=256, num_workers=2, stage="eval",
             cache: ModelCache | None = None) -> dict:
    """`out/predictions.jsonl` and `out/metrics.json` of `model` on `split`; `cache` keeps the loaded model for
    the next call; `parse` None scores by the prompt's default convention (`huatuo` for the huatuo prompt, else
    `robust`). Launched as N processes, each decodes its share (medr1/evaluation/sharding.py), rank 0
    merges and scores, and every rank returns the metrics."""
    from tqdm import tqdm

    from medr1.data.records import image_loader, load_split

    if prompt not in PROMPTS:
        raise ValueError(f"unknown prompt {prompt!r}; choose one of {PROMPTS}")
    parse = parse or default_parse(prompt)
    if parse not in CONVENTIONS:
        raise ValueError(f"unknown parse mode {parse!r}; choose one of {tuple(CONVENTIONS)}")
    world = current_world()
    if world.size > 1 and engine != "hf":
        raise ValueError(f"data-parallel evaluation (WORLD_SIZE={world.size}) runs on --engine hf; "
                         f"--engine {engine} batches on its own: launch it as one process")
    group = join(world)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    predictions_path = out / "predictions.jsonl"
    records = load_split(data_dir, split, limit)
    order = longest_first(records)  # the decoding order; each rank takes its share of it
    done, shards = read_progress(out, group, read_done)
    done_ids = {p["question_id"] for lines in (done, *shards) for p in lines}
    pending = [r for r in order if r["question_id"] not in done_ids]
    share = shard(order, world.rank, world.size)
    mine = [r for r in share if r["question_id"] not in done_ids]
    if done_ids:
        logger.info("%s: %d of %d predictions already made; continuing", predictions_path,
                    len(records) - len(pending), len(records))
    write_to = predictions_path if world.size == 1 else shard_path(out, world.rank)
    started = time.perf_counter()
    progress = tqdm(total=len(share), initial=len(share) - len(mine), desc=f"eval {split}", unit="q",
                    disable=world.rank > 0)

    def on_batch(batch_records, outputs, texts):
        append_predictions(write_to, [score_prediction(r, o, prompt, parse, t, every_convention=True)
                                      for r, o, t in zip(batch_records, outputs, texts, strict=True)])
        progress.update(len(batch_records))

    cache = cache or ModelCache()
    if pending:  # every rank checks every pending prompt, so that all stop together on one too long
        processor = check_eval_budget(model, pending, data_dir, prompt, stage, image_size, max_new_tokens, engine,
                                      cache=cache)
        if mine:
            ENGINE_FUNCS[engine](model, mine, image_loader(data_dir, image_size), prompt, stage, batch_size,
                                 max_new_tokens, num_workers, on_batch, processor=processor, cache=cache)
    progress.close()
    by_rank = group.gather(len(mine))
    seconds = time.perf_counter() - started
    if world.rank == 0:
        written = finish_merge(out, done, [r["question_id"] for r in order], read_done)
        wanted = {r["question_id"] for r in records}
        predictions = [p for p in written if p["question_id"] in wanted]
        predictions = complete_scoring(predictions, records, prompt, parse)  # lines written before `correct_by`
        metrics = {
            **summarize(predictions),
            "model": str(model), "split": split, "prompt": prompt, "prompt_stage": stage, "parse": parse,
            "engine": engine, "image_size": image_size, "max_new_tokens": max_new_tokens,
            "open_ended": sum(is_open_ended(r["options"]) for r in records),  # scored by the rule verifier
            "seconds_this_run": seconds, "questions_this_run": sum(by_rank),
            "world_size": world.size, "questions_by_rank": by_rank,
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        logger.info("%s on %s: accuracy %.4f (n=%d, 95%% CI %.3f-%.3f)", model, split, metrics["accuracy"],
                    metrics["n"], *metrics["ci95"])
    group.barrier()  # the other ranks read what rank 0 wrote
    return metrics if world.rank == 0 else json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", choices=PROMPTS, default="think")
    parser.add_argument("--engine", choices=ENGINES, default="hf")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, help="evaluate only the first N questions")
    parser.add_argument("--parse", choices=tuple(CONVENTIONS), default=None,
                        help="the scoring convention of the top-level accuracy (every one is in `scoring`; default: "
                             "huatuo for --prompt huatuo, else robust)")
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers decoding images")
    parser.add_argument("--prompt-stage", choices=("eval", "train"), default="eval",
                        help="eval: the released evaluation wording; train: the training wording")


def eval_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of `evaluate` (and of the commands built on it) that `add_arguments` parsed."""
    return {"prompt": args.prompt, "engine": args.engine, "batch_size": args.batch_size, "limit": args.limit,
            "parse": args.parse, "image_size": args.image_size, "max_new_tokens": args.max_new_tokens,
            "num_workers": args.num_workers, "stage": args.prompt_stage}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medr1 eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint directory (or hub id where online)")
    parser.add_argument("--data", required=True, type=Path, help="DATA_DIR written by `medr1 prepare`")
    parser.add_argument("--split", required=True,
                        help="e.g. modality/CT/test, 'task/Lesion Grading/test' or dataset/medqa/test (text)")
    parser.add_argument("--out", required=True, type=Path)
    add_arguments(parser)
    args = parser.parse_args(argv)
    evaluate(args.model, args.data, args.split, args.out, **eval_options(args))
    return 0
