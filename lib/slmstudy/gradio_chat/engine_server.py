"""The study's engine behind the Gradio app: any registered backend, one streamed chat at a time.

    python -m slmstudy.gradio_chat.engine_server --engine transformers --model <folder> \
        --tokenizer <HF folder> --port 8123 --requests-log requests.jsonl

Runs in the study's environment (.venv): the model is loaded through `backends.registry`, the
chat template is rendered once with the model's HF tokenizer (`chat.render_chat`), so the ids
are the ones every other section gives that engine. It listens on 127.0.0.1 only after the model
is loaded: `GET /health` answering 200 is the readiness probe.

`POST /generate` {"messages": [...], "max_tokens": N} answers NDJSON, one line per token
({"token", "text": the new text, "t_ns"}) and a last line {"done": true, ...} with the engine's own
clock for this request: `engine_ttft_ms` = call into the backend → first token (the prompt ids
already rendered), `render_ms` (chat template), the prompt ids, the finish reason. Every request
is also appended to `--requests-log`, so a front end's requests can be paired with the engine's.
Requests are served one at a time (a lock: the backends are not re-entrant), as the article's
`python app.py` does with its one model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..backends import registry
from ..backends.base import GenRequest
from ..chat import render_chat


def prompt_digest(ids: list[int]) -> str:
    """A short name for a list of prompt ids (the same question gives the same digest)."""
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:12]


class TextDeltas:
    """The new text after each token: decode all ids so far and keep what was not shown yet
    (a token that ends inside a UTF-8 character shows nothing until the character completes)."""

    def __init__(self, decode):
        self.decode = decode
        self.ids: list[int] = []
        self.shown = ""

    def add(self, tok: int) -> str:
        self.ids.append(tok)
        text = self.decode(self.ids)
        if text.endswith("\ufffd") or not text.startswith(self.shown):
            return ""
        new, self.shown = text[len(self.shown):], text
        return new


class EngineService:
    def __init__(self, engine: str, model: Path, tokenizer: Path, options: dict,
                 requests_log: Path | None, model_name: str):
        spec = registry.get(engine)
        self.engine, self.tokenizer, self.model_name = engine, tokenizer, model_name
        self.backend = spec.make(model, options=spec.options_for(registry.RunContext(), options),
                                 model_name=model_name)
        self.load_s = self.backend.load()
        self.requests_log = requests_log
        self.lock = threading.Lock()
        self.n = 0

    def generate(self, body: dict, write) -> None:
        messages = body.get("messages")
        if not messages or not isinstance(messages, list):
            raise ValueError("body needs `messages`: a non-empty list of {role, content}")
        max_tokens = int(body.get("max_tokens", 64))
        with self.lock:
            t_recv = time.perf_counter_ns()
            ids = render_chat(self.tokenizer, messages)
            t_call = time.perf_counter_ns()
            req = GenRequest(prompt_ids=ids, max_tokens=max_tokens,
                             request_id=str(body.get("request_id", "")))
            deltas = TextDeltas(self.backend.decode)
            times: list[int] = []
            stream = self.backend.stream_live(req)
            try:
                for tok, t in stream:
                    times.append(t)
                    write({"token": tok, "text": deltas.add(tok), "t_ns": t})
            finally:
                stream.close()
            reason = ("stop" if deltas.ids and deltas.ids[-1] in self.backend.stop_ids
                      else "length")
            self.n += 1
            rec = {"done": True, "n": self.n, "request_id": req.request_id,
                   "engine": self.engine, "prompt_tokens": len(ids), "prompt_digest": prompt_digest(ids),
                   "prompt_ids": ids, "n_tokens": len(deltas.ids), "text": self.backend.decode(deltas.ids),
                   "finish_reason": reason, "render_ms": (t_call - t_recv) / 1e6,
                   "engine_ttft_ms": (times[0] - t_call) / 1e6 if times else None,
                   "engine_e2e_ms": (times[-1] - t_call) / 1e6 if times else None,
                   "t_recv_ns": t_recv, "t_call_ns": t_call}
            if self.requests_log:
                with open(self.requests_log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            write(rec)


def make_handler(svc: EngineService):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes: streams as is

        def _json(self, code: int, obj: dict):
            data = json.dumps(obj, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path == "/health":
                self._json(200, {"engine": svc.engine, "model": svc.model_name, "load_s": svc.load_s,
                                 "requests": svc.n})
            else:
                self._json(404, {"error": f"no {self.path}; try /health or POST /generate"})

        def do_POST(self):  # noqa: N802
            if self.path != "/generate":
                return self._json(404, {"error": f"no {self.path}; POST /generate"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            except (ValueError, json.JSONDecodeError) as e:
                return self._json(400, {"error": f"the body is not JSON: {e}"})
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()

            def write(obj):
                self.wfile.write((json.dumps(obj, ensure_ascii=False) + "\n").encode())
                self.wfile.flush()
            try:
                svc.generate(body, write)
            except Exception as e:  # reported in the stream: the status line is already sent
                write({"error": f"{type(e).__name__}: {e}"})

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    return Handler


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="transformers", choices=registry.names())
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--tokenizer", required=True, type=Path, help="HF folder with the chat template")
    ap.add_argument("--model-name", default="model")
    ap.add_argument("--options", default="{}", help="engine options as JSON (typed per engine)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--requests-log", type=Path)
    a = ap.parse_args(argv)
    svc = EngineService(a.engine, a.model, a.tokenizer, json.loads(a.options), a.requests_log,
                        a.model_name)
    print(f"{a.engine} loaded {a.model} in {svc.load_s:.2f} s; serving on {a.host}:{a.port}",
          flush=True)
    ThreadingHTTPServer((a.host, a.port), make_handler(svc)).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
