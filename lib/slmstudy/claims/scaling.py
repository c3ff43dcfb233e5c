"""Answer GPU speed claims with a measured GPU run, scaled by memory bandwidth.

A batch-1 decode step takes t = t_fixed + bytes_read_per_token / bandwidth: a memory-bound part
and a fixed part (kernel launches, synchronisation, sampling, Python) that the bandwidth does not
shrink. One GPU run (the H100 snapshot in results/) measures t for each engine × architecture ×
format, hence t_fixed = t − bytes/bandwidth_measured. On another GPU with datasheet bandwidth B the
expectation is 1 / (t_fixed + bytes/B), and bytes/B alone gives the hard upper bound (roofline).
Assumption, stated with every number: the fixed part is no smaller on the other card.
"""

from __future__ import annotations

from pathlib import Path

from ..paths import RESULTS_DIR
from ..results import Snapshot, load_snapshot, snapshot_dirs
from .vocabulary import CONSISTENT, IMPOSSIBLE, INCONSISTENT, MEASUREMENT_REL_TOL

FOUR_BIT = ("q4_k_m", "q4_0", "awq", "gptq", "int4")


def snapshots(root: Path = RESULTS_DIR) -> list[Snapshot]:
    """Committed result snapshots that hold a speed summary (loaded by `results.load_snapshot`)."""
    return [snap for snap in map(load_snapshot, snapshot_dirs(root)) if "02_speed" in snap.sections]


EIGHT_BIT = ("fp8", "int8", "q8_0", "w8a8")


def _precision_class(precision: str | None) -> set[str]:
    """The precision classes a claim allows: its own, or 16- and 4-bit when it names none."""
    if precision is None:
        return {"16-bit", "4-bit"}
    p = precision.lower()
    return {"4-bit"} if p in FOUR_BIT else {"8-bit"} if p in EIGHT_BIT else {"16-bit"}


def _row_class(row: dict) -> str:
    """A snapshot row's precision class from its format (the target's third part): AWQ/GPTQ/int4
    and Q4 GGUFs are 4-bit, FP8/int8/Q8 8-bit, the rest 16-bit."""
    fmt = row["target"].split("/")[2].lower()
    if "q4" in fmt or any(k in fmt for k in ("awq", "gptq", "int4")):
        return "4-bit"
    if any(k in fmt for k in ("fp8", "int8", "q8")):
        return "8-bit"
    return "16-bit"


def best_row(speed: dict, model: str, precision_class: str) -> dict | None:
    """The fastest batch-1 in-process row of a speed summary for this model in this precision class."""
    rows = [r for r in speed["rows"] if r["model"] == model and r["concurrency"] == 1
            and r["mode"] == "inproc" and r.get("decode_tok_s") and _row_class(r) == precision_class]
    return max(rows, key=lambda r: r["decode_tok_s"], default=None)


def scale_claims(snapshot: Snapshot, claims, hardware: dict) -> list[dict]:
    """For each decode tok/s claim on a GPU with a known bandwidth: the expectation from the
    snapshot's fastest engine (two-term model above) and the roofline bound, with the arithmetic."""
    speed = snapshot.sections["02_speed"]
    bw_measured = speed["bandwidth"]["bandwidth_bytes_s"]
    out = []
    for c in claims:
        if c.metric != "decode_tok_s" or not c.hardware or c.hardware not in hardware:
            continue
        hw = hardware[c.hardware]
        bw = getattr(hw, "bandwidth_gb_s", None)
        if getattr(hw, "kind", None) != "gpu" or not bw:
            continue
        cands = []  # the precisions the claim allows; the fastest expectation is kept
        for cls in sorted(_precision_class(c.precision)):
            row = best_row(speed, c.model, cls)
            if not row:
                continue
            nbytes = row["bytes_read_per_token"]
            t_step = 1.0 / row["decode_tok_s"]
            t_fixed = max(0.0, t_step - nbytes / bw_measured)
            expected = 1.0 / (t_fixed + nbytes / (bw * 1e9))
            bound = bw * 1e9 / nbytes
            cands.append((expected, bound, t_step, t_fixed, row))
        if not cands:
            continue
        expected, bound, t_step, t_fixed, row = max(cands, key=lambda x: x[0])
        nbytes = row["bytes_read_per_token"]
        # the ledger's one vocabulary: above the roofline is impossible; above what the measured
        # engines would reach there (by more than the measurement tolerance) is inconsistent
        verdict = (IMPOSSIBLE if c.value > bound * 1.02 else
                   INCONSISTENT if c.value > expected * (1 + MEASUREMENT_REL_TOL) else CONSISTENT)
        out.append({
            "claim": c.id, "model": c.model, "hardware": c.hardware, "precision": c.precision,
            "claimed_tok_s": c.value, "expected_tok_s": expected, "roofline_tok_s": bound,
            "verdict": verdict, "basis": row["target"],
            "arithmetic": (
                f"{snapshot.name}: {row['target']} {row['decode_tok_s']:.1f} tok/s → "
                f"{t_step * 1e3:.2f} ms/token, of which {nbytes / bw_measured * 1e3:.2f} ms moves "
                f"{nbytes / 1e9:.2f} GB at {bw_measured / 1e9:.0f} GB/s and {t_fixed * 1e3:.2f} ms is "
                f"fixed. {hw.name} ({bw:.0f} GB/s): {t_fixed * 1e3:.2f} + {nbytes / 1e9:.2f}/{bw:.0f}"
                f"×1e3 = {1e3 / expected:.2f} ms → {expected:.1f} tok/s expected, "
                f"≤ {bound:.1f} tok/s at the roofline; claimed {c.value:g}"),
        })
    return out
