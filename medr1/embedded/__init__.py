"""The embedded default: what runs offline with no hub, on a CPU.

`tiny_model` builds small checkpoints from configs with the real classes and vocabulary; `synth` and
`sample_images` write a synthetic dataset in the raw OmniMedVQA layout; `demo` chains prepare ->
warm-start -> GRPO -> evaluation -> tables. May import every stage; no stage imports it.
"""
