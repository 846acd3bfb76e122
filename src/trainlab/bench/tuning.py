"""The tuning rulesets: which hyperparameter points a benchmark runs, in which study.

* **External tuning** (``"external"``): the algorithm ships a workload-agnostic search space;
  ``N x S`` quasirandom points are drawn from it with a scrambled Halton sequence
  (``scipy.stats.qmc.Halton``, seeded with the benchmark's recorded seed) and split, in order,
  into ``S`` studies of ``N`` trials: study ``s`` gets points ``s*N .. s*N + N - 1``. A study's
  result is its fastest trial that reaches the target; the workload's result is the median over
  studies. An algorithm with an empty search space (a self-tuning one) has nothing to tune: it
  runs its defaults once per study, under the external budget.
* **Self-tuning** (``"self"``): no hyperparameters are searched; the algorithm runs with its
  defaults (``search_space.validate({})``), once per study, each study with its own seed, and
  the budget is :data:`SELF_TUNING_BUDGET` times the workload's (``max_runtime`` in time mode,
  the step budget in step mode).
* **A fixed list of points** (AlgoPerf's list-form search space, an algorithm with
  ``fixed_points``): under ``external`` trial ``i`` of every study runs point ``i``, in order.
* **Fixed** (``"fixed"``, used by target setting): given hyperparameters, once per study.

Every planned trial gets its own training seed, a pure function of the benchmark seed, the
study and the trial's index (:func:`trial_seed`), so a plan is the same every time it is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainlab.spec import Algorithm, SearchSpace, TrainlabError

#: the rulesets a user benchmarks under; ``fixed`` (given hyperparameters, once per study) is
#: target setting's, see :func:`fixed_point`
RULESETS = ("external", "self")
ALL_RULESETS = (*RULESETS, "fixed")
#: the budget multiplier of the self-tuning ruleset (the design's 1.5; AlgoPerf v0.5 uses 3)
SELF_TUNING_BUDGET = 1.5


@dataclass(frozen=True)
class TrialPlan:
    """One planned trial of one algorithm on one workload (before it becomes a store row)."""

    study: int
    trial_index: int
    hyperparameters: dict[str, Any] = field(hash=False)
    seed: int


def halton_unit_points(dim: int, n: int, seed: int) -> list[list[float]]:
    """``n`` points of a scrambled Halton sequence in ``[0, 1)^dim`` (the same for a seed)."""
    if n < 1:
        return []
    if dim == 0:
        return [[] for _ in range(n)]
    from scipy.stats import qmc

    sampler = qmc.Halton(d=dim, scramble=True, seed=seed)
    return [[float(u) for u in row] for row in sampler.random(n)]


def halton_points(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` hyperparameter dicts from ``space`` (mapped with :meth:`SearchSpace.from_unit`;
    numeric values are clamped into their range against floating-point round-off)."""
    points = []
    for unit in halton_unit_points(len(space), n, seed):
        hp = space.from_unit(unit)
        for p in space.params:
            if p.kind != "choice":
                hp[p.name] = min(max(hp[p.name], p.low), p.high)
        points.append(hp)
    return points


def trial_seed(seed: int, study: int, trial_index: int, n_trials: int) -> int:
    """The training seed of one trial: distinct for every (study, trial) of a benchmark."""
    return seed * 100_000 + study * n_trials + trial_index


def external_tuning(
    space: SearchSpace, n_trials: int, n_studies: int, seed: int
) -> list[TrialPlan]:
    """``n_studies`` studies of ``n_trials`` Halton points each (one sequence, split in order).

    An empty space (a self-tuning algorithm) gets its defaults once per study."""
    _check_counts(n_trials, n_studies)
    if len(space) == 0:
        return [TrialPlan(s, 0, {}, trial_seed(seed, s, 0, n_trials)) for s in range(n_studies)]
    points = halton_points(space, n_trials * n_studies, seed)
    plans = []
    for k, hp in enumerate(points):
        study, index = divmod(k, n_trials)
        plans.append(TrialPlan(study, index, hp, trial_seed(seed, study, index, n_trials)))
    return plans


def external_tuning_holding(
    space: SearchSpace, held: Mapping[str, Any], n_trials: int, n_studies: int, seed: int
) -> list[TrialPlan]:
    """:func:`external_tuning` over the parameters not in ``held``; ``held`` joins every point."""
    if not held:
        return external_tuning(space, n_trials, n_studies, seed)
    unknown = sorted(set(held) - {p.name for p in space.params})
    if unknown:
        raise TrainlabError(f"cannot hold {unknown[0]!r} fixed: not in the search space")
    free = SearchSpace(tuple(p for p in space.params if p.name not in held))
    return [
        TrialPlan(t.study, t.trial_index, space.validate({**t.hyperparameters, **held}), t.seed)
        for t in external_tuning(free, n_trials, n_studies, seed)
    ]


def fixed_points_tuning(
    points: list[dict[str, Any]], n_trials: int, n_studies: int, seed: int
) -> list[TrialPlan]:
    """Trial ``i`` of each study runs ``points[i]`` (AlgoPerf's list-form search space), each
    (study, trial) with its own seed; more trials than points is an error."""
    _check_counts(n_trials, n_studies)
    if n_trials > len(points):
        raise TrainlabError(f"--trials {n_trials}: the search space lists only {len(points)} "
                            "point(s)")  # fmt: skip
    return [
        TrialPlan(s, i, dict(points[i]), trial_seed(seed, s, i, n_trials))
        for s in range(n_studies)
        for i in range(n_trials)
    ]


def self_tuning(space: SearchSpace, n_studies: int, seed: int) -> list[TrialPlan]:
    """The defaults, once per study, each study with its own training seed."""
    _check_counts(1, n_studies)
    defaults = space.validate({})
    return [TrialPlan(s, 0, defaults, trial_seed(seed, s, 0, 1)) for s in range(n_studies)]


def fixed_point(
    space: SearchSpace, hp: Mapping[str, Any], n_studies: int, seed: int
) -> list[TrialPlan]:
    """Given hyperparameters, once per study (target setting's reruns over seeds)."""
    _check_counts(1, n_studies)
    point = space.validate(hp)
    return [TrialPlan(s, 0, point, trial_seed(seed, s, 0, 1)) for s in range(n_studies)]


def plan_algorithm(
    algorithm: Algorithm,
    ruleset: str,
    n_trials: int,
    n_studies: int,
    seed: int,
    hyperparameters: Mapping[str, Any] | None = None,
) -> list[TrialPlan]:
    """The trials of one algorithm on one workload under ``ruleset``.

    ``hyperparameters`` are the point of the ``fixed`` ruleset; under ``external`` they are held
    fixed and the Halton points cover the rest of the space (target setting holds the batch size
    at the workload's hint, as AlgoPerf's target-setting runs did)."""
    points = getattr(algorithm, "fixed_points", None)
    if ruleset == "external" and points:
        if hyperparameters:
            raise TrainlabError(f"{algorithm.name}: a list of fixed points holds no other value")
        return fixed_points_tuning(points, n_trials, n_studies, seed)
    if ruleset == "external":
        return external_tuning_holding(algorithm.search_space, hyperparameters or {}, n_trials,
                                       n_studies, seed)  # fmt: skip
    if ruleset == "self":
        return self_tuning(algorithm.search_space, n_studies, seed)
    if ruleset == "fixed":
        return fixed_point(algorithm.search_space, hyperparameters or {}, n_studies, seed)
    raise TrainlabError(f"unknown ruleset {ruleset!r}; choose one of {', '.join(RULESETS)}")


def budget_multiplier(ruleset: str) -> float:
    return SELF_TUNING_BUDGET if ruleset == "self" else 1.0


def _check_counts(n_trials: int, n_studies: int) -> None:
    if n_trials < 1:
        raise TrainlabError(f"--trials must be >= 1, got {n_trials}")
    if n_studies < 1:
        raise TrainlabError(f"--studies must be >= 1, got {n_studies}")
