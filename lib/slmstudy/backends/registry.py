"""The engine registry: one spec per engine, and the only place that knows which engines exist.

An engine is one module of this package that defines its Backend class, its typed options
(:class:`~slmstudy.backends.base.EngineOptions`) and a module-level ``SPEC``. Adding an engine
is adding its module and its name to :data:`ENGINE_MODULES`; sections, params, the claims ledger
and the tests read every engine from here and branch on capabilities, never on engine names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownEngineError
from ..forms import ArtifactForm
from .base import Backend, EngineOptions, RunContext  # noqa: F401  (RunContext re-exported)

# engine name → module of this package (the order is the order of tables and figures)
ENGINE_MODULES = {"transformers": "transformers", "vllm": "vllm", "llamacpp": "llamacpp",
                  "ortgenai": "ortgenai", "openvino": "openvino"}


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, as the sections need to know it.

    streaming: tokens reach the caller as the engine produces them (not after the whole
        generation returns);
    batching: a list of requests decodes together in one engine call;
    loglik: log-probabilities of given continuations (multiple choice, perplexity);
    concurrency: how the in-process engine serves concurrent requests — "continuous batching",
        "static batch" or "one at a time";
    device_memory_reservation: (option, upstream default) when the engine takes a fraction of
        device memory at start whatever the model needs (vLLM's gpu_memory_utilization, 0.9), so
        the memory a monitor shows is that fraction of the card.
    """

    streaming: bool
    batching: bool
    loglik: bool
    concurrency: str
    device_memory_reservation: tuple[str, float] | None = None


@dataclass(frozen=True)
class EngineSpec:
    """One engine: its Backend class, the artifact form it loads, its options model, its
    OpenAI-compatible server (if it has one) and the Python package it imports."""

    name: str
    backend: type[Backend]
    form: ArtifactForm
    capabilities: Capabilities
    package: str  # the module the engine imports (its import time is part of a cold load)
    distributions: tuple[str, ...]  # PyPI distributions recorded in provenance
    # serve(path, ctx, *, log_dir, model_name) → a ManagedServer, for engines with a server
    serve: Callable | None = None
    description: str = ""

    @property
    def options(self) -> type[EngineOptions]:
        return self.backend.Options

    @property
    def has_server(self) -> bool:
        return self.serve is not None

    def options_for(self, ctx: RunContext, overrides: dict | None = None) -> EngineOptions:
        """Typed options for a run context, with params' overrides on top (validated)."""
        from .base import parse_options

        return parse_options(self.name, self.options,
                             {**self.options.for_run(ctx), **(overrides or {})})

    def check_options(self, overrides: dict | None) -> None:
        """Refuse unknown or mistyped options before anything loads."""
        self.options_for(RunContext(), overrides)

    def make(self, model_path: str | Path, *, options: EngineOptions | dict | None = None,
             **kw) -> Backend:
        return self.backend(model_path, options=options, **kw)


_SPECS: dict[str, EngineSpec] = {}


def _load_all() -> dict[str, EngineSpec]:
    if not _SPECS:
        for name, module in ENGINE_MODULES.items():
            spec = importlib.import_module(f"{__package__}.{module}").SPEC
            assert spec.name == name, (name, spec.name)
            _SPECS[name] = spec
    return _SPECS


def names() -> tuple[str, ...]:
    """Every registered engine, in registry order."""
    return tuple(ENGINE_MODULES)


def get(name: str) -> EngineSpec:
    if name not in ENGINE_MODULES:
        raise UnknownEngineError(
            f"unknown engine {name!r}; choose one of {', '.join(ENGINE_MODULES)} "
            "(check the `engines` / `engine` entries in your params file).")
    return _load_all()[name]


def specs() -> list[EngineSpec]:
    return list(_load_all().values())


def validate(names_: Iterable[str]) -> list[str]:
    names_ = list(names_)
    bad = [n for n in names_ if n not in ENGINE_MODULES]
    if bad:
        raise UnknownEngineError(
            f"unknown engine(s) {bad}; choose from {', '.join(ENGINE_MODULES)} "
            "(check the `engines` list in your params file).")
    return names_


def with_capability(name: str) -> tuple[str, ...]:
    """Engines whose capability `name` is true ("loglik", "batching", …)."""
    return tuple(s.name for s in specs() if getattr(s.capabilities, name))


def with_server() -> tuple[str, ...]:
    return tuple(s.name for s in specs() if s.has_server)


def make_backend(name: str, model_path: str | Path, **kw) -> Backend:
    """Engine name → a Backend on `model_path` (options validated by the engine's model)."""
    return get(name).make(model_path, **kw)


def distributions() -> tuple[str, ...]:
    """Every engine's PyPI distributions (for provenance)."""
    return tuple(d for s in specs() for d in s.distributions)
