"""Rules, one per metric family: each returns a Verdict from physics, arithmetic or a datasheet alone."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping

from .model import ArchSpec, Claim, Hardware, Verdict, arch_spec
from .physics import (
    bytes_read_per_token,
    embedding_matrix_params,
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
from .published import (
    judge_close_to,
    judge_published,
    judge_released_size,
    judge_vendor_publishes,
    not_published_reason,
)
from .vocabulary import (
    CHARS_ROUNDING_TOL,
    CONSISTENT,
    CONTEXT_REL_TOL,
    DATASHEET_REL_TOL,
    E2E_REL_TOL,
    IMPOSSIBLE,
    INCONSISTENT,
    MEASUREMENT_REL_TOL,
    MEMORY_IMPOSSIBLE_RATIO,
    MEMORY_ROUNDING_TOL,
    NOT_TESTABLE,
    PARAMS_REL_TOL,
    PRECISIONS,
    RESERVATION_REL_TOL,
    SIZE_REL_TOL,
)

# ---------------------------------------------------------------------------------------------
# Rules (one per metric family). Each returns a Verdict from physics/arithmetic/datasheet alone.
# ---------------------------------------------------------------------------------------------

NOT_TESTABLE_REASONS: dict[str, str] = {
    "load_s": "load time depends on disk, page cache and engine start-up; no physical bound is checked, "
    "only a measurement on the same hardware can test it",
    "cpu_util_pct": "CPU utilisation is an observation of one run, not derivable from physics",
    "feature_supported": "a feature of an engine's server is decided by notebook 01's probe of that "
    "server (real requests on the embedded model); no probe of it in this run",
    "benchmark_score": "a benchmark score needs an evaluation run of that benchmark with this model, "
    "under the article's (unstated) prompt and scoring protocol",
    "rubric_score": "the article prints the prompt, and notebook 03 asks it (data/zh_tasks.yaml names "
    "the article's section), but this 1-5 score is the article's own hand rating: its rubric and raters "
    "are not published and the model is not run on this machine; notebook 03 scores the same prompt "
    "with the study's rubric checks",
    "relative_gain_pct": "an improvement against an unstated baseline",
    "throughput_gain_x": "a throughput ratio between engines under an unstated workload",
    "language_count": "a count of supported languages is a vendor statement, not measurable here",
    "pins_resolve": "whether the article's pins install together is decided by pip's resolution against "
    "PyPI, recorded by `python -m slmstudy.gradio_chat.pins` in data/article003_pins.yaml; no record here",
    "remote_code_needed": "whether the pinned transformers needs trust_remote_code for this model is read "
    "from that release's wheel, recorded by `python -m slmstudy.gradio_chat.pins` in "
    "data/article003_pins.yaml; no record here",
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
    instead = f"; the closest known format is {closest} ({closest_bytes / 1e9:.2f} GB)"
    if diff < 0:
        # smaller than the format stores by definition: these parameters cannot fit in that size
        return Verdict(IMPOSSIBLE, evidence + f": {claim.precision} stores {bits:g} bits per weight by "
                       f"definition, so {spec.params / 1e9:.3g}B parameters cannot fit in "
                       f"{format_claimed(claim)}" + instead, "definition")
    return Verdict(INCONSISTENT, evidence + instead, "arithmetic")


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
    hw = hardware.get(claim.hardware) if claim.hardware else None
    if claim.metric == "vram_gb" and hw is not None and hw.memory_bytes is not None:
        if claimed > hw.memory_bytes:
            return Verdict(IMPOSSIBLE, evidence + f"; but {hw.name} has only {hw.memory_gib:g} GiB "
                           f"({hw.memory_bytes / 1e9:.2f} GB)", "physics")
    if ratio <= 1 + MEMORY_ROUNDING_TOL:
        reserved = _engine_reservation(claim, hw, evidence)
        if reserved is not None:
            return reserved
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


def _engine_reservation(claim: Claim, hw: Hardware | None, evidence: str) -> Verdict | None:
    """Device memory in use under an engine that reserves a fraction of the card is that fraction.

    vLLM takes gpu_memory_utilization x device memory at start (weights, activation profile, and a
    KV-cache pool filling the rest; EngineArgs.gpu_memory_utilization, default 0.9): the memory a
    monitor shows is that fraction of the card whatever the weights' size. The engine's registry
    spec says whether it reserves (Capabilities.device_memory_reservation). Checked only for a
    vram_gb claim on a card of known memory; None otherwise.
    """
    from ..backends import registry

    if claim.metric != "vram_gb" or claim.engine is None or hw is None or hw.memory_bytes is None:
        return None
    reservation = registry.get(claim.engine).capabilities.device_memory_reservation
    if reservation is None:
        return None
    option, default = reservation
    options = claim.engine_options or {}
    util = float(options.get(option, default))
    source = f"the article's --{option.replace('_', '-')}" if option in options else f"the engine's default {option}"
    reserved = util * hw.memory_bytes
    diff = relative_difference(claim.value * 1e9, reserved)
    text = (f"{evidence}; {claim.engine} reserves {util:g} ({source}) x {hw.name} {hw.memory_gib:g} GiB = "
            f"{format_gb(reserved)} at start for weights and its KV-cache pool; claimed "
            f"{format_claimed(claim)} is {format_pct(diff)} off (tolerance ±{RESERVATION_REL_TOL:.0%})")
    if abs(diff) <= RESERVATION_REL_TOL:
        return Verdict(CONSISTENT, text, "engine")
    return Verdict(INCONSISTENT, text + f": the memory in use under {claim.engine} is its reservation, not "
                   "the weights' size", "engine")


def _roofline_on_options(claim: Claim, spec: ArchSpec, hardware, precision: str, assumed: str) -> Verdict | None:
    """A decode claim without hardware, on the cards the article recommends for the setup: the
    bound on the fastest of them with a vendor bandwidth. None when the claim lists no options."""
    options = [hardware[k] for k in claim.hardware_options or () if k in hardware]
    known = [hw for hw in options if hw.bandwidth_gb_s]
    if not known:
        return None
    per_token = bytes_read_per_token(spec, precision)
    bounds = [(hw, roofline_tok_s(hw.bandwidth_gb_s, per_token)) for hw in known]
    parts = "; ".join(f"{hw.name} {hw.bandwidth_gb_s:g} GB/s → {b:.1f} tok/s" for hw, b in bounds)
    unknown = [hw.name for hw in options if not hw.bandwidth_gb_s]
    best_hw, best = max(bounds, key=lambda x: x[1])
    evidence = (f"{assumed}hardware not stated; the cards the article recommends for this setup, "
                f"{format_gb(per_token)} read per token at {precision}: {parts}"
                + (f" ({', '.join(unknown)}: no vendor bandwidth figure)" if unknown else "")
                + f"; claimed {format_claimed(claim)} is {claim.value / best:.0%} of the fastest bound")
    if claim.relation in ("<", "<="):
        return Verdict(CONSISTENT, evidence + " (an upper bound cannot exceed the roofline)", "physics")
    if claim.value > best:
        return Verdict(IMPOSSIBLE, evidence + ": above the roofline of every recommended card with a "
                       "published bandwidth", "physics")
    return Verdict(CONSISTENT, evidence, "physics")


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
    if claim.hardware is None:
        on_options = _roofline_on_options(claim, spec, hardware, precision, assumed)
        if on_options is not None:
            return on_options
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


def judge_ttft(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Time to first token >= the longer of two lower bounds for the prefill of the stated prompt:
    compute, 2 x (params - embedding matrices) x prompt tokens ÷ the hardware's peak operations/s
    (attention and the output layer left out, so the bound is generous), and memory, the weights
    read once ÷ peak bandwidth. A claim below it is physically impossible; above it the claim is
    consistent with physics (how much slower an engine is than the bound only a measurement on
    that hardware says)."""
    spec = arch_spec(arch, claim.model)
    if claim.prompt_tokens is None:
        return Verdict(NOT_TESTABLE, "the article does not state the prompt length this TTFT is for; "
                       "prefill time grows with it", "none")
    if claim.hardware is None or claim.hardware not in hardware:
        why = "no hardware stated" if claim.hardware is None else f"hardware {claim.hardware!r} not in the table"
        return Verdict(NOT_TESTABLE, f"{why}; a TTFT bound needs the hardware's compute and bandwidth", "none")
    hw = hardware[claim.hardware]
    if claim.precision is not None:
        precision, assumed = claim.precision, ""
    else:
        precision = most_compact_precision(spec, bytes_read_per_token)
        assumed = f"precision not stated; weights read at the most compact known format, {precision}; "
    terms, parts = [], []
    matmul_params = spec.params - embedding_matrix_params(spec)
    if hw.peak_ops_s:
        ops = 2 * matmul_params * claim.prompt_tokens
        terms.append(ops / hw.peak_ops_s)
        parts.append(f"compute: 2 x {format_params(matmul_params)} non-embedding parameters x "
                     f"{claim.prompt_tokens} prompt tokens = {ops:.3g} operations ÷ {hw.name} peak "
                     f"{hw.peak_ops_s:.3g} ops/s ({hw.peak_ops_basis}) = {terms[-1] * 1e3:.0f} ms")
    if hw.bandwidth_gb_s:
        weights = bytes_read_per_token(spec, precision)
        terms.append(weights / (hw.bandwidth_gb_s * 1e9))
        parts.append(f"memory: {format_gb(weights)} of weights at {precision} read once ÷ "
                     f"{hw.bandwidth_gb_s:g} GB/s = {terms[-1] * 1e3:.0f} ms")
    if not terms:
        return Verdict(NOT_TESTABLE, f"no compute or bandwidth figure for {hw.name}", "none")
    bound_ms = max(terms) * 1e3
    evidence = (f"{assumed}{'; '.join(parts)}; TTFT >= {bound_ms:.0f} ms; claimed "
                f"{format_claimed(claim)} is {claim.value / bound_ms:.2g}x the bound")
    if claim.relation in (">", ">="):
        return Verdict(CONSISTENT, evidence + " (a lower bound on TTFT cannot break a lower bound)", "physics")
    if not hw.peak_ops_s:
        evidence += f" (no peak compute recorded for {hw.name}: the memory term alone)"
    return Verdict(IMPOSSIBLE if claim.value < bound_ms else CONSISTENT, evidence, "physics")


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
        if kv is not None and hw.memory_bytes is not None:
            w = weights_bytes(spec, claim.precision)
            total = w + kv
            mem_text = (
                f"; weights at {claim.precision} {format_gb(w)} + fp16 KV cache for {int(tokens):,} tokens "
                f"(2 x {spec.layers} layers x {spec.kv_heads} kv heads x {spec.head_dim} x 2 B x tokens) "
                f"{format_gb(kv)} = {format_gb(total)} vs {hw.name} {hw.memory_gib:g} GiB"
            )
            if total > hw.memory_bytes:
                return Verdict(IMPOSSIBLE, evidence + mem_text + ": one full-length sequence cannot fit", "physics")
            return Verdict(CONSISTENT, evidence + mem_text, "physics")
    return Verdict(CONSISTENT, evidence, "config")


def judge_context_chars(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Han characters said to fit in the context, by the model's own published tokenizer
    (claims/tokenizer.py): above what any text can fit (each token completes at most k Han
    characters) is impossible by the tokenizer's definition; above what Chinese prose fits (the
    tokenizer's Han characters per token on AlignBench's reference answers, measured here, within
    MEASUREMENT_REL_TOL) is inconsistent with the measurement."""
    from . import tokenizer

    spec = arch_spec(arch, claim.model)
    context = spec.context_extended or spec.context
    need = (f"{claim.value:,.0f} characters in {context:,} tokens would need {claim.value / context:.1f} "
            "characters per token")
    vocab = tokenizer.for_model(claim.model)
    if vocab is None:
        return Verdict(NOT_TESTABLE, need + f"; no published tokenizer of {claim.model} is committed "
                       "(data/tokenizers/tokenizers.yaml)", "none")
    low = claim.value * (1 - CHARS_ROUNDING_TOL) if claim.relation == "~" else claim.value
    k, longest = vocab.max_han_per_token()
    bound = k * context
    evidence = (f"{need}. The model's tokenizer ({vocab.entry['regular_tokens']:,} regular tokens; "
                f"{vocab.source}, sha256 {vocab.entry['sha256'][:12]}…; the model keeps this vocabulary: "
                f"{vocab.entry['same_as']}): no token "
                f"completes more than {k} Han characters (the longest: {longest.strip()!r}), so {context:,} "
                f"tokens hold at most {bound:,} Han characters")
    claimed = (f"claimed {format_claimed(claim)} (read as at least {low:,.0f}: ±{CHARS_ROUNDING_TOL:.0%} rounding)"
               if claim.relation == "~" else f"claimed {format_claimed(claim)}")
    rate = tokenizer.chinese_prose_rate(vocab)
    measured = ("; Chinese prose not measured (no benchmark data folder)" if rate is None else
                f"; on Chinese prose ({rate.source}, {rate.texts} texts) it encodes {rate.han_per_token:.2f} Han "
                f"characters ({rate.chars_per_token:.2f} characters) per token: {context:,} tokens hold about "
                f"{rate.han_per_token * context:,.0f} Han characters")
    if low > bound:
        return Verdict(IMPOSSIBLE, f"{evidence}, below the {claimed}: no text of that many Han characters "
                       f"fits, whatever it says{measured}", "physics")
    if rate is None:
        return Verdict(CONSISTENT, f"{evidence}, not below the {claimed}{measured}", "physics")
    typical = rate.han_per_token * context
    measured += f" (tolerance ±{MEASUREMENT_REL_TOL:.0%})"
    if low > typical * (1 + MEASUREMENT_REL_TOL):
        return Verdict(INCONSISTENT, evidence + measured + f", {low / typical:.1f}x short of the {claimed}",
                       "measurement")
    return Verdict(CONSISTENT, evidence + measured, "measurement")


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
    if hw.memory_gib is None:
        return Verdict(NOT_TESTABLE, f"no memory size for {hw.name}", "none")
    # the article writes the vendor's label ("12GB"), which counts GiB: compare the numbers as labelled
    diff = relative_difference(claim.value, hw.memory_gib)
    return Verdict(
        CONSISTENT if abs(diff) <= DATASHEET_REL_TOL else INCONSISTENT,
        f"datasheet: {hw.name} {hw.memory_gib:g} GiB ({hw.memory_bytes / 1e9:.2f} GB; the vendor's "
        f"label says {hw.memory_gib:g} GB); claimed {format_claimed(claim)} "
        f"({format_pct(diff)}, tolerance ±{DATASHEET_REL_TOL:.0%})",
        "datasheet",
    )


def judge_benchmark_score(claim: Claim, arch, hardware, ledger) -> Verdict:
    """A score claim against the vendor's own published score (data/published_scores.yaml)."""
    verdict = None if claim.benchmark and re.match(r"a\d{3}_", claim.benchmark) else judge_published(claim)
    return verdict or Verdict(NOT_TESTABLE, not_testable_reason(claim), "none")


def judge_concurrency(claim: Claim, arch, hardware, ledger) -> Verdict:
    """Requests served at once vs the KV-cache arithmetic of the stated setup.

    Memory for the KV cache = reserved fraction x device memory - weights (the engine's
    reservation, Capabilities.device_memory_reservation, else the whole card; activations are not
    subtracted, the most favourable case). One sequence of the configured context
    (engine_options.max_model_len) needs 2 x layers x kv_heads x head_dim x 2 B x tokens. If not
    one fits, the engine cannot serve the configuration at all (vLLM refuses to start):
    physically impossible. If fewer than claimed fit at full length: inconsistent (shorter
    requests could share the pool, which the claim does not say).
    """
    from ..backends import registry

    spec = arch_spec(arch, claim.model)
    options = claim.engine_options or {}
    max_len = options.get("max_model_len") or claim.prompt_tokens
    cards = [hardware[k] for k in ([claim.hardware] if claim.hardware else claim.hardware_options or ())
             if k in hardware and hardware[k].memory_bytes]
    if claim.precision is None or not max_len or not cards:
        return Verdict(NOT_TESTABLE, "needs the precision, the configured context and a card of known memory", "none")
    kv = kv_cache_bytes(spec, int(max_len))
    if kv is None:
        return Verdict(NOT_TESTABLE, f"no KV-cache shape for {claim.model}", "none")
    reservation = registry.get(claim.engine).capabilities.device_memory_reservation if claim.engine else None
    util = float(options.get(reservation[0], reservation[1])) if reservation else 1.0
    weights = weights_bytes(spec, claim.precision)
    hw = max(cards, key=lambda h: h.memory_bytes)  # the most favourable card the article names
    pool = util * hw.memory_bytes - weights
    fit = max(0, int(pool // kv))
    evidence = (f"{hw.name} {hw.memory_gib:g} GiB x {util:g} reserved = {format_gb(util * hw.memory_bytes)}; minus "
                f"weights at {claim.precision} {format_gb(weights)} leaves {format_gb(max(pool, 0))} for the KV "
                f"cache; one sequence of the configured {int(max_len):,} tokens needs 2 x {spec.layers} layers x "
                f"{spec.kv_heads} kv heads x {spec.head_dim} x 2 B x tokens = {format_gb(kv)}; {fit} fit "
                f"(activations not counted); claimed {format_claimed(claim)}"
                + ("" if len(cards) == 1 else f" (the largest of the cards the article names: {hw.name})"))
    if fit < 1:
        return Verdict(IMPOSSIBLE, evidence + ": not one sequence of the configured length fits, so the engine "
                       "cannot serve this configuration (vLLM refuses to start)", "physics")
    if claim.value > fit and claim.relation not in ("<", "<="):
        return Verdict(INCONSISTENT, evidence + f": at the configured length only {fit} fit at once; more "
                       "need shorter requests, which the claim does not state", "physics")
    return Verdict(CONSISTENT, evidence, "physics")


def _reference_mentions(model_type: str, word: str) -> bool | None:
    """Whether transformers' reference implementation of `model_type` (models/<t>/modeling_<t>.py)
    contains `word`; None when the file cannot be found. Finds the package without importing it
    (importing transformers is slow and prints warnings) and reads the source file."""
    import importlib.util

    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.origin:
        return None
    source = Path(spec.origin).parent / "models" / model_type / f"modeling_{model_type}.py"
    if not source.is_file():
        return None
    return word.lower() in source.read_text(encoding="utf-8").lower()


def judge_alibi(claim: Claim, arch, hardware, ledger) -> Verdict:
    """'Uses ALiBi' vs the architecture: its config.json sets rope_theta (rotary position
    embeddings) and transformers' reference implementation of the class has no ALiBi code."""
    entry = arch[claim.model]
    model_type, cls = entry.get("model_type"), entry.get("hf_architecture")
    if not model_type:
        return Verdict(NOT_TESTABLE, "the architecture table names no model type", "none")
    mentions = _reference_mentions(model_type, "alibi")
    evidence = (f"config.json: {cls}, rope_theta {entry.get('rope_theta'):g} (rotary position embeddings)"
                + ("" if mentions is None else
                   f"; transformers' modeling_{model_type}.py {'mentions' if mentions else 'has no'} ALiBi"))
    says_alibi = claim.value >= 1
    uses_alibi = bool(mentions)
    if says_alibi == uses_alibi:
        return Verdict(CONSISTENT, evidence, "config")
    return Verdict(INCONSISTENT, evidence + ("; the architecture uses RoPE only" if says_alibi else ""), "config")


RULES: dict[str, Callable[..., Verdict]] = {
    "score_close_to": lambda claim, arch, hardware, ledger: judge_close_to(claim),
    "uses_alibi": judge_alibi,
    "vendor_publishes": lambda claim, arch, hardware, ledger: judge_vendor_publishes(claim),
    "released_size_b": lambda claim, arch, hardware, ledger: judge_released_size(claim),
    "concurrent_requests": judge_concurrency,
    "benchmark_score": judge_benchmark_score,
    "params_b": judge_params,
    "weights_gb": judge_weights_size,
    "context_tokens": judge_context,
    "context_chars": judge_context_chars,
    "vram_gb": judge_memory,
    "min_vram_gb": judge_memory,
    "min_ram_gb": judge_memory,
    "min_disk_gb": judge_memory,
    "decode_tok_s": judge_decode_speed,
    "ttft_ms": judge_ttft,
    "e2e_s": judge_e2e,
    "device_memory_gb": judge_datasheet,
    "cpu_cores": judge_datasheet,
}
RULES_WITHOUT_MODEL = ("e2e_s", "device_memory_gb", "cpu_cores", "released_size_b")
METRICS_WITHOUT_MODEL = RULES_WITHOUT_MODEL + ("throughput_gain_x",)


def not_testable_reason(claim: Claim) -> str:
    """Why a claim that no rule covers cannot be checked here, and how it could be."""
    if claim.model is None and claim.metric not in METRICS_WITHOUT_MODEL:
        return "the claim names no model of the registry" + (f" ({claim.note})" if claim.note else "")
    if claim.metric == "benchmark_score" and claim.benchmark and re.match(r"a\d{3}_", claim.benchmark):
        return ("the article's own hand-picked questions, which it prints and the study asks itself "
                "(data/zh_tasks.yaml names the article's section); the article's model is not run on "
                "this machine")
    if claim.metric == "benchmark_score":
        listed = not_published_reason(claim)
        if listed:
            return listed + "; a run that scores this model on this benchmark would test it"
    reason = NOT_TESTABLE_REASONS.get(claim.metric, "no rule for this metric")
    if claim.metric in ("benchmark_score", "load_s"):
        reason += ("; a run of this model on this benchmark would test it" if claim.metric == "benchmark_score"
                   else "; a measurement on the named hardware would test it")
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
