"""What the study measured, as the ledger judges by it: the run's section summaries and the
committed GPU snapshots (results/<name>/), each number kept with where it came from.

Speed (batch-1 decode tok/s on a named GPU or CPU): a measured row of the same model, a matching
format (a Q4_K_M claim from Q4_K_M rows, an AWQ claim from AWQ rows, FP16 from 16-bit rows; a
claim without a format from every format) and the claim's engine when it names one, is carried
to the claim's hardware by two models of a decode step, and the more favourable one is kept:

- two-term: t = t_fixed + bytes_read_per_token / bandwidth. The measured step time minus the
  bytes' transfer time at the measured bandwidth is the fixed part (kernel launches, sampling,
  Python); on the claim's hardware t = t_fixed + bytes / datasheet bandwidth. Assumes the fixed
  part is no smaller there.
- roofline fraction: the engine reaches the same fraction of the bandwidth roofline there as it
  did here (the better model when the fixed part is compute that a bigger CPU shrinks).

A claim above the expectation by more than MEASUREMENT_REL_TOL is inconsistent with the
measurement; above the roofline it is physically impossible (the physics rule says so first).
This is the one scaling model of the study: notebook 02 shows the same verdicts.

Features (streaming, tool calls, JSON modes of an engine's server): notebook 01's probes, real
requests to each engine's OpenAI-compatible server on the embedded model; a feature the claim
says the engine supports holds when the probe of that engine's server succeeded.

Quality (benchmark scores): a run's section summary that scored the claim's model (a real
checkpoint) on the claim's benchmark; the claim holds when it lies in the measured 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..paths import RESULTS_DIR, shown
from ..results import read_json
from .model import Claim, Hardware, Verdict
from .physics import format_claimed, format_pct, relative_difference
from .vocabulary import CONSISTENT, IMPOSSIBLE, INCONSISTENT, MEASUREMENT_REL_TOL, NOT_TESTABLE

QUALITY_SECTIONS = ("03_chinese_quality", "04_math", "05_code")

#: a quality task's name (its prefix) -> the benchmark name the claims use
TASK_BENCHMARKS = {"cmmlu": "cmmlu", "ceval": "ceval", "humaneval": "humaneval", "math": "math",
                   "gsm8k": "gsm8k", "mbpp": "mbpp"}


_shown = shown


@dataclass(frozen=True)
class SpeedRow:
    """One batch-1 in-process decode measurement of a speed summary, with its source."""

    source: str  # "run default" or "snapshot h200-2026-12-01"
    device: str  # the device the row was measured on
    kind: str  # "gpu" or "cpu"
    bandwidth_bytes_s: float  # measured on that device, the same sitting
    target: str  # model/engine/format/label
    model: str
    engine: str
    fmt: str
    label: str  # "real" or "replica"
    decode_tok_s: float
    bytes_read_per_token: float
    n_requests: int
    path: str  # the summary.json it comes from (repository-relative where inside it)

    @property
    def step_s(self) -> float:
        return 1.0 / self.decode_tok_s

    @property
    def transfer_s(self) -> float:
        return self.bytes_read_per_token / self.bandwidth_bytes_s


@dataclass(frozen=True)
class ScoreRow:
    """One benchmark score a run measured for a model (accuracy and its 95% interval, 0-100)."""

    source: str
    model: str
    benchmark: str
    task: str
    target: str
    mode: str
    n: int
    score: float
    ci_low: float
    ci_high: float
    path: str


@dataclass
class Evidence:
    """Everything measured that the ledger can judge by."""

    speed: list[SpeedRow] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)  # 01_deployment's command records
    features: list[dict[str, Any]] = field(default_factory=list)  # 01_deployment's server probes
    sources: list[dict[str, Any]] = field(default_factory=list)  # name, kind, device, path

    def __bool__(self) -> bool:
        return bool(self.speed or self.scores or self.commands or self.features)


# ---------------------------------------------------------------------------------------------
# Collecting
# ---------------------------------------------------------------------------------------------

def _row_format(target: str) -> str:
    parts = target.split("/")
    return parts[2] if len(parts) > 2 else ""


def speed_rows(summary: Mapping[str, Any], *, source: str, device: str, path: Path) -> list[SpeedRow]:
    """The batch-1 in-process rows of a 02_speed summary that have a decode rate and bytes/token."""
    bw = (summary.get("bandwidth") or {}).get("bandwidth_bytes_s")
    if not bw:
        return []
    kind = "cpu" if (summary.get("bandwidth") or {}).get("device", "cpu") == "cpu" else "gpu"
    out = []
    for r in summary.get("rows", []):
        if (r.get("concurrency") != 1 or r.get("mode") != "inproc" or not r.get("decode_tok_s")
                or not r.get("bytes_read_per_token")):
            continue
        out.append(SpeedRow(source=source, device=device, kind=kind, bandwidth_bytes_s=float(bw),
                            target=r["target"], model=r["model"], engine=r["engine"],
                            fmt=_row_format(r["target"]), label=r.get("label", ""),
                            decode_tok_s=float(r["decode_tok_s"]),
                            bytes_read_per_token=float(r["bytes_read_per_token"]),
                            n_requests=int(r.get("n_requests", 0)), path=_shown(path)))
    return out


def _benchmark(task: str) -> str | None:
    for prefix, bench in TASK_BENCHMARKS.items():
        if task.startswith(prefix):
            return bench
    return None


def score_rows(summary: Mapping[str, Any], *, source: str, path: Path) -> list[ScoreRow]:
    """The task × target rows of a quality summary that score a benchmark the claims name."""
    models = {t.get("label"): t.get("model") for t in summary.get("targets", []) if isinstance(t, dict)}
    out = []
    for r in summary.get("rows", []):
        bench = _benchmark(str(r.get("task", "")))
        if bench is None or r.get("accuracy") is None or r.get("ci_low") is None:
            continue
        target = str(r.get("target", ""))
        model = r.get("model") or models.get(target) or target.split("/")[0]
        out.append(ScoreRow(source=source, model=model, benchmark=bench, task=str(r["task"]),
                            target=target, mode=str(r.get("mode", "")), n=int(r["n"]),
                            score=100 * float(r["accuracy"]), ci_low=100 * float(r["ci_low"]),
                            ci_high=100 * float(r["ci_high"]), path=_shown(path)))
    return out



def from_folder(folder: Path, *, source: str, device: str) -> Evidence:
    """Evidence from one run folder or snapshot (its <section>/summary.json files)."""
    folder = Path(folder)
    ev = Evidence()
    speed = read_json(folder / "02_speed" / "summary.json")
    if speed:
        ev.speed += speed_rows(speed, source=source, device=device, path=folder / "02_speed" / "summary.json")
    deployment = read_json(folder / "01_deployment" / "summary.json")
    for rec in (deployment or {}).get("commands", []):
        ev.commands.append({**rec, "source": source, "path": _shown(folder / "01_deployment" / "summary.json")})
    for probe in (deployment or {}).get("features", []):
        ev.features.append({**probe, "source": source, "path": _shown(folder / "01_deployment" / "summary.json")})
    for section in QUALITY_SECTIONS:
        summary = read_json(folder / section / "summary.json")
        if summary:
            ev.scores += score_rows(summary, source=source, path=folder / section / "summary.json")
    if ev:
        ev.sources.append({"name": source, "device": device, "path": _shown(folder)})
    return ev


def merge(parts: Iterable[Evidence]) -> Evidence:
    out = Evidence()
    for p in parts:
        out.speed += p.speed
        out.scores += p.scores
        out.commands += p.commands
        out.features += p.features
        out.sources += p.sources
    return out


def collect(run_dir: Path | None = None, results_root: Path = RESULTS_DIR) -> Evidence:
    """The run's measurements (when a run folder is given) and every committed snapshot's."""
    from ..provenance import device_label
    from ..results import snapshot_dirs

    parts = []
    if run_dir is not None and Path(run_dir).is_dir():
        prov = read_json(Path(run_dir) / "provenance.json") or {}
        parts.append(from_folder(Path(run_dir), source=f"run {Path(run_dir).name}",
                                 device=device_label(prov)))
    for snap in snapshot_dirs(results_root):
        prov = read_json(snap / "provenance.json") or {}
        parts.append(from_folder(snap, source=f"snapshot {snap.name}", device=device_label(prov)))
    return merge(parts)


# ---------------------------------------------------------------------------------------------
# Matching a claim
# ---------------------------------------------------------------------------------------------

SIXTEEN_BIT = ("bfloat16", "float16", "bf16", "fp16", "f16")


def format_class(fmt: str) -> str:
    """A row format's class: q4_k_m, q4 (other 4-bit GGUF), awq, int4 (GPTQ, ONNX MatMulNBits),
    fp8, 16-bit, fp32, other."""
    f = fmt.lower()
    if "q4_k_m" in f:
        return "q4_k_m"
    if f.startswith("q4"):
        return "q4"
    if "awq" in f:
        return "awq"
    if "int4" in f or "gptq" in f:
        return "int4"
    if "fp8" in f:
        return "fp8"
    if f.split("+")[0].split("-")[0] in SIXTEEN_BIT:
        return "16-bit"
    if f.startswith("float32") or f == "f32":
        return "fp32"
    return "other"


#: a claim's precision -> the row format classes that measure it. A claim that names none is
#: measured by every format a consumer card runs (the most favourable is kept); FP8 is left out
#: there, since its tensor cores need Ada or Hopper and the articles' cards are mostly Ampere.
CLAIM_FORMATS: dict[str | None, tuple[str, ...]] = {
    "q4_k_m": ("q4_k_m",), "q4": ("q4_k_m", "q4"), "q4_0": ("q4",), "awq": ("awq",),
    "int4": ("awq", "q4", "int4"), "fp16": ("16-bit",), "bf16": ("16-bit",), "fp32": ("fp32",),
    None: ("q4_k_m", "q4", "awq", "int4", "16-bit"),
}


def matching_rows(ev: Evidence, claim: Claim, kind: str) -> list[SpeedRow]:
    """Rows of the claim's model on the claim's kind of device, in a format that measures the
    claim's precision, of the claim's engine when it names one."""
    formats = CLAIM_FORMATS.get(claim.precision, ())
    return [r for r in ev.speed if r.model == claim.model and r.kind == kind
            and format_class(r.fmt) in formats and (claim.engine is None or r.engine == claim.engine)]


@dataclass(frozen=True)
class Expectation:
    """A measured row carried to the claim's hardware."""

    row: SpeedRow
    expected_tok_s: float
    roofline_tok_s: float
    model: str  # "two-term" or "roofline fraction"
    arithmetic: str


def expectation(row: SpeedRow, hw: Hardware) -> Expectation:
    """The row's decode rate on `hw` (datasheet bandwidth): the better of the two models."""
    bw = hw.bandwidth_gb_s * 1e9
    nbytes = row.bytes_read_per_token
    bound = bw / nbytes
    t_fixed = max(0.0, row.step_s - row.transfer_s)
    two_term = 1.0 / (t_fixed + nbytes / bw)
    fraction = row.decode_tok_s / (row.bandwidth_bytes_s / nbytes)
    by_fraction = fraction * bound
    best, name = (two_term, "two-term") if two_term >= by_fraction else (by_fraction, "roofline fraction")
    text = (f"{row.source} ({row.device}): {row.target} {row.decode_tok_s:.1f} tok/s, "
            f"{row.step_s * 1e3:.2f} ms/token, of which {row.transfer_s * 1e3:.2f} ms moves "
            f"{nbytes / 1e9:.3g} GB at the measured {row.bandwidth_bytes_s / 1e9:.0f} GB/s "
            f"({fraction:.0%} of that roofline); on {hw.name} ({hw.bandwidth_gb_s:g} GB/s): two-term "
            f"{t_fixed * 1e3:.2f} + {nbytes / bw * 1e3:.2f} ms → {two_term:.1f} tok/s, same roofline "
            f"fraction → {by_fraction:.1f} tok/s; expected {best:.1f} tok/s ({name}), roofline "
            f"{bound:.1f} tok/s")
    return Expectation(row, best, bound, name, text)


def best_expectation(ev: Evidence, claim: Claim, hardware: Mapping[str, Hardware]) -> Expectation | None:
    """The most favourable expectation for a decode-speed claim on named hardware, or None."""
    hw = hardware.get(claim.hardware) if claim.hardware else None
    if hw is None or not hw.bandwidth_gb_s or hw.kind not in ("gpu", "cpu"):
        return None
    rows = matching_rows(ev, claim, hw.kind)
    if not rows:
        return None
    return max((expectation(r, hw) for r in rows), key=lambda e: e.expected_tok_s)


def judge_speed(claim: Claim, ev: Evidence, hardware: Mapping[str, Hardware]) -> Verdict | None:
    """A decode-speed claim against the measured expectation on its hardware (None: no matching row)."""
    exp = best_expectation(ev, claim, hardware)
    if exp is None:
        return None
    e = exp.expected_tok_s
    diff = relative_difference(claim.value, e)
    text = f"{exp.arithmetic}; claimed {format_claimed(claim)} is {format_pct(diff)} against it"
    if claim.relation in ("<", "<="):
        return Verdict(CONSISTENT, text + " (an upper bound)", "measurement")
    if claim.value > e * (1 + MEASUREMENT_REL_TOL):
        return Verdict(INCONSISTENT, text + f": faster than the fastest measured configuration would be "
                       f"there by more than {MEASUREMENT_REL_TOL:.0%}", "measurement")
    return Verdict(CONSISTENT, text + f" (within +{MEASUREMENT_REL_TOL:.0%}; a slower claim fits a slower "
                   "configuration)", "measurement")


def judge_score(claim: Claim, ev: Evidence) -> Verdict | None:
    """A benchmark-score claim against this study's score of the same model on that benchmark."""
    rows = [r for r in ev.scores if r.model == claim.model and r.benchmark == claim.benchmark]
    if not rows:
        return None
    row = max(rows, key=lambda r: r.n)
    inside = row.ci_low <= claim.value <= row.ci_high
    if claim.relation in (">", ">="):
        ok = claim.value <= row.ci_high
    elif claim.relation in ("<", "<="):
        ok = claim.value >= row.ci_low
    else:
        ok = inside
    text = (f"{row.source}: {row.target} scored {row.score:.1f} [{row.ci_low:.1f}, {row.ci_high:.1f}] "
            f"on {row.task} ({row.mode}, n = {row.n}; {row.path}); claimed {format_claimed(claim)}")
    return Verdict(CONSISTENT if ok else INCONSISTENT,
                   text + ("" if ok else ": outside the measured 95% interval"), "measurement")


def judge_feature(claim: Claim, ev: Evidence) -> Verdict | None:
    """A feature claim ("engine X supports streaming") against notebook 01's probe of that
    engine's server (the latest one): the probe succeeded → consistent with a claimed yes,
    inconsistent with a claimed no; failed → the reverse. None when no probe of it was run."""
    rows = [p for p in ev.features if p["feature"] == claim.feature
            and p["server"].split("-")[0] == claim.engine]
    if not rows:
        return None
    p = rows[-1]
    says = "supports" if claim.value else "does not support (without code of your own)"
    ok = bool(p["ok"]) == bool(claim.value)
    text = (f"{p['source']}: {p['server']} probed with a real {claim.feature} request on the embedded "
            f"model → {'works' if p['ok'] else 'fails'} ({p['evidence']}; {p['path']}); the claim: it {says} "
            f"{claim.feature}. A property of the engine's server, the same for any model it serves")
    return Verdict(CONSISTENT if ok else INCONSISTENT, text, "measurement")


def judge_dependency(claim: Claim, record: Mapping[str, Any] | None = None) -> Verdict | None:
    """Article 003's pins against PyPI, from the recorded check (data/article003_pins.yaml, written
    by `python -m slmstudy.gradio_chat.pins`: it needs the network, so the ledger reads its
    outcome). pins_resolve: pip's resolution of the four pins succeeded → a claimed yes holds.
    remote_code_needed: the pinned transformers wheel ships Phi-3 and maps model_type "phi3" to
    it in its Auto classes → trust_remote_code is not needed, a claimed yes is inconsistent."""
    if claim.metric not in ("pins_resolve", "remote_code_needed"):
        return None
    if record is None:
        import yaml

        from ..paths import PROJECT_DATA_DIR

        path = PROJECT_DATA_DIR / "article003_pins.yaml"
        if not path.is_file():  # never recorded: the rules' verdict (not testable) stands
            return None
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
    when = f"checked {record['checked_on']} with Python {record['python']}, pip {record['pip']}"
    if claim.metric == "pins_resolve":
        r = record["resolve"]
        ok = bool(r["resolves"]) == bool(claim.value)
        got = (f"they resolve ({r['n_packages']} packages)" if r["resolves"]
               else f"pip refuses: {r.get('error', '')[-300:]}")
        text = f"{' '.join(record['pins'])}: {got} (`{r['command']}`, exit {r['exit_code']}; {when}; {_PINS_FILE})"
        return Verdict(CONSISTENT if ok else INCONSISTENT, text, "measurement")
    rows = {p["transformers"]: p for p in record["phi3_native"]}
    pinned = next((p.split("==")[1] for p in record["pins"] if p.startswith("transformers==")), None)
    p = rows.get(pinned)
    if p is None or "native_phi3" not in p:
        return None
    needed = not p["native_phi3"]
    first = min((v for v, r in rows.items() if r.get("native_phi3")),
                key=lambda v: tuple(int(x) for x in v.split(".")), default=None)
    text = (f"transformers {pinned} ({p['wheel']}): ships models/phi3/modeling_phi3.py "
            f"{'yes' if p['ships_modeling_phi3'] else 'no'}, maps phi3 → Phi3Config "
            f"{'yes' if p['auto_config_maps_phi3'] else 'no'} and → Phi3ForCausalLM "
            f"{'yes' if p['auto_causal_lm_maps_phi3'] else 'no'}, so trust_remote_code=True is "
            f"{'needed' if needed else 'not needed'}" + (f" (native since {first})" if first else "")
            + f"; `{p['command']}`; {when}; {_PINS_FILE}")
    ok = needed == bool(claim.value)
    return Verdict(CONSISTENT if ok else INCONSISTENT, text, "measurement")


_PINS_FILE = "data/article003_pins.yaml"


def judge(claim: Claim, ev: Evidence, hardware: Mapping[str, Hardware], physics: Verdict) -> Verdict | None:
    """The measured verdict for a claim, combined with the rules' verdict; None when nothing
    measured applies. A rules verdict of impossible or inconsistent (physics, a definition, a
    primary source) stands, the measurement joining its evidence: either contradiction is one."""
    if claim.metric == "decode_tok_s":
        measured = judge_speed(claim, ev, hardware)
    elif claim.metric == "benchmark_score":
        measured = judge_score(claim, ev)
    elif claim.metric == "feature_supported":
        measured = judge_feature(claim, ev)
    elif claim.metric in ("pins_resolve", "remote_code_needed"):
        measured = judge_dependency(claim)
    else:
        measured = None
    if measured is None:
        return None
    if physics.verdict in (IMPOSSIBLE, INCONSISTENT):
        return Verdict(physics.verdict, f"{physics.evidence}; measured: {measured.evidence}", physics.basis)
    if physics.verdict == CONSISTENT and measured.verdict == CONSISTENT:
        return Verdict(CONSISTENT, f"{measured.evidence}; {physics.basis}: {physics.evidence}", "measurement")
    return measured


def command_verdicts(ev: Evidence) -> list[dict[str, Any]]:
    """The articles' command lines and code listings judged by what they did here: serves (a
    listing: runs) as written → consistent; refused (fails) → inconsistent (the error, and what
    the corrections needed); not run → not testable here (why). One row per command, the latest
    record when several sources ran it."""
    latest: dict[str, dict] = {}
    for rec in ev.commands:
        latest[rec["id"]] = rec
    rows = []
    for cid, rec in latest.items():
        attempts = rec.get("attempts") or []
        if rec["outcome"] in ("serves", "runs"):
            verdict, evidence = CONSISTENT, f"{rec['outcome']} as written"
            if rec["outcome"] == "runs" and attempts and attempts[0].get("printed"):
                evidence += f"; it printed {attempts[0]['printed'][:80]!r}…"
        elif rec["outcome"] == "not run":
            verdict, evidence = NOT_TESTABLE, rec.get("reason", "")
        elif rec["outcome"] in ("refused", "fails"):
            verdict = INCONSISTENT
            evidence = f"{rec['outcome']} as written (exit {attempts[0].get('exit_code')}): {rec.get('reason', '')}"
            if len(attempts) > 1:
                evidence += (f"; {len(attempts) - 1} correction(s) run: "
                             + "; ".join(f"{a['fixes'][-1]} → {a['outcome']}" for a in attempts[1:]))
        else:
            verdict, evidence = NOT_TESTABLE, f"{rec['outcome']} (no answer within the time limit)"
        rows.append({"id": cid, "article": rec["article"], "section": rec["section"], "quote": rec["quote"],
                     "claim": rec["claim"], "outcome": rec["outcome"],
                     "corrected": rec.get("fixed_outcome"), "verdict": verdict, "evidence": evidence,
                     "source": rec["source"], "record": rec["path"]})
    return rows
