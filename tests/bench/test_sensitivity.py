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
