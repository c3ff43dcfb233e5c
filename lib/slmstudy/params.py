"""Typed parameters, one model per notebook. Unknown or mistyped keys are errors naming the key
and the file (papermill only warns), and bad values are refused before any model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .backends import registry
from .errors import ParamsError, StudyError, validation_problems
from .paths import PARAMS_DIR


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _engines_ok(v: list[str]) -> list[str]:
    bad = [e for e in v if e not in registry.names()]
    if bad:
        raise ValueError(f"unknown engine(s) {bad}; choose from {list(registry.names())}")
    return v


def _servers_ok(v: list[str]) -> list[str]:
    _engines_ok(v)
    bad = [e for e in v if e not in registry.with_server()]
    if bad:
        raise ValueError(f"OpenAI-compatible servers exist for {list(registry.with_server())} "
                         f"only, not {bad}")
    return v


def _options_ok(engine: str, options: dict) -> None:
    """An engine's options from params, checked against its typed options model now, before
    anything loads (the error names the option, the engine and what it accepts)."""
    try:
        registry.get(engine).check_options(options)
    except StudyError as e:
        raise ValueError(str(e)) from None


class SpeedTarget(_Strict):
    """One model (real or replica) × engine × format to time."""

    model: str = Field(description="registry key, HF folder or GGUF path")
    engine: str
    format: str = Field("hf", description="hf | gguf | onnx for real models; F16/F32/Q4_K_M/... "
                                          "for GGUF replicas")
    dtype: str = "float32"
    replica: bool = False
    compile: bool = False  # transformers: static KV cache + torch.compile (the documented fast path)
    concurrency: list[int] | None = None  # this target's in-process levels (default: the section's)
    label: str | None = None
    options: dict = Field(default_factory=dict,
                          description="engine options by name, over the run's defaults")

    @field_validator("concurrency")
    @classmethod
    def _conc(cls, v):
        if v is not None and any(c < 1 for c in v):
            raise ValueError(f"concurrency levels must be ≥ 1, got {v}")
        return v

    @field_validator("engine")
    @classmethod
    def _engine(cls, v):
        _engines_ok([v])
        return v

    @model_validator(mode="after")
    def _options(self):
        _options_ok(self.engine, self.options)
        return self

    def name(self) -> str:
        if self.label:
            return self.label
        kind = "replica" if self.replica else "real"
        fmt = getattr(self, registry.get(self.engine).form.precision_field)
        if self.compile:
            fmt += "+compile"
        return f"{self.model}/{self.engine}/{fmt}/{kind}"


class SpeedParams(_Strict):
    run_id: str = "default"
    targets: list[SpeedTarget]
    prompt_tokens: int = Field(512, gt=0)
    output_tokens: int = Field(256, gt=0)
    repetitions: int = Field(3, ge=1)
    warmup: int = Field(1, ge=0)
    concurrency: list[int] = [1, 2, 4, 8]
    http_engines: list[str] = Field(default_factory=lambda: list(registry.with_server()))
    http_concurrency: list[int] = [1, 4]
    bandwidth_bytes: int = Field(2 * 2**30, gt=0, description="size of the bandwidth test copy")
    threads: int | None = None
    vllm_bench: bool = True  # compare our HTTP client with `vllm bench serve` on one server
    device: Literal["cpu", "cuda"] = "cpu"

    @field_validator("concurrency", "http_concurrency")
    @classmethod
    def _conc(cls, v):
        if any(c < 1 for c in v):
            raise ValueError(f"concurrency levels must be ≥ 1, got {v}")
        return v

    @field_validator("http_engines")
    @classmethod
    def _http(cls, v):
        return _servers_ok(v)


class DeploymentParams(_Strict):
    run_id: str = "default"
    model: str = "smollm2_135m"
    engines: list[str] = Field(default_factory=lambda: list(registry.names()))
    servers: list[str] = Field(default_factory=lambda: list(registry.with_server()))
    load_repetitions: int = Field(2, ge=1)
    drop_page_cache: bool = True
    vllm_tool_parser: str | None = "hermes"
    #: run the articles' command lines as written (data/commands.yaml, `commands.run_all`)
    article_commands: bool = False
    #: while a command is refused, run it again with each of its listed corrections in turn
    command_fixes: bool = True
    webui: bool = False
    #: article 003's stack: the study's Gradio app over `gradio_engine` (`make gradio`)
    gradio: bool = False
    gradio_engine: str = "transformers"
    gradio_repetitions: int = Field(3, ge=3, description="measured chats per question and path "
                                                        "(medians of at least 3)")
    gradio_max_tokens: int = Field(32, ge=1)
    gradio_questions: dict[str, str] | None = None  # language -> question (None: zh + en)

    @field_validator("gradio_engine")
    @classmethod
    def _gradio_engine(cls, v):
        return _engines_ok([v])[0]

    @field_validator("engines")
    @classmethod
    def _engines(cls, v):
        return _engines_ok(v)

    @field_validator("servers")
    @classmethod
    def _servers(cls, v):
        return _servers_ok(v)


class ClaimsParams(_Strict):
    """Parameters of notebooks/00_claims (the claims ledger)."""

    run_id: str = Field("default", min_length=1,
                        description="results go to build/runs/<run_id>/00_claims/")


PARAM_MODELS = {"00_claims": ClaimsParams, "01_deployment": DeploymentParams,
                "02_speed": SpeedParams}


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
        lines = validation_problems(e, "key", f" (allowed: {sorted(model.model_fields)})")
        raise ParamsError(f"invalid parameters in {source}:\n  " + "\n  ".join(lines)) from None


# ==========================================================================================
# Quality sections (03 Chinese quality, 04 math, 05 code) — parameter models
# ==========================================================================================


class QualityTarget(_Strict):
    """One model in one engine whose outputs are scored. The embedded model needs no path; any
    other model needs its local weights (`path`) and, for a GGUF, its HF `tokenizer` folder."""

    model: str = "smollm2_135m"
    engine: str = "llamacpp"
    path: str | None = Field(None, description="local weights (HF folder, .gguf, ONNX folder)")
    tokenizer: str | None = Field(None, description="HF folder with the chat template")
    dtype: str = "float32"
    label: str | None = None
    generate: bool = Field(True, description="score free generations")
    loglik: bool = Field(False, description="03 only: multiple choice by log-likelihood")
    options: dict = Field(default_factory=dict,
                          description="engine options by name, over the section's defaults")
    limit: int | None = Field(None, ge=1, description="score only the first `limit` items of "
                              "each task: the subsets are nested, so this is a parity subset of "
                              "what the other targets score (a slow engine beside a fast one)")

    @field_validator("engine")
    @classmethod
    def _engine(cls, v):
        _engines_ok([v])
        return v

    @model_validator(mode="after")
    def _modes(self):
        if not (self.generate or self.loglik):
            raise ValueError(f"target {self.model}/{self.engine}: enable generate or loglik")
        if self.loglik and not registry.get(self.engine).capabilities.loglik:
            raise ValueError(f"loglik needs log-probabilities from the engine; engines with them: "
                             f"{list(registry.with_capability('loglik'))}, not {self.engine}")
        _options_ok(self.engine, self.options)
        return self

    def name(self) -> str:
        return self.label or f"{self.model}/{self.engine}"


class _QualityParams(_Strict):
    run_id: str = "default"
    data_dir: str | None = Field(None, description="benchmark data folder (else "
                                 "SLMSTUDY_DATA_DIR, else ../shared/data)")
    targets: list[QualityTarget]
    seed: int = Field(0, description="subset sampling and generation seed (decoding is greedy)")
    threads: int | None = Field(None, ge=1, description="CPU threads per engine (None = all)")
    n_ctx: int = Field(4096, ge=256, description="llama.cpp context length, tokens")
    device: Literal["cpu", "cuda"] = Field("cpu", description="where the engines run (cuda: "
                                           "their GPU defaults, as the speed section's)")
    batch: int = Field(1, ge=1, description="samples sent to the engine at once where it batches "
                       "(vLLM: generation and log-likelihood); the others run one by one. A "
                       "batched sample's timings are under load (its record says the batch "
                       "size), and on a GPU batching can move a logit's last bits, so, rarely, a "
                       "greedy token")

    @model_validator(mode="after")
    def _unique_targets(self):
        names = [t.name() for t in self.targets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"targets {dup} appear twice; give them distinct `label`s")
        if not self.targets:
            raise ValueError("no targets: list at least one model × engine")
        return self


class _GenerateOnly(_QualityParams):
    @model_validator(mode="after")
    def _no_loglik(self):
        bad = [t.name() for t in self.targets if t.loglik or not t.generate]
        if bad:
            raise ValueError(f"targets {bad}: this section scores generations only "
                             "(log-likelihood applies to 03's multiple choice)")
        return self


class ChineseQualityParams(_QualityParams):
    cmmlu_n: int = Field(24, ge=0, description="CMMLU test items, spread over subjects")
    ceval_n: int = Field(12, ge=0, description="C-Eval val items, spread over subjects")
    shots: int = Field(5, ge=0, le=5, description="few-shot examples from the dev split (lm-eval: 5)")
    mc_max_tokens: int = Field(24, gt=0, description="generation budget of a choice answer")
    peer_lmeval: bool = Field(True, description="score the log-likelihood items with lm-eval too "
                                                "and compare item by item")
    zh_tasks: bool = Field(True, description="run the project's own rubric tasks")
    zh_categories: list[str] | None = Field(None, description="subset of task categories")
    zh_max_tokens: int = Field(192, gt=0)


class MathParams(_GenerateOnly):
    gsm8k_n: int = Field(15, ge=0)
    gsm8k_shots: int = Field(5, ge=0, le=8, description="lm-eval gsm8k: train-split exemplars (5)")
    gsm8k_chat: bool = Field(True, description="also the 0-shot chat variant (task gsm8k_chat)")
    gsm8k_cot: bool = Field(True, description="also lm-eval's gsm8k_cot (8 fixed chain-of-thought "
                                              "exemplars; task gsm8k_cot)")
    gsm8k_max_tokens: int = Field(256, gt=0, description="lm-eval's max_gen_toks: 256")
    math500_n: int = Field(10, ge=0, description="MATH-500 items, proportional to levels 1-5")
    math500_max_tokens: int = Field(2048, gt=0, description="Qwen2.5-Math's evaluation: 2048")
    peer_lmeval: bool = Field(True, description="lm-eval generates on the same GSM8K items "
                                                "(gsm8k, gsm8k_cot); compared item by item")


class CodeParams(_GenerateOnly):
    humaneval_n: int = Field(8, ge=0)
    humaneval_completion: bool = Field(True, description="also the Codex paper's completion "
                                       "protocol (plain-text prompt; what a base model can run)")
    mbpp_n: int = Field(8, ge=0, description="from the paper's test range (task ids 11-510)")
    bfcl_n: int = Field(8, ge=0, description="BFCL simple items per language")
    bfcl_languages: list[Literal["python", "java", "javascript"]] = ["python"]
    code_max_tokens: int = Field(320, gt=0)
    bfcl_max_tokens: int = Field(128, gt=0)
    sandbox_timeout_s: float = Field(10.0, gt=0, description="wall and CPU limit per program")
    sandbox_memory_mb: int = Field(1024, ge=64)


PARAM_MODELS.update({"03_chinese_quality": ChineseQualityParams, "04_math": MathParams,
                     "05_code": CodeParams})
