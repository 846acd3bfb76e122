"""Learning-curve early stopping: end a trial whose curve will not reach the target.

``trainlab bench --early-stop lc-parametric|lc-pfn [--early-stop-threshold P]`` (issue 13,
following the LC-PFN paper's use of the predictor, Adriaensen et al. 2023, Section 5): at each
evaluation of a trial that has not met its target yet, the predictor
(:mod:`trainlab.curves`) gives ``P(target met at the end of the budget)`` from the validation
curve so far; when it is below ``P`` (default 0.05) the trial ends with status
``stopped-early``, the prediction that stopped it stored in the trial's ``stop_reason``, and it
scores as a miss. Open choices, fixed here:

* the rule may fire only once the trial has at least :data:`MIN_EVALS` (5) evaluations *and*
  has spent :data:`MIN_FRACTION` (10 %) of its budget: a predictor given 1-4 points, or the
  first tenth of a curve, extrapolates too far to be trusted with ending a trial;
* positions are fractions of the budget: steps/max_steps in step mode, timed seconds/
  max_runtime in time mode;
* the check is the benchmark's decision, not the algorithm's, so it is untimed (like the
  evaluation it follows); it costs ~0.1-0.3 s (lc-parametric) or ~5 ms (lc-pfn) per check;
* the rule is applied only while the target is unmet (a trial that met it has ended already,
  or, with ``full_curve``, no longer needs the prediction).

The rule is stored with each planned trial (``trials.search`` JSON, key ``early_stop``), so a
``worker`` or a Ray task applies the rule its benchmark was planned with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainlab.errors import TrainlabError

#: ``--early-stop`` choices
EARLY_STOP_METHODS = ("none", "lc-parametric", "lc-pfn")
DEFAULT_THRESHOLD = 0.05
#: the rule fires only after this many evaluations...
MIN_EVALS = 5
#: ... and this fraction of the budget
MIN_FRACTION = 0.10


def check_early_stop(method: str, threshold: float) -> None:
    """Raise :class:`TrainlabError` for an unknown method or a threshold outside (0, 1)."""
    if method not in EARLY_STOP_METHODS:
        raise TrainlabError(
            f"unknown --early-stop {method!r}; choose one of {', '.join(EARLY_STOP_METHODS)}"
        )
    if not 0.0 < threshold < 1.0:
        raise TrainlabError(f"--early-stop-threshold must be in (0, 1), got {threshold}")


@dataclass(frozen=True)
class CurveStopRule:
    """The rule as the runner calls it: ``rule(spec, evals)`` -> the stop reason (a JSON-able
    dict: the prediction, the threshold, the step) or ``None`` to go on."""

    method: str
    threshold: float = DEFAULT_THRESHOLD
    min_evals: int = MIN_EVALS
    min_fraction: float = MIN_FRACTION

    def __post_init__(self) -> None:
        check_early_stop(self.method, self.threshold)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "threshold": self.threshold}

    def __call__(self, spec: Any, evals: Sequence[Any]) -> dict[str, Any] | None:
        from trainlab.curves import LearningCurveError, predict_final

        fractions = [budget_fraction(spec, e) for e in evals]
        values = [e.metrics.get(spec.target.metric, float("nan")) for e in evals]
        if len(evals) < self.min_evals or fractions[-1] < self.min_fraction:
            return None
        try:
            p = predict_final(self.method, fractions, values, target=spec.target.value,
                              metric=spec.target.metric,
                              higher_is_better=spec.target.higher_is_better)  # fmt: skip
        except LearningCurveError:  # a curve the predictor cannot take (a NaN, say): go on
            return None
        if p.p_target >= self.threshold:
            return None
        return {**p.to_json(), "threshold": self.threshold, "step": evals[-1].step}


def budget_fraction(spec: Any, record: Any) -> float:
    """Where an evaluation lies in the trial's budget, in [0, 1]."""
    if spec.step_mode:
        return min(1.0, record.step / spec.max_steps)
    return min(1.0, record.timed_seconds / spec.max_runtime)


def rule_from_row(row: dict[str, Any]) -> CurveStopRule | None:
    """The early-stopping rule a planned trial row carries, if any."""
    stored = (row.get("search") or {}).get("early_stop")
    if not stored or stored.get("method", "none") == "none":
        return None
    return CurveStopRule(stored["method"], float(stored["threshold"]))


def describe_reason(reason: dict[str, Any]) -> str:
    """One line for ``trainlab show``: what the predictor said when it stopped the trial."""
    return (
        f"stopped early at step {reason.get('step')} ({reason.get('fraction', 0):.0%} of the "
        f"budget) by {reason.get('method')}: P(target {reason.get('target'):g}) = "
        f"{reason.get('p_target'):.3f} < {reason.get('threshold')}; predicted final "
        f"{reason.get('mean'):.4g} [{reason.get('lower'):.4g}, {reason.get('upper'):.4g}]"
    )
