"""The book's generated pages (MyST markdown; Sphinx writes the HTML): what a run and the committed
snapshots hold, read once into a `Context`, and the pages that list it — the claims ledger and
the run (statuses, provenance, models and licences). The front page is slmstudy.book.front."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import runs_dir, shown
from ..results import read_json
from ..tables import interval, num  # noqa: F401 — the pages print numbers as the notebooks do

RECORDS = "records"  # the book's copies of the records its pages link to

VERDICT_CLASS = {"consistent": "verdict-consistent", "inconsistent": "verdict-inconsistent",
                 "physically impossible": "verdict-impossible", "not testable here": "verdict-untestable"}


# ------------------------------------------------------------------------------ formatting


def size(n: Any) -> str:
    if n is None:
        return "—"
    for unit, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= f:
            return f"{n / f:.3g} {unit}"
    return f"{n} B"


def cell(x: Any) -> str:
    """Escape a table cell (pipes, newlines) for a MyST pipe table."""
    return str(x).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "*(none)*\n"
    out = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def verdict(v: str) -> str:
    return f"[{v}]{{.{VERDICT_CLASS.get(v, 'verdict-untestable')}}}"


# ------------------------------------------------------------------------------ what there is


@dataclass
class Source:
    """One set of measurements: this run, or a committed snapshot under results/."""

    name: str  # "this run (smoke)" / "h200-2026-12-02"
    kind: str  # "run" | "snapshot"
    hardware: str
    root: Path  # the folder of its section summaries
    sections: dict[str, dict]
    provenance: dict = field(default_factory=dict)
    record_prefix: str = ""  # records/<prefix>/ in the book


@dataclass
class Context:
    run_id: str
    src: Path
    record: dict  # run.json
    statuses: list[dict]
    sections: list[dict]  # write_section results, reading order
    run: Source
    snapshots: list[Source]
    ledger: list[dict]  # claims ledger rows (claims.ledger_rows + what judged them)
    ledger_source: str
    commands: list[dict] = field(default_factory=list)

    @property
    def sources(self) -> list[Source]:
        return [self.run] + self.snapshots

    def doc(self, section: str) -> str | None:
        """The section's page (a path MyST resolves from the book's root), None when not built."""
        s = next((s for s in self.sections if s["name"] == section), None)
        return f"{s['doc']}.ipynb" if s else None

    def record_link(self, source: Source, section: str, file: str = "summary.json") -> str | None:
        """Copy source's <section>/<file> into the book (once) and return its path for a link."""
        p = source.root / section / file
        if not p.is_file():
            return None
        return copy_record(p, self.src, f"{source.record_prefix}/{section}/{file}")


def artifact_rows(root: Path | None = None) -> list[dict]:
    """Every artifact.json under the cache: model, form, kind, real/replica, sha256s, size."""
    from ..paths import cache_dir

    root = Path(root or cache_dir())
    rows = []
    if not root.is_dir():
        return rows
    for m in sorted(root.rglob("artifact.json")):
        if any(".tmp-" in part for part in m.parts):
            continue
        data = read_json(m) or {}
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


def copy_record(path: Path, src: Path, rel_name: str) -> str:
    """Copy a record file into src/records/ (linked from the pages); returns its path from src."""
    import shutil

    dest = src / RECORDS / rel_name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, dest)
    return f"{RECORDS}/{rel_name}"



def context(run_id: str, src: Path, sections: list[dict], snapshot_dirs=None) -> Context:
    from .. import results as R
    from ..execute import read_run_record
    from ..provenance import hardware_label

    record = read_run_record(run_id) or {}
    run_root = runs_dir() / run_id
    prov = record.get("provenance") or read_json(run_root / "provenance.json") or {}
    run = Source(name=f"this run ({run_id})", kind="run", hardware=hardware_label(prov), root=run_root,
                 sections=R.load_sections(run_root), provenance=prov, record_prefix=f"run-{run_id}")
    snaps = []
    for d in (R.snapshot_dirs() if snapshot_dirs is None else [Path(p) for p in snapshot_dirs]):
        s = R.load_snapshot(Path(d))
        snaps.append(Source(name=s.name, kind="snapshot", hardware=s.hardware, root=Path(d), sections=s.sections,
                            provenance=s.provenance or {}, record_prefix=s.name))
    ledger, how, commands = _ledger(run.sections.get("00_claims"), run_root)
    return Context(run_id=run_id, src=src, record=record, statuses=record.get("notebooks") or [],
                   sections=sections, run=run, snapshots=snaps, ledger=ledger, ledger_source=how,
                   commands=commands)


def _ledger(summary: dict | None, run_root: Path) -> tuple[list[dict], str, list[dict]]:
    """The ledger as this run's 00_claims judged it, else judged now from the run and snapshots."""
    if summary and summary.get("rows"):
        return (summary["rows"], "as this run's 00_claims notebook judged it",
                summary.get("command_verdicts") or [])
    from .. import claims as C
    from ..claims import ledger, measured

    ev = ledger.measurements_from_run(run_root if run_root.is_dir() else None)
    claims, verdicts, _, _ = ledger.judge_ledger(ev)
    return (C.ledger_rows(claims, verdicts), "judged when the book was built (the run has no 00_claims results)",
            measured.command_verdicts(ev))


# ------------------------------------------------------------------------------ pages


def ledger_pages(ctx: Context) -> dict[str, str]:
    """ledger.md (the counts, one line per article) and ledger-<article>.md (its claims): one
    page per article keeps each page short enough to read."""
    from .. import claims as C

    rows = ctx.ledger
    counts = {v: sum(r["verdict"] == v for r in rows) for v in C.VERDICTS}
    nb = ctx.doc("00_claims")
    arts = sorted({r["article"] for r in rows})
    lines = ["# The claims ledger", "",
             f"Every number the five seed articles state — {len(rows)} claims — with the verbatim quote, "
             f"{ctx.ledger_source}. " + " · ".join(f"{verdict(v)} {n}" for v, n in counts.items()), ""]
    if nb:
        lines += [f"How each rule works, and the articles' command lines run as written: [the claims section]({nb}).",
                  ""]
    lines += [table(["article", "claims"] + list(C.VERDICTS),
                    [[f"[article {a}](ledger-{a}.md)", sum(r["article"] == a for r in rows)]
                     + [sum(r["article"] == a and r["verdict"] == v for r in rows) for v in C.VERDICTS]
                     for a in arts]), "",
              "```{toctree}", ":hidden:", ""] + [f"ledger-{a}" for a in arts] + ["```", ""]
    out = {"ledger": "\n".join(lines)}
    for art in arts:
        sub = [r for r in rows if r["article"] == art]
        out[f"ledger-{art}"] = "\n".join([
            f"# Article {art}: {len(sub)} claims", "",
            " · ".join(f"{verdict(v)} {sum(r['verdict'] == v for r in sub)}" for v in C.VERDICTS), "",
            table(["claim", "§", "model", "metric", "claimed", "precision", "hardware", "verdict", "basis",
                   "evidence", "quote"],
                  [[f"`{r['id']}`", r["section"], r["model"] or "—", r["metric"], r["claimed"],
                    r["precision"] or "—", r["hardware"] or "—", verdict(r["verdict"]), r["basis"],
                    r["evidence"], r["quote"]] for r in sub]), ""])
    return out


def run_page(ctx: Context) -> str:
    rec, prov = ctx.record, ctx.run.provenance
    git = prov.get("git") or {}
    lines = ["# The run", "",
             table(["", ""], [["run id", f"`{ctx.run_id}`"], ["scenario", f"`{rec.get('scenario') or '—'}`"],
                              ["hardware", ctx.run.hardware], ["git commit", f"`{git.get('commit') or '—'}`"
                               + (" (uncommitted changes)" if git.get("dirty") else "")],
                              ["started (UTC)", prov.get("time_utc") or "—"],
                              ["run record", f"`{shown(Path(rec['path']))}`" if rec.get("path") else
                               "`build/executed/<run id>/run.json`"]]),
             "## Sections", ""]
    st_rows = []
    for st in ctx.statuses:
        doc = ctx.doc(st["name"])
        name = f"[{st['name']}]({doc})" if doc else st["name"]
        err = st.get("error") or ""
        st_rows.append([name, st["status"], f"{st['duration_s']:.0f} s" if st.get("duration_s") is not None else "—",
                        f"`{st.get('params_file') or '—'}`", err])
    lines += [table(["section", "status", "time", "parameters", "error"], st_rows), ""]
    lines += grid_lines(rec.get("grid"))
    logs = [s for s in ctx.sections if s["log"]]
    if logs:
        lines += ["What each notebook printed to stderr (engine logs, warnings, progress bars) is kept out of "
                  "the pages: " + ", ".join(f"[{s['log']}](logs/{s['log']}) ({s['log_lines']} lines)"
                                           for s in logs) + ".", ""]
    lines += ["## Models and artifacts", "",
              "*real*: derived from a real checkpoint (a bundled GGUF: SmolLM2 or Gemma 3 270M); *replica*: random "
              "weights in a registered architecture — speed and memory only, never quality.", ""]
    arts = artifact_rows()
    lines += [table(["model", "form", "kind", "weights", "size", "sha256"],
                    [[a["model"], a["form"], a["kind"], a["label"], size(a["size_bytes"]),
                      f"`{(a['sha256'] or '—')[:16]}`"] for a in arts]) if arts else
              "No derived artifacts in the cache (`slmstudy prepare` makes them).\n", ""]
    lines += ["## Licences", "", licences(ctx), ""]
    hw = prov.get("hardware") or {}
    lines += ["## Machine and packages", "",
              table(["", ""], [["CPU", hw.get("cpu") or "—"],
                               ["cores (logical / physical)",
                                f"{hw.get('cores_logical', '—')} / {hw.get('cores_physical', '—')}"],
                               ["RAM", size(hw.get("ram_bytes"))],
                               ["GPUs", "; ".join(str(g.get("name")) for g in hw.get("gpus") or []) or "none"],
                               ["platform", hw.get("platform") or "—"], ["Python", hw.get("python") or "—"]]),
              "", table(["package", "version"], [[k, v] for k, v in (prov.get("packages") or {}).items()]), ""]
    lines += ["## Committed GPU snapshots", "",
              table(["snapshot", "hardware", "git commit", "time (UTC)", "sections"],
                    [[f"`results/{s.name}`", s.hardware, f"`{_commit(s.provenance)}`",
                      s.provenance.get("time_utc") or "—", ", ".join(s.sections) or "—"] for s in ctx.snapshots]),
              ""]
    return "\n".join(lines)


def grid_lines(grid: dict | None) -> list[str]:
    """The run page's account of a run made by `slmstudy grid`: the cluster, and per cell its
    attempts, the workers that died mid-cell, where it ran and its records counted by key."""
    if not grid:
        return []
    c = grid.get("cluster") or {}
    rows = [[f"`{x['cell']}`", "sections" if x.get("stage") == 0 else "after the sections",
             str(x.get("attempts")), ", ".join(str(p) for p in x.get("died") or []) or "—",
             x.get("host") or "—", ", ".join(x.get("gpus") or []) or "—",
             str(x.get("records")), str(x.get("keys")), str(x.get("duplicates"))] for x in grid.get("cells", [])]
    return ["## The grid", "",
            f"This run was dispatched by `slmstudy grid` (grid `{grid.get('grid_id')}`) on Ray: "
            f"{c.get('nodes', '—')} node(s), {c.get('CPU', 0):g} CPUs, {c.get('GPU', 0):g} GPUs "
            f"({c.get('address', '—')}), {grid.get('seconds', 0):.0f} s in all. A cell whose worker died "
            "was retried and resumed from its per-sample records; *records* counts the lines of its "
            "samples.jsonl, *keys* the distinct samples, *duplicated* those counted twice.", "",
            table(["cell", "stage", "attempts", "workers died mid-cell (pid)", "host", "GPUs", "records",
                   "keys", "duplicated"], rows), ""]


def _commit(prov: dict) -> str:
    return ((prov.get("git") or {}).get("commit") or "—")[:12]


def terms_text(html_file: Path) -> str:
    """The readable text of a terms page saved as HTML (Gemma's ships as Google's web page, whose
    head loads fonts and scripts from Google): headings, paragraphs and list items, nothing fetched."""
    from html.parser import HTMLParser

    class _Text(HTMLParser):
        BLOCK = {"p", "li", "h1", "h2", "h3", "h4", "h5", "div", "br", "tr", "section", "article"}

        def __init__(self):
            super().__init__()
            self.out, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            if tag in ("script", "style", "head", "nav", "footer"):
                self.skip += 1
            elif tag in self.BLOCK:
                self.out.append("\n")

        def handle_endtag(self, tag):
            if tag in ("script", "style", "head", "nav", "footer"):
                self.skip = max(0, self.skip - 1)

        def handle_data(self, data):
            if not self.skip:
                self.out.append(data)

    p = _Text()
    p.feed(html_file.read_text(encoding="utf-8", errors="replace"))
    lines = [" ".join(line.split()) for line in "".join(p.out).splitlines()]
    text, blank = [], False
    for line in lines:
        if line or not blank:
            text.append(line)
        blank = not line
    out = "\n".join(text).strip()
    at = out.find("\n\nLast modified")  # the terms start at their title, above the date: the site's menus go
    if at > 0:
        out = out[out.rfind("\n", 0, at - 1) + 1:]
    return out + "\n"


def licences(ctx: Context) -> str:
    """The real models and their licences; terms that ship with the weights (Gemma's) go into the
    book as their text, so the link opens offline and loads nothing."""
    from ..models import BUNDLED, get_model, license_terms

    items = []
    for key in BUNDLED:
        e = get_model(key)
        terms = license_terms(key)
        link = ""
        if terms is not None:
            dest = ctx.src / RECORDS / "licences" / f"{key}-terms.txt"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(f"The terms that ship with {e.hf_id}'s weights, as text (from {Path(terms).name}).\n\n"
                            + terms_text(Path(terms)), encoding="utf-8")
            link = f" — [the terms that ship with its weights]({RECORDS}/licences/{key}-terms.txt)"
        items.append(f"- **{e.hf_id}** (`{key}`): licence {e.license}{link}")
    return "\n".join(items)


def write_pages(ctx: Context) -> list[str]:
    """Write the ledger pages and run.md into the sources; returns the front toctree's entries."""
    docs = []
    for name, text in ledger_pages(ctx).items():
        (ctx.src / f"{name}.md").write_text(text, encoding="utf-8")
        docs.append(name)
    (ctx.src / "run.md").write_text(run_page(ctx), encoding="utf-8")
    return ["ledger", "run"]  # the toctree's entries; ledger-<article> hang below ledger

