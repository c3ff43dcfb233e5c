"""Running the speed section: batch-1 and concurrent requests in-process and over HTTP, one
record per request appended as it completes (a rerun skips records already there).

Beside `samples.jsonl`, in-process runs write `energy.jsonl` (one NVML reading per timed batch
where a GPU is there, :mod:`slmstudy.speed.energy`), `engine_config.jsonl` (each target's engine
options and what the engine resolved them to) and, for engines with their own benchmark,
`reference_latency.jsonl` (vLLM: `vllm bench latency`'s measurement on the same loaded engine)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import metrics
from ..backends import registry
from ..backends.base import GenRequest
from ..errors import StudyError
from ..layout import record_fields, visible_gpus
from ..params import SpeedParams
from ..resources import PeakRSS
from ..results import SectionResults
from ..schemas import SpeedRecord
from .bandwidth import cached_bandwidth
from .energy import EnergyMeter, append_energy, energy_keys, open_nvml
from .quantized import with_quantized_sizes
from .summary import bench_path, section_summary
from .targets import ResolvedTarget, engine_options, preflight, resolve_target, run_context, salted, synthetic_prompt


def _record(g, *, key, target: ResolvedTarget, mode, concurrency, rep, idx, batch_t_send,
            peak_rss, load_s, placement: dict):
    r = g.record(**placement, key=f"{key}/{idx}", target=target.name, engine=target.spec.engine,
                 model=target.spec.model, format=target.spec.format, dtype=target.spec.dtype,
                 mode=mode, concurrency=concurrency, rep=rep, request_index=idx,
                 batch_t_send_ns=batch_t_send, peak_rss_bytes=peak_rss, load_s=load_s,
                 weights_bytes=target.weights_bytes,
                 bytes_read_per_token=target.bytes_read_per_token,
                 itl_s=metrics.itl_s(g.token_times_ns))
    r.pop("prompt_ids", None)  # the prompt is the same for every record of a target
    return SpeedRecord.model_validate(r)

def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")


def _keys(path: Path, field: str = "target") -> set[str]:
    if not path.is_file():
        return set()
    return {json.loads(x).get(field) for x in path.read_text().splitlines() if x.strip()}


def run_inprocess(target: ResolvedTarget, params: SpeedParams, results: SectionResults,
                  progress=None) -> None:
    """Load once, warm up, then repetitions × concurrency levels; records appended as they finish.
    Each timed batch is metered (energy.jsonl) where NVML sees a GPU; the engine's configuration
    and, where it has one, its own latency benchmark are recorded once per target."""
    target = with_quantized_sizes(target)
    done = results.done_keys()
    levels = target.spec.concurrency or params.concurrency
    todo = [(c, rep) for c in levels for rep in range(params.repetitions)
            if not all(f"{target.name}/inproc/c{c}/r{rep}/{i}" in done for i in range(c))]
    ref_file = results.dir / "reference_latency.jsonl"
    if not todo:
        return
    opts = engine_options(target, params)
    prompt = synthetic_prompt(params.prompt_tokens, target)
    nvml, why = open_nvml() if params.device == "cuda" else (None, "not a CUDA run")
    metered = energy_keys(results.dir)
    with PeakRSS() as mem:
        backend = registry.make_backend(target.spec.engine, target.path, options=opts,
                                        **target.backend_kw)
        load_s = backend.load()
        try:
            resolved = getattr(backend, "resolved_config", None)
            _append_jsonl(results.dir / "engine_config.jsonl", {
                "target": target.name, "engine": target.spec.engine, "load_s": load_s,
                "options": opts.model_dump(), "resolved": resolved() if resolved else None,
                "weights_bytes": target.weights_bytes,
                "bytes_read_per_token": target.bytes_read_per_token})
            for _ in range(params.warmup):  # full length: compiled engines build their graphs
                backend.generate_one(GenRequest(prompt_ids=prompt, max_tokens=params.output_tokens,
                                                force_length=True, request_id="warmup"))
            for c, rep in todo:
                key = f"{target.name}/inproc/c{c}/r{rep}"
                reqs = [GenRequest(prompt_ids=salted(prompt, 31 * rep + i + 7 * c),
                                   max_tokens=params.output_tokens, force_length=True,
                                   request_id=f"{key}/{i}") for i in range(c)]
                meter = EnergyMeter(nvml, interval_s=0.02, why_none=why)
                t0 = time.perf_counter_ns()
                with meter:
                    gens = backend.generate(reqs)
                for i, g in enumerate(gens):
                    results.append(_record(g, key=key, target=target, mode="inproc",
                                           concurrency=c, rep=rep, idx=i, batch_t_send=t0,
                                           peak_rss=mem.sample() and mem.peak_bytes,
                                           load_s=load_s, placement=backend.placement))
                if nvml is not None and key not in metered:
                    append_energy(results.dir, {
                        "key": key, "target": target.name, "engine": target.spec.engine,
                        "concurrency": c, "rep": rep, "device": nvml.name,
                        **meter.result(sum(g.n_tokens for g in gens))})
                if progress:
                    progress.update(1)
            bench = getattr(backend, "reference_latency", None)
            if bench is not None and target.name not in _keys(ref_file):
                ref = bench(salted(prompt, 999), output_len=1)
                _append_jsonl(ref_file, {"target": target.name, **ref})
        finally:
            backend.close()

def run_http(target: ResolvedTarget, params: SpeedParams, results: SectionResults,
             log_dir: Path, progress=None) -> None:
    """The same prompt over the engine's OpenAI-compatible server, c concurrent streams."""
    spec = registry.get(target.spec.engine)
    done = results.done_keys()
    todo = [(c, rep) for c in params.http_concurrency for rep in range(params.repetitions)
            if not all(f"{target.name}/http/c{c}/r{rep}/{i}" in done for i in range(c))]
    if not todo:
        return
    if engine_options(target, params).layout().gpus > 1:
        print(f"skipped over HTTP: {target.name} — its layout spans several GPUs, and the servers "
              "here start on one (measured in-process instead)")
        return
    srv = spec.serve(target.path, run_context(target, params), log_dir=log_dir,
                     model_name=target.spec.model)
    if target.spec.replica and not srv.token_id_prompts:
        print(f"skipped over HTTP: {target.name} — {srv.name} takes text prompts only and a "
              "replica has no vocabulary (measured in-process instead)")
        return
    prompt = synthetic_prompt(params.prompt_tokens, target)
    # the servers start from the run context alone (no target options): their layout is the default
    layout = spec.options_for(run_context(target, params), {}).layout()
    placement = record_fields(layout, visible_gpus() if layout.gpus else [])
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
                              load_s=srv.ready_s, placement=placement)
                results.append(rec)
            if progress:
                progress.update(1)
        bench_file = bench_path(results, target.name)
        if (srv.has_bench_client and params.vllm_bench and target.tokenizer_dir is not None
                and not bench_file.is_file()):
            # the server's own benchmark client on the same server, same lengths, concurrency 1
            bench = srv.bench_serve(target.tokenizer_dir, params.prompt_tokens,
                                    params.output_tokens, max(params.repetitions, 3), 1,
                                    results.dir / "vllm_bench")
            bench_file.write_text(json.dumps(bench, indent=2))

def run_section(params: SpeedParams, results: SectionResults, engines: set[str] | None = None,
                http: bool = True, log=print, models: set[str] | None = None,
                targets: set[str] | None = None, stop_at: float | None = None,
                keep_going: bool = False) -> dict:
    """The whole section without a notebook (same calls, same files): for machines without
    Jupyter, e.g. the lent GPU. `engines`, `models` and `targets` (target names) limit which
    targets run in this call; no target is started once `stop_at` (time.time()) has passed (a
    device call has a time limit; a later call resumes); with `keep_going`, a target that fails
    is logged to errors.jsonl and the next one runs. The summary is always derived from every
    record in the results folder."""
    from tqdm import tqdm

    known = {s.name() for s in params.targets}
    if targets and not targets <= known:
        raise StudyError(f"no target named {sorted(targets - known)} in the params; targets: "
                         f"{sorted(known)}")
    chosen = [spec for spec in params.targets
              if not (engines and spec.engine not in engines)
              and not (models and spec.model not in models)
              and not (targets and spec.name() not in targets)]
    # only the targets this call runs: a two-GPU target does not stop a one-GPU call
    preflight(params.model_copy(update={"targets": chosen}))
    bw = cached_bandwidth(results.dir / "bandwidth.json", params)
    log(f"bandwidth {bw['bandwidth_bytes_s'] / 1e9:.0f} GB/s on {bw.get('device')}")
    for spec in chosen:
        if stop_at is not None and time.time() > stop_at:
            log(f"{spec.name()}: not started (the time limit of this call has passed)")
            continue
        t0 = time.perf_counter()
        target = resolve_target(spec)
        log(f"{target.name}: artifact ready in {time.perf_counter() - t0:.0f} s")
        bar = tqdm(total=len(spec.concurrency or params.concurrency) * params.repetitions,
                   desc=target.name)
        try:
            run_inprocess(target, params, results, progress=bar)
        except Exception as e:  # noqa: BLE001 — one target's failure must not cost the others
            if not keep_going:
                raise
            import traceback

            log(f"{target.name}: FAILED — {type(e).__name__}: {e}")
            _append_jsonl(results.dir / "errors.jsonl", {
                "target": target.name, "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc()[-4000:]})
        bar.close()
        if http and spec.engine in params.http_engines:
            run_http(target, params, results, log_dir=results.dir / "logs")
        log(f"{target.name}: done in {time.perf_counter() - t0:.0f} s")
    summary = section_summary(results, params, bw)
    results.write_summary(summary)
    return summary.model_dump()

def _main(argv=None) -> None:
    import argparse

    from ..params import load_params
    from ..provenance import provenance
    from ..results import write_provenance

    ap = argparse.ArgumentParser(description="run the speed section headless (same records as "
                                             "notebooks/02_speed)")
    ap.add_argument("--params", required=True, help="a params YAML (e.g. params/gpu/02_speed.yaml)")
    ap.add_argument("--runs-root", default=None, help="results root (default build/runs)")
    ap.add_argument("--engines", default="", help="comma-separated subset of engines to run now")
    ap.add_argument("--models", default="", help="comma-separated subset of model keys")
    ap.add_argument("--targets", default="", help="comma-separated target names (as in records)")
    ap.add_argument("--stop-after", type=float, default=None,
                    help="start no new target after this many seconds (a later call resumes)")
    ap.add_argument("--keep-going", action="store_true",
                    help="log a failing target to errors.jsonl and run the next")
    ap.add_argument("--no-http", action="store_true")
    a = ap.parse_args(argv)
    p = load_params("02_speed", a.params)
    root = Path(a.runs_root) if a.runs_root else None
    results = SectionResults(p.run_id, "02_speed", root=root)
    write_provenance(p.run_id, provenance({"params_02_speed": p.model_dump()}), root=root)
    engines = set(filter(None, a.engines.split(","))) or None
    models = set(filter(None, a.models.split(","))) or None
    targets = set(filter(None, a.targets.split(","))) or None
    stop_at = time.time() + a.stop_after if a.stop_after else None
    summary = run_section(p, results, engines=engines, http=not a.no_http, models=models,
                          targets=targets, stop_at=stop_at, keep_going=a.keep_going)
    for r in summary["rows"]:
        if r["concurrency"] == 1:
            print(f"{r['target']:55s} {r['mode']:6s} ttft {r['ttft_s'] * 1e3:8.1f} ms  decode "
                  f"{r['decode_tok_s']:8.1f} tok/s  roofline {r.get('roofline_fraction') or 0:.2f}")
