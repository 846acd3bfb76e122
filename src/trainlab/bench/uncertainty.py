"""Bootstrap intervals for the benchmark's numbers (per-workload times, ratios, scores, speedups).

The resampling unit is the **study**: each study is an independent tuning run (in step mode
studies differ only by seed), so the studies of one (algorithm, workload) cell are exchangeable
draws of "how long does this algorithm take here". One bootstrap replicate draws, independently
for every cell, as many study times as the cell has, with replacement, and recomputes everything
downstream exactly as :mod:`trainlab.bench.scoring` does for the point estimate: the median over
studies, the held-out-variant rule, the ratios to each workload's fastest algorithm, the exact
profile integral and the geometric-mean speedups (AlgoPerf's scoring, Dahl et al., "Benchmarking
Neural Network Training Algorithms", 2023; AlgoPerf itself reports no intervals). A miss (an
infinite study time) is an ordinary resampled value: a replicate in which most draws of a cell
are misses gives that cell an infinite median.

The interval is the percentile interval of the replicates: for 95 %, the lower order statistic
at the 2.5 % quantile and the upper one at the 97.5 % quantile (order statistics rather than
interpolation, so an infinite end stays infinite instead of turning into ``nan``).

Everything is vectorised over replicates with numpy: arrays are ``(B, algorithms, workloads)``.
A benchmark in which no cell has two studies has nothing to resample: every interval is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

N_BOOT = 2000
CONFIDENCE = 0.95

Interval = tuple[float, float]


def ratio_array(t: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Element-wise ``t / best`` with scoring's conventions: infinite when either is infinite;
    with a best time of 0, 1 for a time of 0 and infinite otherwise."""
    t, best = np.broadcast_arrays(np.asarray(t, float), np.asarray(best, float))
    with np.errstate(invalid="ignore"):  # inf / inf, replaced below
        out = np.where(best > 0, t / np.where(best > 0, best, 1.0), np.where(t <= 0, 1.0, np.inf))
    return np.where(np.isinf(t) | np.isinf(best), np.inf, out)


def study_matrix(
    study_times: Mapping[str, Mapping[str, Mapping[int, float]]],
    algorithms: Sequence[str],
    workloads: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """``(values, counts)``: values ``(A, W, S)`` padded with ``inf``, counts ``(A, W)``."""
    counts = np.array(
        [[len(study_times[a][w]) for w in workloads] for a in algorithms], dtype=np.int64
    ).reshape(len(algorithms), len(workloads))
    values = np.full((*counts.shape, max(int(counts.max(initial=0)), 1)), np.inf)
    for i, a in enumerate(algorithms):
        for j, w in enumerate(workloads):
            cell = list(study_times[a][w].values())
            values[i, j, : len(cell)] = cell
    return values, counts


def medians(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median over the first ``counts[...]`` entries of the last axis (the rest is padding;
    ``inf`` for a count of 0); of an even number, the mean of the two middle values."""
    slot = np.arange(values.shape[-1])
    ordered = np.sort(np.where(slot < counts[..., None], values, np.inf), axis=-1)
    n = np.maximum(counts, 1)[..., None]
    low = np.take_along_axis(ordered, (n - 1) // 2, axis=-1)[..., 0]
    high = np.take_along_axis(ordered, n // 2, axis=-1)[..., 0]
    out = (low + high) / 2  # inf + inf and x + inf are inf: no nan
    return np.where(counts > 0, out, np.inf)


def resampled_medians(
    values: np.ndarray, counts: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """``(B, A, W)`` medians over studies, each cell's studies drawn with replacement."""
    shape = (n_boot, *values.shape)
    safe = np.maximum(counts, 1)[None, ..., None]
    picks = np.floor(rng.random(shape) * safe).astype(np.int64)
    drawn = np.take_along_axis(np.broadcast_to(values, shape), picks, axis=-1)
    return medians(drawn, np.broadcast_to(counts, shape[:-1]))


def score_arrays(
    raw: np.ndarray,
    workloads: Sequence[str],
    scored: Sequence[str],
    variants: Mapping[str, Sequence[str]],
    r_max: float,
    reference: int,
) -> dict[str, np.ndarray]:
    """From median times ``raw`` ``(B, A, W_all)``: ``times`` and ``ratios`` ``(B, A, W)`` over
    the scored workloads, ``scores`` ``(B, A)`` and ``speedups`` ``(B, A)`` over algorithm
    ``reference`` (``nan`` where no workload has both finite). The same rules as
    :func:`trainlab.bench.scoring.compute_scores`."""
    col = {w: j for j, w in enumerate(workloads)}
    times = raw[..., [col[w] for w in scored]].copy()
    for base, vs in variants.items():
        qualified = np.isfinite(raw[..., col[base]])  # (B, A)
        failed = np.zeros_like(qualified)
        for v in vs:
            tv = raw[..., col[v]]
            fastest = np.where(qualified, tv, np.inf).min(axis=-1, keepdims=True)
            failed |= np.isinf(tv) | (ratio_array(tv, fastest) > r_max)
        times[..., list(scored).index(base)][failed] = np.inf
    best = times.min(axis=1, keepdims=True)
    ratios = ratio_array(times, best)
    inside = ratios <= r_max
    area = np.where(inside, r_max - np.maximum(np.where(inside, ratios, 1.0), 1.0), 0.0)
    scores = area.sum(axis=-1) / (max(len(scored), 1) * (r_max - 1.0))
    ref = times[:, reference : reference + 1, :]
    both = np.isfinite(ref) & np.isfinite(times) & (ref > 0) & (times > 0)
    logs = np.where(both, np.log(np.where(both, ref / np.where(both, times, 1.0), 1.0)), 0.0)
    k = both.sum(axis=-1)
    speedups = np.where(k > 0, np.exp(logs.sum(axis=-1) / np.maximum(k, 1)), np.nan)
    return {"times": times, "ratios": ratios, "scores": scores, "speedups": speedups}


def percentile_interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> np.ndarray:
    """Percentile interval along axis 0 as ``(2, ...)``: order statistics at ``(1-c)/2`` (lower)
    and ``(1+c)/2`` (upper)."""
    tail = (1.0 - confidence) / 2
    low = np.quantile(samples, tail, axis=0, method="lower")
    high = np.quantile(samples, 1.0 - tail, axis=0, method="higher")
    return np.stack([low, high])


def _pair(low: float, high: float) -> Interval:
    return (float(low), float(high))


def bootstrap_scores(
    study_times: Mapping[str, Mapping[str, Mapping[int, float]]],
    algorithms: Sequence[str],
    workloads: Sequence[str],
    scored: Sequence[str],
    variants: Mapping[str, Sequence[str]],
    r_max: float,
    reference: str,
    n_boot: int = N_BOOT,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict[str, Any] | None:
    """Intervals of every number of a score, or ``None`` when there is nothing to resample
    (``n_boot`` < 1 or no cell with two studies). Returns ``{"times": a -> w -> interval,
    "ratios": a -> w -> interval, "scores": a -> interval, "speedups": a -> interval | None}``;
    a speedup's interval is over the replicates in which it is defined, and ``None`` when it
    is defined in none."""
    values, counts = study_matrix(study_times, algorithms, workloads)
    if n_boot < 1 or counts.max(initial=0) < 2:
        return None
    rng = np.random.default_rng(seed)
    raw = resampled_medians(values, counts, n_boot, rng)
    out = score_arrays(raw, workloads, scored, variants, r_max, list(algorithms).index(reference))
    times = percentile_interval(out["times"], confidence)
    ratios = percentile_interval(out["ratios"], confidence)
    scores = percentile_interval(out["scores"], confidence)
    result: dict[str, Any] = {"times": {}, "ratios": {}, "scores": {}, "speedups": {}}
    for i, a in enumerate(algorithms):
        result["times"][a] = {w: _pair(*times[:, i, j]) for j, w in enumerate(scored)}
        result["ratios"][a] = {w: _pair(*ratios[:, i, j]) for j, w in enumerate(scored)}
        result["scores"][a] = _pair(*scores[:, i])
        defined = out["speedups"][:, i]
        defined = defined[np.isfinite(defined)]
        result["speedups"][a] = (
            _pair(*percentile_interval(defined, confidence)) if defined.size else None
        )
    return result
