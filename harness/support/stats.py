"""Order statistics shared by the live view and the judgement."""
from __future__ import annotations

import math

import numpy as np


def percentiles(values: np.ndarray, ps: list[float]) -> list[float]:
    """Nearest-rank percentiles: the smallest value with at least p% of values at or below
    it, so every figure is a latency that really occurred. Exact, not interpolated."""
    ordered = np.sort(values)
    n = len(ordered)
    # round() before ceil(): 99.9% of 1000 must be rank 999, not 1000 by float error.
    return [float(ordered[max(0, math.ceil(round(p / 100 * n, 9)) - 1)]) for p in ps]
