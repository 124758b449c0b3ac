"""medr1: reinforcement learning for medical reasoning in vision-language models."""

__version__ = "0.2.0"
