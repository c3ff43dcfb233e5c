"""Command line: `slmstudy prepare | run | report | screenshot` (also `python -m slmstudy.cli`).

    slmstudy prepare                      derive the embedded model's artifacts into the cache
    slmstudy run --params smoke           execute every notebook that has params/smoke/<nb>.yaml,
                                          then build the book build/book/smoke/html/index.html
                                          and read it in headless Chromium
    slmstudy grid --params smoke          the same notebooks as cells on Ray (one per GPU or CPU
                                          slot; --address joins a cluster), one run, one book
    slmstudy report --run-id smoke        rebuild the book from build/executed/smoke/
    slmstudy screenshot --run-id smoke    read the built book in Chromium again: its problems,
                                          a PNG of every page (build/book/smoke/screenshots/)
    slmstudy lab --params smoke           JupyterLab on the notebooks with that scenario's parameters
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import execute


def _say(msg: str) -> None:
    print(msg, flush=True)


def _scenarios() -> list[str]:
    root = execute.PARAMS_DIR
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def cmd_prepare(args) -> int:
    from . import artifacts

    arts = artifacts.prepare(progress=True)
    for name, m in arts.manifests().items():
        _say(f"{name:5s} {m.get('sha256')}  {m.get('kind')}")
    _say(f"artifacts: {arts.gguf.parent.parent}")
    return 0


def _default_run_id(names: list[str], scenario: str) -> str:
    """The run_id the selected YAMLs agree on, else the scenario name."""
    import yaml

    ids = set()
    for n in names:
        raw = yaml.safe_load(execute.params_path(n, scenario).read_text(encoding="utf-8")) or {}
        if isinstance(raw, dict) and raw.get("run_id"):
            ids.add(str(raw["run_id"]))
    if len(ids) == 1:
        return ids.pop()
    if ids:
        _say(f"parameter files disagree on run_id ({sorted(ids)}); using {scenario!r} for all")
    return scenario


def _select(args) -> tuple[list[str], list[str]] | int:
    """(selected, to_run) for --params/--notebooks, or an exit code after saying what is wrong."""
    scenario = args.params
    if not (execute.PARAMS_DIR / scenario).is_dir():
        _say(f"error: no parameter scenario {scenario!r} (folder {execute.PARAMS_DIR / scenario}); "
             f"available: {', '.join(_scenarios())}")
        return 2
    available = execute.available_notebooks()
    if args.notebooks:
        wanted = [n.strip() for n in args.notebooks.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in available]
        if unknown:
            _say(f"error: unknown notebook(s) {unknown}; available: {', '.join(available)}")
            return 2
        selected = [n for n in available if n in wanted]
    else:
        selected = available
    to_run = []
    for n in selected:
        if execute.params_path(n, scenario).is_file():
            to_run.append(n)
        else:
            _say(f"skip {n}: no params/{scenario}/{n}.yaml")
    if not to_run:
        _say(f"error: none of {', '.join(selected)} has parameters in params/{scenario}/")
        return 2
    return selected, to_run


def _start(args) -> tuple[str, list[str], list[str], str] | int:
    """(scenario, selected, to_run, run_id) of a run or grid, or an exit code after saying what
    is wrong; a moved build folder moves the results too (the kernels inherit SLMSTUDY_RUNS)."""
    sel = _select(args)
    if isinstance(sel, int):
        return sel
    selected, to_run = sel
    run_id = args.run_id or _default_run_id(to_run, args.params)
    if os.environ.get("SLMSTUDY_BUILD") and not os.environ.get("SLMSTUDY_RUNS"):
        os.environ["SLMSTUDY_RUNS"] = str(execute.build_dir() / "runs")
    return args.params, selected, to_run, run_id


def _skipped(selected: list[str], to_run: list[str], scenario: str, run_id: str) -> list:
    return [execute.NotebookStatus(name=n, status=execute.SKIPPED, run_id=run_id, scenario=scenario,
                                   error=f"no params/{scenario}/{n}.yaml") for n in selected if n not in to_run]


def _prepare(args) -> dict:
    """Derive the embedded model's artifacts unless --no-prepare; {"prepare_error": ...} on failure."""
    if args.no_prepare:
        _say("artifacts: not prepared (--no-prepare)")
        return {}
    try:
        cmd_prepare(args)
    except Exception as exc:  # noqa: BLE001 — notebooks without a model can still run
        _say(f"artifact preparation FAILED: {type(exc).__name__}: {exc}")
        return {"prepare_error": f"{type(exc).__name__}: {exc}"}
    return {}


def _finish(run_id: str, statuses, extra: dict, browser: bool) -> int:
    """The book of a finished run, then the exit code: 1 when a notebook, the artifacts or the book failed."""
    book_rc = _publish(run_id, check=browser)
    failed = [s.name for s in statuses if s.status == execute.FAILED]
    if failed or extra.get("prepare_error") or book_rc:
        _say(f"FAILED: {', '.join(failed + (['the book'] if book_rc else [])) or 'artifact preparation'}")
        return 1
    return 0


def cmd_run(args) -> int:
    from .provenance import provenance

    sel = _start(args)
    if isinstance(sel, int):
        return sel
    scenario, selected, to_run, run_id = sel
    out_dir = execute.executed_dir(run_id)
    _say(f"run {run_id!r}: scenario {scenario}, notebooks {', '.join(to_run) or '(none)'} → {out_dir}")

    prov = provenance({"scenario": scenario, "run_id": run_id})
    extra = _prepare(args)

    statuses = _skipped(selected, to_run, scenario, run_id)
    # the claims ledger (00) is the study's conclusion: it judges by what the sections measured,
    # so it runs after them
    for n in sorted(to_run, key=execute.execution_rank):
        _say(f"── {n}")
        st = execute.execute_notebook(n, scenario, run_id, out_dir, timeout_per_cell=args.cell_timeout,
                                     progress_bar=not args.quiet)
        statuses.append(st)
        _say(f"   {st.status}" + (f" in {st.duration_s:.1f} s" if st.duration_s is not None else "")
             + (f": {st.error}" if st.status != execute.OK and st.error else ""))
        # written after every notebook: an interrupted study still leaves a readable record
        execute.write_run_record(run_id, scenario, statuses, prov, extra)
    statuses.sort(key=lambda s: s.name)
    execute.write_run_record(run_id, scenario, statuses, prov, extra)
    return _finish(run_id, statuses, extra, browser=not args.no_browser)


def cmd_grid(args) -> int:
    """The scenario's notebooks as cells on Ray (slmstudy.grid), gathered into one run and one book."""
    from . import grid
    from .errors import StudyError
    from .provenance import provenance

    sel = _start(args)
    if isinstance(sel, int):
        return sel
    scenario, selected, to_run, run_id = sel
    _say(f"grid {run_id!r}: scenario {scenario}, cells {', '.join(to_run)} → {execute.executed_dir(run_id)}")
    prov = provenance({"scenario": scenario, "run_id": run_id})
    extra = _prepare(args)
    try:
        res = grid.run_grid(to_run, scenario, run_id, address=args.address, workers=args.workers,
                            cpus_per_cell=args.cpus_per_cell, gpus_per_cell=args.gpus_per_cell,
                            retries=args.retries,
                            timeout_per_cell=args.cell_timeout, say=_say, progress=not args.quiet)
    except StudyError as exc:
        _say(f"grid FAILED: {exc}")
        return 1
    statuses = sorted(res.statuses + _skipped(selected, to_run, scenario, run_id), key=lambda s: s.name)
    extra["grid"] = res.record()
    execute.write_run_record(run_id, scenario, statuses, prov, extra)
    for c in res.cells:
        _say(f"   {c['cell']}: {c['attempts']} attempt(s)"
             + (f", worker(s) {c['died']} died mid-cell" if c["died"] else "")
             + f"; {c['records']} records, {c['keys']} keys, {c['duplicates']} duplicated")
    _say(f"grid: {len(res.cells)} cells in {res.seconds:.0f} s")
    return _finish(run_id, statuses, extra, browser=not args.no_browser)


def _say_problems(problems: list[str], where: Path) -> None:
    if problems:
        _say(f"WARNING: the browser found {len(problems)} problem(s) a reader would meet ({where}):")
        for p in problems[:20]:
            _say(f"  - {p}")
    else:
        _say("browser: every page read cleanly (heights, images, captions, no stderr, CJK glyphs, "
             "links, no request leaving the machine)")


def _publish(run_id: str, check: bool = True) -> int:
    """Build the book, then read it in Chromium (book.publish in two steps, saying which failed):
    1 when the book could not be built; a browser that cannot start is said, the book stands."""
    from . import book

    try:
        res = book.build_book(run_id)
    except Exception as exc:  # noqa: BLE001 — the run's files stay; the message names the fix
        _say(f"book FAILED: {type(exc).__name__}: {exc}")
        return 1
    _say(f"book: {res.index} ({len(res.pages)} pages, {res.seconds:.0f} s"
         + (f", {len(res.warnings)} Sphinx warnings in {res.log}" if res.warnings else "") + ")")
    if not check:
        return 0
    root = res.html_dir.parent
    try:
        browser = book.read_in_browser(res)
    except Exception as exc:  # noqa: BLE001 — e.g. no Chromium: the book is built, unread
        _say(f"WARNING: the book was not read in a browser ({type(exc).__name__}: {exc})")
        return 0
    _say_problems(browser.problems(), root / "browser.json")
    _say(f"screenshots: {root / 'screenshots'}")
    return 0


def cmd_report(args) -> int:
    run_id = args.run_id
    ex = execute.executed_dir(run_id)
    if not ex.is_dir():
        _say(f"error: no executed notebooks for run {run_id!r} at {ex}; run `slmstudy run --params <scenario>` first")
        return 2
    return _publish(run_id, check=not args.no_browser)


def cmd_screenshot(args) -> int:
    from . import book

    root = book.book_dir(args.run_id)
    index = root / "html" / "index.html"
    if not index.is_file():
        _say(f"error: no book at {index}; run `slmstudy run --params <scenario>` or "
             f"`slmstudy report --run-id {args.run_id}` first")
        return 2
    out = Path(args.out) if args.out else root / "screenshots"
    rep = book.check_book(index.parent, screenshots=out, width=args.width, via=args.via)
    for p in rep.pages:
        _say(f"{p.page}: {p.height} px · {p.screenshot}")
    _say_problems(rep.problems(), out)
    return 1 if rep.problems() else 0


def prepare_lab(scenario: str, out_dir: Path) -> list[Path]:
    """papermill's prepare-only: each notebook with params/<scenario>/<nb>.yaml injected as its
    `injected-parameters` cell, not executed, in out_dir (the paired notebooks/ stay as they are)."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for n in execute.available_notebooks():
        if not execute.params_path(n, scenario).is_file():
            continue
        params = execute.read_params(n, scenario, run_id=f"lab-{scenario}")
        out = out_dir / f"{n}.ipynb"
        pm.execute_notebook(str(execute.NOTEBOOKS_DIR / f"{n}.ipynb"), str(out), parameters=params,
                            prepare_only=True, kernel_name="python3", progress_bar=False)
        made.append(out)
    return made


def cmd_lab(args) -> int:
    import shutil
    import subprocess

    scenario = args.params
    if not (execute.PARAMS_DIR / scenario).is_dir():
        _say(f"error: no parameter scenario {scenario!r}; available: {', '.join(_scenarios())}")
        return 2
    if scenario == "default":
        root = execute.NOTEBOOKS_DIR  # the parameter cells' defaults are the default scenario
        _say(f"JupyterLab on {root}: the paired notebooks (edits to .ipynb are written to .py too)")
    else:
        root = execute.build_dir() / "lab" / scenario
        made = prepare_lab(scenario, root)
        _say(f"JupyterLab on {root}: {len(made)} notebooks with params/{scenario}/ injected "
             f"(results go to build/runs/lab-{scenario}/; edit the paired notebooks/*.py to change the study)")
    exe = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or shutil.which("jupyter")
    if exe is None:
        _say("error: jupyter not found in the study's environment; run `make setup`")
        return 2
    cmd = [exe, "lab", f"--ServerApp.root_dir={root}", "--no-browser", f"--port={args.port}"]
    if args.dry_run:
        _say("would run: " + " ".join(cmd))
        return 0
    return subprocess.call(cmd, cwd=str(execute.REPO_ROOT))


def _run_arguments(p: argparse.ArgumentParser, *, scenario_help: str, quiet_help: str) -> None:
    """The options `run` and `grid` share: which notebooks with which parameters, and how."""
    p.add_argument("--params", required=True, metavar="SCENARIO", help=scenario_help)
    p.add_argument("--notebooks", metavar="NN_a,NN_b", help="only these notebooks (comma-separated names)")
    p.add_argument("--run-id", help="results go to build/runs/<run-id>/ (default: the YAMLs' run_id)")
    p.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                   help="per-cell execution timeout in seconds (default: none)")
    p.add_argument("--no-prepare", action="store_true",
                   help="do not derive the embedded model's artifacts first (notebooks that need no model)")
    p.add_argument("--quiet", action="store_true", help=quiet_help)
    p.add_argument("--no-browser", action="store_true", help="build the book but do not read it in Chromium")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="slmstudy", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("prepare", help="derive the embedded model's artifacts (GGUF, HF, ONNX int4)")

    r = sub.add_parser("run", help="execute the notebooks with a parameter scenario and write the report")
    _run_arguments(r, scenario_help="parameter scenario: a folder of params/ (default, smoke, ...)",
                   quiet_help="no per-cell progress bar")

    g = sub.add_parser("grid", help="the scenario's notebooks as cells on Ray (one per GPU or CPU "
                                    "slot), gathered into one run and one book")
    _run_arguments(g, scenario_help="parameter scenario: a folder of params/ (one cell per notebook it "
                                    "has a file for)", quiet_help="no progress bar")
    g.add_argument("--address", help="join this Ray cluster (`ray start --head` prints it; 'auto' finds "
                                     "one on this machine); default: start a local one for the grid")
    g.add_argument("--workers", type=int, metavar="N",
                   help="local cluster: cells at a time on a CPU machine (default: one per core)")
    g.add_argument("--cpus-per-cell", type=float, default=1.0, metavar="C",
                   help="CPUs one cell holds on a machine without GPUs (default 1)")
    g.add_argument("--gpus-per-cell", type=int, default=1, metavar="G",
                   help="GPUs one cell holds where the cluster has GPUs (default 1; 2 for a TP=2 target)")
    g.add_argument("--retries", type=int, default=3,
                   help="times a cell is retried when its worker dies (Ray's max_retries; default 3)")

    rp = sub.add_parser("report", help="rebuild the book from build/executed/<run-id>/")
    rp.add_argument("--run-id", required=True)
    rp.add_argument("--no-browser", action="store_true", help="do not read the book in Chromium")

    s = sub.add_parser("screenshot", help="read the built book in headless Chromium; a PNG of every page")
    s.add_argument("--run-id", required=True)
    s.add_argument("--out", help="folder for the PNGs (default: build/book/<run-id>/screenshots)")
    s.add_argument("--width", type=int, default=1280)
    s.add_argument("--via", choices=("http", "file"), default="http",
                   help="serve the book on 127.0.0.1 (default) or open it from file://")
    lb = sub.add_parser("lab", help="JupyterLab on the notebooks with a scenario's parameters")
    lb.add_argument("--params", default="default", metavar="SCENARIO")
    lb.add_argument("--port", type=int, default=8888)
    lb.add_argument("--dry-run", action="store_true", help="prepare the notebooks, print the command, start nothing")
    return p


COMMANDS = {"prepare": cmd_prepare, "run": cmd_run, "grid": cmd_grid, "report": cmd_report,
            "screenshot": cmd_screenshot, "lab": cmd_lab}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
