"""Chats with the Gradio app from its own environment: gradio_client, or Chromium driving the page
(gradio_driver.py runs under .venv-gradio; this starts it and reads its result)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from ..backends.servers import _die_with_parent
from ..errors import ServerError, StudyError
from ..webui.browser import _kill_all
from ..webui.server import CHROMIUM
from ..webui.watch import StackWatch
from .server import check_installed

DRIVER = Path(__file__).with_name("gradio_driver.py")


def drive(url: str, questions: list[str], *, mode: str, venv=None, watch: StackWatch | None = None,
          screenshot_dir=None, screenshot_prefix: str = "gradio", chromium: str = CHROMIUM,
          timeout_s: float = 300) -> dict:
    """Ask each question of the Gradio app at `url` in a new chat, through `gradio_client`
    (mode "client") or headless Chromium (mode "browser"); per question `first_token_ms` and the
    answer (browser: also `first_paint_ms` and a screenshot). The driver's process tree is killed
    (by PID) when this returns or raises; with `watch`, its memory is sampled as tree `mode`."""
    if mode not in ("client", "browser"):
        raise StudyError(f"mode must be 'client' (gradio_client) or 'browser' (Chromium), not {mode!r}")
    if mode == "browser" and not Path(chromium).is_file():
        raise StudyError(f"Chromium not found at {chromium}; `make setup` installs Debian's "
                         "chromium (apt-get install -y chromium)")
    py = check_installed(venv) / "bin" / "python"
    cfg = {"mode": mode, "url": url, "questions": list(questions), "chromium": chromium,
           "timeout_s": timeout_s, "screenshot_prefix": screenshot_prefix,
           "screenshot_dir": str(Path(screenshot_dir).resolve()) if screenshot_dir else None}
    if screenshot_dir:
        Path(screenshot_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"slm-gradio-{mode}-") as tmp:
        cfg_path, out_path, log_path = (Path(tmp) / n for n in ("in.json", "out.json", "log.txt"))
        cfg_path.write_text(json.dumps(cfg, ensure_ascii=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update({"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "PYTHONUNBUFFERED": "1",
                    "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
        pids: set[int] = set()
        with open(log_path, "wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen([str(py), str(DRIVER), str(cfg_path), str(out_path)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=tmp, preexec_fn=_die_with_parent)
            pids.add(proc.pid)
            if watch is not None:
                watch.add(mode, proc.pid)
            try:
                while proc.poll() is None:
                    try:
                        pids.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
                    except psutil.Error:
                        pass
                    if time.perf_counter() - t0 > timeout_s + 120:
                        raise ServerError(f"the {mode} step ran past {timeout_s + 120:.0f} s")
                    time.sleep(0.1)
            finally:
                _kill_all(proc, pids | (watch.trees[mode].pids if watch else set()))
        log_text = log_path.read_text(errors="replace")
        if not out_path.is_file():
            raise ServerError(f"the {mode} step (exit {proc.returncode}) wrote no result:\n"
                              f"{log_text[-3000:]}")
        result = json.loads(out_path.read_text(encoding="utf-8"))
    result["wall_s"] = time.perf_counter() - t0
    result["pids"] = sorted(pids)
    if result.get("error"):
        raise ServerError(f"the {mode} step failed: {result['error'][:1500]}\n{log_text[-1500:]}")
    return result
