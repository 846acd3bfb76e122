"""What both learning-curve predictors share: the map of a metric to an increasing curve in
[0, 1], the predictive distribution at the end of the budget, and the prediction's record.

Both predictors (Domhan et al.'s families and LC-PFN) model *increasing* curves with values in
[0, 1] (accuracy-like). A trial's metric is mapped so, monotonically, before either sees it:

* higher is better (accuracy): ``y = m`` as is; values outside [0, 1] are refused;
* lower is better and bounded by 1 (a name containing ``error``, e.g. ``error_rate``):
  ``y = 1 - e``;
* any other lower-is-better metric (a loss: bits/char, MSE, cross-entropy), assumed >= 0:
  ``y = 1 - m / m0``, with ``m0`` the trial's first evaluated value, so the first evaluation
  maps to 0 and a loss of 0 to 1; values above ``m0`` clip to 0.

The target maps the same way, and ``P(metric meets the target at the budget's end) =
P(y_T >= y_target)`` because the map is monotone (decreasing for lower-is-better metrics).
Positions on the curve are fractions of the budget (steps/max_steps in step mode,
timed seconds/max_runtime in time mode), mapped to ``x = 1 + 99 * fraction`` so the budget's
end is ``x = 100``, the LC-PFN's curve length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from trainlab.errors import TrainlabError

#: the position of the budget's end on the curve
X_END = 100.0
#: the central interval the predictions report
INTERVAL = 0.90


def fraction_to_x(fraction: np.ndarray | float) -> np.ndarray:
    """Budget fraction(s) in [0, 1] -> curve position(s) ``x`` in [1, 100]."""
    return 1.0 + (X_END - 1.0) * np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)


class LearningCurveError(TrainlabError):
    """A curve that the predictors cannot take (no points, a metric outside its range)."""


@dataclass(frozen=True)
class MetricMap:
    """The monotone map between a metric and the predictors' increasing [0, 1] scale."""

    higher_is_better: bool
    #: 1 for accuracy and error rates; ``m0`` for a loss
    scale: float = 1.0

    @classmethod
    def for_curve(cls, metric: str, higher_is_better: bool, values: np.ndarray) -> MetricMap:
        """The map for a curve of ``metric`` whose values so far are ``values`` (first first).

        Raises :class:`LearningCurveError` for a metric outside the range its map needs."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0 or not np.isfinite(values).all():
            raise LearningCurveError(f"curve of {metric}: needs at least one finite value")
        if higher_is_better:
            if values.min() < 0.0 or values.max() > 1.0:
                raise LearningCurveError(
                    f"curve of {metric}: a higher-is-better metric must lie in [0, 1]"
                )
            return cls(True)
        if "error" in metric:
            return cls(False, 1.0)
        if not values[0] > 0.0:
            raise LearningCurveError(f"curve of {metric}: a loss must start above 0")
        return cls(False, float(values[0]))

    def to_unit(self, m: np.ndarray | float) -> np.ndarray:
        m = np.asarray(m, dtype=np.float64)
        y = m if self.higher_is_better else 1.0 - m / self.scale
        return np.clip(y, 0.0, 1.0)

    def from_unit(self, y: np.ndarray | float) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return y if self.higher_is_better else self.scale * (1.0 - y)


class UnitPosterior(Protocol):
    """A predictive distribution of ``y_T`` (the mapped metric at the budget's end)."""

    def mean(self) -> float: ...

    def quantile(self, q: float) -> float: ...

    def sf(self, v: float) -> float:
        """``P(y_T >= v)``."""
        ...


class SamplePosterior:
    """A predictive distribution given by samples of ``y_T`` (the parametric ensemble's)."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = np.sort(np.asarray(samples, dtype=np.float64))

    def mean(self) -> float:
        return float(self.samples.mean())

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.samples, q))

    def sf(self, v: float) -> float:
        i = np.searchsorted(self.samples, v, side="left")
        return float(1.0 - i / self.samples.size)


@dataclass(frozen=True)
class Prediction:
    """A predictor's view of one curve, in the metric's own units.

    ``mean`` and the 90 % interval ``[lower, upper]`` of the metric at the budget's end;
    ``p_target``: the probability that it meets ``target`` there. ``fraction``: how much of the
    budget the ``n_observed`` evaluations cover."""

    method: str
    fraction: float
    n_observed: int
    mean: float
    lower: float
    upper: float
    target: float
    p_target: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    method: str,
    posterior: UnitPosterior,
    mapping: MetricMap,
    fraction: float,
    n_observed: int,
    target: float,
) -> Prediction:
    """A :class:`Prediction` in metric units from a posterior of ``y_T``."""
    tail = (1.0 - INTERVAL) / 2
    ends = sorted(float(mapping.from_unit(posterior.quantile(q))) for q in (tail, 1 - tail))
    y_target = float(mapping.to_unit(target))
    return Prediction(
        method=method,
        fraction=float(fraction),
        n_observed=int(n_observed),
        mean=float(mapping.from_unit(posterior.mean())),
        lower=ends[0],
        upper=ends[1],
        target=float(target),
        p_target=min(1.0, max(0.0, posterior.sf(y_target))),
    )
