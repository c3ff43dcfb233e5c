"""The articles' decode-speed claims as the ledger judges them from measurements, in the table
notebook 02 shows: for each claim on named hardware, the measured row that carries best to that
hardware (`measured.best_expectation`: same model, matching format and engine), the expectation
and the roofline there, and the ledger's verdict. One scaling model, one vocabulary: notebook 00
shows the same verdicts, because both come from `claims.judge` with the same evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from ..paths import RESULTS_DIR
from ..results import Snapshot, load_snapshot, snapshot_dirs
from . import measured
from .judge import judge
from .model import Claim, Hardware


def snapshots(root: Path = RESULTS_DIR) -> list[Snapshot]:
    """Committed result snapshots that hold a speed summary (loaded by `results.load_snapshot`)."""
    return [snap for snap in map(load_snapshot, snapshot_dirs(root)) if "02_speed" in snap.sections]


def speed_claims(evidence: measured.Evidence, claims: Iterable[Claim], hardware: Mapping[str, Hardware],
                 arch: Mapping[str, Mapping]) -> dict[str, list[dict]]:
    """source ("snapshot <name>" / "run <id>") -> the decode-speed claims its rows decide: the
    claim, the expectation there and the roofline, the ledger's verdict and its arithmetic."""
    claims = list(claims)
    ledger = {c.id: c for c in claims}
    out: dict[str, list[dict]] = {}
    for c in claims:
        if c.metric != "decode_tok_s":
            continue
        exp = measured.best_expectation(evidence, c, hardware)
        if exp is None:
            continue
        v = judge(c, arch, hardware, evidence, ledger=ledger)
        out.setdefault(exp.row.source, []).append({
            "claim": c.id, "model": c.model, "hardware": c.hardware, "precision": c.precision,
            "claimed_tok_s": c.value, "expected_tok_s": exp.expected_tok_s,
            "roofline_tok_s": exp.roofline_tok_s, "verdict": v.verdict, "basis": exp.row.target,
            "model_used": exp.model, "arithmetic": v.evidence})
    return out
