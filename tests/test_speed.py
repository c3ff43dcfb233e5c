"""Speed section logic: parameter checks before loading, resume after SIGKILL, no stray servers."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from slmstudy import speed
from slmstudy.errors import InsufficientMemoryError, ParamsError
from slmstudy.params import validate

BASE = dict(run_id="t", prompt_tokens=32, output_tokens=8, repetitions=1, warmup=0,
            concurrency=[1], http_engines=[], http_concurrency=[1],
            targets=[{"model": "smollm2_135m", "engine": "llamacpp", "format": "Q4_1"}])


@pytest.mark.parametrize("change, message", [
    ({"output_tokens": -5}, "output_tokens"),
    ({"prompt_tokens": 0}, "prompt_tokens"),
    ({"concurrency": [0, 2]}, "concurrency levels must be ≥ 1"),
    ({"http_concurrency": [0]}, "concurrency levels must be ≥ 1"),
    ({"targets": [{"model": "smollm2_135m", "engine": "tensorrt"}]}, "unknown engine"),
    ({"http_engines": ["ortgenai"]}, r"servers exist for \['vllm', 'llamacpp'\] only, not \['ortgenai'\]"),
    ({"repetitons": 3}, "unknown key 'repetitons'"),
    # a misspelt engine option: refused at validation, naming the option, the engine and the
    # options it accepts (nothing is loaded yet)
    ({"targets": [{"model": "smollm2_135m", "engine": "llamacpp", "format": "Q4_1",
                   "options": {"n_ctxx": 512}}]},
     r"engine 'llamacpp': unknown option 'n_ctxx'\. Options llamacpp accepts: .*n_ctx"),
    ({"targets": [{"model": "smollm2_135m", "engine": "transformers",
                   "options": {"dtype": "float8"}}]}, r"engine 'transformers': option 'dtype'"),
])
def test_bad_parameters_are_refused_by_name(change, message):
    with pytest.raises(ParamsError, match=message):
        validate("02_speed", {**BASE, **change}, source="params/x/02_speed.yaml")


def test_model_that_cannot_fit_is_refused_before_loading():
    p = validate("02_speed", {**BASE, "targets": [
        {"model": "llama3_8b", "engine": "transformers", "dtype": "float32", "replica": True}]})
    rss = psutil.Process().memory_info().rss
    with pytest.raises(InsufficientMemoryError, match="GiB"):
        speed.preflight(p)
    assert psutil.Process().memory_info().rss - rss < 100 * 2**20


def test_summary_statistics_on_synthetic_records():
    ms = 1_000_000
    recs = []
    for rep in range(3):
        times = [(100 + rep) * ms + k * 10 * ms for k in range(8)]
        recs.append({"target": "x", "mode": "inproc", "concurrency": 1, "engine": "llamacpp",
                     "model": "m", "label": "real", "rep": rep, "n_tokens": 8, "length_ok": True,
                     "weights_bytes": 10**9, "bytes_read_per_token": 10**9, "load_s": 1.0,
                     "peak_rss_bytes": 1, "ttft_s": (100 + rep) / 1e3, "e2e_s": (170 + rep) / 1e3,
                     "decode_tok_s": 100.0, "chars_per_s": 1.0, "itl_s": [0.01] * 7,
                     "token_times_ns": times, "batch_t_send_ns": 0})
    (row,) = speed.summarize(recs, bandwidth_bytes_s=200e9)
    assert row["decode_tok_s"] == pytest.approx(100) and row["roofline_tok_s"] == pytest.approx(200)
    assert row["roofline_fraction"] == pytest.approx(0.5)
    assert row["ttft_s_ci_low"] <= row["ttft_s"] <= row["ttft_s_ci_high"]
    assert row["itl_p99_s"] == pytest.approx(0.01) and row["aggregate_tok_s"] == pytest.approx(8 / 0.171)


KILL_SCRIPT = r"""
import sys
from slmstudy import speed
from slmstudy.params import validate
from slmstudy.results import SectionResults
p = validate("02_speed", dict(run_id="killtest", prompt_tokens=32, output_tokens=48,
             repetitions=6, warmup=0, concurrency=[1], http_engines=["llamacpp"],
             http_concurrency=[1, 2],
             targets=[{"model": "smollm2_135m", "engine": "llamacpp", "format": "Q4_1"}]))
t = speed.resolve_target(p.targets[0])
res = SectionResults("killtest", "02_speed", root=__import__("pathlib").Path(sys.argv[1]))
speed.run_http(t, p, res, log_dir=res.dir / "logs")
print("FINISHED")
"""


@pytest.mark.slow
def test_sigkill_mid_sweep_leaves_no_server_and_resumes(tmp_path, arts):
    script = tmp_path / "sweep.py"
    script.write_text(KILL_SCRIPT)
    samples = tmp_path / "killtest" / "02_speed" / "samples.jsonl"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline:
        if samples.is_file() and len(samples.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert children, "the sweep should have started a llama.cpp server"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)
    alive = [p for p in children if psutil.pid_exists(p)
             and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"server processes survived the SIGKILL: {alive}"
    before = [json.loads(l) for l in samples.read_text().splitlines() if l.strip()]
    assert 3 <= len(before) < 6 + 12
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert "FINISHED" in out.stdout, out.stdout[-2000:]
    after = [json.loads(l) for l in samples.read_text().splitlines() if l.strip()]
    keys = [r["key"] for r in after]
    assert len(keys) == len(set(keys)) == 6 + 12  # every cell once: nothing redone, nothing missing
    assert after[: len(before)] == before  # finished cells untouched


def test_local_model_paths_resolve(arts, tmp_path):
    """A user's own model by local path: GGUF file for llama.cpp, HF folder for transformers."""
    p = validate("02_speed", {**BASE, "targets": [
        {"model": str(arts.gguf), "engine": "llamacpp", "format": "gguf"},
        {"model": str(arts.hf), "engine": "transformers", "dtype": "float32"}]})
    speed.preflight(p)
    g, h = (speed.resolve_target(t) for t in p.targets)
    assert g.path == arts.gguf and g.weights_bytes > 50e6
    assert h.path == arts.hf and h.tokenizer_dir == arts.hf
    assert h.bytes_read_per_token == 134_515_008 * 4  # tied embeddings: all weights, fp32
    bad = validate("02_speed", {**BASE, "targets": [
        {"model": str(tmp_path / "nope"), "engine": "llamacpp"}]})
    with pytest.raises(Exception, match="local path"):
        speed.preflight(bad)
    wrong = validate("02_speed", {**BASE, "targets": [
        {"model": str(arts.gguf), "engine": "transformers"}]})
    with pytest.raises(Exception, match="is a GGUF file: transformers needs an HF model folder"):
        speed.resolve_target(wrong.targets[0])


def test_environment_yml_matches_the_lock():
    from slmstudy.paths import REPO_ROOT

    lock = [l.strip() for l in (REPO_ROOT / "requirements/cpu.lock.txt").read_text().splitlines()
            if l.strip() and not l.startswith("#") and not l.startswith("vllm")]
    env = (REPO_ROOT / "environment.yml").read_text()
    missing = [l for l in lock if f"- {l}\n" not in env]
    assert not missing, f"environment.yml lacks {missing[:5]}: regenerate it from the lock"


def test_every_speed_scenario_validates_and_passes_preflight():
    """Each params/<scenario>/02_speed.yaml parses (unknown keys are errors); on a CPU scenario
    every target fits this machine's memory before anything is loaded, and a GPU scenario on a
    machine without GPUs is refused by the layout check (slmstudy.layout)."""
    from slmstudy.params import load_params
    from slmstudy.paths import REPO_ROOT
    from slmstudy.speed import preflight

    files = sorted((REPO_ROOT / "params").glob("*/02_speed.yaml"))
    assert {f.parent.name for f in files} >= {"default", "smoke", "h100", "cpu-full"}
    from slmstudy.errors import StudyError
    from slmstudy.layout import visible_gpus

    for f in files:
        p = load_params("02_speed", f)
        assert p.repetitions >= 3, f
        if p.device == "cuda" and not visible_gpus():
            # a GPU scenario on a machine without one is refused before anything loads
            with pytest.raises(StudyError, match=r"needs \d GPU\(s\); this machine shows 0|"
                                                 r"spreads the model over GPUs, and this engine runs on the CPU"):
                preflight(p)
            continue
        preflight(p)
