"""The engine contract: timed load, batched and streaming generation, exact token ids, close.

Every engine gets the same prompt token ids (the chat template is rendered once, by
:func:`render_chat`), so differences come from the engine, not the prompt. Each generated token
is timestamped with `time.perf_counter_ns` when it reaches the caller.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import json

from .. import metrics
from ..errors import ModelNotFoundError, StudyError, UnknownEngineError
from ..models import arch_from_config
from ..resources import check_fits

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "half": 2, "float": 4}


@dataclass
class GenRequest:
    """One generation request. `force_length`: exactly `max_tokens` tokens (EOS ignored)."""

    prompt_ids: list[int]
    max_tokens: int = 32
    force_length: bool = False
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0
    request_id: str = ""

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
    """One engine. Subclasses implement `_load`, `_stream` and optionally `_generate_batch`."""

    name: str = "?"

    def __init__(self, model_path: str | Path, *, model_name: str | None = None,
                 replica: bool = False, **options):
        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.name
        self.replica = replica
        self.options = options
        self.load_s: float | None = None
        self._loaded = False

    # -- lifecycle
    def load(self) -> float:
        """Load the model; returns (and stores in `load_s`) the wall time in seconds.

        Before anything is loaded: the path must exist and the weights must fit in memory.
        """
        if not self.model_path.exists():
            raise ModelNotFoundError(
                f"{self.name}: model path {self.model_path} does not exist; check "
                "models.<name>.path in your params, or run `make models` for the embedded model.")
        if not self.options.get("skip_memory_check"):
            self.weights_bytes = self.estimate_weights_bytes()
            if self.device_is_cpu():
                check_fits(f"{self.name} loading {self.model_name}", self.weights_bytes)
        t0 = time.perf_counter()
        self._load()
        self.load_s = time.perf_counter() - t0
        self._loaded = True
        return self.load_s

    def device_is_cpu(self) -> bool:
        return self.options.get("device", "cpu") == "cpu" and not self.options.get("n_gpu_layers")

    def estimate_weights_bytes(self) -> int:
        """Bytes of weights the engine will hold: files on disk, or params × dtype for replicas."""
        if self.options.get("random_weights"):
            cfg = json.loads((self.model_path / "config.json").read_text())
            arch = arch_from_config(cfg)
            dtype = self.options.get("dtype", "bfloat16")
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

    def generate_one(self, req: GenRequest) -> Generation:
        self._require_loaded()
        t_send = time.perf_counter_ns()
        ids, times = [], []
        for tok, t in self._stream(req):
            ids.append(tok)
            times.append(t)
        return self._finish(req, t_send, ids, times, finish_reason=self._finish_reason(req, ids),
                            engine_timings=self._engine_timings())

    def generate(self, requests: Iterable[GenRequest]) -> list[Generation]:
        """Run requests as one batch where the engine batches, else one after another."""
        self._require_loaded()
        requests = list(requests)
        batched = self._generate_batch(requests)
        if batched is not None:
            return batched
        return [self.generate_one(r) for r in requests]

    # -- for subclasses
    def _finish(self, req: GenRequest, t_send: int, ids: list[int], times: list[int],
                finish_reason: str | None = None, text: str | None = None,
                engine_timings: dict | None = None) -> Generation:
        if finish_reason is None:
            finish_reason = "length" if len(ids) >= req.max_tokens else "stop"
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

    def _engine_timings(self) -> dict:
        """The engine's own timers for the request just finished (if it keeps any)."""
        return {}

    def _close(self) -> None:
        pass

    def decode(self, ids: list[int]) -> str:
        return ""


ENGINES = ("transformers", "vllm", "llamacpp", "ortgenai")


def get_backend_class(name: str) -> type[Backend]:
    """Engine name → Backend class (imported lazily: each engine's package is heavy)."""
    if name == "transformers":
        from .transformers import TransformersBackend as cls
    elif name == "vllm":
        from .vllm import VLLMBackend as cls
    elif name == "llamacpp":
        from .llamacpp import LlamaCppBackend as cls
    elif name == "ortgenai":
        from .ortgenai import OrtGenAIBackend as cls
    else:
        raise UnknownEngineError(
            f"unknown engine {name!r}; choose one of {', '.join(ENGINES)} "
            "(check the `engines` list in your params file)."
        )
    return cls


def validate_engines(names: Iterable[str]) -> list[str]:
    names = list(names)
    bad = [n for n in names if n not in ENGINES]
    if bad:
        raise UnknownEngineError(
            f"unknown engine(s) {bad}; choose from {', '.join(ENGINES)} "
            "(check the `engines` list in your params file)."
        )
    return names


def make_backend(name: str, model_path, **kw) -> Backend:
    return get_backend_class(name)(model_path, **kw)


def render_chat(tokenizer_dir: str | Path, messages: list[dict] | str,
                add_generation_prompt: bool = True) -> list[int]:
    """Render the chat template once with the model's HF tokenizer → prompt token ids."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    tok = _tokenizer(str(tokenizer_dir))
    ids = tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                  tokenize=True)
    if hasattr(ids, "keys"):  # BatchEncoding in newer transformers
        ids = ids["input_ids"]
    return [int(i) for i in ids]


_TOKENIZERS: dict = {}


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    if path not in _TOKENIZERS:
        _TOKENIZERS[path] = AutoTokenizer.from_pretrained(path)
    return _TOKENIZERS[path]
