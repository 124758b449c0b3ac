"""Shared fixtures: one small synthetic OmniMedVQA, prepared, and tiny models built once per session."""

import pytest


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """(raw OmniMedVQA root, prepared DATA_DIR) with 40 questions per modality."""
    from medr1.prepare import prepare
    from medr1.synth import write_synthetic_dataset

    base = tmp_path_factory.mktemp("synthetic")
    raw, data = base / "omnimedvqa", base / "data"
    write_synthetic_dataset(raw, per_modality=40, image_size=64, seed=0)
    prepare(raw, data, seed=42)
    return raw, data


@pytest.fixture(scope="session")
def compact_model(tmp_path_factory, synthetic_data):
    """A tiny Qwen2-VL with a compact vocabulary: fast enough for training tests on a CPU."""
    from medr1.tiny_model import build_tiny_model, corpus_from_records

    _, data = synthetic_data
    out = tmp_path_factory.mktemp("models") / "tiny-compact"
    build_tiny_model(out, vocab="compact", corpus=corpus_from_records(data / "records.jsonl"), image_size=56)
    return out


@pytest.fixture(scope="session")
def qwen_vocab_model(tmp_path_factory):
    """The tiny Qwen2-VL with the real Qwen2 vocabulary (the default path)."""
    from medr1.tiny_model import build_tiny_model

    out = tmp_path_factory.mktemp("models") / "tiny-qwen"
    build_tiny_model(out, vocab="qwen", image_size=56)
    return out
