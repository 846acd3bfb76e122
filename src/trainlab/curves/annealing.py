"""Loss curves under any learning-rate schedule, from one or two runs: the scaling law with
learning-rate annealing of Tissue, Wang & Wang, "Scaling Law with Learning Rate Annealing"
(2024, arXiv:2408.11029).

The law: the validation loss after ``s`` updates is

    L(s) = L0 + A * S1(s) ** (-alpha) - C * S2(s)

where ``S1(s) = sum_{i=1..s} eta_i`` is the *forward area* (the area under the learning-rate
curve) and ``S2(s) = sum_{i=1..s} m_i`` the *annealing area* in its momentum form,
``m_i = lam * m_{i-1} + (eta_{i-1} - eta_i)``: every drop of the learning rate lowers the loss,
but not at once; its effect builds up with the decay factor ``lam`` (the paper uses values
between 0.99 and 0.999; :data:`DECAY` = 0.999 here). ``L0, A, alpha, C`` are fitted on the
curves of one or two runs (the paper fits a constant and a cosine run) and then predict the
whole curve of any other schedule of the same optimizer, model and data: cosine, WSD with any
cool-down length, REX, constant.

Choices where the paper leaves room (stated here so the numbers can be checked):

* ``eta_i`` is the learning rate of update ``i`` (``eta_0 = eta_1``, so ``m_1 = 0``), in the
  optimizer's own units (no normalisation: ``A`` and ``C`` absorb the scale).
* **Warm-up.** The rise of the learning rate during a warm-up would enter ``S2`` as negative
  annealing; the paper treats warm-up as outside the law. Here the increments before the
  schedule's first peak are not counted in ``S2`` (they do count in ``S1``); later increases (a
  re-warming schedule) are counted, with their sign.
* **Fit.** Robust least squares on the loss values (scipy's ``least_squares`` with the Huber
  loss, as the paper fits with a Huber loss), with ``L0, A, C >= 0`` and ``0 < alpha <= 3``,
  from a few starting values of ``alpha`` (the objective is not convex); the best fit wins.

A plain use, on curves you recorded yourself::

    law = AnnealingLaw.fit([Curve(steps, lrs, losses)])   # steps: 1-based, lrs: per update
    predicted = law.predict(other_lrs)                    # the loss after every update

``trainlab predict-schedule`` does this from the trials of a results store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from trainlab.errors import TrainlabError

#: the decay factor ``lam`` of the annealing momentum
DECAY = 0.999
#: Huber scale of the fit, in loss units (residuals above it count linearly)
HUBER_SCALE = 1e-2


def lr_areas(lrs: Sequence[float], decay: float = DECAY) -> tuple[np.ndarray, np.ndarray]:
    """``(S1, S2)`` after each update: arrays of the length of ``lrs`` (``lrs[i]``: the learning
    rate of update ``i + 1``). See the module docstring for the warm-up rule."""
    eta = np.asarray(lrs, dtype=np.float64)
    if eta.ndim != 1 or len(eta) == 0:
        raise TrainlabError("a learning-rate schedule needs at least one update")
    if not (0.0 <= decay < 1.0):
        raise TrainlabError(f"the annealing decay must be in [0, 1), got {decay}")
    drops = np.zeros_like(eta)
    drops[1:] = eta[:-1] - eta[1:]
    peak = int(np.argmax(eta))  # the first maximum: the warm-up ends there
    drops[: peak + 1] = 0.0
    momentum = np.empty_like(eta)
    m = 0.0
    for i, d in enumerate(drops):
        m = decay * m + d
        momentum[i] = m
    return np.cumsum(eta), np.cumsum(momentum)


@dataclass(frozen=True)
class Curve:
    """One run: the 1-based update counts ``steps`` at which ``losses`` were measured, and the
    learning rate ``lrs[i]`` of every update ``i + 1`` (at least up to the last step)."""

    steps: Sequence[int]
    lrs: Sequence[float]
    losses: Sequence[float]

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.losses) or not len(self.steps):
            raise TrainlabError("a curve needs as many losses as steps, and at least one")
        if min(self.steps) < 1 or max(self.steps) > len(self.lrs):
            raise TrainlabError(f"curve steps must lie in 1..{len(self.lrs)} (its schedule)")


@dataclass(frozen=True)
class AnnealingLaw:
    """Fitted ``L(s) = L0 + A * S1^(-alpha) - C * S2`` (see the module docstring)."""

    L0: float
    A: float
    alpha: float
    C: float
    decay: float = DECAY

    def loss(self, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
        return self.L0 + self.A * np.power(s1, -self.alpha) - self.C * s2

    def predict(self, lrs: Sequence[float]) -> np.ndarray:
        """The predicted loss after every update of the schedule ``lrs``."""
        s1, s2 = lr_areas(lrs, self.decay)
        return self.loss(s1, s2)

    @classmethod
    def fit(cls, curves: Sequence[Curve], decay: float = DECAY) -> AnnealingLaw:
        """Fit the four constants on every point of ``curves`` (one or more runs).

        Raises :class:`TrainlabError` with fewer than 4 points in all (four unknowns)."""
        s1, s2, y = [], [], []
        for curve in curves:
            a1, a2 = lr_areas(curve.lrs, decay)
            index = np.asarray(curve.steps, dtype=int) - 1
            s1.append(a1[index])
            s2.append(a2[index])
            y.append(np.asarray(curve.losses, dtype=np.float64))
        s1, s2, y = np.concatenate(s1), np.concatenate(s2), np.concatenate(y)
        keep = np.isfinite(y) & (s1 > 0)
        s1, s2, y = s1[keep], s2[keep], y[keep]
        if len(y) < 4:
            raise TrainlabError(f"the annealing law has 4 constants; the curves give {len(y)} "
                                "finite points")  # fmt: skip

        def residuals(theta: np.ndarray) -> np.ndarray:
            L0, A, alpha, C = theta
            return L0 + A * np.power(s1, -alpha) - C * s2 - y

        lower, upper = [0.0, 0.0, 1e-3, 0.0], [np.inf, np.inf, 3.0, np.inf]
        best = None
        for alpha0 in (0.3, 0.6, 1.0):
            start = np.array([max(y.min() * 0.9, 0.0), max(y.max() - y.min(), 1e-3), alpha0, 0.1])
            fit = least_squares(residuals, start, bounds=(lower, upper), loss="huber",
                                f_scale=HUBER_SCALE, max_nfev=5000)  # fmt: skip
            if best is None or fit.cost < best.cost:
                best = fit
        L0, A, alpha, C = (float(v) for v in best.x)
        return cls(L0, A, alpha, C, decay)
