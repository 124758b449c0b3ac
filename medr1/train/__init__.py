"""Training: a recipe, a model and a prepared split -> a checkpoint, through TRL's trainers.

`configs` holds the project's recipe fields; `grpo` builds and runs GRPOTrainer (rewards, resume,
the collapse guard, run metadata); `sft` runs SFTTrainer on the same splits. Imports everything to its
left (`sources`, `data`, `rewards`, `evaluation`), nothing from `embedded`.
"""
