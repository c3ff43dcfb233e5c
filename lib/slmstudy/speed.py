"""The speed section: batch-1 timing, concurrency sweeps in-process and over HTTP, roofline.

Every request is one record in samples.jsonl (appended as it completes; a rerun skips records
already there). Summaries — medians with bootstrap 95% CIs, ITL percentiles, roofline fractions —
are derived from the records by :func:`summarize`.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import metrics
from .artifacts import ModelArtifacts, prepare
from .backends.base import GenRequest, make_backend
from .backends.servers import LlamaCppServer, VLLMServer
from .errors import StudyError
from .models import EMBEDDED_KEY, REGISTRY, arch_from_config, get_model
from .params import SpeedParams, SpeedTarget
from .replicas import gguf_replica, hf_config_dir, onnx_replica
from .resources import PeakRSS, check_fits
from .results import SectionResults

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


# ---------------------------------------------------------------- hardware limit


def measure_bandwidth(nbytes: int = 2 * 2**30, repeats: int = 5, device: str = "cpu") -> dict:
    """Memory bandwidth from a large copy (torch; all CPU threads, or device-to-device on a GPU):
    bytes read + written per second, best of `repeats`. A batch-1 decode step streams the weights
    once, so this is its ceiling."""
    import torch

    n = int(nbytes)
    src = torch.ones(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # touch pages
    times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        dst.copy_(src)
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    best = min(times)
    # read-only: a reduction over the same bytes (a decode step reads weights, it writes little;
    # a copy also pays write-allocate traffic that 2n/t does not count)
    flat = src.view(torch.float32) if n % 4 == 0 else src.float()
    read_times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        flat.sum()
        if device != "cpu":
            torch.cuda.synchronize()
        read_times.append(time.perf_counter() - t0)
    copy_bw, read_bw = 2 * n / best, n / min(read_times)
    del src, dst, flat
    return {"copy_bytes": n, "best_s": best, "median_s": float(np.median(times)),
            "copy_bandwidth_bytes_s": copy_bw, "read_bandwidth_bytes_s": read_bw,
            "bandwidth_bytes_s": max(copy_bw, read_bw), "threads": torch.get_num_threads(),
            "device": device if device == "cpu" else torch.cuda.get_device_name(),
            "method": "max of torch copy_ (read + write counted) and a float32 sum (bytes read), "
                      f"best of {repeats} each"}


# ---------------------------------------------------------------- targets


@dataclass
class ResolvedTarget:
    spec: SpeedTarget
    path: Path
    options: dict
    weights_bytes: int  # held in memory
    bytes_read_per_token: int  # roofline denominator
    tokenizer_dir: Path | None

    @property
    def name(self) -> str:
        return self.spec.name()


def _gguf_bytes(path: Path) -> tuple[int, int]:
    """(all tensor bytes, bytes read per decode step) of a GGUF."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    sizes = {t.name: int(t.n_bytes) for t in r.tensors}
    total = sum(sizes.values())
    read = total - sizes.get("token_embd.weight", 0) if "output.weight" in sizes else total
    return total, read


def resolve_target(t: SpeedTarget, arts: ModelArtifacts | None = None) -> ResolvedTarget:
    """Where the engine loads from and how many bytes a decode step reads."""
    opts: dict = {"model_name": t.model}
    if t.replica:
        arch = get_model(t.model).arch
        opts["replica"] = True
        if t.engine in ("transformers", "vllm"):
            path = hf_config_dir(t.model)
            opts.update(random_weights=True, dtype=t.dtype)
            b = DTYPE_BYTES[t.dtype]
            return ResolvedTarget(t, path, opts, arch.param_count() * b,
                                  arch.params_read_per_token() * b, None)
        if t.engine == "llamacpp":
            path = gguf_replica(t.model, t.format)
            total, read = _gguf_bytes(path)
            return ResolvedTarget(t, path, opts, total, read, None)
        path = onnx_replica(t.model, t.format.lower() if t.format != "hf" else "int4")
        data = sum(f.stat().st_size for f in path.glob("*.onnx*"))
        emb = 0 if arch.tie_word_embeddings else arch.embedding_params() * 4
        return ResolvedTarget(t, path, opts, data, max(data - emb, 1), None)
    if t.model != EMBEDDED_KEY:
        return _resolve_local(t, opts)
    arts = arts or prepare(progress=False)
    cfg = json.loads((arts.hf / "config.json").read_text())
    arch = arch_from_config(cfg)
    if t.engine in ("transformers", "vllm"):
        opts["dtype"] = t.dtype
        b = DTYPE_BYTES[t.dtype]
        return ResolvedTarget(t, arts.hf, opts, arch.param_count() * b,
                              arch.params_read_per_token() * b, arts.hf)
    if t.engine == "llamacpp":
        total, read = _gguf_bytes(arts.gguf)
        return ResolvedTarget(t, arts.gguf, opts, total, read, arts.hf)
    data = sum(f.stat().st_size for f in arts.onnx.glob("model.onnx*"))
    return ResolvedTarget(t, arts.onnx, opts, data, data, arts.hf)


def _resolve_local(t: SpeedTarget, opts: dict) -> ResolvedTarget:
    """A real model given by local path: a .gguf file (llamacpp), an HF folder (transformers,
    vllm) or an onnxruntime-genai folder (ortgenai)."""
    p = Path(t.model).expanduser()
    if not p.exists():
        raise StudyError(
            f"model {t.model!r}: not the embedded model and not an existing local path. Give a "
            ".gguf file, an HF safetensors folder or an ONNX (genai_config.json) folder, or use "
            "replica: true for a registered architecture (no weights needed).")
    p = p.resolve()
    opts["model_name"] = p.name
    if p.suffix == ".gguf":
        if t.engine != "llamacpp":
            raise StudyError(f"{p.name} is a GGUF file: only the llamacpp engine loads it")
        total, read = _gguf_bytes(p)
        return ResolvedTarget(t, p, opts, total, read, None)
    if t.engine == "ortgenai":
        if not (p / "genai_config.json").is_file():
            raise StudyError(f"ortgenai needs a folder with genai_config.json; {p} has none")
        data = sum(f.stat().st_size for f in p.glob("*.onnx*"))
        return ResolvedTarget(t, p, opts, data, data, None)
    if not (p / "config.json").is_file():
        raise StudyError(f"{p} has no config.json; {t.engine} needs an HF model folder")
    arch = arch_from_config(json.loads((p / "config.json").read_text()))
    if t.engine == "llamacpp":
        raise StudyError(f"{p} is an HF folder: llamacpp needs a .gguf file")
    opts["dtype"] = t.dtype
    b = DTYPE_BYTES[t.dtype]
    tok = p if (p / "tokenizer.json").is_file() or (p / "tokenizer.model").is_file() else None
    return ResolvedTarget(t, p, opts, arch.param_count() * b, arch.params_read_per_token() * b, tok)


def check_targets_fit(targets: list[ResolvedTarget]) -> None:
    for t in targets:
        check_fits(t.name, t.weights_bytes)


def preflight(params: SpeedParams) -> None:
    """Everything that can be refused before a model is loaded or an artifact is written."""
    for t in params.targets:
        if params.device == "cuda":
            continue  # weights live in GPU memory; the engines check it themselves
        if t.replica:
            arch = get_model(t.model).arch
            b = DTYPE_BYTES.get(t.dtype, 2) if t.engine in ("transformers", "vllm") else 0.6
            check_fits(f"{t.name()} (replica)", int(arch.param_count() * b))
            if t.engine in ("transformers", "vllm") and t.dtype not in DTYPE_BYTES:
                raise StudyError(f"{t.name()}: dtype must be one of {list(DTYPE_BYTES)}")
        elif t.model != EMBEDDED_KEY and not Path(t.model).expanduser().exists():
            raise StudyError(
                f"model {t.model!r}: real (non-replica) targets need the embedded model or a local "
                "path (.gguf file, HF folder, ONNX folder); set replica: true to time a registered "
                f"architecture with random weights (registered: {', '.join(sorted(REGISTRY))})")
    if params.prompt_tokens + params.output_tokens > 4096:
        raise StudyError("prompt_tokens + output_tokens must be ≤ 4096 (the engines' context here)")


# ---------------------------------------------------------------- prompts


def synthetic_prompt(n_tokens: int, target: ResolvedTarget, seed: int = 0) -> list[int]:
    """Exactly n prompt token ids: chat-templated prose for real models, random ids for replicas."""
    if target.tokenizer_dir is not None:
        from .backends.base import _tokenizer

        tok = _tokenizer(str(target.tokenizer_dir))
        text = ("长江是中国最长的河流，全长约六千三百公里。The Yangtze is the longest river in China. "
                * (n_tokens // 8 + 8))
        msgs = [{"role": "user", "content": text}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        tail = tok.apply_chat_template([{"role": "user", "content": ""}],
                                       add_generation_prompt=True, tokenize=True)
        tail = list(tail["input_ids"] if hasattr(tail, "keys") else tail)[-3:]
        return [int(i) for i in ids[: n_tokens - len(tail)] + tail]
    vocab = get_model(target.spec.model).arch.vocab_size
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.integers(100, min(vocab, 30000), n_tokens)]


def salted(prompt: list[int], salt: int, position: int = 4) -> list[int]:
    """The same prompt with one early token changed per request, so no engine can serve it from a
    prefix cache (llama_cpp.server reuses the longest common prefix of consecutive requests; we
    measure a full prefill everywhere). The length is unchanged."""
    out = list(prompt)
    out[min(position, len(out) - 1)] = 1000 + salt % 997
    return out


# ---------------------------------------------------------------- running


def _record(g, *, key, target: ResolvedTarget, mode, concurrency, rep, idx, batch_t_send,
            peak_rss, load_s):
    r = g.record(key=f"{key}/{idx}", target=target.name, engine=target.spec.engine,
                 model=target.spec.model, format=target.spec.format, dtype=target.spec.dtype,
                 mode=mode, concurrency=concurrency, rep=rep, request_index=idx,
                 batch_t_send_ns=batch_t_send, peak_rss_bytes=peak_rss, load_s=load_s,
                 weights_bytes=target.weights_bytes,
                 bytes_read_per_token=target.bytes_read_per_token,
                 itl_s=metrics.itl_s(g.token_times_ns))
    r.pop("prompt_ids", None)  # the prompt is the same for every record of a target
    return r


def engine_options(target: ResolvedTarget, params: SpeedParams) -> dict:
    """Backend options for a target on this device (CPU defaults, or everything on the GPU)."""
    opts = dict(target.options)
    gpu = params.device == "cuda"
    eng = target.spec.engine
    n_ctx = params.prompt_tokens + params.output_tokens + 64
    opts["device"] = params.device
    if eng == "llamacpp":
        opts.update(n_ctx=n_ctx, n_threads=params.threads)
        if gpu:
            opts.update(n_gpu_layers=-1, flash_attn=True)
    if eng == "transformers":
        if params.threads:
            opts["threads"] = params.threads
        if target.spec.compile:
            opts.update(static_cache=True, compile=True)
    if eng == "vllm":
        opts.update(max_model_len=n_ctx,
                    max_num_seqs=max(target.spec.concurrency or params.concurrency))
        if gpu:  # CUDA graphs + torch.compile, most of the card for weights + KV cache
            opts.update(enforce_eager=False, gpu_memory_utilization=0.85)
    return opts


def run_inprocess(target: ResolvedTarget, params: SpeedParams, results: SectionResults,
                  progress=None) -> None:
    """Load once, warm up, then repetitions × concurrency levels; records appended as they finish."""
    done = results.done_keys()
    levels = target.spec.concurrency or params.concurrency
    todo = [(c, rep) for c in levels for rep in range(params.repetitions)
            if not all(f"{target.name}/inproc/c{c}/r{rep}/{i}" in done for i in range(c))]
    if not todo:
        return
    opts = engine_options(target, params)
    prompt = synthetic_prompt(params.prompt_tokens, target)
    with PeakRSS() as mem:
        backend = make_backend(target.spec.engine, target.path, **opts)
        load_s = backend.load()
        try:
            for w in range(params.warmup):  # full length: compiled engines build their graphs
                backend.generate_one(GenRequest(prompt_ids=prompt, max_tokens=params.output_tokens,
                                                force_length=True, request_id="warmup"))
            for c, rep in todo:
                key = f"{target.name}/inproc/c{c}/r{rep}"
                reqs = [GenRequest(prompt_ids=salted(prompt, 31 * rep + i + 7 * c),
                                   max_tokens=params.output_tokens, force_length=True,
                                   request_id=f"{key}/{i}") for i in range(c)]
                t0 = time.perf_counter_ns()
                gens = backend.generate(reqs)
                for i, g in enumerate(gens):
                    results.append(_record(g, key=key, target=target, mode="inproc",
                                           concurrency=c, rep=rep, idx=i, batch_t_send=t0,
                                           peak_rss=mem.sample() and mem.peak_bytes,
                                           load_s=load_s))
                if progress:
                    progress.update(1)
        finally:
            backend.close()


def run_http(target: ResolvedTarget, params: SpeedParams, results: SectionResults,
             log_dir: Path, progress=None) -> None:
    """The same prompt over the engine's OpenAI-compatible server, c concurrent streams."""
    eng = target.spec.engine
    if eng == "llamacpp" and target.spec.replica:
        print(f"skipped over HTTP: {target.name} — llama_cpp.server takes text prompts only and a "
              "replica GGUF has no vocabulary (measured in-process instead)")
        return
    done = results.done_keys()
    todo = [(c, rep) for c in params.http_concurrency for rep in range(params.repetitions)
            if not all(f"{target.name}/http/c{c}/r{rep}/{i}" in done for i in range(c))]
    if not todo:
        return
    n_ctx = params.prompt_tokens + params.output_tokens + 64
    if eng == "llamacpp":
        srv = LlamaCppServer(target.path, n_ctx=n_ctx, n_threads=params.threads, log_dir=log_dir,
                             model_name=target.spec.model)
    else:
        srv = VLLMServer(target.path, dtype=target.spec.dtype, max_model_len=n_ctx,
                         random_weights=target.spec.replica, log_dir=log_dir,
                         model_name=target.spec.model)
    prompt = synthetic_prompt(params.prompt_tokens, target)
    with PeakRSS() as mem, srv:
        client = srv.client()
        for _ in range(params.warmup):
            client.completion_stream(GenRequest(prompt_ids=prompt, max_tokens=16,
                                                force_length=True))
        for c, rep in todo:
            key = f"{target.name}/http/c{c}/r{rep}"
            reqs = [GenRequest(prompt_ids=salted(prompt, 31 * rep + i + 7 * c + 500),
                               max_tokens=params.output_tokens, force_length=True,
                               request_id=f"{key}/{i}") for i in range(c)]
            t0 = time.perf_counter_ns()
            with ThreadPoolExecutor(max_workers=c) as pool:
                gens = list(pool.map(client.completion_stream, reqs))
            for i, g in enumerate(gens):
                g.replica = target.spec.replica
                rec = _record(g, key=key, target=target, mode="http", concurrency=c, rep=rep,
                              idx=i, batch_t_send=t0, peak_rss=mem.sample() and mem.peak_bytes,
                              load_s=srv.ready_s)
                results.append(rec)
            if progress:
                progress.update(1)
        bench_file = results.dir / f"vllm_bench_{_slug(target.name)}.json"
        if (eng == "vllm" and params.vllm_bench and target.tokenizer_dir is not None
                and not bench_file.is_file()):
            # vLLM's own client on the same server, same lengths, concurrency 1
            bench = vllm_bench_serve(srv, target.tokenizer_dir, params.prompt_tokens,
                                     params.output_tokens, max(params.repetitions, 3), 1,
                                     results.dir / "vllm_bench")
            bench_file.write_text(json.dumps(bench, indent=2))


# ---------------------------------------------------------------- summaries


def summarize(records: list[dict], bandwidth_bytes_s: float | None = None) -> list[dict]:
    """One row per (target, mode, concurrency): medians with bootstrap 95% CIs over requests,
    pooled ITL percentiles, aggregate throughput, peak memory and roofline fraction."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["target"], r["mode"], r["concurrency"]), []).append(r)
    rows = []
    for (target, mode, c), rs in sorted(groups.items()):
        ttft = [r["ttft_s"] for r in rs if r.get("ttft_s") is not None]
        dec = [r["decode_tok_s"] for r in rs if r.get("decode_tok_s") is not None]
        e2e = [r["e2e_s"] for r in rs if r.get("e2e_s") is not None]
        itl = [x for r in rs for x in (r.get("itl_s") or [])]
        # aggregate output tokens/s of each batch: tokens of all its requests / batch wall time
        batches: dict[tuple, list[dict]] = {}
        for r in rs:
            batches.setdefault((r["rep"],), []).append(r)
        agg = []
        for b in batches.values():
            t_end = max(x["token_times_ns"][-1] for x in b if x["token_times_ns"])
            agg.append(sum(x["n_tokens"] for x in b) / ((t_end - b[0]["batch_t_send_ns"]) * 1e-9))
        first = rs[0]
        row = {
            "target": target, "mode": mode, "concurrency": c, "engine": first["engine"],
            "model": first["model"], "label": first["label"], "n_requests": len(rs),
            "length_ok": all(r.get("length_ok") for r in rs),
            "weights_bytes": first["weights_bytes"],
            "bytes_read_per_token": first["bytes_read_per_token"],
            "load_s": first.get("load_s"),
            "peak_rss_bytes": max(r.get("peak_rss_bytes") or 0 for r in rs),
            "itl_p50_s": metrics.percentile(itl, 50), "itl_p90_s": metrics.percentile(itl, 90),
            "itl_p99_s": metrics.percentile(itl, 99),
            # ITL is per token where every token has its own arrival time; llama_cpp.server's
            # stream sometimes carries several tokens in one chunk (a partial UTF-8 character
            # is held back), and then the gaps are between chunks
            "itl_per": _itl_unit(rs),
            "chars_per_s": float(np.median([r["chars_per_s"] for r in rs
                                            if r.get("chars_per_s") is not None] or [np.nan])),
            "aggregate_tok_s": float(np.median(agg)),
        }
        for name, vals in (("ttft_s", ttft), ("decode_tok_s", dec), ("e2e_s", e2e)):
            med, lo, hi = metrics.bootstrap_ci(vals)
            row.update({name: med, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
        row["cv_decode"] = metrics.cv(dec)
        if bandwidth_bytes_s:
            limit = metrics.roofline_tok_s(bandwidth_bytes_s, first["bytes_read_per_token"])
            row["roofline_tok_s"] = limit
            row["roofline_fraction"] = row["decode_tok_s"] / limit if c == 1 else None
        rows.append(row)
    return rows


def llamacpp_clock_agreement(records: list[dict]) -> list[dict]:
    """Our decode tok/s vs llama.cpp's own perf counters (t_eval_ms / n_eval), per request."""
    out = []
    for r in records:
        t = r.get("engine_timings") or {}
        if r["engine"] != "llamacpp" or r["mode"] != "inproc" or not t.get("n_eval"):
            continue
        engine_rate = t["n_eval"] / (t["t_eval_ms"] / 1e3)
        out.append({"target": r["target"], "concurrency": r["concurrency"],
                    "ours_decode_tok_s": r["decode_tok_s"], "engine_decode_tok_s": engine_rate,
                    "ratio": r["decode_tok_s"] / engine_rate,
                    "ours_ttft_s": r["ttft_s"], "engine_prefill_s": t["t_p_eval_ms"] / 1e3})
    return out


def _itl_unit(rs: list[dict]) -> str:
    n_tok = sum(r["n_tokens"] for r in rs)
    n_arr = sum(len(r["token_times_ns"]) for r in rs)
    if n_arr == n_tok:
        return "token"
    return f"chunk ({n_tok / max(n_arr, 1):.2f} tokens per chunk)"


def _slug(name: str) -> str:
    return name.replace("/", "_")


def vllm_bench_results(results: SectionResults, rows: list[dict]) -> list[dict]:
    """Our HTTP c=1 medians vs `vllm bench serve` run on the same server (see run_http)."""
    out = []
    for row in rows:
        f = results.dir / f"vllm_bench_{_slug(row['target'])}.json"
        if row["mode"] == "http" and row["concurrency"] == 1 and f.is_file():
            for cmp in compare_with_vllm_bench(row, json.loads(f.read_text())):
                out.append({"target": row["target"], **cmp})
    return out


def vllm_bench_serve(server, tokenizer_dir: Path, prompt_tokens: int, output_tokens: int,
                     num_prompts: int, concurrency: int, out_dir: Path) -> dict:
    """vLLM's own client benchmark (`vllm bench serve`, random dataset, same lengths) against a
    running vLLM server; returns its result JSON (median_ttft_ms, median_tpot_ms, …)."""
    import subprocess
    import sys

    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"bench-c{concurrency}.json"
    cmd = [sys.executable, "-m", "slmstudy.backends.vllm_cli", "bench", "serve",
           "--backend", "vllm", "--base-url", server.base_url, "--model", server.model_name,
           "--tokenizer", str(tokenizer_dir), "--dataset-name", "random",
           "--random-input-len", str(prompt_tokens), "--random-output-len", str(output_tokens),
           "--num-prompts", str(num_prompts), "--max-concurrency", str(concurrency),
           "--ignore-eos", "--seed", "0", "--save-result", "--result-dir", str(out_dir),
           "--result-filename", name, "--disable-tqdm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise StudyError(f"vllm bench serve failed (exit {proc.returncode}):\n"
                         f"{(proc.stdout + proc.stderr)[-2000:]}")
    return json.loads((out_dir / name).read_text())


def compare_with_vllm_bench(ours: dict, bench: dict) -> list[dict]:
    """Our HTTP medians vs vLLM's bench serve medians, same server, lengths and concurrency."""
    pairs = [("TTFT (ms)", ours["ttft_s"] * 1e3, bench["median_ttft_ms"]),
             ("TPOT (ms)", 1e3 / ours["decode_tok_s"], bench["median_tpot_ms"]),
             ("ITL p50 (ms)", ours["itl_p50_s"] * 1e3, bench["median_itl_ms"])]
    return [{"metric": m, "ours": a, "vllm_bench": b, "gap": a / b - 1} for m, a, b in pairs]


def cached_bandwidth(bw_file: Path, params: SpeedParams) -> dict:
    """The bandwidth measured once per results folder (a rerun or a later call reuses it)."""
    if bw_file.is_file():
        return json.loads(bw_file.read_text())
    bw = measure_bandwidth(params.bandwidth_bytes, device=params.device)
    bw_file.write_text(json.dumps(bw, indent=2))
    return bw


def run_section(params: SpeedParams, results: SectionResults, engines: set[str] | None = None,
                http: bool = True, log=print) -> dict:
    """The whole section without a notebook (same calls, same files): for machines without
    Jupyter, e.g. the lent GPU. `engines` limits which targets run in this call; the summary is
    always derived from every record in the results folder."""
    from tqdm import tqdm

    preflight(params)
    bw = cached_bandwidth(results.dir / "bandwidth.json", params)
    log(f"bandwidth {bw['bandwidth_bytes_s'] / 1e9:.0f} GB/s on {bw.get('device')}")
    for spec in params.targets:
        if engines and spec.engine not in engines:
            continue
        t0 = time.perf_counter()
        target = resolve_target(spec)
        log(f"{target.name}: artifact ready in {time.perf_counter() - t0:.0f} s")
        bar = tqdm(total=len(spec.concurrency or params.concurrency) * params.repetitions,
                   desc=target.name)
        run_inprocess(target, params, results, progress=bar)
        bar.close()
        if http and spec.engine in params.http_engines:
            run_http(target, params, results, log_dir=results.dir / "logs")
        log(f"{target.name}: done in {time.perf_counter() - t0:.0f} s")
    records = results.records()
    summary = {"bandwidth": bw, "rows": summarize(records, bw["bandwidth_bytes_s"]),
               "llamacpp_clock_agreement": llamacpp_clock_agreement(records),
               "params": params.model_dump()}
    results.write_summary(summary)
    return summary


def _main(argv=None) -> None:
    import argparse

    from .params import load_params
    from .provenance import provenance
    from .results import write_provenance

    ap = argparse.ArgumentParser(description="run the speed section headless (same records as "
                                             "notebooks/02_speed)")
    ap.add_argument("--params", required=True, help="a params YAML (e.g. params/h100/02_speed.yaml)")
    ap.add_argument("--runs-root", default=None, help="results root (default build/runs)")
    ap.add_argument("--engines", default="", help="comma-separated subset of engines to run now")
    ap.add_argument("--no-http", action="store_true")
    a = ap.parse_args(argv)
    p = load_params("02_speed", a.params)
    root = Path(a.runs_root) if a.runs_root else None
    results = SectionResults(p.run_id, "02_speed", root=root)
    write_provenance(p.run_id, provenance({"params_02_speed": p.model_dump()}), root=root)
    engines = set(filter(None, a.engines.split(","))) or None
    summary = run_section(p, results, engines=engines, http=not a.no_http)
    for r in summary["rows"]:
        if r["concurrency"] == 1:
            print(f"{r['target']:55s} {r['mode']:6s} ttft {r['ttft_s'] * 1e3:8.1f} ms  decode "
                  f"{r['decode_tok_s']:8.1f} tok/s  roofline {r.get('roofline_fraction') or 0:.2f}")


if __name__ == "__main__":
    _main()


def roofline_figure(rows: list[dict], bandwidth_bytes_s: float, title: str):
    """Horizontal bars: batch-1 in-process decode tok/s (median, 95% CI) per target, with the
    roofline of each target as a black tick (log scale)."""
    import matplotlib.pyplot as plt

    b1 = [r for r in rows if r["mode"] == "inproc" and r["concurrency"] == 1]
    b1.sort(key=lambda r: r["target"])
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(b1) + 1.6))
    y = np.arange(len(b1))
    med = np.array([r["decode_tok_s"] for r in b1])
    lo = med - np.array([r["decode_tok_s_ci_low"] for r in b1])
    hi = np.array([r["decode_tok_s_ci_high"] for r in b1]) - med
    ax.barh(y, med, xerr=[lo, hi], color=["#4c72b0" if r["label"] == "real" else "#dd8452"
                                          for r in b1], capsize=3)
    ax.scatter([bandwidth_bytes_s / r["bytes_read_per_token"] for r in b1], y, marker="|",
               s=300, color="k", label="roofline: bandwidth ÷ bytes read per token")
    for yi, r in zip(y, b1):
        frac = r["decode_tok_s"] * r["bytes_read_per_token"] / bandwidth_bytes_s
        ax.annotate(f"{frac:.0%}", (r["decode_tok_s"], yi), xytext=(4, -3),
                    textcoords="offset points", fontsize=7)
    ax.set_yticks(y, [r["target"] for r in b1], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("decode tokens/s, batch 1 (log); blue = real weights, orange = replica")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig


def concurrency_figure(rows: list[dict], title: str = ""):
    """Left: aggregate output tokens/s of all concurrent requests; right: each request's own
    decode speed — per target and mode, against the number of concurrent requests."""
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(rows)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for (target, mode), g in df.groupby(["target", "mode"]):
        if g.concurrency.nunique() < 2:
            continue
        g = g.sort_values("concurrency")
        style = "-o" if mode == "inproc" else "--s"
        a1.plot(g.concurrency, g.aggregate_tok_s, style, label=f"{target} [{mode}]")
        a2.plot(g.concurrency, g.decode_tok_s, style)
    for a, t in ((a1, "aggregate output tokens/s"), (a2, "per-request decode tokens/s")):
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_xlabel("concurrent requests")
        a.set_title(t)
    a1.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
