"""Population Based Training (PBT) as a searcher of the benchmark.

Jaderberg et al., "Population Based Training of Neural Networks" (2017), with the defaults of
Ray Tune's ``PopulationBasedTraining``. A population of ``N`` members trains in parallel;
every ``ready`` steps a member is compared with the others: if its last evaluation ranks in
the bottom quantile ``q``, it *exploits* (copies the weights, optimizer and schedule state and
the hyperparameters of a member drawn uniformly from the top quantile) and *explores* (perturbs
those hyperparameters); otherwise it continues as it is.

``trainlab bench --search pbt [--population N] [--pbt-ready STEPS] [--pbt-quantile Q]
[--pbt-resample P]``. The rule and every choice the paper leaves open, as implemented:

* **Population**: the study's first ``N`` Halton points, exactly those ``--search halton``
  draws (default ``N`` = ``--trials``; at least :data:`MIN_POPULATION`). Member ``m`` is trial
  ``m`` of its study, with that trial's seed. Studies, algorithms and workloads are independent
  populations.
* **Segments**: a member trains in segments of ``ready`` steps; each is one trial row
  (``trials.search``: ``{"searcher": "pbt", "member", "generation", "start_step",
  "end_step", "parent", "exploited", ...}``). Generation 0 is planned; the next segment of a
  member is added inside the store's claim (:meth:`~trainlab.bench.store.Store.claim_or_add`,
  one transaction per benchmark, as ASHA's promotions) once its previous one finished, so any
  number of processes add each segment once. ``parent`` is the trial whose checkpoint the
  segment starts from (``None`` at generation 0), ``exploited`` the member copied (or ``None``).
* **ready** (``--pbt-ready``): default ``ceil(max_steps / 9)`` in step mode (8 exploit/explore
  rounds over the budget), rounded up to a multiple of the evaluation period so that every
  segment ends on an evaluation (so fewer rounds when the period is coarse); a ``ready`` that
  leaves no round within the step budget is refused; in time mode ``ceil(step_hint / 9)``
  (the budget in steps is not known ahead; a segment also ends when the lineage's timed budget
  is spent).
* **Ranking** (truncation selection): a finished member of generation ``g`` is ranked against
  the finished segments of generation ``g`` of its population *so far* (asynchronous, as Ray
  Tune: nobody waits for a generation to fill; with ``--jobs 1`` the claim prefers planned
  segments of the lowest generation, so the population advances in lockstep and every decision
  sees the whole generation). The score is the last evaluation's target metric (its direction);
  diverged and failed segments rank last; ties go to the lower member index. Of ``n`` ranked,
  the top and bottom ``k = ceil(q n)`` are the quantiles, ``k = floor(n / 2)`` when that is
  smaller (Ray Tune's rule), so one member alone never exploits.
* **Exploit**: a member in the bottom quantile, or one whose segment diverged or failed (it has
  no state to continue from), copies a donor drawn uniformly from the top quantile's members
  whose segment ended at its ``end_step`` (a member that reached the target has stopped; its
  state is not copied). A diverged member with no donor yet waits for more of its generation
  to finish; with none at all it stops.
* **Explore** (:func:`explore`): each float or integer hyperparameter is multiplied by 0.8 or
  1.2 (equal odds), clipped to its search-space range, integers rounded; or, with probability
  ``P`` (``--pbt-resample``, default 0.25), drawn afresh from the search space (uniform, or
  log-uniform on a log scale). A categorical one is drawn afresh from its choices with
  probability ``P`` and kept otherwise (a factor means nothing for it). Values held fixed
  under the external ruleset are never changed.
* **Randomness**: every decision draws from ``random.Random`` seeded with ``(benchmark seed,
  study, member, generation)``, so a resumed run decides the same given the same ranking.
* **Stopping**: a member that reached the target stops. Once a member of the study has reached
  it, a member whose next segment would start at or past that lineage's time, steps and CPU
  seconds to the target stops too: its lineage can no longer be faster (by any measure), and
  the study's result is already known. In step mode steps alone decide, so that the same
  benchmark always trains the same segments (the clocks differ from run to run).
* **Time to target**: a segment's evaluations record steps and timed seconds cumulative along
  its lineage (from the checkpoint), so the unchanged scoring (the study's first evaluation
  meeting the target) gives the fastest lineage's time. Saving and restoring checkpoints and
  the searcher's decisions are untimed: the lineage is charged what one long run would be.
  The schedule's length stays the full budget's ``step_hint``; the resumed data stream is
  reseeded from ``(seed, start_step)`` (:func:`trainlab.bench.checkpoints.stream_seed`).
* **Checkpoints**: :mod:`trainlab.bench.checkpoints`; an algorithm must implement
  ``Algorithm.state_dict``/``load_state_dict`` (every plain ``Recipe`` does), checked before
  anything runs. A segment killed mid-way is rerun from its parent's checkpoint.

The best member's lineage (the chain of ``parent`` links, :func:`lineage`) and its
hyperparameter schedule (:func:`hp_schedule`) are derived from the rows; the report plots them.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

from trainlab.bench.asha import PLANNED_FIELDS
from trainlab.errors import TrainlabError
from trainlab.search_space import SearchSpace

#: the smallest population: at the default quantile it has one donor, one exploiter and two
#: members between them; fewer make the search a copy of one or two runs
MIN_POPULATION = 4
#: exploit/explore rounds over the budget that the default ``ready`` aims at
ROUNDS = 8
DEFAULT_QUANTILE = 0.25
DEFAULT_RESAMPLE = 0.25
#: the perturbation factors of a float or integer hyperparameter (Ray Tune's)
FACTORS = (0.8, 1.2)
#: finished statuses a segment is ranked with; ``diverged`` and ``failed`` rank last
RANKED = ("missed", "reached", "diverged", "failed")


def _group(row: dict[str, Any]) -> tuple:
    """The population a segment belongs to: (algorithm, workload, variant, study)."""
    return (row["algorithm"], row["workload"], row["variant"] or "", row["study"])


def check_options(population: int, ready: int | None, quantile: float,
                  resample: float) -> None:  # fmt: skip
    """Raise :class:`TrainlabError` naming the first bad PBT setting (``population``: the
    members per study, ``--population`` or else ``--trials``)."""
    if population < MIN_POPULATION:
        raise TrainlabError(f"--search pbt needs a population of >= {MIN_POPULATION} (--population"
                            f", default --trials), got {population}")  # fmt: skip
    if ready is not None and ready < 1:
        raise TrainlabError(f"--pbt-ready must be >= 1 step, got {ready}")
    if not 0.0 < quantile <= 0.5:
        raise TrainlabError(f"--pbt-quantile must be in (0, 0.5], got {quantile}")
    if not 0.0 <= resample <= 1.0:
        raise TrainlabError(f"--pbt-resample must be in [0, 1], got {resample}")


def check_space(name: str, space: SearchSpace) -> None:
    """Every hyperparameter must be explorable: a range, or choices to draw from."""
    for p in space.params:
        if p.kind == "choice" and not p.choices:
            raise TrainlabError(f"{name}: categorical hyperparameter {p.name} has no choices "
                                "for --search pbt to draw from")  # fmt: skip


def segment_steps(ready: int | None, row: dict[str, Any]) -> int:
    """The steps of one segment for a planned row (full budget): see the module doc."""
    if row["mode"] != "steps":
        return ready or max(1, math.ceil(row["step_hint"] / (ROUNDS + 1)))
    every = int(row["eval_every_steps"])
    steps = ready or math.ceil(row["max_steps"] / (ROUNDS + 1))
    steps = max(every, math.ceil(steps / every) * every)
    if steps >= row["max_steps"]:
        raise TrainlabError(
            f"--pbt-ready {steps} (a multiple of the evaluation period {every}) leaves no "
            f"exploit/explore round in {row['workload']}'s {row['max_steps']}-step budget: "
            "give a smaller --pbt-ready or a larger --max-steps")
    return steps


def _end(search: dict[str, Any], start: int, row: dict[str, Any]) -> int:
    end = start + search["ready"]
    return min(end, row["max_steps"]) if row["mode"] == "steps" else end


def plan_rows(rows: list[dict[str, Any]], seed: int, ready: int | None, quantile: float,
              resample: float) -> list[dict[str, Any]]:  # fmt: skip
    """The planned (full-budget) rows of a Halton plan as generation 0 of their populations."""
    out = []
    for r in rows:
        pbt = {"searcher": "pbt", "member": r["trial_index"], "generation": 0, "start_step": 0,
               "parent": None, "exploited": None, "ready": segment_steps(ready, r),
               "quantile": quantile, "resample": resample, "seed": seed}  # fmt: skip
        pbt["end_step"] = _end(pbt, 0, r)
        out.append({**r, "search": {**(r.get("search") or {}), **pbt}})
    return out


def explore(hp: dict[str, Any], space: SearchSpace, rng: random.Random, resample: float,
            held: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:  # fmt: skip
    """``hp`` perturbed by the rule of the module doc, drawing from ``rng`` in the order of
    the search space: per float/int parameter one draw for resampling, then one for the
    factor or the fresh value; per categorical one, one draw, then one choice if resampled."""
    out = dict(hp)
    for p in space.params:
        if p.name in held or p.name not in out:
            continue
        fresh = rng.random() < resample
        if p.kind == "choice":
            if fresh:
                out[p.name] = rng.choice(p.choices)
            continue
        value = p.from_unit(rng.random()) if fresh else out[p.name] * rng.choice(FACTORS)
        value = min(max(value, p.low), p.high)
        out[p.name] = int(round(value)) if p.kind == "int" else float(value)
    return out


def decision_rng(seed: int, study: int, member: int, generation: int) -> random.Random:
    """The generator of one decision (``generation``: the segment being added)."""
    return random.Random(f"pbt:{seed}:{study}:{member}:{generation}")


def _score(row: dict[str, Any], last: dict[int, float]) -> float:
    """Higher is better; diverged, failed and metric-less segments last."""
    value = last.get(row["id"])
    if row["status"] in ("diverged", "failed") or value is None or not math.isfinite(value):
        return -math.inf
    return value if row["higher_is_better"] else -value


def truncation(rows: list[dict[str, Any]], last: dict[int, float],
               quantile: float) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """``(top, bottom)`` quantiles of finished segments ranked by their last metric (``last``:
    trial id -> value); ties go to the lower member; see the module doc for ``k``."""
    ranked = sorted(rows, key=lambda r: (-_score(r, last), r["search"]["member"]))
    k = math.ceil(quantile * len(ranked))
    if k > len(ranked) / 2:
        k = len(ranked) // 2
    return ranked[:k], (ranked[len(ranked) - k :] if k else [])


def _ended_at_end(row: dict[str, Any]) -> bool:
    return row["status"] == "missed" and row["steps"] == row["search"]["end_step"]


def _more_budget(row: dict[str, Any]) -> bool:
    return row["mode"] != "steps" or row["search"]["end_step"] < row["max_steps"]


def _cannot_win(start: dict[str, Any], reached: list[dict[str, Any]]) -> bool:
    """A lineage continuing from ``start``'s end is no faster than a reached one by any
    measure; in step mode by steps alone (the clocks would make the decision, and so the set
    of segments, differ between two runs of the same benchmark)."""
    for r in reached:
        pairs = [(start["steps"], r["steps_to_target"])]
        if start["mode"] != "steps":
            pairs += [(start["timed_seconds"], r["time_to_target"]),
                      (start["cpu_seconds"], r["cpu_time_to_target"])]  # fmt: skip
        if all(a is not None and b is not None and a >= b for a, b in pairs):
            return True
    return False


def next_segment(rows: list[dict[str, Any]], last: dict[int, float],
                 spaces: dict[str, SearchSpace],
                 held: dict[str, set[str]] | None = None) -> dict[str, Any] | None:  # fmt: skip
    """The next segment to add to a PBT benchmark (a new row), or ``None``.

    ``rows``: every trial row of the benchmark (decoded); ``last``: the last evaluation's
    target metric of each finished segment; ``spaces``: each algorithm's search space;
    ``held``: the hyperparameters held fixed per algorithm. Members due a segment are taken by
    (generation, population, member), and none is added while a planned or interrupted segment
    of the same or a lower generation waits (lockstep under ``--jobs 1``)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if (row.get("search") or {}).get("searcher") == "pbt":
            groups[_group(row)].append(row)
    waiting = [r["search"]["generation"] for rs in groups.values() for r in rs
               if r["status"] in ("pending", "interrupted")]  # fmt: skip
    lowest_waiting = min(waiting, default=math.inf)
    due = []
    for key, members in groups.items():
        latest: dict[int, dict] = {}
        for r in members:
            m = r["search"]["member"]
            if m not in latest or r["search"]["generation"] > latest[m]["search"]["generation"]:
                latest[m] = r
        for m, r in latest.items():
            if (r["status"] in ("diverged", "failed") or _ended_at_end(r)) and _more_budget(r):
                due.append((r["search"]["generation"], key, m, r))
    for generation, key, _member, row in sorted(due, key=lambda d: d[:3]):
        if generation + 1 >= lowest_waiting:  # a planned or rerun segment goes first
            return None
        child = _decide(row, groups[key], last, spaces, (held or {}).get(row["algorithm"], set()))
        if child is not None:
            return child
    return None


def _decide(row: dict[str, Any], members: list[dict[str, Any]], last: dict[int, float],
            spaces: dict[str, SearchSpace], held: set[str]) -> dict[str, Any] | None:  # fmt: skip
    """The next segment of ``row``'s member, or ``None`` (it waits, or stops)."""
    search = row["search"]
    generation = search["generation"]
    peers = [r for r in members if r["search"]["generation"] == generation
             and r["status"] in RANKED]  # fmt: skip
    top, bottom = truncation(peers, last, search["quantile"])
    rng = decision_rng(search["seed"], row["study"], search["member"], generation + 1)
    must_move = row["status"] in ("diverged", "failed")  # no state to continue from
    donors = [r for r in top if _ended_at_end(r) and r["id"] != row["id"]]
    start, hp, exploited = row, row["hyperparameters"], None
    if must_move or any(r["id"] == row["id"] for r in bottom):
        if donors:
            start = rng.choice(donors)
            hp = explore(start["hyperparameters"], spaces[row["algorithm"]], rng,
                         search["resample"], held)  # fmt: skip
            exploited = start["search"]["member"]
        elif must_move:
            return None
    if not _more_budget(start):
        return None
    reached = [r for r in members if r["status"] == "reached"]
    if reached and _cannot_win(start, reached):
        return None
    begin = start["search"]["end_step"]
    child = {k: v for k, v in row.items() if k in PLANNED_FIELDS}
    child["hyperparameters"] = hp
    child["search"] = {**search, "generation": generation + 1, "start_step": begin,
                       "parent": start["id"], "exploited": exploited}  # fmt: skip
    child["search"]["end_step"] = _end(child["search"], begin, row)
    return child


# --------------------------------------------------------------------------------------------
# lineages, for the report


def lineage(rows: list[dict[str, Any]], trial_id: int) -> list[dict[str, Any]]:
    """The segments from generation 0 to ``trial_id``, following ``parent`` links."""
    by_id = {r["id"]: r for r in rows}
    chain = []
    current: int | None = trial_id
    while current is not None and current in by_id:
        chain.append(by_id[current])
        current = (by_id[current].get("search") or {}).get("parent")
    return chain[::-1]


def hp_schedule(chain: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """``(start step, hyperparameters)`` of each segment of a lineage: the values it trained
    with from that step on."""
    return [(int(r["search"]["start_step"]), r["hyperparameters"]) for r in chain]


def best_segments(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Per population (algorithm, workload, variant, study): its best segment, the reached one
    with the least time to the target, else the one of the latest generation with the best
    metric; its :func:`lineage` is the population's best member's."""
    out: dict[tuple, dict] = {}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if (r.get("search") or {}).get("searcher") == "pbt" and r["status"] in RANKED:
            groups[_group(r)].append(r)
    for key, members in groups.items():
        reached = [r for r in members if r["status"] == "reached"]
        if reached:
            out[key] = min(reached, key=lambda r: (r["time_to_target"], r["id"]))
            continue
        top = max(r["search"]["generation"] for r in members)
        last = [r for r in members if r["search"]["generation"] == top]
        out[key] = max(last, key=lambda r: (-math.inf if r["best_metric"] is None else
                                            (r["best_metric"] if r["higher_is_better"]
                                             else -r["best_metric"]), -r["id"]))  # fmt: skip
    return out

