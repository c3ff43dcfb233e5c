"""Numbers as the study prints them: three significant digits, and every estimate that has an
interval as one cell "x [lo, hi]" (the notebooks' tables and the book's pages share these)."""

from __future__ import annotations

import math
from typing import Any

NBSP = "\u00a0"  # inside "x [lo, hi]": a table cell never breaks an interval across lines


def num(x: Any, digits: int = 3) -> str:
    """A number as people read it: `digits` significant digits (thousands kept whole, with
    separators), '—' for none or NaN, yes/no for booleans."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if not isinstance(x, (int, float)):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def interval(mid: Any, lo: Any, hi: Any, scale: float = 1.0, digits: int = 3) -> str:
    """'x [lo, hi]' — the median (or proportion) and its 95% interval; 'x' without an interval."""
    if mid is None or (isinstance(mid, float) and not math.isfinite(mid)):
        return "—"
    s = num(mid * scale, digits)
    if lo is None or hi is None or any(isinstance(v, float) and not math.isfinite(v) for v in (lo, hi)):
        return s
    return f"{s}{NBSP}[{num(lo * scale, digits)},{NBSP}{num(hi * scale, digits)}]"


def _bounds(col: str, columns) -> tuple[str, str] | None:
    """The interval columns of `col`: <col>_ci_low/_ci_high (speed), ci_low/ci_high for accuracy,
    <name>_ci_low for <name>_accuracy (a named verdict's accuracy)."""
    for lo, hi in ((f"{col}_ci_low", f"{col}_ci_high"),
                   ("ci_low", "ci_high") if col == "accuracy" else (None, None),
                   (f"{col.removesuffix('_accuracy')}_ci_low", f"{col.removesuffix('_accuracy')}_ci_high")
                   if col.endswith("_accuracy") else (None, None)):
        if lo and lo in columns and hi in columns:
            return lo, hi
    return None


def with_intervals(df, digits: int = 3):
    """A copy of a results DataFrame where each estimate with interval columns becomes one column
    '<name> [95% CI]' of "x [lo, hi]" strings (the bounds' own columns go); other numbers are
    rounded to `digits` significant digits. For display only: the records keep every field."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    used: set[str] = set()
    for col in df.columns:
        b = _bounds(col, df.columns)
        if b:
            used.update(b)
    for col in df.columns:
        if col in used:
            continue
        b = _bounds(col, df.columns)
        if b:
            out[f"{col} [95% CI]"] = [interval(m, lo, hi, digits=digits)
                                      for m, lo, hi in zip(df[col], df[b[0]], df[b[1]])]
        elif pd.api.types.is_float_dtype(df[col]):
            out[col] = [num(v, digits) if v == v else "—" for v in df[col]]
        else:
            out[col] = df[col]
    return out
