"""The published report: execute the notebooks with papermill, render them offline with nbconvert,
and write an index page with the run summary, headline tables, the claims ledger and committed
snapshots from other machines.

    build/executed/<run_id>/NN_name.ipynb     executed copies (papermill; saved after every cell)
    build/executed/<run_id>/run.json          what ran: statuses, errors, provenance at start
    build/report/index.html                   run summary, headlines, claims ledger, snapshots
    build/report/NN_name.html                 one page per notebook (nbconvert, lab template)

Every page is self-contained: CSS inline, images as data: URIs, no <script src> or <link href>
pointing at a network (nbconvert's require.js, MathJax, mermaid and widget loaders are left out),
so the report opens offline and can be archived as files.

`SLMSTUDY_BUILD` moves the build folder (executed notebooks, report, screenshots); per-run
results follow `SLMSTUDY_RUNS` (slmstudy.paths.runs_dir).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import json
import os
import re
import time
import traceback as _tb
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from . import results as _results
from .paths import BUILD_DIR, NOTEBOOKS_DIR, PARAMS_DIR, REPO_ROOT, cache_dir, runs_dir, shown
from .provenance import hardware_label
from .results import Snapshot, load_sections, load_snapshot

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
NOTEBOOK_NAME = re.compile(r"^\d{2}_[A-Za-z0-9_]+$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ---------------------------------------------------------------------------------- locations


def build_dir() -> Path:
    """`SLMSTUDY_BUILD`, default build/ in the repository."""
    return Path(os.environ.get("SLMSTUDY_BUILD", BUILD_DIR)).expanduser().resolve()


def executed_dir(run_id: str) -> Path:
    return build_dir() / "executed" / run_id


def report_dir() -> Path:
    return build_dir() / "report"


def available_notebooks() -> list[str]:
    """Names of notebooks/NN_*.ipynb, in order."""
    return sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb") if NOTEBOOK_NAME.match(p.stem))


#: notebooks that conclude from the others' results and therefore run last
CONCLUSIONS = ("00_claims",)


def execution_rank(name: str) -> tuple[int, str]:
    """Sort key for running a study: the sections in order, then the conclusions."""
    return (1 if name in CONCLUSIONS else 0, name)


def params_path(name: str, scenario: str) -> Path:
    return PARAMS_DIR / scenario / f"{name}.yaml"


_shown = shown  # a path as people read it (paths.shown)


# ---------------------------------------------------------------------------------- execution


@dataclass
class NotebookStatus:
    """The outcome of executing one notebook (status: ok | failed | skipped)."""

    name: str
    status: str
    run_id: str
    scenario: str | None = None
    params_file: str | None = None
    executed: str | None = None  # path of the executed .ipynb, when one was written
    error: str | None = None  # one line: "ValueError: ... (cell [3])"
    traceback: str | None = None  # full text, colours stripped
    duration_s: float | None = None
    started_utc: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NotebookStatus":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def read_params(name: str, scenario: str, run_id: str) -> dict:
    """params/<scenario>/<name>.yaml as a dict, with run_id overridden; validated by the notebook's
    parameter model when one is registered (an unknown key is an error naming key and file)."""
    from . import params as params_mod

    path = params_path(name, scenario)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of parameter names to values")
    raw["run_id"] = run_id
    if name in params_mod.PARAM_MODELS:
        params_mod.validate(name, raw, source=str(path))
    return raw


@contextlib.contextmanager
def _inline_figures():
    """Let the kernel show figures inline: a non-inline MPLBACKEND (e.g. Agg from a test or CI
    environment) would be inherited by the kernel and silently drop every figure from the report."""
    saved = os.environ.get("MPLBACKEND")
    if saved is not None and "inline" not in saved:
        del os.environ["MPLBACKEND"]
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved


def execute_notebook(name: str, scenario: str, run_id: str, out_dir: str | os.PathLike,
                     timeout_per_cell: float | None = None, progress_bar: bool = True) -> NotebookStatus:
    """Execute notebooks/<name>.ipynb with params/<scenario>/<name>.yaml (run_id overridden) into
    out_dir/<name>.ipynb. Never raises for a notebook failure: the status carries the error, and the
    executed copy (saved after every cell) shows how far it got."""
    import papermill as pm

    status = NotebookStatus(name=name, status=FAILED, run_id=run_id, scenario=scenario,
                            started_utc=_now())
    source = NOTEBOOKS_DIR / f"{name}.ipynb"
    ppath = params_path(name, scenario)
    if not ppath.is_file():
        status.status = SKIPPED
        status.error = f"no parameter file {_shown(ppath)}"
        return status
    status.params_file = _shown(ppath)
    if not source.is_file():
        status.error = f"notebook {source} not found (generate it: jupytext --to ipynb notebooks/{name}.py)"
        return status
    try:
        parameters = read_params(name, scenario, run_id)
    except Exception as exc:  # noqa: BLE001 — reported, the other notebooks still run
        status.error = f"{type(exc).__name__}: {exc}"
        return status

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}.ipynb"
    t0 = time.monotonic()
    try:
        with _inline_figures():
            pm.execute_notebook(
                str(source), str(out), parameters=parameters, kernel_name="python3",
                cwd=str(REPO_ROOT), request_save_on_cell_execute=True, progress_bar=progress_bar,
                execution_timeout=timeout_per_cell,
            )
        status.status, status.error = OK, None
    except pm.PapermillExecutionError as exc:
        status.error = f"{exc.ename}: {_strip_ansi(str(exc.evalue))} (cell [{exc.exec_count}])"
        status.traceback = _strip_ansi("\n".join(exc.traceback))
    except Exception as exc:  # noqa: BLE001 — kernel death, cell timeout, bad notebook
        status.error = f"{type(exc).__name__}: {_strip_ansi(str(exc)).strip() or 'no message'}"
        status.traceback = _strip_ansi(_tb.format_exc())
    status.duration_s = round(time.monotonic() - t0, 2)
    status.executed = str(out) if out.is_file() else None
    return status


def write_run_record(run_id: str, scenario: str | None, statuses: Iterable[NotebookStatus],
                     provenance: dict | None = None, extra: dict | None = None) -> Path:
    d = executed_dir(run_id)
    d.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "scenario": scenario, "written_utc": _now(),
              "notebooks": [s.to_dict() for s in statuses], "provenance": provenance or {}}
    record.update(extra or {})
    p = d / "run.json"
    p.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return p


def read_run_record(run_id: str) -> dict | None:
    p = executed_dir(run_id) / "run.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def status_from_executed(path: Path, run_id: str) -> NotebookStatus:
    """Recover a status from an executed notebook (for a report without run.json)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    st = NotebookStatus(name=path.stem, status=OK, run_id=run_id, executed=str(path))
    pm_meta = nb.metadata.get("papermill", {})
    st.duration_s = pm_meta.get("duration")
    st.started_utc = pm_meta.get("start_time")
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                st.status = FAILED
                evalue = _strip_ansi(str(out.get("evalue")))
                st.error = f"{out.get('ename')}: {evalue} (cell [{cell.get('execution_count')}])"
                st.traceback = _strip_ansi("\n".join(out.get("traceback", [])))
                return st
    if pm_meta.get("exception"):
        st.status, st.error = FAILED, "papermill recorded an exception (no error output found)"
    return st


# ---------------------------------------------------------------------------------- rendering

#: nbconvert's lab template without anything fetched from a network: require.js, MathJax,
#: mermaid and the widget manager all load from CDNs (the notebooks need none of them).
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?\s*(?:https?:)?//[^>]*>.*?</script\s*>",
                             re.IGNORECASE | re.DOTALL)
EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?\s*(?:https?:)?//[^>]*>", re.IGNORECASE)


def strip_external(page: str) -> str:
    """Remove <script src="http..."> and <link href="http..."> tags (a second line of defence)."""
    return EXTERNAL_LINK.sub("", EXTERNAL_SCRIPT.sub("", page))


def _insert_after_body(page: str, fragment: str) -> str:
    m = re.search(r"<body\b[^>]*>", page, re.IGNORECASE)
    if m is None:
        return fragment + page
    return page[: m.end()] + fragment + page[m.end():]


def render_html(executed_ipynb: str | os.PathLike, out_html: str | os.PathLike,
                banner_html: str | None = None) -> Path:
    """Render an executed notebook to one self-contained HTML file (offline lab template, images
    embedded as data URIs); `banner_html` is inserted at the top of the page."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed_ipynb), as_version=4)
    out_html = Path(out_html)
    log_name = move_stderr_to_log(nb, out_html.with_suffix(".stderr.log"))
    if log_name:
        banner_html = (banner_html or "") + (
            f'<p class="muted small">Engine logs, warnings and progress output (stderr) of this notebook '
            f'are kept out of the page: <a href="{esc(log_name)}">{esc(log_name)}</a>.</p>')
    exporter = HTMLExporter(
        template_name="lab", template_file="slmstudy_offline.html.j2",
        extra_loaders=[DictLoader({"slmstudy_offline.html.j2": OFFLINE_TEMPLATE})],
        embed_images=True,
    )
    resources = {"metadata": {"name": Path(executed_ipynb).stem,
                              "path": str(Path(executed_ipynb).resolve().parent)}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = strip_external(body)
    if banner_html:
        body = _insert_after_body(body, banner_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(body, encoding="utf-8")
    return out_html


def move_stderr_to_log(nb, log_path: Path) -> str | None:
    """Take every stderr stream output out of the notebook's cells and write it, cell by cell,
    to `log_path`; returns the log's file name, or None when the notebook printed no stderr."""
    parts = []
    for i, cell in enumerate(nb.cells):
        outputs = cell.get("outputs") or []
        kept = [o for o in outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        if len(kept) != len(outputs):
            text = "".join(o.get("text", "") for o in outputs if o not in kept)
            parts.append(f"==== cell {i}\n{text}")
            cell["outputs"] = kept
    if not parts:
        return None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("\n".join(parts), encoding="utf-8")
    return log_path.name


# ---------------------------------------------------------------------------------- small HTML kit

CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans",-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 margin:0 auto;max-width:1200px;padding:1.2em 2em 4em;color:#1f2328;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em} h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em} h4{margin:1em 0 .3em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.86em}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,pre,.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.92em}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;white-space:pre-wrap;max-height:28em}
.muted{color:#656d76} .small{font-size:.85em}
.badge{display:inline-block;padding:.05em .5em;border-radius:1em;font-size:.85em;font-weight:600;
 white-space:nowrap}
.ok{background:#dafbe1;color:#116329} .failed{background:#ffebe9;color:#a40e26}
.skipped{background:#eaeef2;color:#57606a}
.v-consistent{background:#dafbe1;color:#116329} .v-inconsistent{background:#fff1e5;color:#953800}
.v-impossible{background:#ffebe9;color:#a40e26} .v-untestable{background:#eaeef2;color:#57606a}
.real{background:#ddf4ff;color:#0550ae} .replica{background:#fbefff;color:#6e40c9}
.errorbox{border:1px solid #ff818266;background:#fff5f5;padding:.6em 1em;border-radius:6px;margin:.6em 0}
.snapshot{border-left:4px solid #8250df;padding-left:.8em;margin:.8em 0}
.thisrun{border-left:4px solid #0969da;padding-left:.8em;margin:.8em 0}
nav a{margin-right:1em}
code.hash{font-size:.78em;word-break:break-all;display:inline-block;max-width:20em}
.ev{min-width:24em} .qt{min-width:9em}
.banner{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;padding:.6em 1.2em;
 border-bottom:1px solid #d0d7de;background:#f6f8fa;font-size:14px}
.banner a{margin-right:1em}
"""

VERDICT_CLASS = {"consistent": "v-consistent", "inconsistent": "v-inconsistent",
                 "physically impossible": "v-impossible", "not testable here": "v-untestable"}


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    """A table cell: None → '—', floats to `digits` significant figures, bools yes/no."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if x != x:  # NaN
            return "—"
        return f"{x:.{digits}g}"
    return str(x)


def fmt_ci(med: Any, lo: Any, hi: Any) -> str:
    if med is None:
        return "—"
    if lo is None or hi is None:
        return fmt(med, 3)
    return f"{fmt(med, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}]"


def fmt_bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "—"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def badge(text: str, cls: str) -> str:
    return f'<span class="badge {cls}">{esc(text)}</span>'


@dataclass
class Table:
    """A headline table: caption, column headers, rows of pre-formatted cells (HTML-escaped on
    output unless a cell is wrapped in `Raw`)."""

    caption: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    note: str | None = None


class Raw(str):
    """A cell that is already HTML."""


def table_html(t: Table) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in t.headers)
    body = []
    for row in t.rows:
        cells = []
        for c in row:
            if isinstance(c, Raw):
                cells.append(f"<td>{c}</td>")
            elif isinstance(c, (int, float)) and not isinstance(c, bool):
                cells.append(f'<td class="num">{esc(fmt(c))}</td>')
            else:
                cells.append(f"<td>{esc(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<h4>{esc(t.caption)}</h4>" if t.caption else ""
    note = f'<p class="muted small">{esc(t.note)}</p>' if t.note else ""
    return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")


def rel(target: Path, start: Path) -> str:
    """A relative link from folder `start` to `target` (POSIX separators)."""
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


# ---------------------------------------------------------------------------------- what ran where


def _read_json(p: Path) -> dict | None:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def artifact_rows(root: Path | None = None) -> list[dict]:
    """Every artifact.json under the cache: model, form, kind, real/replica, sha256s, size."""
    root = Path(root or cache_dir())
    rows = []
    if not root.is_dir():
        return rows
    for m in sorted(root.rglob("artifact.json")):
        if any(".tmp-" in part for part in m.parts):
            continue
        data = _read_json(m) or {}
        parts = m.relative_to(root).parts[:-1]
        replica = parts[0] == "replicas" or str(data.get("kind", "")).startswith("replica") \
            or bool((data.get("tools") or {}).get("replica"))
        model, form = (parts[1], "/".join(parts[2:])) if parts[0] == "replicas" and len(parts) > 2 \
            else (parts[0], "/".join(parts[1:]))
        if parts[0] == "_tokenizers":  # made from a user's GGUF: name it by that file
            model, form = Path(data.get("source") or "?").name, "hf-tokenizer"
        rows.append({"model": model, "form": form, "kind": data.get("kind"),
                     "label": "replica" if replica else "real", "sha256": data.get("sha256"),
                     "source_sha256": data.get("source_sha256"), "size_bytes": data.get("size_bytes"),
                     "created_utc": data.get("created_utc")})
    return rows


# ---------------------------------------------------------------------------------- headlines


def _speed_tables(summary: dict) -> list[Table]:
    rows = summary.get("rows") or []
    bw = (summary.get("bandwidth") or {}).get("bandwidth_bytes_s")
    t = Table("Speed: medians with bootstrap 95% CI", [
        "target", "weights", "mode", "concurrency", "TTFT s [95% CI]", "decode tok/s [95% CI]",
        "aggregate tok/s", "roofline fraction", "length forced ok"])
    for r in rows:
        label = r.get("label") or ("replica" if "replica" in str(r.get("target")) else "real")
        t.rows.append([
            r.get("target"), Raw(badge(label, "replica" if label == "replica" else "real")),
            r.get("mode"), r.get("concurrency"),
            fmt_ci(r.get("ttft_s"), r.get("ttft_s_ci_low"), r.get("ttft_s_ci_high")),
            fmt_ci(r.get("decode_tok_s"), r.get("decode_tok_s_ci_low"), r.get("decode_tok_s_ci_high")),
            r.get("aggregate_tok_s"), r.get("roofline_fraction"), r.get("length_ok")])
    t.note = ("roofline fraction = batch-1 decode tok/s ÷ (measured bandwidth ÷ bytes read per token)"
              + (f"; measured bandwidth {bw / 1e9:.1f} GB/s" if bw else "")
              + ". Replica rows: random weights in the real architecture (speed only).")
    return [t]


def _claims_tables(summary: dict) -> list[Table]:
    counts = summary.get("verdict_counts") or {}
    by_article = summary.get("by_article") or {}
    verdicts = list(counts) or ["consistent", "inconsistent", "physically impossible", "not testable here"]
    t = Table(f"Claims ledger: {summary.get('n_claims', '?')} claims", ["article", *verdicts, "total"])
    for art, c in by_article.items():
        t.rows.append([art, *[c.get(v, 0) for v in verdicts], sum(c.values())])
    t.rows.append(["all", *[counts.get(v, 0) for v in verdicts], sum(counts.values())])
    return [t]


def _generic_tables(section: str, summary: dict, max_cols: int = 10, max_rows: int = 40) -> list[Table]:
    """Top-level scalars as key/value rows, and a `rows` list of records as a table."""
    tables = []
    scalars = [(k, v) for k, v in summary.items()
               if isinstance(v, (str, int, float, bool)) and k != "schema_version"]
    if scalars:
        tables.append(Table(f"{section}: summary", ["key", "value"], [[k, v] for k, v in scalars]))
    rows = summary.get("rows")
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        cols = [k for k, v in rows[0].items() if isinstance(v, (str, int, float, bool)) or v is None][:max_cols]
        t = Table(f"{section}: rows", cols, [[r.get(c) for c in cols] for r in rows[:max_rows]])
        if len(rows) > max_rows:
            t.note = f"first {max_rows} of {len(rows)} rows"
        tables.append(t)
    return tables


HEADLINES = {"02_speed": _speed_tables, "00_claims": _claims_tables}


def headline_tables(section: str, summary: dict) -> list[Table]:
    """The tables the index shows for one section's summary.json."""
    fn = HEADLINES.get(section)
    try:
        return fn(summary) if fn else _generic_tables(section, summary)
    except Exception as exc:  # noqa: BLE001 — a malformed summary must not sink the report
        return [Table(f"{section}: summary could not be tabulated", ["error"], [[f"{type(exc).__name__}: {exc}"]])]


# ---------------------------------------------------------------------------------- the report


def _banner(st: NotebookStatus, index_href: str) -> str:
    color = {"ok": "ok", "failed": "failed"}.get(st.status, "skipped")
    parts = [f'<div class="banner"><style>{_BANNER_CSS}</style>',
             f'<a href="{esc(index_href)}">← report index</a>',
             f"<b>{esc(st.name)}</b> · run <code>{esc(st.run_id)}</code> · ",
             badge(st.status, color)]
    if st.duration_s is not None:
        parts.append(f" · {st.duration_s:.1f} s")
    if st.status == FAILED:
        parts.append(f'<div class="sl-err"><b>This notebook failed:</b> <code>{esc(st.error)}</code>'
                     " — the output below stops at the failing cell.</div>")
    parts.append("</div>")
    return "".join(parts)


_BANNER_CSS = (".banner{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;padding:.6em 1.2em;"
               "border-bottom:1px solid #d0d7de;background:#f6f8fa;font-size:14px}"
               ".banner a{margin-right:1em}.banner .badge{display:inline-block;padding:.05em .5em;"
               "border-radius:1em;font-weight:600}.banner .ok{background:#dafbe1;color:#116329}"
               ".banner .failed{background:#ffebe9;color:#a40e26}.banner .skipped{background:#eaeef2}"
               ".sl-err{margin-top:.4em;color:#a40e26}")


def _failed_page(st: NotebookStatus, index_href: str) -> str:
    body = (f'<p><a href="{esc(index_href)}">← report index</a></p><h1>{esc(st.name)} '
            f'{badge(st.status, "failed")}</h1>'
            f'<div class="errorbox"><b>{esc(st.error)}</b></div>'
            + (f"<pre>{esc(st.traceback)}</pre>" if st.traceback else "")
            + '<p class="muted">No executed notebook was written.</p>')
    return page(f"{st.name} (failed)", body)


def render_sections(statuses: list[NotebookStatus], out_dir: Path) -> dict[str, str]:
    """One HTML page per executed or failed notebook; returns name -> page file name."""
    pages = {}
    for st in statuses:
        if st.status == SKIPPED:
            continue
        target = out_dir / f"{st.name}.html"
        if st.executed and Path(st.executed).is_file():
            try:
                render_html(st.executed, target, banner_html=_banner(st, "index.html"))
            except Exception as exc:  # noqa: BLE001 — rendering one page must not stop the rest
                st.status = FAILED
                st.error = (st.error + "; " if st.error else "") + f"rendering failed: {type(exc).__name__}: {exc}"
                target.write_text(_failed_page(st, "index.html"), encoding="utf-8")
        else:
            target.write_text(_failed_page(st, "index.html"), encoding="utf-8")
        pages[st.name] = target.name
    return pages


def _kv_table(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v if isinstance(v, Raw) else esc(fmt(v))}</td></tr>"
                   for k, v in pairs)
    return f"<table>{rows}</table>"


def _run_summary_html(run_id: str, scenario: str | None, prov: dict, prov_source: str) -> str:
    git = prov.get("git") or {}
    commit = git.get("commit")
    dirty = git.get("dirty")
    hw = prov.get("hardware") or {}
    gpus = hw.get("gpus") or []
    pairs = [
        ("run id", Raw(f"<code>{esc(run_id)}</code>")),
        ("scenario", Raw(f"<code>params/{esc(scenario)}/</code>") if scenario else "—"),
        ("started (UTC)", prov.get("time_utc")),
        ("git commit", Raw(f"<code>{esc(commit or 'unknown')}</code> "
                           + (badge("dirty: uncommitted changes", "failed") if dirty else badge("clean", "ok"))
                           if commit else "unknown")),
        ("hardware", hardware_label(prov)),
        ("CPU", hw.get("cpu")),
        ("cores (logical / physical)", f"{hw.get('cores_logical', '—')} / {hw.get('cores_physical', '—')}"),
        ("RAM", fmt_bytes(hw.get("ram_bytes"))),
        ("GPUs", "; ".join(f"{g.get('name')} ({g.get('memory')}, driver {g.get('driver')})"
                           for g in gpus) or "none"),
        ("platform", hw.get("platform")),
        ("Python", hw.get("python")),
    ]
    pkgs = prov.get("packages") or {}
    pkg_table = table_html(Table("Package versions", ["package", "version"], [[k, v] for k, v in pkgs.items()]))
    return (_kv_table(pairs) + f'<p class="muted small">provenance from {esc(prov_source)}</p>' + pkg_table)


def _licences_html(out: Path) -> str:
    """The real models' licences; terms that ship with the weights (Gemma's) are copied beside
    the report, so the link opens offline and from a static server."""
    import shutil

    from .models import BUNDLED, get_model, license_terms

    items = []
    for key in BUNDLED:
        e = get_model(key)
        terms = license_terms(key)
        link = ""
        if terms is not None:
            shutil.copyfile(terms, out / f"{key}-terms.html")
            link = f' — <a href="{esc(key)}-terms.html">the terms that ship with its weights</a>'
        items.append(f"<li><b>{esc(e.hf_id)}</b> ({esc(key)}): licence {esc(e.license)}{link}</li>")
    return ("<p>Real models of this study and their licences (Gemma's weights, and what is built "
            "from them, are used under Google's Gemma Terms of Use):</p>"
            f"<ul>{''.join(items)}</ul>")


def _artifacts_html(rows: list[dict]) -> str:
    if not rows:
        return '<p class="muted">No derived artifacts in the cache (run <code>slmstudy prepare</code>).</p>'
    t = Table("", ["model", "form", "kind", "weights", "sha256", "source sha256", "size"])
    for r in rows:
        t.rows.append([r["model"], r["form"], r["kind"], Raw(badge(r["label"], r["label"])),
                       Raw(f'<code class="hash">{esc(r["sha256"])}</code>'),
                       Raw(f'<code class="hash">{esc(r["source_sha256"] or "—")}</code>'),
                       fmt_bytes(r["size_bytes"])])
    return (table_html(t) + '<p class="muted small"><span class="badge real">real</span> derived from a real '
            'checkpoint (a bundled GGUF: SmolLM2 or Gemma 3 270M); <span class="badge replica">replica</span> '
            "random weights in a registered architecture — speed and memory only, never quality numbers.</p>")


def _claims_html(run_summary: dict | None, run_root: Path) -> str:
    """The ledger as this run's 00_claims notebook judged it; judged now when the run has none."""
    from . import claims as C
    from .claims import ledger

    if run_summary and run_summary.get("rows"):
        rows = run_summary["rows"]
        source = (f"as judged by this run's 00_claims notebook "
                  f"(<code>{esc(run_root.name)}/00_claims/summary.json</code>)")
    else:
        try:
            claims, verdicts, _, _ = ledger.judge_ledger(ledger.measurements_from_run(run_root))
        except Exception as exc:  # noqa: BLE001
            return ('<div class="errorbox">The claims ledger could not be judged: '
                    f"<code>{esc(type(exc).__name__)}: {esc(exc)}</code></div>")
        rows = C.ledger_rows(claims, verdicts)
        source = "judged when this report was written (the run has no 00_claims results)"
    counts = {v: sum(r["verdict"] == v for r in rows) for v in C.VERDICTS}
    summary = " · ".join(f"{badge(v, VERDICT_CLASS[v])} {n}" for v, n in counts.items())
    t = Table("", ["claim", "article §", "model", "metric", "claimed", "precision", "hardware",
                   "verdict", "basis", "evidence", "quote"])
    for r in rows:
        t.rows.append([Raw(f'<code class="small">{esc(r["id"])}</code>'), f'{r["article"]} §{r["section"]}',
                       r["model"], r["metric"], r["claimed"], r["precision"], r["hardware"],
                       Raw(badge(r["verdict"], VERDICT_CLASS.get(r["verdict"], ""))), r["basis"],
                       Raw(f'<div class="small ev">{esc(r["evidence"])}</div>'),
                       Raw(f'<div class="small qt">{esc(r["quote"])}</div>')])
    measured = sum(r["basis"] == "measurement" for r in rows)
    published = sum(r["basis"] == "published" for r in rows)
    return (f"<p>{len(rows)} claims of the seed articles, judged against arithmetic, the registry's "
            "architecture configs, datasheets (<code>data/hardware.yaml</code>), physics, the vendors' "
            f"published scores (<code>data/published_scores.yaml</code>: {published} verdicts) and this "
            f"study's measurements — the run's and the committed GPU snapshots' ({measured} verdicts). "
            f"Verdicts {source}; the article's command lines run as written are in the claims page.</p>"
            f"<p>{summary}</p>" + table_html(t))


def _sections_html(results: list[NotebookStatus], pages: dict[str, str], out: Path) -> str:
    if not results:
        return '<h2 id="sections">Sections</h2><p class="muted">No notebooks were executed for this run.</p>'
    t = Table("", ["notebook", "status", "time", "parameters", "executed notebook", "error"])
    for st in results:
        link = Raw(f'<a href="{esc(pages[st.name])}">{esc(st.name)}</a>') if st.name in pages else st.name
        executed = "—"
        if st.executed and Path(st.executed).is_file():
            executed = Raw(f'<a href="{esc(rel(Path(st.executed), out))}">{esc(Path(st.executed).name)}</a>')
        err = st.error or ""
        if st.status == FAILED and st.error:
            tb = (f"<details><summary>traceback</summary><pre>{esc(st.traceback)}</pre></details>"
                  if st.traceback else "")
            err = Raw(f'<div class="errorbox mono small">{esc(st.error)}{tb}</div>')
        t.rows.append([link, Raw(badge(st.status, {OK: "ok", FAILED: "failed"}.get(st.status, "skipped"))),
                       f"{st.duration_s:.1f} s" if st.duration_s is not None else "—",
                       st.params_file or "—", executed, err])
    return f'<h2 id="sections">Sections</h2>{table_html(t)}'


def _headlines_html(results, pages, sections, snapshots, run_root: Path, prov: dict, out: Path) -> str:
    """Each section's headline tables: this run, then every snapshot with the same section."""
    names = sorted(set(sections) | {s for snap in snapshots for s in snap.sections}
                   | {st.name for st in results if st.status != SKIPPED})
    parts = ['<h2 id="headlines">Headline results</h2>']
    for name in names:
        link = f' <a class="small" href="{esc(pages[name])}">(notebook)</a>' if name in pages else ""
        parts.append(f"<h3>{esc(name)}{link}</h3>")
        if name in sections:
            summary_link = rel(run_root / name / "summary.json", out)
            parts.append(f'<div class="thisrun"><p><b>this run</b> ({esc(hardware_label(prov))}) · '
                         f'<a class="small" href="{esc(summary_link)}">summary.json</a></p>'
                         + "".join(table_html(tb) for tb in headline_tables(name, sections[name])) + "</div>")
        else:
            st = next((s for s in results if s.name == name), None)
            why = f"failed: {st.error}" if st and st.status == FAILED else "not run"
            parts.append(f'<div class="thisrun"><p><b>this run</b>: no summary.json ({esc(why)})</p></div>')
        for snap in snapshots:
            if name in snap.sections:
                tables = "".join(table_html(tb) for tb in headline_tables(name, snap.sections[name]))
                parts.append(f'<div class="snapshot"><p><b>snapshot <code>results/{esc(snap.name)}</code></b>'
                             f" — {esc(snap.hardware)}</p>{tables}</div>")
    if not names:
        parts.append('<p class="muted">No section results yet.</p>')
    return "".join(parts)


def _snapshots_html(run_id: str, prov: dict, sections: dict, snapshots: list[Snapshot]) -> str:
    rows = [["this run", Raw(f"<code>{esc(run_id)}</code>"), hardware_label(prov),
             (prov.get("git") or {}).get("commit") or "—", prov.get("time_utc"), ", ".join(sections) or "—"]]
    for snap in snapshots:
        p = snap.provenance or {}
        rows.append(["committed snapshot", Raw(f"<code>results/{esc(snap.name)}</code>"), snap.hardware,
                     (p.get("git") or {}).get("commit") or "—", p.get("time_utc"),
                     ", ".join(snap.sections) or "—"])
    none = "" if snapshots else '<p class="muted">No committed snapshots in <code>results/</code>.</p>'
    t = Table("", ["run", "name", "hardware", "git commit", "time (UTC)", "sections"], rows)
    return f'<h2 id="snapshots">Committed snapshots</h2>{none}{table_html(t)}'


def _run_provenance(record: dict, run_root: Path) -> tuple[dict, str]:
    """The run's provenance: from run.json (written by `slmstudy run`), else the run folder's
    provenance.json (written by the notebooks), else this machine now (said so)."""
    if record.get("provenance"):
        return record["provenance"], "build/executed/<run_id>/run.json"
    prov = _read_json(run_root / "provenance.json")
    if prov:
        return prov, f"{run_root}/provenance.json"
    from .provenance import provenance

    return provenance(), "this machine at report time (the run recorded none)"


def build_report(run_id: str, results: list[NotebookStatus] | None = None,
                 snapshot_dirs: Iterable[str | os.PathLike] | None = None,
                 scenario: str | None = None, out_dir: str | os.PathLike | None = None) -> Path:
    """Write out_dir/index.html (default build/report/) and one page per notebook.

    `results`: the statuses of the executed notebooks (default: read build/executed/<run_id>/
    run.json, else recovered from the executed notebooks there). `snapshot_dirs`: committed
    result sets to list beside this run (default: results/*/).
    """
    out = Path(out_dir or report_dir())
    out.mkdir(parents=True, exist_ok=True)
    record = read_run_record(run_id) or {}
    if results is None:
        if record.get("notebooks"):
            results = [NotebookStatus.from_dict(d) for d in record["notebooks"]]
        else:
            results = [status_from_executed(p, run_id) for p in sorted(executed_dir(run_id).glob("*.ipynb"))]
    results = list(results)
    scenario = scenario or record.get("scenario") or next((s.scenario for s in results if s.scenario), None)
    snapshot_dirs = _results.snapshot_dirs() if snapshot_dirs is None else snapshot_dirs
    snapshots = [load_snapshot(Path(p)) for p in snapshot_dirs]
    run_root = runs_dir() / run_id
    prov, prov_source = _run_provenance(record, run_root)
    sections = load_sections(run_root)

    pages = render_sections(results, out)

    n = {k: sum(s.status == k for s in results) for k in (OK, FAILED, SKIPPED)}
    counts = " ".join(badge(f"{n[k]} {k}", k) for k in (OK, FAILED, SKIPPED) if n[k] or k == OK)
    head = (f"<h1>slmstudy report — run <code>{esc(run_id)}</code></h1>"
            f'<p class="muted">generated {esc(_now())} · {esc(hardware_label(prov))}</p><p>{counts}</p>'
            '<nav><a href="#sections">Sections</a><a href="#run">Run summary</a><a href="#models">Models</a>'
            '<a href="#headlines">Headline results</a><a href="#claims">Claims ledger</a>'
            '<a href="#snapshots">Committed snapshots</a></nav>')
    body = "".join([
        head,
        _sections_html(results, pages, out),
        f'<h2 id="run">Run summary</h2>{_run_summary_html(run_id, scenario, prov, prov_source)}',
        f'<h2 id="models">Models and artifacts</h2>{_licences_html(out)}{_artifacts_html(artifact_rows())}',
        _headlines_html(results, pages, sections, snapshots, run_root, prov, out),
        f'<h2 id="claims">Claims ledger</h2>{_claims_html(sections.get("00_claims"), run_root)}',
        _snapshots_html(run_id, prov, sections, snapshots),
    ])
    index = out / "index.html"
    index.write_text(page(f"slmstudy report — {run_id}", body), encoding="utf-8")
    return index


# ---------------------------------------------------------------------------------- screenshots


def screenshot(html_file: str | os.PathLike, png: str | os.PathLike, width: int = 1280, height: int = 1600,
               chromium: str = "chromium", timeout_s: float = 120) -> Path:
    """A PNG of a local HTML file with headless chromium (Debian package `chromium`)."""
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which(chromium)
    if exe is None:
        raise FileNotFoundError(f"{chromium!r} not found; install it (Debian: apt-get install -y chromium)")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    with tempfile.TemporaryDirectory(prefix="slmstudy-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
               f"--window-size={width},{height}", f"--screenshot={png}",
               Path(html_file).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if not png.is_file() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return png
