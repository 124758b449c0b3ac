# The user's verbs. Everything runs inside .venv (made by `make install`).
# Embedded default: tiny offline Qwen2-VL + synthetic OmniMedVQA, on a CPU.
# Real runs: make train MODALITY=CT RECIPE=configs/grpo/medr1_qwen2vl_2b.yaml DATA=data/omnimedvqa

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MEDR1 := $(BIN)/medr1

# DATA: a DATA_DIR written by `medr1 prepare`; empty = the recipe's data_dir (training) or the
# embedded synthetic data (evaluation).
DATA ?=
SYNTH_DATA := data/synth
SYNTH_RAW := data/synth-omnimedvqa
TINY_MODEL ?= outputs/models/tiny-qwen2vl
RECIPE ?= configs/grpo/tiny_cpu.yaml
SFT_RECIPE ?= configs/sft/tiny_cpu.yaml
MODALITY ?=
TASK ?=
MODEL ?=
MODELS ?=
BASE_MODEL ?= $(TINY_MODEL)
LAUNCH ?= $(MEDR1)
# On the embedded default, evaluate at the tiny recipe's image size with short generations.
EVAL_ARGS ?= $(if $(DATA),,--image-size 56 --max-new-tokens 32)
# torch/torchvision pins that this machine (and CI) hold on local disk; override on other machines.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

target_args = $(if $(MODALITY),--modality "$(MODALITY)",)$(if $(TASK),--task "$(TASK)",)
data_arg = $(if $(DATA),--data_dir $(DATA),)
EVAL_DATA = $(or $(DATA),$(SYNTH_DATA))
# The embedded default (synthetic data + tiny model) is built only when a run uses it.
TINY_RECIPES := configs/grpo/tiny_cpu.yaml configs/sft/tiny_cpu.yaml
train_needs = $(if $(filter $(TINY_RECIPES),$(1)),setup,install)
eval_needs = $(if $(DATA),install,setup)

.PHONY: install setup demo train sft passrate eval eval-cross-modality eval-cross-task eval-zero-shot tables test \
        test-fast bench lint mutation clean

install: $(BIN)/medr1
$(BIN)/medr1: setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/medr1

# Synthetic data in the raw OmniMedVQA layout -> canonical records and splits; the tiny model.
setup: install $(SYNTH_DATA)/manifest.json $(TINY_MODEL)/config.json
$(SYNTH_DATA)/manifest.json:
	$(MEDR1) synth --out $(SYNTH_RAW)
	$(MEDR1) prepare --omnimedvqa $(SYNTH_RAW) --out $(SYNTH_DATA)
$(TINY_MODEL)/config.json:
	$(MEDR1) tiny-model --out $(TINY_MODEL)

demo: install
	$(MEDR1) demo

# ARGS: extra `--recipe_key value` overrides, e.g. ARGS="--dynamic_sampling true".
ARGS ?=
train: $(call train_needs,$(RECIPE))
	$(LAUNCH) train --config $(RECIPE) $(data_arg) $(target_args) $(ARGS)

sft: $(call train_needs,$(SFT_RECIPE))
	$(LAUNCH) sft --config $(SFT_RECIPE) $(data_arg) $(target_args)

# Pass rates of the base model on a training split (k samples per question): feed them to training with
# `make train ... ARGS="--pass_rates results/passrate/<domain>.jsonl --min_pass_rate 0 --max_pass_rate 1"`.
K ?= 8
passrate: $(eval_needs)
	$(MEDR1) passrate --model $(or $(MODEL),$(BASE_MODEL)) --data $(EVAL_DATA) \
	  --split "$(if $(MODALITY),modality/$(MODALITY),task/$(TASK))/train" --k $(K) \
	  --out "results/passrate/$(notdir $(or $(MODEL),$(BASE_MODEL)))/$(if $(MODALITY),$(MODALITY),$(TASK)).jsonl" $(EVAL_ARGS)

eval: $(eval_needs)
	$(MEDR1) eval --model $(MODEL) --data $(EVAL_DATA) \
	  --split "$(if $(MODALITY),modality/$(MODALITY),task/$(TASK))/test" \
	  --out "results/cells/$(notdir $(MODEL))/$(if $(MODALITY),modality/$(MODALITY),task/$(TASK))" $(EVAL_ARGS)

eval-cross-modality: $(eval_needs)
	$(MEDR1) matrix --axis modality --data $(EVAL_DATA) --base-model $(BASE_MODEL) $(if $(MODELS),--models $(MODELS),) $(EVAL_ARGS)

eval-cross-task: $(eval_needs)
	$(MEDR1) matrix --axis task --data $(EVAL_DATA) --base-model $(BASE_MODEL) $(if $(MODELS),--models $(MODELS),) $(EVAL_ARGS)

eval-zero-shot: $(eval_needs)
	$(MEDR1) matrix --axis modality --data $(EVAL_DATA) --base-model $(or $(MODEL),$(BASE_MODEL)) --zero-shot-only $(EVAL_ARGS)
	$(MEDR1) matrix --axis task --data $(EVAL_DATA) --base-model $(or $(MODEL),$(BASE_MODEL)) --zero-shot-only $(EVAL_ARGS)

tables: install
	$(MEDR1) tables --results results

test: install
	$(BIN)/python -m pytest -q tests

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests

bench: install
	$(BIN)/python bench/prepare.py
	$(BIN)/python bench/train_step.py
	$(BIN)/python bench/eval_throughput.py

lint: install
	$(BIN)/ruff check medr1 tests bench eval data_prep

# Mutation testing of the pure rules (answers, splits, rewards, group advantages, scoring); not part of
# `test` or CI. Configured in setup.cfg [mutmut]; a fresh run each time (minutes). MUTATION_JOBS: workers.
MUTATION_JOBS ?=
mutation: install
	rm -rf mutants
	$(BIN)/mutmut run $(if $(MUTATION_JOBS),--max-children $(MUTATION_JOBS),)
	$(BIN)/python bench/mutation_report.py

clean:
	rm -rf outputs results $(SYNTH_DATA) $(SYNTH_RAW)
