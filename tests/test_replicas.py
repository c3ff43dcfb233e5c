"""Architecture replicas: random weights in a real architecture, labelled `replica`."""

import pytest

from slmstudy import replicas
from slmstudy.backends.base import GenRequest
from slmstudy.backends.registry import make_backend

pytestmark = pytest.mark.slow
PROMPT = list(range(100, 164))  # token ids: replicas have no tokenizer


def test_qwen05b_replica_param_count_in_transformers():
    b = make_backend("transformers", replicas.hf_config_dir("qwen25_05b"), random_weights=True,
                     replica=True, dtype="bfloat16", model_name="qwen25_05b")
    with b:
        assert b.n_params() == pytest.approx(494e6, rel=0.01)
        g = b.generate_one(GenRequest(prompt_ids=PROMPT, max_tokens=4, force_length=True))
    assert g.n_tokens == 4 and g.record()["label"] == "replica"


def test_qwen05b_replica_in_llamacpp_f16_and_q4km():
    from slmstudy.gguf_meta import architecture as gguf_architecture

    f16 = replicas.gguf_replica("qwen25_05b", "F16", progress=False)
    arch = gguf_architecture(f16)
    assert arch.param_count() == pytest.approx(494e6, rel=0.01)
    q4 = replicas.gguf_replica("qwen25_05b", "Q4_K_M", progress=False)
    assert q4.stat().st_size < 0.5 * f16.stat().st_size
    for path in (f16, q4):
        with make_backend("llamacpp", path, replica=True, n_ctx=512) as b:
            g = b.generate_one(GenRequest(prompt_ids=PROMPT, max_tokens=8, force_length=True))
        assert g.n_tokens == 8 and g.replica and g.text == ""


@pytest.mark.vllm
def test_qwen05b_replica_in_vllm_dummy_weights():
    b = make_backend("vllm", replicas.hf_config_dir("qwen25_05b"), random_weights=True,
                     replica=True, dtype="bfloat16", max_model_len=512, model_name="qwen25_05b")
    with b:
        g = b.generate_one(GenRequest(prompt_ids=PROMPT, max_tokens=8, force_length=True))
    assert g.n_tokens == 8 and g.record()["label"] == "replica"


def test_qwen05b_replica_in_ortgenai_int4():
    path = replicas.onnx_replica("qwen25_05b", "int4")
    assert (path / "genai_config.json").is_file()
    with make_backend("ortgenai", path, replica=True) as b:
        g = b.generate_one(GenRequest(prompt_ids=PROMPT, max_tokens=8, force_length=True))
    assert g.n_tokens == 8 and g.record()["label"] == "replica"
