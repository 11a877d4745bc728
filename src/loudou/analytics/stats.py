"""Small, exact statistics for funnel figures (no SciPy needed)."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion; (None, None) when there are no trials.

    Unlike the normal approximation it stays inside [0, 1] and behaves for 0/n and n/n,
    which small cohorts (one rep, one month) produce all the time."""
    if trials <= 0:
        return None, None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ProportionTest:
    difference: float  # p1 - p2
    z: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def two_proportion_test(s1: int, n1: int, s2: int, n2: int) -> ProportionTest | None:
    """Two-sided z-test with pooled variance for p1 = s1/n1 against p2 = s2/n2."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = s1 / n1, s2 / n2
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return ProportionTest(p1 - p2, 0.0, 1.0)
    z = (p1 - p2) / se
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return ProportionTest(p1 - p2, z, p_value)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 1]) of an ascending list, like numpy's default."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
