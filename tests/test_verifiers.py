"""Verifier rewards: the rule verifier's pure rules, a tiny sequence classifier with HuatuoGPT-o1's interface, and a
judge behind a real HTTP server on localhost speaking the chat-completions schema, called through the `openai`
client."""

import pickle
import re
import socket

import pytest
from chat_completions import ChatCompletionsServer

from medr1.rewards.verifiers import (
    ClassifierVerifier,
    Item,
    JudgeUnavailable,
    JudgeVerifier,
    RewardValues,
    VerifierReward,
    VerifierSettings,
    classifier_input,
    final_response,
    normalize_answer,
    parse_quantity,
    parse_verdict,
    reference_text,
    rule_verdict,
)
from medr1.train.configs import MedR1Arguments


def huatuo(answer: str) -> str:
    return f"## Thinking\n\nLet me think.\n\n## Final Response\n\n{answer}"


# ---- pure rules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("response, reference, expected", [
    ("Iron-deficiency anaemia", "iron deficiency anaemia", True),
    ("The answer is: **Iron-deficiency anaemia.**", "Iron deficiency anaemia", True),
    ("Answer: the spleen", "Spleen", True),
    ("anaemia", "iron deficiency anaemia", False),      # a part is not the answer
    ("not iron deficiency anaemia", "iron deficiency anaemia", False),
    ("5 mg", "5mg", True),
    ("0.005 g", "5 mg", True),                          # unit conversion
    ("5 milligrams", "5 mg", True),
    ("1,000 mg", "1 g", True),
    ("12%", "12 percent", True),
    ("120 mmHg", "120 mmhg", True),
    ("2 hours", "120 min", True),
    ("3 µg", "3 mcg", True),
    ("5", "5.0", True),
    ("5 mg", "5 g", False),
    ("5 mg", "5 ml", False),                            # another dimension
    ("5 ms", "5 m", False),                             # an unknown unit compares as written
    ("", "", False),
    (None, "x", False),
])
def test_rule_open_ended(response, reference, expected):
    assert rule_verdict(response, reference) is expected


@pytest.mark.parametrize("response, answer, expected", [
    ("B", "B", True),
    ("The answer is B.", "B", True),
    ("Metformin", "B", True),              # the gold option's text
    ("(C) Insulin glargine", "B", False),
    ("B", "Metformin", True),              # the reference given as the option's text
    ("A or B", "B", False),                # two letters
])
def test_rule_multiple_choice(response, answer, expected):
    options = ["Aspirin", "Metformin", "Insulin glargine", "Warfarin"]
    assert rule_verdict(response, answer, options) is expected


def test_pure_helpers():
    assert normalize_answer("The answer is: An MRI.") == "mri"
    assert parse_quantity("about five") is None and parse_quantity("10 mg/dL") == (pytest.approx(0.1), "concentration")
    assert reference_text("B", ["x", "y"]) == "B. y" and reference_text("red", []) == "red"
    assert final_response(huatuo(" red "), "huatuo") == "red"
    assert final_response("## Final Response\n\nred", "huatuo") is None
    assert final_response("<think>x</think><answer> red </answer>", "think") == "red"
    assert final_response("red", "think") is None
    assert classifier_input("r", "ref", "<eos>") == (
        "<Model Response>\nr\n</Model Response>\n\n<Reference Answer>\nref\n</Reference Answer>\n\nYour task is to "
        "evaluate the model response by comparing it to the reference answer. If the model response is correct and "
        'aligns with the reference answer, output "True" . If it is incorrect or fails to select the correct option '
        '(if options are provided), output "False" . <eos>')


@pytest.mark.parametrize("reply, verdict", [
    ("True", True), ("false", False), ("FALSE.", False), (" True\n", True), ("<think>it is false</think>True", True),
    ("The response is correct: True", True), ("Maybe", None), ("", None), (None, None), ("untrue", None),
])
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) is verdict


def test_settings_are_checked():
    assert RewardValues.parse("1, 0.1, 0") == RewardValues(1.0, 0.1, 0.0)
    for bad in ("1,0.1", "a,b,c", "1,nan,0"):
        with pytest.raises(ValueError, match="verifier_rewards"):
            RewardValues.parse(bad)
    with pytest.raises(ValueError, match="verifier must be"):
        VerifierSettings(backend="gpt")
    with pytest.raises(ValueError, match="verifier_model"):
        VerifierSettings(backend="classifier")
    with pytest.raises(ValueError, match="verifier_url"):
        VerifierSettings(backend="judge", model="m")
    with pytest.raises(ValueError, match="judge only"):
        VerifierSettings(backend="rule", fallback="rule")
    with pytest.raises(ValueError, match="threshold"):
        VerifierSettings(backend="classifier", model="m", threshold=1.5)
    args = MedR1Arguments(verifier="judge", verifier_model="m", verifier_url="http://x/v1", verifier_concurrency=3)
    assert VerifierSettings.from_args(args) == VerifierSettings(backend="judge", model="m", url="http://x/v1",
                                                                concurrency=3)


# ---- the reward function with the rule backend ----------------------------------------------------

def test_rule_reward_values_and_metrics():
    reward = VerifierReward(VerifierSettings(backend="rule"), style="huatuo")
    metrics = {}
    completions = [[{"role": "assistant", "content": huatuo("Red")}], huatuo("blue"), "no format", huatuo("B")]
    got = reward(completions, answer=["red", "red", "red", "B"], options=[[], [], [], ["x", "y"]],
                 log_metric=metrics.__setitem__)
    assert got == [1.0, 0.1, 0.0, 1.0]
    assert metrics == {"verifier/malformed": 0.25, "verifier/fallbacks": 0.0}
    assert reward.__name__ == "verifier_reward"
    custom = VerifierReward(VerifierSettings(backend="rule", rewards="2,-1,-2"), style="huatuo")
    assert custom([huatuo("red"), huatuo("x"), "x"], answer="red") == [2.0, -1.0, -2.0]
    with pytest.raises(ValueError, match="answer"):
        reward([huatuo("red")])


def test_grpo_wiring_replaces_the_accuracy_reward():
    from medr1.train.grpo import build_reward_funcs

    plain = build_reward_funcs(MedR1Arguments(prompt_style="huatuo"), 4)
    assert [f.__name__ for f in plain] == ["format_reward", "accuracy_reward"]
    funcs = build_reward_funcs(MedR1Arguments(prompt_style="huatuo", verifier="rule"), 4)
    assert [f.__name__ for f in funcs] == ["format_reward", "verifier_reward"]
    assert funcs[0]([huatuo("red")]) == [1.0] and funcs[1]([huatuo("red")], answer=["red"]) == [1.0]
    shuffled = build_reward_funcs(MedR1Arguments(prompt_style="huatuo", verifier="rule", reward_ablation="shuffle"), 2)
    assert [f.__name__ for f in shuffled] == ["format_reward", "verifier_reward"]
    assert sorted(shuffled[1]([huatuo("red"), huatuo("x")], answer=["red", "red"])) == [0.1, 1.0]
    with pytest.raises(ValueError, match="verifier_model"):
        build_reward_funcs(MedR1Arguments(verifier="classifier"), 4)


# ---- classifier -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    from medr1.embedded.tiny_model import compact_tokenizer

    corpus = [classifier_input("red blue green", "yellow 5 mg", "<|im_end|>")] * 20
    return compact_tokenizer(corpus, vocab_size=300)


def _bert_classifier(path, tokenizer, p_true: float):
    """A two-label BERT whose head ignores its input: logits (0, log(p/(1-p))), so p(True) = p exactly."""
    import math

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=256, num_labels=2,
                        pad_token_id=tokenizer.pad_token_id)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, math.log(p_true / (1 - p_true))]))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_classifier_threshold_and_reward_values(tmp_path, tokenizer):
    path = _bert_classifier(tmp_path / "bert", tokenizer, p_true=0.5)
    completions = [huatuo("red"), huatuo("blue"), "malformed", huatuo("green"), huatuo("5 mg")]
    for threshold, expected in ((0.4, 1.0), (0.6, 0.1)):
        settings = VerifierSettings(backend="classifier", model=path, threshold=threshold, batch_size=2)
        reward = VerifierReward(settings, style="huatuo")
        assert reward(completions, answer="red") == [expected, expected, 0.0, expected, expected]
        assert reward.backend.counts["batches"] == 2  # four scored completions, two per forward pass
    scores = ClassifierVerifier(path).scores([Item("red", "red"), Item("x" * 2000, "blue")])  # long input truncated
    assert scores == pytest.approx([0.5, 0.5], abs=1e-5)


def test_classifier_scores_do_not_depend_on_the_batch(tmp_path, tokenizer):
    """A random Qwen2 sequence classifier (its score read at the last real token): the same p(True) for an item
    alone and in a right-padded batch of different lengths; p = softmax(logits)[1]."""
    import torch
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=2,
                         pad_token_id=tokenizer.pad_token_id)
    Qwen2ForSequenceClassification(config).save_pretrained(tmp_path / "qwen")
    tokenizer.save_pretrained(tmp_path / "qwen")
    items = [Item("red", "red"), Item("blue blue blue green green", "red"), Item("5 mg", "5 mg"), Item("", "x")]
    verifier = ClassifierVerifier(str(tmp_path / "qwen"), batch_size=4)
    batched = verifier.scores(items)
    alone = [verifier.scores([item])[0] for item in items]
    assert batched == pytest.approx(alone, abs=1e-5)
    assert len(set(round(p, 6) for p in batched)) == len(items) and all(0 < p < 1 for p in batched)
    assert verifier.verify(items) == [p > 0.4 for p in batched]
    assert pickle.loads(pickle.dumps(verifier))._model is None  # picklable; the weights load again where used


# ---- judge: a real chat-completions server on localhost -------------------------------------------

_BLOCK = re.compile(r"<Model Response>\n(.*?)\n</Model Response>\n\n<Reference Answer>\n(.*?)\n</Reference Answer>",
                    re.DOTALL)


def JudgeServer(reply=None, **behaviour):  # noqa: N802 (reads as the server it makes)
    """A chat-completions server whose verdict is "True" when the response equals the reference (case-insensitive),
    else "False"; `reply` fixes the verdict text. `behaviour`: ChatCompletionsServer's delays, statuses, hold."""

    def verdict(messages):
        response, reference = _BLOCK.search(messages[-1]["content"]).groups()
        return reply or ("True" if response.lower() == reference.lower() else "False")

    return ChatCompletionsServer(verdict, **behaviour)


@pytest.fixture
def server_factory():
    servers = []

    def make(**kwargs):
        servers.append(JudgeServer(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(JudgeVerifier, "RETRY_BACKOFF", 0.01)


def judge_reward(url, **settings):
    return VerifierReward(VerifierSettings(backend="judge", model="judge-model", url=url, **settings), style="huatuo")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_judge_verdicts_and_cache(server_factory):
    server = server_factory()
    reward = judge_reward(server.url)
    completions = [huatuo("red"), huatuo("blue"), "malformed", huatuo("RED"), huatuo("red")]
    metrics = {}
    assert reward(completions, answer="red", log_metric=metrics.__setitem__) == [1.0, 0.1, 0.0, 1.0, 1.0]
    assert server.hits == 3  # red, blue, RED: the repeated "red" was asked once
    assert metrics["verifier/cache_hits"] == 1.0
    assert reward(completions, answer="red", log_metric=metrics.__setitem__) == [1.0, 0.1, 0.0, 1.0, 1.0]
    assert server.hits == 3 and metrics["verifier/cache_hits"] == 4.0  # repeats cost nothing
    reward([huatuo("red")], answer="blue")  # another reference is another judgement
    assert server.hits == 4
    copy = pickle.loads(pickle.dumps(reward))  # TRL's rollout worker pickles reward functions
    assert copy([huatuo("red")], answer="red") == [1.0] and server.hits == 5


def test_judge_concurrency_is_bounded(server_factory):
    server = server_factory(hold=0.3)
    reward = judge_reward(server.url, concurrency=2)
    assert reward([huatuo(str(i)) for i in range(6)], answer="3") == [0.1, 0.1, 0.1, 1.0, 0.1, 0.1]
    assert server.hits == 6 and server.peak == 2


def test_judge_timeout_is_retried(server_factory):
    server = server_factory(delays=[3.0])  # the first request outlives the timeout; the retry is answered
    reward = judge_reward(server.url, timeout=0.5, retries=1)
    assert reward([huatuo("red")], answer="red") == [1.0]
    assert server.hits == 2 and reward.backend.counts["retries"] == 1


def test_judge_server_errors_are_retried(server_factory):
    server = server_factory(statuses=[503, 500])
    reward = judge_reward(server.url, retries=2)
    assert reward([huatuo("red")], answer="red") == [1.0]
    assert server.hits == 3


def test_judge_that_never_answers_is_an_error(server_factory):
    server = server_factory(hold=2.0)
    reward = judge_reward(server.url, timeout=0.3, retries=1)
    with pytest.raises(JudgeUnavailable, match=r"judge-model.*127\.0\.0\.1.*2 attempt"):
        reward([huatuo("red")], answer="red")
    assert server.hits == 2


def test_unreachable_judge_is_a_clear_error():
    url = closed_port_url()
    reward = judge_reward(url, retries=1)
    with pytest.raises(JudgeUnavailable, match=re.escape(url)) as caught:
        reward([huatuo("red"), huatuo("blue")], answer="red")
    assert "APIConnectionError" in str(caught.value)


def test_unreachable_judge_falls_back_to_the_rule_and_counts_it():
    reward = judge_reward(closed_port_url(), retries=0, fallback="rule")
    metrics = {}
    got = reward([huatuo("Red."), huatuo("blue"), "malformed"], answer="red", log_metric=metrics.__setitem__)
    assert got == [1.0, 0.1, 0.0]
    assert metrics["verifier/fallbacks"] == 2.0 and reward.counts["fallbacks"] == 2
    reward([huatuo("red")], answer="red", log_metric=metrics.__setitem__)
    assert metrics["verifier/fallbacks"] == 1.0 and reward.counts["fallbacks"] == 3  # failures are not cached


def test_judge_reply_without_a_verdict_is_incorrect_and_counted(server_factory):
    server = server_factory(reply="I cannot tell.")
    reward = judge_reward(server.url)
    assert reward([huatuo("red")], answer="red") == [0.1]
    assert reward.backend.counts["unparsed"] == 1 and reward.counts["unparsed"] == 1


def test_judge_refusal_is_not_retried(server_factory):
    server = server_factory(statuses=[404])
    reward = judge_reward(server.url, retries=3, fallback="rule")
    with pytest.raises(RuntimeError, match="refused"):  # a wrong model name or key: fix the recipe
        reward([huatuo("red")], answer="red")
    assert server.hits == 1


def test_judge_api_key_from_the_environment(server_factory, monkeypatch):
    server = server_factory()
    monkeypatch.delenv("MEDR1_TEST_JUDGE_KEY", raising=False)
    with pytest.raises(ValueError, match="MEDR1_TEST_JUDGE_KEY"):
        judge_reward(server.url, api_key_env="MEDR1_TEST_JUDGE_KEY")([huatuo("red")], answer="red")
    monkeypatch.setenv("MEDR1_TEST_JUDGE_KEY", "secret")
    assert judge_reward(server.url, api_key_env="MEDR1_TEST_JUDGE_KEY")([huatuo("red")], answer="red") == [1.0]
