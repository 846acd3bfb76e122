"""The report's low-precision part (in the model-cost section): AdaPT's per-layer bit-widths.

For each algorithm and workload with AdaPT trials (a trial whose ``model_cost["method"]`` is
an AdaPT record, :func:`trainlab.algorithms.precision.adapt_record`), a plot of the weights'
word length of every quantized layer against the update (one step line per layer) for one
trial, the one with the best validation metric, and a table of the medians over the trials of
the final mean bit-width and the modelled training and inference speedups, beside the paper's
(Kummer et al., SDM 2023: 1.27x training, 2.33x inference on its CNNs). The speedups are the
paper's analytical model of fixed-point hardware; the emulation that trained the model runs in
float32 and is slower than float32 training on a CPU, not faster.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainlab.report.plots import DPI, label, plt

NOTE = (
    "Modelled speedups: AdaPT's analytical performance model of fixed-point hardware (Kummer "
    "et al., SDM 2023), computed from each trial's per-layer bit-widths, beside the paper's "
    "averages over its CNNs. The fixed point is emulated here in float32: emulation is not a "
    "CPU speedup (it is slower than float32 training)."
)


def adapt_record(trial: dict[str, Any]) -> dict[str, Any] | None:
    """The trial's AdaPT record, or None."""
    record = (trial.get("model_cost") or {}).get("method") or {}
    return record if record.get("name") == "adapt" and "layers" in record else None


def trajectory_plot(title: str, record: dict[str, Any], path: Path) -> Path:
    """One PNG: each layer's weight word length (bits) against the update, as steps (a format
    holds from its update until the next entry, the last until ``updates``)."""
    steps = list(record["steps"]) + [max(record["updates"], record["steps"][-1])]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=DPI)
    for i, layer in enumerate(record["layers"]):
        bits = [entry[i][0] for entry in record["weights"]]
        ax.step(steps, bits + bits[-1:], where="post", label=label(layer), lw=1.4)
    ax.set_xlabel("update")
    ax.set_ylabel("weight word length (bits)")
    ax.set_title(label(title))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _best(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the best finite validation metric (the first one when none has one)."""
    scored = [t for t in rows if t.get("best_metric") is not None
              and math.isfinite(t["best_metric"])]  # fmt: skip
    if not scored:
        return rows[0]
    sign = 1 if scored[0].get("higher_is_better", 1) else -1
    return max(scored, key=lambda t: sign * t["best_metric"])


def section(
    trials: list[dict[str, Any]], png_path: Callable[[str], Path]
) -> tuple[str, list[tuple[str, Path]]]:
    """The AdaPT table (HTML, empty when no trial has an AdaPT record) and its plots
    ``(caption, png)``; ``png_path(name)`` gives a safe file path for a plot."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in trials:
        if adapt_record(t) is not None:
            workload = t["workload"] + (f":{t['variant']}" if t.get("variant") else "")
            groups.setdefault((t["algorithm"], workload), []).append(t)
    if not groups:
        return "", []
    figures, body = [], []
    for (algorithm, workload), rows in sorted(groups.items()):
        best = _best(rows)
        record = adapt_record(best)
        title = f"{algorithm} on {workload}, trial {best.get('id')}: bit-widths per layer"
        png = trajectory_plot(title, record, png_path(f"bits_{algorithm}_{workload}"))
        figures.append((title, png))
        records = [adapt_record(t) for t in rows]

        def median(key: str, records=records) -> float:
            return statistics.median(r[key] for r in records)

        cells = [algorithm, workload, str(len(rows)), f"{median('mean_bits'):.2f}",
                 f"{median('modelled_training_speedup'):.2f}x "
                 f"(paper {record['paper_training_speedup']}x)",
                 f"{median('modelled_inference_speedup'):.2f}x "
                 f"(paper {record['paper_inference_speedup']}x)"]  # fmt: skip
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("algorithm", "workload", "trials",
                                             "final mean bit-width", "modelled training speedup",
                                             "modelled inference speedup"))  # fmt: skip
    table = (f"<h3>Low precision (AdaPT)</h3><table><tr>{head}</tr>{''.join(body)}</table>"
             f'<p class="note">Medians over the trials. {html.escape(NOTE)}</p>')  # fmt: skip
    return table, figures
