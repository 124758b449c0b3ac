"""`medr1 traces`: verifier-guided reasoning traces, sampled from a real chat-completions server on localhost (called
through the `openai` client) that answers wrong first and right after a strategy prompt, and from the tiny local
causal LM."""

import json
import random
import re
import shutil
import socket

import pytest
from chat_completions import ChatCompletionsServer

from medr1.cli import main as cli
from medr1.rewards.answers import huatuo_is_well_formed
from medr1.train.traces import (
    STRATEGIES,
    chain_of_thought,
    choose_strategy,
    side_paths,
    split_trace,
)

HUATUO_SPLIT = "dataset/huatuo-verifiable/train"
MEDQA_SPLIT = "dataset/medqa/train"
OUTCOMES = ("verified", "unverified", "malformed")


# ---- pure rules -----------------------------------------------------------------------------------

def test_strategy_choice():
    rng = random.Random(0)
    first = {choose_strategy(rng, 1) for _ in range(200)}
    later = {choose_strategy(rng, 2) for _ in range(200)}
    assert first == set(STRATEGIES) - {"backtracking"}  # never backtracking at the first retry
    assert later == set(STRATEGIES)
    assert [choose_strategy(random.Random(7), 3) for _ in range(3)] == [choose_strategy(random.Random(7), 3)] * 3


@pytest.mark.parametrize("text, parts", [
    ("## Thinking\n\nx y\n\n## Final Response\n\n red ", ("x y", "red")),
    ("<think>hm</think>## Thinking\n\nx\n\n## Final Response\n\nred", ("x", "red")),
    ("## Thinking\n\n\n\n## Final Response\n\nred", None),            # blank thinking
    ("## Thinking\n\nx\n\n## Final Response\n\n  ", None),            # blank answer
    ("## Final Response\n\nred\n\n## Thinking\n\nx", None),           # out of order
    ("## Thinking\n\nx\n\n## Final Response\n\na\n\n## Final Response\n\nb", None),
    ("red", None), (None, None),
])
def test_split_trace(text, parts):
    assert split_trace(text) == parts


def test_chain_of_thought_and_side_files(tmp_path):
    rounds = [{"thinking": "t0", "final": "f0"}, {"thinking": "t1", "final": "f1"}]
    assert chain_of_thought(rounds) == "t0\n\nf0\n\nt1"
    assert chain_of_thought(rounds[:1]) == "t0"
    assert side_paths(tmp_path / "t.jsonl") == (tmp_path / "t.failed.jsonl", tmp_path / "t.report.json")


# ---- a policy behind a chat-completions server on localhost (tests/chat_completions.py) ----------------

def strategy_turns(messages) -> int | None:
    """How many strategy prompts the conversation holds; None when a later user turn names no strategy."""
    later = [m["content"] for m in messages[1:] if m["role"] == "user"]
    if not all(any(wording in text for wording in STRATEGIES.values()) for text in later):
        return None
    return len(later)


FINDING = re.compile(r"finding (\d+)\.")


def kind_of(i: int) -> int:
    """What the server does with question i: right after `kind` strategy prompts (0-2), never right (3), never in
    the format (4)."""
    return i % 5


def verifiable_policy(messages) -> str:
    i = int(FINDING.search(messages[0]["content"]).group(1))
    turns = strategy_turns(messages)
    if kind_of(i) == 4 or turns is None:
        return f"I think it is Diagnosis {i}."
    answer = f"Diagnosis {i}" if kind_of(i) < 3 and turns >= kind_of(i) else f"Diagnosis {i + 100}"
    return f"## Thinking\n\nRound {turns} on finding {i}.\n\n## Final Response\n\n{answer}"


@pytest.fixture(scope="module")
def text_data(tmp_path_factory):
    """A DATA_DIR with the synthetic HuatuoGPT-o1 verifiable problems and MedQA, prepared."""
    from medr1.data.text_sources import prepare_text
    from medr1.embedded.synth_text import write_text_fixtures

    base = tmp_path_factory.mktemp("text")
    folders = write_text_fixtures(base / "raw", per_split=8, fmt="json")
    prepare_text([("huatuo-verifiable", folders["huatuo-verifiable"]), ("medqa", folders["medqa"])], base / "data")
    return base / "data"


def split_records(data, split):
    return [json.loads(line) for line in (data / "splits" / f"{split}.jsonl").read_text().splitlines()]


def expected_counts(records, max_rounds, attempts):
    """What the search must find with `verifiable_policy`: per question, its outcome, round and sample count."""
    out = {}
    for record in records:
        kind = kind_of(int(FINDING.search(record["question"]).group(1)))
        if kind < 3 and kind <= max_rounds:
            out[record["question_id"]] = ("verified", kind, kind + 1)
        elif kind == 4:
            out[record["question_id"]] = ("malformed", None, attempts)
        else:
            out[record["question_id"]] = ("unverified", None, attempts * (max_rounds + 1))
    return out


@pytest.fixture
def chat_server():
    servers = []

    def make(respond):
        servers.append(ChatCompletionsServer(respond))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def run_traces(data, out, url, *extra, split=HUATUO_SPLIT, max_rounds=2, attempts=2):
    return cli(["traces", "--data", str(data), "--split", split, "--out", str(out), "--endpoint", url,
                "--endpoint-model", "policy", "--max-rounds", str(max_rounds), "--attempts", str(attempts),
                "--batch-size", "4", *extra])


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def per_question_hits(server) -> dict:
    hits = {}
    for body in server.requests:
        i = int(FINDING.search(body["messages"][0]["content"]).group(1))
        hits[i] = hits.get(i, 0) + 1
    return hits


def test_rounds_format_and_sft_input(tmp_path, text_data, chat_server):
    from medr1.data.records import prompt_dataset
    from medr1.data.text_sources import prepare_text
    from medr1.train.configs import MedR1Arguments
    from medr1.train.sft import answer_letter_for, reasoning_for, target_text

    server = chat_server(verifiable_policy)
    records = split_records(text_data, HUATUO_SPLIT)
    expected = expected_counts(records, max_rounds=2, attempts=2)
    assert {kind_of(int(FINDING.search(r["question"]).group(1))) for r in records} == {0, 1, 2, 3, 4}
    out = tmp_path / "traces" / "medical_o1_sft.jsonl"
    assert run_traces(text_data, out, server.url) == 0
    failed, report_path = side_paths(out)
    report = json.loads(report_path.read_text())
    outcomes = [v[0] for v in expected.values()]
    assert report["questions"] == report["questions_done"] == len(records)
    assert report["verified_at_round"] == {str(r): sum(v[:2] == ("verified", r) for v in expected.values())
                                           for r in range(3)}
    assert (report["verified"], report["unverified"], report["malformed"]) == tuple(map(outcomes.count, OUTCOMES))
    assert report["samples"] == sum(v[2] for v in expected.values()) == len(server.requests)
    assert report["malformed_samples"] == 2 * outcomes.count("malformed")
    assert report["records_skipped"] == 0

    rows, failures = read_jsonl(out), read_jsonl(failed)
    assert sorted(r["question_id"] for r in rows) == sorted(q for q, v in expected.items() if v[0] == "verified")
    assert {f["question_id"]: f["outcome"] for f in failures} == {q: v[0] for q, v in expected.items()
                                                                 if v[0] != "verified"}
    by_id = {r["question_id"]: r for r in records}
    for row in rows:
        i = int(FINDING.search(row["Question"]).group(1))
        assert row["Question"] == by_id[row["question_id"]]["question"]  # open-ended: the bare question
        assert row["Response"] == row["reference"] == f"Diagnosis {i}"
        assert (row["round"], row["samples"]) == expected[row["question_id"]][1:]
        assert len(row["strategies"]) == row["round"] and set(row["strategies"]) <= set(STRATEGIES)
        assert row["strategies"][:1] != ["backtracking"]
        wrong = [f"Round {k} on finding {i}.\n\nDiagnosis {i + 100}" for k in range(row["round"])]
        assert row["Complex_CoT"] == "\n\n".join([*wrong, f"Round {row['round']} on finding {i}."])
    for body in server.requests:  # the first retry of every conversation is never backtracking
        retries = [m["content"] for m in body["messages"][1:] if m["role"] == "user"]
        assert not retries or STRATEGIES["backtracking"] not in retries[0]

    # The output is the huatuo-sft input: prepared without a skip (all of it in train with --test-fraction 0), and
    # the SFT stage's rows are the bare question -> the trace in the huatuo form.
    prepared = prepare_text([("huatuo-sft", out)], tmp_path / "sft-data", test_fraction=0.0)
    assert prepared["records_written"] == len(rows) and prepared["records_skipped"] == 0
    think = reasoning_for(MedR1Arguments(sft_think="column:reasoning"))
    dataset = prompt_dataset(tmp_path / "sft-data", "dataset/huatuo-sft/train", style="huatuo", stage="train",
                             completion=lambda r: target_text(answer_letter_for(r, "gold", 0), "huatuo", think(r)))
    assert len(dataset) == len(rows)
    by_question = {row["Question"]: row for row in rows}
    for example in dataset:
        row = by_question[example["prompt"][0]["content"]]
        target = example["completion"][0]["content"]
        assert huatuo_is_well_formed(target)
        assert target == f"## Thinking\n\n{row['Complex_CoT']}\n\n## Final Response\n\n{row['Response']}"


def test_resume_skips_questions_already_written(tmp_path, text_data, chat_server):
    server = chat_server(verifiable_policy)
    records = split_records(text_data, HUATUO_SPLIT)
    expected = expected_counts(records, max_rounds=2, attempts=2)
    out = tmp_path / "t.jsonl"
    assert run_traces(text_data, out, server.url, "--limit", "5") == 0
    first = json.loads(side_paths(out)[1].read_text())
    assert first["questions_done"] == 5 and len(server.requests) == sum(v[2] for v in list(expected.values())[:5])
    assert run_traces(text_data, out, server.url) == 0
    report = json.loads(side_paths(out)[1].read_text())
    assert report["resumed"] == 5 and report["questions_done"] == len(records)
    hits = per_question_hits(server)  # every question asked exactly as often as one uninterrupted run asks it
    assert hits == {int(FINDING.search(r["question"]).group(1)): expected[r["question_id"]][2] for r in records}
    lines = len(read_jsonl(out)) + len(read_jsonl(side_paths(out)[0]))
    asked = len(server.requests)
    assert run_traces(text_data, out, server.url) == 0  # all done: nothing is asked or written again
    assert len(server.requests) == asked and len(read_jsonl(out)) + len(read_jsonl(side_paths(out)[0])) == lines
    again = json.loads(side_paths(out)[1].read_text())
    keys = ("verified_at_round", "verified", "unverified", "malformed", "samples")
    assert {k: again[k] for k in keys} == {k: report[k] for k in keys} and again["resumed"] == len(records)


def test_judge_verifier_backend(tmp_path, text_data, chat_server):
    from test_verifiers import JudgeServer

    judge = JudgeServer()
    try:
        server = chat_server(verifiable_policy)
        out = tmp_path / "judged.jsonl"
        assert run_traces(text_data, out, server.url, "--verifier", "judge", "--verifier-url", judge.url,
                          "--verifier-model", "judge-model", max_rounds=1, attempts=1) == 0
        records = split_records(text_data, HUATUO_SPLIT)
        expected = expected_counts(records, max_rounds=1, attempts=1)
        report = json.loads(side_paths(out)[1].read_text())
        assert report["verified_at_round"] == {str(r): sum(v[:2] == ("verified", r) for v in expected.values())
                                               for r in range(2)}
        well_formed = report["samples"] - report["malformed_samples"]
        backend = report["this_run"]["verifier_backend"]
        # Every well-formed final response was judged: asked once, a repeat (a question answered wrong the same way
        # twice) from the judge's cache.
        assert judge.hits == backend["requests"] > 0 and backend["cache_hits"] > 0
        assert judge.hits + backend["cache_hits"] == well_formed
    finally:
        judge.close()


def test_multiple_choice_records(tmp_path, text_data, chat_server):
    records = split_records(text_data, MEDQA_SPLIT)[:4]
    gold = {r["question"]: r["answer"] for r in records}

    def policy(messages):
        letter = gold.get(messages[0]["content"].split("\n")[0], "A")
        if not strategy_turns(messages):
            letter = "ABCDE"[("ABCDE".index(letter) + 1) % 4]
        return f"## Thinking\n\nI compare the options.\n\n## Final Response\n\nThe answer is {letter}."

    server = chat_server(policy)
    out = tmp_path / "mc.jsonl"
    assert run_traces(text_data, out, server.url, "--limit", "4", split=MEDQA_SPLIT) == 0
    report = json.loads(side_paths(out)[1].read_text())
    assert report["verified_at_round"] == {"0": 0, "1": 4, "2": 0}
    for row, record in zip(sorted(read_jsonl(out), key=lambda r: r["question_id"]),
                           sorted(records, key=lambda r: r["question_id"]), strict=True):
        letters = "ABCDEFGHIJ"[:len(record["options"])]
        assert row["Question"] == "\n".join([record["question"], *(f"{x}. {o}" for x, o in
                                                                   zip(letters, record["options"]))])
        assert row["reference"] == f"{record['answer']}. {record['options'][letters.index(record['answer'])]}"
        assert row["Response"] == f"The answer is {record['answer']}."


def test_bad_records_are_named_skips(tmp_path, text_data, chat_server):
    data = tmp_path / "data"
    shutil.copytree(text_data, data)
    split = data / "splits" / f"{HUATUO_SPLIT}.jsonl"
    good = split.read_text().splitlines()[:2]
    split.write_text("\n".join([good[0], '{"question_id": "x", "question": "Q?", "options": []}', "{torn",
                                good[1]]) + "\n")
    server = chat_server(verifiable_policy)
    out = tmp_path / "t.jsonl"
    assert run_traces(data, out, server.url) == 0
    report = json.loads(side_paths(out)[1].read_text())
    assert report["questions"] == 2 and report["records_skipped"] == 2
    assert [(s["question_id"], s["index"], s["reason"].split(":")[0]) for s in report["skipped"]] == [
        ("x", 1, "missing field"), (None, 2, "unreadable JSON line")]
    assert all(s["file"] == str(split) for s in report["skipped"])


def test_unreachable_endpoint_is_a_clear_error(tmp_path, text_data, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    out = tmp_path / "t.jsonl"
    with caplog.at_level("ERROR"):
        assert run_traces(text_data, out, url, "--retries", "0", "--limit", "2") == 1
    assert url in caplog.text and "did not answer" in caplog.text
    assert read_jsonl(out) == [] and read_jsonl(side_paths(out)[0]) == []  # nothing counted as a failure


def test_missing_split_and_bad_flags(tmp_path, text_data, caplog):
    with caplog.at_level("ERROR"):
        assert run_traces(text_data, tmp_path / "t.jsonl", "http://127.0.0.1:9/v1", split="dataset/nope/train") == 1
    assert "dataset/nope/train" in caplog.text
    with pytest.raises(SystemExit):
        cli(["traces", "--data", str(text_data), "--split", HUATUO_SPLIT, "--out", str(tmp_path / "t.jsonl"),
             "--endpoint", "http://127.0.0.1:9/v1"])  # no --endpoint-model
    with pytest.raises(SystemExit):
        cli(["traces", "--data", str(text_data), "--split", HUATUO_SPLIT, "--out", str(tmp_path / "t.jsonl"),
             "--policy", "m", "--verifier", "judge", "--verifier-model", "j"])  # a judge needs its URL


# ---- the tiny local causal LM ----------------------------------------------------------------------

def test_tiny_local_policy_runs_and_counts_add_up(tmp_path, text_data):
    from medr1.embedded.tiny_causal import build_tiny_causal, text_corpus

    records = split_records(text_data, HUATUO_SPLIT)
    model = build_tiny_causal(tmp_path / "tiny", arch="qwen2", vocab="compact", corpus=text_corpus(records) * 2)
    out = tmp_path / "local.jsonl"
    assert cli(["traces", "--data", str(text_data), "--split", HUATUO_SPLIT, "--out", str(out), "--policy", str(model),
                "--max-rounds", "1", "--attempts", "1", "--limit", "4", "--max-new-tokens", "12",
                "--batch-size", "2", "--seed", "3"]) == 0
    report = json.loads(side_paths(out)[1].read_text())
    assert report["questions"] == report["questions_done"] == 4
    assert report["verified"] + report["unverified"] + report["malformed"] == 4
    assert sum(report["verified_at_round"].values()) == report["verified"]
    rows, failures = read_jsonl(out), read_jsonl(side_paths(out)[0])
    assert len(rows) == report["verified"] and len(failures) == report["unverified"] + report["malformed"]
    assert report["samples"] == sum(r["samples"] for r in rows + failures) == report["this_run"]["sampler"]["requests"]
    assert 4 <= report["samples"] <= 8
