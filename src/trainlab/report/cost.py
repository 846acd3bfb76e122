"""The report's model-cost section: validation metric against model cost, beside a table.

For each workload, a scatter plot of every finished trial's best validation metric against its
evaluated model's non-zero parameters (log scale) for the algorithms whose model cost differs
from the dense model's (a trial with fewer non-zero parameters than parameters, or with a
compact sub-network), one colour per algorithm; the other algorithms' trials are grey dots
("dense"), the reference. A compact sub-network is a second point, ``x``, at its own size and
its own validation metric (a SortedNet sub-model is not the evaluated model). The table gives,
per algorithm and workload, the medians of :func:`trainlab.bench.model_cost.cost_table`;
AdaPT trials add their bit-width plots and table (:mod:`trainlab.report.bitwidth`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainlab.bench.model_cost import COST_NOTE, cost_cell, cost_table, headline
from trainlab.report import bitwidth
from trainlab.report.plots import DPI, label, plt


def is_sparse(trial: dict[str, Any]) -> bool:
    """Whether a trial's model cost differs from the dense model's."""
    cost = trial.get("model_cost") or {}
    h = headline(cost)
    if h["params"] is None:
        return False
    return bool(cost.get("compact")) or (h["nnz"] or 0) < h["params"]


def metric_vs_cost(workload: str, metric: str, points: dict[str, list[tuple[float, float]]],
                   compact: dict[str, list[tuple[float, float]]], path: Path,
                   colour_of: dict[str, Any]) -> Path:  # fmt: skip
    """One PNG: ``metric`` against non-zero parameters; ``points``/``compact``: algorithm ->
    ``(nnz, metric)`` of evaluated models / compact sub-networks; the key ``"dense"`` is
    drawn grey."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=DPI)
    for algorithm, xy in points.items():
        xs, ys = zip(*xy, strict=True)
        if algorithm == "dense":  # large hollow grey rings under the others' dots
            ax.scatter(xs, ys, facecolors="none", edgecolors="0.55", s=70, label="dense",
                       zorder=1)  # fmt: skip
        else:
            ax.scatter(xs, ys, color=colour_of.get(algorithm, "C0"), s=22,
                       label=label(algorithm), zorder=2)  # fmt: skip
    for algorithm, xy in compact.items():
        xs, ys = zip(*xy, strict=True)
        ax.scatter(xs, ys, color=colour_of.get(algorithm, "C0"), marker="x", s=40,
                   label=label(f"{algorithm} (compact)"), zorder=3)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("non-zero parameters")
    ax.set_ylabel(f"validation {metric} (best)")
    ax.set_title(label(f"{workload}: {metric} against model cost"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def section(trials: list[dict[str, Any]], algorithms: list[str], colour_of: dict[str, Any],
            png_path: Callable[[str], Path]) -> tuple[str, list[tuple[str, Path]]]:  # fmt: skip
    """The section's tables (HTML) and its plots ``(caption, png)``, the caption also the
    image's alt text; ``png_path(name)`` gives a safe file path for a plot."""
    costs = cost_table(trials)
    if not costs:
        return '<p class="note">No trial recorded its model cost.</p>', []
    bits_table, bits_figures = bitwidth.section(trials, png_path)
    figures = []
    by_workload: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        if t.get("best_metric") is not None and headline(t.get("model_cost"))["nnz"]:
            name = t["workload"] + (f":{t['variant']}" if t.get("variant") else "")
            by_workload.setdefault(name, []).append(t)
    for workload, rows in sorted(by_workload.items()):
        sparse = {t["algorithm"] for t in rows if is_sparse(t)}
        if not sparse:
            continue
        points: dict[str, list[tuple[float, float]]] = {}
        compact: dict[str, list[tuple[float, float]]] = {}
        for t in rows:
            key = t["algorithm"] if t["algorithm"] in sparse else "dense"
            points.setdefault(key, []).append((headline(t["model_cost"])["nnz"], t["best_metric"]))
            c = t["model_cost"].get("compact") or {}
            value = (c.get("metrics") or {}).get(t.get("target_metric") or "")
            if c.get("nonzero_params") and value is not None and math.isfinite(value):
                compact.setdefault(t["algorithm"], []).append((c["nonzero_params"], value))
        metric = rows[0].get("target_metric") or "metric"
        png = metric_vs_cost(workload, metric, points, compact,
                             png_path("cost_" + workload), colour_of)  # fmt: skip
        figures.append((f"{workload}: metric against model cost", png))
    workloads = sorted({w for per in costs.values() for w in per})
    shown = [a for a in algorithms if a in costs]
    head = '<th class="l">workload</th>' + "".join(
        f"<th>{html.escape(a)}</th>" for a in shown)  # fmt: skip
    body = "".join(
        f'<tr><td class="l">{html.escape(w)}</td>'
        + "".join(f"<td>{html.escape(cost_cell(costs[a].get(w)))}</td>" for a in shown)
        + "</tr>"
        for w in workloads
    )
    note = f'<p class="note">{html.escape(COST_NOTE)}.'
    if not figures:
        note += " Every algorithm's model costs what the dense model costs: no plot."
    note += (" Unstructured sparsity (masked weights) runs no faster with dense CPU kernels: its "
             "FLOPs on non-zeros are what a sparse kernel would need, not a measured speedup.</p>")
    return f"<table><tr>{head}</tr>{body}</table>{note}{bits_table}", figures + bits_figures
