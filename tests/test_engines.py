"""Each engine on the real embedded model (SmolLM2-135M-Instruct), no network."""

import pytest

from slmstudy.backends.base import ENGINES, GenRequest, make_backend, validate_engines
from slmstudy.errors import CorruptModelError, InsufficientMemoryError, ModelNotFoundError, UnknownEngineError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["transformers", "llamacpp", "ortgenai", "vllm"])
def engine(request, arts):
    b = make_backend(request.param, arts.path_for(request.param), model_name="smollm2_135m",
                     dtype="float32")
    b.load()
    yield b
    b.close()


def test_chat_two_plus_two(engine, chat_ids):
    g = engine.generate_one(GenRequest(prompt_ids=chat_ids, max_tokens=64))
    assert "4" in g.text, (engine.name, g.text)
    assert g.n_tokens >= 1 and g.finish_reason in ("stop", "length")
    assert engine.load_s > 0


def test_streaming_record_forced_length(engine, chat_ids):
    n = 32
    g = engine.generate_one(GenRequest(prompt_ids=chat_ids, max_tokens=n, force_length=True))
    assert g.n_tokens == n and len(g.token_times_ns) == n and g.length_ok
    assert all(b > a for a, b in zip(g.token_times_ns, g.token_times_ns[1:])), engine.name
    assert g.t_send_ns < g.token_times_ns[0]
    assert 0 < g.ttft_s < g.e2e_s
    rec = g.record()
    assert rec["label"] == "real" and rec["n_tokens"] == n and rec["n_prompt"] == len(chat_ids)


def test_stream_yields_ids_and_times(engine, chat_ids):
    events = list(engine.stream(GenRequest(prompt_ids=chat_ids, max_tokens=8, force_length=True)))
    assert len(events) == 8 and all(isinstance(t, int) and isinstance(ts, int) for t, ts in events)


def test_batched_generation(engine, prompts_ids):
    reqs = [GenRequest(prompt_ids=p, max_tokens=12, force_length=True) for p in prompts_ids]
    gens = engine.generate(reqs)
    assert [g.n_tokens for g in gens] == [12, 12, 12]
    single = engine.generate_one(reqs[1])
    if engine.name != "transformers":  # padding in an HF batch may change fp32 rounding
        assert gens[1].output_ids == single.output_ids


def test_llamacpp_engine_counters_agree_in_count(arts, chat_ids):
    with make_backend("llamacpp", arts.gguf) as b:
        g = b.generate_one(GenRequest(prompt_ids=chat_ids, max_tokens=16, force_length=True))
    t = g.engine_timings
    assert t["n_p_eval"] == len(chat_ids) and t["n_eval"] in (15, 16)


def test_unknown_engine_is_clear():
    with pytest.raises(UnknownEngineError, match="choose one of"):
        make_backend("tensorrt", "x")
    with pytest.raises(UnknownEngineError, match="transformers, vllm, llamacpp, ortgenai"):
        validate_engines(["vllm", "exllama"])
    assert set(ENGINES) == {"transformers", "vllm", "llamacpp", "ortgenai"}


@pytest.mark.parametrize("name", ENGINES)
def test_missing_model_path_is_clear(name, tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        make_backend(name, tmp_path / "no-such-model").load()


def test_corrupt_gguf_is_clear_before_llamacpp_sees_it(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    with pytest.raises(CorruptModelError, match="corrupt"):
        make_backend("llamacpp", bad).load()


def test_too_large_model_refused_before_loading():
    """Llama-3-8B in float32 (32 GB) on a 24 GB machine: refused before any allocation."""
    import psutil

    from slmstudy.replicas import hf_config_dir

    b = make_backend("transformers", hf_config_dir("llama3_8b"), random_weights=True,
                     dtype="float32", replica=True)
    before = psutil.Process().memory_info().rss
    if b.estimate_weights_bytes() * 1.2 < psutil.virtual_memory().available:
        pytest.skip("this machine has enough memory for the 8B fp32 replica")
    with pytest.raises(InsufficientMemoryError, match="needs about .* GiB .* available"):
        b.load()
    assert psutil.Process().memory_info().rss - before < 200 * 2**20
