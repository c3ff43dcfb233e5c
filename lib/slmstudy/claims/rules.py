"""Rules, one per metric family: each returns a Verdict from physics, arithmetic or a datasheet alone."""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping

from .model import ArchSpec, Claim, Hardware, Verdict, arch_spec, measurement_key
from .physics import (
    bytes_read_per_token,
    format_claimed,
    format_gb,
    format_params,
    format_pct,
    kv_cache_bytes,
    most_compact_precision,
    relative_difference,
    roofline_tok_s,
    weights_bytes,
)
from .vocabulary import (
    CONSISTENT,
    CONTEXT_REL_TOL,
    DATASHEET_REL_TOL,
    E2E_REL_TOL,
    IMPOSSIBLE,
    INCONSISTENT,
    MEMORY_IMPOSSIBLE_RATIO,
    MEMORY_ROUNDING_TOL,
    NOT_TESTABLE,
    PARAMS_REL_TOL,
    PRECISIONS,
    SIZE_REL_TOL,
)

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
