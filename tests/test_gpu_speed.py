"""GPU-run support that needs no GPU: quantized bytes, energy metering, the clock agreement,
the context-sweep params, vLLM's options on CUDA and the derived model folder."""

from __future__ import annotations

import json

import pytest

from slmstudy.backends.base import RunContext
from slmstudy.backends.vllm import VLLMOptions, derived_model_dir, request_stats
from slmstudy.errors import ParamsError, StudyError
from slmstudy.models import get_model
from slmstudy.speed import clock, energy, quantized
from slmstudy.speed.context import ContextParams, context_table, kv_cache_bytes, load_context_params


def test_quantized_bytes_qwen7b():
    arch = get_model("qwen25_7b").arch
    lin = quantized.linear_weight_params(arch)
    # Qwen2.5-7B: 28 layers × (2·3584·3584 + 2·3584·512 + 3·3584·18944) linear weights
    assert lin == 28 * (2 * 3584 * 3584 + 2 * 3584 * 512 + 3 * 3584 * 18944)
    bf16_held = arch.param_count() * 2
    awq_held, awq_read = quantized.quantized_bytes(arch, "awq", "float16")
    fp8_held, fp8_read = quantized.quantized_bytes(arch, "fp8", "bfloat16")
    rest = (arch.param_count() - lin) * 2
    assert awq_held == lin // 2 + (lin // 128) * 2 + (lin // 128) // 2 + rest
    assert fp8_held == lin + 4 * 28 * 7 + rest
    # untied embeddings: a decode step reads everything but the input table
    emb = arch.embedding_params() * 2
    assert awq_read == awq_held - emb and fp8_read == fp8_held - emb
    assert awq_held < fp8_held < bf16_held


def test_quantized_bytes_refuses_unknown():
    with pytest.raises(StudyError, match="bytes known for awq, fp8"):
        quantized.quantized_bytes(get_model("qwen25_7b").arch, "gptq")


class _FakeNVML:
    def __init__(self):
        self.mj = 1_000_000
        self.w = 300.0

    def energy_mj(self):
        self.mj += 150  # 0.15 J per read
        return self.mj

    def power_w(self):
        return self.w


def test_energy_meter_reads_counter_and_samples():
    m = energy.EnergyMeter(_FakeNVML(), interval_s=0.001)
    with m:
        import time

        time.sleep(0.02)
    r = m.result(n_tokens=10)
    assert r["energy_source"] == "nvml energy counter"
    assert r["energy_counter_j"] == pytest.approx(0.15)
    assert r["j_per_token"] == pytest.approx(0.015)
    assert r["n_power_samples"] >= 2
    assert r["mean_sampled_power_w"] == pytest.approx(300.0)
    assert r["energy_power_integral_j"] == pytest.approx(300.0 * (m.samples[-1][0] - m.samples[0][0]))


def test_energy_meter_without_gpu_says_why():
    m = energy.EnergyMeter(None, why_none="no NVML")
    with m:
        pass
    assert m.result(5) == {"energy_j": None, "why_none": "no NVML"}


def test_trapezoid_and_table(tmp_path):
    assert energy.trapezoid_j([(0.0, 100.0), (1.0, 300.0)]) == pytest.approx(200.0)
    assert energy.trapezoid_j([(0.0, 1.0)]) is None
    for rep, j in enumerate((0.2, 0.4, 0.3)):
        energy.append_energy(tmp_path, {"key": f"t/inproc/c1/r{rep}", "target": "t",
                                        "concurrency": 1, "energy_j": j * 10, "j_per_token": j,
                                        "mean_power_w": 400.0, "window_s": 1.0})
    assert energy.energy_keys(tmp_path) == {f"t/inproc/c1/r{i}" for i in range(3)}
    (row,) = energy.energy_table(energy.load_energy(tmp_path))
    assert row["j_per_token"] == pytest.approx(0.3) and row["n_batches"] == 3
    assert row["tokens_per_joule"] == pytest.approx(1 / 0.3)


def _rec(ttft, dec, timings, engine="vllm", n=256):
    return {"target": f"m/{engine}/x/replica", "engine": engine, "mode": "inproc",
            "concurrency": 1, "ttft_s": ttft, "decode_tok_s": dec, "n_tokens": n,
            "engine_timings": timings}


def test_clock_tolerance_is_3pct_or_1ms():
    assert clock.within(0.0159, 0.015)  # 0.9 ms: within 1 ms
    assert not clock.within(0.0325, 0.017)  # the harness's old 15 ms
    assert clock.within(1.02, 1.0) and not clock.within(1.04, 1.0)


def test_agreement_vllm_and_llamacpp():
    v = _rec(0.0172, 209.0, {"engine_ttft_s": 0.0170, "engine_decode_tok_s": 210.0})
    bad = _rec(0.0327, 209.0, {"engine_ttft_s": 0.0171, "engine_decode_tok_s": 209.0})
    ll = _rec(0.0240, 160.0, {"t_p_eval_ms": 23.5, "t_eval_ms": 1000 * 255 / 162.0,
                              "n_eval": 255, "n_p_eval": 512}, engine="llamacpp")
    rows = clock.request_agreement([v, bad, ll, {**v, "mode": "http"}])
    assert [r["ttft_ok"] for r in rows] == [True, False, True]
    assert rows[0]["decode_ok"] and rows[2]["decode_ok"]
    assert rows[2]["ttft_is"].startswith("llama.cpp")
    table = clock.agreement_table([v, bad])
    assert table[0]["n_requests"] == 2 and table[0]["ttft_within"] == 0.5
    assert table[0]["max_ttft_gap_ms"] == pytest.approx(15.6)


def test_repeated_agreement_drops_the_warm_up_and_takes_medians():
    from types import SimpleNamespace

    def result(ttft_s, window_s, engine_ttft_s, engine_tok_s, n=5):
        step = int(window_s * 1e9 / (n - 1))
        return SimpleNamespace(ttft_s=ttft_s, token_times_ns=[i * step for i in range(n)],
                               engine_timings={"engine_ttft_s": engine_ttft_s,
                                               "engine_decode_tok_s": engine_tok_s})

    # warm-up 0.5 s off (dropped); then TTFT 20/20.5/40 ms ours vs 20 ms engine: median 20.5, ok
    results = iter([result(0.5, 1.0, 0.02, 4.0), result(0.020, 1.0, 0.02, 4.0),
                    result(0.0205, 1.0, 0.02, 4.0), result(0.040, 1.2, 0.02, 4.0)])
    r = clock.repeated_agreement(lambda: next(results), reps=3)
    assert r["ours_ttft_s"] == pytest.approx(0.0205) and r["ttft_ok"]
    assert r["ours_decode_tok_s"] == pytest.approx(4.0) and r["engine_decode_tok_s"] == 4.0
    assert r["decode_ok"] and r["n_tokens"] == 5 and r["ttft_is"].startswith("vLLM")
    slow = iter([result(0.02, 1.0, 0.02, 4.0)] + [result(0.02, 1.1, 0.02, 4.0)] * 2)
    assert not clock.repeated_agreement(lambda: next(slow), reps=2)["decode_ok"]  # 10% slower
    with pytest.raises(ValueError, match="warm-up"):
        clock.repeated_agreement(lambda: None, reps=0)
    bare = SimpleNamespace(ttft_s=0.01, token_times_ns=[0, 1], engine_timings={})
    with pytest.raises(ValueError, match="engine_timings"):
        clock.repeated_agreement(lambda: bare, reps=1)


def test_request_stats_from_vllm_metrics():
    class M:
        arrival_time, queued_ts, scheduled_ts = 100.0, 5.0, 5.001
        first_token_ts, last_token_ts, first_token_latency = 5.014, 6.234, 0.0152
        num_generation_tokens = 256

    s = request_stats(M())
    assert s["engine_ttft_s"] == 0.0152
    assert s["engine_decode_tok_s"] == pytest.approx(255 / 1.22)
    assert s["engine_prefill_s"] == pytest.approx(0.013)
    assert request_stats(None) == {}


def test_reference_table():
    rows = [{"target": "t", "mode": "inproc", "concurrency": 1, "ttft_s": 0.0175}]
    refs = [{"target": "t", "output_len": 1, "median_s": 0.0171, "method": "vllm bench latency"}]
    (r,) = clock.reference_table(refs, rows)
    assert r["within"] and r["gap_ms"] == pytest.approx(0.4)


def test_vllm_on_cuda_keeps_its_own_max_num_seqs():
    cuda = VLLMOptions.for_run(RunContext(device="cuda", max_concurrency=32))
    cpu = VLLMOptions.for_run(RunContext(device="cpu", max_concurrency=32))
    assert "max_num_seqs" not in cuda and cuda["enforce_eager"] is False
    assert cpu["max_num_seqs"] == 32


def test_derived_model_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMSTUDY_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "m"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (src / "tokenizer.json").write_text("{}")
    over = {"rope_scaling": {"type": "yarn", "factor": 4.0}}
    d = derived_model_dir(src, over)
    assert json.loads((d / "config.json").read_text()) == {"hidden_size": 8, **over}
    assert (d / "tokenizer.json").is_symlink()
    assert derived_model_dir(src, over) == d  # cached by content
    assert derived_model_dir(src, {"x": 1}) != d


def test_context_params(tmp_path):
    p = load_context_params("params/gpu/02_context.yaml")
    assert p.prompt_tokens[-1] + p.output_tokens <= p.max_model_len == 131072
    with pytest.raises(ValueError, match="exceeds max_model_len"):
        ContextParams(run_id="x", model="qwen25_7b", prompt_tokens=[4096], output_tokens=128,
                      max_model_len=4096)
    bad = tmp_path / "c.yaml"
    bad.write_text("run_id: x\nmodel: qwen25_7b\nprompt_tokens: [1]\nmax_model_len: 9\ntypo: 1\n")
    with pytest.raises(ParamsError, match="unknown key 'typo'"):
        load_context_params(bad)


def test_context_table_and_kv():
    arch = get_model("qwen25_7b").arch
    # 28 layers × 4 KV heads × 128 × 2 (K and V) × 2 bytes = 57344 bytes per token
    assert kv_cache_bytes(arch, 1) == 57344
    recs = [{"target": "t", "prompt_tokens": 4096, "ttft_s": t, "decode_tok_s": d,
             "kv_cache_bytes": kv_cache_bytes(arch, 4096 + 128),
             "engine_timings": {"engine_ttft_s": t - 0.0005},
             "energy": {"j_per_token": 0.5}} for t, d in ((0.2, 200.0), (0.3, 190.0))]
    (row,) = context_table(recs)
    assert row["ttft_s"] == pytest.approx(0.25) and row["prefill_tok_s"] == pytest.approx(4096 / 0.25)
    assert row["kv_cache_gib"] == pytest.approx(57344 * 4224 / 2**30)


def test_gpu_params_name_distinct_targets():
    from slmstudy.params import load_params

    p = load_params("02_speed", "params/gpu/02_speed.yaml")
    names = [t.name() for t in p.targets]
    assert len(names) == len(set(names))
    assert {"qwen25_7b/vllm/awq-int4/replica", "qwen25_7b/vllm/fp8/replica",
            "qwen25_7b/llamacpp/Q4_K_M/replica"} <= set(names)
    assert all(len(n.split("/")) == 4 for n in names)  # model/engine/format/kind
