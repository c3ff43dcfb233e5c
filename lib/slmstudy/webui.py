"""Open WebUI in front of the study's OpenAI-compatible servers, driven by API and by a browser.

The articles deploy "vLLM + Open WebUI" and describe the chat page. Here the same stack runs
offline on 127.0.0.1 and is measured:

    with WebUIStack(gguf_path, model_name="smollm2_135m") as stack:   # engine, then Open WebUI
        token = stack.ui.signup_admin()                                # first user = admin
        stack.ui.models(token)                                         # what the UI lists
        g = stack.ui.chat_stream(token, "What is 2+2?")                # TTFT through the UI's API
        turns = browser_chat(stack.ui, ["用一句话介绍北京。"], watch=stack.watch)  # Chromium

Open WebUI lives in its own environment (`make webui` → `.venv-webui/`, ~230 packages with pins
of their own); it is started as `open-webui serve` on a free port with a fresh DATA_DIR and an
environment that keeps it offline (no hub downloads, no telemetry, no Ollama, no title/tag
generation requests). Like the engine servers it runs in its own process group, asked to die with
its parent, and is torn down when the `with` block ends, also on an exception.

`StackWatch` samples, while the stack runs, the resident memory of each process tree (engine,
Open WebUI, browser) and every internet socket those processes hold: a remote address outside
127.0.0.0/8 is a request that left the machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .backends.base import Generation
from .backends.servers import HOST, LlamaCppServer, ManagedServer, OpenAIStreamClient, _die_with_parent, sse_events
from .errors import ServerError, StudyError
from .paths import REPO_ROOT

OPEN_WEBUI_VERSION = "0.12.4"
CHROMIUM = "/usr/bin/chromium"
ADMIN = {"name": "Study Admin", "email": "admin@slmstudy.local", "password": "slmstudy-local-only"}
BROWSER_SCRIPT = Path(__file__).with_name("webui_browser.py")


class WebUINotInstalledError(StudyError):
    pass


def webui_venv() -> Path:
    """Open WebUI's environment: `SLMSTUDY_WEBUI_VENV`, default `.venv-webui` in the repo."""
    return Path(os.environ.get("SLMSTUDY_WEBUI_VENV", REPO_ROOT / ".venv-webui")).expanduser()


def check_installed(venv: str | os.PathLike | None = None) -> Path:
    """The venv folder, or a clear error that says how to install Open WebUI."""
    venv = Path(venv) if venv else webui_venv()
    exe = venv / "bin" / "open-webui"
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise WebUINotInstalledError(
            f"Open WebUI is not installed: no executable {exe}. Run `make webui` "
            f"(scripts/setup_webui.sh installs open-webui=={OPEN_WEBUI_VERSION} and playwright into "
            f"{venv}, apart from the study's .venv), or point SLMSTUDY_WEBUI_VENV at such a venv.")
    return venv


def offline_env(openai_base_url: str, data_dir: Path, secret_key: str) -> dict[str, str]:
    """Environment for `open-webui serve` that keeps it offline and quiet. Open WebUI copies these
    values into its database on first start, so every run gets a fresh DATA_DIR."""
    return {
        "DATA_DIR": str(data_dir), "WEBUI_SECRET_KEY": secret_key,
        "OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "ENABLE_OLLAMA_API": "false", "OLLAMA_BASE_URL": f"http://{HOST}:11434",
        "ENABLE_OPENAI_API": "true", "OPENAI_API_BASE_URL": openai_base_url.rstrip("/"),
        "OPENAI_API_KEY": "none",
        # without an external embedding engine it tries to fetch an embedding model from a hub
        "RAG_EMBEDDING_ENGINE": "openai", "BYPASS_EMBEDDING_AND_RETRIEVAL": "true",
        # each of these would send extra requests to the engine after every answer
        "ENABLE_TITLE_GENERATION": "false", "ENABLE_TAGS_GENERATION": "false",
        "ENABLE_FOLLOW_UP_GENERATION": "false", "ENABLE_AUTOCOMPLETE_GENERATION": "false",
        "ANONYMIZED_TELEMETRY": "false", "DO_NOT_TRACK": "true", "SCARF_NO_ANALYTICS": "true",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
    }


# ------------------------------------------------------------------------------------ the server


class OpenWebUI(ManagedServer):
    """`open-webui serve` on 127.0.0.1 (free port) in front of an OpenAI-compatible server.

    `openai_base_url` is the engine's `/v1` URL. Ready = `GET /health` answers 200 (45–75 s on two
    cores: imports dominate). The data folder is fresh per run and removed on stop unless
    `keep_data`.
    """

    name = "open-webui"
    ready_path = "/health"
    ready_hint = "raise ready_timeout_s (start-up takes 45-75 s on two cores)"

    def __init__(self, openai_base_url: str, *, venv: str | os.PathLike | None = None,
                 ready_timeout_s: float = 300.0, keep_data: bool = False, **kw):
        self.venv = check_installed(venv)
        super().__init__(ready_timeout_s=ready_timeout_s, **kw)
        self.openai_base_url = openai_base_url.rstrip("/")
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"webui-data-{self.port}-", dir=self.log_dir))
        self.keep_data = keep_data
        self.env = {**offline_env(self.openai_base_url, self.data_dir, secrets.token_hex(32)),
                    "VIRTUAL_ENV": str(self.venv),
                    "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}", **self.env}
        self.admin: dict | None = None

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "open-webui"), "serve", "--host", HOST,
                "--port", str(self.port)]

    def start(self) -> "OpenWebUI":
        import httpx

        try:  # fail in a second, not after a minute of imports, when the engine is not there
            httpx.get(f"{self.openai_base_url}/models", timeout=5).raise_for_status()
        except httpx.HTTPError as e:
            raise ServerError(
                f"no OpenAI-compatible server answers at {self.openai_base_url}/models ({e}); "
                "start the engine first (e.g. LlamaCppServer) and pass its base_url + '/v1'") from e
        return super().start()

    def process_env(self) -> dict:
        """Its own venv's Python: nothing of the study's PYTHONPATH leaks in."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update({"PYTHONUNBUFFERED": "1", **self.env})
        return env

    def process_cwd(self) -> str:
        return str(self.data_dir)

    def stop(self, timeout_s: float = 20.0) -> None:
        super().stop(timeout_s)
        if not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- API
    def _headers(self, token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, token: str | None = None, **kw):
        import httpx

        r = httpx.request(method, f"{self.base_url}{path}", timeout=60,
                          headers=self._headers(token) if token else None, **kw)
        if r.status_code != 200:
            raise ServerError(f"Open WebUI {method} {path} returned HTTP {r.status_code}: "
                              f"{r.text[:300]}")
        return r.json()

    def signup_admin(self, name: str = ADMIN["name"], email: str = ADMIN["email"],
                     password: str = ADMIN["password"]) -> str:
        """Create the first account (Open WebUI makes it the admin); returns its token."""
        r = self._call("POST", "/api/v1/auths/signup",
                       json={"name": name, "email": email, "password": password})
        if r.get("role") != "admin":
            raise ServerError(f"the first account got role {r.get('role')!r}, not admin: this "
                              f"DATA_DIR ({self.data_dir}) was not fresh")
        self.admin = {"email": email, "password": password, "token": r["token"]}
        return r["token"]

    def signin(self, email: str = ADMIN["email"], password: str = ADMIN["password"]) -> str:
        return self._call("POST", "/api/v1/auths/signin",
                          json={"email": email, "password": password})["token"]

    def models(self, token: str) -> list[str]:
        """Model ids Open WebUI offers in its model picker (fetched from the connected servers)."""
        return [m["id"] for m in self._call("GET", "/api/models", token)["data"]]

    def chat_stream(self, token: str, messages, model: str | None = None, *,
                    max_tokens: int = 64, temperature: float = 0.0) -> Generation:
        """One streamed chat through Open WebUI's API (`/api/chat/completions`, OpenAI format)."""
        return stream_chat(f"{self.base_url}/api/chat/completions", messages,
                           model or self.model_name, headers=self._headers(token),
                           engine="open-webui-api", max_tokens=max_tokens, temperature=temperature)

    def set_chat_defaults(self, token: str, **params) -> None:
        """The account's default chat parameters (e.g. temperature=0, max_tokens=64): the chat
        page sends them with every message, so browser chats decode like the API requests."""
        self._call("POST", "/api/v1/users/user/settings/update", token, json={"ui": {"params": params}})

    def connections(self, token: str) -> dict:
        return {"openai": self._call("GET", "/openai/config", token),
                "ollama": self._call("GET", "/ollama/config", token)}

    def set_connections(self, token: str, *, openai: dict | None = None,
                        ollama: dict | None = None) -> None:
        """Change the Ollama / OpenAI connections at run time (admin API; no restart)."""
        if openai is not None:
            self._call("POST", "/openai/config/update", token, json=openai)
        if ollama is not None:
            self._call("POST", "/ollama/config/update", token, json=ollama)


# ------------------------------------------------------------------------- streaming + engine log


def stream_chat(url: str, messages, model: str, *, headers: dict | None = None,
                engine: str = "http", max_tokens: int = 64, temperature: float = 0.0,
                timeout_s: float = 600) -> Generation:
    """Stream `/…/chat/completions` and time each chunk that carries text (role-only chunks do not
    count). A chunk is usually one token; llama_cpp.server holds back a partial UTF-8 character,
    so a chunk can carry several. Open WebUI passes the engine's chunks through."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    body = {"model": model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": True}
    times, pieces, finish = [], [], None
    t_send = time.perf_counter_ns()
    for t, obj in sse_events(url, body, headers=headers, timeout_s=timeout_s):
        for ch in obj.get("choices") or []:
            text = (ch.get("delta") or {}).get("content")
            if text:
                times.append(t)
                pieces.append(text)
            finish = ch.get("finish_reason") or finish
    return Generation(engine=engine, model=model, prompt_ids=[], output_ids=[],
                      text="".join(pieces), t_send_ns=t_send, token_times_ns=times,
                      finish_reason=finish or "?", engine_timings={"n_chunks": len(pieces)})


def engine_stream(server: ManagedServer, messages, *, max_tokens: int = 64,
                  temperature: float = 0.0) -> Generation:
    """The same chat sent straight to the engine (no Open WebUI), same body."""
    c = OpenAIStreamClient(server.base_url, server.model_name)
    return stream_chat(f"{c.base_url}/v1/chat/completions", messages, c.model,
                       engine=f"{server.name}-api", max_tokens=max_tokens, temperature=temperature)


LLAMA_DONE = "total time ="  # llama.cpp's last timing line of a request
_POST_RE = re.compile(r'"POST (/v1/chat/completions|/v1/completions) HTTP/1\.1" (\d+)')
_PREFIX_RE = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens")
_PERF_RE = re.compile(r"llama_perf_context_print:\s+(prompt eval|eval) time =\s+([\d.]+) ms /\s+(\d+)")


class LogCursor:
    """Reads what a server wrote to its log since the cursor was made (or last read)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self, wait_for: str | None = None, count: int = 1, timeout_s: float = 5.0) -> str:
        """New text; with `wait_for`, wait (up to timeout_s) until it holds that string `count`
        times (llama.cpp prints its timings just after the stream ends)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                text = f.read().decode("utf-8", "replace")
            if (wait_for is None or text.count(wait_for) >= count
                    or time.monotonic() > deadline):
                break
            time.sleep(0.1)
        self.offset += len(text.encode("utf-8"))
        return text


def llamacpp_requests(log_text: str) -> dict:
    """What llama_cpp.server's log says about the requests in `log_text`: its access-log lines
    (`posts`, one per request) and, per finished request, llama.cpp's own timings (`requests`:
    prompt tokens, of which reused from the previous prompt, prompt-eval ms, decode runs and ms).
    A request's lines end with llama.cpp's "total time" line."""
    posts = [{"path": m.group(1), "status": int(m.group(2))} for m in _POST_RE.finditer(log_text)]
    reqs = []
    for block in re.split(r"(?<=%s)[^\n]*\n?" % re.escape(LLAMA_DONE), log_text)[:-1]:
        r = {"prefix_hit": 0, "prompt_tokens": None, "prompt_eval_ms": None,
             "decode_runs": None, "decode_ms": None}
        m = _PREFIX_RE.search(block)
        if m:
            r["prefix_hit"] = int(m.group(1))
        for kind, ms, n in _PERF_RE.findall(block):
            if kind == "prompt eval":
                r["prompt_eval_ms"], r["prompt_tokens_eval"] = float(ms), int(n)
            else:
                r["decode_ms"], r["decode_runs"] = float(ms), int(n)
        if r.get("prompt_tokens_eval") is not None:
            r["prompt_tokens"] = r["prefix_hit"] + r["prompt_tokens_eval"]
        reqs.append(r)
    return {"posts": posts, "requests": reqs}


# -------------------------------------------------------------------- memory and network watch


def _is_loopback(ip: str) -> bool:
    a = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped:
        a = a.ipv4_mapped
    return a.is_loopback


@dataclass
class TreeStats:
    root_pid: int
    peak_rss_bytes: int = 0
    last_rss_bytes: int = 0
    peak_chromium_rss_bytes: int = 0
    pids: set[int] = field(default_factory=set)


class StackWatch:
    """Samples each named process tree every `interval_s`: RSS (sum over the tree; shared pages
    count once per process, so Chromium's many processes over-count), every PID seen, and every
    internet socket: remote addresses outside loopback go to `.outside`, listening sockets
    bound beyond loopback to `.exposed`; `.loopback_seen` counts the loopback connections seen
    (proof the sampler sees traffic at all)."""

    def __init__(self, interval_s: float = 0.3):
        self.interval_s = interval_s
        self.trees: dict[str, TreeStats] = {}
        self.outside: list[dict] = []
        self.exposed: list[dict] = []
        self.loopback_seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, pid: int) -> None:
        with self._lock:
            self.trees[name] = TreeStats(pid, pids={pid})
        self.sample()

    def sample(self) -> None:
        with self._lock:
            owner: dict[int, str] = {}
            for name, t in self.trees.items():
                try:
                    root = psutil.Process(t.root_pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                rss = chromium = 0
                for p in procs:
                    try:
                        m = p.memory_info().rss
                        nm = p.name()
                    except psutil.Error:
                        continue
                    rss += m
                    if nm.startswith("chrom"):
                        chromium += m
                    t.pids.add(p.pid)
                    owner[p.pid] = name
                t.last_rss_bytes = rss
                t.peak_rss_bytes = max(t.peak_rss_bytes, rss)
                t.peak_chromium_rss_bytes = max(t.peak_chromium_rss_bytes, chromium)
            try:
                conns = psutil.net_connections(kind="inet")
            except psutil.Error:
                return
            for c in conns:
                if c.pid not in owner:
                    continue
                where = {"tree": owner[c.pid], "pid": c.pid, "status": c.status,
                         "laddr": f"{c.laddr.ip}:{c.laddr.port}" if c.laddr else None,
                         "raddr": f"{c.raddr.ip}:{c.raddr.port}" if c.raddr else None}
                if c.raddr:
                    if _is_loopback(c.raddr.ip):
                        self.loopback_seen += 1
                    elif where not in self.outside:
                        self.outside.append(where)
                elif c.status == psutil.CONN_LISTEN and c.laddr and not _is_loopback(c.laddr.ip):
                    if where not in self.exposed:
                        self.exposed.append(where)

    def _run(self):
        while not self._stop.wait(self.interval_s):
            self.sample()

    def start(self) -> "StackWatch":
        self._thread = threading.Thread(target=self._run, daemon=True, name="stack-watch")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def all_pids(self) -> set[int]:
        return set().union(*(t.pids for t in self.trees.values())) if self.trees else set()

    def memory_table(self) -> list[dict]:
        return [{"process tree": name, "root pid": t.root_pid, "processes": len(t.pids),
                 "peak_rss_MB": t.peak_rss_bytes / 1e6,
                 **({"peak_rss_chromium_only_MB": t.peak_chromium_rss_bytes / 1e6}
                    if t.peak_chromium_rss_bytes else {})}
                for name, t in self.trees.items()]


def alive(pids) -> list[int]:
    """The PIDs among `pids` that still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


# ----------------------------------------------------------------------------------- browser


def browser_chat(ui: OpenWebUI, questions: list[str], *, screenshot_dir: str | os.PathLike | None = None,
                 screenshot_prefix: str = "webui", watch: StackWatch | None = None,
                 chromium: str = CHROMIUM, timeout_s: float = 300, email: str | None = None,
                 password: str | None = None) -> dict:
    """Headless Chromium logs in to Open WebUI and asks each question in a new chat.

    Per question: `first_token_ms` = Enter → the answer's first text in the page (in-page clock),
    `first_paint_ms` = Enter → the next frame that shows it, the answer text, a screenshot.
    Also every URL the page requested (`requests`, `hosts`) and those that failed. Chromium runs
    with all host names mapped to nothing except 127.0.0.1. The browser process tree is killed
    (by PID) when this returns or raises.
    """
    if not Path(chromium).is_file():
        raise StudyError(f"Chromium not found at {chromium}; `make setup` installs Debian's "
                         "chromium (apt-get install -y chromium)")
    py = ui.venv / "bin" / "python"
    creds = ui.admin or {}
    cfg = {"url": ui.base_url, "questions": list(questions), "chromium": chromium,
           "email": email or creds.get("email", ADMIN["email"]),
           "password": password or creds.get("password", ADMIN["password"]),
           "timeout_s": timeout_s, "screenshot_prefix": screenshot_prefix,
           "screenshot_dir": str(Path(screenshot_dir).resolve()) if screenshot_dir else None}
    if screenshot_dir:
        Path(screenshot_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="slm-browser-") as tmp:
        cfg_path, out_path, log_path = (Path(tmp) / n for n in ("in.json", "out.json", "log.txt"))
        cfg_path.write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update({"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "PYTHONUNBUFFERED": "1"})
        pids: set[int] = set()
        with open(log_path, "wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen([str(py), str(BROWSER_SCRIPT), str(cfg_path), str(out_path)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=tmp, preexec_fn=_die_with_parent)
            pids.add(proc.pid)
            if watch is not None:
                watch.add("browser", proc.pid)
            try:
                while proc.poll() is None:
                    try:
                        pids.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
                    except psutil.Error:
                        pass
                    if time.perf_counter() - t0 > timeout_s + 120:
                        raise ServerError(f"the browser step ran past {timeout_s + 120:.0f} s")
                    time.sleep(0.2)
            finally:
                _kill_all(proc, pids | (watch.trees["browser"].pids if watch else set()))
        log_text = log_path.read_text(errors="replace")
        if not out_path.is_file():
            raise ServerError(f"the browser step (exit {proc.returncode}) wrote no result:\n"
                              f"{log_text[-3000:]}")
        result = json.loads(out_path.read_text(encoding="utf-8"))
    result["wall_s"] = time.perf_counter() - t0
    result["pids"] = sorted(pids)
    if result.get("error"):
        raise ServerError(f"the browser step failed: {result['error'][:1500]}\n{log_text[-1500:]}")
    return result


def _kill_all(proc: subprocess.Popen, pids) -> None:
    """SIGTERM the group, then SIGKILL every PID still alive (Playwright starts Chromium in a
    process group of its own, so the group signal alone would not reach it)."""
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
            pass
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.kill()
            p.wait(timeout=5)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired, psutil.AccessDenied):
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


# --------------------------------------------------------------------------------- the stack


class WebUIStack:
    """llama_cpp.server (the embedded model's GGUF) + Open WebUI in front of it, watched.

    `engine_ready_s` and `ui_ready_s` are each server's process start → first good answer to its
    readiness probe; `startup_s` the whole stack (sequential). Leaving the block stops both
    (Open WebUI first), also on an exception.
    """

    def __init__(self, gguf_path, *, model_name: str = "model", log_dir=None, n_ctx: int = 2048,
                 venv=None, engine_ready_timeout_s: float = 300, ui_ready_timeout_s: float = 300,
                 engine: ManagedServer | None = None):
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="slm-webui-stack-"))
        check_installed(venv)  # before the engine starts: no point in starting it
        self.venv = venv
        self.engine = engine or LlamaCppServer(gguf_path, n_ctx=n_ctx, log_dir=self.log_dir,
                                               model_name=model_name,
                                               ready_timeout_s=engine_ready_timeout_s)
        self.ui_ready_timeout_s = ui_ready_timeout_s
        self.ui: OpenWebUI | None = None
        self.watch = StackWatch()
        self.engine_ready_s = self.ui_ready_s = self.startup_s = None

    def start(self) -> "WebUIStack":
        t0 = time.perf_counter()
        try:
            self.engine.start()
            self.engine_ready_s = self.engine.ready_s
            self.watch.add("engine", self.engine.proc.pid)
            self.watch.start()
            self.ui = OpenWebUI(f"{self.engine.base_url}/v1", venv=self.venv,
                                log_dir=self.log_dir, model_name=self.engine.model_name,
                                ready_timeout_s=self.ui_ready_timeout_s)
            self.ui.start()
            self.ui_ready_s = self.ui.ready_s
            self.watch.add("open-webui", self.ui.proc.pid)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def stop(self) -> None:
        self.watch.stop()
        try:
            if self.ui is not None:
                self.ui.stop()
        finally:
            self.engine.stop()

    def all_pids(self) -> set[int]:
        out = set(self.engine.pids) | self.watch.all_pids()
        if self.ui is not None:
            out |= self.ui.pids
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ------------------------------------------------------------------- the articles' configuration


def env_var_read_by_open_webui(name: str, venv=None) -> list[str]:
    """Files of the installed Open WebUI backend that read environment variable `name` (a quoted
    string literal equal to it); [] = Open WebUI ignores that variable."""
    venv = check_installed(venv)
    pkgs = list((venv / "lib").glob("python3*/site-packages/open_webui"))
    hits = []
    pat = re.compile(r"""['"]%s['"]""" % re.escape(name))
    for pkg in pkgs:
        for f in pkg.rglob("*.py"):
            if pat.search(f.read_text(errors="replace")):
                hits.append(str(f.relative_to(pkg.parent)))
    return sorted(hits)


def models_via_ollama_setting(ui: OpenWebUI, token: str, url: str) -> list[str]:
    """Models Open WebUI lists when the engine URL is given to its *Ollama* connection (what
    `OLLAMA_API_BASE_URL=http://…:8000/v1` does) and the OpenAI connection is off. The settings
    are restored afterwards."""
    before = ui.connections(token)
    try:
        ui.set_connections(token, openai={**_openai_form(before["openai"]), "ENABLE_OPENAI_API": False},
                           ollama={"ENABLE_OLLAMA_API": True, "OLLAMA_BASE_URLS": [url],
                                   "OLLAMA_API_CONFIGS": {}})
        return ui.models(token)
    finally:
        ui.set_connections(token, openai=_openai_form(before["openai"]),
                           ollama={k: before["ollama"][k] for k in
                                   ("ENABLE_OLLAMA_API", "OLLAMA_BASE_URLS", "OLLAMA_API_CONFIGS")})


def _openai_form(cfg: dict) -> dict:
    return {k: cfg[k] for k in ("ENABLE_OPENAI_API", "OPENAI_API_BASE_URLS", "OPENAI_API_KEYS",
                                "OPENAI_API_CONFIGS")}


# ------------------------------------------------------------------------------ the measurement

DEFAULT_QUESTIONS = {"zh": "用一句话介绍北京。", "en": "Introduce Beijing in one sentence."}
WARMUP_QUESTION = "Say OK."


def measure_stack(gguf_path, *, model_name: str, log_dir, screenshot_dir,
                  questions: dict[str, str] | None = None, api_repetitions: int = 3,
                  max_tokens: int = 48) -> dict:
    """Bring up llama_cpp.server + Open WebUI, measure, tear down; everything as plain records.

    - start-up: engine ready, UI ready, whole stack;
    - the admin account (API sign-up) and the model list Open WebUI shows;
    - TTFT of the same chat sent to the engine and through Open WebUI's API (one discarded
      warm-up round, then `api_repetitions`; requests alternate so no two consecutive prompts
      are equal and llama.cpp's prefix reuse is the same for both paths), each paired with the
      engine's own log lines (its request line, prompt tokens, prompt-eval ms);
    - a browser chat per question (Enter → first visible token) with screenshots, after one
      discarded warm-up question;
    - peak RSS per process tree, sockets outside loopback, PIDs left running after teardown;
    - the articles' configuration: which of their environment variables Open WebUI reads, and
      what it lists when the engine is given to its Ollama connection.
    """
    questions = questions or DEFAULT_QUESTIONS
    out: dict = {"api": [], "browser": [], "questions": questions, "max_tokens": max_tokens}
    stack = WebUIStack(gguf_path, model_name=model_name, log_dir=log_dir)
    with stack:
        ui, eng = stack.ui, stack.engine
        out["startup"] = {"engine_ready_s": stack.engine_ready_s, "ui_ready_s": stack.ui_ready_s,
                          "stack_s": stack.startup_s, "engine": eng.name,
                          "open_webui": OPEN_WEBUI_VERSION}
        token = ui.signup_admin()
        out["admin_role"] = "admin"
        out["models"] = ui.models(token)
        ui.set_chat_defaults(token, temperature=0, max_tokens=max_tokens)
        cursor = LogCursor(eng.log_path)
        for rep in range(-1, api_repetitions):
            for path in ("engine", "open-webui"):
                for lang, q in questions.items():
                    if path == "engine":
                        g = engine_stream(eng, q, max_tokens=max_tokens)
                    else:
                        g = ui.chat_stream(token, q, max_tokens=max_tokens)
                    log = llamacpp_requests(cursor.read(wait_for=LLAMA_DONE))
                    out["api"].append(_api_record(g, path, lang, rep, log))
        # the first chat after logging in pays one-off page work: a discarded warm-up question
        texts = [WARMUP_QUESTION, *questions.values()]
        turns = browser_chat(ui, texts, screenshot_dir=screenshot_dir, screenshot_prefix="01_webui",
                             watch=stack.watch)
        log = llamacpp_requests(cursor.read(wait_for=LLAMA_DONE, count=len(texts)))
        for i, (lang, t) in enumerate(zip(questions, turns["turns"][1:]), start=1):
            out["browser"].append({
                "path": "browser", "lang": lang, "question": t["question"], "answer": t["answer"],
                "first_token_ms": t["first_token_ms"], "first_paint_ms": t["first_paint_ms"],
                "done_ms": t["done_ms_driver"], "screenshot": t["screenshot"],
                **_engine_side(log, i)})
        out["browser_run"] = {k: turns[k] for k in ("browser_version", "login_s", "hosts",
                                                     "failed_requests", "wall_s")}
        out["engine_posts_browser"] = len(log["posts"])
        stack.watch.sample()
        out["memory"] = stack.watch.memory_table()
        out["articles"] = {
            "models_via_ollama_setting": models_via_ollama_setting(ui, token, f"{eng.base_url}/v1"),
            "env_read": {v: env_var_read_by_open_webui(v, ui.venv) for v in
                         ("OPENAI_API_BASE_URL", "OPENAI_API_BASE", "OLLAMA_API_BASE_URL",
                          "OPEN_WEBUI_MODEL_NAME")}}
        pids = stack.all_pids()
    out["network"] = {"outside_loopback": stack.watch.outside, "exposed": stack.watch.exposed,
                      "loopback_connections_seen": stack.watch.loopback_seen}
    out["pids_left"] = alive(pids)
    out["n_pids"] = len(pids)
    return out


def _engine_side(log: dict, i: int) -> dict:
    r = log["requests"][i] if i < len(log["requests"]) else {}
    return {"engine_saw_request": i < len(log["posts"]),
            "engine_prompt_tokens": r.get("prompt_tokens"),
            "engine_prompt_eval_ms": r.get("prompt_eval_ms"),
            "engine_decode_runs": r.get("decode_runs")}


def _api_record(g: Generation, path: str, lang: str, rep: int, log: dict) -> dict:
    return {"path": path, "lang": lang, "rep": rep, "warmup": rep < 0,
            "ttft_ms": g.ttft_s * 1000, "e2e_ms": g.e2e_s * 1000,
            "n_chunks": len(g.token_times_ns), "finish_reason": g.finish_reason, "text": g.text,
            **_engine_side(log, 0)}


def compose_screenshots(paths: list[str], titles: list[str]):
    """One figure with the browser screenshots stacked (for plotting.save)."""
    import matplotlib.pyplot as plt

    imgs = [plt.imread(p) for p in paths]
    h, w = imgs[0].shape[:2]
    fig, axes = plt.subplots(len(imgs), 1, figsize=(9, 9 * h / w * len(imgs) + 0.4 * len(imgs)))
    for ax, img, t in zip(list(getattr(axes, "flat", [axes])), imgs, titles):
        ax.imshow(img)
        ax.set_title(t, fontsize=10, loc="left")
        ax.axis("off")
    fig.tight_layout()
    return fig


def timings_table(W: dict) -> list[dict]:
    """Time to the first token per path and language (medians, warm-up excluded).

    engine / open-webui: client → first streamed chunk; browser: Enter → first text in the page.
    `outside_engine_ms` = that time minus the engine's own prompt evaluation for the same request
    (from its log), paired per request: what HTTP, Open WebUI and the page add, robust to the
    engine being slowed by other load. `added_over_engine_ms` = a path's `outside_engine_ms`
    minus the direct engine path's.
    """
    import statistics

    def first(r):
        return r["ttft_ms"] if "ttft_ms" in r else r["first_token_ms"]

    rows = []
    recs = [r for r in W["api"] if not r["warmup"]] + W["browser"]
    for lang in W["questions"]:
        base = None
        for path in ("engine", "open-webui", "browser"):
            sel = [r for r in recs if r["path"] == path and r["lang"] == lang]
            if not sel:
                continue
            v = [first(r) for r in sel]
            pe = [r["engine_prompt_eval_ms"] for r in sel if r.get("engine_prompt_eval_ms") is not None]
            outside = [first(r) - r["engine_prompt_eval_ms"] for r in sel
                       if r.get("engine_prompt_eval_ms") is not None]
            out_med = statistics.median(outside) if outside else None
            if path == "engine":
                base = out_med
            rows.append({
                "lang": lang, "path": path, "n": len(v), "first_token_ms": statistics.median(v),
                "min_ms": min(v), "max_ms": max(v),
                "engine_prompt_eval_ms": statistics.median(pe) if pe else None,
                "outside_engine_ms": out_med,
                "added_over_engine_ms": (None if path == "engine" or base is None or out_med is None
                                         else out_med - base),
                "prompt_tokens": ",".join(sorted({str(r.get("engine_prompt_tokens")) for r in sel}))})
    return rows


def claims_rows(W: dict) -> list[dict]:
    """The articles' statements about this stack, next to what this run found."""
    env = W["articles"]["env_read"]
    via_ollama = W["articles"]["models_via_ollama_setting"]
    t = {(r["lang"], r["path"]): r for r in timings_table(W)}
    br = [r for (lang, p), r in t.items() if p == "browser"]
    over = [r["added_over_engine_ms"] for r in br if r["added_over_engine_ms"] is not None]
    s = W["startup"]
    ver = s["open_webui"]

    def read(v):
        return ", ".join(env[v]) if env[v] else "nowhere"

    return [
        {"article": "000 §2.3", "claim": "`export OLLAMA_API_BASE_URL=http://localhost:8000/v1`, "
         "then `open-webui serve` talks to vLLM's OpenAI API",
         "this run": f"that URL on Open WebUI's Ollama connection lists {len(via_ollama)} models "
                     f"({', '.join(via_ollama) or 'none'}); on OPENAI_API_BASE_URL it lists "
                     f"{', '.join(W['models'])}",
         "verdict": "consistent" if W["models"][0] in via_ollama else "inconsistent"},
        {"article": "004 §3.3", "claim": "`docker run -e OPENAI_API_BASE=http://<ip>:8000/v1 …`",
         "this run": f"Open WebUI {ver} reads OPENAI_API_BASE in: {read('OPENAI_API_BASE')}; "
                     f"it reads OPENAI_API_BASE_URL in: {read('OPENAI_API_BASE_URL')}",
         "verdict": "consistent" if env["OPENAI_API_BASE"] else
                    "inconsistent (variable ignored; default https://api.openai.com/v1)"},
        {"article": "002 §3.4", "claim": "`-e OPEN_WEBUI_MODEL_NAME=\"Qwen2.5-7B-Instruct\"`",
         "this run": f"read in: {read('OPEN_WEBUI_MODEL_NAME')}",
         "verdict": "consistent" if env["OPEN_WEBUI_MODEL_NAME"] else "inconsistent (variable ignored)"},
        {"article": "000 §2.3, 004 §3.3", "claim": "log in with the demo account kakajiang@kakajiang.com",
         "this run": f"a fresh install has no accounts; the first sign-up became {W['admin_role']}",
         "verdict": "not testable here (accounts are per install)"},
        {"article": "004 §3.4", "claim": "首次响应时间 (prompt=50 tokens) ~1.2 s; 112 tokens/s "
         "(RTX 3060, Qwen2.5-7B, AWQ)",
         "this run": "browser Enter → first token " + ", ".join(
             f"{r['lang']} {r['first_token_ms']:.0f} ms" for r in br) + "; Open WebUI + page add "
             + ", ".join(f"{o:.0f} ms" for o in over) + " over the engine's TTFT",
         "verdict": "not testable here (other model and hardware); the UI's share is measured"},
        {"article": "002 §3.5", "claim": "万字长文摘要，响应时间 < 15 s",
         "this run": "—", "verdict": "not testable here (needs a 128K-context 7B model)"},
        {"article": "000 §2", "claim": "观察启动效率 (start-up efficiency observed; no number given)",
         "this run": f"engine ready {s['engine_ready_s']:.1f} s, Open WebUI ready "
                     f"{s['ui_ready_s']:.1f} s, stack {s['stack_s']:.1f} s",
         "verdict": "measured (no number to compare)"},
    ]
