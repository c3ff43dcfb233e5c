"""Speed targets: where each engine loads from (embedded model, replica or local path), how
many bytes a decode step reads, the run context each engine is given, and the prompts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import metrics
from ..backends import registry
from ..backends.base import RunContext
from ..chat import tokenizer
from ..errors import StudyError
from ..forms import HF
from ..layout import check as check_layout
from ..layout import visible_gpus
from ..models import BUNDLED, REGISTRY, get_model, resolve_model
from ..params import SpeedParams, SpeedTarget
from ..resources import check_fits


@dataclass
class ResolvedTarget:
    spec: SpeedTarget
    path: Path
    backend_kw: dict  # model_name, replica: how records name the target
    weights_bytes: int  # held in memory
    bytes_read_per_token: int  # roofline denominator
    tokenizer_dir: Path | None

    @property
    def name(self) -> str:
        return self.spec.name()

def resolve_target(t: SpeedTarget) -> ResolvedTarget:
    """Where the engine loads from (the engine's artifact form of the embedded model, of a
    replica, or of a local path) and how many bytes a decode step reads."""
    spec = registry.get(t.engine)
    form = spec.form
    opts: dict = {"model_name": t.model}
    if t.replica:
        arch = get_model(t.model).arch
        opts["replica"] = True
        path = form.replica(t.model, t.format)
        held, read = form.sizes(path, t.dtype, arch)
        return ResolvedTarget(t, path, opts, held, read, None)
    if t.model not in BUNDLED:
        return _resolve_local(t, opts)
    path = form.embedded(t.model)
    held, read = form.sizes(path, t.dtype)
    return ResolvedTarget(t, path, opts, held, read, HF.embedded(t.model))

def _resolve_local(t: SpeedTarget, opts: dict) -> ResolvedTarget:
    """A real model given by local path, in the engine's form (a .gguf file for llama.cpp, an
    HF folder for transformers and vLLM, an ONNX folder for onnxruntime-genai)."""
    p = Path(t.model).expanduser()
    if not p.exists():
        raise StudyError(
            f"model {t.model!r}: not the embedded model and not an existing local path. Give a "
            ".gguf file, an HF safetensors folder or an ONNX (genai_config.json) folder, or use "
            "replica: true for a registered architecture (no weights needed).")
    p = p.resolve()
    opts["model_name"] = p.name
    form = registry.get(t.engine).form
    form.check_local(p, t.engine)
    held, read = form.sizes(p, t.dtype)
    return ResolvedTarget(t, p, opts, held, read, form.tokenizer_dir(p))

def check_targets_fit(targets: list[ResolvedTarget]) -> None:
    for t in targets:
        check_fits(t.name, t.weights_bytes)

def preflight(params: SpeedParams) -> None:
    """Everything that can be refused before a model is loaded or an artifact is written."""
    gpus = None
    for t in params.targets:
        ctx = RunContext(device=params.device, dtype=t.dtype, replica=t.replica)
        lay = registry.get(t.engine).options_for(ctx, t.options).layout()
        held = None  # a replica's weights, in bytes: known before anything loads
        if t.replica:
            try:
                b = registry.get(t.engine).form.replica_bytes_per_param(t.dtype)
            except StudyError as e:
                raise StudyError(f"{t.name()}: {e}") from None
            held = int(get_model(t.model).arch.param_count() * b)
        if lay.gpus or lay.tensor_parallel_size * lay.pipeline_parallel_size > 1:
            gpus = visible_gpus() if gpus is None else gpus
            check_layout(t.name(), lay, held, gpus)
        if params.device == "cuda":
            continue  # weights live in GPU memory: the layout check above
        if t.replica:
            check_fits(f"{t.name()} (replica)", held)
        elif t.model not in BUNDLED and not Path(t.model).expanduser().exists():
            raise StudyError(
                f"model {t.model!r}: real (non-replica) targets need a bundled model "
                f"({', '.join(BUNDLED)}) or a local "
                "path (.gguf file, HF folder, ONNX folder); set replica: true to time a registered "
                f"architecture with random weights (registered: {', '.join(sorted(REGISTRY))})")
    if params.prompt_tokens + params.output_tokens > 4096:
        raise StudyError("prompt_tokens + output_tokens must be ≤ 4096 (the engines' context here)")

def synthetic_prompt(n_tokens: int, target: ResolvedTarget, seed: int = 0) -> list[int]:
    """Exactly n prompt token ids: chat-templated prose for real models, random ids for replicas."""
    if target.tokenizer_dir is not None:
        tok = tokenizer(target.tokenizer_dir)
        text = ("长江是中国最长的河流，全长约六千三百公里。The Yangtze is the longest river in China. "
                * (n_tokens // 8 + 8))
        if not tok.chat_template:  # a base model: the prose as plain text (with its BOS)
            return [int(i) for i in tok.encode(text)[:n_tokens]]
        msgs = [{"role": "user", "content": text}]
        ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        tail = tok.apply_chat_template([{"role": "user", "content": ""}],
                                       add_generation_prompt=True, tokenize=True)
        tail = list(tail["input_ids"] if hasattr(tail, "keys") else tail)[-3:]
        return [int(i) for i in ids[: n_tokens - len(tail)] + tail]
    vocab = resolve_model(target.spec.model).arch.vocab_size  # a key or a local path
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.integers(100, min(vocab, 30000), n_tokens)]

def salted(prompt: list[int], salt: int, position: int = 4) -> list[int]:
    """The same prompt with one early token changed per request, so no engine can serve it from a
    prefix cache (llama_cpp.server reuses the longest common prefix of consecutive requests; we
    measure a full prefill everywhere). The length is unchanged."""
    out = list(prompt)
    out[min(position, len(out) - 1)] = 1000 + salt % 997
    return out

def run_context(target: ResolvedTarget, params: SpeedParams, *, same_process: bool = False
                ) -> RunContext:
    """What the speed section asks of every engine: context for prompt + output, the section's
    threads and device, the target's dtype, replica and compile settings, its top concurrency."""
    return RunContext(
        device=params.device, n_ctx=params.prompt_tokens + params.output_tokens + 64,
        threads=params.threads, dtype=target.spec.dtype, replica=target.spec.replica,
        max_concurrency=max(target.spec.concurrency or params.concurrency),
        compile=target.spec.compile, same_process=same_process)

def engine_options(target: ResolvedTarget, params: SpeedParams, *, same_process: bool = False):
    """The engine's typed options for a target (run context, then the target's `options`)."""
    return registry.get(target.spec.engine).options_for(
        run_context(target, params, same_process=same_process), target.spec.options)

def target_table(resolved: list[ResolvedTarget], bandwidth_bytes_s: float) -> list[dict]:
    """What each target holds and reads per token, and its roofline on this machine."""
    return [{"target": t.name, "weights GB": t.weights_bytes / 1e9,
             "read per token GB": t.bytes_read_per_token / 1e9,
             "roofline tok/s": metrics.roofline_tok_s(bandwidth_bytes_s, t.bytes_read_per_token)}
            for t in resolved]
