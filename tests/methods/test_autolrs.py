"""AutoLRS: the exponential forecast recovers a planted curve, the GP-based search finds the
minimizer of a planted function, and the controller's stages, checkpoints and lr choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.methods.autolrs import (
    AutoLRS,
    BayesOpt1D,
    GaussianProcess1D,
    fit_exponential,
    forecast_exponential,
)

approx = pytest.approx


# -- exponential forecasting -------------------------------------------------------------------


def test_fit_recovers_a_planted_exponential():
    t = np.arange(60)
    a, b, c = fit_exponential(2.0 * np.exp(-0.05 * t) + 0.5)
    assert (a, b, c) == approx((2.0, -0.05, 0.5), rel=1e-4)


def test_forecast_of_a_noisy_planted_curve_with_outliers():
    rng = np.random.default_rng(0)
    t = np.arange(80)
    y = 2.0 * np.exp(-0.05 * t) + 0.5 + rng.normal(0, 0.01, len(t))
    y[[7, 40, 66]] += 1.5  # loss spikes: dropped by the robust refits
    a, b, c = fit_exponential(y)
    assert b == approx(-0.05, rel=0.05) and c == approx(0.5, abs=0.02)
    truth = 2.0 * math.exp(-0.05 * 800) + 0.5
    assert forecast_exponential(y, at=800) == approx(truth, abs=0.02)


def test_floor_and_rate_bounds():
    y = 2.0 - 0.02 * np.arange(20)  # a straight line extrapolates below zero...
    free = forecast_exponential(y, at=500)
    floored = forecast_exponential(y, at=500, floor=0.0)
    assert free < 0 <= floored  # ...unless the asymptote is held at the loss floor
    # a minimum rate (time constant <= the window) keeps the forecast near the window
    short = forecast_exponential(y, at=500, rate_min=1 / 20, floor=0.0)
    assert 0.0 <= short < y[-1]
    with pytest.raises(ValueError):
        fit_exponential([1.0, 2.0])


# -- Gaussian process and Bayesian optimization ------------------------------------------------


def test_gp_interpolates_and_is_uncertain_away_from_data():
    x = [0.1, 0.4, 0.9]
    y = [1.0, -2.0, 0.5]
    gp = GaussianProcess1D().fit(x, y)
    mean, std = gp.predict(x)
    assert mean == approx(y, abs=0.05)
    _, std_far = gp.predict([0.65])
    assert std_far[0] > std.max()


def test_bayes_opt_finds_the_minimizer_of_a_planted_function():
    best = 10**-2.5

    def f(lr: float) -> float:
        return (math.log10(lr) - math.log10(best)) ** 2

    bo = BayesOpt1D(1e-4, 1e-1, log=True, rng=0)
    for _ in range(10):
        lr = bo.ask()
        assert 1e-4 <= lr <= 1e-1
        bo.tell(lr, f(lr))
    assert abs(math.log10(bo.best()) - math.log10(best)) < 0.1
    assert len(set(bo.xs)) == len(bo.xs)  # never asks the same point twice


def test_bayes_opt_with_noise_and_an_asymmetric_valley():
    rng = np.random.default_rng(1)

    def f(lr: float) -> float:  # steep on the high side (divergence), slow on the low side
        u = math.log10(lr) + 2.0
        return (3 * u if u > 0 else -u) + rng.normal(0, 0.02)

    bo = BayesOpt1D(1e-5, 1.0, rng=3)
    for _ in range(12):
        lr = bo.ask()
        bo.tell(lr, f(lr))
    assert abs(math.log10(bo.best()) + 2.0) < 0.25


# -- the controller ----------------------------------------------------------------------------


def _model_and_opt():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)


def _sgd_step(model, opt):
    x = torch.randn(8, 3)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def test_stage_structure_checkpoints_and_restores():
    model, opt = _model_and_opt()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ctl = AutoLRS(model, opt, 1e-3, 1e-1, tau=20, tau_prime=5, n_trials=3, tau_max=40, seed=0)
    tried = []
    for i in range(15):  # 3 explorations of 5 steps from the same checkpoint
        assert ctl.exploring
        if i % 5 == 0:
            tried.append(ctl.lr)
            assert all(torch.equal(model.state_dict()[k], start[k]) for k in start)
        for k, v in ctl.reference_state().items():
            assert torch.equal(v, start[k])
        ctl.step(_sgd_step(model, opt))
    # restored, and training continues with the tried lr of lowest forecast
    assert not ctl.exploring and ctl.reference_state() is None
    assert all(torch.equal(model.state_dict()[k], start[k]) for k in start)
    assert ctl.lr in tried and ctl.history[0][1] == ctl.lr
    assert all(g["lr"] == ctl.lr for g in opt.param_groups)
    assert opt.state_dict()["state"] == {} or not opt.state  # momentum buffers restored (empty)
    for _ in range(20):  # the stage: tau steps
        assert not ctl.exploring
        ctl.step(_sgd_step(model, opt))
    # next stage: tau doubles (up to tau_max) and tau' with it
    assert ctl.exploring and ctl.stage == 1 and ctl.tau == 40 and ctl.tau_prime == 10


def test_non_finite_loss_ends_an_exploration_with_a_penalty():
    model, opt = _model_and_opt()
    ctl = AutoLRS(model, opt, 1e-3, 1e-1, tau=30, tau_prime=5, n_trials=2, seed=0)
    ctl.step(1.0)
    ctl.step(float("nan"))  # second step of the first exploration blows up
    assert ctl.exploring and len(ctl._bo.ys) == 1 and ctl._bo.ys[0] == approx(2.0)


def test_controller_picks_the_lr_with_the_best_planted_loss_curve():
    """Losses planted as a function of the lr: l(t) = 1 + exp(-k(lr) t), fastest at 1e-2."""
    model, opt = _model_and_opt()
    ctl = AutoLRS(model, opt, 1e-4, 1.0, tau=100, tau_prime=10, n_trials=10, seed=0)

    def rate(lr: float) -> float:
        return 0.2 * math.exp(-((math.log10(lr) + 2.0) ** 2))

    t = 0
    while ctl.exploring:
        lr = ctl.lr
        ctl.step(1.0 + math.exp(-rate(lr) * t) + 0.1 * (math.log10(lr) + 2.0) ** 2)
        t = 0 if ctl.lr != lr or not ctl.exploring else t + 1
    assert abs(math.log10(ctl.lr) + 2.0) < 0.3


# -- the benchmark algorithm -------------------------------------------------------------------


def test_benchmark_algorithm_evaluates_the_checkpoint_while_exploring():
    from trainlab.registry import get_algorithm, get_workload

    workload = get_workload("digits_cnn")
    algorithm = get_algorithm("autolrs")
    assert algorithm.self_tuning
    hp = algorithm.search_space.validate({})
    model = workload.init_model(0)
    state = algorithm.init(workload, model, hp, seed=0)
    controller = state.controller
    assert state.scheduler is None and state.extra == {}  # typed state; the controller sets lr
    tau = max(40, round(workload.step_hint / 8))
    assert controller.tau == tau and controller.tau_prime == tau // 10
    start = {k: v.clone() for k, v in model.state_dict().items()}
    stream = algorithm.select_data(state, workload.batches(algorithm.batch_size(workload, hp), 0))
    for step in range(10):
        loss = algorithm.update(state, next(stream), step)
        assert math.isfinite(float(loss))
    assert controller.exploring
    evaluated = algorithm.prepare_for_eval(state)
    assert evaluated is not model  # the live model is a candidate's; the checkpoint is training's
    assert all(torch.equal(evaluated.state_dict()[k], start[k]) for k in start)
    while controller.exploring:
        step += 1
        algorithm.update(state, next(stream), step)
    assert algorithm.prepare_for_eval(state) is model
