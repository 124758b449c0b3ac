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
# LOCKED=1 (default): install the exact versions the project was tested with (constraints.txt, refreshed by
# `make lock`); LOCKED=0: the newest releases setup.py allows (upgrading an existing venv).
LOCKED ?= 1
CONSTRAINTS := constraints.txt
pip_pins = $(if $(filter 1,$(LOCKED)),-c $(CONSTRAINTS),--upgrade --upgrade-strategy eager)

target_args = $(if $(MODALITY),--modality "$(MODALITY)",)$(if $(TASK),--task "$(TASK)",)
data_arg = $(if $(DATA),--data_dir $(DATA),)
EVAL_DATA = $(or $(DATA),$(SYNTH_DATA))
# The embedded default (synthetic data + tiny model) is built only when a run uses it.
TINY_RECIPES := configs/grpo/tiny_cpu.yaml configs/sft/tiny_cpu.yaml
train_needs = $(if $(filter $(TINY_RECIPES),$(1)),setup,install)
eval_needs = $(if $(DATA),install,setup)

.PHONY: install lock setup demo train sft passrate eval eval-cross-modality eval-cross-task eval-zero-shot eval-benchmarks tables test \
        test-fast bench lint mutation clean

install: $(BIN)/medr1
$(BIN)/medr1: setup.py $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(pip_pins) $(TORCH_PIN)
	$(BIN)/pip install -q $(pip_pins) -e ".[dev]"
	touch $(BIN)/medr1

# Refresh constraints.txt from the venv (after `make install LOCKED=0` and a green `make test`), then commit it.
lock:
	test -x $(BIN)/pip || { echo "no $(VENV): run make install first"; exit 1; }
	{ echo "# Exact versions medr1 is tested with: pip install -c constraints.txt -e '.[dev]' (make install)."; \
	  echo "# Refreshed by make lock (pip freeze of .venv, medr1 itself excluded); do not edit by hand."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v -i -E '^(-e |medr1==)'; } > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
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

# LAUNCH also shares eval and matrix questions over processes, e.g. on 8 GPUs (or N CPU processes):
#   make eval-cross-modality LAUNCH=".venv/bin/torchrun --standalone --nproc_per_node 8 -m medr1.cli"
#   (or LAUNCH="accelerate launch --config_file configs/accelerate/ddp.yaml -m medr1.cli"); README: Data-parallel evaluation.
eval: $(eval_needs)
	$(LAUNCH) eval --model $(MODEL) --data $(EVAL_DATA) \
	  --split "$(if $(MODALITY),modality/$(MODALITY),task/$(TASK))/test" \
	  --out "results/cells/$(notdir $(MODEL))/$(if $(MODALITY),modality/$(MODALITY),task/$(TASK))" $(EVAL_ARGS)

eval-cross-modality: $(eval_needs)
	$(LAUNCH) matrix --axis modality --data $(EVAL_DATA) --base-model $(BASE_MODEL) $(if $(MODELS),--models $(MODELS),) $(EVAL_ARGS)

eval-cross-task: $(eval_needs)
	$(LAUNCH) matrix --axis task --data $(EVAL_DATA) --base-model $(BASE_MODEL) $(if $(MODELS),--models $(MODELS),) $(EVAL_ARGS)

eval-zero-shot: $(eval_needs)
	$(LAUNCH) matrix --axis modality --data $(EVAL_DATA) --base-model $(or $(MODEL),$(BASE_MODEL)) --zero-shot-only $(EVAL_ARGS)
	$(LAUNCH) matrix --axis task --data $(EVAL_DATA) --base-model $(or $(MODEL),$(BASE_MODEL)) --zero-shot-only $(EVAL_ARGS)

# Every benchmark of a DATA_DIR made by `medr1 prepare --benchmark NAME --input PATH ...` (VQA-RAD, SLAKE, PathVQA,
# PMC-VQA, MMMU medical): its test split (MMMU: validation) -> results/benchmarks.{md,csv} with 95 % CIs.
# Without DATA: synthetic fixtures in the five released layouts, written and prepared here, and the tiny model.
BENCH_DATA := data/synth-benchmarks
eval-benchmarks: $(eval_needs)
	$(if $(DATA),,test -f $(BENCH_DATA)/manifest.json || $(MEDR1) synth-benchmarks --out $(BENCH_DATA)-raw --prepare $(BENCH_DATA))
	$(MEDR1) benchmarks --model $(or $(MODEL),$(TINY_MODEL)) --data $(or $(DATA),$(BENCH_DATA)) --results results $(EVAL_ARGS)

# The text benchmarks of a DATA_DIR made by `medr1 prepare --dataset NAME --input PATH ...` (MedQA, MedMCQA, PubMedQA,
# MMLU medical, MMLU-Pro health/biology) -> results/text_benchmarks.{md,csv}: 95 % CIs, HuatuoGPT-o1's published numbers.
# Without DATA: synthetic files in the released formats, prepared here; without MODEL: a tiny Qwen2 causal LM.
# EVAL_ARGS: e.g. "--prompt think --max-new-tokens 1024".
.PHONY: eval-text
TEXT_DATA := data/synth-text
TINY_TEXT_MODEL := outputs/models/tiny-qwen2-text
eval-text: install
	$(if $(DATA),,test -f $(TEXT_DATA)/manifest.json || $(MEDR1) synth-text --out $(TEXT_DATA)-raw --prepare $(TEXT_DATA))
	$(if $(MODEL),,test -f $(TINY_TEXT_MODEL)/config.json || $(MEDR1) tiny-model --arch qwen2 --vocab compact \
	  --corpus $(or $(DATA),$(TEXT_DATA))/records.jsonl --out $(TINY_TEXT_MODEL))
	$(MEDR1) text-benchmarks --model $(or $(MODEL),$(TINY_TEXT_MODEL)) --data $(or $(DATA),$(TEXT_DATA)) --results results $(EVAL_ARGS)

# HuatuoGPT-o1's stage 1 (README "Verifier-guided reasoning traces"): traces of TRACES_SPLIT, verified, retried with a
# search strategy -> results/traces/<split>.jsonl (the huatuo-sft input; resumable) and its .report.json. Sampler:
# ENDPOINT (an OpenAI-compatible URL; MODEL the served name), else a local MODEL, else the tiny text model on the
# synthetic data. TRACES_ARGS, e.g. "--verifier judge --verifier-url URL --verifier-model NAME --limit 1000".
.PHONY: traces
TRACES_SPLIT ?= dataset/huatuo-verifiable/train
ENDPOINT ?=
TRACES_ARGS ?= $(if $(or $(MODEL),$(ENDPOINT)),,--max-new-tokens 64)
traces: install
	$(if $(DATA),,test -f $(TEXT_DATA)/manifest.json || $(MEDR1) synth-text --out $(TEXT_DATA)-raw --prepare $(TEXT_DATA))
	$(if $(or $(MODEL),$(ENDPOINT)),,test -f $(TINY_TEXT_MODEL)/config.json || $(MEDR1) tiny-model --arch qwen2 \
	  --vocab compact --corpus $(or $(DATA),$(TEXT_DATA))/records.jsonl --out $(TINY_TEXT_MODEL))
	$(MEDR1) traces --data $(or $(DATA),$(TEXT_DATA)) --split $(TRACES_SPLIT) \
	  $(if $(ENDPOINT),--endpoint $(ENDPOINT) --endpoint-model "$(MODEL)",--policy $(or $(MODEL),$(TINY_TEXT_MODEL))) \
	  --out results/traces/$(subst /,-,$(TRACES_SPLIT)).jsonl $(TRACES_ARGS)

# MedicalGPT's other stages on the same data (README "Other methods: PT, RM, DPO, RLOO"). TRAIN_FILE: the stage's
# input (pt: a folder of .txt / JSONL {text}; rm: JSONL pairs or triples; dpo: JSONL pairs); empty = the recipe's.
# RLOO is `make train RECIPE=configs/rloo/tiny_cpu.yaml` (or ARGS="--algorithm rloo" on an RLOO recipe).
.PHONY: pt rm dpo pairs merge-lora compare
PT_RECIPE ?= configs/pt/tiny_cpu.yaml
RM_RECIPE ?= configs/rm/tiny_cpu.yaml
DPO_RECIPE ?= configs/dpo/tiny_cpu.yaml
TRAIN_FILE ?=
ADAPTER ?=
OUT ?=
train_file_arg = $(if $(TRAIN_FILE),--train_file "$(TRAIN_FILE)",)
pt: $(call train_needs,$(PT_RECIPE))
	$(LAUNCH) pt --config $(PT_RECIPE) $(train_file_arg) $(if $(MODEL),--model_name_or_path $(MODEL),) --resume $(ARGS)

rm: install
	$(LAUNCH) rm --config $(RM_RECIPE) $(train_file_arg) $(if $(MODEL),--model_name_or_path $(MODEL),) $(ARGS)

# On-policy pairs of the base model on a training split (k samples per question) -> results/pairs/<model>/<domain>.jsonl,
# the default train_file of configs/dpo/tiny_cpu.yaml: `make pairs MODALITY=CT && make dpo MODALITY=CT`.
pairs: $(eval_needs)
	$(MEDR1) pairs --model $(or $(MODEL),$(BASE_MODEL)) --data $(EVAL_DATA) \
	  --split "$(if $(MODALITY),modality/$(MODALITY),task/$(TASK))/train" --k $(K) \
	  --out "results/pairs/$(notdir $(or $(MODEL),$(BASE_MODEL)))/$(if $(MODALITY),$(MODALITY),$(TASK)).jsonl" $(EVAL_ARGS)

dpo: $(call train_needs,$(DPO_RECIPE))
	$(LAUNCH) dpo --config $(DPO_RECIPE) $(data_arg) $(target_args) $(train_file_arg) $(ARGS)

merge-lora: install
	$(MEDR1) merge-lora --adapter $(ADAPTER) --out $(or $(OUT),$(ADAPTER)-merged)

# SFT, DPO (on-policy pairs), RLOO and GRPO from one base on one split, and the base zero-shot:
# results/compare_<domain>.{md,csv,png,json}. Without DATA: the demo's synthetic data, tiny model and format warm
# start (built under outputs/compare/<domain>), every method from that warm start, the recipes' steps; with DATA:
# from BASE_MODEL. COMPARE_ARGS sizes it, e.g. "--steps 50 --steps warm-start=120 --limit 200".
COMPARE_ARGS ?=
compare: install
	$(MEDR1) compare $(target_args) $(if $(DATA),--data $(DATA) --base-model $(BASE_MODEL),) $(COMPARE_ARGS)

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
	$(BIN)/python bench/answer_parser.py

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
