"""The two managed processes of the Gradio stack: the study's engine server and the Gradio app."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..backends import registry
from ..backends.servers import ManagedServer
from ..errors import StudyError
from ..paths import REPO_ROOT

GRADIO_VERSION = "6.31.0"  # scripts/setup_gradio.sh installs this one
APP_SCRIPT = Path(__file__).with_name("gradio_app.py")


class GradioNotInstalledError(StudyError):
    pass


def gradio_venv() -> Path:
    """Gradio's environment: `SLMSTUDY_GRADIO_VENV`, default `.venv-gradio` in the repo."""
    return Path(os.environ.get("SLMSTUDY_GRADIO_VENV", REPO_ROOT / ".venv-gradio")).expanduser()


def check_installed(venv: str | os.PathLike | None = None) -> Path:
    """The venv folder, or a clear error that says how to install Gradio."""
    venv = Path(venv) if venv else gradio_venv()
    py = venv / "bin" / "python"
    stamp = list(venv.glob(".slmstudy-gradio-*"))
    if not (py.is_file() and stamp):
        raise GradioNotInstalledError(
            f"Gradio is not installed: no {py} with a finished install (stamp .slmstudy-gradio-*) in "
            f"{venv}. Run `make gradio` (scripts/setup_gradio.sh installs gradio=={GRADIO_VERSION}, "
            "gradio_client and playwright there, apart from the study's .venv), or point "
            "SLMSTUDY_GRADIO_VENV at such a venv.")
    return venv


class EngineServer(ManagedServer):
    """`python -m slmstudy.gradio_chat.engine_server` in the study's environment: one registered
    engine (transformers by default) loads the model; ready = `GET /health` answers 200, which
    it does only once the model is loaded. `requests_log` gets one JSON line per request."""

    name = "engine-server"
    ready_path = "/health"

    def __init__(self, model_path, tokenizer_dir, *, engine: str = "transformers",
                 options: dict | None = None, **kw):
        spec = registry.get(engine)  # an unknown engine is refused here, naming the choices
        spec.check_options(options)
        super().__init__(**kw)
        self.engine = engine
        self.model_path, self.tokenizer_dir = Path(model_path), Path(tokenizer_dir)
        if not self.model_path.exists():
            raise StudyError(f"model {self.model_path} does not exist; run `make models` for the "
                             "embedded model or fix the path")
        if not (self.tokenizer_dir / "tokenizer_config.json").is_file():
            raise StudyError(f"{self.tokenizer_dir} holds no HF tokenizer (tokenizer_config.json): "
                             "the chat template is rendered with it; pass the model's HF folder")
        self.options = options or {}
        self.requests_log = self.log_dir / f"{self.name}-{self.port}-requests.jsonl"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "slmstudy.gradio_chat.engine_server", "--engine", self.engine,
                "--model", str(self.model_path), "--tokenizer", str(self.tokenizer_dir),
                "--model-name", self.model_name, "--options", json.dumps(self.options),
                "--port", str(self.port), "--requests-log", str(self.requests_log)]

    def requests(self) -> list[dict]:
        """Every request the engine served so far, in order (its own clock)."""
        if not self.requests_log.is_file():
            return []
        return [json.loads(line) for line in self.requests_log.read_text(encoding="utf-8").splitlines()
                if line.strip()]


class GradioApp(ManagedServer):
    """The study's Gradio app (gradio_app.py) under `.venv-gradio`, in front of an EngineServer.

    Ready = `GET /config` answers 200 (Gradio serves it once the app is mounted). Its working
    folder is the log folder (Gradio writes `.gradio/` there); `app_log` gets one line per turn.
    """

    name = "gradio-app"
    ready_path = "/config"
    ready_hint = "raise ready_timeout_s (importing gradio takes 10-30 s on two cores)"

    def __init__(self, engine_url: str, *, venv=None, max_tokens: int = 64, **kw):
        self.venv = check_installed(venv)
        super().__init__(**kw)
        self.engine_url = engine_url.rstrip("/")
        self.max_tokens = max_tokens
        self.app_log = self.log_dir / f"{self.name}-{self.port}-turns.jsonl"

    def command(self) -> list[str]:
        return [str(self.venv / "bin" / "python"), str(APP_SCRIPT), "--port", str(self.port),
                "--engine-url", self.engine_url, "--max-tokens", str(self.max_tokens),
                "--app-log", str(self.app_log)]

    def process_env(self) -> dict:
        """Its own venv's Python: nothing of the study's PYTHONPATH leaks in."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update({"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                    "VIRTUAL_ENV": str(self.venv), **self.env})
        return env

    def process_cwd(self) -> str:
        return str(self.log_dir)

    def turns(self) -> list[dict]:
        if not self.app_log.is_file():
            return []
        return [json.loads(line) for line in self.app_log.read_text(encoding="utf-8").splitlines()
                if line.strip()]
