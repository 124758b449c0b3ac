"""HuatuoGPT-o1 (Chen et al., 2024): its verifiable problems and its SFT set -> canonical text records.

* `huatuo-verifiable`: `medical_o1_verifiable_problem.json`, a JSON list of {"Open-ended Verifiable
  Question", "Ground-True Answer"} -> open-ended records (options [], answer the reference text), for a
  verifier reward;
* `huatuo-sft`: `medical_o1_sft.json`, a JSON list of {"Question", "Complex_CoT", "Response"} -> open-ended
  records with `answer` and `response` the response and `reasoning` the chain of thought.

`--input` is the file, or its folder (the released name is read when present; the hub's other files,
e.g. `medical_o1_sft_Chinese.json`, are then listed as ignored; JSONL and parquet rows work too). Neither
set has splits or ids: a record's id is `huatuo-verifiable-<n>` / `huatuo-sft-<n>` (n the row's position)
and `medr1 prepare` makes seeded splits. `task` is "open-ended".
"""

from __future__ import annotations

from pathlib import Path

from medr1.sources.medqa import Row, read_rows, text_record
from medr1.sources.vqarad import text_field

VERIFIABLE_NAME = "medical_o1_verifiable_problem.json"
SFT_NAME = "medical_o1_sft.json"
DATASET = "HuatuoGPT-o1"
TASK = "open-ended"


def verifiable_record(raw: dict, row: Row) -> dict:
    row.question_id = f"huatuo-verifiable-{row.number:05d}"
    question = text_field(raw, "Open-ended Verifiable Question")
    answer = text_field(raw, "Ground-True Answer")
    return text_record(row.question_id, DATASET, TASK, question, {"options": [], "answer": answer})


def sft_record(raw: dict, row: Row) -> dict:
    row.question_id = f"huatuo-sft-{row.number:05d}"
    question = text_field(raw, "Question")
    reasoning = text_field(raw, "Complex_CoT")
    response = text_field(raw, "Response")
    return text_record(row.question_id, DATASET, TASK, question, {"options": [], "answer": response},
                       reasoning=reasoning, response=response)


def read_verifiable(root: str | Path) -> dict:
    """The verifiable problems (see vqarad.new_result); a bad one is a named skip."""
    return read_rows(root, verifiable_record, preferred=(VERIFIABLE_NAME,), file_splits=False)


def read_sft(root: str | Path) -> dict:
    """The SFT examples (see vqarad.new_result); a bad one is a named skip."""
    return read_rows(root, sft_record, preferred=(SFT_NAME,), file_splits=False)
