"""Open WebUI as a managed server: its own venv, an offline environment, API calls."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from ..backends.base import Generation
from ..backends.servers import HOST, ManagedServer, OpenAIStreamClient, sse_events
from ..errors import ServerError, StudyError
from ..paths import REPO_ROOT

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
