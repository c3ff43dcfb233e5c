"""The engine contract: timed load, batched and streaming generation, exact token ids, close.

Every engine gets the same prompt token ids (the chat template is rendered once, by
:func:`slmstudy.chat.render_chat`), so differences come from the engine, not the prompt. Each generated token
is timestamped with `time.perf_counter_ns` when it reaches the caller.
"""

from __future__ import annotations

import abc
import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .. import metrics
from ..architecture import arch_from_config
from ..errors import EngineOptionError, ModelNotFoundError, StudyError, validation_problems
from ..layout import Layout, record_fields, visible_gpus
from ..layout import check as check_layout
from ..resources import check_fits

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "half": 2, "float": 4}


@dataclass(frozen=True)
class RunContext:
    """What a section asks of an engine, in engine-neutral terms. Each engine's options model
    maps it onto its own options (:meth:`EngineOptions.for_run`); params may then override any
    option by name."""

    device: str = "cpu"  # "cpu" or "cuda"
    n_ctx: int = 4096  # prompt + output tokens the engine must hold
    threads: int | None = None  # CPU threads (None = the engine's default)
    seed: int = 0
    dtype: str = "float32"  # weights dtype, for engines that load a float checkpoint
    replica: bool = False  # random weights in a real architecture (speed only)
    max_concurrency: int | None = None  # most requests the engine will see at once
    compile: bool = False  # the engine's documented compiled / static fast path
    same_process: bool = False  # keep every engine thread in this process (the GPU profiler)


class EngineOptions(BaseModel):
    """An engine's options, typed: a misspelt or unknown option is refused before loading."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    skip_memory_check: bool = False

    @classmethod
    def for_run(cls, ctx: RunContext) -> dict:
        """This engine's options for a run context (only the options this engine has)."""
        return {"seed": ctx.seed}

    def on_cpu(self) -> bool:
        """Whether the weights live in CPU memory (the memory preflight applies)."""
        return getattr(self, "device", "cpu") in (None, "cpu")

    def layout(self) -> Layout:
        """How many GPUs the model is spread over (slmstudy.layout): one or none, unless the
        engine's options say otherwise."""
        return Layout(gpus=0 if self.on_cpu() else 1)


def parse_options(engine: str, options_model: type[EngineOptions], raw: dict) -> EngineOptions:
    """Validate raw options for `engine`; the error names the option, the engine and the
    options it accepts."""
    try:
        return options_model.model_validate(raw)
    except ValidationError as e:
        accepted = ", ".join(sorted(options_model.model_fields))
        raise EngineOptionError(
            f"engine {engine!r}: " + "; ".join(validation_problems(e, "option"))
            + f". Options {engine} accepts: {accepted} (fix "
            "`options:` of this target in your params file).") from None


@dataclass
class LogLikelihood:
    """log p(continuation | context) as lm-evaluation-harness's `loglikelihood` request returns
    it: the summed log-probability of the continuation tokens, and whether greedy decoding would
    have produced exactly that continuation."""

    logprob: float
    is_greedy: bool
    token_logprobs: list[float]


@dataclass
class GenRequest:
    """One generation request. `force_length`: exactly `max_tokens` tokens (EOS ignored).
    `stop`: strings that end the generation as soon as the decoded text contains one (lm-eval's
    `until`; the text is kept up to and including the token that completed it)."""

    prompt_ids: list[int]
    max_tokens: int = 32
    force_length: bool = False
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0
    request_id: str = ""
    stop: tuple[str, ...] = ()

    def __post_init__(self):
        if self.max_tokens <= 0:
            raise StudyError(f"max_tokens must be ≥ 1, got {self.max_tokens}")
        if not self.prompt_ids:
            raise StudyError("prompt_ids is empty; render a prompt with render_chat() first")
        if self.temperature < 0:
            raise StudyError(f"temperature must be ≥ 0 (0 = greedy), got {self.temperature}")


@dataclass
class Generation:
    """What one request produced, with per-token arrival times (perf_counter_ns)."""

    engine: str
    model: str
    prompt_ids: list[int]
    output_ids: list[int]
    text: str
    t_send_ns: int
    token_times_ns: list[int]
    finish_reason: str
    replica: bool = False
    forced_length: int | None = None
    request_id: str = ""
    engine_timings: dict = field(default_factory=dict)
    tokenize_s: float | None = None
    token_count: int | None = None  # exact count where the ids are unknown (a server's stream)

    @property
    def _counted(self) -> int | None:
        return self.token_count if not self.output_ids else None

    @property
    def n_tokens(self) -> int:
        return len(self.output_ids) if self._counted is None else self._counted

    @property
    def length_ok(self) -> bool:
        return self.forced_length is None or self.n_tokens == self.forced_length

    @property
    def ttft_s(self) -> float:
        return metrics.ttft_s(self.t_send_ns, self.token_times_ns)

    @property
    def e2e_s(self) -> float:
        return metrics.e2e_s(self.t_send_ns, self.token_times_ns)

    @property
    def decode_tok_s(self) -> float:
        return metrics.decode_tok_s(self.token_times_ns, self._counted)

    def record(self, **extra) -> dict:
        """A flat JSON-able record with the derived metrics next to the raw timestamps."""
        r = asdict(self)
        r.update(
            n_prompt=len(self.prompt_ids), n_tokens=self.n_tokens, length_ok=self.length_ok,
            ttft_s=self.ttft_s, e2e_s=self.e2e_s, decode_tok_s=self.decode_tok_s,
            chars_per_s=metrics.chars_per_s(self.text, self.t_send_ns, self.token_times_ns),
            label="replica" if self.replica else "real",
        )
        r.update(extra)
        return r


class Backend(abc.ABC):
    """One engine. Subclasses implement `_load`, `_stream` and optionally `_generate_batch`;
    engines that expose logits implement `_logits_rows` (or override `loglikelihood`).
    `Options` is the engine's typed options model."""

    name: str = "?"
    Options: ClassVar[type[EngineOptions]] = EngineOptions

    def __init__(self, model_path: str | Path, *, model_name: str | None = None,
                 replica: bool = False, options: EngineOptions | dict | None = None, **kw):
        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.name
        self.replica = replica
        if isinstance(options, EngineOptions):
            options = options.model_dump(exclude_unset=True)
        self.options = parse_options(self.name, self.Options, {**(options or {}), **kw})
        self.load_s: float | None = None
        self.placement: dict = record_fields(self.options.layout(), [])
        #: every token id that ends a generation (EOS and the chat template's end of turn);
        #: filled at load by `_stop_ids`, used by every engine's loop and finish reason
        self.stop_ids: frozenset[int] = frozenset()
        self._loaded = False
        self._rows_cache: tuple | None = None
        self._prefix_reused = 0
        self.loglik_tokens = {"evaluated": 0, "reused": 0}  # of the last loglikelihood() call

    # -- lifecycle
    def load(self) -> float:
        """Load the model; returns (and stores in `load_s`) the wall time in seconds.

        Before anything is loaded: the path must exist and the weights must fit in memory.
        """
        if not self.model_path.exists():
            raise ModelNotFoundError(
                f"{self.name}: model path {self.model_path} does not exist; check "
                "models.<name>.path in your params, or run `make models` for the embedded model.")
        layout = self.options.layout()
        gpus = visible_gpus() if layout.gpus else []
        if not self.options.skip_memory_check:
            self.weights_bytes = self.estimate_weights_bytes()
            if self.options.on_cpu():
                check_fits(f"{self.name} loading {self.model_name}", self.weights_bytes)
        check_layout(f"{self.name} loading {self.model_name}", layout,
                     None if self.options.skip_memory_check else self.weights_bytes, gpus)
        #: where the records of this engine ran: its layout and the GPUs it used
        self.placement = record_fields(layout, gpus)
        t0 = time.perf_counter()
        self._load()
        self.load_s = time.perf_counter() - t0
        self.stop_ids = frozenset(self._stop_ids())
        self._loaded = True
        return self.load_s

    def estimate_weights_bytes(self) -> int:
        """Bytes of weights the engine will hold: files on disk, or params × dtype for replicas."""
        if getattr(self.options, "random_weights", False):
            cfg = json.loads((self.model_path / "config.json").read_text())
            arch = arch_from_config(cfg)
            dtype = getattr(self.options, "dtype", "bfloat16")
            if dtype == "auto":
                dtype = cfg.get("torch_dtype", "bfloat16")
            return arch.param_count() * DTYPE_BYTES.get(str(dtype), 2)
        p = self.model_path
        if p.is_file():
            return p.stat().st_size
        return sum(f.stat().st_size for f in p.rglob("*")
                   if f.is_file() and f.suffix in (".safetensors", ".gguf", ".bin", ".data", ".onnx"))

    def close(self) -> None:
        self._close()
        self._loaded = False

    def __enter__(self):
        if not self._loaded:
            self.load()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- generation
    def stream(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        """Yield (token_id, arrival perf_counter_ns) as each token is produced."""
        self._require_loaded()
        yield from self._stream(req)

    def stream_live(self, req: GenRequest) -> Iterator[tuple[int, int]]:
        """Like `stream`, but each token reaches the caller as soon as it exists, also on an engine
        whose `stream` yields only after the generation (capability streaming=False): what a chat
        front end needs. Engines that stream already return `stream` itself."""
        return self.stream(req)

    def generate_one(self, req: GenRequest) -> Generation:
        self._require_loaded()
        t_send = time.perf_counter_ns()
        ids, times = [], []
        stream = self._stream(req)
        reason = None
        try:
            for tok, t in stream:
                ids.append(tok)
                times.append(t)
                if req.stop and not req.force_length and self.hits_stop_string(ids, req.stop):
                    reason = "stop_string"
                    break
        finally:
            stream.close()
        return self._finish(req, t_send, ids, times,
                            finish_reason=reason or self._finish_reason(req, ids),
                            engine_timings=self._engine_timings())

    def hits_stop_string(self, ids: list[int], stop: tuple[str, ...], window: int = 24) -> bool:
        """Does the text of the last `window` tokens contain a stop string? (Checked after each
        token, so only the tail can hold a new one.)"""
        return any(s in self.decode(ids[-window:]) for s in stop)

    def generate(self, requests: Iterable[GenRequest]) -> list[Generation]:
        """Run requests as one batch where the engine batches, else one after another."""
        self._require_loaded()
        requests = list(requests)
        batched = self._generate_batch(requests)
        if batched is not None:
            return batched
        return [self.generate_one(r) for r in requests]

    # -- log-likelihood
    @classmethod
    def supports_loglik(cls) -> bool:
        return (cls._logits_rows is not Backend._logits_rows
                or cls.loglikelihood is not Backend.loglikelihood)

    def loglikelihood(self, requests: Sequence[tuple[list[int], list[int]]]
                      ) -> list[LogLikelihood]:
        """For each (context ids, continuation ids): log p(continuation | context) and whether
        it is the greedy continuation (lm-evaluation-harness's `loglikelihood` request type).
        Requests that share a prefix (e.g. one-token option letters after one prompt) reuse one
        forward pass."""
        self._require_loaded()
        if not self.supports_loglik():
            raise StudyError(f"engine {self.name} does not expose logits, so it cannot score "
                             "log-likelihoods; use an engine whose registry entry has loglik")
        out = []
        self.loglik_tokens = {"evaluated": 0, "reused": 0}
        for ctx, cont in requests:
            if not ctx or not cont:
                raise StudyError("log-likelihood needs a non-empty context and continuation")
            prefix = tuple(ctx) + tuple(cont[:-1])
            key = (prefix, len(cont))
            if self._rows_cache is None or self._rows_cache[0] != key:
                self._prefix_reused = 0
                self._rows_cache = (key, np.asarray(self._logits_rows(list(prefix), len(cont)),
                                                    dtype=np.float64))
                self.loglik_tokens["reused"] += self._prefix_reused
                self.loglik_tokens["evaluated"] += len(prefix) - self._prefix_reused
            out.append(score_continuation(self._rows_cache[1], cont))
        self._rows_cache = None
        return out

    def _logits_rows(self, ids: list[int], n: int) -> np.ndarray:
        """Logits [n, vocab] at the last n positions of `ids` (each row predicts the token after
        its position). Engines that expose logits implement this. An engine that keeps the KV
        cache of the previous call and evaluates only what follows the common prefix (few-shot
        prompts of one subject share the header and the shots) sets `self._prefix_reused` to
        the number of tokens it did not evaluate again."""
        raise NotImplementedError

    # -- for subclasses
    def _finish(self, req: GenRequest, t_send: int, ids: list[int], times: list[int],
                finish_reason: str | None = None, text: str | None = None,
                engine_timings: dict | None = None) -> Generation:
        if finish_reason is None:
            finish_reason = ("stop" if self.stops(req, ids[-1] if ids else None) else
                             "length" if len(ids) >= req.max_tokens else "stop")
        return Generation(
            engine=self.name, model=self.model_name, prompt_ids=list(req.prompt_ids),
            output_ids=list(ids), text=self.decode(ids) if text is None else text,
            t_send_ns=t_send, token_times_ns=list(times), finish_reason=finish_reason,
            replica=self.replica, forced_length=req.max_tokens if req.force_length else None,
            request_id=req.request_id, engine_timings=engine_timings or {},
        )

    def _require_loaded(self):
        if not self._loaded:
            raise StudyError(f"{self.name} backend: call load() (or use `with`) before generating")

    @abc.abstractmethod
    def _load(self) -> None: ...

    @abc.abstractmethod
    def _stream(self, req: GenRequest) -> Iterator[tuple[int, int]]: ...

    def _generate_batch(self, requests: list[GenRequest]) -> list[Generation] | None:
        return None

    def _finish_reason(self, req: GenRequest, ids: list[int]) -> str | None:
        """Why generation ended, where the engine knows better than the token count."""
        return None

    def stops(self, req: GenRequest, token: int | None) -> bool:
        """Does `token` end this request's generation (never when the length is forced)?"""
        return token is not None and not req.force_length and token in self.stop_ids

    def _stop_ids(self) -> set[int]:
        """The model's end-of-generation ids, read at load. Default: from the model folder's
        configs and tokenizer (:func:`slmstudy.chat.end_of_generation_ids`); engines whose model
        file carries its own vocabulary (GGUF) override this."""
        from ..chat import end_of_generation_ids

        return end_of_generation_ids(self.model_path) if self.model_path.is_dir() else set()

    def _engine_timings(self) -> dict:
        """The engine's own timers for the request just finished (if it keeps any)."""
        return {}

    def _close(self) -> None:  # noqa: B027 — optional hook: engines without resources skip it
        pass

    def decode(self, ids: list[int]) -> str:
        return ""


def incremental_chunks(ids: list[int], n: int) -> list[list[int]]:
    """`ids` as the chunks an engine that exposes only its last position's logits is fed, to
    read the logits at the last n positions: everything up to the first of them, then one token
    at a time."""
    cut = len(ids) - n + 1
    return [ids[:cut]] + [[t] for t in ids[cut:]]


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def score_continuation(logit_rows: np.ndarray, cont: list[int]) -> LogLikelihood:
    """LogLikelihood of `cont` from the logits of the positions that predict it."""
    lp = log_softmax(logit_rows)
    toks = [float(lp[i, t]) for i, t in enumerate(cont)]
    greedy = all(int(lp[i].argmax()) == t for i, t in enumerate(cont))
    return LogLikelihood(logprob=float(math.fsum(toks)), is_greedy=greedy, token_logprobs=toks)
