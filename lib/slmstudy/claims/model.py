"""The ledger's data: claims and hardware as validated models, loaded from data/claims.yaml and data/hardware.yaml."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from slmstudy.backends import registry
from slmstudy.paths import PROJECT_DATA_DIR

from .vocabulary import METRIC_UNITS, METRICS, PRECISIONS, SCORE_METRICS, LedgerError, Relation

CLAIMS_PATH = PROJECT_DATA_DIR / "claims.yaml"
HARDWARE_PATH = PROJECT_DATA_DIR / "hardware.yaml"

# ---------------------------------------------------------------------------------------------
# Data models
# ---------------------------------------------------------------------------------------------


class Claim(BaseModel):
    """One quantitative statement of one article, with the verbatim quote it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str  # a<article>-<section>-<model>-<what>, e.g. a001-3.2-qwen05b-toks
    article: str  # file stem prefix of the seed article, "000".."004"
    section: str  # section number as written in the article ("3" for an unnumbered table)
    quote: str  # verbatim fragment of the article that states the number
    model: str | None  # registry key, or null for a claim about no registered model
    metric: str  # one of METRICS
    value: float
    unit: str  # must equal METRIC_UNITS[metric]
    precision: str | None  # one of PRECISIONS, or null when the article does not say
    hardware: str | None  # key into hardware.yaml, or null
    engine: str | None  # a registered engine (backends.registry), or null
    benchmark: str | None  # benchmark name for score metrics, else null
    relation: Relation = "~"  # how the article bounds the value (">100" -> ">")
    value_high: float | None = None  # upper end of a stated range ("2-4x")
    prompt_tokens: int | None = None  # workload stated with a speed/latency claim
    output_tokens: int | None = None
    derived_from: dict[str, str] | None = None  # metric -> claim id (e2e_s uses ttft_ms, decode_tok_s)
    # the hardware the article recommends for this setup, when the claim itself names none
    hardware_options: list[str] | None = None
    # the model a comparison claim compares with (a key of data/published_scores.yaml)
    reference: str | None = None
    # engine settings the article's own command line states (e.g. gpu_memory_utilization: 0.9)
    engine_options: dict[str, float | int | str | bool] | None = None
    # a weight format a vendor_publishes claim is about ("gguf", "onnx"; data/published_artifacts.yaml)
    artifact: str | None = None
    # a model family a released_size_b claim is about (a key of data/published_families.yaml)
    family: str | None = None
    # the server feature a feature_supported claim is about (a probe of deployment.probe_server)
    feature: str | None = None
    note: str | None = None  # what the ledger inferred or knows beyond the quote

    @model_validator(mode="before")
    @classmethod
    def _coerce_numbers(cls, data: Any) -> Any:
        # strict mode would reject an int where a float is expected (value: 7)
        if isinstance(data, dict):
            data = dict(data)
            for key in ("value", "value_high"):
                if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
                    data[key] = float(data[key])
        return data

    @model_validator(mode="after")
    def _check_vocabulary(self) -> "Claim":
        if not re.fullmatch(r"\d{3}", self.article):
            raise ValueError(f"article must be a quoted 3-digit file stem like '001', got {self.article!r}")
        if not self.id.startswith(f"a{self.article}-"):
            raise ValueError(f"id {self.id!r} must start with 'a{self.article}-' (its article)")
        if self.metric not in METRIC_UNITS:
            raise ValueError(f"metric {self.metric!r} is not one of {', '.join(METRICS)}")
        if self.unit != METRIC_UNITS[self.metric]:
            raise ValueError(
                f"unit {self.unit!r} does not fit metric {self.metric!r}; expected {METRIC_UNITS[self.metric]!r}"
            )
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)} (or null)")
        if self.engine is not None and self.engine not in registry.names():
            raise ValueError(f"engine {self.engine!r} is not one of "
                             f"{', '.join(registry.names())} (or null)")
        if (self.metric in SCORE_METRICS) != (self.benchmark is not None):
            raise ValueError("benchmark must be set for score metrics and only for them")
        if self.value_high is not None and self.value_high < self.value:
            raise ValueError(f"value_high {self.value_high} is below value {self.value}")
        if not self.quote.strip():
            raise ValueError("quote is empty")
        return self


class Hardware(BaseModel):
    """Datasheet figures of one GPU/CPU, with the vendor source they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["gpu", "cpu", "soc"]
    memory_gib: float | None  # device memory (GPU/SoC) in GiB, as labelled ("12 GB" = 12 GiB); null for a CPU

    @property
    def memory_bytes(self) -> float | None:
        """Device memory in bytes: the label's number x 2**30 (a "12 GB" card has 12 GiB)."""
        return None if self.memory_gib is None else self.memory_gib * 2**30
    memory_type: str | None
    bandwidth_gb_s: float | None  # peak memory bandwidth, GB/s; null when no vendor figure
    bandwidth_basis: str | None  # "datasheet", or how it is derived from datasheet figures
    cores: int | None  # CPU cores
    threads: int | None
    source: str  # vendor spec page title and URL
    # peak dense arithmetic rate of the fastest path an engine can use for prefill matmuls
    # (int8 dot products on a CPU with VNNI), operations/s (a multiply-add = 2); None = not recorded
    peak_ops_s: float | None = None
    peak_ops_basis: str | None = None  # how peak_ops_s is derived, with its sources


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict, the evidence (arithmetic with numbers) and what it rests on."""

    verdict: str  # one of VERDICTS
    evidence: str
    basis: str = "none"  # "arithmetic" | "config" | "physics" | "datasheet" | "measurement" | "none"


@dataclass(frozen=True)
class ArchSpec:
    """The architecture facts the rules need, read from one entry of the `arch` table."""

    key: str
    params: int
    context: int
    embedding_params: int  # one vocab x hidden matrix
    tied_embeddings: bool
    context_extended: int | None = None  # with the vendor's documented RoPE scaling (e.g. YaRN)
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None


# ---------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------

REQUIRED_CLAIM_KEYS = (
    "id", "article", "section", "quote", "model", "metric", "value", "unit",
    "precision", "hardware", "engine", "benchmark",
)  # fmt: skip


def _read_yaml_mapping(path: Path, top_key: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise LedgerError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LedgerError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or set(data) != {top_key}:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise LedgerError(f"{path}: expected a mapping with the single top-level key {top_key!r}, found {found}")
    return data[top_key]


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc + ': ' if loc else ''}{err['msg']}")
    return "; ".join(parts)


def parse_claim(entry: Any, *, where: str) -> Claim:
    """Validate one raw YAML entry; errors name `where` (file and entry), the id and the key."""
    if not isinstance(entry, dict):
        raise LedgerError(f"{where}: expected a mapping, found {type(entry).__name__}")
    label = f"{where} (id {entry.get('id')!r})"
    allowed = set(Claim.model_fields)
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise LedgerError(
            f"{label}: unknown key {unknown[0]!r}" + (f" (and {unknown[1:]})" if unknown[1:] else "")
            + f"; allowed keys: {', '.join(Claim.model_fields)}"
        )
    missing = [k for k in REQUIRED_CLAIM_KEYS if k not in entry]
    if missing:
        raise LedgerError(f"{label}: missing key {missing[0]!r}; every claim lists "
                          f"{', '.join(REQUIRED_CLAIM_KEYS)} (null where none)")
    try:
        return Claim.model_validate(entry)
    except ValidationError as exc:
        raise LedgerError(f"{label}: {_validation_message(exc)}") from None


def load_claims(
    path: str | Path = CLAIMS_PATH,
    *,
    model_keys: Iterable[str] | None = None,
    hardware_keys: Iterable[str] | None = None,
) -> list[Claim]:
    """Load and validate the claims file.

    Checks every entry's keys, types and vocabulary, that ids are unique, that `derived_from`
    points at existing claims, and (when given) that model and hardware keys exist.
    """
    path = Path(path)
    raw = _read_yaml_mapping(path, "claims")
    if not isinstance(raw, list):
        raise LedgerError(f"{path}: 'claims' must be a list, found {type(raw).__name__}")
    claims = [parse_claim(entry, where=f"{path}: claims[{i}]") for i, entry in enumerate(raw)]

    duplicates = [cid for cid, n in Counter(c.id for c in claims).items() if n > 1]
    if duplicates:
        raise LedgerError(f"{path}: duplicate claim id {duplicates[0]!r}")
    ids = {c.id for c in claims}
    models = set(model_keys) if model_keys is not None else None
    hardware = set(hardware_keys) if hardware_keys is not None else None
    for c in claims:
        if models is not None and c.model is not None and c.model not in models:
            raise LedgerError(f"{path}: claim {c.id!r}: unknown model {c.model!r}; known: {', '.join(sorted(models))}")
        for option in c.hardware_options or ():
            if hardware is not None and option not in hardware:
                raise LedgerError(f"{path}: claim {c.id!r}: unknown hardware option {option!r}; add it to "
                                  f"hardware.yaml or use one of {', '.join(sorted(hardware))}")
        if hardware is not None and c.hardware is not None and c.hardware not in hardware:
            raise LedgerError(
                f"{path}: claim {c.id!r}: unknown hardware {c.hardware!r}; add it to hardware.yaml "
                f"or use one of {', '.join(sorted(hardware))}"
            )
        for metric, ref in (c.derived_from or {}).items():
            if ref not in ids:
                raise LedgerError(f"{path}: claim {c.id!r}: derived_from {metric!r} names unknown claim {ref!r}")
    return claims


def load_hardware(path: str | Path = HARDWARE_PATH) -> dict[str, Hardware]:
    """Load and validate the hardware datasheet table (key -> Hardware)."""
    path = Path(path)
    raw = _read_yaml_mapping(path, "hardware")
    if not isinstance(raw, dict):
        raise LedgerError(f"{path}: 'hardware' must be a mapping of key -> entry")
    table: dict[str, Hardware] = {}
    for key, entry in raw.items():
        where = f"{path}: hardware {key!r}"
        if not isinstance(entry, dict):
            raise LedgerError(f"{where}: expected a mapping, found {type(entry).__name__}")
        unknown = sorted(set(entry) - set(Hardware.model_fields))
        if unknown:
            raise LedgerError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(Hardware.model_fields)}")
        missing = [k for k, f in Hardware.model_fields.items() if f.is_required() and k not in entry]
        if missing:
            raise LedgerError(f"{where}: missing key {missing[0]!r} (write null where unknown)")
        try:
            table[key] = Hardware.model_validate(entry)
        except ValidationError as exc:
            raise LedgerError(f"{where}: {_validation_message(exc)}") from None
    return table


def arch_spec(arch: Mapping[str, Mapping[str, Any]], model: str) -> ArchSpec:
    """Read one model's entry of the architecture table.

    Required: `params`, `context`, and either `embedding_params` or `hidden` and `vocab`.
    Optional: `tied_embeddings` (default False), `context_extended`, `layers`, `kv_heads`,
    `head_dim`. Other keys are ignored (the registry may carry more).
    """
    if model not in arch:
        raise KeyError(f"model {model!r} is not in the architecture table (known: {', '.join(sorted(arch))})")
    entry = arch[model]
    for key in ("params", "context"):
        if key not in entry:
            raise LedgerError(f"architecture entry {model!r}: missing {key!r}")
    if "embedding_params" in entry:
        embedding = int(entry["embedding_params"])
    elif "hidden" in entry and "vocab" in entry:
        embedding = int(entry["hidden"]) * int(entry["vocab"])
    else:
        raise LedgerError(f"architecture entry {model!r}: give 'embedding_params' or both 'hidden' and 'vocab'")

    def optional_int(key: str) -> int | None:
        return int(entry[key]) if entry.get(key) is not None else None

    return ArchSpec(
        key=model,
        params=int(entry["params"]),
        context=int(entry["context"]),
        embedding_params=embedding,
        tied_embeddings=bool(entry.get("tied_embeddings", False)),
        context_extended=optional_int("context_extended"),
        layers=optional_int("layers"),
        kv_heads=optional_int("kv_heads"),
        head_dim=optional_int("head_dim"),
    )


MeasurementKey = tuple[str | None, str, str | None, str | None]  # (model, metric, precision, hardware)


def measurement_metric(claim: Claim) -> str:
    """The metric part of a measurement key: the claim's metric, or 'benchmark_score:<benchmark>'."""
    return f"{claim.metric}:{claim.benchmark}" if claim.benchmark else claim.metric


def measurement_key(claim: Claim) -> MeasurementKey:
    """(model, metric, precision, hardware) exactly as the claim states them.

    A claim without hardware matches only a measurement keyed with hardware None
    (hardware-independent figures such as a weights file size).
    """
    return (claim.model, measurement_metric(claim), claim.precision, claim.hardware)
