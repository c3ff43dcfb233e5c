"""Write the book's sources for one run: cleaned section notebooks, their logs, the generated
pages (front page, ledger, run, snapshots) and the records they link to."""

from __future__ import annotations

from pathlib import Path

from ..paths import shown
from . import clean

SECTIONS = "sections"
LOGS = "logs"


def _executed(run_id: str) -> list[Path]:
    from ..execute import executed_dir

    return sorted(p for p in executed_dir(run_id).glob("[0-9][0-9]_*.ipynb"))


def section_order(names: list[str]) -> list[str]:
    """The sections in reading order: 01…05, then the claims ledger notebook (00) that concludes."""
    from ..execute import execution_rank

    return sorted(names, key=execution_rank)


def statuses(run_id: str) -> list[dict]:
    """The run's notebook statuses: run.json (written by `slmstudy run`), else recovered from the
    executed notebooks (an error output marks a failure)."""
    from ..execute import read_run_record, status_from_executed

    record = read_run_record(run_id) or {}
    if record.get("notebooks"):
        return record["notebooks"]
    return [status_from_executed(p, run_id).to_dict() for p in _executed(run_id)]


def failure_note(status: dict) -> str:
    tb = status.get("traceback") or ""
    last = "\n".join(tb.strip().splitlines()[-12:])
    return ("```{error}\nThis notebook failed: `" + str(status.get("error")).replace("`", "'") + "`. "
            "The outputs below stop at the failing cell; its traceback is the last output.\n```\n"
            + (f"\n```text\n{last}\n```\n" if last else ""))


def write_section(executed: Path, src: Path, status: dict | None = None) -> dict:
    """Clean one executed notebook into src/sections/ and its stderr into src/logs/."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    name = executed.stem
    res = clean.clean_notebook(nb, name, src / LOGS)
    if status and status.get("status") == "failed":
        clean.insert_after_title(res.nb, clean.link_cell(failure_note(status)))
    parts = []
    if res.log_path is not None:
        parts.append(f"Engine logs, warnings and progress output (stderr, {res.log_lines} lines) are kept "
                     f"out of this page: [{res.log_path.name}](../{LOGS}/{res.log_path.name}).")
    parts.append("Code cells are collapsed: *Show code cell source* opens one. The executed notebook "
                 f"is `{shown(executed)}`.")
    clean.insert_after_title(res.nb, clean.link_cell("```{note}\n" + " ".join(parts) + "\n```"))
    (src / SECTIONS).mkdir(parents=True, exist_ok=True)
    out = src / SECTIONS / f"{name}.ipynb"
    nbformat.write(res.nb, out)
    return {"name": name, "doc": f"{SECTIONS}/{name}", "figures": res.figures, "uncaptioned": res.uncaptioned,
            "log": res.log_path.name if res.log_path else None, "log_lines": res.log_lines,
            "status": (status or {}).get("status", "ok")}


def write_sources(run_id: str, src: Path, snapshot_dirs=None) -> list[str]:
    """Everything Sphinx reads; returns the document names in reading order."""
    from . import front, pages

    executed = {p.stem: p for p in _executed(run_id)}
    sts = statuses(run_id)
    by_name = {s["name"]: s for s in sts}
    sections = [write_section(executed[n], src, by_name.get(n)) for n in section_order(list(executed))]
    ctx = pages.context(run_id, src, sections, snapshot_dirs=snapshot_dirs)
    ctx.statuses = sts
    docs = ["index"] + [s["doc"] for s in sections] + pages.write_pages(ctx)
    front.write_index(ctx, docs)
    return docs
