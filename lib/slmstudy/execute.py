"""Execute the study's notebooks with papermill and keep the run's record.

    build/executed/<run_id>/NN_name.ipynb     executed copies (papermill; saved after every cell)
    build/executed/<run_id>/run.json          what ran: statuses, errors, provenance at start

A notebook that fails never stops the others: its status carries the error and the executed copy
shows how far it got. The book (slmstudy.book) is built from these files.

`SLMSTUDY_BUILD` moves the build folder (executed notebooks, the book); per-run results follow
`SLMSTUDY_RUNS` (slmstudy.paths.runs_dir).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import time
import traceback as _tb
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import yaml

from .paths import BUILD_DIR, NOTEBOOKS_DIR, PARAMS_DIR, REPO_ROOT, shown

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
NOTEBOOK_NAME = re.compile(r"^\d{2}_[A-Za-z0-9_]+$")
#: terminal control sequences (colours, and the `?` private modes progress bars send, such as
#: ESC[?25l hiding the cursor): stripped from errors here and from outputs in the book (book/clean)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# ---------------------------------------------------------------------------------- locations


def build_dir() -> Path:
    """`SLMSTUDY_BUILD`, default build/ in the repository."""
    return Path(os.environ.get("SLMSTUDY_BUILD", BUILD_DIR)).expanduser().resolve()


def executed_dir(run_id: str) -> Path:
    return build_dir() / "executed" / run_id


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
