"""AutoLRS: the exponential forecast recovers a planted curve, the GP-based search finds the
minimizer of a planted function, and the controller's stages, checkpoints and lr choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.methods.autolrs import AutoLRS, BayesOpt1D, fit_exponential, forecast_exponential

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


def test_forecast_extrapolates_the_exponential_not_its_fitted_asymptote():
    # 20 points of a slow exponential (time constant 100): the forecast 200 steps on follows
    # the curve, far below the last loss, and stays above the loss floor
    t = np.arange(20)
    y = 0.2 + np.exp(-t / 100)
    truth = 0.2 + math.exp(-200 / 100)
    assert forecast_exponential(y, at=200, floor=0.0) == approx(truth, abs=1e-3)
    line = 2.0 - 0.02 * t  # a straight line: unbounded, the fit extrapolates below zero...
    assert forecast_exponential(line, at=500) < 0 <= forecast_exponential(line, at=500, floor=0.0)
    with pytest.raises(ValueError):
        fit_exponential([1.0, 2.0])


# -- Gaussian process and Bayesian optimization ------------------------------------------------


def test_gp_interpolates_and_is_uncertain_away_from_data():
    bo = BayesOpt1D(1.0, 10.0, log=False, rng=0)
    for x, y in [(1.9, 1.0), (4.6, -2.0), (7.0, 0.0), (9.1, 0.5)]:  # unit 0.1, 0.4, 2/3, 0.9
        bo.tell(x, y)
    mean, std = bo.posterior(np.array([0.1, 0.4, 2 / 3, 0.9]))
    assert mean == approx([1.0, -2.0, 0.0, 0.5], abs=0.1)
    _, std_far = bo.posterior(np.array([0.25]))
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


def _expected_quadratic_loss(lr: float, steps: int, h: float = 1.0, sigma: float = 1.0) -> float:
    """E[h w^2 / 2] after ``steps`` SGD steps from w = 1 on the gradient h (w - xi),
    xi ~ N(0, sigma^2): m <- (1 - lr h)^2 m + (lr h sigma)^2."""
    m = 1.0
    for _ in range(steps):
        m = (1 - lr * h) ** 2 * m + (lr * h * sigma) ** 2
    return 0.5 * h * m


@pytest.mark.parametrize("seed", [0, 1])
def test_controller_finds_the_best_lr_of_a_noisy_quadratic(seed):
    """No planted curve: SGD on noisy quadratics, where a large lr converges fast to a high noise
    floor (lr sigma^2 / (2 - lr)) and a small one slowly; over tau = 200 steps the best lr is
    about 0.0166: there (1 - lr)^400 = 0.0012 and the floor lr / (2 - lr) = 0.0084 give 0.0048,
    against 0.0684 at lr = 0.005 (0.995^400 = 0.135) and 0.0128 at 0.05 (floor 0.0256 / 2)."""
    grid = np.logspace(-3, 0, 301)
    values = [_expected_quadratic_loss(lr, 200) for lr in grid]
    best = grid[int(np.argmin(values))]
    assert best == approx(0.0166, rel=0.03)
    assert min(values) == approx(0.0048, abs=1e-4)
    assert _expected_quadratic_loss(0.005, 200) == approx(0.0684, abs=1e-4)
    assert _expected_quadratic_loss(0.05, 200) == approx(0.0128, abs=1e-4)

    dim = 20_000  # independent coordinates: the mean loss is nearly its expectation
    torch.manual_seed(seed)
    w = torch.nn.Parameter(torch.ones(dim))
    model = torch.nn.Module()
    model.w = w
    opt = torch.optim.SGD([w], lr=0.1)
    ctl = AutoLRS(model, opt, 1e-3, 1.0, tau=200, tau_prime=20, n_trials=10, seed=seed)
    noise = torch.Generator().manual_seed(seed)
    while ctl.exploring:
        xi = torch.randn(dim, generator=noise)
        opt.zero_grad()
        (0.5 * (w - xi).pow(2).sum()).backward()  # per-coordinate gradient w - xi
        opt.step()
        ctl.step(0.5 * float(w.detach().pow(2).mean()))
    assert abs(math.log10(ctl.lr / best)) < 0.35
    assert _expected_quadratic_loss(ctl.lr, 200) < 2 * min(values)


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
    assert state.scheduler is None and not hasattr(state, "extra")  # typed state
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
