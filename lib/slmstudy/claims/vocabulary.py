"""Verdict vocabulary, metrics and their units, precisions, and the tolerances each verdict states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    "concurrent_requests": "requests",  # requests served at once by a server (batch, concurrency)
    "score_close_to": "points",  # "close to / on a par with <reference model>" on a benchmark
    "uses_alibi": "yes/no",  # the architecture adds ALiBi attention biases (1 = the article says so)
    "feature_supported": "yes/no",  # an engine's server offers `feature` (a notebook 01 probe name)
    "released_size_b": "B",  # a model size the article names in a family (`family`) the vendor released
    "vendor_publishes": "yes/no",  # the makers publish weights in `artifact`'s format (0 = "convert it yourself")
    "pins_resolve": "yes/no",  # the article's package version pins install together (data/article003_pins.yaml)
    "remote_code_needed": "yes/no",  # the model loads only with trust_remote_code=True on the pinned transformers
}
METRICS = tuple(METRIC_UNITS)
SCORE_METRICS = ("benchmark_score", "rubric_score", "score_close_to")
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
CHARS_ROUNDING_TOL = 0.10  # "百万汉字" (a million characters) is a round number: read as at least 900,000
E2E_REL_TOL = 0.05  # internal arithmetic of a row of TTFT, tokens/s and total time
DATASHEET_REL_TOL = 0.05  # claimed hardware memory size vs datasheet
MEASUREMENT_REL_TOL = 0.25  # claim vs this study's measurement (engines and versions differ)
COMPARISON_TOL = 5.0  # points: "close to" / "on a par with" another model's score
PUBLISHED_SCORE_TOL = 1.0  # points: a claimed '~69' against a published 68.8 is rounding
RESERVATION_REL_TOL = 0.10  # device memory in use vs what the engine reserves (CUDA context, rounding)


class LedgerError(ValueError):
    """A claims or hardware file is malformed; the message names the file, entry and key."""
