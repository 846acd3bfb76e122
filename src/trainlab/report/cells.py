"""Plain-text table cells shared by the terminal ``score``/``compare`` tables and the HTML
report: times, ratios, scores, speedups, p-values, bootstrap intervals and markers.

Every function returns plain text (escape it for HTML or rich markup yourself). Conventions:
an infinite time or ratio (a miss) is ``inf``; a missing interval (one study, or undefined) is
``n/a``; a cell with trials flagged for heavy CPU contention ends in ``*N`` (N flagged trials).
"""

from __future__ import annotations

import math
from typing import Any

MISS = "inf"
NA = "n/a"
CONTENDED_NOTE = "*N: N trials of that cell ran under heavy CPU contention (times less reliable)"


def number(value: float | None, spec: str = ".3g", unit: str = "") -> str:
    """``value`` formatted with ``spec`` and ``unit``; ``inf`` for an infinite value or None."""
    if value is None or math.isinf(value):
        return MISS
    return f"{format(value, spec)}{unit}"


def time(value: float | None, by: str = "time") -> str:
    """A time to the target in the unit of ``by``: ``12.3 s``, ``1.2e+03 steps``, ``inf``."""
    unit = {"time": " s", "cpu-time": " cpu s", "ref-steps": " ref steps", "steps": " steps",
            "flops": " FLOPs"}.get(by, "")  # fmt: skip
    spec = ".4g" if by in ("steps", "ref-steps") else ".3g"
    return number(value, spec, unit)


def ratio(value: float | None) -> str:
    """A performance ratio or a speedup: ``1.50x``; ``inf``."""
    return number(value, ".2f", "x")


def interval(bounds: tuple[float, float] | None, spec: str = ".3g", unit: str = "") -> str:
    """A bootstrap interval ``[low, high]`` (an infinite end shows ``inf``), or ``n/a``."""
    if bounds is None:
        return NA
    low, high = bounds
    return f"[{number(low, spec)}, {number(high, spec)}]{unit}"


def with_interval(
    value: float | None, bounds: tuple[float, float] | None, spec: str = ".3g", unit: str = ""
) -> str:
    """``value [low, high]`` or ``value [n/a]``; e.g. ``0.812 [0.763, 0.924]``."""
    shown = interval(bounds, spec)
    return f"{number(value, spec, unit)} {shown if bounds is not None else '[' + NA + ']'}"


def p_value(p: float | None) -> str:
    """``0.0039``; ``<1e-04`` below 1e-4; ``n/a`` for None."""
    if p is None:
        return NA
    return "<1e-04" if p < 1e-4 else f"{p:.2g}"


def contended(count: int) -> str:
    """`` *N`` when ``count`` trials were flagged contended, else empty."""
    return f" *{count}" if count else ""


# --------------------------------------------------------------------------------------------
# cells of a ScoreResult (trainlab.bench.scoring)


def time_ratio(result: Any, algorithm: str, workload: str) -> str:
    """A time-to-target table cell: time, ratio with its interval, contention marker;
    e.g. ``12.3 s (1.50x [1.20, 2.10])``, ``inf``, ``8 s (variant failed)``."""
    t = result.raw_times[algorithm][workload]
    text = time(t, result.by)
    if workload in result.ratios[algorithm]:
        r = result.ratios[algorithm][workload]
        bounds = result.ratio_intervals.get(algorithm, {}).get(workload)
        if math.isfinite(r):
            text += f" ({ratio(r)} {interval(bounds, '.2f')})"
        elif math.isfinite(t):
            text += " (variant failed)"
    if result.by in ("steps", "flops"):  # contention cannot move these
        return text
    return text + contended(result.contended.get(algorithm, {}).get(workload, 0))


def score(result: Any, algorithm: str) -> str:
    """``0.812 [0.763, 0.924]`` or ``0.812 [n/a]``."""
    return with_interval(result.scores[algorithm], result.score_intervals.get(algorithm), ".3f")


def speedup(result: Any, algorithm: str) -> str:
    """``1.25x [1.02, 1.61] (3 workloads)``; ``-`` when undefined."""
    s = result.speedups[algorithm]
    if s["geomean"] is None:
        return "-"
    bounds = result.speedup_intervals.get(algorithm)
    n = s["workloads"]
    return f"{ratio(s['geomean'])} {interval(bounds, '.2f')} ({n} workload{'s' * (n != 1)})"


COMPARISON_HEADER = ("workload", "A to target", "B to target", "speedup A over B",
                     "95 % interval", "pairs", "p (A faster)")  # fmt: skip


def comparison_rows(comparison: Any) -> list[list[str]]:
    """Text rows ``workload, time A, time B, speedup, interval, pairs, p`` of a
    :class:`trainlab.bench.compare.Comparison` (the last row: ``overall``)."""
    rows = []
    for row in comparison.rows():
        overall = row["workload"] == "overall"
        rows.append(
            [
                row["workload"],
                "" if overall else time(row["time_a"], comparison.by),
                "" if overall else time(row["time_b"], comparison.by),
                "-" if row["speedup"] is None else ratio(row["speedup"]),
                interval(row["interval"], ".2f"),
                str(row["pairs"]),
                p_value(row["p_value"]),
            ]
        )
    return rows


def time_table(result: Any) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the time-to-target table of a ScoreResult: one row per workload
    (held-out variants indented and marked), one :func:`time_ratio` cell per algorithm."""
    names = sorted({w for times in result.raw_times.values() for w in times})
    rows = [
        [w if w in result.workloads else f"  {w} (held-out)"]
        + [time_ratio(result, a, w) for a in result.algorithms]
        for w in names
    ]
    return ["workload", *result.algorithms], rows


def score_table(result: Any) -> tuple[list[str], list[list[str]]]:
    """Header and rows (best first) of the scores table of a ScoreResult: algorithm, score with
    its interval, speedup over the reference with its interval."""
    header = ["algorithm", "score [95 % interval]", f"speedup vs {result.reference}"]
    return header, [[a, score(result, a), speedup(result, a)] for a in result.ranking()]


# --------------------------------------------------------------------------------------------
# plain values and model cost (``trainlab show``)


def plain_value(value: Any, spec: str = ".3g") -> str:
    """``-`` for None, a float formatted with ``spec``, anything else as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def cost_cells(trial: dict[str, Any]) -> list[str]:
    """``params, nnz, MFLOPs/example, speedup`` cells of a trial's ``model_cost``."""
    from trainlab.bench.model_cost import headline

    h = headline(trial.get("model_cost"))
    speedup = "-" if h["speedup"] is None else f"{h['speedup']:.2f}x"
    return [plain_value(h["params"]), plain_value(h["nnz"]), plain_value(h["mflops"]), speedup]


def cost_lines(cost: dict[str, Any] | None) -> list[str]:
    """Lines of ``trainlab show ID`` for a trial's ``model_cost`` (none when not measured)."""
    if not cost:
        return []
    if "error" in cost:
        return [f"model cost: not measured ({cost['error']})"]
    lines = [f"model cost: {cost['params']} params, {cost['nonzero_params']} non-zero; "
             f"{cost['flops_per_example'] / 1e6:.4g} MFLOPs/example dense, "
             f"{cost['nonzero_flops_per_example'] / 1e6:.4g} on non-zeros "
             f"(batch of {cost.get('examples')})"]  # fmt: skip
    c = cost.get("compact")
    if c:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in sorted((c.get("metrics") or {}).items()))
        speedup = c.get("inference_speedup")
        lines.append(
            f"compact model: {c['params']} params, {c['flops_per_example'] / 1e6:.4g} "
            f"MFLOPs/example; CPU inference {plain_value(speedup, '.2f')}x faster "
            f"({c['dense_ms']:.3g} ms vs {c['compact_ms']:.3g} ms a batch, one thread)"
            + (f"; valid {metrics}" if metrics else "")
        )
    return lines + method_lines(cost.get("method"))


def method_lines(record: dict[str, Any] | None) -> list[str]:
    """Lines of ``trainlab show ID`` for what the method recorded (``model_cost["method"]``,
    see :meth:`trainlab.spec.Algorithm.trial_record`): AdaPT's mean bit-width and modelled
    speedups beside the paper's; another record's scalar entries."""
    if not record:
        return []
    if "error" in record:
        return [f"method record: not recorded ({record['error']})"]
    if record.get("name") == "adapt":
        return [
            f"AdaPT: mean bit-width {record['mean_bits']:.2f} at the end "
            f"({record['mean_bits_over_training']:.2f} averaged over {record['updates']} "
            f"updates, {record['switches']} switches); modelled on fixed-point hardware: "
            f"training {record['modelled_training_speedup']:.2f}x, inference "
            f"{record['modelled_inference_speedup']:.2f}x (paper: "
            f"{record['paper_training_speedup']}x, {record['paper_inference_speedup']}x); "
            "emulated here, not a CPU speedup"
        ]
    scalars = [f"{k} {plain_value(v)}" for k, v in record.items()
               if k != "name" and isinstance(v, int | float | str)]  # fmt: skip
    return [f"method {record.get('name', '')}: " + ", ".join(scalars)]
