"""Our clock against each engine's own per-request clock, request by request.

The study times every token as it reaches the caller (`time.perf_counter_ns`). Engines that keep
their own per-request timers put them in each record's `engine_timings`:

- vLLM: its request stats (`RequestStateStats`, what its Prometheus metrics report):
  `engine_ttft_s` = arrival → first token on its frontend's clock, `engine_decode_tok_s` =
  (tokens − 1) ÷ (engine core's last − first token timestamp);
- llama.cpp: its perf counters (`llama_perf_context`): prompt eval time, and eval tokens ÷ eval
  time.

Agreement: within 3% or 1 ms, whichever is larger (TTFT against the engine's TTFT or prefill time;
decode as the time from the first to the last token). A harness that agrees measures the engine.
"""

from __future__ import annotations

import numpy as np

REL_TOL = 0.03
ABS_TOL_S = 1e-3


def within(ours_s: float, engine_s: float, rel: float = REL_TOL, abs_s: float = ABS_TOL_S) -> bool:
    """|ours − engine| ≤ max(rel × engine, abs_s)."""
    return abs(ours_s - engine_s) <= max(rel * abs(engine_s), abs_s)


def engine_clock(record: dict) -> dict | None:
    """(engine TTFT-or-prefill seconds, engine decode tok/s, what they are) of one record."""
    t = record.get("engine_timings") or {}
    if t.get("engine_ttft_s") is not None:
        return {"ttft_s": t["engine_ttft_s"], "decode_tok_s": t.get("engine_decode_tok_s"),
                "ttft_is": "vLLM request stats: arrival → first token",
                "decode_is": "vLLM request stats: engine-core first → last token"}
    if t.get("n_eval") and t.get("t_sample_ms") is not None:
        # the raw loop: llama.cpp's decode timers plus its C sampler, timed around each call
        return {"ttft_s": (t["t_p_eval_ms"] + t["t_sample_first_ms"]) / 1e3,
                "decode_tok_s": t["n_eval"] / ((t["t_eval_ms"] + t["t_sample_ms"]) / 1e3),
                "ttft_is": "llama.cpp perf counters: prompt eval time + first sampler call",
                "decode_is": "llama.cpp perf counters: n_eval / (t_eval + sampler calls)"}
    if t.get("n_eval"):
        return {"ttft_s": t["t_p_eval_ms"] / 1e3, "decode_tok_s": t["n_eval"] / (t["t_eval_ms"] / 1e3),
                "ttft_is": "llama.cpp perf counters: prompt eval time",
                "decode_is": "llama.cpp perf counters: n_eval / t_eval"}
    return None


def repeated_agreement(generate, reps: int = 3) -> dict:
    """Ours against the engine's clock over `reps` requests after one warm-up: medians of TTFT
    and of the decode window (first → last token; the engine's is (tokens − 1) ÷ its decode
    tok/s), and whether each agrees (`within`). `generate()` makes one request and returns its
    result (`ttft_s`, `token_times_ns`, `engine_timings`)."""
    if reps < 1:
        raise ValueError(f"reps must be at least 1 (got {reps}): the first request is a warm-up")
    rows, what = [], None
    for rep in range(reps + 1):
        g = generate()
        e = engine_clock({"engine_timings": g.engine_timings})
        if e is None:
            raise ValueError("the engine kept no per-request timers (engine_timings is empty): "
                             "only vLLM and llama.cpp records can be compared")
        n = len(g.token_times_ns)
        if n < 2:
            raise ValueError(f"{n} token(s): a decode window needs at least 2; raise max_tokens")
        if rep:
            rows.append((g.ttft_s, e["ttft_s"], (g.token_times_ns[-1] - g.token_times_ns[0]) / 1e9,
                         (n - 1) / e["decode_tok_s"], n))
            what = e
    ours_ttft, engine_ttft, ours_w, engine_w = (float(np.median([r[i] for r in rows])) for i in range(4))
    n = rows[-1][4]
    return {"ours_ttft_s": ours_ttft, "engine_ttft_s": engine_ttft, "ttft_ok": within(ours_ttft, engine_ttft),
            "ours_decode_tok_s": (n - 1) / ours_w, "engine_decode_tok_s": (n - 1) / engine_w,
            "decode_window_gap": ours_w / engine_w - 1, "decode_ok": within(ours_w, engine_w),
            "n_tokens": n, "reps": reps, "ttft_is": what["ttft_is"], "decode_is": what["decode_is"]}


def request_agreement(records: list[dict]) -> list[dict]:
    """One row per in-process record with an engine clock: ours vs the engine's, and whether
    each agrees within max(3%, 1 ms)."""
    out = []
    for r in records:
        e = engine_clock(r) if r.get("mode") == "inproc" else None
        if e is None or r.get("ttft_s") is None:
            continue
        row = {"target": r["target"], "engine": r["engine"], "concurrency": r["concurrency"],
               "ours_ttft_s": r["ttft_s"], "engine_ttft_s": e["ttft_s"],
               "ttft_gap_s": r["ttft_s"] - e["ttft_s"],
               "ttft_ok": within(r["ttft_s"], e["ttft_s"]), "ttft_is": e["ttft_is"]}
        n = r.get("n_tokens") or 0
        if e["decode_tok_s"] and r.get("decode_tok_s") and n > 1:
            ours_w, eng_w = (n - 1) / r["decode_tok_s"], (n - 1) / e["decode_tok_s"]
            row.update(ours_decode_tok_s=r["decode_tok_s"], engine_decode_tok_s=e["decode_tok_s"],
                       decode_gap=r["decode_tok_s"] / e["decode_tok_s"] - 1,
                       decode_ok=within(ours_w, eng_w), decode_is=e["decode_is"])
        out.append(row)
    return out


def agreement_table(records: list[dict]) -> list[dict]:
    """Per (target, concurrency): medians of both clocks, the largest gaps, and the share of
    requests within max(3%, 1 ms)."""
    groups: dict[tuple, list[dict]] = {}
    for a in request_agreement(records):
        groups.setdefault((a["target"], a["concurrency"]), []).append(a)
    rows = []
    for (target, c), xs in sorted(groups.items()):
        row = {"target": target, "engine": xs[0]["engine"], "concurrency": c,
               "n_requests": len(xs),
               "ours_ttft_ms": 1e3 * float(np.median([x["ours_ttft_s"] for x in xs])),
               "engine_ttft_ms": 1e3 * float(np.median([x["engine_ttft_s"] for x in xs])),
               "max_ttft_gap_ms": 1e3 * max((x["ttft_gap_s"] for x in xs), key=abs),
               "ttft_within": sum(x["ttft_ok"] for x in xs) / len(xs),
               "engine_ttft_is": xs[0]["ttft_is"]}
        dec = [x for x in xs if "decode_ok" in x]
        if dec:
            row.update(ours_decode_tok_s=float(np.median([x["ours_decode_tok_s"] for x in dec])),
                       engine_decode_tok_s=float(np.median([x["engine_decode_tok_s"] for x in dec])),
                       max_decode_gap=max((x["decode_gap"] for x in dec), key=abs),
                       decode_within=sum(x["decode_ok"] for x in dec) / len(dec))
        rows.append(row)
    return rows


def reference_table(references: list[dict], summary_rows: list[dict]) -> list[dict]:
    """Our batch-1 TTFT median against the engine's own benchmark (`vllm bench latency` with
    output_len 1, :meth:`VLLMBackend.reference_latency`) on the same loaded engine."""
    by_target = {r["target"]: r for r in summary_rows
                 if r["mode"] == "inproc" and r["concurrency"] == 1}
    out = []
    for ref in references:
        row = by_target.get(ref["target"])
        if row is None or ref.get("output_len") != 1:
            continue
        ours, theirs = row["ttft_s"], ref["median_s"]
        out.append({"target": ref["target"], "ours_ttft_ms": ours * 1e3,
                    "bench_latency_ms": theirs * 1e3, "gap_ms": (ours - theirs) * 1e3,
                    "within": within(ours, theirs), "reference": ref["method"]})
    return out
