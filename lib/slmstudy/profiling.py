"""Where batch-1 decode time goes on a GPU: kernel time by kind vs wall time vs the roofline.

A decode step at batch 1 should take `bytes read per token ÷ bandwidth` (the roofline). The
measured step is longer; this module splits the measured wall time per token into

- matmul kernels (the weight reads), further split into the roofline time of the weights and
  what those kernels take beyond it (kernel efficiency below the measured bandwidth),
- every other kernel (attention, norms, RoPE, activation quantization, sampling, copies),
- GPU idle time between kernels (host work: Python, scheduling, launches, synchronisation).

Method: the CUDA kernels of a forced-length generation are recorded with the PyTorch profiler
(CUPTI records every kernel of the process, so it also sees llama.cpp's and vLLM's own kernels),
once for N+1 tokens and once for 1 token (prefill only); their difference divided by N is the
decode step's kernel time. The wall time per token comes from an unprofiled generation
(tracing adds host overhead of its own). Run with `python -m slmstudy.profiling` on a GPU
machine: `scripts/gpu/speed.sh profile` (scripts/gpu/README.md).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from .errors import StudyError

# first match wins; names are lower-cased kernel names as CUPTI reports them
CATEGORIES: list[tuple[str, re.Pattern]] = [
    ("attention", re.compile(r"flash|fattn|fmha|attn|attention|softmax|soft_max|paged|sdpa")),
    ("quantize activations", re.compile(r"quantize_q8|quantize_mmq|quantize_row")),
    ("matmul", re.compile(r"gemv|gemm|mul_mat|matmul|nvjet|xmma|cutlass|splitk|dot_kernel|"
                          r"cublas|mmvq|mmvf|mmq|_mm_|sm90_|sm80_")),
    ("norm", re.compile(r"norm|rms|rsqrt")),
    ("rope", re.compile(r"rope|rotary")),
    ("sampling / logits", re.compile(r"argmax|topk|top_k|sort|sample|softcap|cumsum|reduce_max")),
    ("copy / memset", re.compile(r"^memcpy|^memset|copy|cpy|concat|cat_|index|gather|scatter")),
]
OTHER = "elementwise / other"


def categorize(name: str) -> str:
    n = name.lower()
    for cat, rx in CATEGORIES:
        if rx.search(n):
            return cat
    return OTHER


def kernels_from_trace(trace: dict) -> list[tuple[str, float]]:
    """(name, duration µs) of every GPU kernel / memcpy / memset in a Chrome trace (as written
    by torch.profiler's export_chrome_trace)."""
    out = []
    for e in trace.get("traceEvents", []):
        if e.get("ph") != "X":
            continue
        cat = str(e.get("cat", "")).lower()
        if cat in ("kernel", "gpu_memcpy", "gpu_memset"):
            name = e.get("name", "?")
            if cat != "kernel" and not name.lower().startswith(("memcpy", "memset")):
                name = f"{cat.split('_')[-1]} {name}"
            out.append((name, float(e.get("dur", 0.0))))
    return out


def aggregate(kernels: list[tuple[str, float]]) -> dict[str, dict]:
    """name → {calls, us, category}."""
    agg: dict[str, dict] = {}
    for name, dur in kernels:
        a = agg.setdefault(name, {"calls": 0, "us": 0.0, "category": categorize(name)})
        a["calls"] += 1
        a["us"] += dur
    return agg


def decode_step_breakdown(full: dict[str, dict], prefill: dict[str, dict], n_decode: int,
                          wall_ms_per_token: float, bytes_read_per_token: int,
                          bandwidth_bytes_s: float) -> dict:
    """Per-token decode breakdown from two aggregated kernel lists (N+1 tokens, 1 token)."""
    if n_decode < 1:
        raise StudyError(f"n_decode must be ≥ 1, got {n_decode}")
    per_kernel = []
    for name in set(full) | set(prefill):
        f, p = full.get(name, {}), prefill.get(name, {})
        us = (f.get("us", 0.0) - p.get("us", 0.0)) / n_decode
        calls = (f.get("calls", 0) - p.get("calls", 0)) / n_decode
        if calls > 0 or us > 0:
            per_kernel.append({"name": name, "category": categorize(name),
                               "ms_per_token": us / 1e3, "calls_per_token": calls})
    per_kernel.sort(key=lambda k: -k["ms_per_token"])
    cats: dict[str, float] = {}
    for k in per_kernel:
        cats[k["category"]] = cats.get(k["category"], 0.0) + max(k["ms_per_token"], 0.0)
    kernel_ms = sum(cats.values())
    roofline_ms = bytes_read_per_token / bandwidth_bytes_s * 1e3
    matmul_ms = cats.get("matmul", 0.0)
    return {
        "n_decode": n_decode,
        "wall_ms_per_token": wall_ms_per_token,
        "decode_tok_s": 1e3 / wall_ms_per_token,
        "roofline_ms_per_token": roofline_ms,
        "roofline_fraction": roofline_ms / wall_ms_per_token,
        "kernel_ms_per_token": kernel_ms,
        "idle_ms_per_token": wall_ms_per_token - kernel_ms,
        "gpu_busy_fraction": kernel_ms / wall_ms_per_token,
        "category_ms_per_token": dict(sorted(cats.items(), key=lambda kv: -kv[1])),
        "kernels_per_token": sum(max(k["calls_per_token"], 0) for k in per_kernel),
        "matmul_ms_per_token": matmul_ms,
        # weight bytes over the matmul kernels' own time: how close the kernels alone get
        "matmul_achieved_bytes_s": bytes_read_per_token / (matmul_ms / 1e3) if matmul_ms else None,
        "matmul_fraction_of_bandwidth": (roofline_ms / matmul_ms) if matmul_ms else None,
        "top_kernels": per_kernel[:15],
    }


def _profiled_kernels(backend, req, trace_path: Path) -> dict[str, dict]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        backend.generate_one(req)
        torch.cuda.synchronize()
    prof.export_chrome_trace(str(trace_path))
    agg = aggregate(kernels_from_trace(json.loads(trace_path.read_text())))
    trace_path.unlink()  # tens of MB; the aggregate is what is kept
    return agg


def profile_target(spec, params, *, n_decode: int = 64, bandwidth_bytes_s: float,
                   work_dir: Path, reps: int = 3) -> dict:
    """Load one speed target on the GPU, time an unprofiled generation of n_decode+1 tokens
    (median of `reps`), then record kernels for n_decode+1 and for 1 token."""
    import statistics

    import torch

    from .backends import registry
    from .backends.base import GenRequest
    from .speed import engine_options, resolve_target, salted, synthetic_prompt

    if not torch.cuda.is_available():
        raise StudyError("profiling needs a CUDA GPU (torch.cuda.is_available() is False); run it "
                         "on the GPU machine: `scripts/gpu/speed.sh profile`")
    from .speed.quantized import with_quantized_sizes

    target = with_quantized_sizes(resolve_target(spec))  # AWQ / FP8: their own bytes per token
    # every engine thread in this process, where the profiler sees its kernels (vLLM's core)
    opts = engine_options(target, params, same_process=True)
    prompt = synthetic_prompt(params.prompt_tokens, target)
    n = n_decode + 1
    work_dir.mkdir(parents=True, exist_ok=True)
    backend = registry.make_backend(spec.engine, target.path, options=opts, **target.backend_kw)
    t0 = time.perf_counter()
    backend.load()
    try:
        # warm-up at both lengths used below: compiled engines build graphs per shape
        backend.generate_one(GenRequest(prompt_ids=prompt, max_tokens=n,
                                        force_length=True, request_id="warmup"))
        backend.generate_one(GenRequest(prompt_ids=salted(prompt, 1), max_tokens=1,
                                        force_length=True, request_id="warmup-1"))
        walls = []
        for rep in range(reps):
            g = backend.generate_one(GenRequest(prompt_ids=salted(prompt, 10 + rep), max_tokens=n,
                                                force_length=True))
            if g.n_tokens != n:
                raise StudyError(f"{target.name}: asked for {n} tokens, got {g.n_tokens}")
            t = g.token_times_ns
            walls.append((t[-1] - t[0]) / 1e6 / (n - 1))
        wall = statistics.median(walls)
        full = _profiled_kernels(backend, GenRequest(prompt_ids=salted(prompt, 20), max_tokens=n,
                                                     force_length=True), work_dir / "full.json")
        pre = _profiled_kernels(backend, GenRequest(prompt_ids=salted(prompt, 21), max_tokens=1,
                                                    force_length=True), work_dir / "prefill.json")
    finally:
        backend.close()
    if not full:
        raise StudyError(f"{target.name}: the profiler recorded no GPU kernels")
    out = decode_step_breakdown(full, pre, n_decode, wall, target.bytes_read_per_token,
                                bandwidth_bytes_s)
    out.update(target=target.name, engine=spec.engine, model=spec.model,
               format=spec.format, dtype=spec.dtype, compile=bool(spec.compile),
               label="replica" if spec.replica else "real", wall_ms_samples=walls,
               bytes_read_per_token=target.bytes_read_per_token,
               bandwidth_bytes_s=bandwidth_bytes_s, elapsed_s=time.perf_counter() - t0)
    return out


def _main(argv=None) -> None:
    import argparse

    from .params import load_params
    from .speed import cached_bandwidth

    ap = argparse.ArgumentParser(description="per-token decode breakdown of speed targets on a GPU")
    ap.add_argument("--params", required=True, help="a speed params YAML (params/gpu/02_speed.yaml)")
    ap.add_argument("--out", required=True, help="JSONL file; one line per target, appended")
    ap.add_argument("--engines", default="", help="comma-separated engines to profile now")
    ap.add_argument("--models", default="", help="comma-separated model keys (default: all)")
    ap.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    ap.add_argument("--n-decode", type=int, default=0,
                    help="decode steps profiled (default: the section's output_tokens - 1)")
    a = ap.parse_args(argv)
    p = load_params("02_speed", a.params)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.is_file():
        done = {json.loads(x)["target"] for x in out.read_text().splitlines() if x.strip()}
    bw = cached_bandwidth(out.parent / "bandwidth.json", p)
    engines = set(filter(None, a.engines.split(",")))
    models = set(filter(None, a.models.split(",")))
    names = set(filter(None, a.targets.split(",")))
    for spec in p.targets:
        if (engines and spec.engine not in engines) or (models and spec.model not in models):
            continue
        if names and spec.name() not in names:
            continue
        if spec.name() in done:
            print(f"{spec.name()}: already profiled")
            continue
        r = profile_target(spec, p, n_decode=a.n_decode or p.output_tokens - 1,
                           bandwidth_bytes_s=bw["bandwidth_bytes_s"], work_dir=out.parent / "traces")
        with out.open("a") as f:
            f.write(json.dumps(r) + "\n")
        cats = ", ".join(f"{k} {v:.2f}" for k, v in r["category_ms_per_token"].items())
        print(f"{r['target']}: wall {r['wall_ms_per_token']:.2f} ms/token, kernels "
              f"{r['kernel_ms_per_token']:.2f} (idle {r['idle_ms_per_token']:.2f}), roofline "
              f"{r['roofline_ms_per_token']:.2f}; {cats}; {r['kernels_per_token']:.0f} kernels/token",
              flush=True)


if __name__ == "__main__":
    _main()


# ---------------------------------------------------------------- reading a committed profile


def load_profile(folder: Path) -> list[dict]:
    """Profile rows of a committed snapshot (`<snapshot>/profile/decode_profile.jsonl`), or []."""
    f = Path(folder) / "profile" / "decode_profile.jsonl"
    if not f.is_file():
        return []
    return [json.loads(x) for x in f.read_text().splitlines() if x.strip()]


def breakdown_rows(profile: list[dict]) -> list[dict]:
    """One row per target: wall ms/token split into roofline, matmul beyond roofline, other
    kernels and GPU idle (negative idle — kernels slower under tracing — is shown as 0 and the
    kernel time scaled to the wall time)."""
    out = []
    for r in profile:
        wall, kern = r["wall_ms_per_token"], r["kernel_ms_per_token"]
        scale = min(1.0, wall / kern) if kern else 1.0
        mm = r["matmul_ms_per_token"] * scale
        roof = min(r["roofline_ms_per_token"], mm) if mm else 0.0
        other = (kern - r["matmul_ms_per_token"]) * scale
        out.append({
            "target": r["target"], "wall ms/token": wall, "decode tok/s": 1e3 / wall,
            "roofline ms": r["roofline_ms_per_token"], "roofline fraction": r["roofline_fraction"],
            "matmul ms": r["matmul_ms_per_token"],
            "matmul kernels vs bandwidth": r["matmul_fraction_of_bandwidth"],
            "other kernels ms": kern - r["matmul_ms_per_token"],
            "GPU idle ms": wall - kern, "kernels/token": r["kernels_per_token"],
            "largest other kind (ms)": next((f"{k} {v:.2f}" for k, v in
                                             r["category_ms_per_token"].items()
                                             if k != "matmul"), ""),
            "_bars": {"weights at measured bandwidth (roofline)": roof,
                      "matmul kernels beyond roofline": mm - roof,
                      "other kernels": other,
                      "GPU idle (host, launches, sync)": max(wall - kern, 0.0)},
        })
    return out


BAR_COLORS = {"weights at measured bandwidth (roofline)": "#4c72b0",
              "matmul kernels beyond roofline": "#8fb0d9",
              "other kernels": "#dd8452",
              "GPU idle (host, launches, sync)": "#c0c0c0"}


def breakdown_figure(profile: list[dict], title: str):
    """Stacked bars, one panel per model, one bar per target: where a decode step's wall time
    goes (ms per token). A bar far longer than the rest is cut at the panel's edge and labelled."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = breakdown_rows(profile)
    models = list(dict.fromkeys(r["target"].split("/")[0] for r in rows))
    groups = [[r for r in rows if r["target"].split("/")[0] == m] for m in models]
    fig, axes = plt.subplots(len(groups), 1, squeeze=False,
                             figsize=(10, 0.5 * len(rows) + 1.2 * len(groups) + 0.6))
    for ax, g in zip(axes[:, 0], groups):
        walls = sorted(r["wall ms/token"] for r in g)
        xmax = walls[-1] * 1.6
        if len(walls) > 1 and walls[-1] > 2.5 * walls[-2]:
            xmax = walls[-2] * 2.2  # one outlier (eager transformers): cut, label says its value
        y = np.arange(len(g))
        left = np.zeros(len(g))
        for part, color in BAR_COLORS.items():
            v = np.array([r["_bars"][part] for r in g])
            ax.barh(y, v, left=left, color=color, label=part)
            left += v
        for yi, r in zip(y, g):
            cut = r["wall ms/token"] > xmax
            ax.text(min(r["wall ms/token"], xmax * 0.62), yi,
                    f"  {'▶ ' if cut else ''}{r['wall ms/token']:.2f} ms = {r['decode tok/s']:.0f}"
                    f" tok/s ({r['roofline fraction']:.0%} of roofline)", va="center", fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.8, "lw": 0} if cut else None)
        ax.set_yticks(y, ["/".join(r["target"].split("/")[1:3]) for r in g], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, xmax)
        ax.set_title(g[0]["target"].split("/")[0], fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("ms per decode step (batch 1)")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _precision(target: str) -> str:
    """Weight precision of a target from its format field: GGUF Q4_*, AWQ / GPTQ / int4 → 4-bit;
    FP8, Q8_0, int8 → 8-bit; otherwise 16-bit."""
    fmt = target.split("/")[2].upper()
    if fmt.startswith(("Q4", "AWQ", "GPTQ", "INT4")):
        return "4-bit"
    if fmt.startswith(("FP8", "Q8", "INT8")):
        return "8-bit"
    return "16-bit"


def findings(profile: list[dict], targets: dict[str, float] | None = None) -> str:
    """Markdown: per target where the time goes, then per model and precision the best measured
    fraction of roofline and the bound the kernels alone allow (idle time removed)."""
    targets = targets or {"16-bit": 0.85, "4-bit": 0.60}
    lines = []
    for r in profile:
        idle = r["wall_ms_per_token"] - r["kernel_ms_per_token"]
        others = [kv for kv in r["category_ms_per_token"].items() if kv[0] != "matmul"][:3]
        mm = r["matmul_fraction_of_bandwidth"]
        parts = [f"**{r['target']}**: {r['wall_ms_per_token']:.2f} ms/token "
                 f"({r['roofline_fraction']:.0%} of roofline {r['roofline_ms_per_token']:.2f} ms)"]
        if idle > 0.05 * r["wall_ms_per_token"]:
            parts.append(f"GPU idle {idle:.2f} ms/token ({idle / r['wall_ms_per_token']:.0%}: "
                         f"host-side work between {r['kernels_per_token']:.0f} kernels)")
        else:
            parts.append("GPU never waits for the host (kernel time ≈ wall time)")
        if mm:
            parts.append(f"matmul kernels {r['matmul_ms_per_token']:.2f} ms = "
                         f"{mm:.0%} of measured bandwidth")
        if others:
            parts.append("other kernels " + ", ".join(f"{k} {v:.2f} ms" for k, v in others))
        lines.append("- " + "; ".join(parts))
    lines.append("")
    by = {}
    for r in profile:
        key = (r["model"], _precision(r["target"]))
        by.setdefault(key, []).append(r)
    for (model, prec), rs in sorted(by.items()):
        best = max(rs, key=lambda r: r["roofline_fraction"])
        bound = max(rs, key=lambda r: r["roofline_ms_per_token"] / r["kernel_ms_per_token"])
        kb = bound["roofline_ms_per_token"] / bound["kernel_ms_per_token"]
        tgt = targets.get(prec)
        verdict = ""
        if tgt is not None:
            verdict = (f" Target {tgt:.0%}: " + ("met." if best["roofline_fraction"] >= tgt else
                       "not met; " + ("the kernels alone would allow it — the gap is host time."
                                      if kb >= tgt else
                                      "not reachable with these kernels even with zero host "
                                      "time.")))
        lines.append(f"- {model}, {prec}: best measured {best['roofline_fraction']:.0%} "
                     f"({best['target']}); kernels alone, idle removed, allow at most {kb:.0%} "
                     f"({bound['target']}).{verdict}")
    return "\n".join(lines)
