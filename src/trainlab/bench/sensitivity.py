"""Learning-rate sensitivity: how much an optimizer loses when its learning rate is off.

Wortsman et al., "Small-scale proxies for large-scale Transformer training instabilities"
(2023), define it over a sweep of learning rates ``eta`` spanning orders of magnitude
``[a, b]`` (log-spaced):

    LR sensitivity = E_eta [ min(l(eta), l0) - l* ],    l* = min_eta l(eta)

where ``l(eta)`` is the final validation loss of a run at ``eta``, ``l0`` the loss of the model
at initialisation (so a run that diverges, or ends worse than where it started, counts as
``l0``: it gained nothing) and the expectation is the mean over the swept values. Zero means
every learning rate of the range is as good as the best; larger means the optimizer needs its
learning rate tuned.

Choices: ``l(eta)`` of a learning rate is the mean over its seeds of the final validation loss
(the last evaluation of a full-length run; a diverged or failed run counts ``l0``); ``l0`` is the
validation loss of the workload's model at initialisation (seed 0), measured here
(:func:`initial_loss`; ``mse`` for a regression workload, which reports no ``loss``).

The sweep is a benchmark (``trainlab sensitivity``; ``BenchmarkConfig.sensitivity_lrs``): trial
``i`` of study ``s`` runs the i-th learning rate with seed ``s`` (the same seed at every learning
rate, so the runs of a seed are paired), every other hyperparameter at the algorithm's default
(:func:`sweep_trials`; a learning rate may leave the tuning range), to the full step budget
(``full_curve``). :func:`read_sweeps` reads one back: per algorithm the :class:`Sensitivity` and
a 95 % percentile bootstrap interval over seeds (:func:`bootstrap_interval`).

In a plain loop, given the final validation losses of a sweep::

    losses = [train(lr) for lr in lrs]            # nan for a run that diverged
    lr_sensitivity(losses, initial_loss=l0)       # 0: every lr as good as the best
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trainlab.errors import TrainlabError


@dataclass(frozen=True)
class Sensitivity:
    """One algorithm's sweep: the swept learning rates, the loss at each (capped at ``l0``,
    mean over seeds), the initial loss, the best, and the sensitivity."""

    algorithm: str
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    initial_loss: float
    seeds: int

    @property
    def best_loss(self) -> float:
        return min(self.losses)

    @property
    def best_lr(self) -> float:
        return self.lrs[self.losses.index(self.best_loss)]

    @property
    def value(self) -> float:
        return sum(self.losses) / len(self.losses) - self.best_loss


def lr_sensitivity(losses: Sequence[float], initial_loss: float) -> float:
    """Wortsman et al.'s LR sensitivity of the final losses of one sweep (see the module
    docstring); a non-finite loss (divergence) counts as ``initial_loss``.

    >>> lr_sensitivity([2.0, 1.0, 1.5, float("nan")], initial_loss=2.5)
    0.75
    """
    if not losses:
        raise TrainlabError("an LR sweep needs at least one learning rate")
    capped = [min(v, initial_loss) if math.isfinite(v) else initial_loss for v in losses]
    return sum(capped) / len(capped) - min(capped)


def sweep_sensitivity(
    algorithm: str, runs: Iterable[tuple[float, float]], initial_loss: float
) -> Sensitivity:
    """The sensitivity of ``runs``, pairs ``(learning_rate, final loss)`` (several seeds of a
    learning rate are averaged after capping each at ``initial_loss``)."""
    by_lr: Mapping[float, list[float]] = defaultdict(list)
    for lr, loss in runs:
        by_lr[lr].append(min(loss, initial_loss) if math.isfinite(loss) else initial_loss)
    if not by_lr:
        raise TrainlabError(f"{algorithm}: no finished runs in the sweep")
    lrs = tuple(sorted(by_lr))
    losses = tuple(sum(by_lr[lr]) / len(by_lr[lr]) for lr in lrs)
    seeds = min(len(v) for v in by_lr.values())
    return Sensitivity(algorithm, lrs, losses, initial_loss, seeds)


# ------------------------------------------------------------------------------------------
# the sweep as a benchmark: planning, and reading it back from the store

#: the hyperparameter names taken for "the learning rate", in order of preference
LR_NAMES = ("learning_rate", "lr")
#: the fewest learning rates of a sweep (the metric compares each with the best)
MIN_LRS = 3
#: the validation metrics taken for "the loss", in order (regression workloads report ``mse``,
#: which is their training loss)
LOSS_METRICS = ("loss", "mse")


def lr_name(algorithm: Any) -> str:
    """The name of ``algorithm``'s learning-rate hyperparameter (:data:`LR_NAMES`); an algorithm
    without one (a self-tuning or learning-rate-free one) is a :class:`TrainlabError`."""
    names = algorithm.search_space.names
    for name in LR_NAMES:
        if name in names:
            return name
    what = f"it has {', '.join(names)}" if names else "it is self-tuning"
    raise TrainlabError(f"{algorithm.name} has no learning-rate hyperparameter to sweep "
                        f"(learning_rate or lr): {what}")  # fmt: skip


def check_lrs(lrs: Sequence[float]) -> None:
    """At least :data:`MIN_LRS` distinct, finite, positive learning rates."""
    bad = [v for v in lrs if not (math.isfinite(v) and v > 0)]
    if bad:
        raise TrainlabError(f"--lrs: a learning rate must be a finite number > 0, got {bad[0]:g}")
    if len(set(lrs)) != len(lrs):
        raise TrainlabError("--lrs: a learning rate is listed twice")
    if len(lrs) < MIN_LRS:
        raise TrainlabError(f"--lrs: a sweep needs at least {MIN_LRS} learning rates, got "
                            f"{len(lrs)}")  # fmt: skip


def sweep_trials(algorithm: Any, lrs: Sequence[float], n_seeds: int, seed: int) -> list:
    """The planned trials of one algorithm's sweep: study ``s`` is seed ``s``, trial ``i`` runs
    ``lrs[i]`` with every other hyperparameter at the algorithm's default (a learning rate may
    leave the tuning range: the rows say so, see ``search["lr_sweep"]``). Every learning rate of
    a study trains with the same seed (same initialisation, same batches), so the learning rates
    are compared on paired runs."""
    import warnings

    from trainlab.bench.tuning import TrialPlan, trial_seed
    from trainlab.errors import OutOfRangeWarning

    name = lr_name(algorithm)
    check_lrs(lrs)
    points = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfRangeWarning)
        for lr in lrs:
            points.append(algorithm.search_space.validate({name: lr}, allow_out_of_range=True))
    return [
        TrialPlan(s, i, dict(hp), trial_seed(seed, s, 0, 1))
        for s in range(n_seeds)
        for i, hp in enumerate(points)
    ]


def is_sweep(benchmark: Mapping[str, Any]) -> bool:
    """Whether a stored benchmark (a ``Store.benchmark`` record) is an LR-sensitivity sweep."""
    return bool((benchmark.get("config") or {}).get("options", {}).get("sensitivity_lrs"))


def initial_loss(workload: Any, metric: str | None = None) -> tuple[str, float]:
    """``(metric, l0)``: the validation loss of ``workload``'s model at initialisation (seed 0),
    measured now; the metric is the first of :data:`LOSS_METRICS` the workload reports."""
    import torch

    with torch.no_grad():
        metrics = workload.evaluate(workload.init_model(0), "valid")
    metric = metric or next((m for m in LOSS_METRICS if m in metrics), None)
    if metric is None or metric not in metrics:
        known = ", ".join(LOSS_METRICS)
        raise TrainlabError(f"{workload.full_name} reports no validation loss ({known}); it "
                            f"has {', '.join(metrics)}")  # fmt: skip
    return metric, float(metrics[metric])


#: bootstrap replicates of the sensitivity's interval
N_BOOT = 2000
#: trial statuses whose last evaluation is the run's final loss (full-length runs)
FINISHED_RUNS = ("reached", "missed")
#: trial statuses that count as ``l0`` (the run gained nothing)
LOST_RUNS = ("diverged", "failed")


@dataclass
class Sweep:
    """A stored sweep on one workload: every algorithm's :class:`Sensitivity`, its interval,
    and the per-seed capped final losses behind it."""

    benchmark_id: int
    workload: str
    metric: str
    initial_loss: float
    lrs: tuple[float, ...]
    sensitivities: dict[str, Sensitivity]
    #: 95 % percentile bootstrap interval over seeds (``None``: one seed, or a seed unfinished)
    intervals: dict[str, tuple[float, float] | None]
    #: algorithm -> lr -> capped final loss of each finished seed
    runs: dict[str, dict[float, list[float]]]
    finished: int
    total: int
    n_boot: int
    #: trials that failed with an error (not a divergence): they count ``l0`` too
    failed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark_id, "workload": self.workload, "metric": self.metric,
            "initial_loss": self.initial_loss, "lrs": list(self.lrs),
            "finished": self.finished, "trials": self.total, "failed": self.failed,
            "interval": f"95 % percentile bootstrap over seeds ({self.n_boot} replicates)",
            "algorithms": {
                a: {"sensitivity": s.value, "interval": self.intervals.get(a),
                    "best_lr": s.best_lr, "best_loss": s.best_loss, "seeds": s.seeds,
                    "losses": dict(zip(map(str, s.lrs), s.losses, strict=True))}
                for a, s in self.sensitivities.items()
            },
        }  # fmt: skip


def final_loss(trial: Mapping[str, Any], last: Any, metric: str) -> float | None:
    """A finished trial's final validation loss: its last evaluation's (a full-length run);
    ``nan`` (counted as ``l0``) when it diverged or failed; ``None`` when unfinished."""
    if trial["status"] in LOST_RUNS:
        return math.nan
    if trial["status"] not in FINISHED_RUNS:
        return None
    if last is None or metric not in last.metrics:
        return math.nan
    return float(last.metrics[metric])


def bootstrap_interval(
    table: Sequence[Sequence[float]], initial_loss: float, n_boot: int = N_BOOT, seed: int = 0
) -> tuple[float, float] | None:
    """95 % percentile interval of the sensitivity when the seeds (rows of ``table``: one
    capped final loss per learning rate) are resampled with replacement, the same draw at
    every learning rate (the runs of a seed are paired). ``None`` for fewer than two seeds."""
    import numpy as np

    data = np.minimum(np.nan_to_num(np.asarray(table, float), nan=initial_loss,
                                    posinf=initial_loss), initial_loss)  # fmt: skip
    if data.ndim != 2 or len(data) < 2 or n_boot < 1:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(data), size=(n_boot, len(data)))
    curves = data[draws].mean(axis=1)  # (n_boot, n_lrs)
    values = curves.mean(axis=1) - curves.min(axis=1)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def read_sweeps(store: Any, benchmark_id: int, n_boot: int = N_BOOT,
                device: str = "cpu") -> list[Sweep]:  # fmt: skip
    """The sweeps of a stored sweep benchmark, one per workload (``l0`` measured now)."""
    from trainlab.registry import get_workload

    bench = store.benchmark(benchmark_id)
    if not is_sweep(bench):
        raise TrainlabError(f"benchmark {benchmark_id} is not a learning-rate sweep")
    lrs = tuple(float(v) for v in bench["config"]["options"]["sensitivity_lrs"])
    trials = store.trials(benchmark_id=benchmark_id)
    last = store.latest_evaluations(t["id"] for t in trials)
    out = []
    for name in dict.fromkeys((t["workload"], t["variant"] or "") for t in trials):
        rows = [t for t in trials if (t["workload"], t["variant"] or "") == name]
        workload = get_workload(name[0], name[1] or None, **({} if device == "cpu" else
                                                             {"device": device}))  # fmt: skip
        metric, l0 = initial_loss(workload)
        runs: dict[str, dict[float, list[float]]] = {}
        seeds: dict[str, dict[int, dict[float, float]]] = {}
        for t in rows:
            loss = final_loss(t, last.get(t["id"]), metric)
            if loss is None:
                continue
            lr = lrs[int(t["trial_index"])]
            capped = min(loss, l0) if math.isfinite(loss) else l0
            runs.setdefault(t["algorithm"], {}).setdefault(lr, []).append(capped)
            seeds.setdefault(t["algorithm"], {}).setdefault(int(t["study"]), {})[lr] = capped
        sens = {a: sweep_sensitivity(a, [(lr, v) for lr, vs in r.items() for v in vs], l0)
                for a, r in runs.items()}  # fmt: skip
        intervals = {}
        for a, by_seed in seeds.items():
            complete = [[s[lr] for lr in lrs] for s in by_seed.values() if len(s) == len(lrs)]
            whole = len(complete) == len(by_seed)  # no seed of it left unfinished
            intervals[a] = bootstrap_interval(complete, l0, n_boot) if whole else None
        finished = sum(len(v) for r in runs.values() for v in r.values())
        full_name = name[0] + (f":{name[1]}" if name[1] else "")
        failed = sum(t["status"] == "failed" for t in rows)
        out.append(Sweep(int(bench["id"]), full_name, metric, l0, lrs, sens, intervals, runs,
                         finished, len(rows), n_boot, failed))  # fmt: skip
    return out
