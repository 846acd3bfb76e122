"""The learning-rate sensitivity of a stored sweep (``trainlab sensitivity``), as a table and a
plot: the final validation loss against the learning rate (log x), one line per algorithm
(mean over seeds, capped at ``l0``; the band spans the seeds' lowest and highest), the
dashed line ``l0``, the loss at initialisation. The HTML report shows one section per stored
sweep (:func:`section`); the command prints the same table (:func:`table`)."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainlab.report.plots import DPI, colours, label, plt


def sweep_plot(sweep: Any, path: str | Path) -> Path:
    """One PNG of a :class:`trainlab.bench.sensitivity.Sweep`; returns ``path``."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=DPI)
    colour_of = colours(list(sweep.sensitivities))
    for algorithm, s in sweep.sensitivities.items():
        colour = colour_of[algorithm]
        ax.plot(s.lrs, s.losses, "o-", color=colour, lw=1.5, ms=4,
                label=label(f"{algorithm}: sensitivity {s.value:.3f}"))  # fmt: skip
        runs = sweep.runs.get(algorithm, {})
        if any(len(v) > 1 for v in runs.values()):
            low = [min(runs[lr]) for lr in s.lrs]
            high = [max(runs[lr]) for lr in s.lrs]
            ax.fill_between(s.lrs, low, high, color=colour, alpha=0.15, lw=0)
    ax.axhline(sweep.initial_loss, color="0.4", ls="--", lw=1, label="l0 (at initialisation)")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final validation {sweep.metric}")
    ax.set_title(label(f"{sweep.workload}: learning-rate sensitivity"), loc="left", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def table(sweep: Any) -> tuple[str, list[str], list[list[str]]]:
    """The sweep's table: one row per learning rate (final loss, mean over seeds, capped at
    l0, marked ``(l0)`` when capped and ``*`` at the best), then the sensitivity [95 %
    interval] and the best learning rate; one column per algorithm."""
    algorithms = list(sweep.sensitivities)
    header = ["lr", *algorithms]
    rows = []
    for lr in sweep.lrs:
        row = [f"{lr:.4g}"]
        for a in algorithms:
            s = sweep.sensitivities[a]
            if lr not in s.lrs:
                row.append("-")
                continue
            loss = s.losses[s.lrs.index(lr)]
            capped = " (l0)" if loss >= sweep.initial_loss else ""
            row.append(f"{loss:.4f}{capped}" + (" *" if lr == s.best_lr else ""))
        rows.append(row)
    rows.append(["sensitivity", *(interval_text(sweep, a) for a in algorithms)])
    rows.append(["best lr", *(f"{sweep.sensitivities[a].best_lr:.4g}" for a in algorithms)])
    title = (f"learning-rate sensitivity on {sweep.workload}: final validation {sweep.metric} "
             f"(mean over seeds, capped at l0 = {sweep.initial_loss:.4f})")  # fmt: skip
    return title, header, rows


def interval_text(sweep: Any, algorithm: str) -> str:
    """``0.1234 [0.1000, 0.1500]`` (the value alone when there is no interval)."""
    value = sweep.sensitivities[algorithm].value
    interval = sweep.intervals.get(algorithm)
    if interval is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"


def notes(sweep: Any) -> list[str]:
    """What the numbers are: the metric, the interval, unfinished trials."""
    seeds = min((s.seeds for s in sweep.sensitivities.values()), default=0)
    out = [f"sensitivity = mean over the {len(sweep.lrs)} learning rates of min(l(lr), l0) "
           "minus the best (Wortsman et al., 2023); a diverged or failed run counts l0; "
           "*: the algorithm's best learning rate"]
    if seeds >= 2 and sweep.n_boot:
        out.append(f"[..]: 95 % percentile bootstrap over the {seeds} seeds (seeds resampled "
                   f"with replacement, the same draw at every lr; {sweep.n_boot} replicates); "
                   "with few seeds it understates the spread")  # fmt: skip
    else:
        out.append("no interval: a single seed (run more --seeds)")
    if sweep.failed:
        out.append(f"note: {sweep.failed} trial(s) failed with an error (not a divergence) and "
                   "count l0; see their errors with `trainlab show ID`")  # fmt: skip
    if sweep.finished < sweep.total:
        out.append(f"note: {sweep.finished} of {sweep.total} trials finished; the rest count "
                   "for nothing yet (rerun the command to finish them)")  # fmt: skip
    return out


def _html_table(sweep: Any) -> str:
    esc = html.escape
    _, header, rows = table(sweep)
    head = "".join(f'<th class="l">{esc(h)}</th>' if i == 0 else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(header))  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f'<td class="l">{esc(c)}</td>' if i == 0 else f"<td>{esc(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )  # fmt: skip
    notes_html = "".join(f'<p class="note">{esc(n)}</p>' for n in notes(sweep))
    return f"<table><tr>{head}</tr>{body}</table>{notes_html}"


def section(store: Any, path_of: Callable[[str], Path]) -> list[tuple[str, str, Path]]:
    """``(heading, table HTML, plot PNG)`` for every sweep in ``store`` (an open
    :class:`~trainlab.bench.store.Store`), oldest first; ``path_of(name)`` names a plot file.
    Empty when the store holds no sweep."""
    from trainlab.bench.sensitivity import is_sweep, read_sweeps

    out = []
    for bench in store.benchmarks():
        if not is_sweep(bench):
            continue
        for sweep in read_sweeps(store, int(bench["id"])):
            if not sweep.sensitivities:  # nothing finished yet
                continue
            heading = f"{sweep.workload} (sweep {sweep.benchmark_id})"
            png = sweep_plot(sweep, path_of(f"sensitivity_{sweep.workload}_{sweep.benchmark_id}"))
            out.append((heading, _html_table(sweep), png))
    return out
