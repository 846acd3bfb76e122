"""Predict the loss curve of any learning-rate schedule from stored trials of another one.

The annealing law (:mod:`trainlab.curves.annealing`) needs the learning rate of every update
of a fitted run. The store keeps the learning rate only at evaluations, so the whole schedule
is rebuilt from what the trial row holds (its algorithm ``OPT+SCHED``, hyperparameters and
``step_hint``) exactly as the recipe built it (``learning_rate`` x the schedule part's factor
over ``horizon`` x ``step_hint`` updates), and checked against the learning rates the trial
recorded: a trial whose recorded rates differ (a controller that sets its own rate, say) is
refused rather than fitted on a schedule it did not follow.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainlab.algorithms.recipe import SCHEDULES, Recipe
from trainlab.curves.annealing import DECAY, AnnealingLaw, Curve
from trainlab.errors import TrainlabError
from trainlab.registry import get_algorithm, load_all

#: relative mismatch between a rebuilt and a recorded learning rate that refuses a trial
LR_TOLERANCE = 1e-5


def recipe_of(name: str) -> Recipe:
    """The plain optimizer + schedule recipe an algorithm name resolves to; raises
    :class:`TrainlabError` when it has no learning-rate schedule of its own to rebuild (a
    controller, a wrapper) or is a method built on a recipe (a subclass that overrides a hook:
    sparse training, growth, averaging, AdaPT...): its curve depends on more than the
    learning rate, which is all the annealing law models."""
    algorithm = get_algorithm(name)
    if not isinstance(algorithm, Recipe) or "learning_rate" not in algorithm.search_space.names:
        raise TrainlabError(f"{name} is not an OPT+SCHED recipe with a learning_rate; its "
                            "schedule cannot be rebuilt")  # fmt: skip
    if type(algorithm) is not Recipe:
        raise TrainlabError(
            f"{name} is a method built on the {algorithm.optimizer_part.name} recipe "
            f"({type(algorithm).__name__}), not a plain OPT+SCHED recipe: its curve depends on "
            "more than the learning rate, so the annealing law cannot be fitted on it"
        )
    return algorithm


def schedule_lrs(recipe: Recipe, hp: dict[str, Any], step_hint: int, n_steps: int) -> np.ndarray:
    """The learning rate of each of ``n_steps`` updates (index ``i``: update ``i + 1``), as the
    recipe's ``LambdaLR`` sets it."""
    hp = {**recipe.search_space.defaults(), **recipe.fixed, **hp}
    total = max(1, round(hp["horizon"] * step_hint))
    factor = recipe.schedule_part.factor
    return np.array([hp["learning_rate"] * factor(i, total, hp) for i in range(n_steps)])


def curve_of_trial(store: Any, trial_id: int, metric: str) -> tuple[Curve, dict[str, Any]]:
    """The validation ``metric`` of a stored trial against its rebuilt schedule, and the row."""
    trial = store.trial(trial_id)
    records = store.evaluations(trial_id)
    points = [(r.step, r.metrics.get(metric, math.nan)) for r in records if r.step > 0]
    points = [(s, v) for s, v in points if math.isfinite(v)]
    if len(points) < 2:
        raise TrainlabError(f"trial {trial_id} has {len(points)} evaluations with a finite "
                            f"{metric!r}; the fit needs more")  # fmt: skip
    recipe = recipe_of(trial["algorithm"])
    hp = json.loads(trial["hyperparameters"]) if isinstance(trial["hyperparameters"], str) \
        else dict(trial["hyperparameters"])  # fmt: skip
    last = max(s for s, _ in points)
    lrs = schedule_lrs(recipe, hp, int(trial["step_hint"]), last + 1)
    for r in records:
        if r.lr is not None and 0 < r.step <= last and not math.isclose(
            r.lr, lrs[r.step], rel_tol=LR_TOLERANCE, abs_tol=1e-12
        ):
            raise TrainlabError(f"trial {trial_id} recorded lr {r.lr:.4g} at step {r.step}, its "
                                f"rebuilt schedule says {lrs[r.step]:.4g}; it cannot be fitted")
    steps, values = zip(*points, strict=True)
    return Curve(list(steps), lrs, list(values)), {**trial, "hyperparameters": hp}


def parse_schedule(text: str) -> tuple[str, dict[str, str]]:
    """``NAME[:PARAM=VALUE...]`` (``wsd:decay_fraction=0.1``) -> the schedule and its own
    hyperparameters; :class:`TrainlabError` for an unknown schedule or parameter."""
    load_all()  # schedule parts register themselves on import
    name, *pairs = text.split(":")
    if name not in SCHEDULES:
        raise TrainlabError(f"unknown schedule {name!r}; choose from "
                            f"{', '.join(sorted(SCHEDULES))}")  # fmt: skip
    own = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in SCHEDULES[name].space.names or not value:
            raise TrainlabError(f"{text!r}: {name} takes "
                                f"{', '.join(SCHEDULES[name].space.names) or 'no parameters'} "
                                "as PARAM=VALUE")  # fmt: skip
        own[key] = value
    return name, own


@dataclass
class SchedulePrediction:
    """What ``trainlab predict-schedule`` prints and plots."""

    law: AnnealingLaw
    metric: str
    n_steps: int
    #: schedule name -> predicted metric after every update
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    #: the fitted trials' curves (steps, values), for the plot
    fitted: dict[int, tuple[list[int], list[float]]] = field(default_factory=dict)

    @property
    def finals(self) -> dict[str, float]:
        return {name: float(curve[-1]) for name, curve in self.curves.items()}

    @property
    def best(self) -> str:
        return min(self.finals, key=self.finals.get)


def predict_schedules(
    store: Any,
    trial_ids: list[int],
    optimizer: str,
    schedules: list[str],
    *,
    metric: str = "loss",
    n_steps: int | None = None,
    decay: float = DECAY,
) -> SchedulePrediction:
    """Fit the annealing law on ``trial_ids`` (runs of ``optimizer`` with any schedules) and
    predict ``metric`` under each of ``schedules`` with the first trial's hyperparameters (a
    schedule's own hyperparameters at their defaults), for ``n_steps`` updates (default: the
    first trial's budget). Raises :class:`TrainlabError` for an unknown schedule, a trial of
    another optimizer or workload, or a trial whose schedule cannot be rebuilt."""
    parsed = [parse_schedule(text) for text in schedules]
    curves, rows = [], []
    for trial_id in trial_ids:
        curve, row = curve_of_trial(store, trial_id, metric)
        part = recipe_of(row["algorithm"]).optimizer_part.name
        if part != recipe_of(optimizer).optimizer_part.name:
            raise TrainlabError(f"trial {trial_id} trained with {part}, not {optimizer}: the law "
                                "holds for one optimizer, model and data")  # fmt: skip
        if rows and (row["workload"], row["variant"]) != (rows[0]["workload"], rows[0]["variant"]):
            raise TrainlabError(f"trial {trial_id} is of another workload than trial "
                                f"{trial_ids[0]}")  # fmt: skip
        curves.append(curve)
        rows.append(row)
    law = AnnealingLaw.fit(curves, decay)
    first = rows[0]
    steps = n_steps or int(first["max_steps"] or max(curves[0].steps))
    base = recipe_of(optimizer).optimizer_part.name
    prediction = SchedulePrediction(law, metric, steps)
    for text, (name, own) in zip(schedules, parsed, strict=True):
        recipe = recipe_of(f"{base}+{name}")
        hp = {k: v for k, v in first["hyperparameters"].items() if k in recipe.search_space.names}
        hp.update({k: recipe.search_space[k].coerce(v) for k, v in own.items()})
        prediction.curves[text] = law.predict(
            schedule_lrs(recipe, hp, int(first["step_hint"]), steps))
    for trial_id, curve in zip(trial_ids, curves, strict=True):
        prediction.fitted[trial_id] = (list(curve.steps), list(curve.losses))
    return prediction
