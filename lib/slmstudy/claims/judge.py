"""Judging: measurements first where the study has one, else the rules; verdict counts and ledger rows."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from .measured import Evidence
from .measured import judge as judge_measured
from .model import Claim, Hardware, MeasurementKey, Verdict, measurement_key
from .physics import format_claimed, format_pct, relative_difference
from .rules import judge_by_physics
from .vocabulary import CONSISTENT, IMPOSSIBLE, INCONSISTENT, MEASUREMENT_REL_TOL, VERDICTS

# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------

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
    measurements: Mapping[MeasurementKey, float] | Evidence | None = None,
    *,
    ledger: Mapping[str, Claim] | None = None,
) -> Verdict:
    """Judge one claim: physics/arithmetic first, then this study's measurement where comparable.

    `measurements` is the run's and the snapshots' `measured.Evidence` (the study's path), or a
    plain table keyed like `measurement_key(claim)` (a single measured number per key).

    A physics/arithmetic verdict of inconsistent or impossible stands (a measurement cannot
    overturn it; it is appended to the evidence). Otherwise a measurement with the same
    (model, metric, precision, hardware) key decides. `ledger` (id -> claim) lets a claim be
    checked against the claims it derives from (e2e_s).
    """
    physics = judge_by_physics(claim, arch, hardware, ledger)
    if isinstance(measurements, Evidence):
        by_measurement = judge_measured(claim, measurements, hardware, physics)
        return physics if by_measurement is None else by_measurement
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
    measurements: Mapping[MeasurementKey, float] | Evidence | None = None,
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
