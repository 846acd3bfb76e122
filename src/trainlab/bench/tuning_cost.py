"""The tuning cost of a searcher: the training compute spent until a configuration is found.

The time-to-target score (:mod:`trainlab.bench.scoring`) asks how fast the *best* trial of a
study reaches the target; it is blind to what the search paid to find that trial. This module
measures the other half (issue 13): for each (algorithm, workload, study), the **tuning cost** is
the total training cost of the study's trials, in the order they were trained, up to and
including the first trial that reaches the target (``inf`` when none does), beside the cost of
the whole study. A cheaper searcher (ASHA's short bottom rungs, learning-curve early stopping,
PBT's shared segments) finds a configuration for less; the score says whether it finds as good
a one.

The rule, searcher-agnostic (Halton, ASHA, Halton with an early-stopping rule, PBT):

* **Cost of a trial** in the unit of ``by`` (the measures of ``trainlab score --by``): ``time``:
  its timed training seconds; ``cpu-time``: its CPU seconds; ``ref-steps``: its CPU seconds over
  its (median) reference step, the measure that holds on a busy machine (exact to the target,
  an approximation over a whole trial, which records only the median reference step);
  ``steps``: its steps; ``flops``: its steps times its FLOPs per step. Unfinished trials
  (pending, running) are not counted; a stopped-early, missed, diverged or failed trial counts
  what it spent.
* **The reaching trial** counts its cost up to the target (its time to target, capped at its own
  cost): with ``full_curve`` it trains on after the target, but the configuration was found
  then.
* **Order**: the moment a configuration is found is the wall-clock moment the first reaching
  trial met its target, taken as ``started + (finished - started) * reach / cost`` (``reach``:
  its cost to the target). Every trial of the study that finished by then counts in full; a
  trial *in flight* then (parallel ``--jobs``, workers) counts the share of its wall-clock span
  that lay before that moment (a linear interpolation: its cost is assumed to accrue evenly over
  its span); later trials count nothing. With ``--jobs 1`` no trials overlap and this is the
  order of ``finished`` (for Halton, the plan's order). A study with a trial that lacks
  its timestamps falls back to the order of trial ids, one at a time.
* **Resumed segments** (PBT: ``search.start_step`` > 0, resumed from the checkpoint of trial
  ``search.parent``) record steps and seconds cumulative along their lineage; a segment whose
  step count exceeds its ``start_step`` is read that way and its own cost is its measures minus
  its parent's (cumulative) ones. The parent's own cost is already counted as its own trial, so
  nothing is counted twice. An ASHA promotion (``search.rung``) is trained again from the
  start: its cost is its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from trainlab.bench.scoring import MEASURES, median_over_studies
from trainlab.errors import TrainlabError

INF = math.inf
#: statuses of a trial that has not finished: its cost is not known yet
UNFINISHED = ("pending", "running")


def searcher_of(options: dict[str, Any]) -> str:
    """The searcher of a benchmark from its stored options: ``halton``, ``asha``, ``pbt``, ...,
    with ``+<predictor>`` when it stopped trials early (``halton+lc-pfn``)."""
    name = options.get("search") or "halton"
    stop = options.get("early_stop") or "none"
    return name if stop == "none" else f"{name}+{stop}"


def shown_by_default(options: dict[str, Any]) -> bool:
    """``trainlab score`` prints the tuning cost without being asked when the benchmark used a
    searcher other than plain Halton (another searcher or an early-stopping rule)."""
    return searcher_of(options) != "halton"


def _total(row: dict[str, Any], by: str) -> float | None:
    """A trial's whole cost as recorded (cumulative along a lineage for a resumed segment)."""
    if by == "time":
        return row.get("timed_seconds")
    if by == "cpu-time":
        return row.get("cpu_seconds")
    if by == "steps":
        return row.get("steps")
    if by == "ref-steps":
        cpu, ref = row.get("cpu_seconds"), row.get("reference_step_seconds")
        return cpu / ref if cpu is not None and ref else None
    steps, flops = row.get("steps"), row.get("flops_per_step")  # flops
    return steps * flops if steps is not None and flops is not None else None


def _resumed(row: dict[str, Any]) -> bool:
    """A segment resumed from its parent's checkpoint whose measures run on from the parent's."""
    search = row.get("search") or {}
    start = search.get("start_step") or 0
    return bool(start) and search.get("parent") is not None and (row.get("steps") or 0) > start


@dataclass(frozen=True)
class TrialCost:
    """One finished trial's own cost, its cost to the target (None: it did not reach it) and
    its wall-clock span."""

    id: int
    cost: float
    reach: float | None
    started: float | None
    finished: float | None


def trial_costs(rows: list[dict[str, Any]], by: str = "time") -> list[TrialCost]:
    """The own cost of every finished trial of ``rows`` (all the rows of one benchmark or
    study, so that a resumed segment finds its parent), in the unit of ``by``. A finished trial
    without the measure: a :class:`TrainlabError` (stored before the measure existed)."""
    if by not in MEASURES:
        raise TrainlabError(f"--by takes {', '.join(MEASURES)}, got {by!r}")
    by_id = {r["id"]: r for r in rows}
    out = []
    for row in rows:
        if row["status"] in UNFINISHED:
            continue
        total = _total(row, by)
        if total is None:
            raise TrainlabError(f"trial {row['id']} has no {by} cost recorded: its benchmark was "
                                "recorded before that measure existed; use --by time")  # fmt: skip
        offset = 0.0
        if _resumed(row):
            parent = by_id.get(row["search"]["parent"])
            offset = (_total(parent, by) or 0.0) if parent is not None else 0.0
        cost = max(0.0, float(total) - offset)
        reach = None
        if row["status"] == "reached":
            value = row.get(MEASURES[by])
            if value is None:
                raise TrainlabError(f"trial {row['id']} has no {MEASURES[by]}: its benchmark "
                                    f"was recorded before --by {by} existed")  # fmt: skip
            reach = min(cost, max(0.0, float(value) - offset))
        out.append(TrialCost(row["id"], cost, reach, row.get("started"), row.get("finished")))
    return out


def cost_to_first_reach(costs: list[TrialCost]) -> tuple[float, TrialCost | None]:
    """``(cost, first)``: the cost of a study's trials up to the moment its first reaching trial
    met the target (the module doc's rule), and that trial; ``(inf, None)`` when none reached."""
    reached = [c for c in costs if c.reach is not None]
    if not reached:
        return INF, None
    timed = all(c.started is not None and c.finished is not None for c in costs)
    if not timed:  # no timestamps: one at a time, in the order of trial ids
        first = min(reached, key=lambda c: c.id)
        return sum(c.cost for c in costs if c.id < first.id) + first.reach, first

    def found_at(c: TrialCost) -> float:
        span = c.finished - c.started
        return c.started + (span * c.reach / c.cost if c.cost > 0 else span)

    first = min(reached, key=lambda c: (found_at(c), c.id))
    moment = found_at(first)
    total = first.reach
    for c in costs:
        if c is first or c.started >= moment:
            continue
        if c.finished <= moment:
            total += c.cost
        else:  # in flight: the share of its span before the moment
            total += c.cost * (moment - c.started) / (c.finished - c.started)
    return total, first


@dataclass(frozen=True)
class StudyCost:
    """The tuning cost of one (algorithm, workload, study)."""

    algorithm: str
    workload: str  # "name" or "name:variant"
    study: int
    by: str
    cost: float  # to the first configuration that reached the target; inf: none did
    total: float  # every finished trial of the study
    trials: int  # finished trials (segments, rungs) counted in ``total``
    first: int | None  # the id of the first trial that reached the target
    unfinished: int  # trials not finished yet: the cost may still change

    @property
    def found(self) -> bool:
        return self.first is not None


def study_costs(trials: Iterable[dict[str, Any]], by: str = "time") -> list[StudyCost]:
    """The tuning cost of every (algorithm, workload, study) of a benchmark's trial rows
    (:meth:`~trainlab.bench.store.Store.trials`), sorted by algorithm, workload and study."""
    rows = list(trials)
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        workload = r["workload"] + (f":{r['variant']}" if r.get("variant") else "")
        groups[(r["algorithm"], workload, int(r["study"] or 0))].append(r)
    out = []
    for (algorithm, workload, study), group in sorted(groups.items()):
        costs = trial_costs(group, by)
        cost, first = cost_to_first_reach(costs)
        out.append(StudyCost(
            algorithm, workload, study, by, cost, sum(c.cost for c in costs), len(costs),
            None if first is None else first.id, len(group) - len(costs),
        ))  # fmt: skip
    return out


@dataclass(frozen=True)
class CostRow:
    """One line of the tuning-cost table: an (algorithm, workload) over its studies."""

    algorithm: str
    workload: str
    searcher: str
    by: str
    median_cost: float  # median over studies of the cost to the first reach (inf: a miss)
    median_total: float  # median over studies of the whole study's cost
    found: int  # studies that found a configuration reaching the target
    studies: int
    unfinished: int

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["median_cost"] = None if math.isinf(self.median_cost) else self.median_cost
        return out


def cost_table(costs: Iterable[StudyCost], searcher: str) -> list[CostRow]:
    """Per (algorithm, workload): the median over studies of the cost to the first reach (a
    study that found none counts as ``inf``, as in scoring's median), of the whole study, and
    how many studies found a configuration."""
    cells: dict[tuple[str, str], list[StudyCost]] = defaultdict(list)
    for c in costs:
        cells[(c.algorithm, c.workload)].append(c)
    return [
        CostRow(a, w, searcher, cs[0].by, median_over_studies(c.cost for c in cs),
                median_over_studies(c.total for c in cs), sum(c.found for c in cs), len(cs),
                sum(c.unfinished for c in cs))
        for (a, w), cs in sorted(cells.items())
    ]  # fmt: skip


def benchmark_cost_table(store: Any, benchmark_id: int, by: str = "time") -> list[CostRow]:
    """:func:`cost_table` of a stored benchmark, labelled with its searcher."""
    bench = store.benchmark(benchmark_id)
    searcher = searcher_of(bench["config"].get("options") or {})
    return cost_table(study_costs(store.trials(benchmark_id=bench["id"]), by), searcher)


#: the note under the table (terminal and HTML)
COST_NOTE = (
    "Tuning cost: training spent by a study's trials (every rung, segment and stopped trial) "
    "until the first one met the target, in the order they trained (trials in flight then count "
    "their share); median over studies, inf when half or more found none; found: studies that "
    "found a configuration reaching the target; whole study: everything the study trained."
)
