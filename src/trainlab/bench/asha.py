"""Asynchronous successive halving (ASHA) as a searcher of the benchmark.

Li et al., "A System for Massively Parallel Hyperparameter Tuning" (MLSys 2020). Configurations
are trained on *rungs* of growing budgets ``r, r*eta, r*eta^2, ..., R`` (``R``: the workload's
budget, in steps in step mode and in timed seconds in time mode). Whenever a worker is free it
looks at the rungs from the top down and promotes a configuration of rung ``k`` to rung ``k+1``
as soon as it lies in the top ``1/eta`` of the configurations rung ``k`` has *finished so far*
and has not been promoted yet; when nothing can be promoted, it starts the next new
configuration on the bottom rung. Nobody waits for a rung to fill: that is what makes it
asynchronous.

How it sits in trainlab:

* The configurations are the benchmark's Halton points, exactly as ``--search halton`` draws
  them (the same studies, trials and seeds); the plan stores each on the bottom rung, and a
  promotion adds a trial row for the next rung (``trials.search``: ``{"searcher": "asha",
  "rung": k, "rungs": K, "eta": eta, "parent": id}``). Promotions are decided inside the
  store's claim (:meth:`~trainlab.bench.store.Store.claim_or_add`), in one transaction per
  benchmark, so any number of processes (``bench --jobs``, ``trainlab worker``, Ray) promote
  each configuration once, and a killed benchmark resumes like any other.
* **A promoted configuration is trained again from the start** with the larger budget, with the
  same seed and the same schedule (the schedule's length is the full budget's ``step_hint`` on
  every rung, so a rung's run is a prefix of the full run). In step mode the longer run repeats
  the shorter one bit for bit before going on, so the only difference from resuming a
  checkpoint is the repeated compute (at most ``1 / (1 - 1/eta)`` times the compute of a
  resumed search, 1.5x for ``eta = 3``); in exchange every trial is a complete, independent run
  whose time to the target is that configuration's own, and any algorithm can be searched
  (no checkpoint of its state is needed). The paper resumes; this is the choice made here.
* A rung ranks its finished trials by their best validation metric (the target's direction).
  A trial that reached the target is not promoted (its time to the target is known and a
  longer run would reproduce it); diverged and failed trials are ranked last and never
  promoted. The evaluation cadence is the full budget's on every rung.
* Rungs: ``K`` rungs (``--asha-rungs``; default: as many as leave at least
  :data:`MIN_RUNG_EVALS` evaluations on the bottom rung), rung ``k`` of budget ``R /
  eta^(K-1-k)``.

Scoring is unchanged: a study's result is its fastest trial that reached the target, on any
rung.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from trainlab.errors import TrainlabError
from trainlab.spec import EVALS_PER_RUN

#: the fewest evaluations the bottom rung should see (the default number of rungs keeps it)
MIN_RUNG_EVALS = 5
#: statuses of a finished trial that may be ranked for promotion, and promoted
RANKED = ("missed", "reached", "diverged", "failed")


def check_eta(eta: int) -> None:
    if eta < 2:
        raise TrainlabError(f"--eta must be >= 2 (the reduction factor of successive halving), "
                            f"got {eta}")  # fmt: skip


def default_rungs(eta: int) -> int:
    """Rungs such that the bottom one gets at least :data:`MIN_RUNG_EVALS` of a full run's
    (at least ``EVALS_PER_RUN``) evaluations."""
    return 1 + max(0, math.floor(math.log(EVALS_PER_RUN / MIN_RUNG_EVALS, eta) + 1e-9))


def rung_budget(full: float, rung: int, rungs: int, eta: int, steps: bool) -> float | int:
    """The budget of ``rung`` (0: the bottom) when the top rung's is ``full``."""
    budget = full / eta ** (rungs - 1 - rung)
    return max(1, math.ceil(budget)) if steps else budget


def on_rung(row: dict[str, Any], rung: int) -> dict[str, Any]:
    """A copy of a planned trial row (the full budget) moved to ``rung``: its budget scaled,
    everything else (cadence, schedule length, seed, hyperparameters) kept."""
    search = dict(row["search"])
    full_key = "max_steps" if row["mode"] == "steps" else "max_runtime"
    full = search.setdefault("full_budget", row[full_key])
    budget = rung_budget(full, rung, search["rungs"], search["eta"], row["mode"] == "steps")
    return {**row, full_key: budget, "search": {**search, "rung": rung}}


def plan_rows(rows: list[dict[str, Any]], eta: int, rungs: int | None) -> list[dict[str, Any]]:
    """The planned (full-budget) rows of a Halton plan, moved to the bottom rung."""
    check_eta(eta)
    rungs = rungs or default_rungs(eta)
    if rungs < 1:
        raise TrainlabError(f"--asha-rungs must be >= 1, got {rungs}")
    asha = {"searcher": "asha", "eta": eta, "rungs": rungs}  # beside an early-stop rule
    return [on_rung({**r, "search": {**(r.get("search") or {}), **asha}}, 0) for r in rows]


def _group(row: dict[str, Any]) -> tuple:
    return (row["algorithm"], row["workload"], row["variant"] or "", row["study"])


def _score(row: dict[str, Any]) -> float:
    """Higher is better; diverged, failed and metric-less trials last."""
    value = row.get("best_metric")
    if row["status"] in ("diverged", "failed") or value is None or not math.isfinite(value):
        return -math.inf
    return value if row["higher_is_better"] else -value


def promotion(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The next promotion of an ASHA benchmark (a new row for the next rung), or ``None``.

    ``rows``: every trial row of the benchmark (decoded). Rungs are looked at from the top down;
    the searches of different (algorithm, workload, study) are independent, taken in order."""
    finished: dict[int, dict[tuple, list[dict]]] = defaultdict(lambda: defaultdict(list))
    promoted, top, eta = set(), 0, 2
    for row in rows:
        search = row.get("search") or {}
        if search.get("searcher") != "asha":
            continue
        top, eta = max(top, search["rungs"] - 1), search["eta"]
        if row["status"] in RANKED:
            finished[search["rung"]][_group(row)].append(row)
        if search.get("parent") is not None:
            promoted.add(search["parent"])
    for rung in range(top - 1, -1, -1):
        for group in sorted(finished[rung]):
            ranked = sorted(finished[rung][group], key=_score, reverse=True)
            for row in ranked[: len(ranked) // eta]:
                if row["status"] == "missed" and row["id"] not in promoted:
                    child = on_rung(row, rung + 1)
                    child["search"]["parent"] = row["id"]
                    return {k: v for k, v in child.items() if k in PLANNED_FIELDS}
    return None


#: the columns a planned row carries (a promotion copies these from its parent)
PLANNED_FIELDS = ("study", "trial_index", "algorithm", "hyperparameters", "seed", "nproc",
                  "workload", "variant", "mode", "eval_every_steps", "max_runtime", "max_steps",
                  "eval_period", "step_hint", "target_source", "target_metric", "target_value",
                  "higher_is_better", "search")  # fmt: skip
