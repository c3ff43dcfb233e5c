"""The published report: `slmstudy run` executes notebooks with papermill and writes an offline,
self-contained HTML report; a failing notebook is shown as failed while the others still render;
committed snapshots are listed with their hardware; chromium can screenshot the pages."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from slmstudy import claims as C
from slmstudy import cli, report, results, schemas
from slmstudy.claims import ledger
from slmstudy.errors import StudyError
from slmstudy.paths import REPO_ROOT
from slmstudy.schemas import SpeedRow, SpeedSummary

CHROMIUM = Path("/usr/bin/chromium")


class Refs(HTMLParser):
    """Every href/src a page refers to, by tag."""

    def __init__(self):
        super().__init__()
        self.a, self.img, self.script, self.link = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.a.append(a["href"])
        elif tag == "img":
            self.img.append(a.get("src") or "")
        elif tag == "script" and a.get("src"):
            self.script.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.link.append(a["href"])


def refs(path: Path) -> Refs:
    r = Refs()
    r.feed(path.read_text(encoding="utf-8"))
    return r


def is_external(url: str) -> bool:
    return urlparse(url).scheme in ("http", "https") or url.startswith("//")


def assert_offline(page: Path) -> Refs:
    """No network loads; local links and images resolve to files that exist."""
    r = refs(page)
    assert not [s for s in r.script if is_external(s)], f"{page.name}: external <script src>"
    assert not [h for h in r.link if is_external(h)], f"{page.name}: external <link href>"
    for src in r.img:
        if src.startswith("data:"):
            continue
        assert not is_external(src), f"{page.name}: image from the network: {src[:80]}"
        assert (page.parent / unquote(src)).is_file(), f"{page.name}: image {src} does not exist"
    for href in r.a:
        if href.startswith("#") or is_external(href) or href.startswith("mailto:"):
            continue
        target = page.parent / unquote(urlparse(href).path)
        assert target.exists(), f"{page.name}: link {href} does not resolve ({target})"
    return r


def build_env(build: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SLMSTUDY_BUILD=str(build), SLMSTUDY_RUNS=str(build / "runs"), MPLBACKEND="Agg")
    return env


# ---------------------------------------------------------------- end to end: slmstudy run


@pytest.fixture(scope="module")
def claims_run(tmp_path_factory):
    """`slmstudy run --params smoke --notebooks 00_claims` into a temporary build folder."""
    build = tmp_path_factory.mktemp("build")
    run_id = "test-report"
    proc = subprocess.run(
        [sys.executable, "-m", "slmstudy.cli", "run", "--params", "smoke", "--notebooks", "00_claims",
         "--run-id", run_id, "--no-prepare", "--quiet", "--cell-timeout", "300"],
        cwd=str(REPO_ROOT), env=build_env(build), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"slmstudy run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    index = build / "report" / "index.html"
    assert f"report: {index}" in proc.stdout
    return build, run_id, index


def test_run_writes_the_claims_summary_derived_from_the_ledger(claims_run):
    build, run_id, _ = claims_run
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


def test_report_pages_are_offline_and_links_resolve(claims_run):
    build, run_id, index = claims_run
    r = assert_offline(index)
    assert "00_claims.html" in r.a
    # Gemma's terms travel with the report (the link is to a copy beside it, not site-packages)
    assert "gemma3_270m-terms.html" in r.a
    assert "Gemma Terms of Use" in (build / "report" / "gemma3_270m-terms.html").read_text(errors="replace")
    section = build / "report" / "00_claims.html"
    rs = assert_offline(section)
    assert any(src.startswith("data:image/png;base64,") for src in rs.img), "the verdict figure is not embedded"
    assert "index.html" in rs.a  # the banner links back
    text = section.read_text(encoding="utf-8")
    assert "require.min.js" not in text and "cdnjs" not in text and "mermaid.esm" not in text


def test_index_shows_run_summary_claims_and_statuses(claims_run):
    build, run_id, index = claims_run
    text = index.read_text(encoding="utf-8")
    claims, verdicts, _, _ = ledger.judge_ledger(ledger.measurements_from_run(build / "runs" / run_id))
    counts = C.verdict_counts(verdicts)
    assert f"run <code>{run_id}</code>" in text
    assert "params/smoke/00_claims.yaml" in text
    assert f"{len(claims)} claims" in text
    for verdict, n in counts.items():
        assert f"{verdict}</span> {n}" in text  # the ledger's verdict counts
    assert text.count('class="small ev"') == len(claims)  # one evidence cell per claim
    assert "as judged by this run's 00_claims notebook" in text
    for key in ("git commit", "Package versions", "Models and artifacts", "Committed snapshots"):
        assert key in text


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
              "SectionResults(run_id, '97_fine').write_summary({'answer': 42, 'rows': [{'k': 'a', 'v': 1.5}]})")
    _notebook(nbs / "98_broken.ipynb", 'raise ValueError("deliberately broken for the report test")')
    _notebook(nbs / "99_noparams.ipynb", "pass")
    for name in ("97_fine", "98_broken"):
        (params / "smoke" / f"{name}.yaml").write_text("run_id: smoke\n")
    monkeypatch.setattr(report, "NOTEBOOKS_DIR", nbs)
    monkeypatch.setattr(report, "PARAMS_DIR", params)
    for k, v in build_env(build).items():
        monkeypatch.setenv(k, v)
    return build


def test_a_failed_notebook_is_reported_while_the_others_render(broken_study, capsys):
    build = broken_study
    rc = cli.main(["run", "--params", "smoke", "--run-id", "broken", "--no-prepare", "--quiet"])
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

    rdir = build / "report"
    index = rdir / "index.html"
    r = assert_offline(index)
    text = index.read_text(encoding="utf-8")
    assert "97_fine.html" in r.a and "98_broken.html" in r.a
    assert "99_noparams.html" not in r.a and not (rdir / "99_noparams.html").exists()
    assert "ValueError: deliberately broken for the report test" in text
    assert '<span class="badge failed">failed</span>' in text
    assert '<span class="badge skipped">skipped</span>' in text
    assert "answer" in text and ">42<" in text  # the fine notebook's summary as a headline table

    broken = (rdir / "98_broken.html").read_text(encoding="utf-8")
    assert "This notebook failed" in broken and "deliberately broken" in broken
    executed = nbformat.read(build / "executed" / "broken" / "98_broken.ipynb", as_version=4)
    assert executed.cells[-1].outputs == []  # execution stopped at the failing cell
    assert_offline(rdir / "98_broken.html")
    fine = (rdir / "97_fine.html").read_text(encoding="utf-8")
    assert '<span class="badge ok">ok</span>' in fine and "This notebook failed" not in fine

    # `slmstudy report` re-renders the same from the executed notebooks and run.json
    (rdir / "index.html").unlink()
    assert cli.main(["report", "--run-id", "broken"]) == 0
    assert "ValueError: deliberately broken" in index.read_text(encoding="utf-8")


def test_report_recovers_statuses_without_run_json(broken_study, capsys):
    build = broken_study
    assert cli.main(["run", "--params", "smoke", "--run-id", "norecord", "--no-prepare", "--quiet"]) == 1
    (build / "executed" / "norecord" / "run.json").unlink()
    assert cli.main(["report", "--run-id", "norecord"]) == 0
    text = (build / "report" / "index.html").read_text(encoding="utf-8")
    assert "ValueError: deliberately broken for the report test" in text
    assert "provenance from" in text


def test_invalid_parameters_fail_before_the_kernel_starts(tmp_path, monkeypatch):
    params = tmp_path / "params"
    (params / "bad").mkdir(parents=True)
    (params / "bad" / "00_claims.yaml").write_text("run_id: x\nbogus_key: 1\n")
    monkeypatch.setattr(report, "PARAMS_DIR", params)
    st = report.execute_notebook("00_claims", "bad", "x", tmp_path / "out", progress_bar=False)
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
    index = report.build_report("snaptest", results=[], snapshot_dirs=[snap], out_dir=tmp_path / "report")
    text = index.read_text(encoding="utf-8")
    assert "results/h100-demo" in text
    assert "1× NVIDIA H100 80GB HBM3 (driver 550.54)" in text
    assert "151 [150, 152]" in text  # decode tok/s with its CI
    assert '<span class="badge replica">replica</span>' in text
    assert "0.71" in text and "3000.0 GB/s" in text
    assert "No notebooks were executed" in text
    assert "judged when this report was written" in text  # no 00_claims results in this run
    assert_offline(index)


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


def test_strip_external_removes_network_scripts_and_links_only():
    page = ('<head><script src="https://cdn.example/require.js"></script><script src="local.js"></script>'
            '<link rel="stylesheet" href="//cdn.example/x.css"><link rel="icon" href="icon.png">'
            "<script>var inline = 1;</script></head>")
    out = report.strip_external(page)
    assert "cdn.example" not in out
    assert 'src="local.js"' in out and 'href="icon.png"' in out and "var inline" in out


def test_formatting_helpers():
    assert report.fmt(None) == "—" and report.fmt(True) == "yes" and report.fmt(float("nan")) == "—"
    assert report.fmt_ci(10.123, 9.5, 11.0) == "10.1 [9.5, 11]"
    assert report.fmt_ci(10.0, None, None) == "10"
    assert report.hardware_label({}) == "hardware not recorded"
    assert report.hardware_label({"hardware": {"cpu": "AMD EPYC", "cores_logical": 2, "gpus": []}}) == \
        "AMD EPYC, 2 cores · no GPU"


# ---------------------------------------------------------------- screenshots


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed (Debian package `chromium`)")
def test_screenshots_of_the_report(claims_run, monkeypatch):
    import matplotlib.image as mpimg

    build, _, _ = claims_run
    for k, v in build_env(build).items():
        monkeypatch.setenv(k, v)
    assert cli.main(["screenshot", "--section", "00_claims"]) == 0
    for name in ("index", "00_claims"):
        png = build / "screenshots" / f"{name}.png"
        assert _png_size(png) == (1280, 1600)
        pixels = mpimg.imread(png)
        assert pixels.std() > 0.05, f"{png.name} looks blank"


def test_stderr_goes_to_a_log_beside_the_page_not_into_it(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from slmstudy import report

    cell = new_code_cell("print(1)", outputs=[
        new_output("stream", name="stdout", text="the result 42\n"),
        new_output("stream", name="stderr", text="Loading weights: 100%|#####| 272/272 PLANTED\n")])
    src = tmp_path / "09_planted.ipynb"
    nbformat.write(new_notebook(cells=[cell]), str(src))
    page = report.render_html(src, tmp_path / "out" / "09_planted.html")
    html = page.read_text(encoding="utf-8")
    assert "the result 42" in html and "PLANTED" not in html
    log = tmp_path / "out" / "09_planted.stderr.log"
    assert "PLANTED" in log.read_text(encoding="utf-8") and 'href="09_planted.stderr.log"' in html
