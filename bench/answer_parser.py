"""Benchmark the answer parser on huge and adversarial completions (not a test).

Every parse mode and judge is documented as linear in the input length. For each adversarial shape this
times the parser at two sizes, ``--chars`` and 8x that, and prints the seconds (best of ``--repeats``)
and their ratio: about 8 is linear, about 64 quadratic. Exit status 1 when a ratio exceeds ``--max-ratio``.

    python bench/answer_parser.py [--chars 125000] [--repeats 3] [--max-ratio 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medr1.rewards.answers import MODES, answer_span, huatuo_choice, medevalkit_choice, parse_answer_letter

OPTIONS = ["Glioma", "Meningioma", "Pituitary tumor", "No tumor"]

# Each shape is a repeated unit (plus a tail); the size counts characters.
SHAPES = {
    "plain": ("x", ""),
    "spaces then a letter": (" ", "C"),
    "unclosed tags": ("<answer>", ""),
    "tag then spaces": (" ", "x"),  # prefixed with one <answer> below
    "unclosed tag + letter": ("<answer>C", ""),
    "answer is, no letter": ("answer is ", ""),
    "repeated statement": ("The answer is A, ", ""),
    "answer words then a letter": ("answer ", "C"),
    "bracketed letters": ("(A) ", ""),
    "closing tags": ("</think><answer>", ""),
    "one letter": ("A", ""),
    "non-ASCII lines": ("é中\n", ""),
}


def make_input(shape: str, chars: int) -> str:
    unit, tail = SHAPES[shape]
    head = "<answer>" if shape == "tag then spaces" else "<think>" if shape == "closing tags" else ""
    return head + unit * max(1, chars // len(unit)) + tail


def parse_everything(text: str) -> None:
    """What a reward or an evaluation cell may run on one completion: every mode and judge."""
    for mode in MODES:
        parse_answer_letter(text, OPTIONS, mode=mode)
        parse_answer_letter(text, None, mode=mode)
    answer_span(text)
    medevalkit_choice(text, OPTIONS)
    huatuo_choice(text, OPTIONS)


def best_seconds(text: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        parse_everything(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=125_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-ratio", type=float, default=20.0)
    args = parser.parse_args()
    small, large = args.chars, 8 * args.chars
    print(f"| shape | {small:,} chars (s) | {large:,} chars (s) | ratio (8 = linear) |")
    print("|---|---|---|---|")
    worst = 0.0
    for shape in SHAPES:
        t_small = best_seconds(make_input(shape, small), args.repeats)
        t_large = best_seconds(make_input(shape, large), args.repeats)
        ratio = t_large / max(t_small, 1e-6)
        worst = max(worst, ratio)
        print(f"| {shape} | {t_small:.4f} | {t_large:.4f} | {ratio:.1f} |")
    print(f"worst ratio {worst:.1f} (limit {args.max_ratio})")
    return 0 if worst <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
