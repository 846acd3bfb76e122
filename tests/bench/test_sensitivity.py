"""Wortsman et al.'s LR sensitivity, by hand."""

import math

import pytest

from trainlab.bench.sensitivity import lr_sensitivity, sweep_sensitivity
from trainlab.errors import TrainlabError


def test_flat_sweep_has_zero_sensitivity_and_divergence_counts_as_initial_loss():
    assert lr_sensitivity([1.0, 1.0, 1.0], initial_loss=3.0) == 0.0
    # 1 diverged of 4: mean(1, 1, 1, 3) - 1 = 0.5
    assert lr_sensitivity([1.0, 1.0, 1.0, math.inf], initial_loss=3.0) == 0.5
    # a run ending above its initial loss gained nothing: capped at l0
    assert lr_sensitivity([1.0, 5.0], initial_loss=3.0) == 1.0


def test_seeds_are_averaged_after_capping():
    runs = [(1e-3, 2.0), (1e-3, 1.0), (1e-2, 0.5), (1e-2, math.nan), (1e-1, 4.0), (1e-1, 4.0)]
    s = sweep_sensitivity("opt", runs, initial_loss=3.0)
    assert s.lrs == (1e-3, 1e-2, 1e-1)
    assert s.losses == (1.5, 1.75, 3.0) and s.seeds == 2
    assert s.best_lr == 1e-3 and s.best_loss == 1.5
    assert s.value == pytest.approx((1.5 + 1.75 + 3.0) / 3 - 1.5)


def test_an_empty_sweep_is_an_error():
    with pytest.raises(TrainlabError):
        sweep_sensitivity("opt", [], 1.0)
    with pytest.raises(TrainlabError):
        lr_sensitivity([], 1.0)


def test_bootstrap_interval_over_seeds_by_hand():
    from trainlab.bench.sensitivity import bootstrap_interval

    # identical seeds: every resample is the same sweep, the interval is the point
    same = bootstrap_interval([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], initial_loss=5.0, n_boot=200)
    assert same == pytest.approx((1.0, 1.0))
    # two seeds, capped at l0 = 2 (3 and nan count 2): a = (1, 2, 2), b = (1, 1, 2); the
    # resamples {a, a}, {b, b}, {a, b} (probabilities 1/4, 1/4, 1/2) have sensitivities 2/3,
    # 1/3 and 1/2: the 2.5 and 97.5 percentiles are 1/3 and 2/3
    low, high = bootstrap_interval([[1.0, 2.0, 3.0], [1.0, 1.0, math.nan]], 2.0, n_boot=4000)
    assert low == pytest.approx(1 / 3) and high == pytest.approx(2 / 3)
    assert bootstrap_interval([[1.0, 2.0, 3.0]], 5.0) is None  # one seed: no interval


def test_a_sweep_plans_every_lr_with_the_same_seed_per_study_and_defaults_elsewhere():
    from trainlab.bench.sensitivity import lr_name, sweep_trials
    from trainlab.registry import get_algorithm

    adamw = get_algorithm("adamw")
    assert lr_name(adamw) == "learning_rate"
    trials = sweep_trials(adamw, [1e-5, 1e-3, 1.0], n_seeds=2, seed=3)  # 1e-5, 1: out of range
    assert [(t.study, t.trial_index) for t in trials] == [(s, i) for s in (0, 1) for i in (0, 1, 2)]
    assert [t.hyperparameters["learning_rate"] for t in trials] == [1e-5, 1e-3, 1.0] * 2
    defaults = adamw.search_space.defaults()
    for t in trials:
        assert {k: v for k, v in t.hyperparameters.items() if k != "learning_rate"} == {
            k: v for k, v in defaults.items() if k != "learning_rate"}
    assert len({t.seed for t in trials if t.study == 0}) == 1
    assert len({t.seed for t in trials}) == 2


def test_sweep_inputs_are_checked():
    from trainlab.bench.sensitivity import check_lrs, lr_name
    from trainlab.registry import get_algorithm

    with pytest.raises(TrainlabError, match="no learning-rate hyperparameter"):
        lr_name(get_algorithm("dog"))
    for bad in ([1e-3, 1e-2], [0.0, 1e-2, 1e-1], [1e-3, 1e-3, 1e-2], [math.inf, 1.0, 2.0]):
        with pytest.raises(TrainlabError):
            check_lrs(bad)
