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
validation loss of the workload's model at initialisation (seed 0), measured here.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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
