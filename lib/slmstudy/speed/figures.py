"""Speed figures: decode vs roofline, throughput vs concurrency."""

from __future__ import annotations

import numpy as np


def roofline_figure(rows: list[dict], bandwidth_bytes_s: float, title: str):
    """Horizontal bars: batch-1 in-process decode tok/s (median, 95% CI) per target, with the
    roofline of each target as a black tick (log scale)."""
    import matplotlib.pyplot as plt

    b1 = [r for r in rows if r["mode"] == "inproc" and r["concurrency"] == 1]
    b1.sort(key=lambda r: r["target"])
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(b1) + 1.6))
    y = np.arange(len(b1))
    med = np.array([r["decode_tok_s"] for r in b1])
    lo = med - np.array([r["decode_tok_s_ci_low"] for r in b1])
    hi = np.array([r["decode_tok_s_ci_high"] for r in b1]) - med
    ax.barh(y, med, xerr=[lo, hi], color=["#4c72b0" if r["label"] == "real" else "#dd8452"
                                          for r in b1], capsize=3)
    ax.scatter([bandwidth_bytes_s / r["bytes_read_per_token"] for r in b1], y, marker="|",
               s=300, color="k", label="roofline: bandwidth ÷ bytes read per token")
    for yi, r in zip(y, b1):
        frac = r["decode_tok_s"] * r["bytes_read_per_token"] / bandwidth_bytes_s
        ax.annotate(f"{frac:.0%}", (r["decode_tok_s"], yi), xytext=(4, -3),
                    textcoords="offset points", fontsize=7)
    ax.set_yticks(y, [r["target"] for r in b1], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("decode tokens/s, batch 1 (log); blue = real weights, orange = replica")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig

def concurrency_figure(rows: list[dict], title: str = ""):
    """Left: aggregate output tokens/s of all concurrent requests; right: each request's own
    decode speed — per target and mode, against the number of concurrent requests."""
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(rows)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for (target, mode), g in df.groupby(["target", "mode"]):
        if g.concurrency.nunique() < 2:
            continue
        g = g.sort_values("concurrency")
        style = "-o" if mode == "inproc" else "--s"
        a1.plot(g.concurrency, g.aggregate_tok_s, style, label=f"{target} [{mode}]")
        a2.plot(g.concurrency, g.decode_tok_s, style)
    for a, t in ((a1, "aggregate output tokens/s"), (a2, "per-request decode tokens/s")):
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_xlabel("concurrent requests")
        a.set_title(t)
    a1.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
