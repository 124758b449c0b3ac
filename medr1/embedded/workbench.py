"""What the benchmarks in `bench/` share: a synthetic DATA_DIR with a tiny model, a memory sampler, quiet
libraries and the CPU-then-GPU section order. Each benchmark keeps its own measuring loop."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections import defaultdict
from pathlib import Path


def build_workbench(work: Path, vocab: str, per_modality: int, image_size: int, endless: bool = False,
                    seed: int = 0) -> tuple[Path, Path]:
    """Synthetic raw OmniMedVQA -> a prepared DATA_DIR, and the tiny model; returns (data_dir, model_dir).
    `endless`: a model whose greedy decoding never stops early (see `save_random_model`)."""
    from medr1.data.prepare import prepare
    from medr1.embedded.synth import write_synthetic_dataset
    from medr1.embedded.tiny_model import build_tiny_model, corpus_from_records

    raw, data = work / "omnimedvqa", work / "data"
    write_synthetic_dataset(raw, per_modality=per_modality, image_size=image_size, seed=seed)
    prepare(raw, data, seed=42)
    corpus = corpus_from_records(data / "records.jsonl") if vocab == "compact" else None
    model = build_tiny_model(work / f"tiny-{vocab}{'-endless' if endless else ''}", vocab=vocab, corpus=corpus,
                             image_size=image_size, endless=endless)
    return data, model


class MemoryMonitor:
    """Samples memory every `interval` s and keeps the peak per label (set `.label`; None pauses):
    `rss[label]`, this process's RSS plus the unique memory (USS) of its children (forked DataLoader workers
    share most pages with the parent, so adding their RSS would count those twice), and with `gpu=True`
    `gpu_used[label]`, the device memory in use by all processes (a vLLM engine process counts)."""

    def __init__(self, interval: float = 0.05, gpu: bool = False):
        import psutil

        self._proc = psutil.Process()
        self.interval, self.gpu, self.label = interval, gpu, None
        self.rss, self.gpu_used = defaultdict(int), defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample_rss(self) -> int:
        total = self._proc.memory_info().rss
        for child in self._proc.children(recursive=True):
            with contextlib.suppress(Exception):
                total += child.memory_full_info().uss
        return total

    def _run(self):
        import torch

        while not self._stop.is_set():
            label = self.label
            if label is not None:
                self.rss[label] = max(self.rss[label], self._sample_rss())
                if self.gpu:
                    free, total = torch.cuda.mem_get_info()
                    self.gpu_used[label] = max(self.gpu_used[label], total - free)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def quiet_libraries() -> None:
    """Benchmarks print their own figures: silence warnings, library logging and progress bars."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def add_section_arguments(parser) -> None:
    """The flags every benchmark takes: threads, work folder, and which sections run."""
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads for both CPU paths (0: torch's default, one per core). 1 by "
                             "default: on a shared machine, 2 threads spin at every op's barrier while the other "
                             "tenant holds a core, which makes small-op latency, and so the results, erratic")
    parser.add_argument("--workdir", help="folder to build into (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--gpu", action="store_true", help="also run the Qwen2-VL-2B GPU section (CUDA only)")
    parser.add_argument("--gpu-only", action="store_true", help="run only the GPU section")


def run_sections(args, cpu_section, gpu_section) -> int:
    """The CPU section (unless --gpu-only) at --threads torch threads, then the GPU section (with --gpu or
    --gpu-only) at torch's default. Targets are reported, not enforced: timings on a shared machine are too
    noisy to gate on."""
    import torch

    default_threads = torch.get_num_threads()
    if not args.gpu_only:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        cpu_section(args)
    if args.gpu or args.gpu_only:
        torch.set_num_threads(default_threads)  # --threads is for the shared-CPU comparison only
        gpu_section(args)
    return 0
