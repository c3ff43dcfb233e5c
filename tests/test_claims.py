"""Claims ledger: the YAML files load and validate, and each rule gives the verdict its arithmetic says."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:
    import slmstudy  # noqa: F401
except ModuleNotFoundError:  # until the package is installed (pip install -e .)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from slmstudy import claims as C
from slmstudy.paths import REPO_ROOT

SEEDS_DIR = REPO_ROOT.parent / "shared" / "seeds"
ARTICLES = ("000", "001", "002", "003", "004")

# Architecture facts from each checkpoint's config.json (to be replaced by the model registry).
# context_extended: Qwen2.5-7B-Instruct's model card documents 131,072 tokens with YaRN scaling.
ARCH_TABLE = {
    "qwen25_7b": dict(params=7_620_000_000, hidden=3584, vocab=152064, tied_embeddings=False, context=32768,
                      context_extended=131072, layers=28, kv_heads=4, head_dim=128),
    "qwen25_05b": dict(params=494_000_000, hidden=896, vocab=151936, tied_embeddings=True, context=32768,
                       layers=24, kv_heads=2, head_dim=64),
    "phi3_mini": dict(params=3_820_000_000, hidden=3072, vocab=32064, tied_embeddings=False, context=4096,
                      layers=32, kv_heads=32, head_dim=96),
    "llama3_8b": dict(params=8_030_000_000, hidden=4096, vocab=128256, tied_embeddings=False, context=8192,
                      layers=32, kv_heads=8, head_dim=128),
    "mistral_7b": dict(params=7_250_000_000, hidden=4096, vocab=32768, tied_embeddings=False, context=32768,
                       layers=32, kv_heads=8, head_dim=128),
    "smollm2_135m": dict(params=135_000_000, hidden=576, vocab=49152, tied_embeddings=True, context=8192,
                         layers=30, kv_heads=3, head_dim=64),
}  # fmt: skip


@pytest.fixture(scope="module")
def arch() -> dict[str, dict]:
    return ARCH_TABLE


@pytest.fixture(scope="module")
def hardware() -> dict[str, C.Hardware]:
    return C.load_hardware()


@pytest.fixture(scope="module")
def ledger(arch, hardware) -> list[C.Claim]:
    return C.load_claims(model_keys=arch, hardware_keys=hardware)


@pytest.fixture(scope="module")
def verdicts(ledger, arch, hardware) -> dict[str, C.Verdict]:
    return C.judge_all(ledger, arch, hardware)


def make_claim(**fields) -> C.Claim:
    """A synthetic claim with defaults for everything a rule does not look at."""
    base = dict(
        id="a000-t-test", article="000", section="t", quote="test", model="qwen25_7b", metric="params_b",
        value=7.0, unit=None, precision=None, hardware=None, engine=None, benchmark=None,
    )  # fmt: skip
    base.update(fields)
    if base["unit"] is None:
        base["unit"] = C.METRIC_UNITS[base["metric"]]
    return C.Claim.model_validate(base)


def judged(claim: C.Claim, arch, hardware, measurements=None, ledger=None) -> C.Verdict:
    return C.judge(claim, arch, hardware, measurements, ledger=ledger)


# --- the data files ---------------------------------------------------------------------------


def test_hardware_table_loads_with_sources(hardware):
    assert {"rtx3060_12gb", "rtx4090d", "i5_1135g7", "xeon_w9_3495x"} <= set(hardware)
    assert hardware["rtx3060_12gb"].bandwidth_gb_s == 360
    assert hardware["rtx3060_12gb"].memory_gib == 12
    assert all(hw.source.strip() for hw in hardware.values())
    assert all(hw.bandwidth_basis for hw in hardware.values() if hw.bandwidth_gb_s is not None)


def test_ledger_has_at_least_30_claims_across_all_five_articles(ledger):
    assert len(ledger) >= 30
    per_article = {a: sum(c.article == a for c in ledger) for a in ARTICLES}
    assert all(n >= 3 for n in per_article.values()), per_article
    assert len({c.id for c in ledger}) == len(ledger)


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason=f"seed articles not found at {SEEDS_DIR}")
def test_every_quote_is_verbatim_in_its_article(ledger):
    texts = {}
    for article in ARTICLES:
        (path,) = SEEDS_DIR.glob(f"{article}_*.txt")
        texts[article] = path.read_text(encoding="utf-8")
    missing = [c.id for c in ledger if c.quote not in texts[c.article]]
    assert missing == []


def test_every_claim_gets_one_of_the_four_verdicts_with_evidence(ledger, verdicts):
    assert set(verdicts) == {c.id for c in ledger}
    for claim_id, v in verdicts.items():
        assert v.verdict in C.VERDICTS, claim_id
        assert v.evidence.strip(), claim_id


def test_at_least_five_claims_are_decided_by_physics_or_arithmetic_alone(verdicts):
    decided = [v for v in verdicts.values() if v.verdict != C.NOT_TESTABLE and v.basis != "measurement"]
    assert len(decided) >= 5
    counts = C.verdict_counts(verdicts)
    assert counts[C.IMPOSSIBLE] >= 1 and counts[C.INCONSISTENT] >= 1 and counts[C.CONSISTENT] >= 1
    assert sum(counts.values()) == len(verdicts)


@pytest.mark.parametrize(
    "claim_id, expected",
    [
        ("a000-1.1-qwen7b-fp16-gb", C.INCONSISTENT),  # 28 GB "FP16" = fp32 size; fp16 is 15.2 GB
        ("a000-1.1-qwen7b-q4km-gb", C.CONSISTENT),  # 4 GB vs 4.62 GB
        ("a000-1.1-qwen7b-3060-toks", C.IMPOSSIBLE),  # >100 tok/s vs 84 tok/s roofline
        ("a001-2.2-phi3-params", C.INCONSISTENT),  # 3.8亿 = 0.38B vs 3.82B
        ("a001-3.1-phi3-fp16-gb", C.IMPOSSIBLE),  # 0.75 GB cannot hold 7.64 GB of fp16
        ("a001-3.2-qwen05b-toks", C.CONSISTENT),  # 48.6 of 228 tok/s on the i5
        ("a001-3.2-phi3-toks", C.IMPOSSIBLE),  # 39.2 > 32.8 tok/s even at 4-bit
        ("a001-3.2-qwen05b-e2e", C.CONSISTENT),  # only with tokens/s = N / total time
        ("a002-3.6-qwen7b-vram", C.IMPOSSIBLE),  # 11.2 GB for 15.2 GB of fp16 weights
        ("a002-3.6-qwen7b-toks", C.IMPOSSIBLE),  # 112 > 33 tok/s on the fastest recommended card
        ("a002-4.1-llama3-3060-toks", C.CONSISTENT),
        ("a003-1.1-qwen7b-context", C.INCONSISTENT),  # 8192 vs 32768 / 131072
        ("a003-2.1-xeon-cores", C.CONSISTENT),
        ("a003-3.5-phi3-fp16-gb", C.IMPOSSIBLE),  # 2.2 GB FP16 for 3.82B params: definition
        ("a004-2.1-qwen7b-q4km-vram", C.INCONSISTENT),  # 4 GB for 4.62 GB of weights
        ("a004-3.4-qwen7b-toks", C.IMPOSSIBLE),  # AWQ on RTX 3060: 80 tok/s roofline
        ("a004-3.4-qwen7b-context", C.IMPOSSIBLE),  # 5.6 GB weights + 7.5 GB KV > 12 GB
        ("a004-4.2-llama3-13b-math3", C.NOT_TESTABLE),  # no such model
        ("a002-2.2-qwen7b-humaneval", C.INCONSISTENT),  # >85 vs the vendor's 84.8 (Qwen2.5 TR)
        ("a004-2.1-qwen7b-math", C.INCONSISTENT),  # >80 vs the vendor's 75.5
        ("a000-1.2-phi3-mmlu", C.CONSISTENT),  # ~69 vs "69% on MMLU" (Phi-3 TR abstract)
        ("a004-3.4-qwen7b-vram", C.INCONSISTENT),  # vLLM holds 0.9 x 12 GiB = 11.6 GB, not 6.3
        # 11.6 GB reserved - 5.57 GB AWQ weights = 6.0 GB < 7.5 GB of KV for one 131072-token sequence
        ("a004-3.4-qwen7b-batch4", C.IMPOSSIBLE),
        ("a002-3.6-qwen7b-concurrency", C.INCONSISTENT),  # at 131072 tokens one sequence fits an A10G
        # "close to CodeLlama-34B": Code Llama 34B's published HumanEval is 48.8, 36 points below
        ("a000-1.1-qwen7b-humaneval-vs-codellama", C.INCONSISTENT),
    ],
)
def test_ledger_verdicts(verdicts, claim_id, expected):
    assert verdicts[claim_id].verdict == expected, verdicts[claim_id].evidence


# --- physics and arithmetic -------------------------------------------------------------------


def test_weights_bytes_is_params_times_bytes_per_param(arch):
    qwen7b = C.arch_spec(arch, "qwen25_7b")
    assert C.weights_bytes(qwen7b, "bf16") == pytest.approx(7.62e9 * 2)
    assert C.weights_bytes(qwen7b, "q4_k_m") == pytest.approx(7.62e9 * 4.85 / 8)
    # AWQ keeps the two 152064 x 3584 embedding matrices in fp16
    embeddings = 2 * 152064 * 3584
    assert C.weights_bytes(qwen7b, "awq") == pytest.approx((7.62e9 - embeddings) * 4.15625 / 8 + embeddings * 2)


def test_bytes_read_per_token_skips_the_input_embedding_unless_tied(arch):
    qwen7b = C.arch_spec(arch, "qwen25_7b")
    assert C.bytes_read_per_token(qwen7b, "bf16") == pytest.approx((7.62e9 - 152064 * 3584) * 2)
    qwen05b = C.arch_spec(arch, "qwen25_05b")  # tied: the shared matrix is read once, as the output layer
    assert C.bytes_read_per_token(qwen05b, "bf16") == pytest.approx(C.weights_bytes(qwen05b, "bf16"))


def test_roofline_and_kv_cache(arch):
    qwen7b = C.arch_spec(arch, "qwen25_7b")
    assert C.roofline_tok_s(360, C.bytes_read_per_token(qwen7b, "q4_k_m")) == pytest.approx(83.9, abs=0.1)
    assert C.kv_cache_bytes(qwen7b, 131072) == 2 * 28 * 4 * 128 * 2 * 131072
    assert C.kv_cache_bytes(C.arch_spec({"m": dict(params=1, context=1, embedding_params=0)}, "m"), 10) is None


def test_arch_entry_without_embedding_size_is_a_clear_error():
    with pytest.raises(C.LedgerError, match="hidden"):
        C.arch_spec({"m": dict(params=1, context=1)}, "m")


# --- verdicts on synthetic claims -------------------------------------------------------------


def test_fp16_size_of_2_2_gb_for_a_3_8b_model_contradicts_the_definition_of_fp16(arch, hardware):
    v = judged(make_claim(model="phi3_mini", metric="weights_gb", value=2.2, precision="fp16"), arch, hardware)
    assert v.verdict == C.IMPOSSIBLE and v.basis == "definition"
    too_big = judged(make_claim(model="phi3_mini", metric="weights_gb", value=28, precision="fp16"), arch, hardware)
    assert too_big.verdict == C.INCONSISTENT and too_big.basis == "arithmetic"  # extra files could explain it
    assert "7.64 GB" in v.evidence
    ok = judged(make_claim(model="phi3_mini", metric="weights_gb", value=7.6, precision="fp16"), arch, hardware)
    assert ok.verdict == C.CONSISTENT


def test_size_without_precision_is_not_testable(arch, hardware):
    v = judged(make_claim(model="phi3_mini", metric="weights_gb", value=2.2), arch, hardware)
    assert v.verdict == C.NOT_TESTABLE and "q4" in v.evidence


def test_decode_speed_above_the_roofline_is_physically_impossible(arch, hardware):
    claim = make_claim(metric="decode_tok_s", value=100, relation=">", precision="q4_k_m", hardware="rtx3060_12gb")
    v = judged(claim, arch, hardware)
    assert v.verdict == C.IMPOSSIBLE and v.basis == "physics"
    assert "360 GB/s" in v.evidence and "83.9 tok/s" in v.evidence


def test_decode_speed_below_the_roofline_is_consistent(arch, hardware):
    claim = make_claim(model="qwen25_05b", metric="decode_tok_s", value=48.6, precision="q4_k_m", hardware="i5_1135g7")
    v = judged(claim, arch, hardware)
    assert v.verdict == C.CONSISTENT and "21%" in v.evidence


def test_decode_speed_upper_bound_and_unknown_hardware(arch, hardware):
    below = make_claim(metric="decode_tok_s", value=500, relation="<", precision="bf16", hardware="rtx3060_12gb")
    assert judged(below, arch, hardware).verdict == C.CONSISTENT
    nowhere = make_claim(metric="decode_tok_s", value=112, precision="fp16")
    v = judged(nowhere, arch, hardware)
    assert v.verdict == C.NOT_TESTABLE and "GB/s of memory bandwidth" in v.evidence


def test_decode_speed_without_precision_uses_the_most_compact_format(arch, hardware):
    claim = make_claim(metric="decode_tok_s", value=95, hardware="rtx3060_12gb")
    v = judged(claim, arch, hardware)
    assert v.verdict == C.IMPOSSIBLE  # even at 4.5 bits/weight the bound is 90.5 tok/s
    assert "precision not stated" in v.evidence


def test_i5_1135g7_peak_is_its_cores_times_turbo_times_vnni_width(hardware):
    # 4 cores (ARK) x 4.2 GHz max turbo (ARK) x 64 int8 multiply-adds = 128 ops per cycle
    assert hardware["i5_1135g7"].peak_ops_s == pytest.approx(4 * 4.2e9 * 128)


def _ttft_bound_ms(evidence: str) -> float:
    import re

    return float(re.search(r"TTFT >= (\d+) ms", evidence).group(1))


def test_ttft_below_the_compute_bound_is_physically_impossible(arch, hardware):
    # Phi-3-mini: (3.82e9 - 2 x 32064 x 3072) x 2 x 512 = 3.710e12 ops ÷ 2.1504e12 ops/s = 1725 ms
    fast = make_claim(model="phi3_mini", metric="ttft_ms", value=1120, relation="~",
                      hardware="i5_1135g7", engine="ortgenai", prompt_tokens=512)
    v = judged(fast, arch, hardware)
    assert v.verdict == C.IMPOSSIBLE and v.basis == "physics"
    assert _ttft_bound_ms(v.evidence) == pytest.approx(1725, abs=2)
    slow = make_claim(model="phi3_mini", metric="ttft_ms", value=1800, relation="~",
                      hardware="i5_1135g7", prompt_tokens=512)
    assert judged(slow, arch, hardware).verdict == C.CONSISTENT
    # the bound grows with the prompt: 128 tokens -> 431 ms, so 1120 ms is then consistent
    short = make_claim(model="phi3_mini", metric="ttft_ms", value=1120, relation="~",
                       hardware="i5_1135g7", prompt_tokens=128)
    v = judged(short, arch, hardware)
    assert v.verdict == C.CONSISTENT and _ttft_bound_ms(v.evidence) == pytest.approx(431, abs=2)


def test_ttft_without_prompt_length_or_compute_figure(arch, hardware):
    unstated = make_claim(metric="ttft_ms", value=140, relation="~", hardware="rtx4090d")
    v = judged(unstated, arch, hardware)
    assert v.verdict == C.NOT_TESTABLE and "prompt length" in v.evidence
    # no peak compute recorded for the RTX 3060: the memory term alone, weights read once
    # (Qwen2.5-7B at AWQ ~4.5 GB ÷ 360 GB/s ≈ 12 ms)
    gpu = make_claim(metric="ttft_ms", value=5, relation="~", precision="awq", hardware="rtx3060_12gb",
                     prompt_tokens=50)
    v = judged(gpu, arch, hardware)
    assert v.verdict == C.IMPOSSIBLE and "memory term alone" in v.evidence
    assert 11 <= _ttft_bound_ms(v.evidence) <= 14


def test_parameter_count_against_config(arch, hardware):
    assert judged(make_claim(model="phi3_mini", value=3.8), arch, hardware).verdict == C.CONSISTENT
    assert judged(make_claim(model="phi3_mini", value=0.38), arch, hardware).verdict == C.INCONSISTENT


def test_context_against_config_and_device_memory(arch, hardware):
    def ctx(**kw):
        return judged(make_claim(metric="context_tokens", relation="=", **kw), arch, hardware)

    assert ctx(model="phi3_mini", value=4096).verdict == C.CONSISTENT
    assert ctx(model="qwen25_7b", value=8192).verdict == C.INCONSISTENT
    extended = ctx(model="qwen25_7b", value=131072)
    assert extended.verdict == C.CONSISTENT and "RoPE" in extended.evidence
    on_3060 = ctx(model="qwen25_7b", value=131072, precision="awq", hardware="rtx3060_12gb")
    assert on_3060.verdict == C.IMPOSSIBLE and "KV cache" in on_3060.evidence
    on_4090d = ctx(model="qwen25_7b", value=131072, precision="awq", hardware="rtx4090d")
    assert on_4090d.verdict == C.CONSISTENT


def test_memory_claims_are_bounded_by_the_weights(arch, hardware):
    def mem(**kw):
        return judged(make_claim(**kw), arch, hardware)

    assert mem(metric="vram_gb", value=11.2, precision="fp16").verdict == C.IMPOSSIBLE  # 15.24 / 11.2 = 1.36
    assert mem(metric="min_vram_gb", value=4, precision="q4_k_m").verdict == C.INCONSISTENT  # 1.15
    assert mem(metric="min_vram_gb", value=15, precision="fp16").verdict == C.CONSISTENT  # rounding
    # host RAM below the weights: slow paging is possible, so inconsistent, not impossible
    assert mem(metric="min_ram_gb", value=8, precision="fp16").verdict == C.INCONSISTENT
    too_big = mem(metric="vram_gb", value=30, precision="bf16", hardware="rtx4090d")
    assert too_big.verdict == C.IMPOSSIBLE and "24 GB" in too_big.evidence


def test_end_to_end_time_against_the_same_rows_ttft_and_rate(arch, hardware):
    ttft = make_claim(id="a000-t-ttft", metric="ttft_ms", value=1000)
    rate = make_claim(id="a000-t-rate", metric="decode_tok_s", value=50)
    ledger = {c.id: c for c in (ttft, rate)}
    refs = {"ttft_ms": ttft.id, "decode_tok_s": rate.id}

    def e2e(value):
        claim = make_claim(metric="e2e_s", value=value, output_tokens=101, derived_from=refs)
        return judged(claim, arch, hardware, ledger=ledger)

    assert e2e(3.0).verdict == C.CONSISTENT  # 1.0 + 100 / 50
    average = e2e(2.02)  # 101 / 50: tokens/s was N / total time
    assert average.verdict == C.CONSISTENT and "N / total time" in average.evidence
    assert e2e(5.0).verdict == C.INCONSISTENT
    no_ledger = make_claim(metric="e2e_s", value=3.0, output_tokens=101, derived_from=refs)
    assert judged(no_ledger, arch, hardware).verdict == C.NOT_TESTABLE


def test_hardware_figures_against_the_datasheet(arch, hardware):
    cores = make_claim(model=None, metric="cpu_cores", value=56, hardware="xeon_w9_3495x")
    assert judged(cores, arch, hardware).verdict == C.CONSISTENT
    wrong = make_claim(model=None, metric="cpu_cores", value=48, hardware="xeon_w9_3495x")
    assert judged(wrong, arch, hardware).verdict == C.INCONSISTENT


def test_claims_without_a_rule_or_model_are_not_testable(arch, hardware):
    score = make_claim(metric="benchmark_score", value=85, relation=">", benchmark="cmmlu")
    v = judged(score, arch, hardware)
    assert v.verdict == C.NOT_TESTABLE and v.basis == "none"
    unknown_model = make_claim(model="gpt_x", metric="params_b", value=13)
    assert judged(unknown_model, arch, hardware).verdict == C.NOT_TESTABLE


# --- measurements -----------------------------------------------------------------------------


def test_measurement_decides_when_model_metric_precision_and_hardware_match(arch, hardware):
    score = make_claim(metric="benchmark_score", value=85, relation=">", benchmark="cmmlu")
    key = ("qwen25_7b", "benchmark_score:cmmlu", None, None)
    assert judged(score, arch, hardware, {key: 84.0}).verdict == C.CONSISTENT  # 84 >= 85 x 0.75
    low = judged(score, arch, hardware, {key: 50.0})
    assert low.verdict == C.INCONSISTENT and low.basis == "measurement" and "50" in low.evidence

    speed = make_claim(model="qwen25_05b", metric="decode_tok_s", value=48.6, precision="q4_k_m", hardware="i5_1135g7")
    slower = {("qwen25_05b", "decode_tok_s", "q4_k_m", "i5_1135g7"): 20.0}
    assert judged(speed, arch, hardware, slower).verdict == C.INCONSISTENT
    other_hardware = {("qwen25_05b", "decode_tok_s", "q4_k_m", "rtx4090d"): 20.0}
    assert judged(speed, arch, hardware, other_hardware).verdict == C.CONSISTENT  # physics only


def test_a_measurement_cannot_overturn_a_physical_impossibility(arch, hardware):
    claim = make_claim(metric="decode_tok_s", value=100, relation=">", precision="q4_k_m", hardware="rtx3060_12gb")
    measured = {("qwen25_7b", "decode_tok_s", "q4_k_m", "rtx3060_12gb"): 101.0}
    v = judged(claim, arch, hardware, measured)
    assert v.verdict == C.IMPOSSIBLE and "measured here 101" in v.evidence


def test_ledger_rows_carry_source_and_verdict(ledger, verdicts):
    rows = C.ledger_rows(ledger, verdicts)
    assert len(rows) == len(ledger)
    assert {"id", "article", "section", "quote", "claimed", "verdict", "evidence"} <= set(rows[0])


# --- malformed files --------------------------------------------------------------------------

GOOD_ENTRY = """\
claims:
  - id: a000-1.1-x
    article: "000"
    section: "1.1"
    quote: "x"
    model: qwen25_7b
    metric: params_b
    value: 7
    unit: B
    precision: null
    hardware: null
    engine: null
    benchmark: null
"""


def write(tmp_path: Path, text: str, name: str = "claims.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_entry_loads(tmp_path):
    (claim,) = C.load_claims(write(tmp_path, GOOD_ENTRY))
    assert claim.value == 7.0 and claim.relation == "~"


def test_unknown_key_is_an_error_naming_the_key_and_the_file(tmp_path):
    path = write(tmp_path, GOOD_ENTRY + "    colour: red\n")
    with pytest.raises(C.LedgerError) as err:
        C.load_claims(path)
    message = str(err.value)
    assert "'colour'" in message and str(path) in message and "a000-1.1-x" in message


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("    engine: null\n", "", "missing key 'engine'"),
        ("unit: B", "unit: GB", "unit 'GB' does not fit metric 'params_b'"),
        ('article: "000"', "article: 000", "article"),  # unquoted YAML 000 is the integer 0
        ("precision: null", "precision: fp12", "precision 'fp12'"),
        ("metric: params_b", "metric: speed", "metric 'speed'"),
    ],
)
def test_malformed_entries_are_clear_errors(tmp_path, old, new, expected):
    assert old in GOOD_ENTRY
    with pytest.raises(C.LedgerError, match=expected.replace("(", r"\(")):
        C.load_claims(write(tmp_path, GOOD_ENTRY.replace(old, new)))


def test_cross_references_are_checked(tmp_path):
    twice = GOOD_ENTRY + GOOD_ENTRY.split("claims:\n", 1)[1]
    with pytest.raises(C.LedgerError, match="duplicate claim id"):
        C.load_claims(write(tmp_path, twice))
    with pytest.raises(C.LedgerError, match="unknown model 'qwen25_7b'"):
        C.load_claims(write(tmp_path, GOOD_ENTRY), model_keys=["phi3_mini"])
    on_gpu = GOOD_ENTRY.replace("hardware: null", "hardware: rtx9090")
    with pytest.raises(C.LedgerError, match="unknown hardware 'rtx9090'"):
        C.load_claims(write(tmp_path, on_gpu), hardware_keys=["rtx3060_12gb"])
    dangling = GOOD_ENTRY + "    derived_from: {ttft_ms: a000-nope}\n"
    with pytest.raises(C.LedgerError, match="a000-nope"):
        C.load_claims(write(tmp_path, dangling))


def test_hardware_file_unknown_key_is_an_error(tmp_path):
    text = """\
hardware:
  gpu1:
    name: G
    kind: gpu
    memory_gib: 1
    memory_type: null
    bandwidth_gb_s: 1
    bandwidth_basis: datasheet
    cores: null
    threads: null
    source: s
    bandwith_gb_s: 2
"""
    path = write(tmp_path, text, "hardware.yaml")
    with pytest.raises(C.LedgerError, match="unknown key 'bandwith_gb_s'") as err:
        C.load_hardware(path)
    assert str(path) in str(err.value)


def test_snapshot_rows_are_classed_by_the_format_that_measures_a_claim():
    from slmstudy.claims import measured

    cls = {f: measured.format_class(f) for f in ("bfloat16", "bfloat16+compile", "F16", "Q4_K_M", "Q4_1",
                                                 "awq-int4", "fp8", "float32")}
    assert cls == {"bfloat16": "16-bit", "bfloat16+compile": "16-bit", "F16": "16-bit", "Q4_K_M": "q4_k_m",
                   "Q4_1": "q4", "awq-int4": "awq", "fp8": "fp8", "float32": "fp32"}
    # a Q4_K_M claim is measured by Q4_K_M rows only; a claim that names no precision by every
    # format a consumer card runs (FP8 needs Ada/Hopper tensor cores: never for an unstated format)
    assert measured.CLAIM_FORMATS["q4_k_m"] == ("q4_k_m",) and measured.CLAIM_FORMATS["awq"] == ("awq",)
    assert "fp8" not in measured.CLAIM_FORMATS[None]


def test_gpu_memory_is_binary_a_12_gb_card_holds_12_gib(arch, hardware):
    # 12 GiB = 12.88 GB: 12.5 GB in use fits an RTX 3060 12 GB, 13 GB does not
    fits = make_claim(metric="vram_gb", value=12.5, precision="q4_k_m", hardware="rtx3060_12gb")
    assert judged(fits, arch, hardware).verdict != C.IMPOSSIBLE
    over = make_claim(metric="vram_gb", value=13, precision="q4_k_m", hardware="rtx3060_12gb")
    v = judged(over, arch, hardware)
    assert v.verdict == C.IMPOSSIBLE and "12 GiB (12.88 GB)" in v.evidence
    label = make_claim(model=None, metric="device_memory_gb", value=12, hardware="rtx3060_12gb")
    assert judged(label, arch, hardware).verdict == C.CONSISTENT


def test_memory_in_use_under_vllm_is_its_reservation(arch, hardware):
    # vLLM takes gpu_memory_utilization x device memory whatever the weights need
    def claim(value, **kw):
        return make_claim(metric="vram_gb", value=value, precision="awq", hardware="rtx3060_12gb",
                          engine="vllm", **kw)
    assert judged(claim(6.3), arch, hardware).verdict == C.INCONSISTENT
    assert judged(claim(11.5), arch, hardware).verdict == C.CONSISTENT  # 0.9 x 12 GiB = 11.60 GB
    lowered = claim(6.3, engine_options={"gpu_memory_utilization": 0.5})  # 0.5 x 12 GiB = 6.44 GB
    v = judged(lowered, arch, hardware)
    assert v.verdict == C.CONSISTENT and "the article's --gpu-memory-utilization" in v.evidence
    without_engine = make_claim(metric="vram_gb", value=6.3, precision="awq", hardware="rtx3060_12gb")
    assert judged(without_engine, arch, hardware).verdict == C.CONSISTENT  # the weights alone fit


def test_decode_claim_without_hardware_is_judged_on_the_cards_the_article_recommends(arch, hardware):
    # FP16 Qwen2.5-7B reads 14.2 GB per token: 25 tok/s on an RTX 3060, 35 on an RTX 4070
    fast = make_claim(metric="decode_tok_s", value=112, precision="fp16",
                      hardware_options=["rtx3060_12gb", "rtx4070", "a10g"])
    v = judged(fast, arch, hardware)
    assert v.verdict == C.IMPOSSIBLE and "A10G (AWS EC2 G5): no vendor bandwidth figure" in v.evidence
    slow = make_claim(metric="decode_tok_s", value=30, precision="fp16", hardware_options=["rtx3060_12gb", "rtx4070"])
    assert judged(slow, arch, hardware).verdict == C.CONSISTENT  # under the 4070's bound


def test_a_hardware_option_must_be_in_the_datasheet_table(tmp_path):
    entry = GOOD_ENTRY + "    hardware_options: [rtx9090]\n"
    with pytest.raises(C.LedgerError, match="unknown hardware option 'rtx9090'"):
        C.load_claims(write(tmp_path, entry), hardware_keys=["rtx3060_12gb"])


def test_alibi_is_judged_against_the_config_and_the_reference_implementation(hardware):
    from slmstudy.claims import ledger

    arch = ledger.arch_table()
    says = make_claim(model="phi3_mini", metric="uses_alibi", value=1, relation="=")
    v = judged(says, arch, hardware)
    assert v.verdict == C.INCONSISTENT and "rope_theta 10000" in v.evidence
    denies = make_claim(model="phi3_mini", metric="uses_alibi", value=0, relation="=")
    assert judged(denies, arch, hardware).verdict == C.CONSISTENT


def test_close_to_another_model_is_judged_against_both_published_scores(arch, hardware):
    def claim(value, reference="codellama_34b"):
        return make_claim(metric="score_close_to", value=value, benchmark="humaneval", reference=reference)
    assert judged(claim(50), arch, hardware).verdict == C.CONSISTENT  # 50 vs 48.8
    assert judged(claim(85), arch, hardware).verdict == C.INCONSISTENT
    assert judged(claim(85, reference="gpt_x"), arch, hardware).verdict == C.NOT_TESTABLE


def test_vendor_publishes_against_the_vendor_repositories(tmp_path):
    from slmstudy.claims import published as P

    entry = P.PublishedArtifact(model="phi3_mini", artifact="gguf", repo="https://example/repo",
                                files=["m-q4.gguf"], published_by="the vendor", source="its file list")
    table = {("phi3_mini", "gguf"): entry}
    no = make_claim(model="phi3_mini", metric="vendor_publishes", value=0, artifact="gguf")
    yes = make_claim(model="phi3_mini", metric="vendor_publishes", value=1, artifact="gguf")
    onnx = make_claim(model="phi3_mini", metric="vendor_publishes", value=0, artifact="onnx")
    assert P.judge_vendor_publishes(no, table).verdict == C.INCONSISTENT
    assert P.judge_vendor_publishes(yes, table).verdict == C.CONSISTENT
    assert P.judge_vendor_publishes(onnx, table).verdict == C.NOT_TESTABLE  # absence is not evidence
    with pytest.raises(C.LedgerError, match="needs `artifact`"):
        P.judge_vendor_publishes(make_claim(model="phi3_mini", metric="vendor_publishes", value=0), table)
    bad = tmp_path / "a.yaml"
    bad.write_text("artifacts:\n  - {model: phi3_mini, artifact: gguf}\n")
    with pytest.raises(C.LedgerError, match=r"artifacts\[0\]"):
        P.load_artifacts(bad)
    assert set(P.load_artifacts()) >= {("phi3_mini", "gguf"), ("phi3_mini", "onnx")}


def test_scorecard_counts_command_lines_beside_claims():
    from slmstudy.claims import ledger

    claims = [make_claim(id="a001-t-one", article="001"), make_claim(id="a002-t-two", article="002")]
    verdicts = {"a001-t-one": C.Verdict(C.CONSISTENT, "x"), "a002-t-two": C.Verdict(C.IMPOSSIBLE, "y")}
    commands = [{"article": "002", "verdict": C.INCONSISTENT}, {"article": "004", "verdict": C.NOT_TESTABLE}]
    plain = ledger.counts_by_article(claims, verdicts)
    assert set(plain) == {"001", "002"} and plain["002"][C.INCONSISTENT] == 0
    card = ledger.counts_by_article(claims, verdicts, commands)
    assert card["002"] == {C.CONSISTENT: 0, C.INCONSISTENT: 1, C.IMPOSSIBLE: 1, C.NOT_TESTABLE: 0}
    assert card["004"][C.NOT_TESTABLE] == 1 and card["001"][C.CONSISTENT] == 1


def test_released_size_against_the_vendor_card(tmp_path):
    from slmstudy.claims import published as P

    table = {"fam": P.PublishedFamily(family="fam", name="Fam", sizes_b=[8, 70], source="card",
                                      passage="comes in 8B and 70B")}

    def claim(value, family="fam"):
        return make_claim(model=None, metric="released_size_b", value=value, family=family)
    assert P.judge_released_size(claim(13), table).verdict == C.INCONSISTENT
    assert P.judge_released_size(claim(8), table).verdict == C.CONSISTENT
    assert P.judge_released_size(claim(13, "other"), table).verdict == C.NOT_TESTABLE
    with pytest.raises(C.LedgerError, match="needs `family`"):
        P.judge_released_size(claim(13, None), table)
    assert P.load_families()["llama3"].sizes_b == [8, 70]
