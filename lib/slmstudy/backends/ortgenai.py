"""onnxruntime-genai: an ONNX folder made by its model builder (int4 on CPU by default)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np

from ..errors import ModelNotFoundError
from ..forms import ONNX
from .base import Backend, EngineOptions, GenRequest, incremental_chunks
from .registry import Capabilities, EngineSpec


class OrtGenAIOptions(EngineOptions):
    """Only the seed: the execution provider and precision are the folder's (genai_config.json,
    written by the model builder)."""


class OrtGenAIBackend(Backend):
    """onnxruntime-genai's Generator, one token per `generate_next_token` call."""

    name = "ortgenai"
    Options = OrtGenAIOptions

    def _load(self) -> None:
        if not (self.model_path / "genai_config.json").is_file():
            raise ModelNotFoundError(
                f"onnxruntime-genai needs a folder with genai_config.json; not found in "
                f"{self.model_path}. Build one with slmstudy.artifacts.prepare() (model builder).")
        import onnxruntime_genai as og

        self.og = og
        self.model = og.Model(str(self.model_path))
        self.tokenizer = None if self.replica else og.Tokenizer(self.model)

    def decode(self, ids):
        return self.tokenizer.decode(ids) if self.tokenizer else ""

    def _stream(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        import numpy as np

        og = self.og
        params = og.GeneratorParams(self.model)
        total = len(req.prompt_ids) + req.max_tokens
        opts = dict(max_length=total, do_sample=req.temperature > 0, random_seed=req.seed)
        if req.force_length:
            opts["min_length"] = total
        if req.temperature > 0:
            opts.update(temperature=req.temperature, top_p=req.top_p, top_k=0)
        params.set_search_options(**opts)
        gen = og.Generator(self.model, params)
        gen.append_tokens(np.asarray([req.prompt_ids], dtype=np.int32))
        n = 0
        while not gen.is_done() and n < req.max_tokens:
            gen.generate_next_token()
            tok = int(gen.get_next_tokens()[0])
            n += 1
            yield tok, time.perf_counter_ns()
            if self.stops(req, tok):  # genai_config's EOS alone may miss the end of turn
                break
        del gen

    def _logits_rows(self, ids: list[int], n: int) -> np.ndarray:
        """The context is appended once, then each of the last n-1 tokens alone; after each
        append the generator's logits are those of the last position."""
        og = self.og
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(ids) + 1)
        gen = og.Generator(self.model, params)
        rows = []
        for chunk in incremental_chunks(ids, n):
            gen.append_tokens(np.asarray([chunk], dtype=np.int32))
            logits = np.asarray(gen.get_logits(), dtype=np.float64)
            rows.append(logits.reshape(-1, logits.shape[-1])[-1])
        del gen
        return np.stack(rows)

    def _close(self):
        self.model = None
        self.tokenizer = None


SPEC = EngineSpec(
    name="ortgenai", backend=OrtGenAIBackend, form=ONNX,
    capabilities=Capabilities(streaming=True, batching=False, loglik=True,
                              concurrency="one at a time"),
    package="onnxruntime_genai", distributions=("onnxruntime-genai", "onnxruntime"),
    description="onnxruntime-genai (ONNX int4 from its model builder)",
)
