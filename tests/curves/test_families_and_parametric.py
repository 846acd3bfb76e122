"""The eleven curve families against hand-computed values, the metric map, and the parametric
ensemble (Domhan et al. 2015) recovering curves drawn from its own families."""

import math

import numpy as np
import pytest

from trainlab.curves import METHODS, LearningCurveError, MetricMap, predict_final
from trainlab.curves.families import FAMILIES
from trainlab.curves.metric_map import fraction_to_x
from trainlab.curves.parametric import fit_family, parametric_posterior

E = math.e
# (family, x, params, value by hand)
HAND = [
    ("vap", E, (0.0, 0.0, 1.0), E),  # exp(0 + 0 + 1 * log e)
    ("vap", 1.0, (0.1, -0.2, 5.0), math.exp(-0.1)),  # log 1 = 0
    ("pow3", 4.0, (1.0, 0.5, 0.5), 0.75),  # 1 - 0.5 / sqrt(4)
    ("loglog_linear", E, (1.0, 1.0), math.log(2.0)),  # log(1 * log e + 1)
    ("hill3", 2.0, (0.8, 2.0, 2.0), 0.4),  # 0.8 * 4 / (4 + 4)
    ("log_power", E, (0.9, 1.0, -1.0), 0.45),  # 0.9 / (1 + (e / e)^-1)
    ("pow4", 3.0, (1.0, 2.0, 2.0, 1.0), 0.875),  # 1 - (2 * 3 + 2)^-1
    ("mmf", 2.0, (1.0, 0.2, 0.5, 3.0), 0.6),  # 1 - 0.8 / (1 + 1^3)
    ("exp4", 2.0, (0.9, 0.5, 0.0, 1.0), 0.9 - math.exp(-1.0)),  # 0.9 - exp(-0.5 * 2 + 0)
    ("janoschek", 2.0, (1.0, 0.0, math.log(2) / 4, 2.0), 0.5),  # 1 - exp(-ln2/4 * 4)
    ("weibull", 2.0, (1.0, 0.5, 0.5, 3.0), 1.0 - 0.5 * math.exp(-1.0)),  # (0.5 * 2)^3 = 1
    ("ilog2", E - 1.0, (1.0, 0.5), 0.5),  # 1 - 0.5 / log(e)
]


def test_all_eleven_families_of_the_paper():
    assert len(FAMILIES) == 11
    assert {name for name, *_ in HAND} == set(FAMILIES)


@pytest.mark.parametrize("name, x, params, value", HAND, ids=[h[0] for h in HAND])
def test_family_against_hand_value(name, x, params, value):
    assert FAMILIES[name].f(np.array([x]), *params)[0] == pytest.approx(value, rel=1e-12)
    assert FAMILIES[name].n_params == len(params)


def test_metric_map_accuracy_error_rate_and_loss():
    acc = MetricMap.for_curve("accuracy", True, np.array([0.2, 0.5]))
    assert acc.to_unit(0.7) == pytest.approx(0.7)
    err = MetricMap.for_curve("error_rate", False, np.array([0.4, 0.2]))
    assert err.to_unit(0.1) == pytest.approx(0.9) and err.from_unit(0.9) == pytest.approx(0.1)
    loss = MetricMap.for_curve("bits_per_char", False, np.array([4.0, 2.0]))
    assert loss.to_unit(np.array([4.0, 1.0, 0.0, 5.0])) == pytest.approx([0.0, 0.75, 1.0, 0.0])
    assert loss.from_unit(0.75) == pytest.approx(1.0)
    with pytest.raises(LearningCurveError, match="must lie in"):
        MetricMap.for_curve("accuracy", True, np.array([0.5, 1.2]))
    with pytest.raises(LearningCurveError, match="start above 0"):
        MetricMap.for_curve("mse", False, np.array([0.0, 0.0]))


def test_budget_fraction_maps_to_the_curve_length():
    assert fraction_to_x(np.array([0.0, 0.5, 1.0])) == pytest.approx([1.0, 50.5, 100.0])


def test_fit_recovers_the_parameters_of_its_own_family():
    x = fraction_to_x(np.linspace(0.02, 0.5, 25))
    y = FAMILIES["pow3"].f(x, 0.9, 0.6, 0.5)
    fit = fit_family(FAMILIES["pow3"], x, y)
    assert fit.params == pytest.approx([0.9, 0.6, 0.5], abs=1e-4)
    assert fit_family(FAMILIES["pow4"], x[:4], y[:4]) is None  # 4 points, 4 parameters


@pytest.mark.parametrize("name, params", [("pow3", (0.9, 0.6, 0.5)),
                                          ("janoschek", (0.85, 0.1, 0.05, 0.8)),
                                          ("mmf", (0.9, 0.2, 0.05, 1.5))])  # fmt: skip
def test_ensemble_recovers_the_final_value_of_a_curve_from_one_family(name, params):
    fractions = np.linspace(0.02, 0.5, 25)  # half the budget seen
    truth = float(FAMILIES[name].f(np.array([100.0]), *params)[0])
    values = FAMILIES[name].f(fraction_to_x(fractions), *params)
    p = predict_final("lc-parametric", fractions, values, target=truth - 0.05,
                      metric="accuracy", higher_is_better=True)  # fmt: skip
    assert p.mean == pytest.approx(truth, abs=0.01)
    assert p.lower - 0.005 <= truth <= p.upper + 0.005
    assert p.p_target > 0.9  # a target 0.05 below the truth: near certain
    assert p.fraction == pytest.approx(0.5) and p.n_observed == 25


def test_loss_curve_is_predicted_in_its_own_units():
    fractions = np.linspace(0.02, 0.5, 25)
    acc = FAMILIES["pow3"].f(fraction_to_x(fractions), 0.9, 0.6, 0.5)
    loss = 3.0 * (1.0 - acc) + 0.1  # decreasing, like bits/char
    truth = 3.0 * (1.0 - (0.9 - 0.6 * 100.0**-0.5)) + 0.1
    p = predict_final("lc-parametric", fractions, loss, target=truth + 0.2,
                      metric="bits_per_char", higher_is_better=False)  # fmt: skip
    assert p.mean == pytest.approx(truth, abs=0.03) and p.lower <= p.upper
    assert p.p_target > 0.9


@pytest.mark.parametrize("method", METHODS)
def test_p_target_decreases_as_the_target_rises(method):
    fractions = np.linspace(0.05, 0.3, 6)
    values = FAMILIES["pow3"].f(fraction_to_x(fractions), 0.8, 0.5, 0.7)
    values = values + np.random.default_rng(0).normal(0, 0.01, len(values))
    probs = [predict_final(method, fractions, values, target=t, metric="accuracy",
                           higher_is_better=True).p_target
             for t in np.linspace(0.3, 1.0, 15)]  # fmt: skip
    assert all(a >= b for a, b in zip(probs, probs[1:], strict=False))
    assert probs[0] > 0.9 and probs[-1] < 0.1


def test_posterior_is_seeded_and_needs_no_fit_for_two_points():
    x, y = fraction_to_x(np.array([0.1, 0.2])), np.array([0.3, 0.4])
    a, b = parametric_posterior(x, y, seed=3), parametric_posterior(x, y, seed=3)
    assert np.array_equal(a.samples, b.samples)
    assert a.mean() == pytest.approx(0.4, abs=0.05)  # no family fits 2 points: the last value


def test_bad_curves_are_one_line_errors():
    with pytest.raises(LearningCurveError, match="unknown learning-curve method"):
        predict_final("lc-bogus", [0.1], [0.5], target=0.9, metric="accuracy",
                      higher_is_better=True)  # fmt: skip
    with pytest.raises(LearningCurveError, match="as many fractions"):
        predict_final("lc-parametric", [0.1, 0.2], [0.5], target=0.9, metric="accuracy",
                      higher_is_better=True)  # fmt: skip


def test_at_the_end_of_the_budget_the_observed_value_is_the_prediction():
    from trainlab.curves import predict_final

    for method in ("lc-parametric", "lc-pfn"):
        p = predict_final(method, [0.5, 1.0], [0.3, 0.2036], target=0.75, metric="accuracy",
                          higher_is_better=True)  # fmt: skip
        assert (p.mean, p.lower, p.upper, p.p_target) == (0.2036, 0.2036, 0.2036, 0.0)
        p = predict_final(method, [0.5, 1.0], [0.5, 0.1], target=0.2, metric="loss",
                          higher_is_better=False)  # fmt: skip
        assert p.p_target == 1.0
