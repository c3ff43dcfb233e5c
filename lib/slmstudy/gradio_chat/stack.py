"""The whole Gradio stack: the study's engine server, then the Gradio app, torn down together."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ..errors import ServerError
from ..webui.watch import StackWatch
from .server import EngineServer, GradioApp, check_installed


class GradioStack:
    """EngineServer (any registered engine, transformers by default) + the Gradio app, watched.

    `engine_ready_s` (process start → model loaded and /health 200), `app_ready_s` (Gradio's
    start → /config 200) and `startup_s` (both, sequential). Leaving the block stops both (the app
    first), also on an exception; each is its own process group asked to die with its parent.
    """

    def __init__(self, model_path, tokenizer_dir, *, engine: str = "transformers",
                 options: dict | None = None, model_name: str = "model", log_dir=None,
                 venv=None, max_tokens: int = 64, engine_ready_timeout_s: float = 300,
                 app_ready_timeout_s: float = 300):
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="slm-gradio-stack-"))
        self.venv = check_installed(venv)  # before the engine starts: no point in starting it
        self.engine = EngineServer(model_path, tokenizer_dir, engine=engine, options=options,
                                   log_dir=self.log_dir, model_name=model_name,
                                   ready_timeout_s=engine_ready_timeout_s)
        self.max_tokens = max_tokens
        self.app_ready_timeout_s = app_ready_timeout_s
        self.app: GradioApp | None = None
        self.watch = StackWatch()
        self.engine_ready_s = self.app_ready_s = self.startup_s = None

    def start(self) -> "GradioStack":
        t0 = time.perf_counter()
        try:
            self.engine.start()
            self.engine_ready_s = self.engine.ready_s
            self.watch.add("engine", self.engine.proc.pid)
            self.watch.start()
            self.app = GradioApp(self.engine.base_url, venv=self.venv, log_dir=self.log_dir,
                                 max_tokens=self.max_tokens, model_name=self.engine.model_name,
                                 ready_timeout_s=self.app_ready_timeout_s)
            self.app.start()
            self.app_ready_s = self.app.ready_s
            self.watch.add("gradio", self.app.proc.pid)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def stop(self) -> None:
        self.watch.stop()
        try:
            if self.app is not None:
                self.app.stop()
        finally:
            self.engine.stop()

    def all_pids(self) -> set[int]:
        out = set(self.engine.pids) | self.watch.all_pids()
        if self.app is not None:
            out |= self.app.pids
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def engine_chat(engine: EngineServer, question: str, *, max_tokens: int, timeout_s: float = 600) -> dict:
    """The same chat sent straight to the engine server (no Gradio): client-side
    `first_token_ms` (send → first token line) beside the engine's own record of it."""
    import httpx

    t_send = time.perf_counter_ns()
    first = None
    done: dict = {}
    with httpx.stream("POST", f"{engine.base_url}/generate", timeout=timeout_s,
                      json={"messages": [{"role": "user", "content": question}],
                            "max_tokens": max_tokens}) as r:
        if r.status_code != 200:
            r.read()
            raise ServerError(f"{engine.base_url}/generate returned HTTP {r.status_code}: {r.text[:300]}")
        for line in r.iter_lines():
            if not line:
                continue
            obj = json.loads(line)
            if "error" in obj:
                raise ServerError(f"the engine server failed: {obj['error']}")
            if obj.get("done"):
                done = obj
            elif first is None:
                first = time.perf_counter_ns()
    return {"first_token_ms": (first - t_send) / 1e6 if first else None,
            "done_ms": (time.perf_counter_ns() - t_send) / 1e6, "answer": done.get("text", ""),
            "engine": done}
