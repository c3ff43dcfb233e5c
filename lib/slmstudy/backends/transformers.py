"""Hugging Face transformers (PyTorch), CPU or CUDA; eager, or static KV cache + torch.compile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Literal

from ..errors import ModelNotFoundError, StudyError
from ..forms import HF
from .base import Backend, EngineOptions, Generation, GenRequest, RunContext, common_prefix_len
from .registry import Capabilities, EngineSpec


class TransformersOptions(EngineOptions):
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    device: Literal["cpu", "cuda"] | None = None  # None: cuda when available
    random_weights: bool = False  # a replica from config.json (from_config)
    static_cache: bool = False  # static KV cache (generate compiles it on a GPU)
    compile: bool = False  # the documented fast path: static cache + torch.compile
    threads: int | None = None  # torch intra-op threads

    @classmethod
    def for_run(cls, ctx: RunContext) -> dict:
        return {"seed": ctx.seed, "dtype": ctx.dtype, "device": ctx.device,
                "threads": ctx.threads, "random_weights": ctx.replica,
                "static_cache": ctx.compile, "compile": ctx.compile}


class _TimestampStreamer:
    """A generate() streamer that timestamps each decoding step (the first put is the prompt)."""

    def __init__(self, on_step=None):
        self.steps: list[tuple[list[int], int]] = []
        self._prompt_seen = False
        self.on_step = on_step  # called with (ids of this step, time) as it happens

    def put(self, value):
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        t = time.perf_counter_ns()
        self.steps.append((value.reshape(-1).tolist(), t))
        if self.on_step is not None:
            self.on_step(self.steps[-1])

    def end(self):
        pass


class TransformersBackend(Backend):
    """`AutoModelForCausalLM.generate`, timestamped per decoding step (options:
    :class:`TransformersOptions`)."""

    name = "transformers"
    Options = TransformersOptions

    def _load(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        opts = self.options
        if not (self.model_path / "config.json").is_file():
            raise ModelNotFoundError(
                f"transformers needs an HF model folder with config.json; not found in "
                f"{self.model_path}. Run slmstudy.artifacts.prepare() or point models.<name>.path "
                "at a safetensors folder.")
        if opts.threads:
            torch.set_num_threads(int(opts.threads))
        dtype = "auto" if opts.dtype == "auto" else getattr(torch, opts.dtype)
        self.device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if opts.random_weights:
            cfg = AutoConfig.from_pretrained(self.model_path)
            torch.manual_seed(opts.seed)
            with torch.device(self.device):
                self.model = AutoModelForCausalLM.from_config(
                    cfg, dtype=dtype if dtype != "auto" else torch.bfloat16)
        else:
            self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype).to(
                self.device)
        self.model.eval()
        self._kv = None  # (ids, KV cache) of the last log-likelihood pass, for prefix reuse
        self.tokenizer = None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        except Exception:
            if not self.replica:
                raise
        self.eos_ids = _eos_ids(self.model.generation_config)
        # static_cache / compile: transformers' documented fast path. generate() compiles the
        # forward pass itself (CUDA graphs, "reduce-overhead") whenever the KV cache is static and
        # the model is on a GPU; wrapping forward in torch.compile by hand on top of that breaks
        # CUDA-graph output reuse. On CPU the static cache runs uncompiled.
        self.static_cache = opts.static_cache or opts.compile

    def n_params(self) -> int:
        return self.model.num_parameters()

    def decode(self, ids):
        return self.tokenizer.decode(ids, skip_special_tokens=True) if self.tokenizer else ""

    def _gen_kwargs(self, req: GenRequest) -> dict:
        kw = dict(max_new_tokens=req.max_tokens, do_sample=req.temperature > 0,
                  pad_token_id=self.eos_ids[0] if self.eos_ids else 0)
        if self.stop_ids:  # generate() stops on each of them (EOS and the template's end of turn)
            kw["eos_token_id"] = sorted(self.stop_ids)
        if req.stop and not req.force_length and self.tokenizer is not None:
            kw.update(stop_strings=list(req.stop), tokenizer=self.tokenizer)  # lm-eval's `until`
        if req.temperature > 0:
            kw.update(temperature=req.temperature, top_p=req.top_p, top_k=0)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if req.force_length:
            kw["min_new_tokens"] = req.max_tokens
        if self.static_cache:
            kw["cache_implementation"] = "static"
        return kw

    def _run(self, requests: list[GenRequest], on_step=None):
        import torch

        pad = self.eos_ids[0] if self.eos_ids else 0
        width = max(len(r.prompt_ids) for r in requests)
        ids = torch.full((len(requests), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(requests):  # left padding
            ids[i, width - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
            mask[i, width - len(r.prompt_ids):] = 1
        torch.manual_seed(requests[0].seed)
        streamer = _TimestampStreamer(on_step)
        t_send = time.perf_counter_ns()
        with torch.inference_mode():
            self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                streamer=streamer, **self._gen_kwargs(requests[0]))
        return t_send, streamer.steps

    def _split(self, requests, t_send, steps) -> list[Generation]:
        out = []
        for i, r in enumerate(requests):
            ids, times, reason = [], [], "length"
            for toks, t in steps:
                ids.append(int(toks[i]))
                times.append(t)
                if self.stops(r, int(toks[i])):
                    reason = "stop"
                    break
                if r.stop and not r.force_length and self.hits_stop_string(ids, r.stop):
                    reason = "stop_string"  # generate() ended here on its stop_strings
                    break
            out.append(self._finish(r, t_send, ids, times, finish_reason=reason))
        return out

    def _stream(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        # generate() runs to completion; tokens are yielded with the times they were produced.
        t_send, steps = self._run([req])
        for g in self._split([req], t_send, steps):
            yield from zip(g.output_ids, g.token_times_ns)

    def stream_live(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        """generate() in a worker thread; each decoding step's token is handed over as it is
        produced (the thread's streamer puts it on a queue), ending where `_split` would end."""
        import queue
        import threading

        self._require_loaded()
        steps: queue.Queue = queue.Queue()
        done = object()
        err: list[BaseException] = []

        def work():
            try:
                self._run([req], on_step=steps.put)
            except BaseException as e:  # re-raised in the caller's thread
                err.append(e)
            finally:
                steps.put(done)

        th = threading.Thread(target=work, daemon=True, name="transformers-generate")
        th.start()
        ids: list[int] = []
        try:
            while (item := steps.get()) is not done:
                tok, t = int(item[0][0]), item[1]
                ids.append(tok)
                yield tok, t
                if self.stops(req, tok) or (req.stop and not req.force_length
                                            and self.hits_stop_string(ids, req.stop)):
                    break
        finally:
            th.join()
        if err:
            raise err[0]

    def generate_one(self, req: GenRequest) -> Generation:
        self._require_loaded()
        return self._split([req], *self._run([req]))[0]

    def _generate_batch(self, requests):
        keys = {(r.max_tokens, r.force_length, r.temperature, r.top_p, r.stop) for r in requests}
        if len(keys) != 1:
            raise StudyError("a transformers batch needs the same max_tokens/force_length/"
                             "sampling settings for every request")
        return self._split(requests, *self._run(requests))

    def _logits_rows(self, ids: list[int], n: int):
        """One forward pass over what follows the prefix shared with the previous call; the
        previous call's KV cache is cropped to that prefix (lm-eval's HF backend runs every
        request in full; the logits agree to float rounding: tests/test_engines.py)."""
        import torch

        keep, cache = 0, None
        if self._kv is not None:
            prev, cache = self._kv
            keep = min(common_prefix_len(prev, ids), len(ids) - n)
            try:
                if keep > 0:
                    cache.crop(keep)
            except Exception:  # a cache layout without crop (sliding-window layers): full pass
                keep = 0
            if keep <= 0:
                keep, cache = 0, None
        self._kv = None
        with torch.inference_mode():
            x = torch.tensor([ids[keep:]], device=self.device)
            out = self.model(input_ids=x, past_key_values=cache, use_cache=True,
                             logits_to_keep=n)  # only the rows scored: Gemma's head is 262k wide
        self._kv = (list(ids), out.past_key_values)
        self._prefix_reused = keep
        return out.logits[0, -n:].double().cpu().numpy()

    def _close(self):
        import gc

        self.model = None
        self._kv = None
        gc.collect()


    def _stop_ids(self) -> set[int]:
        return super()._stop_ids() | set(self.eos_ids)


def _eos_ids(gen_cfg) -> list[int]:
    eos = getattr(gen_cfg, "eos_token_id", None)
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


SPEC = EngineSpec(
    name="transformers", backend=TransformersBackend, form=HF,
    capabilities=Capabilities(streaming=False, batching=True, loglik=True,
                              concurrency="static batch"),
    package="transformers", distributions=("transformers", "torch", "accelerate"),
    description="Hugging Face transformers (PyTorch): eager, or static KV cache + torch.compile",
)
