"""The report's tuning-cost section: what the searcher spent until a configuration was found.

The same table as ``trainlab score --tuning-cost`` (:mod:`trainlab.bench.tuning_cost`): per
algorithm and workload, the searcher, the median over studies of the training cost up to the
first trial that reached the target, the studies that found one, and the median cost of a whole
study, in timed seconds and in reference steps (the measure that holds on a busy machine) where
the trials recorded it.
"""

from __future__ import annotations

import html
from typing import Any

from trainlab.bench.tuning_cost import COST_NOTE, CostRow, cost_table, searcher_of, study_costs
from trainlab.errors import TrainlabError
from trainlab.report.cells import time

#: the measures the report shows, in order
MEASURES = ("time", "ref-steps")


def tables(trials: list[dict[str, Any]], options: dict[str, Any]) -> dict[str, list[CostRow]]:
    """``by`` -> the tuning-cost rows of a benchmark's trials, for each measure of
    :data:`MEASURES` the trials recorded (a store from before reference steps has none)."""
    out = {}
    searcher = searcher_of(options)
    for by in MEASURES:
        try:
            out[by] = cost_table(study_costs(trials, by), searcher)
        except TrainlabError:  # a measure this benchmark did not record
            continue
    return out


def section(trials: list[dict[str, Any]], options: dict[str, Any]) -> str:
    """The HTML of the section (a table and its note); a note alone when nothing finished or
    the benchmark is a learning-rate sweep (no search: every point is trained in full)."""
    if options.get("sensitivity_lrs"):
        return ('<p class="note">A learning-rate sweep (<code>trainlab sensitivity</code>): '
                "nothing is searched, so there is no tuning cost.</p>")
    by_measure = {by: rows for by, rows in tables(trials, options).items() if rows}
    if not by_measure:
        return '<p class="note">No finished trials yet.</p>'
    first = next(iter(by_measure.values()))
    head = ["algorithm", "workload", "searcher"]
    for by in by_measure:
        head += [f"to first reach ({by})", f"whole study ({by})"]
    head.append("found")
    rows = []
    for i, r in enumerate(first):
        cells = [r.algorithm, r.workload, r.searcher]
        for rs in by_measure.values():
            cells += [time(rs[i].median_cost, rs[i].by), time(rs[i].median_total, rs[i].by)]
        cells.append(f"{r.found}/{r.studies}")
        rows.append("<tr>" + "".join(
            f'<td class="l">{html.escape(c)}</td>' if k < 3 else f"<td>{html.escape(c)}</td>"
            for k, c in enumerate(cells)) + "</tr>")  # fmt: skip
    header = "".join(
        f'<th class="l">{html.escape(h)}</th>' if k < 3 else f"<th>{html.escape(h)}</th>"
        for k, h in enumerate(head)
    )
    incomplete = any(r.unfinished for r in first)
    note = COST_NOTE + (" The benchmark is incomplete: unfinished trials are not counted yet."
                        if incomplete else "")  # fmt: skip
    return f'<table><tr>{header}</tr>{"".join(rows)}</table><p class="note">{html.escape(note)}</p>'
