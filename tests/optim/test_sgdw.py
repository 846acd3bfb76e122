"""SGDW against Algorithm 1 of Loshchilov & Hutter (2019), written out by hand from the paper:
m_t = mu m_{t-1} + eta_t alpha g_t; theta_t = theta_{t-1} - m_t - eta_t lambda theta_{t-1},
eta_t = lr_t / alpha; Nesterov: the step is mu m_t + eta_t alpha g_t."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import SGDW

GRADS = [[0.5, -1.0, 0.0], [0.2, 0.3, -0.4], [-1.5, 0.05, 0.01], [0.7, -0.2, 0.3]]
LRS = [0.1, 0.1, 0.01, 0.01]  # a step drop after two steps


def algorithm_1(theta, grads, lrs, alpha, mu, lam, nesterov):
    """The paper's equations, one coordinate at a time."""
    theta, m = list(theta), [0.0] * len(theta)
    for g, lr in zip(grads, lrs, strict=True):
        eta = lr / alpha  # the schedule multiplier
        m = [mu * mi + eta * alpha * gi for mi, gi in zip(m, g, strict=True)]
        if nesterov:
            steps = [mu * mi + eta * alpha * gi for mi, gi in zip(m, g, strict=True)]
        else:
            steps = m
        theta = [th - s - eta * lam * th for th, s in zip(theta, steps, strict=True)]
    return theta


def run(lrs, **kwargs):
    p = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = SGDW([p], lr=lrs[0], **kwargs)
    for g, lr in zip(GRADS, lrs, strict=True):
        opt.param_groups[0]["lr"] = lr  # what a scheduler does
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().tolist()


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize(
    ("mu", "nesterov", "wd"),
    [(0.9, False, 0.0), (0.9, False, 0.1), (0.9, True, 0.1), (0.0, False, 0.1)],
)
def test_steps_match_algorithm_1_across_an_lr_drop(mu, nesterov, wd, foreach):
    got = run(LRS, momentum=mu, nesterov=nesterov, weight_decay=wd, foreach=foreach)
    expected = algorithm_1([1.0, -2.0, 0.5], GRADS, LRS, 0.1, mu, wd, nesterov)
    assert got == pytest.approx(expected, abs=1e-13)


def test_one_coordinate_by_hand():
    # theta_0 = 1, g = 1, alpha = 0.1, mu = 0.5, lambda = 0.1; lr 0.1 then 0.01 (eta 1, 0.1)
    # step 1: m = 0.1, theta = 1 - 0.1 - 0.1 * 1 = 0.8
    # step 2: m = 0.05 + 0.01 = 0.06, theta = 0.8 - 0.06 - 0.1 * 0.1 * 0.8 = 0.732
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = SGDW([p], lr=0.1, momentum=0.5, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    for expected in (0.8, 0.732):
        p.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        sched.step()
        assert p.item() == pytest.approx(expected, abs=1e-15)
    # the buffer holds the scaled step, not the gradient (torch.optim.SGD's would be 1.5)
    assert opt.state[p]["momentum_buffer"].item() == pytest.approx(0.06, abs=1e-15)


def test_the_lr_drop_is_not_applied_to_past_momentum():
    # torch.optim.SGD multiplies its whole gradient buffer by the new lr: it differs here
    p = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    ref = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    for g, lr in zip(GRADS, LRS, strict=True):
        ref.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        ref.step()
    ours = run(LRS, momentum=0.9)
    assert max(abs(a - b) for a, b in zip(ours, p.tolist(), strict=True)) > 1e-2
    # without a schedule the two forms agree
    assert run([0.1] * 4, momentum=0.9) == pytest.approx(
        algorithm_1([1.0, -2.0, 0.5], GRADS, [0.1] * 4, 0.1, 0.9, 0.0, False), abs=1e-13
    )


def test_eta_is_the_lr_over_the_initial_lr():
    p = torch.ones(1, dtype=torch.float64, requires_grad=True)
    opt = SGDW([p], lr=0.5, momentum=0.0, weight_decay=0.2)
    assert opt.param_groups[0]["initial_lr"] == 0.5
    opt.param_groups[0]["lr"] = 0.25  # eta = 0.5: decay 0.5 * 0.2, step 0.25 * g
    p.grad = torch.zeros(1, dtype=torch.float64)
    opt.step()
    assert p.item() == pytest.approx(0.9, abs=1e-15)
    # a scheduler built afterwards keeps the optimizer's initial_lr
    torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    assert opt.param_groups[0]["initial_lr"] == 0.5


def test_weight_decay_is_decoupled_from_the_momentum():
    # zero gradients: only the decay acts, (1 - eta * lambda) per step, nothing through m
    p = torch.ones(1, dtype=torch.float64, requires_grad=True)
    opt = SGDW([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    for _ in range(3):
        p.grad = torch.zeros(1, dtype=torch.float64)
        opt.step()
    assert p.item() == pytest.approx(0.5**3, abs=1e-15)


@pytest.mark.parametrize("nesterov", [True, False])
def test_state_dict_round_trip_is_bitwise(check_roundtrip, nesterov):
    check_roundtrip(lambda groups: SGDW(groups, lr=0.05, nesterov=nesterov, weight_decay=5e-4))


def test_param_groups_use_their_own_lr(check_lr_scales_the_step):
    check_lr_scales_the_step(lambda groups: SGDW(groups, lr=1.0, momentum=0.9), GRADS)


def test_no_host_sync(run_without_sync):
    run_without_sync(lambda groups: SGDW(groups, lr=0.05, nesterov=True, weight_decay=5e-4))


def test_minimizes_a_regression(check_minimizes_regression):
    check_minimizes_regression(
        lambda groups: SGDW(groups, lr=0.05, momentum=0.9, nesterov=True), steps=400
    )
