"""The committed H200 snapshot: its extra tables read back, and what they show holds."""

from __future__ import annotations

import pytest

from slmstudy.errors import StudyError
from slmstudy.paths import RESULTS_DIR
from slmstudy.speed.gpu_snapshot import markdown, snapshot_tables

H200 = RESULTS_DIR / "h200-2026-12-01"


@pytest.fixture(scope="module")
def tables():
    return snapshot_tables(H200)


def test_formats_of_the_7b_with_their_own_bytes(tables):
    rows = {r["target"]: r for r in tables["batch1"]}
    bf16 = rows["qwen25_7b/vllm/bfloat16/replica"]
    awq = rows["qwen25_7b/vllm/awq-int4/replica"]
    fp8 = rows["qwen25_7b/vllm/fp8/replica"]
    q4 = rows["qwen25_7b/llamacpp/Q4_K_M/replica"]
    assert awq["read_gb"] < fp8["read_gb"] < bf16["read_gb"]
    assert 4.0 < q4["read_gb"] < 4.7  # GGUF tensor bytes
    for r in (bf16, awq, fp8, q4):
        assert 0 < r["roofline_fraction"] < 1


def test_vllm_clock_agrees_with_its_request_stats_at_batch_1(tables):
    rows = [r for r in tables["clock_agreement"]
            if r["engine"] == "vllm" and r["concurrency"] == 1]
    assert len(rows) == 8
    for r in rows:
        assert r["ttft_within"] == 1.0 and r["decode_within"] == 1.0
        assert abs(r["max_ttft_gap_ms"]) < 1.0


def test_old_max_num_seqs_cost_the_first_token(tables):
    ref = {r["target"]: r for r in tables["bench_latency"]}
    old = ref["qwen25_7b/vllm/bfloat16-max_num_seqs32/replica"]
    new = ref["qwen25_7b/vllm/bfloat16/replica"]
    # the engine's own benchmark sees the same difference the harness sees
    assert old["within"] and new["within"]
    assert old["bench_latency_ms"] - new["bench_latency_ms"] > 10
    cfg = {c["target"]: c for c in tables["engine_config"]}
    assert cfg["qwen25_7b/vllm/bfloat16-max_num_seqs32/replica"]["cudagraph_capture_sizes_max"] == 64
    assert cfg["qwen25_7b/vllm/bfloat16/replica"]["cudagraph_capture_sizes_max"] == 512


def test_energy_and_context(tables):
    e = {(r["target"], r["concurrency"]): r for r in tables["energy"]}
    t = "qwen25_7b/vllm/bfloat16/replica"
    assert e[(t, 32)]["j_per_token"] < e[(t, 8)]["j_per_token"] < e[(t, 1)]["j_per_token"]
    ctx = tables["context"]
    assert [r["prompt_tokens"] for r in ctx] == [512, 4096, 16384, 32768, 65536, 130944]
    assert all(a["ttft_s"] < b["ttft_s"] for a, b in zip(ctx, ctx[1:]))
    assert ctx[-1]["kv_cache_gib"] == pytest.approx(7.0)
    assert tables["errors"] == []


def test_markdown_and_bad_folder(tmp_path, tables):
    assert markdown(tables["context"], ["prompt_tokens"]).splitlines()[2] == "| 512 |"
    with pytest.raises(StudyError, match="no 02_speed/summary.json"):
        snapshot_tables(tmp_path)


def test_energy_across_snapshots_matches_each_snapshots_own_clock(tmp_path):
    """The energy windows' implied output rate (mean power ÷ J per token) against the summary's
    decode rate, for every batch-1 cell of every committed snapshot: the window holds the
    prefill too, so it is a little lower, never higher (two independent clocks: NVML's window
    and the harness's per-token timestamps)."""
    import matplotlib

    matplotlib.use("Agg")
    from slmstudy.speed import energy, snapshots

    snaps = snapshots.views()
    rows = energy.energy_across(snaps)
    assert {r["snapshot"] for r in rows} >= {"h200-2026-12-01", "h200-2026-12-02"}
    n = 0
    for snap in snaps:
        decode = {r["target"]: r["decode_tok_s"] for r in snapshot_tables(snap["path"])["batch1"]}
        for r in (r for r in rows if r["snapshot"] == snap["name"] and r["concurrency"] == 1):
            assert 0.9 < r["tok_s"] / decode[r["target"]] < 1.02, r
            n += 1
    assert n >= 40
    energy.energy_speed_figure(rows)  # draws
    with pytest.raises(ValueError, match="no energy rows at concurrency 64"):
        energy.energy_speed_figure(rows, concurrency=64)


def test_the_raw_loop_agrees_with_llamacpps_timers_for_every_model():
    clock = snapshot_tables(RESULTS_DIR / "h200-2026-12-02")["clock_agreement"]
    raw = [r for r in clock if "-rawloop" in r["target"]]
    assert {r["target"].split("/")[0] for r in raw} == {"qwen25_7b", "qwen25_05b", "phi3_mini",
                                                        "llama3_8b", "mistral_7b"}
    assert len(raw) == 10
    for r in raw:
        assert r["ttft_within"] == 1.0 and r["decode_within"] == 1.0, r
