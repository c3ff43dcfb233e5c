"""Measurement definitions — stated once, here. Every figure's formula is in a docstring below.

Clock: `time.perf_counter_ns`. t_send is taken just before the request is handed to the engine
(in-process: after tokenization, which is timed apart); t_k is the arrival of output token k,
k = 1..N, with N counted from the exact output token ids.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np

NS = 1e-9


def ttft_s(t_send_ns: int, token_times_ns: Sequence[int]) -> float:
    """TTFT = t_1 − t_send (first chunk that carries ≥ 1 generated token)."""
    return (token_times_ns[0] - t_send_ns) * NS


def e2e_s(t_send_ns: int, token_times_ns: Sequence[int]) -> float:
    """E2E = t_N − t_send."""
    return (token_times_ns[-1] - t_send_ns) * NS


def decode_tok_s(token_times_ns: Sequence[int], n_tokens: int | None = None) -> float:
    """Decode tok/s = (N − 1) / (t_N − t_1). NaN when N < 2. N = one per arrival time, or
    `n_tokens` when a stream's chunks carried several tokens (arrival times per chunk)."""
    n = len(token_times_ns) if n_tokens is None else n_tokens
    if len(token_times_ns) < 2 or n < 2 or token_times_ns[-1] == token_times_ns[0]:
        return float("nan")
    return (n - 1) / ((token_times_ns[-1] - token_times_ns[0]) * NS)


def tpot_s(token_times_ns: Sequence[int]) -> float:
    """TPOT = 1 / decode tok/s = (t_N − t_1) / (N − 1)."""
    rate = decode_tok_s(token_times_ns)
    return 1.0 / rate if rate and not math.isnan(rate) else float("nan")


def itl_s(token_times_ns: Sequence[int]) -> list[float]:
    """Inter-token latencies t_k − t_{k−1}, k = 2..N (pool them across requests)."""
    return [(b - a) * NS for a, b in zip(token_times_ns, token_times_ns[1:])]


def prefill_tok_s(prompt_len: int, ttft: float) -> float:
    """Prefill tok/s = prompt_len / TTFT."""
    return prompt_len / ttft if ttft > 0 else float("nan")


def chars_per_s(text: str, t_send_ns: int, token_times_ns: Sequence[int]) -> float:
    """Output characters per second over E2E (tokenizer-neutral; matters for Chinese)."""
    e2e = e2e_s(t_send_ns, token_times_ns)
    return len(text) / e2e if e2e > 0 else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (0..100), linear interpolation; NaN for no values."""
    if not len(values):
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def bootstrap_ci(values: Sequence[float], stat=np.median, *, n_boot: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(statistic, low, high): percentile bootstrap CI of `stat` over `values`.

    The interval always contains the point estimate (it is widened to include it if a
    degenerate resample distribution would exclude it).
    """
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if x.size == 0:
        return (float("nan"),) * 3
    point = float(stat(x))
    if x.size == 1:
        return point, point, point
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = np.apply_along_axis(stat, 1, x[idx])
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    return point, float(min(lo, point)), float(max(hi, point))


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (stdev / mean) across repetitions."""
    x = [v for v in values if not math.isnan(v)]
    if len(x) < 2 or statistics.fmean(x) == 0:
        return float("nan")
    return statistics.stdev(x) / statistics.fmean(x)


def binomial_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(p, low, high): Wilson score interval for a proportion."""
    if n == 0:
        return (float("nan"),) * 3
    z = {0.95: 1.959963984540054, 0.9: 1.6448536269514722, 0.99: 2.5758293035489004}[confidence]
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 or n successes the Wilson bound equals p exactly; rounding can put it a hair beyond
    # (0/3 gave a low of 5.6e-17 > 0, a negative error bar), so the interval is clipped to hold p
    return p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def roofline_tok_s(bandwidth_bytes_s: float, bytes_read_per_token: float) -> float:
    """Batch-1 decode upper bound = memory bandwidth ÷ bytes of weights read per token."""
    return bandwidth_bytes_s / bytes_read_per_token


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for paired binary outcomes: `b` items only the first
    got right, `c` only the second (the binomial test of b against Binomial(b + c, 1/2), as
    statsmodels' `mcnemar(exact=True)`). 1.0 when there are no discordant pairs."""
    from math import comb

    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_difference_ci(b: int, c: int, n: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Accuracy difference (first − second) over `n` paired items with its Wald interval for
    paired proportions: (b − c)/n ± z·sqrt(b + c − (b − c)²/n)/n (Agresti, Categorical Data
    Analysis, §10.1). (nan, nan, nan) for n = 0."""
    from statistics import NormalDist

    if n <= 0:
        return float("nan"), float("nan"), float("nan")
    d = (b - c) / n
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * math.sqrt(max(0.0, b + c - (b - c) ** 2 / n)) / n
    return d, d - half, d + half
