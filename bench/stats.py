"""Summaries of repeated measurements: percentiles, and medians with their spread.

Each figure the suite reports is the median of several repeats; the spread
(lowest and highest repeat) is kept beside it so a reader can tell a real
difference from noise on a shared 2-core machine.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(latencies_ns: Sequence[int], errors: int, elapsed: float) -> dict[str, Any]:
    """What one timed run reports: rate and latency percentiles in milliseconds."""
    ms = [x / 1e6 for x in latencies_ns]
    return {
        "count": len(ms),
        "errors": errors,
        "elapsed_s": elapsed,
        "rate": len(ms) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
        "max_ms": max(ms) if ms else float("nan"),
    }


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of repeats, with the lowest and highest repeat."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise repeats; an empty list gives NaNs rather than an exception."""
        if not values:
            nan = float("nan")
            return cls(nan, nan, nan, 0)
        return cls(statistics.median(values), min(values), max(values), len(values))

    def to_dict(self) -> dict[str, float]:
        """For results.json."""
        return asdict(self)

    def show(self, digits: int = 2) -> str:
        """``median [low-high]`` for the printed table."""
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}-{self.high:.{digits}f}]"


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """Ratios of repeats taken side by side (repeat i with repeat i), summarised.

    Pairing keeps a noisy moment from counting against only one side.
    """
    pairs = [n / d for n, d in zip(numerators, denominators, strict=False) if d > 0]
    return Spread.of(pairs)
