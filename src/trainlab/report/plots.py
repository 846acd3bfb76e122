"""Plots of a benchmark (matplotlib, Agg backend, PNG): learning curves (validation metric and
training loss), learning-rate schedules, performance profiles, and the per-workload ratios and
the scores with their bootstrap intervals as error bars.

Every function takes plain data and a path, writes one PNG and returns the path. An algorithm
keeps one colour in every plot (:func:`colours`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from trainlab.spec import EvalRecord, Target  # noqa: E402

DPI = 100


def colours(algorithms: Sequence[str]) -> dict[str, Any]:
    """One colour per algorithm (in the given order), the same in every plot of a report."""
    cmap = plt.get_cmap("tab10" if len(algorithms) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(algorithms)}


#: the most characters of a name shown in a plot (a longer one is cut, ending in an ellipsis)
MAX_LABEL = 60


def label(name: str) -> str:
    """A legend label that shows ``name`` literally (no mathtext, not hidden by a leading _),
    cut to :data:`MAX_LABEL` characters so that a long name cannot squeeze the axes away."""
    if len(name) > MAX_LABEL:
        name = name[: MAX_LABEL - 1] + "\u2026"
    text = name.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def _curve_axes(ax, curves, colour_of, x_of, y_of, legend: bool) -> bool:
    """One line per trial (one colour per algorithm) of ``y_of(record)`` against
    ``x_of(record)``; records where ``y_of`` is None or not finite are left out. Whether
    anything was drawn."""
    drawn = False
    for algorithm, runs in curves.items():
        first = True
        for evals in runs:
            points = [(x_of(r), y_of(r)) for r in evals]
            points = [(x, y) for x, y in points if y is not None and math.isfinite(y)]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            ax.plot(
                xs, ys, color=colour_of[algorithm], alpha=0.55, linewidth=1.2,
                marker="." if len(xs) < 3 else None,
                label=label(algorithm) if first and legend else None,
            )  # fmt: skip
            first, drawn = False, True
    ax.grid(alpha=0.3)
    return drawn


def _time(r: EvalRecord) -> float:
    return r.timed_seconds


def _step(r: EvalRecord) -> float:
    return r.step


def learning_curves(
    workload: str,
    target: Target,
    curves: dict[str, list[list[EvalRecord]]],
    path: str | Path,
    colour_of: dict[str, Any] | None = None,
) -> Path:
    """Validation metric against timed seconds (left) and steps (right), one line per trial,
    one colour per algorithm, the target as a dashed line; when any evaluation carries a
    training loss, a second row shows the training loss the same way."""
    colour_of = colour_of or colours(sorted(curves))
    records = [r for runs in curves.values() for e in runs for r in e]
    has_loss = any(getattr(r, "train_loss", None) is not None for r in records)
    rows = 2 if has_loss else 1
    fig, axes = plt.subplots(rows, 2, figsize=(11, 4 * rows), dpi=DPI, squeeze=False)
    values = [r.metrics.get(target.metric, math.nan) for r in records]
    values = [v for v in values if math.isfinite(v)] + [target.value]
    # a lower-is-better metric (a loss, an error) spanning decades reads better on a log scale
    log_scale = not target.higher_is_better and min(values) > 0 and max(values) / min(values) > 20
    for ax, x_of, xlabel in ((axes[0, 0], _time, "timed training seconds"),
                             (axes[0, 1], _step, "steps")):  # fmt: skip
        _curve_axes(ax, curves, colour_of, x_of,
                    lambda r: r.metrics.get(target.metric, math.nan), ax is axes[0, 1])  # fmt: skip
        ax.axhline(target.value, color="black", linestyle="--", linewidth=1, label="target")
        if log_scale:
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"validation {target.metric}")
        if has_loss:
            loss_ax = axes[1, 0 if x_of is _time else 1]
            _curve_axes(loss_ax, curves, colour_of, x_of,
                        lambda r: getattr(r, "train_loss", None), False)  # fmt: skip
            loss_ax.set_xlabel(xlabel)
            loss_ax.set_ylabel("training loss")
    axes[0, 0].set_title(f"{label(workload)}: {label(target.describe())}", loc="left", fontsize=10)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    if handles:
        axes[0, 1].legend(handles, labels, fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def has_lr(curves: dict[str, list[list[EvalRecord]]]) -> bool:
    """Whether any evaluation of ``curves`` records a learning rate."""
    return any(
        getattr(r, "lr", None) is not None for runs in curves.values() for e in runs for r in e
    )


def learning_rates(
    workload: str,
    curves: dict[str, list[list[EvalRecord]]],
    path: str | Path,
    colour_of: dict[str, Any] | None = None,
) -> Path:
    """Learning rate (of the first parameter group) against steps, one line per trial; trials
    that did not record it are left out."""
    colour_of = colour_of or colours(sorted(curves))
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=DPI)
    _curve_axes(ax, curves, colour_of, _step, lambda r: getattr(r, "lr", None), True)
    ax.set_xlabel("steps")
    ax.set_ylabel("learning rate")
    ax.set_title(f"{label(workload)}: learning rate", loc="left", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def _bounds(value: float, bounds: tuple[float, float] | None, cap: float) -> tuple[float, float]:
    """Error-bar lengths below and above ``value`` (an infinite end drawn up to ``cap``)."""
    if bounds is None:
        return 0.0, 0.0
    low, high = bounds
    return max(value - min(low, cap), 0.0), max(min(high, cap) - value, 0.0)


def ratio_bars(
    ratios: dict[str, dict[str, float]],
    intervals: dict[str, dict[str, tuple[float, float] | None]],
    r_max: float,
    path: str | Path,
    colour_of: dict[str, Any] | None = None,
    title: str = "ratio to the fastest algorithm per workload",
) -> Path:
    """Per workload, each algorithm's performance ratio as a bar with its bootstrap interval as
    an error bar (none where there is no interval); a miss or a ratio beyond ``r_max`` is drawn
    up to the top of the axis, hatched and labelled."""
    algorithms = list(ratios)
    workloads = sorted({w for per in ratios.values() for w in per})
    colour_of = colour_of or colours(algorithms)
    top = r_max * 1.1
    fig, ax = plt.subplots(figsize=(max(6.5, 1.2 * len(workloads) * max(len(algorithms), 1) / 3),
                                    4), dpi=DPI)  # fmt: skip
    width = 0.8 / max(len(algorithms), 1)
    for i, a in enumerate(algorithms):
        for j, w in enumerate(workloads):
            r = ratios[a].get(w, math.inf)
            x = j - 0.4 + width * (i + 0.5)
            shown = min(r, top)
            beyond = not r <= r_max
            ax.bar(x, shown, width, color=colour_of[a], alpha=0.35 if beyond else 0.85,
                   hatch="//" if beyond else None, label=label(a) if j == 0 else None)  # fmt: skip
            if beyond:
                ax.text(x, top * 0.97, "miss" if math.isinf(r) else f"{r:.1f}", ha="center",
                        va="top", rotation=90, fontsize=7)  # fmt: skip
            bounds = intervals.get(a, {}).get(w)
            if bounds is not None and not beyond:
                below, above = _bounds(r, bounds, top)
                ax.errorbar(x, r, yerr=[[below], [above]], color="black", capsize=2, lw=1)
    ax.axhline(r_max, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(range(len(workloads)), [label(w) for w in workloads], rotation=20, ha="right")
    ax.set_ylim(0, top)
    ax.set_ylabel("time / fastest time")
    ax.set_title(title, loc="left", fontsize=10)
    if algorithms:
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def score_bars(
    values: dict[str, float | None],
    intervals: dict[str, tuple[float, float] | None],
    path: str | Path,
    colour_of: dict[str, Any] | None = None,
    xlabel: str = "score",
    reference_line: float | None = None,
    title: str = "95 % bootstrap intervals",
) -> Path:
    """One horizontal bar per algorithm (scores, or speedups with ``reference_line=1``), its
    bootstrap interval as an error bar; an undefined value (None) is left empty and labelled
    ``n/a``, as is a missing interval."""
    algorithms = list(values)
    colour_of = colour_of or colours(algorithms)
    fig, ax = plt.subplots(figsize=(6.5, 1.3 + 0.35 * max(len(algorithms), 1)), dpi=DPI)
    for k, a in enumerate(algorithms):
        v = values[a]
        if v is None or not math.isfinite(v):
            ax.text(0, k, " n/a", va="center", fontsize=8)
            continue
        bounds = intervals.get(a)
        ax.barh(k, v, 0.6, color=colour_of[a], alpha=0.85)
        if bounds is None:
            ax.text(v, k, " (no interval: n/a)", va="center", fontsize=7)
        else:
            below, above = _bounds(v, bounds, math.inf)
            ax.errorbar(v, k, xerr=[[below], [above]], color="black", capsize=3, lw=1)
    if reference_line is not None:
        ax.axvline(reference_line, color="grey", linestyle=":", linewidth=1)
    ax.set_yticks(range(len(algorithms)), [label(a) for a in algorithms])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return _save(fig, path)


def performance_profiles(
    profiles: dict[str, list[tuple[float, float]]],
    r_max: float,
    path: str | Path,
    colour_of: dict[str, Any] | None = None,
    title: str = "performance profiles",
    scores: dict[str, float] | None = None,
) -> Path:
    """``rho(tau)`` of every algorithm as a step function on ``[1, r_max]``."""
    colour_of = colour_of or colours(sorted(profiles))
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=DPI)
    for algorithm, points in profiles.items():
        xs = [tau for tau, _ in points]
        ys = [value for _, value in points]
        if xs[-1] < r_max:
            xs, ys = [*xs, r_max], [*ys, ys[-1]]
        name = label(algorithm)
        if scores is not None:
            name += f" ({scores[algorithm]:.3f})"
        ax.step(xs, ys, where="post", color=colour_of[algorithm], linewidth=1.8, label=name)
    ax.set_xlim(1.0, r_max)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau (ratio to the fastest algorithm)")
    ax.set_ylabel("fraction of workloads within tau")
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    if profiles:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def predicted_schedules(prediction: Any, title: str, path: str | Path) -> Path:
    """The annealing law's predicted curve of each schedule (lines) over the fitted trials'
    measured points (dots); ``prediction`` is a ``bench.schedule_prediction.SchedulePrediction``."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8), dpi=DPI)
    colour_of = colours(sorted(prediction.curves))
    for name, curve in sorted(prediction.curves.items()):
        steps = range(1, len(curve) + 1)
        start = max(1, len(curve) // 50)  # the law's first steps (tiny S1) are off the chart
        best = " (best)" if name == prediction.best else ""
        ax.plot(steps[start:], curve[start:], color=colour_of[name], lw=1.4,
                label=f"{name}{best}: {curve[-1]:.3f}")  # fmt: skip
    for trial_id, (steps, values) in prediction.fitted.items():
        ax.plot(steps, values, "o", ms=2.5, color="black", alpha=0.6, label=f"trial {trial_id}")
    finals = list(prediction.finals.values())
    low, high = min(finals), max(max(v[1]) for v in prediction.fitted.values())
    ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
    ax.set_xlabel("steps")
    ax.set_ylabel(f"validation {prediction.metric}")
    ax.set_title(f"{title}: predicted by the annealing law", loc="left", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _save(fig, path)
