"""Scoring: per-workload times, performance ratios, performance profiles, benchmark scores.

After AlgoPerf's scoring rules (Dahl et al., "Benchmarking Neural Network Training Algorithms",
2023; Dolan & Moré, "Benchmarking optimization software with performance profiles", 2002):

1. **Per-workload time** ``t[a, w]``: for each study, the fastest trial of algorithm ``a`` on
   workload ``w`` that reached the target (a study with none is infinite); then the median over
   studies (infinities included: the median of ``[1, inf, inf]`` is ``inf``; of an even number
   of studies, the mean of the two middle ones).
2. **Held-out variants**: a base workload's time becomes infinite for an algorithm when, on any
   of its variants, that algorithm's time is infinite or more than ``r_max`` times the fastest
   variant time among the algorithms that have a finite time on the base workload. Variants
   are not scored themselves (a variant listed without its base is scored as a workload).
3. **Performance ratio** ``r[a, w] = t[a, w] / min_a' t[a', w]`` (infinite when ``t`` is; all
   infinite when no algorithm reached the target).
4. **Performance profile** ``rho_a(tau) = |{w : r[a, w] <= tau}| / n``, a right-continuous step
   function of ``tau``.
5. **Score** ``B_a = 1/(r_max - 1) * integral_1^r_max rho_a(tau) dtau``, integrated exactly: a
   workload with ratio ``r <= r_max`` contributes ``(r_max - r) / (n (r_max - 1))``; ``r_max = 4``.
6. **Speedup** over a reference algorithm: the geometric mean over workloads of
   ``t[ref, w] / t[a, w]``, over the workloads where both reached the target (the count is
   reported with it; with none, it is undefined).

What "time" means is chosen with ``by`` (:data:`MEASURES`): timed seconds to the target
(``time``), CPU seconds (``cpu-time``), CPU time in reference steps (``ref-steps``, the
contention-robust measure, see :mod:`trainlab.bench.measures`), steps (``steps``) or
floating-point operations (``flops``) to the target.

Every time, ratio, score and speedup also gets a bootstrap interval over studies
(:mod:`trainlab.bench.uncertainty`); with a single study there is none (``None``).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainlab.bench import uncertainty
from trainlab.spec import TrainlabError

R_MAX = 4.0
Interval = uncertainty.Interval
INF = math.inf
CSV_COLUMNS = ("algorithm", "workload", "study", "trial", "time")
#: ``by`` -> the trial-row column holding that measure of the cost to reach the target
MEASURES = {
    "time": "time_to_target",  # AlgoPerf's: wall-clock timed seconds
    "cpu-time": "cpu_time_to_target",  # process CPU seconds of the timed sections
    "ref-steps": "ref_steps_to_target",  # CPU time in units of a reference step
    "steps": "steps_to_target",
    "flops": "flops_to_target",
}


@dataclass(frozen=True)
class TimeRecord:
    """One trial's time to the target (``inf`` for a miss) in one study."""

    algorithm: str
    workload: str  # "name" or "name:variant"
    study: int
    trial: int
    time: float
    contended: bool = False  # heavy CPU contention was detected during the trial


def base_of(workload: str) -> str:
    return workload.split(":", 1)[0]


def is_variant(workload: str) -> bool:
    return ":" in workload


# --------------------------------------------------------------------------------------------
# Inputs


def records_from_trials(trials: Iterable[dict[str, Any]], by: str = "time") -> list[TimeRecord]:
    """Time records from store trial rows, measured by ``by`` (a key of :data:`MEASURES`);
    unfinished trials are skipped, and a finished trial that did not reach the target is a
    miss (``inf``). A reached trial without the measure was stored before the measure existed:
    a :class:`TrainlabError`."""
    if by not in MEASURES:
        raise TrainlabError(f"--by takes {', '.join(MEASURES)}, got {by!r}")
    column = MEASURES[by]
    out = []
    for t in trials:
        if t["status"] in ("pending", "running"):
            continue
        reached = t["status"] == "reached"
        value = t.get(column)
        if reached and value is None:
            raise TrainlabError(
                f"trial {t.get('id')} has no {column}: its benchmark was recorded before "
                f"--by {by} existed; score it --by time"
            )
        workload = t["workload"] + (f":{t['variant']}" if t.get("variant") else "")
        out.append(
            TimeRecord(
                t["algorithm"],
                workload,
                int(t["study"] or 0),
                int(t["trial_index"] if t["trial_index"] is not None else t["id"]),
                float(value) if reached else INF,
                bool(t.get("contended")),
            )
        )
    return out


def write_times_csv(records: Iterable[TimeRecord], path: str | Path) -> None:
    """Write records as ``algorithm,workload,study,trial,time`` (``inf`` for a miss), with a
    sixth column ``contended`` (0 or 1) when any record is flagged."""
    records = list(records)
    flagged = any(r.contended for r in records)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS + ("contended",) * flagged)
        for r in records:
            time = "inf" if math.isinf(r.time) else repr(r.time)
            row = [r.algorithm, r.workload, r.study, r.trial, time]
            writer.writerow(row + [int(r.contended)] * flagged)


def read_times_csv(path: str | Path) -> list[TimeRecord]:
    """Read a times file: a UTF-8 CSV (a byte-order mark, as spreadsheet programs write, is
    fine) with the columns of :data:`CSV_COLUMNS` (and optionally ``contended``), each
    (algorithm, workload, study, trial) once, every time > 0 or ``inf`` (a miss). Any problem
    is a one-line :class:`TrainlabError` naming the file and line."""
    path = Path(path)

    def bad(line: int | None, message: str) -> TrainlabError:
        return TrainlabError(f"{path}{'' if line is None else f':{line}'}: {message}")

    records: list[TimeRecord] = []
    seen: dict[tuple, int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise bad(None, f"empty file (expected a header {','.join(CSV_COLUMNS)})")
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise bad(None, f"missing column(s) {', '.join(missing)} in the header")
            col = {c: header.index(c) for c in CSV_COLUMNS}
            for line, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise bad(line, f"expected {len(header)} fields, got {len(row)}")
                cells = {c: row[i].strip() for c, i in col.items()}
                for c in ("algorithm", "workload"):
                    if not cells[c]:
                        raise bad(line, f"empty {c}")
                try:
                    study, trial = int(cells["study"]), int(cells["trial"])
                except ValueError:
                    raise bad(line, "study and trial must be integers") from None
                if study < 0 or trial < 0:
                    raise bad(line, "study and trial must be >= 0")
                try:
                    value = float(cells["time"])
                except ValueError:
                    raise bad(
                        line, f"time {cells['time']!r} is not a number (use inf for a miss)"
                    ) from None
                if not value > 0:  # also nan
                    raise bad(line, f"time must be > 0 or inf (a miss), got {cells['time']}")
                key = (cells["algorithm"], cells["workload"], study, trial)
                if key in seen:
                    raise bad(line, f"duplicate row (same algorithm, workload, study and trial "
                                    f"as line {seen[key]})")  # fmt: skip
                seen[key] = line
                flag = row[header.index("contended")].strip() if "contended" in header else ""
                records.append(TimeRecord(*key, value, flag not in ("", "0")))
    except OSError as exc:
        raise TrainlabError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise bad(None, f"not a readable UTF-8 CSV file ({exc})") from None
    if not records:
        raise bad(None, "no rows")
    return records


# --------------------------------------------------------------------------------------------
# The computation


def median_over_studies(study_times: Iterable[float]) -> float:
    values = sorted(study_times)
    if not values:
        return INF
    return float(statistics.median(values))


def ratio(t: float, best: float) -> float:
    if math.isinf(t) or math.isinf(best):
        return INF
    if best <= 0:
        return 1.0 if t <= 0 else INF
    return t / best


def profile_points(ratios: Iterable[float], r_max: float = R_MAX) -> list[tuple[float, float]]:
    """The step function ``rho(tau)`` on ``[1, r_max]`` as ``(tau, rho)`` breakpoints: rho takes
    the value at each ``tau`` and keeps it until the next breakpoint."""
    rs = list(ratios)
    n = len(rs)
    if n == 0:
        return [(1.0, 0.0), (r_max, 0.0)]
    taus = sorted({1.0, r_max, *(r for r in rs if 1.0 <= r <= r_max)})
    return [(tau, sum(r <= tau for r in rs) / n) for tau in taus]


def rho(ratios: Iterable[float], tau: float) -> float:
    rs = list(ratios)
    return sum(r <= tau for r in rs) / len(rs) if rs else 0.0


def integrated_score(ratios: Iterable[float], r_max: float = R_MAX) -> float:
    """``1/(r_max-1) * integral_1^r_max rho(tau) dtau``, exactly, for a step-function ``rho``."""
    rs = list(ratios)
    if not rs:
        return 0.0
    total = sum(r_max - max(r, 1.0) for r in rs if r <= r_max)
    return total / (len(rs) * (r_max - 1.0))


@dataclass
class ScoreResult:
    by: str
    r_max: float
    algorithms: list[str]
    workloads: list[str]  # the scored workloads
    variants: dict[str, list[str]]  # base workload -> its variants present
    study_times: dict[str, dict[str, dict[int, float]]]  # algorithm -> workload -> study -> t
    raw_times: dict[str, dict[str, float]]  # median over studies, every workload incl. variants
    times: dict[str, dict[str, float]]  # scored workloads, after the variant rule
    variant_failures: dict[str, dict[str, list[str]]]  # algorithm -> base -> failed variants
    ratios: dict[str, dict[str, float]]
    scores: dict[str, float]
    profiles: dict[str, list[tuple[float, float]]]
    reference: str | None
    speedups: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    #: algorithm -> workload (every workload, variants included) -> trials flagged contended
    contended: dict[str, dict[str, int]] = field(default_factory=dict)
    #: bootstrap replicates behind the intervals (0: no intervals) and their confidence level
    n_boot: int = 0
    confidence: float = uncertainty.CONFIDENCE
    #: intervals ``(low, high)`` of ``times``/``ratios`` (algorithm -> workload), ``scores`` and
    #: ``speedups`` (algorithm); ``None`` where there is none (a single study, or undefined)
    time_intervals: dict[str, dict[str, Interval | None]] = field(default_factory=dict)
    ratio_intervals: dict[str, dict[str, Interval | None]] = field(default_factory=dict)
    score_intervals: dict[str, Interval | None] = field(default_factory=dict)
    speedup_intervals: dict[str, Interval | None] = field(default_factory=dict)

    def ranking(self) -> list[str]:
        return sorted(self.algorithms, key=lambda a: (-self.scores[a], a))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ranking"] = self.ranking()
        return out


def compute_scores(
    records: Iterable[TimeRecord],
    r_max: float = R_MAX,
    reference: str | None = None,
    by: str = "time",
    n_boot: int = uncertainty.N_BOOT,
    seed: int = 0,
    confidence: float = uncertainty.CONFIDENCE,
) -> ScoreResult:
    """Scores from time records (see the module docstring for the rules), with percentile
    bootstrap intervals from ``n_boot`` replicates over studies (``n_boot=0``: none)."""
    records = list(records)
    if not records:
        raise TrainlabError("nothing to score: no finished trials")
    if not r_max > 1:
        raise TrainlabError(f"r_max must be > 1, got {r_max}")
    algorithms = sorted({r.algorithm for r in records})
    all_workloads = sorted({r.workload for r in records})
    warnings: list[str] = []

    study_times: dict[str, dict[str, dict[int, float]]] = {
        a: {w: {} for w in all_workloads} for a in algorithms
    }
    contended = {a: dict.fromkeys(all_workloads, 0) for a in algorithms}
    for r in records:
        studies = study_times[r.algorithm][r.workload]
        studies[r.study] = min(studies.get(r.study, INF), r.time)
        contended[r.algorithm][r.workload] += bool(r.contended)
    raw: dict[str, dict[str, float]] = {a: {} for a in algorithms}
    for a in algorithms:
        for w in all_workloads:
            if not study_times[a][w]:
                warnings.append(f"{a} has no finished trial on {w}: counted as a miss")
            raw[a][w] = median_over_studies(study_times[a][w].values())

    bases = [w for w in all_workloads if not is_variant(w)]
    variants: dict[str, list[str]] = defaultdict(list)
    scored = list(bases)
    for w in all_workloads:
        if is_variant(w):
            if base_of(w) in bases:
                variants[base_of(w)].append(w)
            else:
                scored.append(w)
                warnings.append(f"variant {w} has no base workload in the data: scored on its own")
    scored.sort()

    times = {a: {w: raw[a][w] for w in scored} for a in algorithms}
    if algorithms and scored and not any(math.isfinite(t) for x in times.values()
                                         for t in x.values()):  # fmt: skip
        reached = sum(math.isfinite(t) for a in algorithms for w in scored
                      for t in study_times[a][w].values())  # fmt: skip
        n_studies = max((len(study_times[a][w]) for a in algorithms for w in scored), default=0)
        even = n_studies % 2 == 0
        warnings.append(
            "no algorithm reached its target on any workload (median over studies): every score "
            f"is 0 and says nothing ({reached} studies reached"
            + ("; a median over an even number of studies is a miss as soon as half miss"
               if even else "") + "). Use a larger budget or easier targets (--targets class)"
            + (" or an odd number of --studies" if even else "")
        )
    failures: dict[str, dict[str, list[str]]] = {a: {} for a in algorithms}
    for base, vs in variants.items():
        qualified = [a for a in algorithms if math.isfinite(raw[a][base])]
        for v in vs:
            fastest = min((raw[a][v] for a in qualified), default=INF)
            for a in algorithms:
                t = raw[a][v]
                if math.isinf(t) or ratio(t, fastest) > r_max:
                    failures[a].setdefault(base, []).append(v)
                    times[a][base] = INF

    ratios = {a: {} for a in algorithms}
    for w in scored:
        best = min(times[a][w] for a in algorithms)
        for a in algorithms:
            ratios[a][w] = ratio(times[a][w], best)
    scores = {a: integrated_score(ratios[a].values(), r_max) for a in algorithms}
    profiles = {a: profile_points(ratios[a].values(), r_max) for a in algorithms}

    if reference is None and algorithms:
        reference = "nadamw" if "nadamw" in algorithms else algorithms[0]
    elif reference is not None and reference not in algorithms:
        raise TrainlabError(
            f"--reference {reference!r} is not among the scored algorithms: {', '.join(algorithms)}"
        )
    speedups = {a: speedup(times[reference], times[a], scored) for a in algorithms}
    boot = uncertainty.bootstrap_scores(
        study_times, algorithms, all_workloads, scored, variants, r_max, reference,
        n_boot=n_boot, seed=seed, confidence=confidence,
    )  # fmt: skip
    resampled = boot is not None
    if boot is None:  # nothing to resample: every interval is None
        cells = {a: dict.fromkeys(scored) for a in algorithms}
        boot = {"times": cells, "ratios": cells, "scores": dict.fromkeys(algorithms)}
        boot["speedups"] = dict.fromkeys(algorithms)
    for a in algorithms:
        if speedups[a]["geomean"] is None:
            boot["speedups"][a] = None
    return ScoreResult(
        by=by,
        r_max=r_max,
        algorithms=algorithms,
        workloads=scored,
        variants=dict(variants),
        study_times=study_times,
        raw_times=raw,
        times=times,
        variant_failures={a: f for a, f in failures.items() if f},
        ratios=ratios,
        scores=scores,
        profiles=profiles,
        reference=reference,
        speedups=speedups,
        warnings=warnings,
        contended=contended,
        n_boot=n_boot if resampled else 0,
        confidence=confidence,
        time_intervals=boot["times"],
        ratio_intervals=boot["ratios"],
        score_intervals=boot["scores"],
        speedup_intervals=boot["speedups"],
    )


def speedup(ref: dict[str, float], mine: dict[str, float], workloads: list[str]) -> dict[str, Any]:
    """Geometric mean of ``ref[w] / mine[w]`` over the workloads both finished in finite time."""
    both = [
        w
        for w in workloads
        if math.isfinite(ref[w]) and math.isfinite(mine[w]) and mine[w] > 0 and ref[w] > 0
    ]
    if not both:
        return {"geomean": None, "workloads": 0}
    logs = [math.log(ref[w] / mine[w]) for w in both]
    return {"geomean": math.exp(sum(logs) / len(logs)), "workloads": len(both)}


def scores_from_store(
    store,
    benchmark_id: int | None = None,
    by: str = "time",
    reference: str | None = None,
    r_max: float = R_MAX,
    n_boot: int = uncertainty.N_BOOT,
    seed: int = 0,
) -> tuple[ScoreResult, dict[str, Any], list[TimeRecord]]:
    """Score one benchmark of a store (the latest by default), with bootstrap intervals; also
    returns its record and the time records."""
    bench = store.benchmark(benchmark_id)
    trials = store.trials(benchmark_id=bench["id"])
    records = records_from_trials(trials, by)
    if not records:
        raise TrainlabError(f"benchmark {bench['id']} has no finished trials yet")
    result = compute_scores(
        records, r_max=r_max, reference=reference, by=by, n_boot=n_boot, seed=seed
    )
    unfinished = sum(t["status"] in ("pending", "running") for t in trials)
    if unfinished:
        result.warnings.insert(
            0,
            f"benchmark {bench['id']} is incomplete: "
            f"{unfinished} of {len(trials)} trials not finished",
        )
    return result, bench, records
