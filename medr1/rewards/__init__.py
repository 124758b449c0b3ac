"""Rewards: a completion -> an answer and a score.

`answers` is the one answer parser (the `robust` rules and the released `medr1-compat` rule);
`functions` holds TRL reward functions (format, accuracy) built on it. Imports `sources` and `data`.
"""
