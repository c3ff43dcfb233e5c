"""Context length: TTFT, decode tok/s and KV-cache memory against prompt length, one engine load.

The articles deploy Qwen2.5-7B with a 128K context ("supports 128K", and a 10,000-character white
paper summarized in under 15 s). Its model card reaches 128K with YaRN, by adding to config.json
`"rope_scaling": {"factor": 4.0, "original_max_position_embeddings": 32768, "type": "yarn"}`;
vLLM reads it from the config (`config_overrides` of the vLLM engine writes it into a derived copy
of the model folder). YaRN changes the rotary frequencies, not the kernels, so one engine loaded
with it serves the whole sweep, short prompts included.

KV-cache bytes are computed from the architecture (2 × layers × KV heads × head size × 2 bytes per
token, :meth:`Architecture.kv_bytes_per_token`) for prompt + output tokens: vLLM allocates its
whole KV pool when it loads, so the process memory does not show what one request uses. The
engine's pool size (tokens it can hold) is recorded beside it. Energy is metered over the whole
request, so J per output token here includes the prompt's prefill.

Run: `python -m slmstudy.speed.context --params params/gpu/02_context.yaml` (scripts/gpu/speed.sh
context). One record per request in `<runs>/<run_id>/02_speed/context.jsonl`; a rerun skips
records already there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ParamsError, StudyError, validation_problems

CONTEXT_FILE = "context.jsonl"


class ContextParams(BaseModel):
    """params/<scenario>/02_context.yaml: one target, many prompt lengths."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    device: str = "cuda"
    model: str = Field(description="registry key (replica) or local model path")
    engine: str = "vllm"
    dtype: str = "bfloat16"
    replica: bool = True
    label: str | None = None
    prompt_tokens: list[int] = Field(description="prompt lengths, ascending")
    output_tokens: int = Field(128, gt=1)
    repetitions: int = Field(2, ge=1)
    warmup: int = Field(1, ge=0, description="full requests at the shortest length first")
    max_model_len: int = Field(gt=0, description="context the engine is loaded with")
    options: dict = Field(default_factory=dict, description="engine options over the defaults")

    @field_validator("prompt_tokens")
    @classmethod
    def _lengths(cls, v):
        if not v or any(n < 1 for n in v) or v != sorted(v):
            raise ValueError(f"prompt_tokens must be positive and ascending, got {v}")
        return v

    @model_validator(mode="after")
    def _fits(self):
        need = self.prompt_tokens[-1] + self.output_tokens
        if need > self.max_model_len:
            raise ValueError(f"the longest prompt ({self.prompt_tokens[-1]}) + output_tokens "
                             f"({self.output_tokens}) = {need} exceeds max_model_len "
                             f"({self.max_model_len}); raise max_model_len or shorten the prompt")
        from ..params import _engines_ok, _options_ok

        _engines_ok([self.engine])
        _options_ok(self.engine, self.options)
        return self

    def target_name(self) -> str:
        kind = "replica" if self.replica else "real"
        return self.label or f"{self.model}/{self.engine}/{self.dtype}/{kind}"


def load_context_params(path: str | Path) -> ContextParams:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"context params {path} not found (e.g. params/gpu/02_context.yaml)")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return ContextParams.model_validate(raw)
    except ValidationError as e:
        lines = validation_problems(e, "key", f" (allowed: {sorted(ContextParams.model_fields)})")
        raise ParamsError(f"invalid parameters in {path}:\n  " + "\n  ".join(lines)) from None


def kv_cache_bytes(arch, tokens: int, bytes_per_elem: int = 2) -> int:
    """KV-cache bytes of one sequence of `tokens` tokens (keys and values, every layer)."""
    return arch.kv_bytes_per_token(bytes_per_elem) * tokens


def _records(folder: Path) -> list[dict]:
    f = folder / CONTEXT_FILE
    if not f.is_file():
        return []
    return [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]


def load_context(folder: Path) -> list[dict]:
    """The context-sweep records of a results folder (`<snapshot>/02_speed`)."""
    return _records(Path(folder))


def run_context_sweep(p: ContextParams, out_dir: Path, log=print, stop_at: float | None = None
                      ) -> list[dict]:
    """Load the target once with `max_model_len`, then `repetitions` requests per prompt length,
    each timed by the study's clock (with the engine's own in `engine_timings`) and metered by
    NVML. Lengths are skipped, not started, once `stop_at` (time.time()) has passed."""
    from ..backends import registry
    from ..backends.base import GenRequest, RunContext
    from ..models import get_model
    from ..params import SpeedTarget
    from .energy import EnergyMeter, open_nvml
    from .targets import resolve_target, salted, synthetic_prompt

    out_dir.mkdir(parents=True, exist_ok=True)
    name = p.target_name()
    done = {r["key"] for r in _records(out_dir)}
    todo = [(n, rep) for n in p.prompt_tokens for rep in range(p.repetitions)
            if f"{name}/ctx{n}/r{rep}" not in done]
    if not todo:
        return _records(out_dir)
    if stop_at is not None and time.time() > stop_at:
        log(f"{name}: not loaded (the time limit of this call has passed)")
        return _records(out_dir)
    spec = SpeedTarget(model=p.model, engine=p.engine, dtype=p.dtype, replica=p.replica,
                       label=p.label, options=p.options)
    target = resolve_target(spec)
    ctx = RunContext(device=p.device, n_ctx=p.max_model_len, dtype=p.dtype, replica=p.replica)
    opts = registry.get(p.engine).options_for(ctx, p.options)
    arch = get_model(p.model).arch
    nvml, why = open_nvml()
    backend = registry.make_backend(p.engine, target.path, options=opts, **target.backend_kw)
    load_s = backend.load()
    log(f"{name}: loaded in {load_s:.0f} s (max_model_len {p.max_model_len})")
    try:
        config = backend.resolved_config() if hasattr(backend, "resolved_config") else {}
        base = synthetic_prompt(p.prompt_tokens[-1], target)
        for _ in range(p.warmup):
            backend.generate_one(GenRequest(prompt_ids=base[:p.prompt_tokens[0]],
                                            max_tokens=p.output_tokens, force_length=True,
                                            request_id="warmup"))
        for n, rep in todo:
            if stop_at is not None and time.time() > stop_at:
                log(f"{name}: stopping before {n} tokens (time limit of this call)")
                break
            req = GenRequest(prompt_ids=salted(base[:n], 101 * rep + n), max_tokens=p.output_tokens,
                             force_length=True, request_id=f"{name}/ctx{n}/r{rep}")
            meter = EnergyMeter(nvml, why_none=why)
            with meter:
                g = backend.generate_one(req)
            if g.n_tokens != p.output_tokens:
                raise StudyError(f"{name}: asked for {p.output_tokens} tokens at {n}, got "
                                 f"{g.n_tokens}")
            rec = {"key": f"{name}/ctx{n}/r{rep}", "target": name, "engine": p.engine,
                   "model": p.model, "prompt_tokens": n, "rep": rep,
                   "output_tokens": g.n_tokens, "ttft_s": g.ttft_s, "e2e_s": g.e2e_s,
                   "decode_tok_s": g.decode_tok_s, "engine_timings": g.engine_timings,
                   "kv_cache_bytes": kv_cache_bytes(arch, n + g.n_tokens),
                   "kv_cache_bytes_basis": "2 × layers × kv_heads × head_dim × 2 B × tokens",
                   "engine_config": config, "max_model_len": p.max_model_len,
                   "options": p.options, "load_s": load_s, "energy": meter.result(g.n_tokens)}
            with open(out_dir / CONTEXT_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            log(f"{name}: prompt {n:>6}  ttft {g.ttft_s * 1e3:9.1f} ms  decode "
                f"{g.decode_tok_s:7.1f} tok/s  KV {rec['kv_cache_bytes'] / 2**30:6.2f} GiB")
    finally:
        backend.close()
    return _records(out_dir)


def context_table(records: list[dict]) -> list[dict]:
    """One row per (target, prompt length): median TTFT, decode tok/s, KV GiB, J/token."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["target"], r["prompt_tokens"]), []).append(r)
    rows = []
    for (target, n), rs in sorted(groups.items()):
        jpt = [r["energy"]["j_per_token"] for r in rs if (r.get("energy") or {}).get("j_per_token")]
        eng = [r["engine_timings"]["engine_ttft_s"] for r in rs
               if (r.get("engine_timings") or {}).get("engine_ttft_s") is not None]
        rows.append({"target": target, "prompt_tokens": n, "n_requests": len(rs),
                     "ttft_s": float(np.median([r["ttft_s"] for r in rs])),
                     "engine_ttft_s": float(np.median(eng)) if eng else None,
                     "prefill_tok_s": n / float(np.median([r["ttft_s"] for r in rs])),
                     "decode_tok_s": float(np.median([r["decode_tok_s"] for r in rs])),
                     "kv_cache_gib": rs[0]["kv_cache_bytes"] / 2**30,
                     "j_per_output_token": float(np.median(jpt)) if jpt else None})
    return rows


def context_figure(rows: list[dict], title: str = "Context length"):
    """TTFT (log-log) and decode tok/s against prompt length, KV-cache GiB on a second axis."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for target in sorted({r["target"] for r in rows}):
        rs = sorted((r for r in rows if r["target"] == target), key=lambda r: r["prompt_tokens"])
        x = [r["prompt_tokens"] for r in rs]
        a1.plot(x, [r["ttft_s"] for r in rs], "o-", label=target)
        a2.plot(x, [r["decode_tok_s"] for r in rs], "o-", label=target)
        kv = a2.twinx()
        kv.plot(x, [r["kv_cache_gib"] for r in rs], "s:", color="grey", label="KV cache (GiB)")
        kv.set_ylabel("KV cache of the request, GiB (computed)")
    for a in (a1, a2):
        a.set_xscale("log", base=2)
        a.set_xlabel("prompt tokens")
    a1.set_yscale("log")
    a1.set_ylabel("time to first token, s")
    a2.set_ylabel("decode tok/s (batch 1)")
    a1.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _main(argv=None) -> None:
    import argparse

    from ..provenance import provenance

    ap = argparse.ArgumentParser(description="context-length sweep of one target")
    ap.add_argument("--params", required=True, help="e.g. params/gpu/02_context.yaml")
    ap.add_argument("--runs-root", default=None, help="results root (default build/runs)")
    ap.add_argument("--stop-after", type=float, default=None,
                    help="start no new prompt length after this many seconds")
    a = ap.parse_args(argv)
    p = load_context_params(a.params)
    from ..paths import runs_dir

    root = Path(a.runs_root) if a.runs_root else runs_dir()
    (root / p.run_id).mkdir(parents=True, exist_ok=True)
    (root / p.run_id / "provenance_context.json").write_text(
        json.dumps(provenance({"params_02_context": p.model_dump()}), indent=2, default=str))
    stop = time.time() + a.stop_after if a.stop_after else None
    rows = context_table(run_context_sweep(p, root / p.run_id / "02_speed", stop_at=stop))
    for r in rows:
        print(f"{r['target']:40s} {r['prompt_tokens']:>7}  ttft {r['ttft_s'] * 1e3:9.1f} ms  "
              f"decode {r['decode_tok_s']:7.1f} tok/s  KV {r['kv_cache_gib']:6.2f} GiB")


if __name__ == "__main__":
    _main()
