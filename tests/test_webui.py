"""Open WebUI in front of llama_cpp.server, driven through its API and headless Chromium.

One stack for the whole module (Open WebUI takes 15-75 s to start on two cores). Its `with` block
is left by an exception on purpose, after the API and browser chats: the teardown under test is
the one a failing run gets. Open WebUI is installed by scripts/setup_webui.sh (`make webui`) when
`.venv-webui` is missing.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from slmstudy import webui
from slmstudy.errors import ServerError
from slmstudy.paths import REPO_ROOT

MODEL = "smollm2_135m"
QUESTIONS = ["用一句话介绍北京。", "What is the capital of France?"]


class Midway(Exception):
    """Raised inside the stack's `with` block to check the teardown of a failing run."""


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def webui_venv() -> Path:
    try:
        return webui.check_installed()
    except webui.WebUINotInstalledError:
        pass
    p = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "setup_webui.sh")], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        pytest.fail(f"scripts/setup_webui.sh failed ({p.returncode}):\n{p.stdout[-2000:]}\n"
                    f"{p.stderr[-3000:]}")
    if not Path(webui.CHROMIUM).is_file():
        pytest.fail(f"{webui.CHROMIUM} missing: `make setup` installs Debian's chromium")
    return webui.check_installed()


@pytest.fixture(scope="module")
def run(webui_venv, arts, tmp_path_factory):
    """Everything the stack did, recorded; the `with` block ends with an exception."""
    out: dict = {}
    shots = tmp_path_factory.mktemp("shots")
    stack = webui.WebUIStack(arts.gguf, model_name=MODEL, log_dir=tmp_path_factory.mktemp("logs"))
    with pytest.raises(Midway):
        with stack:
            ui, eng = stack.ui, stack.engine
            out["ready"] = (stack.engine_ready_s, stack.ui_ready_s, stack.startup_s)
            out["data_dir"] = ui.data_dir
            token = ui.signup_admin()
            out["models"] = ui.models(token)
            ui.set_chat_defaults(token, temperature=0, max_tokens=32)
            cursor = webui.LogCursor(eng.log_path)
            # consecutive requests never repeat a prompt (llama.cpp reuses the previous prompt's
            # prefix): direct Q1, then Q0 and Q1 through Open WebUI
            out["direct"] = webui.engine_stream(eng, QUESTIONS[1], max_tokens=32)
            out["direct_log"] = webui.llamacpp_requests(cursor.read(webui.LLAMA_DONE))
            out["api"] = [ui.chat_stream(token, q, max_tokens=32) for q in QUESTIONS]
            out["api_log"] = webui.llamacpp_requests(cursor.read(webui.LLAMA_DONE, len(QUESTIONS)))
            out["browser"] = webui.browser_chat(ui, QUESTIONS, screenshot_dir=shots,
                                                watch=stack.watch)
            out["browser_log"] = webui.llamacpp_requests(cursor.read(webui.LLAMA_DONE,
                                                                     len(QUESTIONS)))
            stack.watch.sample()
            out["memory"] = stack.watch.memory_table()
            out["pids"] = stack.all_pids()
            raise Midway("simulated failure inside the with block")
    out["watch"] = stack.watch
    out["pids"] = out["pids"] | stack.all_pids()
    return out


def _words(text: str) -> str:
    return re.sub(r"\W+", "", text)


# ------------------------------------------------------------------------ the stack, end to end


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_model_listed_and_api_chat_reaches_the_engine(run):
    assert MODEL in run["models"]
    engine_s, ui_s, stack_s = run["ready"]
    assert 0 < engine_s < stack_s and 0 < ui_s < stack_s
    for g in run["api"]:
        assert g.text.strip(), "empty reply through Open WebUI's API"
        assert len(g.token_times_ns) >= 1 and g.ttft_s > 0
        assert g.token_times_ns == sorted(g.token_times_ns)
    # one engine request per chat, each with the question's prompt (llama.cpp's own log)
    assert [p["status"] for p in run["api_log"]["posts"]] == [200] * len(QUESTIONS)
    assert len(run["api_log"]["requests"]) == len(QUESTIONS)
    # Open WebUI forwards the chat as is: the same prompt tokens and the same greedy answer as
    # the request sent straight to the engine
    assert run["direct_log"]["requests"][0]["prompt_tokens"] == \
        run["api_log"]["requests"][1]["prompt_tokens"]
    assert run["direct"].text == run["api"][1].text


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_browser_chat_in_chinese_and_english(run):
    b = run["browser"]
    assert [t["question"] for t in b["turns"]] == QUESTIONS
    assert len(run["browser_log"]["posts"]) == len(QUESTIONS), "each browser question reached the engine"
    for t, api in zip(b["turns"], run["api"]):
        assert t["answer"], f"no answer on the page for {t['question']!r}"
        # the page shows what the engine generated (greedy, same settings as the API chat)
        assert _words(t["answer"]) == _words(api.text)
        assert 0 < t["first_token_ms"] <= t["first_paint_ms"] <= t["done_ms_driver"] + 50
        png = Path(t["screenshot"])
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert int.from_bytes(head[16:20], "big") == 1000  # the viewport's width
    assert b["login_s"] > 0 and b["browser_version"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_no_request_left_127_0_0_1(run):
    b = run["browser"]
    assert b["hosts"] and all(h.startswith("127.0.0.1:") for h in b["hosts"]), b["hosts"]
    assert all(u.startswith("http://127.0.0.1:") or u.startswith("data:") or u.startswith("blob:")
               for u in b["requests"]), [u for u in b["requests"] if "127.0.0.1" not in u][:5]
    assert all("127.0.0.1" in f["url"] for f in b["failed_requests"]), b["failed_requests"]
    w = run["watch"]
    assert w.outside == [], f"sockets to addresses outside loopback: {w.outside}"
    assert w.exposed == [], f"servers listening beyond loopback: {w.exposed}"
    assert w.loopback_seen > 0, "the socket sampler saw no connection at all"
    assert {"engine", "open-webui", "browser"} <= set(w.trees)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_memory_of_each_process_tree(run):
    mem = {m["process tree"]: m for m in run["memory"]}
    assert set(mem) == {"engine", "open-webui", "browser"}
    for m in mem.values():
        assert m["peak_rss_MB"] > 10
    assert 0 < mem["browser"]["peak_rss_chromium_only_MB"] <= mem["browser"]["peak_rss_MB"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_nothing_left_running_after_a_failure_inside_the_with_block(run):
    assert len(run["pids"]) >= 3  # engine, Open WebUI, browser processes (Chromium: several)
    assert webui.alive(run["pids"]) == []
    assert not Path(run["data_dir"]).exists(), "the fresh DATA_DIR is removed at teardown"


# ------------------------------------------------------------------------------ clear errors


@pytest.mark.slow
def test_not_installed_says_make_webui(tmp_path, arts):
    with pytest.raises(webui.WebUINotInstalledError, match="make webui"):
        webui.OpenWebUI("http://127.0.0.1:9/v1", venv=tmp_path / "no-venv")
    # the stack checks before it starts the engine
    with pytest.raises(webui.WebUINotInstalledError, match="make webui"):
        webui.WebUIStack(arts.gguf, venv=tmp_path / "no-venv")


@pytest.mark.slow
def test_port_taken(webui_venv):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {port} .* already in use"):
            webui.OpenWebUI("http://127.0.0.1:9/v1", port=port)


@pytest.mark.slow
def test_engine_not_answering(webui_venv, tmp_path):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    ui = webui.OpenWebUI(f"http://127.0.0.1:{dead}/v1", log_dir=tmp_path)
    with pytest.raises(ServerError, match="no OpenAI-compatible server answers"):
        ui.start()
    assert ui.proc is None  # Open WebUI was not started at all


@pytest.mark.slow
def test_engine_never_ready(webui_venv, arts, tmp_path):
    stack = webui.WebUIStack(arts.gguf, model_name=MODEL, log_dir=tmp_path,
                             engine_ready_timeout_s=0.5)
    with pytest.raises(ServerError, match="did not become ready"):
        with stack:
            pass
    assert stack.ui is None
    assert stack.engine.proc is not None and webui.alive(stack.engine.pids) == []


class _FakeEngine(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 — enough of an OpenAI server for the pre-check
        body = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.mark.slow
def test_ui_never_ready_names_the_log(webui_venv, tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeEngine)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ui = webui.OpenWebUI(f"http://127.0.0.1:{srv.server_port}/v1", log_dir=tmp_path,
                             ready_timeout_s=3)
        with pytest.raises(ServerError, match=r"did not become ready .* within 3 s") as e:
            ui.start()
        assert str(ui.log_path) in str(e.value)
        assert webui.alive(ui.pids) == []
        assert not ui.data_dir.exists()
    finally:
        srv.shutdown()


# ------------------------------------------------------------------------- pure helpers


LOG = """INFO:     127.0.0.1:1 - "POST /v1/chat/completions HTTP/1.1" 200 OK
llama_perf_context_print:        load time =       0.23 ms
llama_perf_context_print: prompt eval time =      40.00 ms /    45 tokens (    1 ms per token)
llama_perf_context_print:        eval time =     300.00 ms /    33 runs   (    9 ms per token)
llama_perf_context_print:       total time =     350.00 ms /    78 tokens
INFO:     127.0.0.1:2 - "POST /v1/chat/completions HTTP/1.1" 200 OK
Llama.generate: 24 prefix-match hit, remaining 13 prompt tokens to eval
llama_perf_context_print: prompt eval time =      20.50 ms /    13 tokens (    1 ms per token)
llama_perf_context_print:        eval time =     100.00 ms /    16 runs   (    6 ms per token)
llama_perf_context_print:       total time =     130.00 ms /    29 tokens
"""


def test_llamacpp_log_parsing():
    r = webui.llamacpp_requests(LOG)
    assert [p["status"] for p in r["posts"]] == [200, 200]
    a, b = r["requests"]
    assert (a["prefix_hit"], a["prompt_tokens"], a["prompt_eval_ms"], a["decode_runs"]) == (0, 45, 40.0, 33)
    assert (b["prefix_hit"], b["prompt_tokens"], b["prompt_eval_ms"], b["decode_runs"]) == (24, 37, 20.5, 16)


def test_log_cursor_reads_only_new_text(tmp_path):
    p = tmp_path / "x.log"
    p.write_text("old line\n")
    c = webui.LogCursor(p)
    with open(p, "a") as f:
        f.write("total time = 1\n")
    assert c.read(webui.LLAMA_DONE) == "total time = 1\n"
    assert c.read() == ""


def test_loopback_check():
    assert webui._is_loopback("127.0.0.1") and webui._is_loopback("127.8.9.10")
    assert webui._is_loopback("::1") and webui._is_loopback("::ffff:127.0.0.1")
    assert not webui._is_loopback("10.0.0.1") and not webui._is_loopback("93.184.216.34")


def test_offline_env_points_only_at_loopback(tmp_path):
    env = webui.offline_env("http://127.0.0.1:8000/v1/", tmp_path, "k" * 64)
    assert env["OPENAI_API_BASE_URL"] == "http://127.0.0.1:8000/v1"
    assert env["OFFLINE_MODE"] == "true" and env["ENABLE_OLLAMA_API"] == "false"
    urls = [v for v in env.values() if v.startswith("http")]
    assert urls and all(u.startswith("http://127.0.0.1:") for u in urls)


def test_timings_table_pairs_each_request_with_the_engine_log():
    def rec(path, ms, pe, lang="en", warm=False):
        return {"path": path, "lang": lang, "warmup": warm, "ttft_ms": ms,
                "engine_prompt_eval_ms": pe, "engine_prompt_tokens": 37}

    W = {"questions": {"en": "q"},
         "api": [rec("engine", 999, 10, warm=True), rec("engine", 110, 100), rec("engine", 60, 50),
                 rec("open-webui", 125, 100), rec("open-webui", 75, 50)],
         "browser": [{"path": "browser", "lang": "en", "first_token_ms": 400,
                      "engine_prompt_eval_ms": 100, "engine_prompt_tokens": 37}]}
    rows = {r["path"]: r for r in webui.timings_table(W)}
    assert rows["engine"]["n"] == 2 and rows["engine"]["outside_engine_ms"] == 10
    assert rows["open-webui"]["added_over_engine_ms"] == 15
    assert rows["browser"]["added_over_engine_ms"] == 290
    assert rows["browser"]["prompt_tokens"] == "37"
