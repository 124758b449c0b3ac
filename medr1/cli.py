"""The `medr1` command: one subcommand per pipeline stage.

Each stage module owns its arguments and exposes `main(argv) -> int`; this file only dispatches,
importing a stage lazily so that `medr1 prepare` never pays for importing torch.
"""

import importlib
import logging
import sys

COMMANDS = {
    "synth": ("medr1.embedded.synth", "write a synthetic dataset in the raw OmniMedVQA layout"),
    "prepare": ("medr1.data.prepare", "raw OmniMedVQA -> canonical records, splits and a report"),
    "tiny-model": ("medr1.embedded.tiny_model", "build an offline tiny VLM, or text LM (--arch qwen2|qwen3)"),
    "train": ("medr1.train.grpo", "GRPO training on one modality or task"),
    "sft": ("medr1.train.sft", "supervised fine-tuning baseline"),
    "eval": ("medr1.evaluation.evaluate", "evaluate a checkpoint on one split"),
    "passrate": ("medr1.evaluation.passrate", "sample k completions per question and write pass rates"),
    "matrix": ("medr1.evaluation.matrix", "evaluate checkpoints across all modality or task splits"),
    "tables": ("medr1.evaluation.tables", "write the cross-domain tables and heatmaps"),
    "rescore": ("medr1.evaluation.scoring", "re-score an evaluated cell by every scoring convention, in place"),
    "benchmarks": ("medr1.evaluation.benchmarks", "evaluate on VQA-RAD, SLAKE, PathVQA, PMC-VQA, MMMU; one table"),
    "text-benchmarks": ("medr1.evaluation.text_benchmarks", "MedQA, MedMCQA, PubMedQA, MMLU(-Pro) medical; one table"),
    "synth-benchmarks": ("medr1.embedded.synth_benchmarks", "write synthetic fixtures in five benchmarks' layouts"),
    "synth-text": ("medr1.embedded.synth_text", "write synthetic files in seven text datasets' released formats"),
    "demo": ("medr1.embedded.demo", "the end-to-end learning demo on the embedded default"),
    "pt": ("medr1.train.pt", "continued pretraining on a folder of medical text (packed blocks)"),
    "rm": ("medr1.train.rm", "a reward model (chosen/rejected pairs) or a verifier classifier (triples)"),
    "dpo": ("medr1.train.dpo", "DPO with LoRA on MedicalGPT pairs or on-policy pairs"),
    "pairs": ("medr1.evaluation.pairs", "sample k completions per question and pair a correct with a wrong one"),
    "merge-lora": ("medr1.train.merge", "merge a LoRA adapter into its base model"),
    "traces": ("medr1.train.traces", "HuatuoGPT-o1 stage 1: verifier-guided reasoning traces -> an SFT set"),
    "compare": ("medr1.embedded.compare", "SFT vs DPO vs RLOO vs GRPO from one base on one split: one table"),
}


def usage() -> str:
    lines = ["usage: medr1 <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\n`medr1 <command> --help` shows a command's options.")
    return "\n".join(lines)


QUIET_LOGGERS = ("httpx", "httpcore", "openai")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"medr1: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for chatty in QUIET_LOGGERS:  # one INFO line per HTTP request to a judge endpoint drowns the run's log
        logging.getLogger(chatty).setLevel(logging.WARNING)
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
