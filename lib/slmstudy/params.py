"""Typed parameters, one model per notebook. Unknown or mistyped keys are errors naming the key
and the file (papermill only warns), and bad values are refused before any model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .backends.base import ENGINES
from .errors import ParamsError
from .paths import PARAMS_DIR


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _engines_ok(v: list[str]) -> list[str]:
    bad = [e for e in v if e not in ENGINES]
    if bad:
        raise ValueError(f"unknown engine(s) {bad}; choose from {list(ENGINES)}")
    return v


class SpeedTarget(_Strict):
    """One model (real or replica) × engine × format to time."""

    model: str = Field(description="registry key, HF folder or GGUF path")
    engine: str
    format: str = Field("hf", description="hf | gguf | onnx for real models; F16/F32/Q4_K_M/... "
                                          "for GGUF replicas")
    dtype: str = "float32"
    replica: bool = False
    label: str | None = None

    @field_validator("engine")
    @classmethod
    def _engine(cls, v):
        _engines_ok([v])
        return v

    def name(self) -> str:
        if self.label:
            return self.label
        kind = "replica" if self.replica else "real"
        fmt = self.format if self.engine in ("llamacpp", "ortgenai") or self.replica else self.dtype
        return f"{self.model}/{self.engine}/{fmt}/{kind}"


class SpeedParams(_Strict):
    run_id: str = "default"
    targets: list[SpeedTarget]
    prompt_tokens: int = Field(512, gt=0)
    output_tokens: int = Field(256, gt=0)
    repetitions: int = Field(3, ge=1)
    warmup: int = Field(1, ge=0)
    concurrency: list[int] = [1, 2, 4, 8]
    http_engines: list[str] = ["llamacpp", "vllm"]
    http_concurrency: list[int] = [1, 4]
    bandwidth_bytes: int = Field(2 * 2**30, gt=0, description="size of the bandwidth test copy")
    threads: int | None = None

    @field_validator("concurrency", "http_concurrency")
    @classmethod
    def _conc(cls, v):
        if any(c < 1 for c in v):
            raise ValueError(f"concurrency levels must be ≥ 1, got {v}")
        return v

    @field_validator("http_engines")
    @classmethod
    def _http(cls, v):
        _engines_ok(v)
        bad = [e for e in v if e not in ("llamacpp", "vllm")]
        if bad:
            raise ValueError(f"HTTP servers exist for llamacpp and vllm only, not {bad}")
        return v


class DeploymentParams(_Strict):
    run_id: str = "default"
    model: str = "smollm2_135m"
    engines: list[str] = list(ENGINES)
    servers: list[str] = ["llamacpp", "vllm"]
    load_repetitions: int = Field(2, ge=1)
    webui: bool = False

    _e = field_validator("engines")(classmethod(lambda cls, v: _engines_ok(v)))


PARAM_MODELS = {"02_speed": SpeedParams, "01_deployment": DeploymentParams}


def params_file(notebook: str, scenario: str) -> Path:
    return PARAMS_DIR / scenario / f"{notebook}.yaml"


def load_params(notebook: str, scenario: str | Path = "default", overrides: dict | None = None):
    """Read params/<scenario>/<notebook>.yaml (or a YAML path) and validate it."""
    path = Path(scenario) if str(scenario).endswith((".yaml", ".yml")) else \
        params_file(notebook, str(scenario))
    if not path.is_file():
        raise ParamsError(f"parameter file {path} not found; scenarios available: "
                          f"{sorted(p.name for p in PARAMS_DIR.iterdir() if p.is_dir())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw.update(overrides or {})
    return validate(notebook, raw, source=str(path))


def validate(notebook: str, raw: dict, source: str = "<parameters>"):
    model = PARAM_MODELS.get(notebook)
    if model is None:
        raise ParamsError(f"no parameter model for notebook {notebook!r}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                lines.append(f"unknown key {loc!r} (allowed: {sorted(model.model_fields)})")
            else:
                lines.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
        raise ParamsError(f"invalid parameters in {source}:\n  " + "\n  ".join(lines)) from None
