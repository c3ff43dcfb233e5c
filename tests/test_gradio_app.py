"""Article 003's stack: the study's Gradio app over transformers, through gradio_client and Chromium.

One stack for the whole module (the engine loads the embedded model, Gradio imports in 10-30 s on
two cores). Its `with` block is left by an exception on purpose, after the chats: the teardown
under test is the one a failing run gets. A second, separate test SIGKILLs a Python process that
holds a stack and checks that nothing of it survives. Gradio is installed by
scripts/setup_gradio.sh (`make gradio`) when `.venv-gradio` is missing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from slmstudy import gradio_chat
from slmstudy.errors import ServerError, StudyError
from slmstudy.paths import REPO_ROOT
from slmstudy.webui import CHROMIUM, alive

MODEL = "smollm2_135m"
QUESTIONS = ["用一句话介绍北京。", "What is the capital of France?"]
MAX_TOKENS = 12

pytestmark = pytest.mark.slow


class Midway(Exception):
    """Raised inside the stack's `with` block to check the teardown of a failing run."""


@pytest.fixture(scope="session")
def gradio_venv() -> Path:
    try:
        return gradio_chat.check_installed()
    except gradio_chat.GradioNotInstalledError:
        pass
    p = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup_gradio.sh")], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        pytest.fail(f"scripts/setup_gradio.sh failed ({p.returncode}):\n{p.stdout[-2000:]}\n"
                    f"{p.stderr[-3000:]}")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} missing: `make setup` installs Debian's chromium")
    return gradio_chat.check_installed()


@pytest.fixture(scope="module")
def run(gradio_venv, arts, tmp_path_factory):
    out: dict = {}
    stack = gradio_chat.GradioStack(arts.hf, arts.hf, engine="transformers", model_name=MODEL,
                                    log_dir=tmp_path_factory.mktemp("logs"), max_tokens=MAX_TOKENS)
    with pytest.raises(Midway):
        with stack:
            eng, app = stack.engine, stack.app
            out["ready"] = (stack.engine_ready_s, stack.app_ready_s, stack.startup_s)
            out["urls"] = (eng.base_url, app.base_url)
            out["direct"] = [gradio_chat.engine_chat(eng, q, max_tokens=MAX_TOKENS) for q in QUESTIONS]
            n = len(eng.requests())
            out["client"] = gradio_chat.drive(app.base_url, QUESTIONS, mode="client", watch=stack.watch)
            out["client_engine"] = eng.requests()[n:]
            n = len(eng.requests())
            out["browser"] = gradio_chat.drive(app.base_url, QUESTIONS, mode="browser", watch=stack.watch,
                                               screenshot_dir=tmp_path_factory.mktemp("shots"))
            out["browser_engine"] = eng.requests()[n:]
            out["app_turns"] = app.turns()
            stack.watch.sample()
            out["memory"] = stack.watch.memory_table()
            out["pids"] = stack.all_pids()
            raise Midway("simulated failure inside the with block")
    out["watch"] = stack.watch
    out["pids"] = out["pids"] | stack.all_pids()
    return out


def _words(text: str) -> str:
    return re.sub(r"\W+", "", text)


@pytest.mark.timeout(900)
def test_stack_starts_on_loopback_and_the_engine_answers(run):
    engine_s, app_s, stack_s = run["ready"]
    assert 0 < engine_s < stack_s and 0 < app_s < stack_s
    assert all(u.startswith("http://127.0.0.1:") for u in run["urls"])
    for d in run["direct"]:
        e = d["engine"]
        assert d["answer"].strip() and e["n_tokens"] <= MAX_TOKENS
        assert 0 < e["engine_ttft_ms"] < d["first_token_ms"] <= d["done_ms"]


@pytest.mark.timeout(900)
def test_gradio_client_chat_streams_the_engines_answer(run):
    c = run["client"]
    assert [t["question"] for t in c["turns"]] == QUESTIONS
    assert len(run["client_engine"]) == len(QUESTIONS), "each chat reached the engine once"
    for t, e, d in zip(c["turns"], run["client_engine"], run["direct"]):
        assert t["answer"] == e["text"], "the client got what the engine generated"
        # the same prompt ids as the request sent straight to the engine, the same greedy answer
        assert e["prompt_ids"] == d["engine"]["prompt_ids"] and t["answer"] == d["answer"]
        assert t["n_updates"] >= 2, "streamed: more than one update per answer"
        assert 0 < e["engine_ttft_ms"] < t["first_token_ms"] <= t["done_ms"]


@pytest.mark.timeout(900)
def test_browser_chat_in_chinese_and_english(run):
    b = run["browser"]
    assert [t["question"] for t in b["turns"]] == QUESTIONS
    assert len(run["browser_engine"]) == len(QUESTIONS)
    for t, e in zip(b["turns"], run["browser_engine"]):
        assert t["answer"] and _words(t["answer"]) == _words(e["text"]), (t["answer"], e["text"])
        assert 0 < e["engine_ttft_ms"] < t["first_token_ms"] <= t["first_paint_ms"]
        assert t["first_paint_ms"] <= t["done_ms_driver"] + 50
        head = Path(t["screenshot"]).read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(head[16:20], "big") == 1000
    assert b["hosts"] and all(h.startswith("127.0.0.1:") for h in b["hosts"]), b["hosts"]
    assert all("127.0.0.1" in f["url"] for f in b["failed_requests"]), b["failed_requests"]
    # the app's own log: one turn per chat, the engine's first token reached it before the page
    assert len(run["app_turns"]) == 2 * len(QUESTIONS)


@pytest.mark.timeout(900)
def test_no_socket_outside_loopback_and_memory_per_tree(run):
    w = run["watch"]
    assert w.outside == [] and w.exposed == [], (w.outside, w.exposed)
    assert w.loopback_seen > 0
    mem = {m["process tree"]: m for m in run["memory"]}
    assert set(mem) == {"engine", "gradio", "client", "browser"}
    assert all(m["peak_rss_MB"] > 10 for m in mem.values())


@pytest.mark.timeout(900)
def test_nothing_left_running_after_a_failure_inside_the_with_block(run):
    assert len(run["pids"]) >= 4
    assert alive(run["pids"]) == []


KILL_SCRIPT = r"""
import json, sys
from slmstudy import gradio_chat
stack = gradio_chat.GradioStack(sys.argv[1], sys.argv[1], model_name="m", log_dir=sys.argv[2],
                                max_tokens=4).start()
print(json.dumps(sorted(stack.all_pids())), flush=True)
import time; time.sleep(600)
"""


@pytest.mark.timeout(600)
def test_sigkill_of_the_parent_leaves_no_process(gradio_venv, arts, tmp_path):
    script = tmp_path / "hold.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(arts.hf), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = ""
    deadline = time.time() + 400
    while time.time() < deadline and not line.startswith("["):
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
    assert line.startswith("["), f"the stack did not start: {line}{proc.stdout.read()[-2000:]}"
    pids = json.loads(line)
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert len(set(pids) | set(children)) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and alive(set(pids) | set(children)):
        time.sleep(0.2)
    assert alive(set(pids) | set(children)) == [], "stack processes survived the parent's SIGKILL"


# ------------------------------------------------------------------------------ clear errors


def test_not_installed_says_make_gradio(tmp_path, arts):
    with pytest.raises(gradio_chat.GradioNotInstalledError, match="make gradio"):
        gradio_chat.GradioApp("http://127.0.0.1:9", venv=tmp_path / "no-venv")
    with pytest.raises(gradio_chat.GradioNotInstalledError, match="make gradio"):
        gradio_chat.GradioStack(arts.hf, arts.hf, venv=tmp_path / "no-venv")


def test_bad_engine_model_or_tokenizer_is_refused_before_start(arts, tmp_path):
    with pytest.raises(StudyError, match="unknown engine 'nope'"):
        gradio_chat.EngineServer(arts.hf, arts.hf, engine="nope")
    with pytest.raises(StudyError, match="does not exist"):
        gradio_chat.EngineServer(tmp_path / "missing", arts.hf)
    with pytest.raises(StudyError, match="no HF tokenizer"):
        gradio_chat.EngineServer(arts.hf, tmp_path)


def test_engine_that_dies_reports_its_log(arts, tmp_path):
    srv = gradio_chat.EngineServer(arts.hf, arts.hf, log_dir=tmp_path, ready_timeout_s=60)
    srv.command = lambda: [sys.executable, "-c", "import sys; print('cannot load'); sys.exit(3)"]
    with pytest.raises(ServerError, match="exited with code 3"):
        srv.start()
    assert srv.alive_pids() == []


def test_timings_table_pairs_each_chat_with_the_engine_record():
    def rec(path, ms, ttft, warm=False):
        return {"path": path, "lang": "en", "warmup": warm, "first_token_ms": ms,
                "engine_ttft_ms": ttft, "prompt_tokens": 37}

    G = {"questions": {"en": "q"}, "startup": {"gradio": "x"}, "engine": "transformers",
         "records": [rec("engine-http", 999, 10, warm=True), rec("engine-http", 105, 100),
                     rec("engine-http", 52, 50), rec("engine-http", 31, 30),
                     rec("gradio-client", 130, 100), rec("gradio-client", 70, 50),
                     rec("gradio-client", 50, 30), rec("browser", 400, 100)]}
    rows = {r["path"]: r for r in gradio_chat.timings_table(G)}
    assert rows["engine"]["n"] == 7 and rows["engine"]["first_token_ms"] == 50
    assert rows["engine-http"]["over_engine_ms"] == 2 and rows["engine-http"]["n"] == 3
    assert rows["gradio-client"]["over_engine_ms"] == 20
    assert rows["browser"]["over_engine_ms"] == 300 and rows["browser"]["prompt_tokens"] == "37"


def test_transformers_stream_live_hands_over_each_token_before_the_last_exists(arts, chat_ids):
    """The app's engine streams: with transformers (whose `stream` yields after generate()), the
    first token reaches the caller before the last one is produced, and the tokens are the ones
    `generate_one` gives."""
    from slmstudy.backends import registry
    from slmstudy.backends.base import GenRequest

    spec = registry.get("transformers")
    with spec.make(arts.hf, options=spec.options_for(registry.RunContext())) as eng:
        req = GenRequest(prompt_ids=chat_ids, max_tokens=8, force_length=True)
        got, received = [], []
        for tok, t in eng.stream_live(req):
            got.append((tok, t))
            received.append(time.perf_counter_ns())
        ref = eng.generate_one(req)
    assert [tok for tok, _ in got] == ref.output_ids and len(got) == 8
    times = [t for _, t in got]
    assert times == sorted(times)
    assert received[0] < times[-1], "the first token was handed over only after the last existed"


def test_dependency_claims_follow_the_recorded_check():
    """The ledger's verdicts on article 003's pins come from the recorded PyPI check, and turn
    with it (a made-up record, not the committed one)."""
    from slmstudy.claims import load_claims
    from slmstudy.claims.measured import judge_dependency

    claims = {c.id: c for c in load_claims()}
    pins_claim, phi3_claim = claims["a003-4.1-pins-resolve"], claims["a003-4.2-phi3-trust-remote-code"]

    def record(resolves: bool, native: bool) -> dict:
        return {"checked_on": "2000-01-01", "python": "3.11", "pip": "x",
                "pins": ["torch==2.9.1", "transformers==4.57.3", "gradio==6.2.0", "accelerate==1.12.0"],
                "resolve": {"resolves": resolves, "n_packages": 3, "command": "pip …",
                            "exit_code": 0 if resolves else 1, "error": "ResolutionImpossible"},
                "phi3_native": [{"transformers": "4.57.3", "wheel": "w", "command": "pip download …",
                                 "ships_modeling_phi3": native, "auto_config_maps_phi3": native,
                                 "auto_causal_lm_maps_phi3": native, "native_phi3": native}]}

    assert judge_dependency(pins_claim, record(True, True)).verdict == "consistent"
    assert judge_dependency(pins_claim, record(False, True)).verdict == "inconsistent"
    assert judge_dependency(phi3_claim, record(True, True)).verdict == "inconsistent"
    assert judge_dependency(phi3_claim, record(True, False)).verdict == "consistent"
    # the committed record: the pins resolve; transformers 4.57.3 ships Phi-3 itself
    assert judge_dependency(pins_claim).verdict == "consistent"
    assert "not needed" in judge_dependency(phi3_claim).evidence


def test_dependency_claims_without_a_record_say_how_to_make_one():
    """No recorded check: the rules' not-testable verdict names the command that records it."""
    from slmstudy.claims import load_claims
    from slmstudy.claims.rules import not_testable_reason

    claims = {c.id: c for c in load_claims()}
    for cid in ("a003-4.1-pins-resolve", "a003-4.2-phi3-trust-remote-code"):
        reason = not_testable_reason(claims[cid])
        assert "python -m slmstudy.gradio_chat.pins" in reason and "no rule" not in reason, reason
