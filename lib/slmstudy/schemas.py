"""Typed results: one pydantic schema per kind of record and per section summary.

Every record line of a `samples.jsonl` and every `summary.json` is written through one of these
(:meth:`slmstudy.results.SectionResults.append` / ``write_summary`` take the model) and carries
``schema_version``; readers parse through the same schema (``records(schema)``), so a field that
changes name or type is an error at the writer, not a silent gap in a table.

SCHEMA_VERSION history: 0 — files written before the schemas (no ``schema_version`` key; the committed
H100 snapshot): :func:`upgrade` reads them; 1 — the first typed version.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class _Typed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION


class SpeedRecord(_Typed):
    """One timed request of the speed section (in-process or over HTTP)."""

    key: str  # <target>/<mode>/c<concurrency>/r<rep>/<request index>: the resume key
    target: str
    engine: str
    model: str
    format: str
    dtype: str
    label: str  # "real" or "replica"
    replica: bool
    mode: str  # "inproc" | "http"
    concurrency: int
    rep: int
    request_index: int
    request_id: str = ""
    output_ids: list[int]
    text: str
    finish_reason: str
    forced_length: int | None = None
    n_prompt: int
    n_tokens: int
    token_count: int | None = None  # exact count where ids are unknown (a server's stream)
    length_ok: bool
    t_send_ns: int
    batch_t_send_ns: int
    token_times_ns: list[int]
    ttft_s: float | None
    e2e_s: float | None
    decode_tok_s: float | None
    chars_per_s: float | None
    itl_s: list[float]
    tokenize_s: float | None = None
    engine_timings: dict[str, Any] = {}
    peak_rss_bytes: int | None
    load_s: float | None
    weights_bytes: int
    bytes_read_per_token: int
    # where it ran (slmstudy.layout): TP × PP or llama.cpp's split, and the GPUs used; absent in
    # records written before layouts were recorded
    layout: dict[str, Any] | None = None
    gpus: list[dict[str, Any]] | None = None


class QualitySample(_Typed):
    """One scored sample of a quality section (generation or log-likelihood)."""

    key: str  # <task>/<config id>/<target>/<sample id>: the resume key
    section: str
    task: str
    mode: str  # "generate" | "loglik"
    config_id: str
    config: dict[str, Any]
    target: str
    model: str
    engine: str
    sample_id: str
    meta: dict[str, Any]
    messages: list[dict[str, Any]]
    prompt: str | None = None  # the plain-text prompt of a text-format protocol, as given
    prompt_text: str
    n_prompt: int
    prompt_ids_sha256: str
    gold: Any = None
    seed: int
    raw_output: str | None = None
    output_ids: list[int] | None = None
    extracted: Any = None
    verdict: str
    verdicts: dict[str, str] = {}
    score_value: float | None = None
    detail: dict[str, Any] = {}
    score_s: float | None = None
    n_tokens: int = 0
    finish_reason: str | None = None
    ttft_s: float | None = None
    decode_tok_s: float | None = None
    e2e_s: float | None = None
    chars_per_s: float | None = None
    prefill_s: float | None = None
    prefill_tok_s: float | None = None
    layout: dict[str, Any] | None = None  # where it ran (slmstudy.layout), as SpeedRecord
    gpus: list[dict[str, Any]] | None = None
    # samples sent to the engine together (params `batch`); > 1: the timings are under that load
    batch: int | None = None


class SpeedRow(BaseModel):
    """One (target, mode, concurrency) row of the speed summary (speed.summarize)."""

    model_config = ConfigDict(extra="forbid")

    target: str
    mode: str
    concurrency: int
    engine: str
    model: str
    label: str
    n_requests: int
    length_ok: bool
    weights_bytes: int
    bytes_read_per_token: int
    load_s: float | None
    peak_rss_bytes: int
    itl_p50_s: float | None
    itl_p90_s: float | None
    itl_p99_s: float | None
    itl_per: str
    chars_per_s: float | None
    aggregate_tok_s: float | None
    ttft_s: float | None
    ttft_s_ci_low: float | None
    ttft_s_ci_high: float | None
    decode_tok_s: float | None
    decode_tok_s_ci_low: float | None
    decode_tok_s_ci_high: float | None
    e2e_s: float | None
    e2e_s_ci_low: float | None
    e2e_s_ci_high: float | None
    cv_decode: float | None
    gpus: int | None = None  # GPUs the target ran on (its records' layout), None before layouts
    layout: str | None = None  # e.g. "TP=2 × PP=1"
    read_ways: int = 1  # GPUs reading the weights at once: the roofline's bandwidth multiple
    roofline_tok_s: float | None = None
    roofline_fraction: float | None = None


class SpeedSummary(_Typed):
    """summary.json of the speed section: the same from the notebook and from
    `python -m slmstudy.speed` (both call speed.section_summary)."""

    bandwidth: dict[str, Any]
    rows: list[SpeedRow]
    llamacpp_clock_agreement: list[dict[str, Any]]
    vllm_bench_validation: list[dict[str, Any]]
    snapshot_claims: dict[str, Any]
    params: dict[str, Any]


class QualityRow(BaseModel):
    """One row of a quality summary (evals.runner.summarize_records): counts per verdict,
    accuracy with its Wilson interval, speed. Extra keys are allowed for the group fields (task,
    target, mode, level, category, …) and for each named verdict's ``<name>_accuracy`` set."""

    model_config = ConfigDict(extra="allow")

    n: int
    correct: int
    wrong: int
    format_failure: int
    timeout: int
    crash: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    answered: int
    accuracy_answered: float | None
    format_failure_rate: float | None
    ttft_s: float | None = None
    decode_tok_s: float | None = None
    n_tokens_mean: float | None = None
    hit_max_tokens: int = 0


class QualitySummary(_Typed):
    """summary.json of a quality section: rows by task × target × mode, and each target's files.
    Each section's subclass below names its own breakdowns."""

    rows: list[QualityRow]
    n_records: int
    verdicts: list[str]
    params: dict[str, Any]
    targets: list[dict[str, Any]] = []
    data: dict[str, Any] = {}
    #: model against model on the same items (evals.runner.model_comparison)
    model_comparison: list[dict[str, Any]] = []
    #: one model on two engines, the same items (evals.runner.engine_parity)
    engine_parity: list[dict[str, Any]] = []


class ChineseSummary(QualitySummary):
    """03_chinese_quality: how often generation and log-likelihood agree, the answer letters each
    target picks, the rubric's checks by kind, and the open tasks by category."""

    mode_agreement: list[dict[str, Any]]
    subject_means: list[dict[str, Any]] = []
    protocols: list[dict[str, Any]] = []
    peer_lmeval: dict[str, Any] | None = None  # lm-eval on the same items (evals.peer.section_peer)
    letter_distribution: list[dict[str, Any]]
    rubric_breakdown: list[dict[str, Any]]
    by_category: list[QualityRow]
    zh_tasks_sha256: str


class MathSummary(QualitySummary):
    """04_math: MATH-500 by difficulty level, and lm-eval on the same GSM8K items."""

    math500_by_level: list[QualityRow]
    peer_lmeval: dict[str, Any] | None = None  # evals.peer.section_peer_generative


class CodeSummary(QualitySummary):
    """05_code: the sandbox layers the programs ran under."""

    sandbox_layers: list[str]


class LoadRecord(_Typed):
    """One cold (fresh process) or warm (same process) load of the deployment section."""

    key: str  # load/<engine>/<kind>/<rep>
    kind: str  # "cold" | "warm"
    rep: int
    engine: str
    load_s: float
    peak_rss_bytes: int
    size_bytes: int | None = None
    # cold loads only: the fresh process's own clocks and its one answer
    import_s: float | None = None
    ttft_s: float | None = None
    time_to_first_answer_s: float | None = None
    answer: str | None = None
    n_tokens: int | None = None
    process_wall_s: float | None = None
    page_cache_dropped: bool | None = None


class WebUIStackRecord(_Typed):
    """The Open WebUI stack measurement (webui.measure_stack), kept whole."""

    key: str  # webui/stack
    stack: dict[str, Any]


class GradioStackRecord(_Typed):
    """Article 003's Gradio stack measurement (gradio_chat.measure_gradio), kept whole."""

    key: str  # gradio/stack
    stack: dict[str, Any]


class DeploymentSummary(_Typed):
    """summary.json of the deployment section."""

    sizes: list[dict[str, Any]]
    loads: list[dict[str, Any]]
    servers: list[dict[str, Any]]
    features: list[dict[str, Any]]
    params: dict[str, Any]
    webui: dict[str, Any] | None
    artifacts: dict[str, Any]
    #: the articles' command lines run as written, with each correction (commands.run_command)
    commands: list[dict[str, Any]] = []
    #: article 003's Gradio app over the study's engine (gradio_chat.measure_gradio), its tables
    gradio: dict[str, Any] | None = None


class ClaimsSummary(_Typed):
    """summary.json of the claims ledger."""

    n_claims: int
    verdict_counts: dict[str, int]
    by_article: dict[str, dict[str, int]]
    rows: list[dict[str, Any]]
    arch: dict[str, Any]
    params: dict[str, Any]
    #: article § -> its claims, or why it has none (ledger.coverage_rows)
    coverage: list[dict[str, Any]] = []
    #: claims whose verdict the measurements decided, with the rules' verdict beside it
    measured: list[dict[str, Any]] = []
    #: the run folder and the snapshots the measurements came from
    evidence_sources: list[dict[str, Any]] = []
    #: the articles' command lines, judged by what they did in notebook 01 (measured.command_verdicts)
    commands: list[dict[str, Any]] = []


SUMMARY_SCHEMAS: dict[str, type[BaseModel]] = {
    "00_claims": ClaimsSummary, "01_deployment": DeploymentSummary, "02_speed": SpeedSummary,
    "03_chinese_quality": ChineseSummary, "04_math": MathSummary, "05_code": CodeSummary,
}


def upgrade(section: str, data: dict) -> dict:
    """A summary of an older schema version, brought to the current one. Version 0 speed
    summaries lack the ITL unit (made before it was recorded) and the two later blocks."""
    if data.get("schema_version", 0) >= SCHEMA_VERSION:
        return data
    data = {**data, "schema_version": SCHEMA_VERSION}
    if section == "02_speed":
        data.setdefault("vllm_bench_validation", [])
        data.setdefault("snapshot_claims", {})
        data["rows"] = [{"itl_per": "not recorded (schema 0)", **r} for r in data.get("rows", [])]
    return data


def parse_summary(section: str, data: dict) -> BaseModel:
    """A section's summary.json through its schema (older versions upgraded first)."""
    schema = SUMMARY_SCHEMAS.get(section)
    if schema is None:
        raise KeyError(f"no summary schema for section {section!r}; sections: {sorted(SUMMARY_SCHEMAS)}")
    return schema.model_validate(upgrade(section, data))
