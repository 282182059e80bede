"""95 % intervals: Wilson for rates (checked against the closed form), bootstrap for means, paired differences;
run summaries and the report carry them."""
from __future__ import annotations

import math

import pytest

from navtune.metrics.intervals import bootstrap_mean, mean_interval, paired_difference, wilson


def _wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize("k,n", [(66, 360), (0, 72), (72, 72), (1, 3), (150, 300)])
def test_wilson_equals_the_closed_form(k, n):
    lo, hi = wilson(k, n)
    ref = _wilson_closed_form(k, n)
    # both sides are a few float64 operations on numbers of order 1
    assert lo == pytest.approx(ref[0], abs=1e-12) and hi == pytest.approx(ref[1], abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_mean_interval_picks_wilson_for_rates_and_bootstrap_otherwise():
    rates = [1.0] * 30 + [0.0] * 70
    assert mean_interval(rates) == wilson(30, 100)
    vals = [0.1 * (i % 10) for i in range(200)]
    lo, hi = mean_interval(vals)
    m = sum(vals) / len(vals)
    assert lo < m < hi and hi - lo < 0.2
    assert bootstrap_mean(vals) == bootstrap_mean(vals)  # seeded: the same rows give the same interval
    assert mean_interval([0.5, 0.5]) == (0.5, 0.5) and mean_interval([None]) is None


def test_paired_difference_sees_a_consistent_gain_that_separate_intervals_would_not():
    # 200 episodes of varied difficulty; run b succeeds on 12 more of them than run a
    a = [1.0 if i % 3 == 0 else 0.0 for i in range(200)]
    b = list(a)
    changed = [i for i in range(200) if a[i] == 0.0][:12]
    for i in changed:
        b[i] = 1.0
    d = paired_difference("sr", a, b)
    assert d.diff == pytest.approx(12 / 200) and d.episodes == 200 and d.significant
    assert wilson(int(sum(b)), 200)[0] < wilson(int(sum(a)), 200)[1]  # the two unpaired intervals overlap
    same = paired_difference("sr", a, a)
    assert same.diff == 0.0 and not same.significant
    with pytest.raises(ValueError, match="different lengths"):
        paired_difference("sr", a, b[:-1])
