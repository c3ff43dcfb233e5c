"""Notebooks 01 and 02 executed by papermill with the smoke parameters; assertions on results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from slmstudy.paths import REPO_ROOT

pytestmark = pytest.mark.slow


MARK = "SLMSTUDY_TEST_MARK"


def _servers_running(mark: str):
    """Servers started by this test's run (they inherit the marker in their environment)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "llama_cpp.server" in cmd or "vllm_cli serve" in cmd:
            try:
                if p.environ().get(MARK) == mark:
                    out.append(p.pid)
            except psutil.Error:
                pass
    return out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, arts):
    build = tmp_path_factory.mktemp("build")
    mark = build.name
    env = {**os.environ, "SLMSTUDY_BUILD": str(build), "MPLBACKEND": "Agg", MARK: mark}
    proc = subprocess.run(
        [sys.executable, "-m", "slmstudy.cli", "run", "--params", "smoke", "--notebooks",
         "01_deployment,02_speed", "--run-id", "ci-smoke", "--quiet"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _servers_running(mark) == [], "a server outlived the notebooks"
    return build / "runs" / "ci-smoke"


def test_headless_path_writes_the_notebooks_summary(smoke_run, tmp_path):
    """`python -m slmstudy.speed` on the notebook's records (nothing left to run) writes the
    summary.json the notebook wrote, key for key."""
    import shutil

    folder = tmp_path / "ci-smoke" / "02_speed"
    shutil.copytree(smoke_run / "02_speed", folder)
    notebook_summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").unlink()
    params_yaml = tmp_path / "02_speed.yaml"
    import yaml

    params_yaml.write_text(yaml.safe_dump(notebook_summary["params"]))
    proc = subprocess.run([sys.executable, "-m", "slmstudy.speed", "--params", str(params_yaml),
                           "--runs-root", str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    headless = json.loads((folder / "summary.json").read_text())
    assert headless == notebook_summary
    assert len(headless["rows"]) > 0


def test_speed_results(smoke_run):
    summary = json.loads((smoke_run / "02_speed" / "summary.json").read_text())
    records = [json.loads(l) for l in (smoke_run / "02_speed" / "samples.jsonl").open()]
    params = summary["params"]
    assert {r["engine"] for r in summary["rows"]} == {t["engine"] for t in params["targets"]}
    assert summary["schema_version"] == 1 and all(r["schema_version"] == 1 for r in records)
    assert {r["mode"] for r in summary["rows"]} == {"inproc", "http"}
    for r in records:
        assert r["n_tokens"] == params["output_tokens"], r["key"]
        assert 0 < r["ttft_s"] < r["e2e_s"], r["key"]
        if r["mode"] == "inproc":
            assert len(r["token_times_ns"]) == params["output_tokens"]
        # where it ran: this CPU machine, one engine, no GPU (slmstudy.layout)
        assert r["layout"]["gpus"] == 0 and r["layout"]["tensor_parallel_size"] == 1, r["key"]
        assert r["gpus"] == [], r["key"]
    assert any(r["label"] == "replica" for r in records) and any(r["label"] == "real" for r in records)
    for row in summary["rows"]:
        for m in ("ttft_s", "decode_tok_s", "e2e_s"):
            assert row[f"{m}_ci_low"] <= row[m] <= row[f"{m}_ci_high"], (row["target"], m)
        assert row["n_requests"] >= params["repetitions"] * row["concurrency"]
        if row["roofline_fraction"] is not None:
            assert 0 < row["roofline_fraction"] <= 1.05, row["target"]
    assert summary["bandwidth"]["bandwidth_bytes_s"] > 1e9
    bench = summary["vllm_bench_validation"]
    assert {b["metric"] for b in bench} == {"TTFT (ms)", "TPOT (ms)", "ITL p50 (ms)"}
    assert all(b["ours"] > 0 and b["vllm_bench"] > 0 for b in bench)
    agree = summary["llamacpp_clock_agreement"]
    assert agree and all(0.8 < a["ratio"] <= 1.02 for a in agree)


def test_deployment_results(smoke_run):
    s = json.loads((smoke_run / "01_deployment" / "summary.json").read_text())
    loads = {(l["engine"], l["kind"]) for l in s["loads"]}
    assert loads == {(e, k) for e in s["params"]["engines"] for k in ("cold", "warm")}
    assert all(l["load_s"] > 0 and l["peak_rss_MB"] > 50 for l in s["loads"])
    feats = {(f["server"], f["feature"]): f for f in s["features"]}
    for server in ("llamacpp-server", "vllm-server"):
        assert feats[(server, "streaming")]["ok"]
        assert {f for (srv, f) in feats if srv == server} >= {
            "streaming", "stop sequences", "JSON mode", "JSON schema", "tool call (forced)",
            "tool call (auto)"}
        assert all(feats[(server, f)]["request"]["messages"] for f in ("JSON mode",))
    assert {x["server"] for x in s["servers"]} == {"llamacpp-server", "vllm-server"}
    # the articles' vLLM command lines, run as written by real vLLM: each is refused, and says why
    cmds = {c["id"]: c for c in s["commands"]}
    assert cmds["a002-3.3-compose-vllm"]["outcome"] == "refused"
    assert "--enable-auto-tool-call" in cmds["a002-3.3-compose-vllm"]["reason"]
    for cid in ("a000-2.2-vllm-api-server", "a004-3.2-vllm-api-server"):
        assert cmds[cid]["outcome"] == "refused" and "131072" in cmds[cid]["reason"], cmds[cid]
    assert all(Path(a["log"]).is_file() for c in cmds.values() for a in c["attempts"])
    # article 001's code listings, run as written on the embedded model: llama-cpp-python's streams
    # an answer; onnxruntime-genai's is refused by the API it calls
    assert cmds["a001-4.1-llama-cpp-python"]["outcome"] == "runs"
    assert cmds["a001-4.1-llama-cpp-python"]["attempts"][0]["printed"].strip()
    assert cmds["a001-4.2-onnxruntime-genai"]["outcome"] == "fails"
    assert "og.Generator" not in cmds["a001-4.2-onnxruntime-genai"]["reason"]  # the error, not the code
    assert cmds["a001-4.2-onnxruntime-genai"]["reason"].startswith("TypeError")
    # article 003's Gradio stack: every path measured >= 3 times on the same prompt ids, torn down
    g = s["gradio"]
    paths = {r["path"]: r for r in g["timings"]}
    assert set(paths) == {"engine", "engine-http", "gradio-client", "browser"}
    assert all(r["n"] >= 3 and r["first_token_ms"] > 0 for r in paths.values())
    assert len({r["prompt_tokens"] for r in paths.values()}) == 1
    assert paths["browser"]["over_engine_ms"] > 0 and g["stack"]["pids_left"] == []


def test_the_book_of_the_run_reads_cleanly_in_the_browser(smoke_run):
    """`slmstudy run` built the book of notebooks 01 and 02 and read every page in Chromium: the
    real pages (vLLM's and llama.cpp's logs, tqdm bars, every figure) come out clean."""
    book = smoke_run.parent.parent / "book" / "ci-smoke"
    report = json.loads((book / "browser.json").read_text())
    assert report["problems"] == []
    pages = {p["page"]: p for p in report["pages"]}
    assert {"index.html", "sections/01_deployment.html", "sections/02_speed.html"} <= set(pages)
    made = json.loads((book / "book.json").read_text())
    assert "sections/02_speed" in made["pages"]
    speed = pages["sections/02_speed.html"]
    assert len(speed["images"]) >= 2 and all(i["captioned"] and i["loaded"] for i in speed["images"])
    log = book / "src" / "logs" / "02_speed.stderr.log"
    assert log.is_file() and log.stat().st_size > 0  # the engines' logs went there, not to the page
    assert (book / "screenshots" / "sections__02_speed.png").is_file()
    # the front page's deployment and speed tables carry the sections' own numbers
    from slmstudy.book.pages import interval, num

    front = (book / "src" / "index.md").read_text()
    dep = json.loads((smoke_run / "01_deployment" / "summary.json").read_text())
    cold = next(r for r in dep["loads"] if r["engine"] == "llamacpp" and r["kind"] == "cold")
    assert "| llamacpp | gguf | " in front and f"| {num(cold['load_s'])} | {num(cold['first_answer_s'])} |" in front
    sp = json.loads((smoke_run / "02_speed" / "summary.json").read_text())
    row = next(r for r in sp["rows"] if r["mode"] == "inproc" and r["concurrency"] == 1)
    assert interval(row["decode_tok_s"], row["decode_tok_s_ci_low"], row["decode_tok_s_ci_high"]) in front
