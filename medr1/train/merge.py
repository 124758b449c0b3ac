"""Merge a LoRA adapter into its base between stages: `medr1 merge-lora --adapter outputs/dpo/CT --out DIR`.

PEFT's `merge_and_unload` folds the adapter's low-rank updates into the base weights; the result is a plain
checkpoint (model + processor or tokenizer) that the next stage, `medr1 eval` or vLLM load like any other. The base is
the adapter's `base_model_name_or_path` unless `--base` names another path for it (a moved folder). The processor
is the adapter folder's own when it has one (the stages save it there), else the base's.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

PROCESSOR_FILES = ("tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


def adapter_base(adapter) -> str:
    """The base checkpoint an adapter folder was trained on (`adapter_config.json`)."""
    config = Path(adapter) / "adapter_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{config} is missing: {adapter} is not a PEFT adapter folder")
    base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{config} names no base_model_name_or_path; pass --base")
    return base


def merge_adapter(adapter, out, base: str | None = None) -> Path:
    """Save `base` + `adapter`, merged, with its processor, to `out`."""
    from peft import PeftModel

    from medr1.data.model_kinds import checkpoint_kind, load_model, load_processing_class

    base = base or adapter_base(adapter)
    kind = checkpoint_kind(base)
    model = load_model(base, kind, dtype="auto")  # the base's own dtype
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    has_own = any((Path(adapter) / name).is_file() for name in PROCESSOR_FILES)
    load_processing_class(str(adapter) if has_own else base, kind).save_pretrained(str(out))
    logger.info("merged %s into %s -> %s", adapter, base, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medr1 merge-lora", description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", required=True, type=Path, help="a folder with adapter_config.json")
    parser.add_argument("--out", required=True, type=Path, help="where the merged checkpoint goes")
    parser.add_argument("--base", help="the base checkpoint (default: the adapter's base_model_name_or_path)")
    args = parser.parse_args(argv)
    merge_adapter(args.adapter, args.out, args.base)
    return 0
