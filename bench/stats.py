"""Small helpers to print benchmark figures the same way everywhere."""

from __future__ import annotations

import statistics


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_line(latencies: list[float]) -> str:
    ms = [x * 1000 for x in latencies]
    return (f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
            f"mean {statistics.fmean(ms) if ms else 0:.1f} ms, max {max(ms, default=0):.1f} ms")
