import math

import pytest

from slmstudy import metrics as m

MS = 1_000_000


def test_definitions_on_known_timestamps():
    t_send = 0
    times = [100 * MS, 110 * MS, 120 * MS, 130 * MS]
    assert m.ttft_s(t_send, times) == pytest.approx(0.100)
    assert m.e2e_s(t_send, times) == pytest.approx(0.130)
    assert m.decode_tok_s(times) == pytest.approx(3 / 0.030)
    assert m.tpot_s(times) == pytest.approx(0.010)
    assert m.itl_s(times) == pytest.approx([0.01, 0.01, 0.01])
    assert m.prefill_tok_s(512, 0.1) == pytest.approx(5120)
    assert m.chars_per_s("你好世界", t_send, times) == pytest.approx(4 / 0.130)


def test_single_token_has_no_decode_rate():
    assert math.isnan(m.decode_tok_s([5]))


def test_bootstrap_ci_contains_median_and_shrinks_with_n():
    import numpy as np

    rng = np.random.default_rng(1)
    small = rng.normal(10, 1, 5)
    big = rng.normal(10, 1, 500)
    p, lo, hi = m.bootstrap_ci(small)
    assert lo <= p <= hi
    p2, lo2, hi2 = m.bootstrap_ci(big)
    assert lo2 <= p2 <= hi2 and (hi2 - lo2) < (hi - lo)
    assert m.bootstrap_ci([3.0]) == (3.0, 3.0, 3.0)


def test_wilson_interval():
    p, lo, hi = m.binomial_ci(5, 10)
    assert p == 0.5 and lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert m.binomial_ci(0, 10)[1] == 0.0


def test_roofline():
    assert m.roofline_tok_s(3000e9, 15e9) == pytest.approx(200)


def test_wilson_interval_always_holds_the_point_even_at_0_and_n():
    for n in range(1, 60):
        for k in (0, n):
            p, lo, hi = m.binomial_ci(k, n)
            assert 0.0 <= lo <= p <= hi <= 1.0, (k, n, lo, p, hi)
