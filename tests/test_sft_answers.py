"""The letters a format-only warm start trains on: never the gold ones, and (balanced) no letter tied to an answer."""

import collections
import random

import pytest

from medr1.train.sft import answer_letter_for, balanced_letters


def records(n, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.choice((2, 3, 4))
        out.append({"question_id": f"q{i}", "options": [f"o{j}" for j in range(k)], "answer": "ABCD"[rng.randrange(k)]})
    return out


def test_balanced_letters_give_every_gold_answer_each_letter_equally_often():
    recs = records(997)
    dealt = balanced_letters(recs, seed=3)
    assert set(dealt) == {r["question_id"] for r in recs}
    counts = collections.defaultdict(collections.Counter)
    for r in recs:
        letter = answer_letter_for(r, "balanced", 3, dealt=dealt)
        assert letter in "ABCD"[: len(r["options"])]
        counts[(r["answer"], len(r["options"]))][letter] += 1
    for (_, k), counter in counts.items():
        assert len(counter) == k and max(counter.values()) - min(counter.values()) <= 1
    # Seeded, and a different seed deals differently; the gold letter is not what is dealt.
    assert balanced_letters(recs, seed=3) == dealt != balanced_letters(recs, seed=4)
    assert sum(dealt[r["question_id"]] == r["answer"] for r in recs) < 0.45 * len(recs)


def test_random_letters_leave_an_imbalance_that_balanced_ones_do_not():
    """Why `balanced` exists: independent draws give some gold answer a favourite letter a model can learn."""
    recs = [{"question_id": f"q{i}", "options": ["a", "b", "c", "d"], "answer": "ABCD"[i % 4]} for i in range(800)]
    dealt = balanced_letters(recs, seed=1)

    def worst_share(letter_of):
        counts = collections.defaultdict(collections.Counter)
        for r in recs:
            counts[r["answer"]][letter_of(r)] += 1
        return max(max(c.values()) / sum(c.values()) for c in counts.values())

    assert worst_share(lambda r: answer_letter_for(r, "random", 1)) > 0.28
    assert worst_share(lambda r: dealt[r["question_id"]]) == 0.25


def test_unknown_and_open_ended():
    with pytest.raises(ValueError, match="sft_answers must be one of"):
        answer_letter_for({"question_id": "q", "options": ["a"], "answer": "A"}, "shuffled", 0)
    with pytest.raises(ValueError, match="record 'o' is open-ended .*sft_answers: balanced"):
        answer_letter_for({"question_id": "o", "options": [], "answer": "x"}, "balanced", 0, dealt={})
    assert "o" not in balanced_letters([{"question_id": "o", "options": [], "answer": "x"}], 0)
