"""`python -m slmstudy.evals SECTION --params FILE [--runs-root DIR]`: a quality section (03, 04
or 05) without its notebook — the same tasks (`build_tasks`), the same loop
(`runner.run_section`: records appended as each sample is scored, a rerun resumes) and the same
provenance, for a machine without Jupyter (the lent GPU). Its summary.json has the rows, the
model-vs-model and engine-parity tables (`runner.section_summary`) but not the notebooks' own
breakdowns (letter shares, MATH by level, lm-eval peer), which need the notebook's other steps."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

SECTIONS = {"03_chinese_quality": ("chinese", ("cmmlu", "ceval")),
            "04_math": ("mathx", ("gsm8k", "math500")),
            "05_code": ("code", ("humaneval", "mbpp", "bfcl_simple"))}
DATA_N = {"bfcl_simple": "bfcl_n"}  # the params field that says whether a dataset is used


def run(section: str, params_file: Path, *, engines: list[str] | None = None,
        progress: bool = True, summarize_only: bool = False) -> Path | None:
    """Run one section from a params file (only the targets on `engines`, if given); returns the
    summary.json path, which covers every record of the run folder's targets run so far."""
    import importlib

    import yaml

    from .. import datasets
    from ..errors import StudyError
    from ..params import validate
    from ..results import SectionResults
    from . import runner

    if section not in SECTIONS:
        raise StudyError(f"section {section!r}: choose one of {', '.join(SECTIONS)}")
    if not params_file.is_file():
        raise StudyError(f"params file {params_file} does not exist")
    P = validate(section, yaml.safe_load(params_file.read_text()) or {})
    full = P
    if engines:
        chosen = [t for t in P.targets if t.engine in engines]
        if not chosen:
            print(f"{section}: no target on {', '.join(engines)} in {params_file}")
            return None
        P = P.model_copy(update={"targets": chosen})
    mod_name, names = SECTIONS[section]
    mod = importlib.import_module(f"{__package__}.{mod_name}")
    results = SectionResults(P.run_id, section)
    tasks = mod.build_tasks(P)  # data files are checked against MANIFEST.json sha256 here
    used = [n for n in names if getattr(P, DATA_N.get(n, f"{n}_n"))]
    data_used = datasets.provenance(used, P.data_dir)
    extra_data = {}
    if section == "05_code":  # the sandbox layers of the machine the programs ran on
        from . import sandbox

        prov = results.dir / "provenance.json"
        recorded = (json.loads(prov.read_text()).get("data") or {}).get("sandbox_layers") \
            if prov.is_file() else None
        extra_data["sandbox_layers"] = (recorded or []) if summarize_only else sandbox.sandbox_layers()
    if summarize_only:
        infos = []
    else:
        runner.write_section_provenance(results, P.model_dump(), {**data_used, **extra_data})
        infos = _run_targets(section, P, tasks, results, progress)
    return _write_summary(section, results, full, tasks, infos, data_used, extra_data)


def _run_targets(section, P, tasks, results, progress) -> list[dict]:
    from . import runner

    print(f"{section}: {len(tasks)} tasks, {sum(len(t.samples) for t in tasks)} samples per "
          f"target, {len(P.targets)} targets, device {P.device}, batch {P.batch}", flush=True)
    _, infos = runner.run_section(P, tasks, results, progress=progress)
    return infos


def _write_summary(section, results, full, tasks, infos, data_used, extra_data) -> Path:
    from .. import schemas
    from . import chinese, runner

    # the summary covers every target of the params file scored so far (an earlier call may have
    # run the other engines' targets): their records of this plan's tasks, from the log
    ran = {i["label"]: i for i in infos}
    labels = [t.name() for t in full.targets]
    keys = {runner.record_key(task, SimpleNamespace(label=n), s.id)
            for n, t in zip(labels, full.targets) for task in runner.select_tasks(tasks, t)
            for s in task.samples}
    records = [r for r in results.records() if r.get("key") in keys]
    infos = [ran.get(n) or {"label": n, "model": t.model, "engine": t.engine, "load_s": None,
                            "note": "not run by this call"}
             for n, t in zip(labels, full.targets) if any(r["target"] == n for r in records)]
    # the section's own summary schema, as its notebook writes it (the lm-eval peer: none here)
    if section == "03_chinese_quality":
        summary = chinese.section_summary(records, full, infos, data_used, None)
    elif section == "04_math":
        level_rows = runner.summarize([r for r in records if r["task"] == "math500"],
                                      by=("target", "meta.level"))
        summary = runner.section_summary(records, full.model_dump(), schema=schemas.MathSummary, extra={
            "targets": infos, "math500_by_level": level_rows, "data": data_used, "peer_lmeval": None})
    else:
        summary = runner.section_summary(records, full.model_dump(), schema=schemas.CodeSummary, extra={
            "targets": infos, "sandbox_layers": list(extra_data["sandbox_layers"]), "data": data_used})
    return results.write_summary(summary)


def _main(argv: list[str] | None = None) -> int:
    from ..errors import StudyError

    ap = argparse.ArgumentParser(prog="python -m slmstudy.evals", description=__doc__)
    ap.add_argument("section", help=", ".join(SECTIONS))
    ap.add_argument("--params", required=True, type=Path, help="the section's params YAML")
    ap.add_argument("--runs-root", type=Path, help="where runs go (SLMSTUDY_RUNS; default build/runs)")
    ap.add_argument("--engines", help="only the targets on these engines (comma-separated)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--summarize", action="store_true",
                    help="run nothing: write summary.json from the records in the run folder")
    a = ap.parse_args(argv)
    if a.runs_root:
        os.environ["SLMSTUDY_RUNS"] = str(a.runs_root.resolve())
    try:
        path = run(a.section, a.params, progress=not a.quiet,
                   engines=a.engines.split(",") if a.engines else None, summarize_only=a.summarize)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if path:
        print(f"summary: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
