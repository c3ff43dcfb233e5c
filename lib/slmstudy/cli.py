"""Command line: `slmstudy prepare | run | report | screenshot` (also `python -m slmstudy.cli`).

    slmstudy prepare                      derive the embedded model's artifacts into the cache
    slmstudy run --params smoke           execute every notebook that has params/smoke/<nb>.yaml,
                                          then write build/report/index.html
    slmstudy report --run-id smoke        re-render the report from build/executed/smoke/
    slmstudy screenshot                   PNGs of the report index and one section page
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import report


def _say(msg: str) -> None:
    print(msg, flush=True)


def _scenarios() -> list[str]:
    root = report.PARAMS_DIR
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
        raw = yaml.safe_load(report.params_path(n, scenario).read_text(encoding="utf-8")) or {}
        if isinstance(raw, dict) and raw.get("run_id"):
            ids.add(str(raw["run_id"]))
    if len(ids) == 1:
        return ids.pop()
    if ids:
        _say(f"parameter files disagree on run_id ({sorted(ids)}); using {scenario!r} for all")
    return scenario


def cmd_run(args) -> int:
    from .provenance import provenance

    scenario = args.params
    if not (report.PARAMS_DIR / scenario).is_dir():
        _say(f"error: no parameter scenario {scenario!r} (folder {report.PARAMS_DIR / scenario}); "
             f"available: {', '.join(_scenarios())}")
        return 2
    available = report.available_notebooks()
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
        if report.params_path(n, scenario).is_file():
            to_run.append(n)
        else:
            _say(f"skip {n}: no params/{scenario}/{n}.yaml")
    if not to_run:
        _say(f"error: none of {', '.join(selected)} has parameters in params/{scenario}/")
        return 2
    run_id = args.run_id or _default_run_id(to_run, scenario)
    if os.environ.get("SLMSTUDY_BUILD") and not os.environ.get("SLMSTUDY_RUNS"):
        os.environ["SLMSTUDY_RUNS"] = str(report.build_dir() / "runs")  # kernels inherit it
    out_dir = report.executed_dir(run_id)
    _say(f"run {run_id!r}: scenario {scenario}, notebooks {', '.join(to_run) or '(none)'} → {out_dir}")

    prov = provenance({"scenario": scenario, "run_id": run_id})
    extra: dict = {}
    if args.no_prepare:
        _say("artifacts: not prepared (--no-prepare)")
    else:
        try:
            cmd_prepare(args)
        except Exception as exc:  # noqa: BLE001 — notebooks without a model can still run
            extra["prepare_error"] = f"{type(exc).__name__}: {exc}"
            _say(f"artifact preparation FAILED: {extra['prepare_error']}")

    statuses = [report.NotebookStatus(name=n, status=report.SKIPPED, run_id=run_id, scenario=scenario,
                                      error=f"no params/{scenario}/{n}.yaml") for n in selected if n not in to_run]
    # the claims ledger (00) is the study's conclusion: it judges by what the sections measured,
    # so it runs after them
    for n in sorted(to_run, key=report.execution_rank):
        _say(f"── {n}")
        st = report.execute_notebook(n, scenario, run_id, out_dir, timeout_per_cell=args.cell_timeout,
                                     progress_bar=not args.quiet)
        statuses.append(st)
        _say(f"   {st.status}" + (f" in {st.duration_s:.1f} s" if st.duration_s is not None else "")
             + (f": {st.error}" if st.status != report.OK and st.error else ""))
        # written after every notebook: an interrupted study still leaves a readable record
        report.write_run_record(run_id, scenario, statuses, prov, extra)
    statuses.sort(key=lambda s: s.name)
    report.write_run_record(run_id, scenario, statuses, prov, extra)
    index = report.build_report(run_id, statuses, scenario=scenario)
    failed = [s.name for s in statuses if s.status == report.FAILED]
    _say(f"report: {index}")
    if failed or extra.get("prepare_error"):
        _say(f"FAILED: {', '.join(failed) or 'artifact preparation'}")
        return 1
    return 0


def cmd_report(args) -> int:
    run_id = args.run_id
    ex = report.executed_dir(run_id)
    if not ex.is_dir():
        _say(f"error: no executed notebooks for run {run_id!r} at {ex}; run `slmstudy run --params <scenario>` first")
        return 2
    index = report.build_report(run_id)
    _say(f"report: {index}")
    return 0


def cmd_screenshot(args) -> int:
    rdir = report.report_dir()
    index = rdir / "index.html"
    if not index.is_file():
        _say(f"error: no report at {index}; run `slmstudy run --params <scenario>` or `slmstudy report` first")
        return 2
    pages = sorted(p for p in rdir.glob("[0-9][0-9]_*.html"))
    if args.section:
        pages = [p for p in pages if p.stem == args.section]
        if not pages:
            _say(f"error: no section page {args.section}.html in {rdir}")
            return 2
    out = Path(args.out) if args.out else report.build_dir() / "screenshots"
    targets = [index] + pages[:1]
    for html_file in targets:
        png = report.screenshot(html_file, out / f"{html_file.stem}.png", width=args.width, height=args.height)
        _say(f"screenshot: {png}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="slmstudy", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("prepare", help="derive the embedded model's artifacts (GGUF, HF, ONNX int4)")

    r = sub.add_parser("run", help="execute the notebooks with a parameter scenario and write the report")
    r.add_argument("--params", required=True, metavar="SCENARIO",
                   help="parameter scenario: a folder of params/ (default, smoke, ...)")
    r.add_argument("--notebooks", metavar="NN_a,NN_b", help="only these notebooks (comma-separated names)")
    r.add_argument("--run-id", help="results go to build/runs/<run-id>/ (default: the YAMLs' run_id)")
    r.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                   help="per-cell execution timeout in seconds (default: none)")
    r.add_argument("--no-prepare", action="store_true",
                   help="do not derive the embedded model's artifacts first (notebooks that need no model)")
    r.add_argument("--quiet", action="store_true", help="no per-cell progress bar")

    rp = sub.add_parser("report", help="re-render the report from build/executed/<run-id>/")
    rp.add_argument("--run-id", required=True)

    s = sub.add_parser("screenshot", help="PNG screenshots of the report with headless chromium")
    s.add_argument("--section", help="which section page (default: the first)")
    s.add_argument("--out", help="folder for the PNGs (default: build/screenshots)")
    s.add_argument("--width", type=int, default=1280)
    s.add_argument("--height", type=int, default=1600)
    return p


COMMANDS = {"prepare": cmd_prepare, "run": cmd_run, "report": cmd_report, "screenshot": cmd_screenshot}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
