"""Speed summaries, derived from the records: medians with bootstrap 95% CIs, ITL percentiles,
roofline fractions, the engines' own clocks, committed GPU snapshots and findings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import metrics
from ..layout import describe as describe_layout
from ..layout import read_ways
from ..params import SpeedParams
from ..results import SectionResults
from ..schemas import SpeedRecord, SpeedSummary


def summarize(records: list[dict], bandwidth_bytes_s: float | None = None) -> list[dict]:
    """One row per (target, mode, concurrency): medians with bootstrap 95% CIs over requests,
    pooled ITL percentiles, aggregate throughput, peak memory and roofline fraction."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["target"], r["mode"], r["concurrency"]), []).append(r)
    rows = []
    for (target, mode, c), rs in sorted(groups.items()):
        ttft = [r["ttft_s"] for r in rs if r.get("ttft_s") is not None]
        dec = [r["decode_tok_s"] for r in rs if r.get("decode_tok_s") is not None]
        e2e = [r["e2e_s"] for r in rs if r.get("e2e_s") is not None]
        itl = [x for r in rs for x in (r.get("itl_s") or [])]
        # aggregate output tokens/s of each batch: tokens of all its requests / batch wall time
        batches: dict[tuple, list[dict]] = {}
        for r in rs:
            batches.setdefault((r["rep"],), []).append(r)
        agg = []
        for b in batches.values():
            t_end = max(x["token_times_ns"][-1] for x in b if x["token_times_ns"])
            agg.append(sum(x["n_tokens"] for x in b) / ((t_end - b[0]["batch_t_send_ns"]) * 1e-9))
        first = rs[0]
        row = {
            "target": target, "mode": mode, "concurrency": c, "engine": first["engine"],
            "model": first["model"], "label": first["label"], "n_requests": len(rs),
            "length_ok": all(r.get("length_ok") for r in rs),
            "weights_bytes": first["weights_bytes"],
            "bytes_read_per_token": first["bytes_read_per_token"],
            "load_s": first.get("load_s"),
            "peak_rss_bytes": max(r.get("peak_rss_bytes") or 0 for r in rs),
            "itl_p50_s": metrics.percentile(itl, 50), "itl_p90_s": metrics.percentile(itl, 90),
            "itl_p99_s": metrics.percentile(itl, 99),
            # ITL is per token where every token has its own arrival time; llama_cpp.server's
            # stream sometimes carries several tokens in one chunk (a partial UTF-8 character
            # is held back), and then the gaps are between chunks
            "itl_per": _itl_unit(rs),
            "chars_per_s": float(np.median([r["chars_per_s"] for r in rs
                                            if r.get("chars_per_s") is not None] or [np.nan])),
            "aggregate_tok_s": float(np.median(agg)),
        }
        for name, vals in (("ttft_s", ttft), ("decode_tok_s", dec), ("e2e_s", e2e)):
            med, lo, hi = metrics.bootstrap_ci(vals)
            row.update({name: med, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
        row["cv_decode"] = metrics.cv(dec)
        if first.get("layout") is not None:  # records since layouts (slmstudy.layout)
            n_gpus = len(first.get("gpus") or [])
            row.update(gpus=n_gpus, layout=describe_layout(first["layout"]),
                       read_ways=read_ways(first["layout"], n_gpus))
        if bandwidth_bytes_s:
            # the bandwidth measured on one GPU, times the GPUs that read the weights side by side
            limit = metrics.roofline_tok_s(bandwidth_bytes_s * row.get("read_ways", 1),
                                           first["bytes_read_per_token"])
            row["roofline_tok_s"] = limit
            row["roofline_fraction"] = row["decode_tok_s"] / limit if c == 1 else None
        rows.append(row)
    return rows

def llamacpp_clock_agreement(records: list[dict]) -> list[dict]:
    """Our decode tok/s vs the engine's own perf counters (t_eval_ms / n_eval: llama.cpp's
    llama_perf_context), per request, for every engine whose records carry them."""
    out = []
    for r in records:
        t = r.get("engine_timings") or {}
        if r["mode"] != "inproc" or not t.get("n_eval"):  # engines that count their own
            continue
        engine_rate = t["n_eval"] / (t["t_eval_ms"] / 1e3)
        out.append({"target": r["target"], "concurrency": r["concurrency"],
                    "ours_decode_tok_s": r["decode_tok_s"], "engine_decode_tok_s": engine_rate,
                    "ratio": r["decode_tok_s"] / engine_rate,
                    "ours_ttft_s": r["ttft_s"], "engine_prefill_s": t["t_p_eval_ms"] / 1e3})
    return out

# a harness clock within this fraction of the engine's own clock (or of the engine's own
# benchmark client) measures the engine, not the harness
AGREEMENT_TOL = 0.10

def agreement_finding(gaps: list[float], against: str) -> str:
    """One sentence: the largest relative gap between our clock and `against`'s."""
    worst = max(abs(g) for g in gaps)
    verdict = f"over {AGREEMENT_TOL:.0%}" if worst > AGREEMENT_TOL else f"within {AGREEMENT_TOL:.0%}"
    return f"Largest gap between our clock and {against}: **{worst:.1%}** ({verdict})"

def _itl_unit(rs: list[dict]) -> str:
    n_tok = sum(r["n_tokens"] for r in rs)
    n_arr = sum(len(r["token_times_ns"]) for r in rs)
    if n_arr == n_tok:
        return "token"
    return f"chunk ({n_tok / max(n_arr, 1):.2f} tokens per chunk)"

def bench_path(results: SectionResults, target: str):
    """Where the server's own benchmark result for a target is kept."""
    return results.dir / f"vllm_bench_{target.replace('/', '_')}.json"

def vllm_bench_results(results: SectionResults, rows: list[dict]) -> list[dict]:
    """Our HTTP c=1 medians vs `vllm bench serve` run on the same server (see run_http)."""
    out = []
    for row in rows:
        f = bench_path(results, row["target"])
        if row["mode"] == "http" and row["concurrency"] == 1 and f.is_file():
            for cmp in compare_with_vllm_bench(row, json.loads(f.read_text())):
                out.append({"target": row["target"], **cmp})
    return out

def compare_with_vllm_bench(ours: dict, bench: dict) -> list[dict]:
    """Our HTTP medians vs vLLM's bench serve medians, same server, lengths and concurrency."""
    pairs = [("TTFT (ms)", ours["ttft_s"] * 1e3, bench["median_ttft_ms"]),
             ("TPOT (ms)", 1e3 / ours["decode_tok_s"], bench["median_tpot_ms"]),
             ("ITL p50 (ms)", ours["itl_p50_s"] * 1e3, bench["median_itl_ms"])]
    return [{"metric": m, "ours": a, "vllm_bench": b, "gap": a / b - 1} for m, a, b in pairs]

def snapshot_claims(rows: list[dict] | None = None, bw: dict | None = None,
                    run_id: str | None = None) -> dict[str, list[dict]]:
    """The articles' decode-speed claims judged by the ledger from this run's rows and every
    committed snapshot (`claims.scaling.speed_claims`), grouped by the source that decides each."""
    from ..claims import ledger, measured, scaling

    claims, _, arch, hardware = ledger.judge_ledger()
    evidence = measured.collect(None)
    if rows and bw:
        device = "this machine's CPU" if bw.get("device", "cpu") == "cpu" else bw["device"]
        evidence.speed += measured.speed_rows({"bandwidth": bw, "rows": rows},
                                              source=f"run {run_id or 'this run'}", device=device,
                                              path=Path("02_speed/summary.json"))
    return scaling.speed_claims(evidence, claims, hardware, arch)

def section_summary(results: SectionResults, params: SpeedParams, bw: dict) -> SpeedSummary:
    """The speed section's summary.json, derived from every record in the results folder: the
    notebook and `python -m slmstudy.speed` both write exactly this."""
    records = results.records(SpeedRecord)
    rows = summarize(records, bw["bandwidth_bytes_s"])
    return SpeedSummary(bandwidth=bw, rows=rows,
                        llamacpp_clock_agreement=llamacpp_clock_agreement(records),
                        vllm_bench_validation=vllm_bench_results(results, rows),
                        snapshot_claims=snapshot_claims(rows, bw, params.run_id),
                        params=params.model_dump())

def findings(summary: dict) -> str:
    """The section's findings, generated from its summary (markdown bullets)."""
    rows = [r for r in summary["rows"] if r["concurrency"] == 1 and r["mode"] == "inproc"
            and r.get("decode_tok_s")]
    if not rows:
        return "- no batch-1 in-process rows yet"
    out = []
    fastest = max(rows, key=lambda r: r["decode_tok_s"])
    out.append(f"- Fastest batch-1 decode on this machine: **{fastest['target']}**, "
               f"{fastest['decode_tok_s']:.1f} tok/s [{fastest['decode_tok_s_ci_low']:.1f}, "
               f"{fastest['decode_tok_s_ci_high']:.1f}]")
    fr = [r for r in rows if r.get("roofline_fraction")]
    if fr:
        best = max(fr, key=lambda r: r["roofline_fraction"])
        worst = min(fr, key=lambda r: r["roofline_fraction"])
        out.append(f"- Closest to the bandwidth roofline: {best['target']} at "
                   f"{best['roofline_fraction']:.0%}; farthest: {worst['target']} at "
                   f"{worst['roofline_fraction']:.0%}")
    ttft = min(rows, key=lambda r: r["ttft_s"])
    out.append(f"- Lowest TTFT ({summary['params']['prompt_tokens']}-token prompt): "
               f"{ttft['target']}, {ttft['ttft_s'] * 1e3:.0f} ms")
    agree = summary.get("llamacpp_clock_agreement") or []
    if agree:
        out.append("- " + agreement_finding([a["ratio"] - 1 for a in agree],
                                            "the engine's own perf counters"))
    bench = summary.get("vllm_bench_validation") or []
    if bench:
        out.append("- " + agreement_finding([b["gap"] for b in bench],
                                            "the server's own benchmark client"))
    if not all(r["length_ok"] for r in summary["rows"]):
        bad = [r["target"] for r in summary["rows"] if not r["length_ok"]]
        out.append(f"- **Forced length not met** by {bad}: their tok/s are not comparable")
    return "\n".join(out)
