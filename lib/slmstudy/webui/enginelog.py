"""The engine's own log lines, matched to each request (llama.cpp's server log)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

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
