"""Learning-curve extrapolation: where will a partly trained run end up?

Two predictors of a validation metric at the end of the budget, with uncertainty:

* ``lc-parametric``: the eleven-family ensemble of Domhan et al. (IJCAI 2015), fitted by least
  squares with a Laplace approximation of its posterior (:mod:`trainlab.curves.parametric`);
* ``lc-pfn``: LC-PFN (Adriaensen et al., NeurIPS 2023), a small transformer trained on the
  paper's prior that outputs the posterior predictive in one forward pass
  (:mod:`trainlab.curves.lcpfn`).

Also here, :mod:`trainlab.curves.annealing`: the scaling law with learning-rate annealing
(Tissue et al., 2024), which predicts the loss curve of any schedule from one or two runs
(``trainlab predict-schedule``).

Both predictors see the metric mapped to an increasing curve in [0, 1]
(:mod:`trainlab.curves.metric_map` says how). This package sits beside
:mod:`trainlab.schedules`: numpy, scipy and (for ``lc-pfn``) torch only, no benchmark.
Use in a plain loop::

    from trainlab.curves import predict_final
    p = predict_final("lc-parametric", fractions, values, target=0.9, metric="accuracy",
                      higher_is_better=True)
    # p.mean, p.lower, p.upper (90 % interval), p.p_target = P(metric meets 0.9 at the end)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainlab.curves.metric_map import (
    LearningCurveError,
    MetricMap,
    Prediction,
    fraction_to_x,
    summarise,
)

#: the predictors, by the name ``--early-stop`` and ``trainlab extrapolate`` take
METHODS = ("lc-parametric", "lc-pfn")

__all__ = ["METHODS", "LearningCurveError", "MetricMap", "Prediction", "predict_final"]


def predict_final(
    method: str,
    fractions: Sequence[float],
    values: Sequence[float],
    *,
    target: float,
    metric: str,
    higher_is_better: bool,
    seed: int = 0,
) -> Prediction:
    """Predict ``metric`` at the end of the budget from its values so far.

    ``fractions``: where each value was measured, as fractions of the budget in (0, 1],
    increasing; ``values``: the metric there (same length, at least one). Once the last
    fraction is 1 the end is observed: the prediction is that value, P(target) 0 or 1. Raises
    :class:`LearningCurveError` (a :class:`~trainlab.errors.TrainlabError`) for an unknown
    method, mismatched lengths or a metric outside the range its map needs."""
    if method not in METHODS:
        raise LearningCurveError(
            f"unknown learning-curve method {method!r}; choose one of {', '.join(METHODS)}"
        )
    fractions = np.asarray(fractions, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if fractions.shape != values.shape or fractions.ndim != 1 or len(values) == 0:
        raise LearningCurveError("a curve needs as many fractions as values, at least one")
    mapping = MetricMap.for_curve(metric, higher_is_better, values)  # checks the values
    if fractions[-1] >= 1.0:  # the budget is spent: the end is observed, nothing to predict
        last = float(values[-1])
        met = last >= target if higher_is_better else last <= target
        return Prediction(method, 1.0, len(values), last, last, last, float(target),
                          1.0 if met else 0.0)  # fmt: skip
    x, y = fraction_to_x(fractions), mapping.to_unit(values)
    if method == "lc-parametric":
        from trainlab.curves.parametric import parametric_posterior

        posterior = parametric_posterior(x, y, seed=seed)
    else:
        from trainlab.curves.lcpfn import PFNPosterior, pfn_posterior

        posterior = PFNPosterior(pfn_posterior(x, y))
    return summarise(method, posterior, mapping, float(fractions[-1]), len(values), target)
