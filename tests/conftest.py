import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def arts():
    """The embedded model's artifacts (GGUF, HF safetensors, ONNX int4), built once."""
    from slmstudy import artifacts

    return artifacts.prepare(progress=False)


@pytest.fixture(scope="session")
def chat_ids(arts):
    from slmstudy.chat import render_chat

    # "Answer with a number": the int4 ONNX build (AVX2 kernels) otherwise rambles past the "4"
    return render_chat(arts.hf, "What is 2+2? Answer with a number.")


@pytest.fixture(scope="session")
def prompts_ids(arts):
    from slmstudy.chat import render_chat

    qs = ["What is 2+2?", "Name three colours of the rainbow.", "用一句话介绍北京。"]
    return [render_chat(arts.hf, q) for q in qs]
