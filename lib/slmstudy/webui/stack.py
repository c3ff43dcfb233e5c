"""The whole stack: engine server, then Open WebUI, torn down together."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ..backends.servers import LlamaCppServer, ManagedServer
from .server import OpenWebUI, check_installed
from .watch import StackWatch


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
