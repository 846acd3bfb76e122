"""Compare two algorithms of one benchmark: is A faster than B?

For each workload, A's **speedup** over B is ``t_B / t_A``, where ``t`` is the median over
studies of each study's fastest trial that reached the target (AlgoPerf's per-workload time,
Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023). A miss is an infinite
time: a speedup of ``inf`` when only B missed, ``0`` when only A missed, undefined (``None``)
when both did. Overall, the speedup is the geometric mean over the workloads where both reached
the target (as :func:`trainlab.bench.scoring.speedup`).

**Intervals**: percentile bootstrap over *paired* studies (study ``i`` of A with study ``i`` of
B, which share their seed in step mode): each replicate draws a workload's paired study indices
with replacement, the same draw for both algorithms, and recomputes both medians and the
speedups (see :mod:`trainlab.bench.uncertainty`). The point estimates use every study of each
algorithm; the intervals and the test use the paired ones (the same set in any complete
benchmark).

**Test**: a one-sided Wilcoxon signed-rank test on the paired log time ratios
``d_i = log(t_B,i / t_A,i)`` pooled over workloads (log ratios have no unit, so studies of
different workloads can be pooled), with the exact null distribution of the signed-rank sum
under random sign flips (a permutation test, computed exactly by convolution, so it is exact
with tied ranks and any number of pairs; without ties it equals ``scipy.stats.wilcoxon``'s exact
test). Why this test: a study's times are heavy-tailed and may be infinite, so a t-test on the
times or their logs is not valid, while ranks only need an order. Misses: a pair where only one
side missed is a difference larger than any finite one (it gets the largest rank, ties among
such pairs shared); a pair where both missed, or with equal times, says nothing about which is
faster and is dropped (Wilcoxon's zero handling). ``p_value`` is for "A is faster",
``p_value_slower`` for "A is slower". With ``n`` pairs the smallest attainable p-value is
``2**-n``: five studies of one workload can never give p < 0.01 on their own.

**Verdict**: ``faster`` when ``p_value < alpha``, ``slower`` when ``p_value_slower < alpha``,
else ``no difference at p < alpha``; ``alpha = 0.01`` as in modded-nanogpt's record rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from trainlab.bench import uncertainty
from trainlab.bench.scoring import TimeRecord, median_over_studies, records_from_trials
from trainlab.spec import TrainlabError

ALPHA = 0.01
TEST = "one-sided Wilcoxon signed-rank, exact sign-flip null, paired studies"


@dataclass
class WorkloadComparison:
    workload: str
    time_a: float  # median over studies (inf: a miss)
    time_b: float
    speedup: float | None  # time_b / time_a; None when both missed
    interval: uncertainty.Interval | None
    pairs: int  # studies present for both
    p_value: float  # one-sided, "A is faster", on this workload's pairs only
    p_value_slower: float


@dataclass
class Comparison:
    a: str
    b: str
    by: str
    alpha: float
    workloads: list[WorkloadComparison]
    speedup: float | None  # geometric mean over workloads both reached; None when there is none
    speedup_workloads: int
    interval: uncertainty.Interval | None
    pairs: int  # paired studies that enter the test (both-missed and tied pairs dropped)
    p_value: float
    p_value_slower: float
    verdict: str  # "faster", "slower" or "no difference at p < ALPHA"
    test: str = TEST
    n_boot: int = 0
    confidence: float = uncertainty.CONFIDENCE
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: the verdict, the overall speedup with its interval, the p-value."""
        if self.speedup is None:
            speed = "no workload reached by both"
        else:
            bounds = (
                "n/a"
                if self.interval is None
                else (f"[{self.interval[0]:.2f}, {self.interval[1]:.2f}]")
            )
            speed = f"speedup {self.speedup:.2f}x {bounds} over {self.speedup_workloads} workloads"
        head = {"faster": f"{self.a} is faster than {self.b}",
                "slower": f"{self.a} is slower than {self.b}"}.get(
            self.verdict, f"{self.a} vs {self.b}: {self.verdict}"
        )  # fmt: skip
        return (
            f"{head}: {speed}; one-sided p = {self.p_value:.2g} (faster), "
            f"{self.p_value_slower:.2g} (slower), {self.pairs} paired studies"
        )

    def rows(self) -> list[dict[str, Any]]:
        """One row per workload then ``overall``: ``{"workload", "time_a", "time_b", "speedup",
        "interval", "pairs", "p_value"}`` (for a table; format the cells with
        :mod:`trainlab.report.cells`)."""
        out = [
            {"workload": w.workload, "time_a": w.time_a, "time_b": w.time_b,
             "speedup": w.speedup, "interval": w.interval, "pairs": w.pairs,
             "p_value": w.p_value}
            for w in self.workloads
        ]  # fmt: skip
        out.append(
            {"workload": "overall", "time_a": None, "time_b": None, "speedup": self.speedup,
             "interval": self.interval, "pairs": self.pairs, "p_value": self.p_value}
        )  # fmt: skip
        return out


def log_ratios(times_a: np.ndarray, times_b: np.ndarray) -> np.ndarray:
    """``log(t_b / t_a)`` per pair: ``+inf`` when only B missed (or only A took 0 time),
    ``-inf`` the other way, ``0`` for equal times, ``nan`` when both missed."""
    a, b = np.asarray(times_a, float), np.asarray(times_b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(b) - np.log(a)
    d = np.where(a == b, np.where(np.isinf(a), np.nan, 0.0), d)
    return d


def signed_rank_p(d: np.ndarray) -> tuple[float, float, int]:
    """``(p_greater, p_less, n)`` of the one-sided Wilcoxon signed-rank tests of ``d``
    (``nan`` and ``0`` dropped, infinities ranked above every finite value), from the exact
    distribution of the positive-rank sum when every sign is flipped with probability 1/2."""
    d = np.asarray(d, float)
    d = d[~np.isnan(d)]
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 1.0, 1.0, 0
    size = np.abs(d)
    top = size[np.isfinite(size)].max(initial=0.0)
    size = np.where(np.isinf(size), 2 * top + 1, size)
    doubled = np.rint(2 * rankdata(size)).astype(np.int64)  # average ranks are k/2
    dist = np.zeros(int(doubled.sum()) + 1)
    dist[0] = 1.0
    for r in doubled:  # P(W = w) for W = sum of the ranks that got a + sign
        dist = 0.5 * (dist + np.concatenate([np.zeros(r), dist[:-r]]))
    observed = int(doubled[d > 0].sum())
    p_greater = float(dist[observed:].sum())
    p_less = float(dist[: observed + 1].sum())
    return min(p_greater, 1.0), min(p_less, 1.0), n


def _speedups(time_a: np.ndarray, time_b: np.ndarray) -> np.ndarray:
    """``t_b / t_a``: ``inf`` when only B missed or only A took no time, ``0`` the other way,
    ``nan`` when both missed, ``1`` for equal finite times."""
    a, b = np.broadcast_arrays(np.asarray(time_a, float), np.asarray(time_b, float))
    with np.errstate(invalid="ignore"):  # inf / inf, replaced below
        quotient = np.where(a > 0, b / np.where(a > 0, a, 1.0), np.inf)
    out = np.where(np.isinf(a), 0.0, np.where(np.isinf(b), np.inf, quotient))
    return np.where(a == b, np.where(np.isinf(a), np.nan, 1.0), out)


def _geomean(speedups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometric mean over the last axis of the finite positive entries, and their count."""
    ok = np.isfinite(speedups) & (speedups > 0)
    logs = np.log(np.where(ok, speedups, 1.0))
    k = ok.sum(axis=-1)
    return np.where(k > 0, np.exp(logs.sum(axis=-1) / np.maximum(k, 1)), np.nan), k


def verdict(p_value: float, p_value_slower: float, alpha: float = ALPHA, pairs: int = 0) -> str:
    """``faster``, ``slower``, ``no difference at p < alpha``; or, when ``pairs`` non-tied
    pairs cannot reach ``alpha`` at all (the smallest one-sided p is ``2**-pairs``), a verdict
    that says so rather than one that reads like a finding."""
    if p_value < alpha:
        return "faster"
    if p_value_slower < alpha:
        return "slower"
    if pairs and 2.0**-pairs >= alpha:
        need = math.ceil(math.log2(1 / alpha) + 1e-12)
        return f"inconclusive: {pairs} pairs cannot reach p < {alpha:g} (needs >= {need})"
    return f"no difference at p < {alpha:g}"


def compare(
    records: Iterable[TimeRecord],
    a: str,
    b: str,
    by: str = "time",
    alpha: float = ALPHA,
    n_boot: int = uncertainty.N_BOOT,
    seed: int = 0,
    confidence: float = uncertainty.CONFIDENCE,
) -> Comparison:
    """A's speedup over B per workload and overall, with bootstrap intervals, one-sided
    p-values and a verdict (see the module docstring)."""
    records = list(records)
    present = sorted({r.algorithm for r in records})
    for name in (a, b):
        if name not in present:
            raise TrainlabError(
                f"algorithm {name!r} is not in the benchmark; present: {', '.join(present)}"
            )
    if a == b:
        raise TrainlabError(f"compare needs two different algorithms, got {a!r} twice")
    study: dict[tuple[str, str], dict[int, float]] = {}
    for r in records:
        if r.algorithm in (a, b):
            cell = study.setdefault((r.algorithm, r.workload), {})
            cell[r.study] = min(cell.get(r.study, math.inf), r.time)
    names = sorted({w for _, w in study})
    notes = [f"{x} has no finished trial on {w}" for w in names for x in (a, b)
             if (x, w) not in study]  # fmt: skip
    paired = []
    for w in names:
        sa, sb = study.get((a, w), {}), study.get((b, w), {})
        keys = sorted(set(sa) & set(sb))
        paired.append((np.array([sa[k] for k in keys]), np.array([sb[k] for k in keys])))
    rows = []
    for w, (pa, pb) in zip(names, paired, strict=True):
        ta = median_over_studies(study.get((a, w), {}).values())
        tb = median_over_studies(study.get((b, w), {}).values())
        s = float(_speedups(np.array(ta), np.array(tb)))
        p, q, _ = signed_rank_p(log_ratios(pa, pb))
        rows.append(
            WorkloadComparison(w, ta, tb, None if math.isnan(s) else s, None, pa.size, p, q)
        )

    overall, k = _geomean(np.array([math.nan if r.speedup is None else r.speedup for r in rows]))
    for r in rows:  # the overall speedup covers the workloads both reached; say which it leaves
        if r.speedup is None or not math.isfinite(r.speedup) or r.speedup == 0:
            missed = [x for x, t in ((a, r.time_a), (b, r.time_b))
                      if not math.isfinite(t) and (x, r.workload) in study]  # fmt: skip
            if missed:
                notes.append(f"{' and '.join(missed)} missed {r.workload}: not in the overall "
                             "speedup (see the paired test, which counts it)")  # fmt: skip
    d = np.concatenate([log_ratios(pa, pb) for pa, pb in paired]) if paired else np.array([])
    p, q, n = signed_rank_p(d)
    result = Comparison(
        a, b, by, alpha, rows, None if math.isnan(overall) else float(overall), int(k), None,
        n, p, q, verdict(p, q, alpha, n), n_boot=0, confidence=confidence, notes=notes,
    )  # fmt: skip
    counts = np.array([pa.size for pa, _ in paired])
    if n_boot >= 1 and counts.max(initial=0) >= 2:
        _bootstrap(result, paired, counts, n_boot, seed, confidence)
    return result


def _bootstrap(result: Comparison, paired, counts, n_boot, seed, confidence) -> None:
    """Fill in the intervals from ``n_boot`` replicates of the paired studies."""
    width = int(counts.max())
    va = np.full((len(paired), width), np.inf)
    vb = np.full((len(paired), width), np.inf)
    for j, (pa, pb) in enumerate(paired):
        va[j, : pa.size], vb[j, : pb.size] = pa, pb
    rng = np.random.default_rng(seed)
    picks = np.floor(rng.random((n_boot, *va.shape)) * np.maximum(counts, 1)[:, None])
    picks = picks.astype(np.int64)
    shape, n = picks.shape, np.broadcast_to(counts, picks.shape[:-1])
    ma = uncertainty.medians(np.take_along_axis(np.broadcast_to(va, shape), picks, -1), n)
    mb = uncertainty.medians(np.take_along_axis(np.broadcast_to(vb, shape), picks, -1), n)
    speedups = _speedups(ma, mb)  # (B, W)
    for j, row in enumerate(result.workloads):
        values = speedups[:, j][~np.isnan(speedups[:, j])]
        if counts[j] >= 2 and row.speedup is not None and values.size:
            row.interval = _pair(uncertainty.percentile_interval(values, confidence))
    overall, _ = _geomean(speedups)
    overall = overall[~np.isnan(overall)]
    if result.speedup is not None and overall.size:
        result.interval = _pair(uncertainty.percentile_interval(overall, confidence))
    result.n_boot = n_boot


def _pair(values: np.ndarray) -> uncertainty.Interval:
    return (float(values[0]), float(values[1]))


def compare_from_store(
    store,
    a: str,
    b: str,
    benchmark_id: int | None = None,
    by: str = "time",
    alpha: float = ALPHA,
    n_boot: int = uncertainty.N_BOOT,
    seed: int = 0,
) -> tuple[Comparison, dict[str, Any]]:
    """:func:`compare` on one benchmark of a store (the latest by default); also returns the
    benchmark's record."""
    bench = store.benchmark(benchmark_id)
    records = records_from_trials(store.trials(benchmark_id=bench["id"]), by)
    if not records:
        raise TrainlabError(f"benchmark {bench['id']} has no finished trials yet")
    return compare(records, a, b, by=by, alpha=alpha, n_boot=n_boot, seed=seed), bench
