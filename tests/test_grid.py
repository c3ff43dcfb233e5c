"""`slmstudy grid`: the study's notebooks as Ray tasks — the plan, the resources, the reaper of a
dead attempt's processes, and, on a two-worker local Ray cluster, a worker killed mid-cell whose
cell is retried and resumes from its per-sample records (nothing lost, nothing counted twice)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slmstudy import grid
from slmstudy.errors import StudyError
from slmstudy.paths import REPO_ROOT

PY = sys.executable
GSM8K_N = 8  # params/grid-smoke/04_math.yaml


def test_plan_runs_the_sections_side_by_side_and_the_ledger_after_them():
    cells = grid.plan(["05_code", "00_claims", "04_math"], "smoke", "r")
    assert [(c.notebook, c.stage) for c in cells] == [("04_math", 0), ("05_code", 0), ("00_claims", 1)]


def test_a_cell_holds_a_gpu_where_there_are_gpus_else_cpu_slots():
    assert grid.cell_resources({"CPU": 16, "GPU": 2}) == {"num_gpus": 1, "num_cpus": 1}
    assert grid.cell_resources({"CPU": 16, "GPU": 2}, gpus_per_cell=2) == {"num_gpus": 2, "num_cpus": 1}
    with pytest.raises(StudyError, match="needs 2 GPUs; the Ray cluster has 1"):
        grid.cell_resources({"CPU": 16, "GPU": 1}, gpus_per_cell=2)
    assert grid.cell_resources({"CPU": 8}, cpus_per_cell=2) == {"num_cpus": 2}
    with pytest.raises(StudyError, match="needs 4 CPU.*has 2"):
        grid.cell_resources({"CPU": 2}, cpus_per_cell=4)


def _sleeper(mark: str) -> subprocess.Popen:
    return subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], env={**os.environ, grid.MARK: mark})


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="the reaper reads /proc")
def test_reap_kills_the_dead_attempts_processes_and_only_those():
    dead, other = _sleeper("g1/04_math/1"), _sleeper("g1/05_code/1")
    try:
        deadline = time.monotonic() + 10
        while dead.pid not in grid._marked_pids(b"g1/04_math/") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert grid.reap("g1/04_math/") == [dead.pid]
        assert dead.wait(timeout=5) == -signal.SIGKILL
        assert other.poll() is None, "a process of another cell was killed"
        assert grid.reap("g1/04_math/") == []
    finally:
        for p in (dead, other):
            p.kill()
            p.wait()


def test_the_attempt_log_skips_a_line_cut_by_a_kill(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMSTUDY_RUNS", str(tmp_path))
    grid._log("r", {"grid_id": "a", "cell": "04_math", "event": "start", "attempt": 1})
    with open(grid.attempts_path("r"), "a") as f:
        f.write('{"grid_id": "a", "cell": "04_m')
    assert [r["cell"] for r in grid.read_attempts("r", "a")] == ["04_math"]
    assert grid.read_attempts("r", "b") == []


def test_outcomes_count_a_dead_worker_and_fail_a_cell_run_off_the_shared_folder(tmp_path, monkeypatch):
    """What the workers returned, read against this build folder's attempts log: 04 died once
    and then ended (ok, 2 attempts, the dead pid named); 05 returned ok but this log has none of
    its attempts (it ran on a node with another build folder: failed, the fix named, the other cells kept);
    00 never returned."""
    monkeypatch.setenv("SLMSTUDY_RUNS", str(tmp_path))
    log = [{"cell": "04_math", "event": "start", "attempt": 1, "pid": 11},
           {"cell": "04_math", "event": "start", "attempt": 2, "pid": 12},
           {"cell": "04_math", "event": "end", "attempt": 2, "pid": 12}]
    ok = {"name": "x", "status": "ok", "run_id": "r"}
    done = {"04_math": {"status": {**ok, "name": "04_math"}, "attempt": 2, "host": "a"},
            "05_code": {"status": {**ok, "name": "05_code"}, "attempt": 1, "host": "b"}}
    cells = grid.plan(["04_math", "05_code", "00_claims"], "smoke", "r")
    statuses, rows = grid.outcomes(cells, done, log, "r", "smoke")
    assert [s.status for s in statuses] == ["ok", "failed", "failed"]
    assert "ran on b" in statuses[1].error and "SLMSTUDY_BUILD" in statuses[1].error
    assert statuses[2].error == "no result"
    assert [(r["cell"], r["attempts"], r["died"]) for r in rows] == [
        ("04_math", 2, [11]), ("05_code", 0, []), ("00_claims", 0, [])]


def test_grid_refuses_an_unknown_scenario_before_starting_ray():
    r = subprocess.run([PY, "-m", "slmstudy.cli", "grid", "--params", "no-such-scenario"],
                       capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert r.returncode == 2
    assert "no parameter scenario 'no-such-scenario'" in r.stdout and "grid-smoke" in r.stdout


def _wait_for(pred, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        if proc.poll() is not None:
            raise AssertionError(f"the grid ended (rc {proc.returncode}) before {what}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_worker_killed_mid_cell_loses_nothing_and_counts_nothing_twice(tmp_path):
    """The CI test of issue 17: two cells at a time on a local Ray cluster; the worker running
    notebook 04 is SIGKILLed once its first records are on disk."""
    env = {**os.environ, "SLMSTUDY_BUILD": str(tmp_path)}
    env.pop("SLMSTUDY_RUNS", None)
    log = open(tmp_path / "grid.log", "w")
    proc = subprocess.Popen([PY, "-m", "slmstudy.cli", "grid", "--params", "grid-smoke", "--workers", "2",
                             "--quiet"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    runs = tmp_path / "runs" / "grid-smoke"
    samples = runs / "04_math" / "samples.jsonl"
    try:
        def first_attempt():
            starts = [a for a in grid.read_attempts_at(runs / "grid" / "attempts.jsonl")
                      if a["cell"] == "04_math" and a["event"] == "start"]
            return starts[0] if starts and samples.is_file() and samples.stat().st_size else None

        victim = _wait_for(first_attempt, 600, "notebook 04 wrote its first record", proc)
        os.kill(victim["pid"], signal.SIGKILL)
        at_kill = samples.read_bytes().splitlines(keepends=True)
        at_kill = [line for line in at_kill if line.endswith(b"\n")]  # a line cut mid-write is redone
        assert 0 < len(at_kill) < GSM8K_N, f"the kill came after the cell's work: {len(at_kill)} records"
        assert proc.wait(timeout=900) == 0, (tmp_path / "grid.log").read_text()[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    out = (tmp_path / "grid.log").read_text()

    attempts = [a for a in grid.read_attempts_at(runs / "grid" / "attempts.jsonl") if a["cell"] == "04_math"]
    assert [(a["event"], a["attempt"]) for a in attempts] == [("start", 1), ("start", 2), ("end", 2)]
    final = samples.read_bytes().splitlines(keepends=True)
    keys = [json.loads(line)["key"] for line in final]
    assert len(keys) == len(set(keys)) == GSM8K_N, "a sample was lost or counted twice"
    assert final[:len(at_kill)] == at_kill, "records written before the kill were redone or lost"

    record = json.loads((tmp_path / "executed" / "grid-smoke" / "run.json").read_text())
    assert {n["name"]: n["status"] for n in record["notebooks"]} == {
        "00_claims": "ok", "01_deployment": "skipped", "02_speed": "skipped",
        "03_chinese_quality": "skipped", "04_math": "ok", "05_code": "ok"}
    cells = {c["cell"]: c for c in record["grid"]["cells"]}
    assert cells["04_math"]["attempts"] == 2 and cells["04_math"]["died"] == [victim["pid"]]
    assert (cells["04_math"]["keys"], cells["04_math"]["duplicates"]) == (GSM8K_N, 0)
    assert cells["05_code"]["attempts"] == 1 and cells["05_code"]["records"] > 0
    assert "died mid-cell" in out and "0 duplicated" in out

    html = tmp_path / "book" / "grid-smoke" / "html"
    assert (html / "index.html").is_file()
    for page in ("04_math", "05_code", "00_claims"):
        assert list(html.glob(f"**/{page}.html")), f"the book has no page for {page}"
    run_page = (html / "run.html").read_text(encoding="utf-8")
    assert "The grid" in run_page and str(victim["pid"]) in run_page  # the reader sees the kill
    browser = json.loads((tmp_path / "book" / "grid-smoke" / "browser.json").read_text())
    assert browser["problems"] == [], browser["problems"]


@pytest.mark.slow
def test_grid_joins_a_running_cluster_by_address(tmp_path):
    """`ray start --head` started without the study's locations: the grid passes them to its
    cells (Ray's runtime_env), so the ledger's results land in this build folder."""
    ray_bin = str(Path(PY).parent / "ray")
    port = 6391
    head_env = {k: v for k, v in os.environ.items() if not k.startswith("SLMSTUDY_")}
    started = subprocess.run([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=1",
                              "--include-dashboard=false", "--disable-usage-stats"],
                             env=head_env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    try:
        env = {**os.environ, "SLMSTUDY_BUILD": str(tmp_path)}
        env.pop("SLMSTUDY_RUNS", None)
        r = subprocess.run([PY, "-m", "slmstudy.cli", "grid", "--params", "grid-smoke", "--notebooks",
                            "00_claims", "--address", f"127.0.0.1:{port}", "--no-prepare", "--no-browser",
                            "--quiet"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert "1 node(s) (1 CPU, 0 GPU)" in r.stdout
        assert (tmp_path / "runs" / "grid-smoke" / "00_claims").is_dir()
        record = json.loads((tmp_path / "executed" / "grid-smoke" / "run.json").read_text())
        assert record["grid"]["cluster"]["address"] == f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120)


def test_grid_says_how_to_reach_a_cluster_that_does_not_answer(tmp_path):
    env = {**os.environ, "SLMSTUDY_BUILD": str(tmp_path)}
    r = subprocess.run([PY, "-m", "slmstudy.cli", "grid", "--params", "grid-smoke", "--notebooks", "00_claims",
                        "--address", "127.0.0.1:6399", "--no-prepare", "--no-browser", "--quiet"],
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "no Ray cluster answers at '127.0.0.1:6399'" in r.stdout and "ray start --head" in r.stdout
