"""The GPU decode breakdown (slmstudy.profiling): trace parsing and the per-token arithmetic.
The profiler itself runs on the GPU machine (scripts/gpu/speed.sh profile with SLM_PROFILE)."""

import pytest

from slmstudy import profiling as P
from slmstudy.errors import StudyError


@pytest.mark.parametrize("name,cat", [
    ("void mul_mat_vec_q<(ggml_type)12, 1, false>(void const*, ...)", "matmul"),
    ("quantize_q8_1(float const*, void*, long, long)", "quantize activations"),
    ("void flash_attn_ext_f16<128, 128, 4>(...)", "attention"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64", "matmul"),
    ("triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0", "norm"),
    ("void rms_norm_f32<1024, true, false>(...)", "norm"),
    ("void rope_neox<true, false, float>(...)", "rope"),
    ("Memcpy DtoH (Device -> Pinned)", "copy / memset"),
    ("void k_bin_bcast<&op_add, float, float, float>(...)", "elementwise / other"),
])
def test_categorize(name, cat):
    assert P.categorize(name) == cat


def _trace(kernels):
    ev = [{"ph": "X", "cat": "kernel", "name": n, "dur": d, "ts": i} for i, (n, d) in
          enumerate(kernels)]
    ev.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm", "dur": 999.0, "ts": 0})
    ev.append({"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pinned)",
               "dur": 2.0, "ts": 9})
    return {"traceEvents": ev}


def test_kernels_from_trace_keeps_gpu_events_only():
    k = P.kernels_from_trace(_trace([("gemv", 10.0), ("rms_norm", 1.0)]))
    assert [n for n, _ in k] == ["gemv", "rms_norm", "Memcpy DtoH (Device -> Pinned)"]
    assert sum(d for _, d in k) == 13.0


def test_breakdown_subtracts_prefill_and_divides_by_steps():
    # prefill: one big GEMM; 4 decode steps: 2 gemv of 1000 µs + 1 norm of 100 µs each
    pre = P.aggregate(P.kernels_from_trace(_trace([("gemm_big", 5000.0)])))
    full = P.aggregate(P.kernels_from_trace(_trace(
        [("gemm_big", 5000.0)] + [("gemv", 1000.0), ("gemv", 1000.0), ("rms_norm", 100.0)] * 4)))
    b = P.decode_step_breakdown(full, pre, 4, wall_ms_per_token=2.5,
                                bytes_read_per_token=3_000_000_000, bandwidth_bytes_s=3e12)
    assert b["category_ms_per_token"]["matmul"] == pytest.approx(2.0)
    assert b["category_ms_per_token"]["norm"] == pytest.approx(0.1)
    assert b["kernel_ms_per_token"] == pytest.approx(2.1)
    assert b["idle_ms_per_token"] == pytest.approx(0.4)
    assert b["roofline_ms_per_token"] == pytest.approx(1.0)
    assert b["roofline_fraction"] == pytest.approx(0.4)
    assert b["matmul_fraction_of_bandwidth"] == pytest.approx(0.5)
    assert b["kernels_per_token"] == pytest.approx(3.0)
    assert b["top_kernels"][0]["name"] == "gemv"


def test_breakdown_rejects_zero_steps():
    with pytest.raises(StudyError, match="n_decode"):
        P.decode_step_breakdown({}, {}, 0, 1.0, 1, 1.0)


def test_profile_target_needs_a_gpu():
    import torch

    from slmstudy.params import SpeedTarget
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(StudyError, match="CUDA GPU"):
        P.profile_target(SpeedTarget(model="smollm2_135m", engine="transformers"), None,
                         bandwidth_bytes_s=1.0, work_dir=__import__("pathlib").Path("/tmp"))


@pytest.mark.parametrize("snapshot", ["h100-2026-11-25", "h200-2026-12-02"])
def test_committed_gpu_profile_adds_up(snapshot):
    """The committed GPU profile: every bar sums to the measured wall time per token, and the
    findings name every target and give a verdict per model and precision."""
    from slmstudy.paths import REPO_ROOT as REPO

    prof = P.load_profile(REPO / "results" / snapshot)
    assert {r["model"] for r in prof} >= {"qwen25_7b"}
    for row in P.breakdown_rows(prof):
        assert sum(row["_bars"].values()) == pytest.approx(row["wall ms/token"], rel=1e-6)
        assert all(v >= 0 for v in row["_bars"].values()), row["target"]
    text = P.findings(prof)
    for r in prof:
        assert r["target"] in text
    assert "qwen25_7b, 16-bit" in text and "qwen25_7b, 4-bit" in text


@pytest.mark.parametrize("target,prec", [
    ("m/llamacpp/Q4_K_M/replica", "4-bit"), ("m/vllm/awq-int4/replica", "4-bit"),
    ("m/vllm/fp8/replica", "8-bit"), ("m/llamacpp/Q8_0/replica", "8-bit"),
    ("m/vllm/bfloat16/replica", "16-bit"), ("m/llamacpp/F16/replica", "16-bit")])
def test_precision_of_a_target_follows_its_format(target, prec):
    assert P._precision(target) == prec


def test_profiles_side_by_side_pairs_the_same_target_across_gpus(tmp_path):
    """A target profiled on two snapshots appears once per snapshot, with that snapshot's own
    numbers; a target profiled on one only is left out."""
    import json

    from slmstudy.speed.snapshots import profiles_side_by_side

    def row(target, wall):
        return {"target": target, "model": target.split("/")[0], "wall_ms_per_token": wall,
                "kernel_ms_per_token": wall * 0.9, "matmul_ms_per_token": wall * 0.7,
                "roofline_ms_per_token": wall * 0.5, "roofline_fraction": 0.5,
                "matmul_fraction_of_bandwidth": 0.7, "category_ms_per_token": {"matmul": wall * 0.7},
                "kernels_per_token": 400}
    snaps = [{"name": "gpu-a", "profile": [row("m/vllm/bfloat16/replica", 6.0), row("m/vllm/fp8/replica", 3.0)]},
             {"name": "gpu-b", "profile": [row("m/vllm/bfloat16/replica", 4.5)]}]
    both = profiles_side_by_side(snaps)
    assert [(r["snapshot"], r["wall_ms_per_token"]) for r in both] == [("gpu-a", 6.0), ("gpu-b", 4.5)]
    assert all(r["profiled_target"] == "m/vllm/bfloat16/replica" for r in both)
    assert len({r["target"] for r in both}) == 2
    assert [r["wall ms/token"] for r in P.breakdown_rows(both)] == [6.0, 4.5]
    json.dumps(both)
