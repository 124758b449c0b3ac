"""The project's own recipe fields; TRL's `GRPOConfig`/`SFTConfig` and `ModelConfig` hold the rest.

A recipe YAML mixes all of them at the top level; `TrlParser` routes each key to its dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MedR1Arguments:
    data_dir: str = field(default="data/synth", metadata={"help": "DATA_DIR written by `medr1 prepare`"})
    modality: str | None = field(default=None, metadata={"help": "train on this modality's train split"})
    task: str | None = field(default=None, metadata={"help": "train on this task's train split"})
    split: str | None = field(
        default=None, metadata={"help": "train on this split, named by its path under DATA_DIR/splits (e.g. "
                                        "dataset/medqa/train: the text datasets), instead of modality or task"})
    eval_split: str | None = field(
        default=None, metadata={"help": "with split: the held-out split of eval_every_steps (default: the sibling "
                                        "test split, e.g. dataset/medqa/test)"})
    prompt_style: str = field(default="think", metadata={"help": "think | nothink | think-after | huatuo"})
    answer_parsing: str = field(
        default="robust", metadata={"help": "robust | medr1-compat (the released reward's exact rule)"}
    )
    image_size: int = field(default=384, metadata={"help": "images are resized to this square side"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N questions"})
    max_prompt_length: int | None = field(
        default=None, metadata={"help": "GRPO/RLOO: the most tokens a prompt (text + image tokens) may have, checked "
                                        "before training (TRL 1.16 never cuts a prompt); default: the model's "
                                        "context less max_completion_length"})
    freeze_vision_tower: bool = field(default=False, metadata={"help": "train only the language model"})
    freeze_vision_encoder: bool = field(
        default=False,
        metadata={"help": "keep the vision encoder as loaded; train its projector and the language model"},
    )
    collapse_patience: int = field(
        default=5,
        metadata={"help": "logging steps with every group at zero reward variance before the collapse guard fires"},
    )
    collapse_action: str = field(default="warn", metadata={"help": "warn | stop (save a checkpoint and stop)"})
    reward_ablation: str = field(
        default="none",
        metadata={"help": "none | shuffle: shuffle rewards within each group (a control with no learning signal)"},
    )
    dynamic_sampling: bool = field(
        default=False,
        metadata={"help": "drop groups with zero reward variance and refill the batch with fresh questions (DAPO)"},
    )
    max_resample_rounds: int = field(
        default=3, metadata={"help": "dynamic sampling: extra generation rounds per batch at most"}
    )
    dropped_groups_keep_kl: bool = field(
        default=False,
        metadata={"help": "dynamic sampling with beta > 0: the uninformative groups that fill a batch still short "
                          "after the last round keep their KL term (their policy-gradient term is 0 anyway)"},
    )
    truncated_keep_kl: bool = field(
        default=False,
        metadata={"help": "dynamic sampling with mask_truncated_completions and beta > 0: a completion cut at "
                          "max_completion_length keeps its KL term (advantage 0) instead of leaving the loss whole"},
    )
    eval_every_steps: int = field(
        default=0, metadata={"help": "every N steps, greedy held-out accuracy on a fixed test slice (0: never)"}
    )
    eval_questions: int = field(default=100, metadata={"help": "size of that held-out slice (test split start)"})
    pass_rates: str | None = field(
        default=None, metadata={"help": "JSONL from `medr1 passrate`: train only on questions whose rate lies "
                                        "strictly between min_pass_rate and max_pass_rate"}
    )
    min_pass_rate: float = field(default=0.0, metadata={"help": "with pass_rates: keep rates > this"})
    max_pass_rate: float = field(default=1.0, metadata={"help": "with pass_rates: keep rates < this"})
    sft_answers: str = field(
        default="gold",
        metadata={"help": "SFT only: gold | random (format warm-start with random letters) | balanced (random "
                          "letters dealt equally to each gold answer)"}
    )
    sft_think: str = field(
        default="fixed",
        metadata={"help": "SFT only, think styles: fixed (one placeholder sentence) | column:NAME (each "
                          "record's NAME column, e.g. a reasoning trace)"},
    )
    # Verifier rewards (medr1/rewards/verifiers.py): the answer reward of free-text (open-ended) answers.
    verifier: str = field(
        default="none",
        metadata={"help": "none | rule | classifier | judge: replaces accuracy_reward by verifier_reward (open-ended "
                          "records are checked against the reference text, multiple choice against the gold option)"},
    )
    verifier_model: str | None = field(
        default=None, metadata={"help": "classifier: a two-label sequence-classification checkpoint (HuatuoGPT-o1's "
                                        "verifier interface); judge: the model name the endpoint serves"})
    verifier_url: str | None = field(
        default=None, metadata={"help": "judge: an OpenAI-compatible endpoint, e.g. http://localhost:8000/v1"})
    verifier_api_key_env: str | None = field(
        default=None, metadata={"help": "judge: the environment variable holding the API key (none: a local server)"})
    verifier_fallback: str = field(
        default="none", metadata={"help": "judge: none (an unreachable judge stops training) | rule (score those "
                                          "completions by the rule verifier, counted as verifier/fallbacks)"})
    verifier_rewards: str = field(
        default="1.0,0.1,0.0", metadata={"help": "rewards for correct,incorrect,malformed (no final response)"})
    verifier_threshold: float = field(
        default=0.4, metadata={"help": "classifier: p(True) above this is correct"})
    verifier_concurrency: int = field(default=8, metadata={"help": "judge: requests in flight at once"})
    verifier_timeout: float = field(default=60.0, metadata={"help": "judge: seconds per request"})
    verifier_retries: int = field(default=2, metadata={"help": "judge: more attempts after a failed request"})
    verifier_max_tokens: int = field(default=16, metadata={"help": "judge: tokens the verdict may take"})
    verifier_device: str | None = field(
        default=None, metadata={"help": "classifier: its device, e.g. cuda:1 (default: this process's GPU, or CPU)"})
    verifier_batch_size: int = field(default=16, metadata={"help": "classifier: completions per forward pass"})

    # The other stages (medr1/train/{pt,rm,dpo,rloo}.py): MedicalGPT's PT, RM and DPO, and RLOO.
    algorithm: str = field(default="grpo", metadata={"help": "medr1 train: grpo | rloo (TRL's RLOOTrainer, same "
                                                             "rewards, data, outputs, resume and collapse guard)"})
    train_file: str | None = field(
        default=None, metadata={"help": "pt: a folder of .txt / JSONL {text} files; rm: JSONL (chosen, rejected) pairs "
                                        "or (response, reference, correct) triples; dpo: JSONL pairs (MedicalGPT's "
                                        "conversations/chosen/rejected, or `medr1 pairs` output with data_dir)"})
    block_size: int = field(default=512, metadata={"help": "pt: tokens per packed block"})
    resume: bool = field(default=False, metadata={"help": "pt, rm, dpo: resume from the last checkpoint in output_dir"})

    def target(self) -> str:
        """The folder name of the training domain: the modality or task, or the split with `-` for `/`
        (`dataset-medqa-train`)."""
        return self.modality or self.task or (self.split.replace("/", "-") if self.split else "all")
