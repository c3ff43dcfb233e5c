"""The published report is a book: `slmstudy run` executes the notebooks with papermill, builds a
Sphinx + MyST-NB book from them (stderr and engine logs moved to log files, code collapsed,
figures captioned, the answer first) and reads every page in headless Chromium. A failing notebook
is shown as failed while the others still render; committed snapshots stand beside the run; the
browser check finds each planted fault."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from slmstudy import claims as C
from slmstudy import cli, execute, results, schemas
from slmstudy.book import browser, clean, pages
from slmstudy.claims import ledger
from slmstudy.errors import StudyError
from slmstudy.paths import REPO_ROOT
from slmstudy.schemas import SpeedRow, SpeedSummary

CHROMIUM = Path("/usr/bin/chromium")


def build_env(build: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SLMSTUDY_BUILD=str(build), SLMSTUDY_RUNS=str(build / "runs"), MPLBACKEND="Agg")
    return env


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed (`make setup`)")


# ---------------------------------------------------------------- end to end: slmstudy run


@pytest.fixture(scope="module")
def claims_run(tmp_path_factory):
    """`slmstudy run --params smoke --notebooks 00_claims` into a temporary build folder: the
    notebook runs, the book is built and read in Chromium."""
    build = tmp_path_factory.mktemp("build")
    run_id = "test-report"
    proc = subprocess.run(
        [sys.executable, "-m", "slmstudy.cli", "run", "--params", "smoke", "--notebooks", "00_claims",
         "--run-id", run_id, "--no-prepare", "--quiet", "--cell-timeout", "300"],
        cwd=str(REPO_ROOT), env=build_env(build), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"slmstudy run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    index = build / "book" / run_id / "html" / "index.html"
    assert f"book: {index}" in proc.stdout
    return build, run_id, index, proc.stdout


def test_run_writes_the_claims_summary_derived_from_the_ledger(claims_run):
    build, run_id, _, _ = claims_run
    summary = json.loads((build / "runs" / run_id / "00_claims" / "summary.json").read_text())
    # judged by the measurements the run folder and the committed snapshots hold
    claims, verdicts, arch, _ = ledger.judge_ledger(ledger.measurements_from_run(build / "runs" / run_id))
    assert summary["evidence_sources"] and any(r["basis"] == "measurement" for r in summary["rows"])
    assert summary["n_claims"] == len(claims) > 0
    assert summary["verdict_counts"] == C.verdict_counts(verdicts)
    assert sum(summary["verdict_counts"].values()) == len(claims)
    assert [r["id"] for r in summary["rows"]] == [c.id for c in claims]
    assert all(r["verdict"] in C.VERDICTS and r["evidence"] for r in summary["rows"])
    assert set(summary["arch"]) == set(arch)
    assert summary["params"] == {"run_id": run_id}  # run_id from --run-id, not the YAML
    record = json.loads((build / "executed" / run_id / "run.json").read_text())
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [("00_claims", "ok")]
    assert record["provenance"]["hardware"]["cores_logical"] >= 1


@needs_chromium
def test_the_built_book_reads_cleanly_in_chromium(claims_run):
    """The browser's reading of the real build: no stderr or log areas, bounded heights, every image
    loaded and captioned, CJK drawn with glyphs, every internal link resolving, nothing requested
    from outside 127.0.0.1 — from a static server (during `slmstudy run`) and from file://."""
    build, run_id, index, stdout = claims_run
    book = index.parent.parent
    report = json.loads((book / "browser.json").read_text())
    assert report["problems"] == [] and "every page read cleanly" in stdout
    assert report["base"].startswith("http://127.0.0.1:")
    by = {p["page"]: p for p in report["pages"]}
    claims_page = by["sections/00_claims.html"]
    assert claims_page["cjk_chars"] > 50 and claims_page["cjk_missing"] == []  # the articles' quotes
    assert len(claims_page["images"]) == 1 and claims_page["images"][0]["captioned"]
    assert by["index.html"]["images"] and all(i["captioned"] for i in by["index.html"]["images"])
    for p in report["pages"]:
        assert Path(p["screenshot"]).is_file() and p["height"] <= browser.MAX_HEIGHT_PX
    # the same book from file:// (a reader who opens the folder)
    again = browser.check_book(index.parent, via="file", pages=["index.html", "sections/00_claims.html",
                                                               "ledger.html"])
    assert again.problems() == [] and again.base.startswith("file://")
    # Sphinx's search, offline: the claims ledger's pages hold the word "roofline"
    assert any("Claims ledger" in t for t in browser.search_titles(index.parent, "roofline"))
    assert browser.search_titles(index.parent, "zzqxnotaword") == []
    # no page carries a script or stylesheet from a network: the theme's assets are in _static/
    for page in [*index.parent.rglob("*.html"), *index.parent.rglob("*.txt")]:
        text = page.read_text(encoding="utf-8")
        assert "https://cdn" not in text and "fonts.googleapis" not in text, page


def test_front_page_answers_first_with_the_ledger_counts(claims_run):
    """The front page's scorecard is the ledger's own count per article, judged independently here
    from the run folder and the committed snapshots; the GPU snapshots' speed tables stand on it."""
    build, run_id, index, _ = claims_run
    claims, verdicts, _, _ = ledger.judge_ledger(ledger.measurements_from_run(build / "runs" / run_id))
    src = (index.parent.parent / "src" / "index.md").read_text(encoding="utf-8")
    per = ledger.counts_by_article(claims, verdicts)
    for article, counts in per.items():
        row = f"| [{article}](ledger-{article}.md) | {sum(counts.values())} | " + " | ".join(
            str(counts[v]) for v in C.VERDICTS)
        assert row in src, row
    assert f"**{len(claims)} checkable claims**" in src
    for snap in results.snapshot_dirs():  # each committed speed snapshot, folded
        assert (f"<strong>Speed: {snap.name}</strong>" in src) == (snap / "02_speed" / "summary.json").is_file()
        scored = [json.loads((snap / sec / "summary.json").read_text()).get("rows") or []
                  for sec in ("03_chinese_quality", "04_math", "05_code") if (snap / sec / "summary.json").is_file()]
        if any(scored):  # each committed quality snapshot, folded, with its rows and items counted
            rows = [r for rs in scored for r in rs]
            assert (f"<strong>Quality: {snap.name}</strong>" in src
                    and f"{len(rows)} rows, {sum(r['n'] for r in rows):,} items scored" in src), snap.name
    html = index.read_text(encoding="utf-8")
    assert "decode tok/s" in html and "of roofline" in html and "Figure 1" in html
    # Gemma's terms travel with the book, as their text (the saved web page would load Google's fonts)
    terms = next(index.parent.glob("_downloads/*/gemma3_270m-terms.txt")).read_text(encoding="utf-8")
    assert terms.splitlines()[2:4] == ["Gemma Terms of Use", ""] and "Last modified" in terms


def test_a_section_page_collapses_code_and_links_its_log(tmp_path, monkeypatch):
    """An executed notebook with stderr (a tqdm bar), vLLM's logger on stdout and a captioned
    figure: the page shows the result, not the logs; the log file is linked; code is collapsed."""
    for k, v in build_env(tmp_path / "build").items():
        monkeypatch.setenv(k, v)
    ex = execute.executed_dir("planted")
    ex.mkdir(parents=True)
    png = (REPO_ROOT / "tests" / "data").glob("*.png")
    fig = next(png, None)
    image = fig.read_bytes() if fig else _tiny_png()
    import base64

    cells = [new_markdown_cell("# 09 · Planted: 中文 quality"),
             new_code_cell("x = 1"),
             new_code_cell("print(x)", outputs=[
                 new_output("stream", name="stdout", text="the result 42\n(EngineCore pid=7) WARNING 12-03 "
                            "09:52:29 [cpu.py:224] PLANTED-VLLM\n"),
                 new_output("stream", name="stderr", text="Loading: 100%|#####| 272/272 PLANTED-TQDM\n")]),
             new_code_cell("plotting.show(fig, 'planted', caption='A planted figure')", outputs=[
                 new_output("display_data", data={"image/png": base64.b64encode(image).decode(),
                                                   "text/plain": "<IPython.core.display.Image object>"},
                            metadata={"slmstudy": {"caption": "A planted figure", "name": "planted"}})])]
    nbformat.write(new_notebook(cells=cells), ex / "09_planted.ipynb")
    from slmstudy import book

    res, rep = book.publish("planted", snapshot_dirs=[])
    page = (res.html_dir / "sections" / "09_planted.html").read_text(encoding="utf-8")
    assert "the result 42" in page and "PLANTED-VLLM" not in page and "PLANTED-TQDM" not in page
    log = res.src_dir / "logs" / "09_planted.stderr.log"
    assert "PLANTED-TQDM" in log.read_text() and "PLANTED-VLLM" in log.read_text()
    assert "09_planted.stderr.log" in page
    assert "Show code cell source" in page and "<details" in page
    assert "<figcaption" in page and "A planted figure" in page
    if CHROMIUM.exists():
        assert rep.problems() == []


def _tiny_png() -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


@needs_chromium
def test_the_browser_check_finds_each_planted_fault(claims_run, tmp_path):
    """Plant into a copy of the built book: a stderr output area, a log line in an output, a broken
    link, a broken anchor, a missing image, an uncaptioned output figure, a script from a CDN, a
    page taller than the bound and a CJK character no installed font has (U+9FFF). Each is named."""
    _, _, index, _ = claims_run
    html = tmp_path / "html"
    shutil.copytree(index.parent, html)
    page = html / "sections" / "00_claims.html"
    text = page.read_text(encoding="utf-8")
    planted = ('<div class="cell_output docutils container"><div class="output stderr highlight-myst-ansi">'
               '<pre>planted stderr</pre></div><div class="output stream highlight-myst-ansi"><pre>'
               '(EngineCore pid=9) WARNING 12-03 10:00:00 [x.py:1] planted</pre></div>'
               '<img src="../_images/does-not-exist.png" alt=""></div>'
               '<a href="../no-such-page.html">broken</a> <a href="../index.html#no-such-anchor">anchor</a>'
               '<script src="https://cdn.example.com/planted.js"></script>'
               '<div style="height:30000px"></div><p>\u9fff</p>')
    page.write_text(text.replace("</article>", planted + "</article>", 1), encoding="utf-8")
    rep = browser.check_book(html, pages=["sections/00_claims.html", "index.html"])
    problems = "\n".join(rep.problems())
    for expected in ("stderr output area", "log output on the page", "no-such-page.html (no file)",
                     "#no-such-anchor (no anchor", "image not loaded: ../_images/does-not-exist.png",
                     "figure without a caption", "request leaving the machine: https://cdn.example.com/planted.js",
                     "px tall (bound", "CJK characters drawn without a glyph"):
        assert expected in problems, f"{expected!r} not found in:\n{problems}"
    assert not [p for p in rep.problems() if p.startswith("index.html")]  # the untouched page stays clean


def test_a_page_that_never_goes_quiet_is_named_not_a_crash(claims_run, tmp_path):
    """A page still fetching when the wait ends is a named problem, and the other pages are read."""
    _, _, index, _ = claims_run
    html = tmp_path / "html"
    shutil.copytree(index.parent, html)
    page = html / "ledger.html"
    busy = "<script>setInterval(() => fetch('index.html?' + Math.random()), 100)</script>"
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", busy + "</body>", 1), encoding="utf-8")
    rep = browser.check_book(html, pages=["ledger.html", "index.html"], timeout_s=3)
    assert "ledger.html: still making requests 3 s after it loaded" in rep.problems()
    assert [p.page for p in rep.pages] == ["ledger.html", "index.html"]


# ---------------------------------------------------------------- a failing notebook


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('run_id = "default"  # results folder name')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params, nbformat.v4.new_code_cell(body),
                nbformat.v4.new_code_cell('print("after the failure")')]
    nbformat.write(nb, path)


@pytest.fixture
def broken_study(tmp_path, monkeypatch):
    """A notebooks/ and params/ of three notebooks: one fine, one broken, one without parameters."""
    nbs, params, build = tmp_path / "notebooks", tmp_path / "params", tmp_path / "build"
    (params / "smoke").mkdir(parents=True)
    nbs.mkdir()
    _notebook(nbs / "97_fine.ipynb",
              "from slmstudy.results import SectionResults\n"
              "SectionResults(run_id, '97_fine').write_summary({'answer': 42, 'rows': [{'k': 'a', 'v': 1.5}]})\n"
              "print('the fine answer 42')")
    _notebook(nbs / "98_broken.ipynb", 'raise ValueError("deliberately broken for the report test")')
    _notebook(nbs / "99_noparams.ipynb", "pass")
    for name in ("97_fine", "98_broken"):
        (params / "smoke" / f"{name}.yaml").write_text("run_id: smoke\n")
    monkeypatch.setattr(execute, "NOTEBOOKS_DIR", nbs)
    monkeypatch.setattr(execute, "PARAMS_DIR", params)
    for k, v in build_env(build).items():
        monkeypatch.setenv(k, v)
    return build


def test_a_failed_notebook_is_reported_while_the_others_render(broken_study, capsys):
    build = broken_study
    rc = cli.main(["run", "--params", "smoke", "--run-id", "broken", "--no-prepare", "--quiet", "--no-browser"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "skip 99_noparams: no params/smoke/99_noparams.yaml" in out
    assert "FAILED: 98_broken" in out

    record = json.loads((build / "executed" / "broken" / "run.json").read_text())
    status = {n["name"]: n for n in record["notebooks"]}
    assert status["97_fine"]["status"] == "ok"
    assert status["98_broken"]["status"] == "failed"
    assert status["98_broken"]["error"] == 'ValueError: deliberately broken for the report test (cell [3])'
    assert "deliberately broken" in status["98_broken"]["traceback"]
    assert status["99_noparams"]["status"] == "skipped"

    html = build / "book" / "broken" / "html"
    run_page = (html / "run.html").read_text(encoding="utf-8")
    assert "ValueError: deliberately broken for the report test" in run_page
    assert "98_broken" in run_page and "skipped" in run_page and "failed" in run_page
    assert (html / "sections" / "97_fine.html").is_file() and (html / "sections" / "98_broken.html").is_file()
    assert not (html / "sections" / "99_noparams.html").exists()
    broken = (html / "sections" / "98_broken.html").read_text(encoding="utf-8")
    assert "This notebook failed" in broken and "deliberately broken" in broken
    executed = nbformat.read(build / "executed" / "broken" / "98_broken.ipynb", as_version=4)
    assert executed.cells[-1].outputs == []  # execution stopped at the failing cell
    fine = (html / "sections" / "97_fine.html").read_text(encoding="utf-8")
    assert "the fine answer 42" in fine and "This notebook failed" not in fine
    assert browser.broken_links(html, html / "run.html") == []

    # `slmstudy report` rebuilds the same from the executed notebooks and run.json
    shutil.rmtree(html)
    assert cli.main(["report", "--run-id", "broken", "--no-browser"]) == 0
    assert "ValueError: deliberately broken" in (html / "run.html").read_text(encoding="utf-8")


def test_report_recovers_statuses_without_run_json(broken_study, capsys):
    build = broken_study
    assert cli.main(["run", "--params", "smoke", "--run-id", "norecord", "--no-prepare", "--quiet",
                     "--no-browser"]) == 1
    (build / "executed" / "norecord" / "run.json").unlink()
    assert cli.main(["report", "--run-id", "norecord", "--no-browser"]) == 0
    text = (build / "book" / "norecord" / "html" / "sections" / "98_broken.html").read_text(encoding="utf-8")
    assert "This notebook failed" in text and "deliberately broken for the report test" in text


def test_invalid_parameters_fail_before_the_kernel_starts(tmp_path, monkeypatch):
    params = tmp_path / "params"
    (params / "bad").mkdir(parents=True)
    (params / "bad" / "00_claims.yaml").write_text("run_id: x\nbogus_key: 1\n")
    monkeypatch.setattr(execute, "PARAMS_DIR", params)
    st = execute.execute_notebook("00_claims", "bad", "x", tmp_path / "out", progress_bar=False)
    assert st.status == "failed" and st.executed is None
    assert "bogus_key" in st.error and "00_claims.yaml" in st.error


# ---------------------------------------------------------------- snapshots and pure helpers


def test_snapshots_are_listed_beside_the_run_with_their_hardware(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMSTUDY_RUNS", str(tmp_path / "runs"))
    snap = tmp_path / "results" / "h100-demo"
    (snap / "02_speed").mkdir(parents=True)
    (snap / "provenance.json").write_text(json.dumps({
        "time_utc": "2026-11-20T10:00:00+00:00", "git": {"commit": "abc123", "dirty": False},
        "hardware": {"cpu": "Intel Xeon Platinum 8480+", "cores_logical": 16, "ram_bytes": 128 * 2**30,
                     "gpus": [{"name": "NVIDIA H100 80GB HBM3", "driver": "550.54", "memory": "81559 MiB"}]}}))
    row = SpeedRow(
        target="qwen25_7b/vllm/bfloat16/replica", engine="vllm", model="qwen25_7b", label="replica",
        mode="inproc", concurrency=1, n_requests=3, length_ok=True, weights_bytes=15_231_233_024,
        bytes_read_per_token=14_166_000_000, load_s=60.0, peak_rss_bytes=2**30, itl_p50_s=0.0066,
        itl_p90_s=0.0067, itl_p99_s=0.0070, itl_per="token", chars_per_s=None, aggregate_tok_s=151.0,
        ttft_s=0.0123, ttft_s_ci_low=0.012, ttft_s_ci_high=0.0125, decode_tok_s=151.2,
        decode_tok_s_ci_low=150.1, decode_tok_s_ci_high=152.0, e2e_s=1.7, e2e_s_ci_low=1.69,
        e2e_s_ci_high=1.71, cv_decode=0.004, roofline_tok_s=212.0, roofline_fraction=0.71)
    summary = SpeedSummary(bandwidth={"bandwidth_bytes_s": 3.0e12}, rows=[row], llamacpp_clock_agreement=[],
                           vllm_bench_validation=[], snapshot_claims={}, params={})
    (snap / "02_speed" / "summary.json").write_text(summary.model_dump_json())
    from slmstudy.book import build_book

    res = build_book("snaptest", snapshot_dirs=[snap], out_dir=tmp_path / "book")
    src = (res.src_dir / "index.md").read_text(encoding="utf-8")
    assert "<summary><strong>Speed: h100-demo</strong>" in src and "</details>" in src
    assert "1× NVIDIA H100 80GB HBM3 (driver 550.54)" in src
    assert "| qwen25_7b | vllm | bfloat16 · replica | 15.2 GB | 60 | 12.3\u00a0[12,\u00a012.5] | " \
           "151\u00a0[150,\u00a0152] | 71% |" in src  # TTFT in ms and decode tok/s with their intervals
    assert "Measured memory bandwidth 3,000 GB/s" in src
    assert "judged when the book was built" in src  # no 00_claims results in this run
    run = (res.src_dir / "run.md").read_text(encoding="utf-8")
    assert "`results/h100-demo`" in run and "`abc123`" in run
    assert browser.broken_links(res.html_dir, res.index) == []


def test_a_summary_that_does_not_fit_its_schema_is_refused_naming_file_and_field(tmp_path):
    (tmp_path / "02_speed").mkdir()
    (tmp_path / "02_speed" / "summary.json").write_text(json.dumps(
        {"schema_version": 1, "bandwidth": {}, "rows": [{"target": "x"}]}))
    with pytest.raises(StudyError, match=r"summary.json: does not fit the 02_speed summary schema.*rows\.0\.mode"):
        results.load_sections(tmp_path)


def test_a_schema_0_speed_summary_is_upgraded_with_the_missing_fields_named():
    data = json.loads((REPO_ROOT / "results" / "h100-2026-11-25" / "02_speed" / "summary.json").read_text())
    assert "schema_version" not in data  # the committed H100 snapshot predates the schemas
    upgraded = schemas.parse_summary("02_speed", data)
    assert upgraded.schema_version == schemas.SCHEMA_VERSION
    assert {r.itl_per for r in upgraded.rows} == {"not recorded (schema 0)"}
    assert [r.decode_tok_s for r in upgraded.rows] == [r["decode_tok_s"] for r in data["rows"]]


def test_numbers_and_intervals_as_the_pages_print_them():
    assert pages.num(None) == "—" and pages.num(0.012345) == "0.0123" and pages.num(151.23) == "151"
    assert pages.num(4281.7) == "4,282" and pages.num(True) == "yes"
    assert pages.interval(151.2, 150.1, 152.0) == "151\u00a0[150,\u00a0152]"
    assert pages.interval(0.0123, 0.012, 0.0125, scale=1e3) == "12.3\u00a0[12,\u00a012.5]"
    assert pages.interval(10.0, None, None) == "10" and pages.interval(None, 1, 2) == "—"
    assert pages.size(15_231_233_024) == "15.2 GB" and pages.size(None) == "—"
    assert pages.table(["a", "b"], [["x|y", "1\n2"]]) == "| a | b |\n|---|---|\n| x\\|y | 1 2 |\n"


def test_clean_folds_silent_code_into_the_cell_that_shows_something():
    cells = [new_markdown_cell("# t"), new_code_cell("a = 1"), new_code_cell("b = 2"),
             new_code_cell("a + b", outputs=[new_output("execute_result", data={"text/plain": "3"},
                                                        execution_count=3)]),
             new_markdown_cell("## end"), new_code_cell("c = 3")]
    res = clean.clean_notebook(new_notebook(cells=cells), "t", Path("/nonexistent-never-written"))
    code = [c for c in res.nb.cells if c.cell_type == "code"]
    assert [c.source for c in code] == ["a = 1\n\nb = 2\n\na + b", "c = 3"]
    assert all("hide-input" in c.metadata["tags"] for c in code)
    assert res.log_path is None  # nothing on stderr: no log file


def test_an_uncaptioned_figure_is_counted_and_show_refuses_one(tmp_path):
    from slmstudy import plotting

    out = new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    res = clean.clean_notebook(new_notebook(cells=[new_code_cell("plt.show()", outputs=[out])]), "u", tmp_path)
    assert res.figures == 1 and res.uncaptioned == 1
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="has no caption"):
        plotting.show(fig, "nameless", caption=" ", folder=tmp_path)
    plt.close(fig)


def test_lab_prepares_the_notebooks_with_the_scenarios_parameters(tmp_path, monkeypatch, capsys):
    for k, v in build_env(tmp_path / "build").items():
        monkeypatch.setenv(k, v)
    assert cli.main(["lab", "--params", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lab = tmp_path / "build" / "lab" / "smoke"
    assert f"--ServerApp.root_dir={lab}" in out and "jupyter lab" in out.replace("jupyter lab", "jupyter lab")
    nb = nbformat.read(lab / "02_speed.ipynb", as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    smoke = execute.read_params("02_speed", "smoke", "lab-smoke")
    assert f"prompt_tokens = {smoke['prompt_tokens']}" in injected.source and 'run_id = "lab-smoke"' in injected.source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # prepared, not executed
    assert cli.main(["lab", "--params", "default", "--dry-run"]) == 0
    assert f"--ServerApp.root_dir={execute.NOTEBOOKS_DIR}" in capsys.readouterr().out
    jupyter = Path(sys.executable).parent / "jupyter"
    version = subprocess.run([str(jupyter), "lab", "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.strip().startswith("4."), version.stderr[-500:]


def test_tables_print_each_estimate_with_its_interval_in_one_cell():
    import pandas as pd

    from slmstudy.tables import with_intervals

    df = pd.DataFrame([{"task": "gsm8k", "n": 40, "accuracy": 0.25, "ci_low": 0.142, "ci_high": 0.403,
                        "flexible_accuracy": 0.3, "flexible_ci_low": 0.18, "flexible_ci_high": 0.46,
                        "decode_tok_s": 151.23, "decode_tok_s_ci_low": 150.1, "decode_tok_s_ci_high": 152.0,
                        "ttft_s": float("nan")}])
    out = with_intervals(df)
    assert list(out.columns) == ["task", "n", "accuracy [95% CI]", "flexible_accuracy [95% CI]",
                                 "decode_tok_s [95% CI]", "ttft_s"]
    row = out.iloc[0]
    assert row["accuracy [95% CI]"] == "0.25\u00a0[0.142,\u00a00.403]"
    assert row["flexible_accuracy [95% CI]"] == "0.3\u00a0[0.18,\u00a00.46]"
    assert row["decode_tok_s [95% CI]"] == "151\u00a0[150,\u00a0152]" and row["ttft_s"] == "—"
    assert row["n"] == 40  # counts stay numbers


def test_a_book_that_cannot_be_built_fails_the_command_and_a_missing_browser_is_said(tmp_path, monkeypatch,
                                                                                    capsys):
    from slmstudy import book

    for k, v in build_env(tmp_path / "build").items():
        monkeypatch.setenv(k, v)
    execute.executed_dir("empty").mkdir(parents=True)

    def broken(*a, **k):
        raise RuntimeError("sphinx-build failed (exit 2); log build/book/empty/sphinx-build.log")

    monkeypatch.setattr(book, "build_book", broken)
    assert cli.main(["report", "--run-id", "empty"]) == 1
    assert "book FAILED: RuntimeError: sphinx-build failed" in capsys.readouterr().out
    monkeypatch.undo()
    for k, v in build_env(tmp_path / "build").items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    assert cli.main(["report", "--run-id", "empty"]) == 0  # the book stands, unread
    out = capsys.readouterr().out
    assert "book: " in out and "was not read in a browser (FileNotFoundError" in out and "make setup" in out
    assert (tmp_path / "build" / "book" / "empty" / "html" / "index.html").is_file()


def test_errors_and_pages_lose_the_progress_bars_control_sequences():
    """tqdm hides the cursor (ESC[?25l) and colours its bar: neither may reach a run record's
    error line or a book page (execute.ANSI serves both)."""
    from slmstudy import execute
    from slmstudy.book import clean

    raw = "\x1b[?25l\x1b[31mValueError\x1b[0m: bad\x1b[?25h"
    assert execute._strip_ansi(raw) == "ValueError: bad"
    assert clean.ANSI.sub("", raw) == "ValueError: bad"
