"""Small, exact statistics for funnel figures (no SciPy needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class RankTest:
    """Mann–Whitney U test of two samples x and y (two-sided, normal approximation)."""

    u: float  # U of x: pairs (x_i, y_j) with x_i > y_j, ties counting one half
    n1: int
    n2: int
    z: float  # > 0 when x tends to be larger than y
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> RankTest | None:
    """Two-sided Mann–Whitney U test with the normal approximation, the tie correction of
    the variance and a continuity correction of one half; None when a sample is empty.

    Ranks of the pooled samples are averaged over ties; U = R1 − n1(n1 + 1)/2 where R1 is the
    rank sum of x; under the null hypothesis U has mean n1·n2/2 and variance
    n1·n2/12 · ((n + 1) − Σ(t³ − t) / (n(n − 1))), t running over the sizes of the tie groups."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return None
    pooled = np.concatenate([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    _values, inverse, counts = np.unique(pooled, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0  # ranks start at 1
    ranks = average_rank[inverse.reshape(-1)]
    u = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    mean = n1 * n2 / 2.0
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return RankTest(u, n1, n2, 0.0, 1.0)
    distance = max(abs(u - mean) - 0.5, 0.0)
    z = math.copysign(distance / math.sqrt(variance), u - mean) if distance else 0.0
    return RankTest(u, n1, n2, z, min(1.0, math.erfc(abs(z) / math.sqrt(2))))


def poisson_count_test(n1: int, n2: int) -> ProportionTest | None:
    """Two counts of events over periods of equal length (Poisson arrivals): given their sum,
    n1 is binomial(n1 + n2, 1/2) when the rates are equal. Two-sided normal approximation:
    z = (n1 − n2) / √(n1 + n2); ``difference`` is n1 − n2. None when both are zero."""
    total = n1 + n2
    if total <= 0:
        return None
    z = (n1 - n2) / math.sqrt(total)
    return ProportionTest(float(n1 - n2), z, math.erfc(abs(z) / math.sqrt(2)))
