"""The study as a grid of cells on Ray: every notebook of a scenario is one cell, a papermill run
dispatched as a Ray task — one per GPU on a GPU cluster, one per CPU slot on a CPU machine.

    slmstudy grid --params smoke                      a local Ray cluster (started, then stopped)
    slmstudy grid --params smoke --workers 2          … with two cells at a time
    slmstudy grid --params gpu --address HOST:6379    join a running cluster (`ray start --head`)

A cell writes what a notebook run writes: its section folder build/runs/<run-id>/<notebook>/
(per-sample records appended as they complete) and its executed copy
build/executed/<run-id>/<notebook>.ipynb. The sections run side by side; the conclusions (00, the
claims ledger) run once they are all done, and the book is built from the cells' executed
notebooks as for `slmstudy run`: one report.

A worker that dies mid-cell (killed, out of memory, its node lost) is a system failure in Ray's
sense, and Ray Core retries the task (docs.ray.io, "Task fault tolerance": `max_retries`, 3 by
default, counts worker deaths only; an exception the notebook raises is its own result, not
retried). The retried cell reruns its notebook with the same run id, so the notebook resumes from
its per-sample records (results.SectionResults: a key already in samples.jsonl is not redone).
Before it starts, the retry stops whatever the dead attempt left running on the node — its Jupyter
kernel would otherwise go on appending records — by the attempt's mark in the environment of every
process it started (Linux: /proc/<pid>/environ). Every attempt is logged in
build/runs/<run-id>/grid/attempts.jsonl (worker pid, node, GPUs, start, end, status); after the
grid each section's records are counted (records, distinct keys, duplicates) into the run record.

On several machines the build folder must be shared (SLMSTUDY_BUILD / SLMSTUDY_RUNS on one network
file system): a cell whose attempt log the driver cannot read is an error that says so.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import execute
from .errors import StudyError
from .paths import runs_dir

#: the environment variable that marks every process an attempt starts (its kernel included)
MARK = "SLMSTUDY_GRID_ATTEMPT"
#: environment variables a cell needs as the driver has them (locations of data, cache, results)
PASSED_ENV = ("SLMSTUDY_BUILD", "SLMSTUDY_RUNS", "SLMSTUDY_CACHE", "SLMSTUDY_DATA_DIR", "HF_HOME",
              "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def attempts_path(run_id: str) -> Path:
    return runs_dir() / run_id / "grid" / "attempts.jsonl"


def read_attempts(run_id: str, grid_id: str | None = None) -> list[dict]:
    """The attempt log of a run (of one grid invocation when grid_id is given), in order."""
    return read_attempts_at(attempts_path(run_id), grid_id)


def read_attempts_at(p: Path, grid_id: str | None = None) -> list[dict]:
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill mid-write
        if grid_id is None or rec.get("grid_id") == grid_id:
            out.append(rec)
    return out


def _log(run_id: str, rec: dict) -> None:
    p = attempts_path(run_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(rec, ensure_ascii=False) + "\n"
    with open(p, "a", encoding="utf-8") as f:  # one short line per write: O_APPEND keeps it whole
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------------- the plan


@dataclass
class Cell:
    notebook: str
    scenario: str
    run_id: str
    stage: int  # 0: the sections, side by side; 1: the conclusions, after every section


def plan(notebooks: list[str], scenario: str, run_id: str) -> list[Cell]:
    """One cell per notebook: the sections first (stage 0), the conclusions after (stage 1)."""
    return [Cell(n, scenario, run_id, 1 if n in execute.CONCLUSIONS else 0)
            for n in sorted(notebooks, key=execute.execution_rank)]


def cell_resources(cluster: dict, cpus_per_cell: float = 1.0, gpus_per_cell: int = 1) -> dict:
    """Ray resources of one cell: `gpus_per_cell` GPUs (and a CPU) where the cluster has GPUs —
    more than one for a notebook whose targets spread a model over several (slmstudy.layout) —,
    else `cpus_per_cell` CPUs: a CPU machine of N cores runs N / cpus_per_cell cells at a time."""
    if cpus_per_cell <= 0 or gpus_per_cell < 1:
        raise StudyError(f"cpus_per_cell must be > 0 and gpus_per_cell ≥ 1, got {cpus_per_cell}, "
                         f"{gpus_per_cell}")
    if cluster.get("GPU", 0) >= 1:
        if cluster["GPU"] < gpus_per_cell:
            raise StudyError(f"a cell needs {gpus_per_cell} GPUs; the Ray cluster has {cluster['GPU']:g}: "
                             "lower --gpus-per-cell or add GPUs")
        return {"num_gpus": gpus_per_cell, "num_cpus": 1}
    if cluster.get("CPU", 0) < cpus_per_cell:
        raise StudyError(f"a cell needs {cpus_per_cell} CPU(s); the Ray cluster has "
                         f"{cluster.get('CPU', 0)}: lower --cpus-per-cell or add nodes")
    return {"num_cpus": cpus_per_cell}


# ---------------------------------------------------------------------------------- the worker side


def _marked_pids(prefix: bytes) -> list[int]:
    """Processes of this user whose environment carries MARK=<prefix...> (Linux /proc)."""
    pids = []
    needle = MARK.encode() + b"=" + prefix
    for d in Path("/proc").glob("[0-9]*"):
        try:
            env = (d / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if any(item.startswith(needle) for item in env.split(b"\0")):
            pids.append(int(d.name))
    return [p for p in pids if p != os.getpid()]


def reap(prefix: str, timeout_s: float = 20.0) -> list[int]:
    """SIGKILL every process an earlier attempt started (its mark starts with `prefix`) and wait
    until they are gone; the pids killed. Without /proc (not Linux) nothing can be found: the dead
    attempt's kernel stops by itself when it sees its parent gone (ipykernel's parent poller)."""
    if not Path("/proc/self/environ").exists():
        return []
    killed = _marked_pids(prefix.encode())
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout_s
    while _marked_pids(prefix.encode()):
        if time.monotonic() > deadline:
            raise StudyError(f"processes of an earlier attempt ({prefix}) survive SIGKILL: "
                             f"{_marked_pids(prefix.encode())}")
        time.sleep(0.1)
    return killed


def _gpu_ids() -> list:
    try:
        import ray

        return [str(g) for g in ray.get_gpu_ids()]
    except Exception:  # noqa: BLE001 — outside a Ray worker
        return []


def attempt_summary(attempts: list[dict], cell: str) -> dict:
    """One cell's attempts from the log: how many started, which ended (their numbers), and the
    worker pids of those that started and never ended (the workers that died mid-cell)."""
    mine = [a for a in attempts if a["cell"] == cell]
    ended = {a["attempt"] for a in mine if a["event"] == "end"}
    started = [a for a in mine if a["event"] == "start"]
    return {"started": len(started), "ended": sorted(ended),
            "died": [a["pid"] for a in started if a["attempt"] not in ended]}


def run_cell(cell: Cell, grid_id: str, timeout_per_cell: float | None = None) -> dict:
    """Execute one cell here (on a Ray worker): the attempt is logged, whatever an earlier
    attempt of the cell left running is stopped, then the notebook runs (resuming its records)."""
    earlier = attempt_summary(read_attempts(cell.run_id, grid_id), cell.notebook)["started"]
    attempt = earlier + 1
    reaped = reap(f"{grid_id}/{cell.notebook}/") if earlier else []
    base = {"grid_id": grid_id, "cell": cell.notebook, "attempt": attempt, "pid": os.getpid(),
            "host": socket.gethostname(), "gpus": _gpu_ids(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    _log(cell.run_id, {**base, "event": "start", "utc": _now(), "reaped": reaped})
    os.environ[MARK] = f"{grid_id}/{cell.notebook}/{attempt}"
    try:
        st = execute.execute_notebook(cell.notebook, cell.scenario, cell.run_id,
                                      execute.executed_dir(cell.run_id), timeout_per_cell=timeout_per_cell,
                                      progress_bar=False)
    finally:
        os.environ.pop(MARK, None)
    _log(cell.run_id, {**base, "event": "end", "utc": _now(), "status": st.status,
                       "duration_s": st.duration_s, "error": st.error})
    return {"status": st.to_dict(), "attempt": attempt, "pid": os.getpid(), "host": base["host"],
            "gpus": base["gpus"]}


# ---------------------------------------------------------------------------------- the driver


def section_counts(run_id: str, notebook: str) -> dict:
    """Records, distinct keys and duplicated keys of a section's samples.jsonl."""
    from .results import SectionResults

    recs = SectionResults(run_id, notebook).records()
    keys = [r["key"] for r in recs if "key" in r]
    return {"records": len(recs), "keys": len(set(keys)), "duplicates": len(keys) - len(set(keys))}


@dataclass
class GridResult:
    grid_id: str
    run_id: str
    statuses: list = field(default_factory=list)  # execute.NotebookStatus, by notebook
    cells: list[dict] = field(default_factory=list)  # per cell: attempts, host, gpus, counts
    cluster: dict = field(default_factory=dict)
    seconds: float = 0.0

    def record(self) -> dict:
        return {"grid_id": self.grid_id, "cluster": self.cluster, "cells": self.cells,
                "seconds": round(self.seconds, 1)}


def _reachable(address: str) -> None:
    """Refuse an address nothing listens on now (ray.init would retry it for minutes)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise StudyError(f"no Ray cluster answers at {address!r} ({exc}): start one with `ray start "
                         "--head` and pass the address it prints (HOST:PORT), or leave --address out "
                         "for a local cluster") from None


def _auth_env(address: str | None) -> None:
    """`ray start` (Ray 2.60) makes clusters that require its token (~/.ray/auth_token); a driver
    sends it only with RAY_AUTH_MODE=token, read when ray is imported: set here, before that."""
    if not address or "RAY_AUTH_MODE" in os.environ:
        return
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
            or (Path.home() / ".ray" / "auth_token").is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


def _ray_init(address: str | None, workers: int | None, cpus_per_cell: float, env: dict):
    import ray

    kw = dict(runtime_env={"env_vars": env}, log_to_driver=False)
    if address:
        _reachable(address)
        try:
            ray.init(address=address, **kw)
        except ConnectionError as exc:
            raise StudyError(f"the Ray cluster at {address!r} refused this driver ({exc}); a cluster with "
                             "token authentication needs its token in ~/.ray/auth_token or "
                             "RAY_AUTH_TOKEN (docs.ray.io, ray-security/token-auth)") from None
        return
    num_cpus = int(workers * cpus_per_cell) if workers else None
    # the object store carries a few status dicts: 100 MB instead of 30 % of the memory
    ray.init(num_cpus=num_cpus, object_store_memory=100 * 2**20, include_dashboard=False, **kw)


def outcomes(cells: list[Cell], done: dict[str, dict], attempts: list[dict], run_id: str,
             scenario: str) -> tuple[list, list[dict]]:
    """Per cell, its notebook status and its row of the run page's grid table, from what the
    workers returned (`done`) and the attempts log; a cell whose end is not in this build
    folder's log ran on a node that does not share it, and counts as failed with the fix named."""
    statuses, rows = [], []
    for c in cells:
        out = done.get(c.notebook, {})
        summary = attempt_summary(attempts, c.notebook)
        if not out:
            status = execute.NotebookStatus(name=c.notebook, status=execute.FAILED, run_id=run_id,
                                            error="no result")
        elif out.get("attempt") and out["attempt"] not in summary["ended"]:
            status = execute.NotebookStatus(
                name=c.notebook, status=execute.FAILED, run_id=run_id, scenario=scenario,
                error=f"the cell ran on {out.get('host')}, whose build folder is not this one's "
                      f"({attempts_path(run_id)} has no record of its end): set SLMSTUDY_BUILD "
                      "to a folder every node shares")
        else:
            status = execute.NotebookStatus.from_dict(out["status"])
        statuses.append(status)
        rows.append({"cell": c.notebook, "stage": c.stage, "attempts": summary["started"],
                     "died": summary["died"], "host": out.get("host"), "gpus": out.get("gpus"),
                     **section_counts(run_id, c.notebook)})
    return statuses, rows


def run_grid(notebooks: list[str], scenario: str, run_id: str, *, address: str | None = None,
             workers: int | None = None, cpus_per_cell: float = 1.0, gpus_per_cell: int = 1,
             retries: int = 3,
             timeout_per_cell: float | None = None, say=print, progress: bool = True) -> GridResult:
    """Dispatch the cells of a scenario on Ray and wait for them; the caller writes the run
    record and builds the book (cli.cmd_grid)."""
    _auth_env(address)
    import ray
    from tqdm.auto import tqdm

    grid_id = uuid.uuid4().hex[:12]
    cells = plan(notebooks, scenario, run_id)
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    t0 = time.monotonic()
    _ray_init(address, workers, cpus_per_cell, env)
    res = GridResult(grid_id=grid_id, run_id=run_id)
    try:
        cluster = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU", "memory")}
        res.cluster = {**cluster, "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
                       "address": address or "local, started by the grid"}
        opts = cell_resources(cluster, cpus_per_cell, gpus_per_cell)
        task = ray.remote(run_cell).options(max_retries=retries, retry_exceptions=False, **opts)
        say(f"grid {grid_id}: {len(cells)} cells on {res.cluster['nodes']} node(s) "
            f"({cluster.get('CPU', 0):g} CPU, {cluster.get('GPU', 0):g} GPU); each cell {opts}")
        bar = tqdm(total=len(cells), desc="cells", unit="cell", disable=not progress)
        done: dict[str, dict] = {}
        for stage in sorted({c.stage for c in cells}):
            pending = {task.remote(c, grid_id, timeout_per_cell): c for c in cells if c.stage == stage}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready[0])
                try:
                    out = ray.get(ready[0])
                except Exception as exc:  # noqa: BLE001 — retries exhausted: the cell failed
                    out = {"status": execute.NotebookStatus(
                        name=cell.notebook, status=execute.FAILED, run_id=run_id, scenario=scenario,
                        error=f"the cell's worker died {retries + 1} times: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}").to_dict(),
                           "attempt": None}
                done[cell.notebook] = out
                st = out["status"]
                bar.update(1)
                say(f"   {cell.notebook}: {st['status']}"
                    + (f" in {st['duration_s']:.1f} s" if st.get("duration_s") is not None else "")
                    + (f" (attempt {out['attempt']})" if (out.get("attempt") or 1) > 1 else "")
                    + (f": {st['error']}" if st["status"] != execute.OK and st.get("error") else ""))
        bar.close()
    finally:
        ray.shutdown()  # stops the cluster it started; from one it joined, it only disconnects
    res.statuses, res.cells = outcomes(cells, done, read_attempts(run_id, grid_id), run_id, scenario)
    res.seconds = time.monotonic() - t0
    return res
