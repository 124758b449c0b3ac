"""MedicalGPT's stages on medr1's data: PT (packing, bad lines, resume), RM (pairs; triples -> the classifier
verifier), DPO (MedicalGPT pairs and on-policy image pairs, LoRA), `medr1 pairs`, RLOO, merge-lora."""

import json
from pathlib import Path

import pytest

from medr1.evaluation.pairs import ALL_CORRECT, ALL_WRONG, pair_for, pair_summary
from medr1.train.pt import pack_blocks, parse_text_line, read_corpus
from medr1.train.rloo import algorithm_of

REPO = Path(__file__).resolve().parents[1]
CPU = ["--use_cpu", "true", "--bf16", "false", "--report_to", "none"]


def trainer_state(out: Path) -> dict:
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return json.loads((checkpoints[-1] / "trainer_state.json").read_text())


@pytest.fixture(scope="module")
def tiny_causal(tmp_path_factory, synthetic_data):
    """A tiny text Qwen2 with a compact vocabulary (rm's sequence classifier, MedicalGPT-format DPO)."""
    from medr1.embedded.tiny_causal import build_tiny_causal, text_corpus

    corpus = text_corpus([{"question": "Which organ filters the blood?", "options": ["kidney", "lung"]}],
                         completions=["The kidney filters blood.", "The lung does.", "True", "False"])
    return build_tiny_causal(tmp_path_factory.mktemp("models") / "tiny-causal", vocab="compact", corpus=corpus)


# ---- pure rules ---------------------------------------------------------------------------------

def test_pack_blocks_appends_eos_and_drops_the_tail():
    assert pack_blocks([[1, 2, 3], [4, 5]], block_size=3, eos_id=0) == [[1, 2, 3], [0, 4, 5]]  # tail [0] dropped
    assert pack_blocks([[1, 2], [3]], block_size=2, eos_id=None) == [[1, 2]]
    assert pack_blocks([[1]], block_size=4, eos_id=0) == []
    with pytest.raises(ValueError):
        pack_blocks([[1, 2]], block_size=1, eos_id=0)


def test_text_lines_and_bad_lines_are_named(tmp_path):
    assert parse_text_line("  kidney  \n", ".txt") == ("kidney", None)
    assert parse_text_line("\n", ".txt") == (None, None)
    assert parse_text_line('{"text": "liver"}', ".jsonl") == ("liver", None)
    assert parse_text_line("{oops", ".jsonl")[1].startswith("not JSON")
    assert parse_text_line('{"body": "x"}', ".jsonl") == (None, "no `text` field")
    assert parse_text_line('{"text": ""}', ".jsonl")[1] == "`text` is not a non-empty string"
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    (tmp_path / "b.jsonl").write_text('{"text": "three"}\n{broken\n{"text": 4}\n')
    documents, bad = read_corpus(tmp_path)
    assert documents == ["one", "two", "three"]
    assert [(Path(b["file"]).name, b["line"]) for b in bad] == [("b.jsonl", 2), ("b.jsonl", 3)]
    with pytest.raises(FileNotFoundError):
        read_corpus(tmp_path / "missing")


def test_pairing_rule_and_unpaired_counts():
    pair = pair_for(["a", "b", "c", "d"], [False, True, True, False], [0.0, 1.0, 2.0, 1.0])
    assert (pair["chosen"], pair["rejected"], pair["n_correct"]) == ("c", "a", 2)
    assert pair_for(["a", "b"], [True, True], [1, 1]) == {"unpaired": ALL_CORRECT, "n_correct": 2}
    assert pair_for(["a", "b"], [False, False], [1, 0]) == {"unpaired": ALL_WRONG, "n_correct": 0}
    lines = [pair, {"unpaired": ALL_WRONG}, {"unpaired": ALL_WRONG}, {"unpaired": ALL_CORRECT}]
    assert pair_summary(lines) == {"questions": 4, "pairs": 1, "unpaired": 3, ALL_CORRECT: 1, ALL_WRONG: 2}
    with pytest.raises(ValueError):
        pair_for(["a"], [True, False], [1.0])


def test_algorithm_comes_from_the_flag_or_the_recipe():
    assert algorithm_of([]) == "grpo"
    assert algorithm_of(["--config", str(REPO / "configs/rloo/tiny_cpu.yaml")]) == "rloo"
    assert algorithm_of(["--config", str(REPO / "configs/grpo/tiny_cpu.yaml"), "--algorithm", "rloo"]) == "rloo"
    with pytest.raises(ValueError):
        algorithm_of(["--algorithm=ppo"])


def test_pair_file_errors_name_the_line(tmp_path):
    from medr1.train.dpo import split_pairs
    from medr1.train.rm import read_jsonl, read_rm_file

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"chosen": "a", "rejected": "b"}\n{"response": "a", "reference": "b", "correct": true}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_rm_file(bad)
    bad.write_text('{"conversations": [{"from": "gpt", "value": "hi"}], "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1.*human"):
        split_pairs(read_jsonl(bad))


@pytest.mark.parametrize("recipe", ["pt/tiny_cpu.yaml", "rm/tiny_cpu.yaml", "dpo/tiny_cpu.yaml",
                                    "dpo/medr1_qwen2vl_2b_lora.yaml", "rloo/tiny_cpu.yaml"])
def test_stage_recipes_parse(recipe):
    from transformers import TrainingArguments
    from trl import DPOConfig, RewardConfig, RLOOConfig

    from medr1.train.grpo import parse_args

    config_class = {"pt": TrainingArguments, "rm": RewardConfig, "dpo": DPOConfig, "rloo": RLOOConfig}[
        recipe.split("/")[0]]
    script_args, args, model_args = parse_args(["--config", str(REPO / "configs" / recipe), "--modality", "CT",
                                                "--use_cpu", "true", "--bf16", "false"], config_class, "test")
    assert "{target}" not in args.output_dir
    if recipe.startswith("dpo"):
        assert model_args.use_peft and script_args.train_file.endswith("{target}.jsonl")


# ---- stages -------------------------------------------------------------------------------------

def test_pt_packs_counts_bad_lines_and_resumes(compact_model, tmp_path, caplog):
    from medr1.train.pt import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("\n".join(f"The kidney filters the blood, case {i}." for i in range(40)))
    (corpus / "more.jsonl").write_text('{"text": "CT shows the liver."}\nnot json\n{"title": "no text"}\n')
    out = tmp_path / "pt"
    argv = ["--config", str(REPO / "configs/pt/tiny_cpu.yaml"), "--model_name_or_path", str(compact_model),
            "--train_file", str(corpus), "--output_dir", str(out), "--block_size", "32", "--save_steps", "1",
            "--per_device_train_batch_size", "2", *CPU]
    assert main([*argv, "--max_steps", "2"]) == 0
    report = json.loads((out / "pt_data.json").read_text())
    assert report["bad_lines"] == 2 and [b["line"] for b in report["bad"]] == [2, 3]
    assert report["documents"] == 41 and report["blocks"] >= 4
    assert trainer_state(out)["global_step"] == 2
    with caplog.at_level("INFO"):
        assert main([*argv, "--max_steps", "3", "--resume"]) == 0
    assert trainer_state(out)["global_step"] == 3
    assert (out / "checkpoint-3").is_dir() and (out / "model.safetensors").is_file()


def test_rm_on_pairs_and_medicalgpt_conversations(tiny_causal, tmp_path):
    from medr1.train.rm import main

    pairs = tmp_path / "pairs.jsonl"
    rows = [{"conversations": [{"from": "human", "value": "Which organ filters the blood?"}],
             "chosen": "The kidney filters blood.", "rejected": "The lung does."},
            {"prompt": "Which organ filters the blood?", "chosen": "The kidney.", "rejected": "The lung."}] * 4
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rm"
    assert main(["--config", str(REPO / "configs/rm/tiny_cpu.yaml"), "--model_name_or_path", str(tiny_causal),
                 "--train_file", str(pairs), "--output_dir", str(out), "--max_steps", "2", *CPU]) == 0
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out).num_labels == 1
    assert json.loads((out / "medr1_rm.json").read_text())["kind"] == "pairs"


def test_rm_on_triples_is_a_classifier_verifier(tiny_causal, tmp_path):
    from medr1.rewards.verifiers import ClassifierVerifier, Item
    from medr1.train.rm import main

    triples = tmp_path / "triples.jsonl"
    rows = [{"response": "The kidney filters blood.", "reference": "kidney", "correct": True},
            {"response": "The lung does.", "reference": "kidney", "correct": False},
            {"response": "A", "reference": "A", "options": ["kidney", "lung"], "correct": True},
            {"response": "B", "reference": "A", "options": ["kidney", "lung"], "correct": False}] * 2
    triples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verifier"
    assert main(["--config", str(REPO / "configs/rm/tiny_cpu.yaml"), "--model_name_or_path", str(tiny_causal),
                 "--train_file", str(triples), "--output_dir", str(out), "--max_steps", "3",
                 "--learning_rate", "1e-3", *CPU]) == 0
    verifier = ClassifierVerifier(str(out), threshold=0.5)
    scores = verifier.scores([Item("The kidney filters blood.", "kidney"), Item("The lung does.", "kidney")])
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert verifier._model.config.num_labels == 2


def test_dpo_on_medicalgpt_pairs_with_lora(tiny_causal, tmp_path):
    from medr1.train.dpo import main

    pairs = tmp_path / "medicalgpt.jsonl"
    row = {"conversations": [{"from": "human", "value": "Which organ filters the blood?"}],
           "chosen": "The kidney filters blood.", "rejected": "The lung does."}
    pairs.write_text(json.dumps(row) + "\n" * 1 + json.dumps(row) + "\n")
    out = tmp_path / "dpo-text"
    assert main(["--config", str(REPO / "configs/dpo/tiny_cpu.yaml"), "--model_name_or_path", str(tiny_causal),
                 "--train_file", str(pairs), "--output_dir", str(out), "--max_steps", "2",
                 "--lora_target_modules", "q_proj", "v_proj", *CPU]) == 0
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()


def test_pairs_count_unpaired_questions_and_resume(synthetic_data, compact_model, tmp_path, caplog):
    from medr1.evaluation.pairs import make_pairs

    _, data = synthetic_data
    out = tmp_path / "pairs.jsonl"
    kwargs = {"k": 2, "limit": 3, "image_size": 56, "max_new_tokens": 6, "batch_size": 3, "num_workers": 0}
    summary = make_pairs(compact_model, data, "modality/CT/train", out, **kwargs)
    assert summary["questions"] == 3 and summary["pairs"] + summary["unpaired"] == 3
    assert summary["unpaired"] == summary[ALL_CORRECT] + summary[ALL_WRONG]
    assert json.loads((tmp_path / "pairs.jsonl.report.json").read_text()) == summary
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and all("unpaired" in line or {"chosen", "rejected"} <= line.keys() for line in lines)
    with caplog.at_level("INFO"):
        assert make_pairs(compact_model, data, "modality/CT/train", out, **kwargs) == summary
    assert "3 of 3 questions already sampled" in caplog.text and len(out.read_text().splitlines()) == 3


def test_dpo_on_policy_image_pairs_then_merge(synthetic_data, compact_model, tmp_path):
    from medr1.data.records import load_split
    from medr1.train.dpo import main
    from medr1.train.merge import main as merge_main

    _, data = synthetic_data
    records = load_split(data, "modality/CT/train", 3)
    lines = [{"question_id": r["question_id"], "chosen": f"<think>look</think><answer> {r['answer']} </answer>",
              "rejected": "<answer> Z </answer>", "k": 4} for r in records[:2]]
    lines.append({"question_id": records[2]["question_id"], "unpaired": ALL_WRONG, "n_correct": 0, "k": 4})
    pairs = tmp_path / "CT.jsonl"
    pairs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "dpo-{target}"
    assert main(["--config", str(REPO / "configs/dpo/tiny_cpu.yaml"), "--model_name_or_path", str(compact_model),
                 "--data_dir", str(data), "--modality", "CT", "--train_file", str(tmp_path / "{target}.jsonl"),
                 "--output_dir", str(out), "--max_steps", "2", "--save_steps", "1", *CPU]) == 0
    adapter = tmp_path / "dpo-CT"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "checkpoint-2").is_dir()
    merged = tmp_path / "merged"
    assert merge_main(["--adapter", str(adapter), "--out", str(merged), "--base", str(compact_model)]) == 0
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()


def test_merge_lora_equals_base_plus_adapter(tiny_causal, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from medr1.train.merge import merge_adapter

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_causal)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")
    merged_dir = merge_adapter(tmp_path / "adapter", tmp_path / "merged", base=str(tiny_causal))
    ids = torch.tensor([[1, 5, 9, 14, 20]])
    with torch.no_grad():
        expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_causal),
                                             str(tmp_path / "adapter"))(input_ids=ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_causal)(input_ids=ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged_dir)(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-4)  # the adapter changed something, and the merge kept it
    assert (merged_dir / "tokenizer_config.json").is_file()


def test_rloo_trains_with_the_grpo_stage_and_resumes(synthetic_data, compact_model, tmp_path):
    from medr1.train.grpo import main

    _, data = synthetic_data
    out = tmp_path / "rloo"
    argv = ["--config", str(REPO / "configs/rloo/tiny_cpu.yaml"), "--data_dir", str(data), "--modality", "CT",
            "--model_name_or_path", str(compact_model), "--output_dir", str(out), "--log_completions", "false",
            "--max_completion_length", "8", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps",
            "1", "--save_steps", "1", *CPU]
    assert main([*argv, "--max_steps", "2"]) == 0
    state = trainer_state(out)
    assert state["global_step"] == 2
    assert any("frac_reward_zero_std" in entry for entry in state["log_history"])  # what the collapse guard reads
    assert json.loads((out / "medr1_run.json").read_text())["medr1"]["algorithm"] == "rloo"
    assert main([*argv, "--max_steps", "3"]) == 0  # resumes from checkpoint-2, as GRPO does
    assert trainer_state(out)["global_step"] == 3
