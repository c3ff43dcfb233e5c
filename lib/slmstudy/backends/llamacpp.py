"""llama.cpp through llama-cpp-python: a GGUF on CPU (or CUDA when built with it)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from ..artifacts import check_gguf
from .base import Backend, GenRequest


class LlamaCppBackend(Backend):
    """Options: n_ctx (default 4096), n_threads, n_batch, n_gpu_layers (-1 = all), flash_attn.

    Decoding goes through `Llama.generate` (the high-level path); numbers say so in
    `engine_timings["path"]`. The engine's own perf counters (llama_perf_context) are returned in
    `engine_timings` for validation against our clock.
    """

    name = "llamacpp"

    def _load(self) -> None:
        path = self.model_path
        if path.is_dir():
            ggufs = sorted(path.glob("*.gguf"))
            path = ggufs[0] if ggufs else path / "model.gguf"
        check_gguf(path)  # clear errors for missing / corrupt files before llama.cpp sees them
        from llama_cpp import Llama

        o = self.options
        self.llm = Llama(
            model_path=str(path), n_ctx=int(o.get("n_ctx", 4096)),
            n_threads=o.get("n_threads") or os.cpu_count(),
            n_threads_batch=o.get("n_threads") or os.cpu_count(),  # prefill on the same threads
            n_batch=int(o.get("n_batch", 512)),
            n_gpu_layers=int(o.get("n_gpu_layers", 0)), seed=int(o.get("seed", 0)),
            flash_attn=bool(o.get("flash_attn", False)), verbose=bool(o.get("verbose", False)),
        )
        self.eos_id = self.llm.token_eos()
        self.gguf_path = path

    def decode(self, ids):
        if self.replica:
            return ""
        return self.llm.detokenize(ids).decode("utf-8", errors="replace")

    def _perf(self) -> dict:
        import llama_cpp

        d = llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        return {"t_p_eval_ms": d.t_p_eval_ms, "t_eval_ms": d.t_eval_ms, "n_p_eval": d.n_p_eval,
                "n_eval": d.n_eval, "path": "Llama.generate"}

    def _stream(self, req: GenRequest) -> Iterator[tuple[int, int]]:
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
            if n >= req.max_tokens or (not req.force_length and tok == self.eos_id):
                break
        gen.close()

    def _finish_reason(self, req: GenRequest, ids: list[int]) -> str:
        return "stop" if (not req.force_length and ids and ids[-1] == self.eos_id) else "length"

    def _engine_timings(self) -> dict:
        return self._perf()

    def _close(self):
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None
