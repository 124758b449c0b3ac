"""Shared fixtures: one small synthetic OmniMedVQA, prepared, and tiny models built once per session."""

import pytest


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """(raw OmniMedVQA root, prepared DATA_DIR) with 60 questions per modality (12 test each)."""
    from medr1.data.prepare import prepare
    from medr1.embedded.synth import write_synthetic_dataset

    base = tmp_path_factory.mktemp("synthetic")
    raw, data = base / "omnimedvqa", base / "data"
    write_synthetic_dataset(raw, per_modality=60, image_size=64, seed=0)
    prepare(raw, data, seed=42)
    return raw, data


@pytest.fixture(scope="session")
def compact_model(tmp_path_factory, synthetic_data):
    """A tiny Qwen2-VL with a compact vocabulary: fast enough for training tests on a CPU."""
    from medr1.embedded.tiny_model import build_tiny_model, corpus_from_records

    _, data = synthetic_data
    out = tmp_path_factory.mktemp("models") / "tiny-compact"
    build_tiny_model(out, vocab="compact", corpus=corpus_from_records(data / "records.jsonl"), image_size=56)
    return out


@pytest.fixture(scope="session")
def qwen_vocab_model(tmp_path_factory):
    """The tiny Qwen2-VL with the real Qwen2 vocabulary (the default path)."""
    from medr1.embedded.tiny_model import build_tiny_model

    out = tmp_path_factory.mktemp("models") / "tiny-qwen"
    build_tiny_model(out, vocab="qwen", image_size=56)
    return out


@pytest.fixture(scope="session")
def diverse_model(tmp_path_factory, compact_model):
    """The compact tiny model with its weights scaled up, so greedy outputs differ from question to
    question (a fresh 0.02-std initialisation answers every prompt with the same token)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out = tmp_path_factory.mktemp("models") / "tiny-diverse"
    model = AutoModelForImageTextToText.from_pretrained(compact_model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(compact_model).save_pretrained(out)
    return out
