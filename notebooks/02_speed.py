# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Speed: TTFT, decode tokens/s and concurrency, measured against the hardware limit
#
# The articles (`seeds/` 001 §3.1–3.4, 002 §3.6, 003 §3.5, 004 §3.4) quote single, unversioned
# speed numbers. Here every engine gets **the same prompt token ids** (512 tokens by default), a
# **forced output length** (EOS ignored, checked per request), a discarded warm-up, ≥ 3 repetitions,
# and medians with bootstrap 95% CIs. Definitions: `slmstudy/metrics.py` (one place).
# Each batch-1 decode speed is compared with the machine's **roofline**: measured memory bandwidth ÷
# bytes of weights a decode step reads.
#
# Rows labelled `replica` are random weights in the real architecture (speed only, never quality).

# %%
import pandas as pd
from IPython.display import Markdown, display
from tqdm import tqdm

from slmstudy import plotting, speed
from slmstudy.params import validate
from slmstudy.provenance import provenance
from slmstudy.results import SectionResults, write_provenance
from slmstudy.tables import with_intervals

# %% tags=["parameters"]
run_id = "default"  # results go to build/runs/<run_id>/02_speed/
prompt_tokens = 512  # prompt length in tokens (the articles' setup)
output_tokens = 32  # forced output length in tokens (EOS ignored)
repetitions = 3  # timed repetitions per cell, after warm-up
warmup = 1  # untimed warm-up requests per engine (full length)
concurrency = [1, 4]  # in-process concurrent requests (one batch); targets may override
http_engines = ["llamacpp", "vllm"]  # engines also measured through their OpenAI server
http_concurrency = [1, 4]  # concurrent HTTP streams
bandwidth_bytes = 1073741824  # size of the bandwidth-test copy, bytes
threads = None  # CPU threads for the engines (None = all cores)
vllm_bench = True  # validate our HTTP client against `vllm bench serve` on the same server
device = "cpu"  # cpu | cuda
targets = [  # model × engine × format; replica: random weights in the real architecture
    {"model": "smollm2_135m", "engine": "transformers", "dtype": "float32", "concurrency": [1, 4]},
    {"model": "smollm2_135m", "engine": "vllm", "dtype": "float32", "concurrency": [1, 4]},
    {"model": "smollm2_135m", "engine": "llamacpp", "format": "Q4_1", "concurrency": [1]},
    {"model": "smollm2_135m", "engine": "ortgenai", "format": "int4", "concurrency": [1]},
    {"model": "smollm2_135m", "engine": "openvino", "format": "fp16", "concurrency": [1]},
    {"model": "gemma3_270m", "engine": "llamacpp", "format": "Q4_K_M", "concurrency": [1]},  # second real model
    {"model": "gemma3_270m", "engine": "transformers", "dtype": "float32", "concurrency": [1]},
    {"model": "qwen25_05b", "engine": "transformers", "dtype": "float32", "replica": True,
     "concurrency": [1]},
    {"model": "qwen25_05b", "engine": "llamacpp", "format": "Q4_K_M", "replica": True,
     "concurrency": [1]},
]

# %%
P = validate("02_speed", dict(
    run_id=run_id, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
    repetitions=repetitions, warmup=warmup, concurrency=concurrency, http_engines=http_engines,
    http_concurrency=http_concurrency, bandwidth_bytes=bandwidth_bytes, threads=threads,
    vllm_bench=vllm_bench, device=device, targets=targets))
speed.preflight(P)  # bad values and models that cannot fit are refused before anything loads
results = SectionResults(P.run_id, "02_speed")
write_provenance(P.run_id, provenance({"params_02_speed": P.model_dump()}))
plotting.setup_style()
print(f"results: {results.dir}")

# %% [markdown]
# ## The hardware limit: memory bandwidth
# A batch-1 decode step reads (almost) every weight once, so tokens/s ≤ bandwidth ÷ bytes read per
# token. We measure the bandwidth twice — a large copy (bytes read + written per second) and a large
# reduction (bytes read per second) — and take the larger as the limit.

# %%
bw = speed.cached_bandwidth(results.dir / "bandwidth.json", P)  # measured once per results folder
print(f"bandwidth: copy {bw['copy_bandwidth_bytes_s'] / 1e9:.1f} GB/s, read "
      f"{bw['read_bandwidth_bytes_s'] / 1e9:.1f} GB/s → limit {bw['bandwidth_bytes_s'] / 1e9:.1f} GB/s "
      f"({bw['copy_bytes'] / 2**30:.2f} GiB buffers, {bw['threads']} threads)")

# %%
resolved = [speed.resolve_target(t) for t in tqdm(P.targets, desc="artifacts / replicas")]
speed.check_targets_fit(resolved)
pd.DataFrame(speed.target_table(resolved, bw["bandwidth_bytes_s"])).round(3)

# %% [markdown]
# ## In-process: each engine's own API
# One load per engine; `concurrency` requests are submitted together (vLLM and transformers batch
# them; llama.cpp and onnxruntime-genai serve them one after another through this API).
# Records are appended as each batch finishes, so an interrupted run resumes here.

# %%
bar = tqdm(total=sum(len(t.spec.concurrency or P.concurrency) for t in resolved) * P.repetitions,
           desc="in-process")
for t in resolved:
    bar.set_postfix_str(t.name)
    speed.run_inprocess(t, P, results, progress=bar)
    bar.update(0)
bar.close()

# %% [markdown]
# ## Over HTTP: the OpenAI-compatible servers (`llama_cpp.server`, `vllm serve`)
# The same prompt ids, streamed; TTFT and token times are taken at the client. Token counts:
# `vllm serve` returns the token ids of every chunk (`return_token_ids`) and a `usage` block.
# `llama_cpp.server` sends no usage when streaming; its requests are forced to the full length
# (`min_tokens`, `ignore_eos`) and a stream that ends with `finish_reason: "length"` produced
# exactly `max_tokens` (its loop stops there, one token at a time); the record says how each
# count was obtained (`engine_timings.tokens_counted_by`). We do not ask it for `logprobs` to
# count tokens: computing them sorts the whole vocabulary in Python per token and cut SmolLM2's
# decode from ~84 to ~24 tok/s on this machine. The server runs with `--logits_all False` (its
# default keeps full-vocabulary logits for every prompt position), like the in-process engine.

# %%
http_targets = [t for t in resolved if t.spec.engine in P.http_engines]
bar = tqdm(total=len(http_targets) * len(P.http_concurrency) * P.repetitions, desc="http")
for t in http_targets:
    speed.run_http(t, P, results, log_dir=results.dir / "logs", progress=bar)
bar.close()

# %% [markdown]
# ## Results
# Medians over requests with bootstrap 95% CIs; ITL percentiles pooled over all token gaps.

# %%
S = speed.section_summary(results, P, bw).model_dump()  # the same summary as the headless run
rows = S["rows"]
summary = pd.DataFrame(rows)
cols = ["target", "mode", "concurrency", "ttft_s", "ttft_s_ci_low", "ttft_s_ci_high",
        "decode_tok_s", "decode_tok_s_ci_low", "decode_tok_s_ci_high", "itl_p50_s", "itl_p90_s",
        "itl_p99_s", "itl_per", "e2e_s", "chars_per_s", "aggregate_tok_s", "peak_rss_bytes",
        "roofline_fraction", "length_ok"]
with_intervals(summary[cols])  # each median with its bootstrap 95% interval as "x [lo, hi]"

# %% [markdown]
# ### Batch-1 decode speed with 95% CIs, and the roofline
# Bars: measured decode tokens/s at batch 1 (in-process). Black ticks: the bandwidth limit for the
# bytes that target reads per token. The gap is time not spent streaming weights (kernel launch,
# Python, sampling, attention over the 512-token context).

# %%
fig = speed.roofline_figure(rows, bw["bandwidth_bytes_s"],
                            f"This run: decode vs roofline ({bw['bandwidth_bytes_s'] / 1e9:.0f} GB/s)")
plotting.show(fig, "02_speed_roofline", caption="This run: batch-1 decode tokens/s per target (median, 95% CI) "
              "against its roofline, bandwidth ÷ bytes read per token")

# %% [markdown]
# ### Concurrency: aggregate throughput and per-request speed
# Left: total output tokens/s of all concurrent requests. Right: each request's own decode speed.

# %%
fig = speed.concurrency_figure(rows)
plotting.show(fig, "02_speed_concurrency", caption="This run: aggregate output tokens/s and each request's decode "
              "speed against the number of concurrent requests")

# %% [markdown]
# ## Validation against the engine's own clock (llama.cpp perf counters)
# llama.cpp times its own prefill (`t_p_eval_ms`) and decode (`t_eval_ms`, `n_eval`). Our decode
# speed is taken at the Python caller, so it includes the high-level API's per-token overhead;
# a ratio near 1 says our clock measures the engine, not our harness.

# %%
agree = pd.DataFrame(S["llamacpp_clock_agreement"])
if len(agree):
    agg = agree.groupby("target")[["ours_decode_tok_s", "engine_decode_tok_s", "ratio"]].median()
    display(agg.round(3))
    display(Markdown(speed.agreement_finding(list(agree["ratio"] - 1), "llama.cpp's")))

# %% [markdown]
# ## Validation against vLLM's own benchmark client (`vllm bench serve`)
# Right after our HTTP sweep, on the same `vllm serve` instance, vLLM's `bench serve` ran with the
# random dataset, the same prompt/output lengths and concurrency 1. A gap over 10% would mean our
# client (or its clock) adds or hides time.

# %%
bench = S["vllm_bench_validation"]
if bench:
    cmp = pd.DataFrame(bench)
    display(cmp.round(3))
    display(Markdown(speed.agreement_finding(list(cmp["gap"]), "`vllm bench serve`")))

# %% [markdown]
# ## Committed snapshots from other machines (GPU), and the articles' GPU claims
# `results/<name>/` holds runs made elsewhere with the same code (e.g. `results/h100-2026-11-25`,
# made by `scripts/gpu/h100_speed.sh` with `params/h100/02_speed.yaml`; replicas of Qwen2.5-7B,
# Phi-3-mini and Qwen2.5-0.5B). Their numbers are the GPU's, not this machine's.
#
# From a GPU run we know each engine's time per token, t = t_fixed + bytes ÷ bandwidth. For a GPU
# the articles name (RTX 3060, 4090 D) we keep t_fixed and swap in its datasheet bandwidth: the
# expected tokens/s, and the roofline (bytes ÷ bandwidth alone) as a hard upper bound.

# %%
speed.show_snapshots(S["snapshot_claims"])

# %%
summary_path = results.write_summary(S)
print(f"summary: {summary_path}")

# %% [markdown]
# ## Findings
# Generated from the summary above (`speed.findings`).

# %%
display(Markdown(speed.findings(S)))
