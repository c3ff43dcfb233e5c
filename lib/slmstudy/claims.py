"""Claims ledger: the seed articles' quantitative claims, judged by physics, arithmetic and measurement.

`data/claims.yaml` lists every number the five articles state (model sizes, parameter counts,
context lengths, memory, speed, scores), each with the verbatim Chinese quote it comes from.
`data/hardware.yaml` holds vendor datasheet figures for the GPUs/CPUs the articles name.
This module loads and validates both files and gives each claim a verdict:

- "consistent": the arithmetic, the architecture config, the datasheet or a measurement agrees;
- "inconsistent": it disagrees beyond the stated tolerance;
- "physically impossible": it exceeds a hard bound (decode speed above the memory-bandwidth
  roofline; memory smaller than the weights it must hold);
- "not testable here": nothing in this study can check it (the reason is given).

Everything here is pure: no model loading, no network. The architecture table is passed in as a
plain dict (`arch: dict[str, dict]`, model key -> {params, context, hidden, vocab, tied_embeddings,
...}) so that this module does not depend on the model registry.

Units: GB = 1e9 bytes (GiB = 2**30 bytes is shown alongside where articles may mean it);
tokens/s at batch 1.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from slmstudy.backends import registry
from slmstudy.paths import PROJECT_DATA_DIR

CLAIMS_PATH = PROJECT_DATA_DIR / "claims.yaml"
HARDWARE_PATH = PROJECT_DATA_DIR / "hardware.yaml"

# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

CONSISTENT = "consistent"
INCONSISTENT = "inconsistent"
IMPOSSIBLE = "physically impossible"
NOT_TESTABLE = "not testable here"
VERDICTS = (CONSISTENT, INCONSISTENT, IMPOSSIBLE, NOT_TESTABLE)

#: metric -> the one unit a claim of that metric must be written in
METRIC_UNITS: dict[str, str] = {
    "params_b": "B",  # parameter count, billions
    "weights_gb": "GB",  # size of the weight files (on disk / download)
    "context_tokens": "tokens",  # maximum context length
    "context_chars": "chars",  # characters of text said to fit in the context
    "vram_gb": "GB",  # device memory in use (occupied or peak) while serving
    "min_vram_gb": "GB",  # stated device-memory requirement
    "min_ram_gb": "GB",  # stated host-memory requirement
    "min_disk_gb": "GB",  # stated free-disk requirement
    "load_s": "s",  # model load time
    "ttft_ms": "ms",  # time to first token
    "decode_tok_s": "tok/s",  # generation speed, one request (batch 1)
    "e2e_s": "s",  # end-to-end time of one request
    "cpu_util_pct": "%",  # CPU utilisation
    "benchmark_score": "points",  # score on a 0-100 scale (accuracy %, pass@1 %)
    "rubric_score": "points/5",  # hand-scored rubric, 5-point scale
    "relative_gain_pct": "%",  # "improved by N%" against an unstated baseline
    "throughput_gain_x": "x",  # throughput ratio between engines
    "language_count": "languages",  # number of supported natural languages
    "device_memory_gb": "GB",  # a datasheet figure of the named hardware (memory size)
    "cpu_cores": "cores",  # a datasheet figure of the named hardware (core count)
}
METRICS = tuple(METRIC_UNITS)
SCORE_METRICS = ("benchmark_score", "rubric_score")
MEMORY_METRICS = ("vram_gb", "min_vram_gb", "min_ram_gb", "min_disk_gb")


Relation = Literal["=", "~", ">", ">=", "<", "<="]


@dataclass(frozen=True)
class PrecisionSpec:
    """Stored bits per weight of a weight format, quantization scales included.

    `embedding_bits` is set for formats that keep the embedding and output (lm_head) matrices
    unquantized (AWQ, bitsandbytes); otherwise every matrix is taken at `bits_per_weight`.
    """

    bits_per_weight: float
    description: str
    embedding_bits: float | None = None


#: Weight formats named in the claims. Bits per weight include scales/zero-points.
PRECISIONS: dict[str, PrecisionSpec] = {
    "fp32": PrecisionSpec(32.0, "IEEE float32"),
    "fp16": PrecisionSpec(16.0, "IEEE float16"),
    "bf16": PrecisionSpec(16.0, "bfloat16 (how the HF checkpoints are stored)"),
    "int8": PrecisionSpec(8.0, "8-bit integer weights; per-channel scales are negligible"),
    # GGUF Q8_0: blocks of 32 int8 weights + one fp16 scale = 34 bytes / 32 weights
    "q8_0": PrecisionSpec(8.5, "GGUF Q8_0"),
    # GGUF Q6_K: 210 bytes per 256-weight super-block
    "q6_k": PrecisionSpec(6.5625, "GGUF Q6_K"),
    # GGUF Q4_1: 32 x 4 bit + fp16 scale + fp16 min = 20 bytes / 32 weights
    "q4_1": PrecisionSpec(5.0, "GGUF Q4_1"),
    # GGUF Q4_K_M: mostly Q4_K (144 bytes / 256 = 4.5 bpw) with some tensors at Q6_K;
    # whole-file average ~4.85 bits/weight (a Qwen2.5-7B Q4_K_M file is ~4.7 GB)
    "q4_k_m": PrecisionSpec(4.85, "GGUF Q4_K_M (file average)"),
    # GGUF Q4_0: 32 x 4 bit + fp16 scale = 18 bytes / 32 weights
    "q4_0": PrecisionSpec(4.5, "GGUF Q4_0"),
    # an unspecified 4-bit GGUF ("Q4" in an article): taken at its most compact common form, Q4_0
    "q4": PrecisionSpec(4.5, "unspecified 4-bit GGUF, taken as Q4_0"),
    # generic int4 with a 16-bit scale per 32-weight block (e.g. onnxruntime-genai MatMulNBits)
    "int4": PrecisionSpec(4.5, "4-bit weights + 16-bit scale per 32-weight block"),
    # AWQ W4 g128: 4 bit + fp16 scale/128 + 4-bit zero/128 = 4.156 bpw; embed_tokens and lm_head
    # stay fp16
    "awq": PrecisionSpec(4.15625, "AWQ 4-bit, group 128; embeddings/lm_head fp16", 16.0),
    # bitsandbytes NF4: 64-weight blocks with an fp32 absmax (no double quantization) = 4.5 bpw;
    # embeddings and lm_head are not quantized
    "nf4": PrecisionSpec(4.5, "bitsandbytes NF4, block 64; embeddings/lm_head 16-bit", 16.0),
}

# ---------------------------------------------------------------------------------------------
# Tolerances (each verdict's evidence states the one it used)
# ---------------------------------------------------------------------------------------------

PARAMS_REL_TOL = 0.10  # "7B" for 7.62B is a name, not a miscount; 10x off is
SIZE_REL_TOL = 0.25  # claimed weights size vs params x bytes/param
MEMORY_ROUNDING_TOL = 0.10  # weights may exceed a claimed "about N GB" by this much (rounding)
MEMORY_IMPOSSIBLE_RATIO = 1.25  # weights > 1.25 x claimed device memory: cannot be resident
CONTEXT_REL_TOL = 0.03  # "128K" = 131072 or 128000
E2E_REL_TOL = 0.05  # internal arithmetic of a row of TTFT, tokens/s and total time
DATASHEET_REL_TOL = 0.05  # claimed hardware memory size vs datasheet
MEASUREMENT_REL_TOL = 0.25  # claim vs this study's measurement (engines and versions differ)


class LedgerError(ValueError):
    """A claims or hardware file is malformed; the message names the file, entry and key."""


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
    memory_gb: float | None  # device memory (GPU/SoC); null for a CPU (RAM belongs to the machine)
    memory_type: str | None
    bandwidth_gb_s: float | None  # peak memory bandwidth, GB/s; null when no vendor figure
    bandwidth_basis: str | None  # "datasheet", or how it is derived from datasheet figures
    cores: int | None  # CPU cores
    threads: int | None
    source: str  # vendor spec page title and URL


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
        missing = [k for k in Hardware.model_fields if k not in entry]
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


# ---------------------------------------------------------------------------------------------
# Physics and arithmetic
# ---------------------------------------------------------------------------------------------


def embedding_matrix_params(spec: ArchSpec) -> int:
    """Parameters in the embedding/output matrices: vocab x hidden, twice unless tied."""
    return spec.embedding_params * (1 if spec.tied_embeddings else 2)


def weights_bytes(spec: ArchSpec, precision: str) -> float:
    """Bytes of all stored weights: (params - E) x bits/8 + E x embedding_bits/8.

    E = embedding_matrix_params; embedding_bits = bits_per_weight unless the format keeps
    embeddings unquantized (AWQ, NF4).
    """
    p = PRECISIONS[precision]
    e = embedding_matrix_params(spec)
    emb_bits = p.embedding_bits if p.embedding_bits is not None else p.bits_per_weight
    return ((spec.params - e) * p.bits_per_weight + e * emb_bits) / 8


def bytes_read_per_token(spec: ArchSpec, precision: str) -> float:
    """Bytes of weights one batch-1 decode step reads.

    Every weight is read once except the input-embedding table, of which only one row
    (negligible, not counted) is read. Untied: all weights minus one vocab x hidden matrix;
    tied: the shared matrix is read once, as the output layer, so all weights count.
    = (params - E) x bits/8 + vocab x hidden x embedding_bits/8.
    """
    p = PRECISIONS[precision]
    e = embedding_matrix_params(spec)
    emb_bits = p.embedding_bits if p.embedding_bits is not None else p.bits_per_weight
    return ((spec.params - e) * p.bits_per_weight + spec.embedding_params * emb_bits) / 8


def roofline_tok_s(bandwidth_gb_s: float, bytes_per_token: float) -> float:
    """Upper bound on batch-1 decode speed: memory bandwidth / bytes read per token."""
    return bandwidth_gb_s * 1e9 / bytes_per_token


def kv_cache_bytes(spec: ArchSpec, tokens: int, bytes_per_element: float = 2.0) -> float | None:
    """KV cache of one sequence: 2 (K and V) x layers x kv_heads x head_dim x bytes x tokens.

    None when the architecture entry lacks layers/kv_heads/head_dim. fp16 cache by default.
    """
    if spec.layers is None or spec.kv_heads is None or spec.head_dim is None:
        return None
    return 2 * spec.layers * spec.kv_heads * spec.head_dim * bytes_per_element * tokens


def most_compact_precision(spec: ArchSpec, size: Callable[[ArchSpec, str], float]) -> str:
    """The known format with the fewest bytes by `size` (weights_bytes or bytes_read_per_token).

    Used when an article does not state the precision: the most permissive assumption.
    """
    return min(PRECISIONS, key=lambda name: size(spec, name))


def relative_difference(claimed: float, reference: float) -> float:
    """(claimed - reference) / reference."""
    return (claimed - reference) / reference


# ---------------------------------------------------------------------------------------------
# Formatting helpers for evidence strings
# ---------------------------------------------------------------------------------------------


def format_gb(n_bytes: float) -> str:
    """'15.23 GB (14.18 GiB)'."""
    return f"{n_bytes / 1e9:.2f} GB ({n_bytes / 2**30:.2f} GiB)"


def format_params(n: float) -> str:
    return f"{n / 1e9:.3g}B"


def format_claimed(claim: Claim) -> str:
    """The claimed value as the article bounds it, e.g. '>100 tok/s', '~28 GB'."""
    rel = "" if claim.relation == "=" else claim.relation
    value = f"{claim.value:g}" + (f"-{claim.value_high:g}" if claim.value_high is not None else "")
    return f"{rel}{value} {claim.unit}"


def format_pct(x: float) -> str:
    return f"{x * 100:+.0f}%"


# ---------------------------------------------------------------------------------------------
# Rules (one per metric family). Each returns a Verdict from physics/arithmetic/datasheet alone.
# ---------------------------------------------------------------------------------------------

NOT_TESTABLE_REASONS: dict[str, str] = {
    "load_s": "load time depends on disk, page cache and engine start-up; no physical bound is checked, "
    "only a measurement on the same hardware can test it",
    "ttft_ms": "TTFT depends on prompt length, engine and compute; only a measurement on the same "
    "hardware can test it",
    "cpu_util_pct": "CPU utilisation is an observation of one run, not derivable from physics",
    "benchmark_score": "a benchmark score needs an evaluation run of that benchmark with this model, "
    "under the article's (unstated) prompt and scoring protocol",
    "rubric_score": "the article's own hand-scored prompts; its prompts, rubric and raters are not published",
    "relative_gain_pct": "an improvement against an unstated baseline",
    "throughput_gain_x": "a throughput ratio between engines under an unstated workload",
    "language_count": "a count of supported languages is a vendor statement, not measurable here",
}


def _no_model(claim: Claim, arch: Mapping[str, Mapping[str, Any]]) -> Verdict | None:
    if claim.model is None:
        return Verdict(NOT_TESTABLE, "no registered model is named by this claim", "none")
    if claim.model not in arch:
        return Verdict(NOT_TESTABLE, f"model {claim.model!r} is not in the architecture table", "none")
    return None


def judge_params(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Claimed parameter count vs the architecture config: |claimed - actual| / actual <= 10%."""
    spec = arch_spec(arch, claim.model)
    diff = relative_difference(claim.value * 1e9, spec.params)
    evidence = (
        f"config: {spec.params:,} parameters ({format_params(spec.params)}); claimed {format_claimed(claim)} "
        f"is {format_pct(diff)} off (tolerance ±{PARAMS_REL_TOL:.0%})"
    )
    return Verdict(CONSISTENT if abs(diff) <= PARAMS_REL_TOL else INCONSISTENT, evidence, "config")


def _closest_precision(spec: ArchSpec, claimed_bytes: float) -> tuple[str, float]:
    name = min(PRECISIONS, key=lambda n: abs(math.log(weights_bytes(spec, n) / claimed_bytes)))
    return name, weights_bytes(spec, name)


def judge_weights_size(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Claimed weights size vs params x bytes/param at the stated precision (±25%)."""
    spec = arch_spec(arch, claim.model)
    claimed = claim.value * 1e9
    closest, closest_bytes = _closest_precision(spec, claimed)
    if claim.precision is None:
        return Verdict(
            NOT_TESTABLE,
            f"the article states no precision; {format_claimed(claim)} is closest to {closest} "
            f"({closest_bytes / 1e9:.2f} GB)",
            "none",
        )
    expected = weights_bytes(spec, claim.precision)
    bits = PRECISIONS[claim.precision].bits_per_weight
    diff = relative_difference(claimed, expected)
    evidence = (
        f"{spec.params / 1e9:.3g}B params x {bits:g} bits/8 ({claim.precision}"
        + (", embeddings 16-bit" if PRECISIONS[claim.precision].embedding_bits else "")
        + f") = {format_gb(expected)}; claimed {format_claimed(claim)} is {format_pct(diff)} off "
        f"(tolerance ±{SIZE_REL_TOL:.0%})"
    )
    if abs(diff) <= SIZE_REL_TOL:
        return Verdict(CONSISTENT, evidence, "arithmetic")
    return Verdict(INCONSISTENT, evidence + f"; the claimed size fits {closest} "
                   f"({closest_bytes / 1e9:.2f} GB) instead", "arithmetic")


def judge_memory(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Memory claims are lower-bounded by the weights they must hold (whole model resident).

    ratio = weights_bytes / claimed. ratio <= 1.10 (rounding of "about N GB"): consistent, a
    lower-bound check only (KV cache, activations and engine reservations are not counted).
    Device memory or disk: 1.10 < ratio <= 1.25 inconsistent, above 1.25 physically impossible.
    Host RAM: above 1.10 inconsistent (weights could be paged from disk, slowly).
    A device-memory use above the named GPU's memory is physically impossible.
    """
    spec = arch_spec(arch, claim.model)
    claimed = claim.value * 1e9
    notes: list[str] = []
    if claim.precision is not None:
        precision = claim.precision
    else:
        precision = most_compact_precision(spec, weights_bytes)
        if weights_bytes(spec, "bf16") <= claimed * (1 + MEMORY_ROUNDING_TOL):
            notes.append("precision not stated; even 16-bit weights fit")
            precision = "bf16"
        else:
            notes.append(
                f"precision not stated; checked at the most compact known format, {precision} "
                f"({PRECISIONS[precision].bits_per_weight:.3g} bits/weight)"
            )
    w = weights_bytes(spec, precision)
    ratio = w / claimed
    what = {"vram_gb": "device memory in use", "min_vram_gb": "device memory requirement",
            "min_ram_gb": "RAM requirement", "min_disk_gb": "disk requirement"}[claim.metric]  # fmt: skip
    evidence = (
        f"weights at {precision}: {format_gb(w)}; claimed {what} {format_claimed(claim)}; "
        f"weights / claimed = {ratio:.2f}"
    )
    if notes:
        evidence = "; ".join(notes) + "; " + evidence
    if claim.metric == "vram_gb" and claim.hardware and hardware.get(claim.hardware) is not None:
        hw = hardware[claim.hardware]
        if hw.memory_gb is not None and claim.value > hw.memory_gb:
            return Verdict(IMPOSSIBLE, evidence + f"; but {hw.name} has only {hw.memory_gb:g} GB", "physics")
    if ratio <= 1 + MEMORY_ROUNDING_TOL:
        return Verdict(
            CONSISTENT,
            evidence + f" <= {1 + MEMORY_ROUNDING_TOL:.2f} (lower-bound check only: KV cache, activations "
            "and engine reservations are not counted)",
            "physics",
        )
    if claim.metric == "min_ram_gb":
        return Verdict(
            INCONSISTENT,
            evidence + f" > {1 + MEMORY_ROUNDING_TOL:.2f}: the weights alone do not fit in the stated RAM "
            "(it could only run by paging weights from disk every token)",
            "physics",
        )
    if ratio <= MEMORY_IMPOSSIBLE_RATIO:
        return Verdict(
            INCONSISTENT,
            evidence + f" in ({1 + MEMORY_ROUNDING_TOL:.2f}, {MEMORY_IMPOSSIBLE_RATIO:.2f}]: the weights alone "
            "exceed the stated memory by more than rounding",
            "physics",
        )
    return Verdict(
        IMPOSSIBLE,
        evidence + f" > {MEMORY_IMPOSSIBLE_RATIO:.2f}: the weights alone cannot fit (no CPU offload is stated)",
        "physics",
    )


def judge_decode_speed(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Batch-1 decode tok/s <= bandwidth / bytes read per token; above it is physically impossible.

    Without a stated precision the bound is taken at the most compact known format (the most
    permissive assumption). An upper-bound claim ("< N tok/s") cannot break the roofline.
    """
    spec = arch_spec(arch, claim.model)
    if claim.precision is not None:
        precision, assumed = claim.precision, ""
    else:
        precision = most_compact_precision(spec, bytes_read_per_token)
        assumed = (
            f"precision not stated; assuming the most compact known format, {precision} "
            f"({PRECISIONS[precision].bits_per_weight:.3g} bits/weight); "
        )
    per_token = bytes_read_per_token(spec, precision)
    if claim.hardware is None or claim.hardware not in hardware:
        need = claim.value * per_token / 1e9
        why = "no hardware stated" if claim.hardware is None else f"hardware {claim.hardware!r} not in the table"
        fast_enough = [hw.name for hw in hardware.values() if hw.bandwidth_gb_s and hw.bandwidth_gb_s >= need]
        return Verdict(
            NOT_TESTABLE,
            f"{why}; {assumed}{format_claimed(claim)} at {precision} reads {format_gb(per_token)}/token "
            f"and needs >= {need:.0f} GB/s of memory bandwidth; in the hardware table "
            + (", ".join(fast_enough) + " would have it" if fast_enough else "none has it"),
            "none",
        )
    hw = hardware[claim.hardware]
    if hw.bandwidth_gb_s is None:
        return Verdict(NOT_TESTABLE, f"no vendor bandwidth figure for {hw.name}", "none")
    bound = roofline_tok_s(hw.bandwidth_gb_s, per_token)
    frac = claim.value / bound
    evidence = (
        f"{assumed}{hw.name} {hw.bandwidth_gb_s:g} GB/s / {format_gb(per_token)} read per token at {precision} "
        f"= {bound:.1f} tok/s batch-1 roofline; claimed {format_claimed(claim)} is {frac:.0%} of it"
    )
    if claim.relation in ("<", "<="):
        return Verdict(CONSISTENT, evidence + " (an upper bound cannot exceed the roofline)", "physics")
    exceeds = claim.value >= bound if claim.relation == ">" else claim.value > bound
    return Verdict(IMPOSSIBLE if exceeds else CONSISTENT, evidence, "physics")


def judge_context(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Claimed maximum context vs the config's max_position_embeddings (or its documented
    RoPE-scaled extension); and, with hardware and precision, weights + one full-length KV cache
    (fp16) must fit in device memory.
    """
    spec = arch_spec(arch, claim.model)
    tokens = claim.value
    native = abs(relative_difference(tokens, spec.context)) <= CONTEXT_REL_TOL
    extended = (spec.context_extended is not None
                and abs(relative_difference(tokens, spec.context_extended)) <= CONTEXT_REL_TOL)
    config_text = f"config: {spec.context:,} tokens" + (
        f" ({spec.context_extended:,} with the vendor's RoPE scaling, e.g. YaRN, which the shipped "
        "config does not enable)"
        if spec.context_extended
        else ""
    )
    if not (native or extended):
        return Verdict(INCONSISTENT, f"{config_text}; claimed {format_claimed(claim)} matches neither", "config")
    evidence = (f"{config_text}; claimed {format_claimed(claim)} matches"
                + (" the extended length" if extended and not native else ""))
    if claim.hardware and claim.precision and claim.hardware in hardware:
        hw = hardware[claim.hardware]
        kv = kv_cache_bytes(spec, int(tokens))
        if kv is not None and hw.memory_gb is not None:
            w = weights_bytes(spec, claim.precision)
            total = w + kv
            mem_text = (
                f"; weights at {claim.precision} {format_gb(w)} + fp16 KV cache for {int(tokens):,} tokens "
                f"(2 x {spec.layers} layers x {spec.kv_heads} kv heads x {spec.head_dim} x 2 B x tokens) "
                f"{format_gb(kv)} = {total / 1e9:.2f} GB vs {hw.name} {hw.memory_gb:g} GB"
            )
            if total > hw.memory_gb * 1e9:
                return Verdict(IMPOSSIBLE, evidence + mem_text + ": one full-length sequence cannot fit", "physics")
            return Verdict(CONSISTENT, evidence + mem_text, "physics")
    return Verdict(CONSISTENT, evidence, "config")


def judge_context_chars(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Characters said to fit in the context: needs the tokenizer's chars/token on such text."""
    spec = arch_spec(arch, claim.model)
    context = spec.context_extended or spec.context
    return Verdict(
        NOT_TESTABLE,
        f"{claim.value:,.0f} characters in {context:,} tokens would need {claim.value / context:.1f} characters "
        "per token; testing it needs the tokenizer's characters/token on Chinese text",
        "none",
    )


def judge_e2e(claim: Claim, arch, hardware, ledger) -> Verdict:
    """End-to-end time vs the same row's TTFT and tokens/s, N = output_tokens:

    this study's definitions give E2E = TTFT + (N - 1) / decode tok/s; an article may instead
    report tokens/s as N / E2E. Consistent if either matches within 5%.
    """
    refs = claim.derived_from or {}
    if ledger is None or claim.output_tokens is None or not {"ttft_ms", "decode_tok_s"} <= set(refs):
        return Verdict(NOT_TESTABLE, "needs output_tokens and the TTFT and tokens/s claims it derives from", "none")
    ttft_s = ledger[refs["ttft_ms"]].value / 1000
    rate = ledger[refs["decode_tok_s"]].value
    n = claim.output_tokens
    e2e_decode = ttft_s + (n - 1) / rate
    e2e_average = n / rate
    evidence = (
        f"N = {n}; TTFT + (N-1)/rate = {ttft_s:.2f} + {n - 1}/{rate:g} = {e2e_decode:.2f} s "
        f"({format_pct(relative_difference(claim.value, e2e_decode))}); N/rate = {e2e_average:.2f} s "
        f"({format_pct(relative_difference(claim.value, e2e_average))}); claimed {format_claimed(claim)} "
        f"(tolerance ±{E2E_REL_TOL:.0%})"
    )
    if abs(relative_difference(claim.value, e2e_decode)) <= E2E_REL_TOL:
        return Verdict(CONSISTENT, evidence, "arithmetic")
    if abs(relative_difference(claim.value, e2e_average)) <= E2E_REL_TOL:
        decode_after_first = (n - 1) / (claim.value - ttft_s) if claim.value > ttft_s else math.inf
        return Verdict(
            CONSISTENT,
            evidence + f"; consistent only if the article's tokens/s is N / total time, not a decode rate: "
            f"its decode rate after the first token is then (N-1)/(E2E-TTFT) = {decode_after_first:.1f} tok/s",
            "arithmetic",
        )
    return Verdict(INCONSISTENT, evidence, "arithmetic")


def judge_datasheet(claim: Claim, arch, hardware, ledger) -> Verdict:
    """A figure of the named hardware (memory size, core count) vs its datasheet."""
    if claim.hardware is None or claim.hardware not in hardware:
        return Verdict(NOT_TESTABLE, "hardware not in the datasheet table", "none")
    hw = hardware[claim.hardware]
    if claim.metric == "cpu_cores":
        if hw.cores is None:
            return Verdict(NOT_TESTABLE, f"no core count for {hw.name}", "none")
        ok = int(claim.value) == hw.cores
        return Verdict(CONSISTENT if ok else INCONSISTENT,
                       f"datasheet: {hw.name} has {hw.cores} cores; claimed {format_claimed(claim)}",
                       "datasheet")
    if hw.memory_gb is None:
        return Verdict(NOT_TESTABLE, f"no memory size for {hw.name}", "none")
    diff = relative_difference(claim.value, hw.memory_gb)
    return Verdict(
        CONSISTENT if abs(diff) <= DATASHEET_REL_TOL else INCONSISTENT,
        f"datasheet: {hw.name} {hw.memory_gb:g} GB; claimed {format_claimed(claim)} "
        f"({format_pct(diff)}, tolerance ±{DATASHEET_REL_TOL:.0%})",
        "datasheet",
    )


RULES: dict[str, Callable[..., Verdict]] = {
    "params_b": judge_params,
    "weights_gb": judge_weights_size,
    "context_tokens": judge_context,
    "context_chars": judge_context_chars,
    "vram_gb": judge_memory,
    "min_vram_gb": judge_memory,
    "min_ram_gb": judge_memory,
    "min_disk_gb": judge_memory,
    "decode_tok_s": judge_decode_speed,
    "e2e_s": judge_e2e,
    "device_memory_gb": judge_datasheet,
    "cpu_cores": judge_datasheet,
}
RULES_WITHOUT_MODEL = ("e2e_s", "device_memory_gb", "cpu_cores")
METRICS_WITHOUT_MODEL = RULES_WITHOUT_MODEL + ("throughput_gain_x",)


def not_testable_reason(claim: Claim) -> str:
    """Why a claim that no rule covers cannot be checked here, and how it could be."""
    if claim.model is None and claim.metric not in METRICS_WITHOUT_MODEL:
        return "the claim names no model of the registry" + (f" ({claim.note})" if claim.note else "")
    if claim.metric == "benchmark_score" and claim.benchmark and re.match(r"a\d{3}_", claim.benchmark):
        return "the article's own hand-picked questions, not a public benchmark"
    reason = NOT_TESTABLE_REASONS.get(claim.metric, "no rule for this metric")
    if claim.metric in ("benchmark_score", "load_s", "ttft_ms"):
        reason += f"; comparable once measurements[{measurement_key(claim)!r}] is supplied"
    return reason


def judge_by_physics(
    claim: Claim,
    arch: Mapping[str, Mapping[str, Any]],
    hardware: Mapping[str, Hardware],
    ledger: Mapping[str, Claim] | None = None,
) -> Verdict:
    """The verdict from arithmetic, the config, physics and datasheets alone (no measurements)."""
    rule = RULES.get(claim.metric)
    if rule is None:
        return Verdict(NOT_TESTABLE, not_testable_reason(claim), "none")
    if claim.metric not in RULES_WITHOUT_MODEL:
        missing = _no_model(claim, arch)
        if missing is not None:
            return missing
    return rule(claim, arch, hardware, ledger)


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------

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


def compare_with_measurement(claim: Claim, measured: float) -> Verdict:
    """Claim vs this study's measurement, relative tolerance 25%.

    '~'/'=': |claimed - measured| / measured <= 25%; '>'/'>=': measured >= claimed x 0.75;
    '<'/'<=': measured <= claimed x 1.25.
    """
    tol = MEASUREMENT_REL_TOL
    if claim.relation in (">", ">="):
        ok = measured >= claim.value * (1 - tol)
        test = f"measured >= claimed x {1 - tol:g}"
    elif claim.relation in ("<", "<="):
        ok = measured <= claim.value * (1 + tol)
        test = f"measured <= claimed x {1 + tol:g}"
    else:
        ok = abs(relative_difference(claim.value, measured)) <= tol
        test = f"|claimed - measured| / measured <= {tol:.0%}"
    evidence = (
        f"measured here {measured:g} {claim.unit} vs claimed {format_claimed(claim)} "
        f"({format_pct(relative_difference(claim.value, measured))}); test: {test}"
    )
    return Verdict(CONSISTENT if ok else INCONSISTENT, evidence, "measurement")


def judge(
    claim: Claim,
    arch: Mapping[str, Mapping[str, Any]],
    hardware: Mapping[str, Hardware],
    measurements: Mapping[MeasurementKey, float] | None = None,
    *,
    ledger: Mapping[str, Claim] | None = None,
) -> Verdict:
    """Judge one claim: physics/arithmetic first, then this study's measurement where comparable.

    A physics/arithmetic verdict of inconsistent or impossible stands (a measurement cannot
    overturn it; it is appended to the evidence). Otherwise a measurement with the same
    (model, metric, precision, hardware) key decides. `ledger` (id -> claim) lets a claim be
    checked against the claims it derives from (e2e_s).
    """
    physics = judge_by_physics(claim, arch, hardware, ledger)
    measured = (measurements or {}).get(measurement_key(claim))
    if measured is None:
        return physics
    compared = compare_with_measurement(claim, measured)
    if physics.verdict in (INCONSISTENT, IMPOSSIBLE):
        return Verdict(physics.verdict, f"{physics.evidence}; {compared.evidence}", physics.basis)
    if physics.verdict == CONSISTENT:
        return Verdict(compared.verdict, f"{compared.evidence}; {physics.basis}: {physics.evidence}", "measurement")
    return compared


def judge_all(
    claims: Iterable[Claim],
    arch: Mapping[str, Mapping[str, Any]],
    hardware: Mapping[str, Hardware],
    measurements: Mapping[MeasurementKey, float] | None = None,
) -> dict[str, Verdict]:
    """Judge every claim (claim id -> Verdict), with the claims themselves as the ledger."""
    claims = list(claims)
    ledger = {c.id: c for c in claims}
    return {c.id: judge(c, arch, hardware, measurements, ledger=ledger) for c in claims}


def verdict_counts(verdicts: Mapping[str, Verdict]) -> dict[str, int]:
    """Number of claims per verdict, in VERDICTS order (zeros included)."""
    counts = Counter(v.verdict for v in verdicts.values())
    return {name: counts.get(name, 0) for name in VERDICTS}


def ledger_rows(claims: Iterable[Claim], verdicts: Mapping[str, Verdict]) -> list[dict[str, Any]]:
    """Flat rows (one per claim) for a table in the report: source, claim, verdict, evidence."""
    rows = []
    for c in claims:
        v = verdicts[c.id]
        rows.append(
            {
                "id": c.id,
                "article": c.article,
                "section": c.section,
                "quote": c.quote,
                "model": c.model,
                "metric": c.metric,
                "claimed": format_claimed(c),
                "precision": c.precision,
                "hardware": c.hardware,
                "engine": c.engine,
                "verdict": v.verdict,
                "basis": v.basis,
                "evidence": v.evidence,
                "note": c.note,
            }
        )
    return rows
