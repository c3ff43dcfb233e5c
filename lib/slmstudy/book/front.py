"""The front page: the answer first.

The articles compare models, engines and formats in tables (size, load time, speed, quality) and
quote numbers without saying how they were made. The front page rebuilds those tables with what
this study measured — this run's machine and every committed GPU snapshot — puts the articles'
numbers and their verdicts beside the measured rows, then the verdict scorecard per article and
the three figures a reader looks at first. Every table names its section page and links the
record (summary.json) each number was read from.
"""

from __future__ import annotations

import html
from pathlib import Path

from .pages import Context, Source, interval, num, size, table, verdict

FIGURES = "_figures"
QUALITY_SECTIONS = ("03_chinese_quality", "04_math", "05_code")


def _split_target(target: str) -> tuple[str, str, str, str]:
    parts = (target.split("/") + ["", "", "", ""])[:4]
    return parts[0], parts[1], parts[2], parts[3] or "real"


def _claims_of(block: dict, src: Source) -> list[dict]:
    """A snapshot_claims block's claims judged by `src`: its "snapshot <name>" entry, or for the
    run every entry that is not a snapshot's."""
    if src.kind == "snapshot":
        return block.get(f"snapshot {src.name}") or []
    return [c for k, v in block.items() if not k.startswith("snapshot ") for c in v]


def _speed_claims(ctx: Context, src: Source) -> dict[str, list[dict]]:
    """target -> the articles' speed claims this source's measurement judged (the speed section's
    snapshot_claims: the run's own block when it has them, else the snapshot's summary)."""
    run_block = (ctx.run.sections.get("02_speed") or {}).get("snapshot_claims") or {}
    own_block = (src.sections.get("02_speed") or {}).get("snapshot_claims") or {}
    out: dict[str, list[dict]] = {}
    for c in _claims_of(run_block, src) or _claims_of(own_block, src):
        out.setdefault(c.get("basis"), []).append(c)
    return out


MARK = {"consistent": "✓", "inconsistent": "≠", "physically impossible": "✗", "not testable here": "?"}


def _claims_cell(claims: list[dict]) -> str:
    """The claims a row decides, one verdict mark each (the table below the rows spells them out)."""
    return " ".join(MARK.get(c["verdict"], "?") for c in claims) or "—"


def _claims_table(claims: dict[str, list[dict]]) -> str:
    rows = []
    for target, cs in sorted(claims.items(), key=lambda kv: str(kv[0])):
        for c in cs:
            model, engine, fmt, _ = _split_target(str(target))
            rows.append([f"`{c['claim']}`", c.get("precision") or "—", c.get("hardware") or "—",
                         f"{num(c.get('claimed_tok_s'))} tok/s", f"{num(c.get('expected_tok_s'))} tok/s",
                         f"{num(c.get('roofline_tok_s'))} tok/s", verdict(c["verdict"]), f"{model} · {engine} · {fmt}"])
    return table(["claim", "precision", "on", "claimed", "expected there", "roofline there", "verdict",
                  "from the row"], rows)


def speed_table(ctx: Context, src: Source) -> str:
    summary = src.sections.get("02_speed") or {}
    rows = [r for r in summary.get("rows") or [] if r.get("concurrency") == 1]
    if not rows:
        return ""
    claims = _speed_claims(ctx, src)
    record = ctx.record_link(src, "02_speed")
    out = []
    for r in sorted(rows, key=lambda r: (r["model"], r["engine"], r["target"], r["mode"])):
        model, engine, fmt, label = _split_target(r["target"])
        out.append([model, engine + (" (HTTP)" if r["mode"] == "http" else ""), f"{fmt} · {label}",
                    size(r.get("weights_bytes")), num(r.get("load_s")) if r.get("load_s") else "—",
                    interval(r.get("ttft_s"), r.get("ttft_s_ci_low"), r.get("ttft_s_ci_high"), 1e3),
                    interval(r.get("decode_tok_s"), r.get("decode_tok_s_ci_low"), r.get("decode_tok_s_ci_high")),
                    f"{r['roofline_fraction']:.0%}" if r.get("roofline_fraction") is not None else "—",
                    size(r.get("peak_rss_bytes")), _claims_cell(claims.get(r["target"], []))])
    bw = (summary.get("bandwidth") or {}).get("bandwidth_bytes_s")
    doc = ctx.doc("02_speed")
    where = f"[the speed section]({doc})" if doc else "the speed section"
    rec = f"[{Path(record).parent.parent.name}/02_speed/summary.json]({record})" if record else "—"
    gbs = num(bw / 1e9) if bw else "—"
    par = summary.get("params") or {}
    lengths = (f"a {par['prompt_tokens']}-token prompt and {par['output_tokens']} forced output tokens"
               if par.get("prompt_tokens") and par.get("output_tokens") else "the section's prompt and output lengths")
    about = (f"{src.hardware}. Measured memory bandwidth {gbs} GB/s; batch 1, "
             f"{lengths}; medians with bootstrap 95% intervals over {rows[0].get('n_requests', '?')} requests "
             f"per row. How: {where}; record: {rec}.\n\n")
    head = f"### Speed: {src.name}\n\n" + about
    body = table(["model", "engine", "format · weights", "size", "load s", "TTFT ms", "decode tok/s", "of roofline",
                  "peak RSS", "claims"], out)
    if claims:
        body += ("\nThe articles' speed claims this measurement decides (✓ consistent, ≠ inconsistent, "
                 "✗ physically impossible): the claimed speed, what the fastest matching row predicts on the "
                 "article's hardware (time per token split into the part that moves weights at that "
                 "hardware's bandwidth and the rest), and that hardware's roofline.\n\n" + _claims_table(claims))
    if src.kind == "snapshot":
        # a committed snapshot folds into one line a reader opens (the run's own table stays open):
        # raw HTML around Markdown, blank lines between, and no heading inside (Sphinx's sections
        # would not close inside the block)
        decided = [c["verdict"] for cs in claims.values() for c in cs]
        marks = (f"; {len(decided)} article claim(s) decided: "
                 + " ".join(f"{decided.count(v)} {m}" for v, m in MARK.items() if decided.count(v))) if decided else ""
        n = f"{len(out)} row{'s' if len(out) != 1 else ''}"
        return (f'<details class="slm-snapshot">\n<summary><strong>Speed: {src.name}</strong> — '
                f"{html.escape(src.hardware)}: {n} at batch 1{marks}</summary>\n\n"
                + about + body + "\n\n</details>")
    return head + body


def deployment_table(ctx: Context, src: Source) -> str:
    """Size on disk, cold start (a fresh process: import, load, first answer) and warm load per
    engine, from the deployment section (notebook 01): what the articles' deployment tables list."""
    d = src.sections.get("01_deployment") or {}
    if not d.get("loads"):
        return ""
    model = (d.get("params") or {}).get("model", "—")
    sizes = {r["engine"]: r for r in d.get("sizes") or []}
    by = {}
    for r in d["loads"]:
        by.setdefault(r["engine"], {})[r["kind"]] = r
    out = []
    for engine in sorted(by):
        cold, warm, sz = by[engine].get("cold", {}), by[engine].get("warm", {}), sizes.get(engine, {})
        out.append([model, engine, sz.get("format", "—"), size(sz.get("size_bytes")), num(cold.get("import_s")),
                    num(cold.get("load_s")), num(cold.get("first_answer_s")), num(warm.get("load_s")),
                    size((cold.get("peak_rss_MB") or 0) * 1e6 or None), cold.get("n", "—")])
    doc = ctx.doc("01_deployment")
    rec = ctx.record_link(src, "01_deployment")
    return (f"### Deployment: {src.name}\n\nCold start is a fresh process (import, load, first answer to "
            f"one question); warm is a second load in the same process; medians of n. How: "
            f"[the deployment section]({doc}); record: [01_deployment/summary.json]({rec}).\n\n"
            if doc and rec else "### Deployment\n\n") + table(
        ["model", "engine", "format", "size on disk", "import s", "cold load s", "first answer s", "warm load s",
         "peak RSS (cold)", "n"], out)


def quality_rows(src: Source) -> list[dict]:
    rows = []
    for sec in QUALITY_SECTIONS:
        for r in (src.sections.get(sec) or {}).get("rows") or []:
            rows.append({**r, "section": sec})
    return rows


def quality_table(ctx: Context, src: Source) -> str:
    rows = quality_rows(src)
    if not rows:
        return ""
    out = []
    for r in sorted(rows, key=lambda r: (r["section"], r["task"], r["target"], r.get("mode", ""))):
        doc = ctx.doc(r["section"])
        rec = ctx.record_link(src, r["section"])
        link = f"[{r['section']}]({doc})" if doc else r["section"]
        out.append([r["task"], r["target"], r.get("mode", "—"), r["n"],
                    interval(r.get("accuracy"), r.get("ci_low"), r.get("ci_high"), 100, 3),
                    f"{r.get('format_failure', 0)}", link, f"[summary.json]({rec})" if rec else "—"])
    return table(["task", "model/engine", "mode", "n", "score % [95% CI]", "format failures", "section",
                  "record"], out)


def snapshot_quality(ctx: Context, src: Source) -> str:
    """A committed snapshot's quality rows folded into one line a reader opens (as its speed
    table is): how many rows, on which hardware, and how many items they scored."""
    rows = quality_rows(src)
    if not rows:
        return ""
    items = sum(int(r["n"]) for r in rows if r.get("n") is not None)
    models = sorted({str(r["target"]).split("/")[0] for r in rows})
    return (f'<details class="slm-snapshot">\n<summary><strong>Quality: {src.name}</strong> — '
            f"{html.escape(src.hardware)}: {len(rows)} rows, {items:,} items scored, "
            f"{html.escape(', '.join(models))}</summary>\n\n" + quality_table(ctx, src) + "\n\n</details>")


def score_claims_table(ctx: Context) -> str:
    from ..claims.vocabulary import SCORE_METRICS

    rows = [r for r in ctx.ledger if r["metric"] in SCORE_METRICS]
    if not rows:
        return "*(the ledger has no score claims)*\n"
    return table(["claim", "article §", "model", "claimed", "verdict", "basis", "evidence"],
                 [[f"`{r['id']}`", f"{r['article']} §{r['section']}", r["model"] or "—", r["claimed"],
                   verdict(r["verdict"]), r["basis"], r["evidence"]] for r in rows])


def scorecard(ctx: Context) -> str:
    from .. import claims as C

    arts = sorted({r["article"] for r in ctx.ledger})
    out = []
    for a in arts:
        sub = [r for r in ctx.ledger if r["article"] == a]
        out.append([f"[{a}](ledger-{a}.md)", len(sub)] + [sum(r["verdict"] == v for r in sub)
                                                                for v in C.VERDICTS]
                   + [sum(r["basis"] == "measurement" for r in sub)])
    total = [["**all**", len(ctx.ledger)] + [sum(r["verdict"] == v for r in ctx.ledger) for v in C.VERDICTS]
             + [sum(r["basis"] == "measurement" for r in ctx.ledger)]]
    return table(["article", "claims"] + list(C.VERDICTS) + ["decided by a measurement"], out + total)


def _figure(path: str, name: str, caption: str, alt: str) -> str:
    return f":::{{figure}} {path}\n:name: {name}\n:alt: {alt}\n:width: 100%\n\n{caption}\n:::\n"


def write_figures(ctx: Context) -> list[str]:
    """The three figures a reader looks at first, as MyST figure blocks (PNG files in _figures/)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from .. import claims as C
    from .. import plotting
    from ..claims import ledger as L
    from ..evals import views
    from ..speed import figures as F

    plotting.setup_style()
    folder = ctx.src / FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    blocks = []
    per = pd.DataFrame([{v: sum(r["verdict"] == v and r["article"] == a for r in ctx.ledger) for v in C.VERDICTS}
                        for a in sorted({r["article"] for r in ctx.ledger})],
                       index=sorted({r["article"] for r in ctx.ledger}))
    if len(per):
        fig = L.verdicts_figure(per)
        fig.savefig(folder / "verdicts.png", dpi=130)
        plt.close(fig)
        blocks.append(_figure(f"{FIGURES}/verdicts.png", "fig-front-verdicts",
                              f"Verdicts of the {len(ctx.ledger)} claims, by seed article ({ctx.ledger_source}).",
                              "stacked bars of verdict counts per article"))
    def batch1(src):
        return sum(r.get("concurrency") == 1 for r in (src.sections.get("02_speed") or {}).get("rows") or [])

    # the GPU figure shows the fullest snapshot (most batch-1 rows; the latest of equals), not a
    # sitting that added one cell
    fullest = max(ctx.snapshots, key=lambda s: (batch1(s), ctx.snapshots.index(s)), default=None)
    gpu = fullest if fullest is not None and batch1(fullest) else None
    for src in [s for s in (gpu, ctx.run) if s is not None]:
        sp = src.sections.get("02_speed") or {}
        bw = (sp.get("bandwidth") or {}).get("bandwidth_bytes_s")
        if not (sp.get("rows") and bw):
            continue
        fig = F.roofline_figure(sp["rows"], bw, f"{src.name}: decode vs roofline")
        stem = f"roofline-{src.kind}"
        fig.savefig(folder / f"{stem}.png", dpi=130)
        plt.close(fig)
        blocks.append(_figure(f"{FIGURES}/{stem}.png", f"fig-front-{stem}",
                              f"{src.name} ({src.hardware}): batch-1 decode tokens/s per model × engine × "
                              f"format (median, 95% interval) against its roofline, measured bandwidth "
                              f"{bw / 1e9:.0f} GB/s ÷ bytes read per token; the label is the fraction reached.",
                              "horizontal bars of decode speed with roofline ticks"))
        break
    q = quality_rows(ctx.run)
    if q:
        fig = views.accuracy_figure(q, title=f"{ctx.run.name}: scores with Wilson 95% intervals")
        fig.savefig(folder / "quality.png", dpi=130)
        plt.close(fig)
        blocks.append(_figure(f"{FIGURES}/quality.png", "fig-front-quality",
                              f"{ctx.run.name}: every quality score of sections 03–05, per task × model/engine × "
                              "mode, with its Wilson 95% interval (× marks the format-failure rate).",
                              "horizontal bars of accuracy with intervals"))
    return blocks


def index_page(ctx: Context, docs: list[str]) -> str:
    from .. import claims as C

    counts = {v: sum(r["verdict"] == v for r in ctx.ledger) for v in C.VERDICTS}
    measured = sum(r["basis"] == "measurement" for r in ctx.ledger)
    snaps = "; ".join(f"`results/{s.name}` ({s.hardware})" for s in ctx.snapshots) or "none"
    lines = [
        "# Small open LLMs across engines: what the articles claim, what was measured", "",
        f"Five published (Chinese) articles compare small open models on transformers, vLLM, llama.cpp, "
        f"ONNX Runtime GenAI and OpenVINO. Of their **{len(ctx.ledger)} checkable claims**, "
        + ", ".join(f"{n} are {verdict(v)}" for v, n in counts.items())
        + f"; {measured} verdicts come from this study's own measurements. Measured on: "
        f"**{ctx.run.name}**, {ctx.run.hardware}; committed GPU snapshots: {snaps}.", "",
        "## The verdicts, article by article", "",
        "Each claim, its quote and its evidence: [the claims ledger](ledger.md).", "",
        scorecard(ctx), "",
    ]
    figs = write_figures(ctx)
    if figs:
        lines += [figs[0], ""]
    lines += ["## Speed and size, model × engine × format", "",
              "The articles' speed tables, rebuilt: one row per model, engine and format, batch 1 "
              "(concurrency in the speed section). *replica* rows have random weights in the real "
              "architecture: speed and memory only. TTFT is the time to the first token; each table names its "
              "prompt and output lengths. Where an article states a speed for a "
              "configuration, its number, the speed this measurement predicts on the article's hardware "
              "and the verdict stand beside the row.", ""]
    dep = deployment_table(ctx, ctx.run)
    if dep:
        lines += [dep, ""]
    for src in ctx.sources:
        t = speed_table(ctx, src)
        if t:
            lines += [t, ""]
    if len(figs) > 1:
        lines += [figs[1], ""]
    lines += ["## Quality, scored the way published numbers are", "",
              "The articles' score claims, judged against the vendors' published numbers (the weights "
              "they are about do not run on this machine):", "", score_claims_table(ctx), "",
              f"What the models that do run here score ({ctx.run.name}); sections 03–05 say which "
              "reference protocol each task follows:", "", quality_table(ctx, ctx.run)
              or "*(this run has no quality sections)*\n", ""]
    folded = [t for t in (snapshot_quality(ctx, s) for s in ctx.snapshots) if t]
    if folded:
        lines += ["The committed GPU snapshots scored the same tasks on every item of each benchmark "
                  "(open a line for its table):", ""] + [x for t in folded for x in (t, "")]
    if len(figs) > 2:
        lines += [figs[2], ""]
    lines += ["## The sections", "", _sections_list(ctx), "",
              "```{toctree}", ":hidden:", ":maxdepth: 1", ""] + [d for d in docs if d != "index"] + ["```", ""]
    return "\n".join(lines)


def _sections_list(ctx: Context) -> str:
    by_name = {s["name"]: s for s in ctx.statuses}
    items = []
    for s in ctx.sections:
        st = by_name.get(s["name"], {})
        t = f", {st['duration_s']:.0f} s" if st.get("duration_s") is not None else ""
        items.append(f"- [{s['name']}]({s['doc']}.ipynb) — {st.get('status', 'executed')}{t}")
    items.append("- [The claims ledger](ledger.md): every claim, quote, verdict and evidence")
    items.append("- [The run](run.md): statuses, provenance, models, licences, snapshots")
    return "\n".join(items)


def write_index(ctx: Context, docs: list[str]) -> None:
    (ctx.src / "index.md").write_text(index_page(ctx, docs), encoding="utf-8")
