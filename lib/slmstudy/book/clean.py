"""Turn an executed notebook into a book page's source: the reader's outputs only.

What leaves the page (and where it goes):
- stderr stream outputs — engine logs (llama.cpp's quantizer, vLLM's start-up), warnings, tqdm
  bars — go to `<name>.stderr.log`, cell by cell, kept with the run and linked from the page;
- ANSI colour codes and carriage-return progress redraws in stdout (the last redraw stays);
- widget views (tqdm.notebook) have no static rendering: their text/plain fallback stays, if any.

What changes on the page:
- every code cell is tagged `hide-input` (MyST-NB renders it as a collapsed "Show code cell
  source" block: one click to open), papermill's parameter cells too;
- each captioned figure (plotting.show puts `slmstudy.caption` in the output's metadata) becomes
  its own output cell with MyST-NB's `mystnb.figure` options, so the tool writes the <figure> and
  its numbered <figcaption>; a figure without a caption is kept and counted (`uncaptioned`), and
  the book's browser test fails on it;
- a markdown cell after the title links the log.

Follows MyST-NB's documented cell metadata (myst-nb 1.4 "Formatting code outputs": tags
`hide-input`/`remove-input`, `mystnb: figure: {caption, name}`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..execute import ANSI

#: a line an engine's logger wrote to stdout (vLLM logs there: "(EngineCore pid=1) WARNING 12-03
#: 09:52:29 [cpu.py:224] …"; Python logging's "INFO:name:…"; llama.cpp's "llama_model_loader: …")
STDOUT_LOG_LINE = re.compile(
    r"^\s*(\([^)\s]+ pid=\d+\)\s*)?(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b(\s+\d\d-\d\d \d\d:\d\d|:)"
    r"|^\s*\([^)\s]+ pid=\d+\)"
    r"|^(llama|llm_load|load_tensors|ggml|gguf|print_info|common_init|srv|slot|main):? ")
WIDGET = "application/vnd.jupyter.widget-view+json"
CAPTION_KEY = "slmstudy"  # output metadata: {"slmstudy": {"caption": ..., "name": ...}}


@dataclass
class Cleaned:
    nb: object
    log_lines: int = 0
    log_path: Path | None = None
    figures: int = 0
    uncaptioned: int = 0
    hidden_inputs: int = 0
    dropped: dict = field(default_factory=dict)


def _text(o) -> str:
    t = o.get("text", "")
    return "".join(t) if isinstance(t, list) else t


def _last_redraw(text: str) -> str:
    """'a\\rb\\rc\\n' → 'c\\n' per line: what a terminal would show after the redraws."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _figure_caption(o) -> tuple[str | None, str | None]:
    meta = (o.get("metadata") or {}).get(CAPTION_KEY) or {}
    return meta.get("caption"), meta.get("name")


def _label(name: str) -> str:
    return "fig-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def clean_notebook(nb, name: str, log_dir: Path) -> Cleaned:
    """A cleaned deep copy of the executed notebook `nb` (nbformat v4); stderr goes to
    log_dir/<name>.stderr.log."""
    import nbformat

    nb = copy.deepcopy(nb)
    res = Cleaned(nb=nb)
    log_parts: list[str] = []
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        tags = list(cell.metadata.get("tags", []))
        if "hide-input" not in tags and "remove-input" not in tags:
            tags.append("hide-input")
            res.hidden_inputs += 1
        cell.metadata["tags"] = tags
        kept, figure_cells, err = [], [], []
        for o in cell.get("outputs", []):
            kind = o.get("output_type")
            if kind == "stream" and o.get("name") == "stderr":
                err.append(ANSI.sub("", _text(o)))
                continue
            if kind == "stream":
                lines = _last_redraw(ANSI.sub("", _text(o))).splitlines(keepends=True)
                logged = [line for line in lines if STDOUT_LOG_LINE.search(line)]
                if logged:
                    err.append("[stdout: engine log lines]\n" + "".join(logged))
                    res.dropped["stdout log lines"] = res.dropped.get("stdout log lines", 0) + len(logged)
                rest = "".join(line for line in lines if not STDOUT_LOG_LINE.search(line))
                if rest.strip():
                    o["text"] = rest
                    kept.append(o)
                continue
            data = o.get("data") or {}
            if WIDGET in data:
                data.pop(WIDGET)
                res.dropped["widget"] = res.dropped.get("widget", 0) + 1
                if not data:
                    continue
            if kind == "error":
                o["traceback"] = [ANSI.sub("", t) for t in o.get("traceback", [])]
            if "image/png" in data or "image/svg+xml" in data:
                res.figures += 1
                caption, fig_name = _figure_caption(o)
                if caption:
                    # MyST-NB skips a cell whose source is empty: name what drew the figure
                    fc = nbformat.v4.new_code_cell(source=f"# figure {fig_name or i}: drawn by the cell above",
                                                   outputs=[o])
                    fc.metadata["tags"] = ["remove-input"]
                    fc.metadata["mystnb"] = {"figure": {"caption": caption,
                                                        "name": _label(fig_name or f"{name}-{i}")}}
                    figure_cells.append(fc)
                    continue
                res.uncaptioned += 1
            kept.append(o)
        if err:
            log_parts.append(f"==== cell {i} (execution count {cell.get('execution_count')})\n" + "".join(err))
        cell["outputs"] = kept
        cells.append(cell)
        cells.extend(figure_cells)
    nb.cells = merge_silent_code(cells)
    if log_parts:
        log_dir.mkdir(parents=True, exist_ok=True)
        res.log_path = log_dir / f"{name}.stderr.log"
        text = "\n".join(log_parts)
        res.log_path.write_text(text, encoding="utf-8")
        res.log_lines = text.count("\n") + 1
    return res


def merge_silent_code(cells: list) -> list:
    """Fold each run of code cells that print nothing into the next code cell that does, so one
    "Show code cell source" opens all the code behind an output (the executed notebook keeps the
    cells as they were). A silent run at the end of a section stays one cell."""
    out, pending = [], []
    for cell in cells:
        silent = cell.cell_type == "code" and not cell.get("outputs") and "remove-input" not in \
            cell.metadata.get("tags", [])
        if silent:
            pending.append(cell)
            continue
        if pending and cell.cell_type == "code" and "remove-input" not in cell.metadata.get("tags", []):
            cell.source = "\n\n".join([c.source for c in pending] + [cell.source])
            tags = {t for c in pending + [cell] for t in c.metadata.get("tags", [])}
            cell.metadata["tags"] = sorted(tags)
            pending = []
        elif pending:
            merged = pending[0]
            merged.source = "\n\n".join(c.source for c in pending)
            merged.metadata["tags"] = sorted({t for c in pending for t in c.metadata.get("tags", [])})
            out.append(merged)
            pending = []
        out.append(cell)
    if pending:
        merged = pending[0]
        merged.source = "\n\n".join(c.source for c in pending)
        out.append(merged)
    return out


def link_cell(markdown: str):
    """A markdown cell for the top of the page (after the title cell)."""
    import nbformat

    return nbformat.v4.new_markdown_cell(markdown)


def insert_after_title(nb, cell) -> None:
    """Insert `cell` after the first markdown cell that holds a level-1 heading (else first)."""
    for i, c in enumerate(nb.cells):
        if c.cell_type == "markdown" and re.search(r"^# ", c.source, re.MULTILINE):
            nb.cells.insert(i + 1, cell)
            return
    nb.cells.insert(0, cell)
