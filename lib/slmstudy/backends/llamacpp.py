"""llama.cpp through llama-cpp-python: a GGUF on CPU (or CUDA when built with it)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Literal

import numpy as np

from ..forms import GGUF
from ..gguf_meta import check_gguf
from ..layout import Layout
from .base import Backend, EngineOptions, GenRequest, RunContext, common_prefix_len, incremental_chunks
from .registry import Capabilities, EngineSpec


class LlamaCppOptions(EngineOptions):
    n_ctx: int = 4096
    n_threads: int | None = None  # None: every core (decode and prefill)
    n_batch: int = 512
    n_gpu_layers: int = 0  # -1 = all layers on the GPU
    flash_attn: bool = False
    verbose: bool = False
    # "generate": llama-cpp-python's Llama.generate (its Python sampler, a numpy copy of the
    # logits per token); "raw": llama_decode one token at a time, then greedy argmax over the
    # logits row in place (or llama.cpp's C sampler chain when sampling) — the shortest path
    # from the engine to the caller, for a clock that agrees with llama.cpp's perf counters
    loop: Literal["generate", "raw"] = "generate"
    # several GPUs (llama.cpp's --split-mode / --tensor-split / --main-gpu): "layer" (its default)
    # puts whole layers and their KV cache on each GPU, "row" splits each weight's rows, "none"
    # keeps the model on main_gpu; tensor_split is each GPU's share (None: every visible GPU alike)
    split_mode: Literal["none", "layer", "row"] = "layer"
    tensor_split: list[float] | None = None
    main_gpu: int = 0

    @classmethod
    def for_run(cls, ctx: RunContext) -> dict:
        opts = {"seed": ctx.seed, "n_ctx": ctx.n_ctx, "n_threads": ctx.threads}
        if ctx.device == "cuda":
            opts.update(n_gpu_layers=-1, flash_attn=True)
        return opts

    def on_cpu(self) -> bool:
        return not self.n_gpu_layers

    def layout(self) -> Layout:
        if self.on_cpu():
            return Layout()
        if self.split_mode == "none":
            return Layout(gpus=1, first_gpu=self.main_gpu, split_mode="none")
        split = tuple(self.tensor_split) if self.tensor_split else None
        return Layout(gpus=len(split) if split else 1, split_mode=self.split_mode, tensor_split=split,
                      all_visible=split is None)


class LlamaCppBackend(Backend):
    """Decoding goes through `Llama.generate` (the high-level path); numbers say so in
    `engine_timings["path"]`. The engine's own perf counters (llama_perf_context) are returned in
    `engine_timings` for validation against our clock.
    """

    name = "llamacpp"
    Options = LlamaCppOptions

    def _load(self) -> None:
        path = self.model_path
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            path = ggufs[0] if ggufs else path / "model.gguf"
        check_gguf(path)  # clear errors for missing / corrupt files before llama.cpp sees them
        import llama_cpp
        from llama_cpp import Llama

        o = self.options
        self.llm = Llama(
            model_path=str(path), n_ctx=o.n_ctx,
            n_threads=o.n_threads or os.cpu_count(),
            n_threads_batch=o.n_threads or os.cpu_count(),  # prefill on the same threads
            n_batch=o.n_batch, n_gpu_layers=o.n_gpu_layers, seed=o.seed,
            flash_attn=o.flash_attn, verbose=o.verbose,
            split_mode={"none": llama_cpp.LLAMA_SPLIT_MODE_NONE, "layer": llama_cpp.LLAMA_SPLIT_MODE_LAYER,
                        "row": llama_cpp.LLAMA_SPLIT_MODE_ROW}[o.split_mode],
            main_gpu=o.main_gpu, tensor_split=o.tensor_split,
        )
        self.gguf_path = path

    def decode(self, ids):
        if self.replica:
            return ""
        return self.llm.detokenize(ids).decode("utf-8", errors="replace")

    def _perf(self) -> dict:
        import llama_cpp

        d = llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        return {"t_p_eval_ms": d.t_p_eval_ms, "t_eval_ms": d.t_eval_ms, "n_p_eval": d.n_p_eval,
                "n_eval": d.n_eval,
                "path": "llama_decode + in-place argmax / C sampler" if self.options.loop == "raw"
                else "Llama.generate"}

    def _stream(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        if self.options.loop == "raw":
            yield from self._stream_raw(req)
            return
        import llama_cpp

        self.llm.reset()  # no prefix reuse between requests: every request pays its own prefill
        llama_cpp.llama_perf_context_reset(self.llm._ctx.ctx)
        self.llm.set_seed(req.seed)
        n = 0
        gen = self.llm.generate(req.prompt_ids, temp=req.temperature, top_p=req.top_p, top_k=0,
                                min_p=0.0, repeat_penalty=1.0, reset=True)
        for tok in gen:
            t = time.perf_counter_ns()
            n += 1
            yield int(tok), t
            if n >= req.max_tokens or self.stops(req, tok):
                break
        gen.close()

    def _sampler(self, req: GenRequest):
        """llama.cpp's C sampler for the request: greedy at temperature 0, else top-p → temperature
        → a seeded draw (the order Llama.generate uses)."""
        import llama_cpp as L

        if req.temperature == 0:
            return L.llama_sampler_init_greedy()
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if req.top_p < 1.0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(req.top_p, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(req.temperature))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(req.seed))
        return chain

    def _stream_raw(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        """Prefill with llama_decode in n_batch chunks, then one llama_decode per token and the
        next token read from the last logits in place (:meth:`_next_token`): no Python sampler,
        no Python batch building and no copy of the vocabulary-sized logits row per token."""
        import llama_cpp as L

        llm = self.llm
        ctx = llm._ctx.ctx
        llm.reset()
        L.llama_memory_clear(L.llama_get_memory(ctx), False)  # metadata only: no memset of the cache
        L.llama_perf_context_reset(ctx)
        smpl = self._sampler(req)
        self._n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(llm.model))
        tok_buf = (L.llama_token * 1)()
        self._sample_ns = []  # each C sampler call's duration (outside llama.cpp's perf counters)
        try:
            ids = req.prompt_ids
            step = self.options.n_batch
            for i in range(0, len(ids), step):  # prefill in n_batch chunks, as Llama.eval does
                chunk = (L.llama_token * len(ids[i:i + step]))(*ids[i:i + step])
                rc = L.llama_decode(ctx, L.llama_batch_get_one(chunk, len(chunk)))
                if rc != 0:
                    raise RuntimeError(f"llama_decode returned {rc} in the prompt at token {i}")
            # On a GPU llama_decode returns before the device is done, and llama.cpp adds the wait
            # to its perf counters when it synchronizes. Synchronizing here, before the sampler
            # reads the logits, keeps that wait out of the sampler's timed call; without it the
            # H200 raw-loop records counted the wait twice (engine decode 94.8 tok/s against our
            # 177.9 for the Qwen2.5-7B F16 replica, results/h200-2026-12-02 README). On the CPU
            # llama_decode is synchronous and this returns at once.
            L.llama_synchronize(ctx)
            n = 0
            while True:
                t0 = time.perf_counter_ns()
                tok = self._next_token(smpl, ctx, req)
                t = time.perf_counter_ns()
                self._sample_ns.append(t - t0)
                n += 1
                yield int(tok), t
                if n >= req.max_tokens or self.stops(req, tok):
                    break
                tok_buf[0] = tok
                rc = L.llama_decode(ctx, L.llama_batch_get_one(tok_buf, 1))
                if rc != 0:
                    raise RuntimeError(f"llama_decode returned {rc} at output token {n}")
                L.llama_synchronize(ctx)
        finally:
            L.llama_sampler_free(smpl)

    def _next_token(self, smpl, ctx, req: GenRequest) -> int:
        """The next token from the last position's logits. Greedy: argmax over the logits row
        read in place (a numpy view, no copy), the same token as llama.cpp's greedy sampler (the
        first maximum) without the vocabulary-sized candidate array it builds per call: that
        array cost 0.39-0.50 ms per token with Qwen2.5's 151,936-entry vocabulary on the H200's
        host, more than Llama.generate's whole per-token Python step (0.31 ms; H200 snapshot of
        2026-12-02, README). Sampled: llama.cpp's C sampler chain."""
        import llama_cpp as L

        if req.temperature == 0:
            row = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, -1), shape=(self._n_vocab,))
            return int(row.argmax())
        return L.llama_sampler_sample(smpl, ctx, -1)

    def _stop_ids(self) -> set[int]:
        """llama.cpp's own end-of-generation set for this vocabulary (`llama_vocab_is_eog`: EOS,
        EOT, EOM and the end-of-turn tokens it detects by text), not only `token_eos()`."""
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        return {t for t in range(llama_cpp.llama_vocab_n_tokens(vocab))
                if llama_cpp.llama_vocab_is_eog(vocab, t)}

    def _engine_timings(self) -> dict:
        out = self._perf()
        if self.options.loop == "raw" and getattr(self, "_sample_ns", None):
            # llama.cpp's perf counters time llama_decode and the wait for its result (the
            # loop's llama_synchronize); the sampler (which builds a vocabulary-sized candidate
            # array per call) is timed here, first token apart
            out["t_sample_first_ms"] = self._sample_ns[0] / 1e6
            out["t_sample_ms"] = sum(self._sample_ns[1:]) / 1e6
        return out

    def _logits_rows(self, ids: list[int], n: int) -> np.ndarray:
        """The context is evaluated once; each of the last n-1 tokens is then fed alone, reading
        the last position's logits after each (no logits_all buffer needed). The KV cache of
        the previous call is kept up to the prefix it shares with `ids` (as `Llama.generate`
        does with reset=False): only the rest is evaluated."""
        import llama_cpp

        llm = self.llm
        keep = min(common_prefix_len(llm.input_ids[:llm.n_tokens].tolist(), ids), len(ids) - n)
        llm.n_tokens = max(0, keep)  # eval() removes the cache beyond n_tokens
        self._prefix_reused = llm.n_tokens
        rows = []
        chunks = incremental_chunks(ids, n)
        chunks[0] = chunks[0][llm.n_tokens:]
        for chunk in chunks:
            llm.eval(chunk)
            ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
            rows.append(np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float64))
        return np.stack(rows)

    def _close(self):
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None


def serve(path, ctx: RunContext, *, log_dir, model_name, tool_parser: str | None = None):
    """llama-cpp-python's OpenAI-compatible server on the same GGUF (its chat handler parses
    tool calls itself: `tool_parser` has no counterpart)."""
    from .servers import LlamaCppServer

    return LlamaCppServer(path, n_ctx=ctx.n_ctx, n_threads=ctx.threads,
                          n_gpu_layers=-1 if ctx.device == "cuda" else 0, log_dir=log_dir,
                          model_name=model_name)


SPEC = EngineSpec(
    name="llamacpp", backend=LlamaCppBackend, form=GGUF,
    capabilities=Capabilities(streaming=True, batching=False, loglik=True,
                              concurrency="one at a time"),
    package="llama_cpp", distributions=("llama-cpp-python", "gguf"), serve=serve,
    description="llama.cpp through llama-cpp-python (GGUF)",
)
