"""The ledger's measured path: a run folder's and the snapshots' measurements decide claims, a
changed measurement changes the verdict, notebook 02's speed-claim table is the ledger's own, and
every claim sits in a listed section of its article."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slmstudy import claims as C
from slmstudy import execute
from slmstudy.claims import ledger, measured, scaling
from slmstudy.paths import REPO_ROOT

SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"


def speed_run(tmp_path: Path, decode_tok_s: float, bandwidth: float = 100e9, nbytes: float = 0.4e9) -> Path:
    """A run folder whose 02_speed summary holds one batch-1 row of Qwen2.5-0.5B Q4_K_M on a CPU."""
    run = tmp_path / "runs" / "t"
    (run / "02_speed").mkdir(parents=True)
    row = {"target": "qwen25_05b/llamacpp/Q4_K_M/replica", "mode": "inproc", "concurrency": 1,
           "engine": "llamacpp", "model": "qwen25_05b", "label": "replica", "n_requests": 5,
           "decode_tok_s": decode_tok_s, "bytes_read_per_token": nbytes}
    summary = {"bandwidth": {"bandwidth_bytes_s": bandwidth, "device": "cpu"}, "rows": [row]}
    (run / "02_speed" / "summary.json").write_text(json.dumps(summary))
    return run


def judged(claim_id: str, evidence) -> C.Verdict:
    claims, verdicts, _, _ = ledger.judge_ledger(evidence)
    return verdicts[claim_id]


def test_a_measured_verdict_changes_when_the_measurement_changes(tmp_path):
    # article 001: Qwen2.5-0.5B Q4_K_M, llama.cpp, 48.6 tok/s on an i5-1135G7 (68.3 GB/s).
    # 100 tok/s here at 100 GB/s with 0.4 GB/token: 6 ms fixed + 5.9 ms transfer there → 84 tok/s
    empty = tmp_path / "no-snapshots"
    empty.mkdir()
    fast = measured.collect(speed_run(tmp_path / "a", 100.0), results_root=empty)
    v = judged("a001-3.2-qwen05b-toks", fast)
    assert v.verdict == C.CONSISTENT and v.basis == "measurement"
    assert "run t" in v.evidence and "84.3 tok/s" in v.evidence
    # 20 tok/s here: 46 ms fixed → 19.3 tok/s there; 48.6 is more than 25% above it
    slow = measured.collect(speed_run(tmp_path / "b", 20.0), results_root=empty)
    v = judged("a001-3.2-qwen05b-toks", slow)
    assert v.verdict == C.INCONSISTENT and v.basis == "measurement" and "19.3 tok/s" in v.evidence
    # without a measurement the rules alone decide (the roofline on the i5 allows it)
    assert judged("a001-3.2-qwen05b-toks", measured.collect(None, results_root=empty)).basis == "physics"


def test_a_measurement_never_lifts_a_physical_impossibility(tmp_path):
    # Phi-3 at 39.2 tok/s on the i5 exceeds even the 4-bit roofline; a fast measurement stays evidence
    run = tmp_path / "runs" / "t"
    (run / "02_speed").mkdir(parents=True)
    row = {"target": "phi3_mini/ortgenai/int4/replica", "mode": "inproc", "concurrency": 1, "engine": "ortgenai",
           "model": "phi3_mini", "label": "replica", "n_requests": 5, "decode_tok_s": 500.0,
           "bytes_read_per_token": 2.2e9}
    (run / "02_speed" / "summary.json").write_text(json.dumps(
        {"bandwidth": {"bandwidth_bytes_s": 2e12, "device": "cpu"}, "rows": [row]}))
    empty = tmp_path / "none"
    empty.mkdir()
    v = judged("a001-3.2-phi3-toks", measured.collect(run, results_root=empty))
    assert v.verdict == C.IMPOSSIBLE and "measured:" in v.evidence


def test_a_score_claim_is_judged_by_the_runs_score_with_its_interval(tmp_path):
    run = tmp_path / "runs" / "t"
    (run / "03_chinese_quality").mkdir(parents=True)
    empty = tmp_path / "none"
    empty.mkdir()

    def with_score(acc, lo, hi):
        rows = [{"task": "cmmlu", "target": "qwen25_7b/transformers/bfloat16", "mode": "loglik", "n": 400,
                 "accuracy": acc, "ci_low": lo, "ci_high": hi}]
        (run / "03_chinese_quality" / "summary.json").write_text(json.dumps({"rows": rows, "targets": []}))
        return measured.collect(run, results_root=empty)

    ok = judged("a002-2.2-qwen7b-cmmlu", with_score(0.80, 0.76, 0.84))  # claimed 81.1
    assert ok.verdict == C.CONSISTENT and "80.0 [76.0, 84.0]" in ok.evidence
    low = judged("a002-2.2-qwen7b-cmmlu", with_score(0.60, 0.55, 0.65))
    assert low.verdict == C.INCONSISTENT and "outside the measured 95% interval" in low.evidence


def test_a_published_score_that_contradicts_the_claim_stands_beside_a_measurement(tmp_path):
    run = tmp_path / "runs" / "t"
    (run / "05_code").mkdir(parents=True)
    rows = [{"task": "humaneval", "target": "qwen25_7b/vllm/bfloat16", "mode": "generate", "n": 164,
             "accuracy": 0.86, "ci_low": 0.80, "ci_high": 0.91}]
    (run / "05_code" / "summary.json").write_text(json.dumps({"rows": rows}))
    empty = tmp_path / "none"
    empty.mkdir()
    v = judged("a002-2.2-qwen7b-humaneval", measured.collect(run, results_root=empty))
    assert v.verdict == C.INCONSISTENT and v.basis == "published" and "86.0" in v.evidence


def test_the_speed_sections_claim_table_is_the_ledgers_verdicts():
    evidence = ledger.measurements_from_run(None)
    claims, verdicts, arch, hardware = ledger.judge_ledger(evidence)
    table = scaling.speed_claims(evidence, claims, hardware, arch)
    rows = [r for group in table.values() for r in group]
    assert rows, "the committed snapshots decide some GPU speed claims"
    for r in rows:
        assert r["verdict"] == verdicts[r["claim"]].verdict, r["claim"]
        assert r["expected_tok_s"] <= r["roofline_tok_s"] * 1.0001


def test_every_claim_sits_in_a_listed_section_whose_title_the_article_prints():
    sections = ledger.load_sections()
    claims, verdicts, _, _ = ledger.judge_ledger()
    rows = ledger.coverage_rows(claims, verdicts, sections)
    assert sum(r["claims"] for r in rows) == len(claims)
    assert all(r["claims"] or r["commands run"] or r["not covered"] for r in rows), "a section without claims says why"

    def flat(text):
        return re.sub(r"\s+", "", text)

    for article, secs in sections.items():
        path = next(SEEDS_DIR.glob(f"{article}_*.txt"), None)
        if path is None:
            pytest.skip("the seed articles are not beside the checkout")
        text = flat(path.read_text(encoding="utf-8"))
        for s in secs:
            assert flat(s["title"]) in text, (article, s["title"])
    missing = {"000": [s for s in sections["000"] if s["section"] != "1.1"]}
    with pytest.raises(C.LedgerError, match="does not list"):
        ledger.coverage_rows(claims, verdicts, {**sections, **missing})


def test_the_conclusion_runs_after_the_sections():
    names = ["00_claims", "01_deployment", "02_speed", "05_code"]
    assert sorted(names, key=execute.execution_rank) == ["01_deployment", "02_speed", "05_code", "00_claims"]


def test_command_records_of_a_run_become_verdicts_with_their_error(tmp_path):
    run = tmp_path / "runs" / "t"
    (run / "01_deployment").mkdir(parents=True)
    refused = {"id": "a004-3.2-vllm-api-server", "article": "004", "section": "3.2", "quote": "q", "claim": "c",
               "outcome": "refused", "reason": "Value error, max_model_len (131072) > 32768", "fixed_outcome": "serves",
               "attempts": [{"fixes": [], "outcome": "refused", "exit_code": 1, "error": "e", "seconds": 1},
                            {"fixes": ["31768"], "outcome": "serves", "exit_code": None, "error": "", "seconds": 9}]}
    docker = {"id": "a002-3.4-docker-open-webui", "article": "002", "section": "3.4", "quote": "q", "claim": "c",
              "outcome": "not run", "reason": "needs a Docker engine", "attempts": []}
    (run / "01_deployment" / "summary.json").write_text(json.dumps({"commands": [refused, docker]}))
    empty = tmp_path / "none"
    empty.mkdir()
    rows = {r["id"]: r for r in measured.command_verdicts(measured.collect(run, results_root=empty))}
    assert rows["a004-3.2-vllm-api-server"]["verdict"] == C.INCONSISTENT
    assert "131072" in rows["a004-3.2-vllm-api-server"]["evidence"] and "→ serves" in rows[
        "a004-3.2-vllm-api-server"]["evidence"]
    assert rows["a002-3.4-docker-open-webui"]["verdict"] == C.NOT_TESTABLE
    claims, verdicts, _, _ = ledger.judge_ledger()
    table = ledger.coverage_rows(claims, verdicts, commands=list(rows.values()))
    cov = {(r["article"], r["section"]): r for r in table}
    assert cov[("002", "3.4")]["commands run"] == 1 and cov[("002", "3.4")]["not covered"] == ""


def test_a_feature_claim_follows_notebook_01s_probe(tmp_path):
    """002's "function calling" on vLLM: decided by the probe of vLLM's server in the run folder;
    a failed probe turns the verdict; no probe leaves it not testable."""
    def run_with(ok: bool | None) -> Path:
        run = tmp_path / f"runs-{ok}" / "t"
        (run / "01_deployment").mkdir(parents=True)
        probes = [] if ok is None else [{"server": "vllm-server", "feature": "tool call (forced)", "ok": ok,
                                         "evidence": "get_weather(...)", "request": {}}]
        (run / "01_deployment" / "summary.json").write_text(json.dumps({"features": probes}))
        return run

    claim = "a002-2.3-qwen7b-tools"
    assert judged(claim, measured.collect(run_with(True), tmp_path / "none")).verdict == C.CONSISTENT
    failed = judged(claim, measured.collect(run_with(False), tmp_path / "none"))
    assert failed.verdict == C.INCONSISTENT and failed.basis == "measurement"
    assert judged(claim, measured.collect(run_with(None), tmp_path / "none")).verdict == C.NOT_TESTABLE


def test_a_listing_that_fails_as_written_is_inconsistent_and_its_section_keeps_what_is_pending(tmp_path):
    run = tmp_path / "runs" / "t"
    (run / "01_deployment").mkdir(parents=True)
    fails = {"id": "a001-4.2-onnxruntime-genai", "article": "001", "section": "4.2", "quote": "q", "claim": "c",
             "kind": "listing", "outcome": "fails",
             "reason": "TypeError: __init__(): incompatible constructor arguments.",
             "fixed_outcome": "runs",
             "attempts": [{"fixes": [], "outcome": "fails", "exit_code": 1, "error": "TypeError", "seconds": 1},
                          {"fixes": ["Generator takes GeneratorParams"], "outcome": "runs", "exit_code": 0,
                           "error": "", "seconds": 1, "printed": "spring"}]}
    runs = {"id": "a001-4.1-llama-cpp-python", "article": "001", "section": "4.1", "quote": "q", "claim": "c",
            "kind": "listing", "outcome": "runs", "reason": "", "fixed_outcome": None,
            "attempts": [{"fixes": [], "outcome": "runs", "exit_code": 0, "error": "", "seconds": 9,
                          "printed": "春天"}]}
    (run / "01_deployment" / "summary.json").write_text(json.dumps({"commands": [fails, runs]}))
    empty = tmp_path / "none"
    empty.mkdir()
    rows = {r["id"]: r for r in measured.command_verdicts(measured.collect(run, results_root=empty))}
    assert rows["a001-4.2-onnxruntime-genai"]["verdict"] == C.INCONSISTENT
    assert "TypeError" in rows["a001-4.2-onnxruntime-genai"]["evidence"]
    assert "→ runs" in rows["a001-4.2-onnxruntime-genai"]["evidence"]
    assert rows["a001-4.1-llama-cpp-python"]["verdict"] == C.CONSISTENT
    assert "春天" in rows["a001-4.1-llama-cpp-python"]["evidence"]
    claims, verdicts, _, _ = ledger.judge_ledger()
    table = ledger.coverage_rows(claims, verdicts, commands=list(rows.values()))
    cov = {(r["article"], r["section"]): r for r in table}
    assert cov[("001", "4.2")]["commands run"] == 1 and cov[("001", "4.2")]["not covered"].startswith("pending: ")
