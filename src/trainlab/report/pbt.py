"""The report's PBT section (``--search pbt``, :mod:`trainlab.bench.pbt`).

For every population (algorithm, workload, study) the best member (its segment that reached
the target fastest, else the best one of the last generation) and its lineage: the chain of
``parent`` links back to generation 0, with the members it copied. For each (algorithm,
workload), one figure of the best population's lineage: the validation metric along it and
each numeric hyperparameter's schedule (the value it trained with, against the step).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainlab.bench import pbt
from trainlab.report.plots import DPI, label, plt
from trainlab.spec import EvalRecord


def _name(key: tuple) -> str:
    algorithm, workload, variant, study = key
    return f"{algorithm} on {workload}{':' + variant if variant else ''}, study {study}"


def lineage_text(chain: list[dict[str, Any]]) -> str:
    """``#3 m2 g0 -> #9 m2 g1 (copied m0) -> ...``: a lineage in one line."""
    parts = []
    for r in chain:
        s = r["search"]
        copied = "" if s.get("exploited") is None else f" (copied m{s['exploited']})"
        parts.append(f"#{r['id']} m{s['member']} g{s['generation']}{copied}")
    return " \u2192 ".join(parts)


def lineage_plot(title: str, chain: list[dict[str, Any]], evals: dict[int, list[EvalRecord]],
                 metric: str, path: Path) -> Path:  # fmt: skip
    """One PNG: the metric along the lineage (each segment's evaluations) over the
    hyperparameter schedules (step plots; log axis for a positive value spanning > 10x)."""
    schedule = pbt.hp_schedule(chain)
    names = [n for n, v in schedule[0][1].items()
             if isinstance(v, int | float) and not isinstance(v, bool)]  # fmt: skip
    fig, axes = plt.subplots(1 + len(names), 1, figsize=(6.4, 2.0 + 1.3 * len(names)),
                             dpi=DPI, sharex=True, squeeze=False)  # fmt: skip
    axes = axes[:, 0]
    xs = [e.step for r in chain for e in evals.get(r["id"], [])]
    ys = [e.metrics.get(metric, math.nan) for r in chain for e in evals.get(r["id"], [])]
    axes[0].plot(xs, ys, marker=".", color="C0")
    axes[0].set_ylabel(label(metric), fontsize=8)
    axes[0].set_title(label(title), fontsize=9)
    end = max([*xs, *(int(r["search"]["end_step"]) for r in chain)], default=1)
    for r in chain[1:]:
        for ax in axes:
            ax.axvline(r["search"]["start_step"], color="0.8", linewidth=0.8)
    for ax, name in zip(axes[1:], names, strict=True):
        steps = [s for s, _ in schedule] + [end]
        values = [hp[name] for _, hp in schedule]
        ax.step(steps, values + values[-1:], where="post", color="C1")
        if min(values) > 0 and max(values) > 10 * min(values):
            ax.set_yscale("log")
        ax.set_ylabel(label(name), fontsize=8)
    axes[-1].set_xlabel("step (cumulative along the lineage)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def section(trials: list[dict[str, Any]], evals: dict[int, list[EvalRecord]],
            png_path: Callable[[str], Path]) -> tuple[str, list[tuple[str, Path]]]:  # fmt: skip
    """The section's HTML and plots ``(caption, png)``; empty when no trial is a PBT segment."""
    best = pbt.best_segments(trials)
    if not best:
        return "", []
    rows, figures, shown = [], [], {}
    for key, segment in sorted(best.items()):
        chain = pbt.lineage(trials, segment["id"])
        reached = segment["status"] == "reached"
        time = f"{segment['time_to_target']:.3g} s" if reached else "not reached"
        rows.append(f'<tr><td class="l">{html.escape(_name(key))}</td>'
                    f"<td>m{segment['search']['member']}</td><td>{html.escape(time)}</td>"
                    f'<td class="l">{html.escape(lineage_text(chain))}</td></tr>')  # fmt: skip
        pair = key[:3]
        rank = (0, segment["time_to_target"]) if reached else (1, 0.0)
        if pair not in shown or rank < shown[pair][0]:
            shown[pair] = (rank, key, chain)
    for _, key, chain in shown.values():
        metric = chain[-1].get("target_metric") or "metric"
        png = lineage_plot(f"best lineage: {_name(key)}", chain, evals, metric,
                           png_path("pbt_" + "_".join(str(k) for k in key)))  # fmt: skip
        figures.append((_name(key), png))
    table = ('<table><tr><th class="l">population</th><th>best member</th>'
             '<th>time to target</th><th class="l">lineage (trial, member, generation)</th></tr>'
             + "".join(rows) + "</table>")  # fmt: skip
    note = ('<p class="note">Population Based Training: each segment is a trial; a lineage '
            "follows the checkpoints a member resumed or copied. The plots show, per algorithm "
            "and workload, the best population's best lineage: its validation metric and "
            "hyperparameter schedule against the step (grey lines: exploit/explore points).</p>")
    return note + table, figures
