#!/usr/bin/env bash
# The paper's evaluation on real data, after training the 8 modality and 5 task checkpoints:
#   both cross-domain matrices, the zero-shot base-model rows, the no-think variant, the tables.
# Usage: eval/paper_tables.sh [DATA_DIR] [BASE_MODEL]
set -euo pipefail
DATA=${1:-data/omnimedvqa}
BASE=${2:-Qwen/Qwen2-VL-2B-Instruct}
ARGS=(--batch-size "${BATCH_SIZE:-64}" --image-size 384 --max-new-tokens 256 --engine "${ENGINE:-hf}")
medr1 matrix --axis modality --data "$DATA" --checkpoints outputs/grpo --base-model "$BASE" "${ARGS[@]}"
medr1 matrix --axis task --data "$DATA" --checkpoints outputs/grpo --base-model "$BASE" "${ARGS[@]}"
if [ -d outputs/grpo-nothink ]; then
  medr1 matrix --axis modality --data "$DATA" --checkpoints outputs/grpo-nothink --prompt nothink --name nothink "${ARGS[@]}"
  medr1 matrix --axis task --data "$DATA" --checkpoints outputs/grpo-nothink --prompt nothink --name nothink "${ARGS[@]}"
fi
medr1 tables --results results
