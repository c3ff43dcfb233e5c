"""Tables and figures of the quality sections (notebooks call these; they only display).

Figures go through :func:`slmstudy.plotting.show` (one style, CJK font, figures/ folder).
"""

from __future__ import annotations

import math

import numpy as np

TABLE_COLUMNS = ["task", "target", "mode", "n", "correct", "wrong", "format_failure", "timeout",
                 "crash", "accuracy", "ci_low", "ci_high", "accuracy_answered",
                 "format_failure_rate", "decode_tok_s", "ttft_s", "n_tokens_mean",
                 "hit_max_tokens"]


def table(rows: list[dict], columns: list[str] | None = None, extra: list[str] = ()):
    """Summary rows as a DataFrame with the usual columns first (missing ones left out), each
    estimate with its interval as one "x [lo, hi]" column (slmstudy.tables.with_intervals)."""
    import pandas as pd

    from ..tables import with_intervals

    df = pd.DataFrame(rows)
    cols = [c for c in (columns or TABLE_COLUMNS) + list(extra) if c in df.columns]
    return with_intervals(df[cols]) if len(df) else df


def examples(records: list[dict], n: int = 5, chars: int = 240, verdict: str | None = None):
    """A few raw outputs next to their extracted answer and verdict (the evidence)."""
    import pandas as pd

    rows = [r for r in records if verdict is None or r.get("verdict") == verdict][:n]
    return pd.DataFrame([{
        "task": r["task"], "target": r["target"], "mode": r["mode"], "sample": r["sample_id"],
        "gold": _short(r.get("gold"), 40), "extracted": _short(r.get("extracted"), 60),
        "verdict": r["verdict"], "output": _short(r.get("raw_output"), chars)} for r in rows])


def _short(x, n: int) -> str:
    s = "" if x is None else str(x)
    s = s.replace("\n", "⏎ ")
    return s if len(s) <= n else s[: n - 1] + "…"


def accuracy_figure(rows: list[dict], *, title: str, chance: dict[str, float] | None = None,
                    label_fields=("task", "target", "mode"), metric: str = "accuracy"):
    """Horizontal bars: accuracy with its Wilson 95% CI per row; × marks the format-failure
    rate; dotted lines at chance level per task (e.g. 0.25 for four options)."""
    import matplotlib.pyplot as plt

    lo_key = "ci_low" if metric == "accuracy" else f"{metric.removesuffix('_accuracy')}_ci_low"
    hi_key = "ci_high" if metric == "accuracy" else f"{metric.removesuffix('_accuracy')}_ci_high"
    labels = [" · ".join(str(r.get(f)) for f in label_fields if r.get(f) is not None)
              for r in rows]
    acc = np.array([_num(r.get(metric)) for r in rows])
    lo = np.array([_num(r.get(lo_key)) for r in rows])
    hi = np.array([_num(r.get(hi_key)) for r in rows])
    ff = np.array([_num(r.get("format_failure_rate")) for r in rows])
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.6))
    y = np.arange(len(rows))
    ax.barh(y, acc, xerr=[np.nan_to_num(acc - lo), np.nan_to_num(hi - acc)], capsize=3,
            color="#4c72b0", label=f"{metric} (Wilson 95% CI)")
    ax.scatter(ff, y, marker="x", color="#c44e52", zorder=3, label="format-failure rate")
    for task, p in (chance or {}).items():
        idx = [i for i, r in enumerate(rows) if r.get("task") == task]
        if idx:
            ax.vlines(p, min(idx) - 0.4, max(idx) + 0.4, colors="k", linestyles=":",
                      label=f"chance ({p:.2f})" if task == next(iter(chance)) else None)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of samples")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def by_group_figure(rows: list[dict], *, group: str, series: str = "target", title: str,
                    xlabel: str, metric: str = "accuracy"):
    """Accuracy (Wilson 95% CI) against a grouping such as MATH level, one line per series."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    names = sorted({r[series] for r in rows})
    for k, name in enumerate(names):
        rs = sorted((r for r in rows if r[series] == name), key=lambda r: r[group])
        x = np.array([r[group] for r in rs], dtype=float) + (k - (len(names) - 1) / 2) * 0.08
        a = np.array([_num(r[metric]) for r in rs])
        lo = np.array([_num(r["ci_low"]) for r in rs])
        hi = np.array([_num(r["ci_high"]) for r in rs])
        ax.errorbar(x, a, yerr=[a - lo, hi - a], fmt="-o", capsize=3,
                    label=f"{name} (n={sum(r['n'] for r in rs)})")
    ax.set_xticks(sorted({r[group] for r in rows}))
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def _num(x) -> float:
    return float(x) if isinstance(x, (int, float)) and not (
        isinstance(x, float) and math.isnan(x)) else float("nan")


def findings(summary: dict, chance: dict[str, float] | None = None) -> str:
    """A quality section's findings, generated from its summary.json: per task, each target's
    accuracy with its Wilson 95% interval, whether the interval clears chance, format failures,
    and which target leads (or that the intervals overlap)."""
    chance = chance or {}
    by_task: dict[str, list[dict]] = {}
    for r in summary["rows"]:
        by_task.setdefault(r["task"], []).append(r)
    out = [f"- {summary['n_records']} scored samples."]
    for task, rows in sorted(by_task.items()):
        parts = []
        for r in sorted(rows, key=lambda r: -(r.get("accuracy") or 0)):
            s = (f"{r['target']} [{r['mode']}] {r['accuracy']:.0%} "
                 f"[{r['ci_low']:.0%}, {r['ci_high']:.0%}] (n={r['n']})")
            if task in chance:
                s += " above chance" if r["ci_low"] > chance[task] else " not above chance"
            if r.get("format_failure"):
                k = r["format_failure"]
                s += f", {k} format failure{'s' if k != 1 else ''}"
            parts.append(s)
        line = f"- **{task}**: " + "; ".join(parts)
        if len(rows) > 1:
            a, b = sorted(rows, key=lambda r: -(r.get("accuracy") or 0))[:2]
            line += (f" — {a['target']} [{a['mode']}] leads (its interval clears the next one's)"
                     if a["ci_low"] > b["ci_high"] else
                     " — the intervals overlap: no winner at this sample size")
        out.append(line)
    return "\n".join(out)


def _interval(r: dict) -> str:
    return f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _device_name(folder) -> str:
    """The GPU named in a snapshot's device.txt (nvidia-smi's CSV, its first data row)."""
    f = folder / "device.txt"
    lines = f.read_text(encoding="utf-8").splitlines() if f.is_file() else []
    return lines[1].split(",")[0].strip() if len(lines) > 1 and "," in lines[1] else "?"


def snapshot_quality_rows(section: str, root=None) -> list[dict]:
    """Every row of the committed quality snapshots of `section` (results/*/<section>/summary.json
    with quality rows: scripts/gpu/quality.sh), with the snapshot's name and GPU."""
    import json

    from ..results import snapshot_dirs

    out = []
    for d in snapshot_dirs(root):
        f = d / section / "summary.json"
        if not f.is_file():
            continue
        s = json.loads(f.read_text(encoding="utf-8"))
        if "bandwidth" in s:  # a speed summary
            continue
        out += [{"snapshot": d.name, "device": _device_name(d), **r} for r in s.get("rows", [])]
    return out


def beside_snapshots(section: str, rows: list[dict], root=None):
    """The committed GPU snapshots' rows of this section (every item of each benchmark) beside
    this run's rows for the same model, task and scoring mode (its subset, any engine): a
    DataFrame, or a sentence when no snapshot has the section."""
    import pandas as pd

    snap = snapshot_quality_rows(section, root)
    if not snap:
        return f"no committed GPU quality snapshot has section {section}"
    out = []
    for r in snap:
        model = r["target"].split("/")[0]
        here = [h for h in rows if h["task"] == r["task"] and h.get("mode") == r.get("mode")
                and h["target"].split("/")[0] == model]
        out.append({"snapshot": r["snapshot"], "device": r["device"], "task": r["task"],
                    "mode": r.get("mode"), "target": r["target"], "items": r["n"],
                    "accuracy [95% CI]": _interval(r),
                    "format failures": r.get("format_failure"),
                    "this run": "; ".join(f"{h['target'].split('/', 1)[-1]}: {_interval(h)} "
                                          f"on {h['n']}" for h in here) or "not run here"})
    return pd.DataFrame(out)
