"""Chats through the page in headless Chromium (webui_browser.py runs in the Open WebUI venv)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from ..backends.servers import _die_with_parent, kill_pids
from ..errors import ServerError, StudyError
from .server import ADMIN, BROWSER_SCRIPT, CHROMIUM, OpenWebUI
from .watch import StackWatch


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
    kill_pids(pids)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)
