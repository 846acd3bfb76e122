"""Adan against Algorithm 1 of Xie et al. (2022) written out by hand, with the bias correction
of the authors' release and both weight-decay forms."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import Adan

GRADS = [[0.5, -1.0, 0.0], [0.2, 0.3, -0.4], [-1.5, 0.05, 0.01], [0.7, -0.2, 0.3]]


def adan_by_hand(p, grads, lr, b1, b2, b3, eps, wd, proximal):
    n_el = len(p)
    p, m, v, n = list(p), [0.0] * n_el, [0.0] * n_el, [0.0] * n_el
    prev = grads[0]  # g_0 := g_1: the first difference is zero
    for k, g in enumerate(grads, start=1):
        for i in range(n_el):
            d = g[i] - prev[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * d
            n[i] = b3 * n[i] + (1 - b3) * (g[i] + b2 * d) ** 2
            u = m[i] / (1 - b1**k) + b2 * v[i] / (1 - b2**k)
            eta = lr / (math.sqrt(n[i] / (1 - b3**k)) + eps)
            if proximal:
                p[i] = (p[i] - eta * u) / (1 + lr * wd)
            else:
                p[i] = p[i] * (1 - lr * wd) - eta * u
        prev = g
    return p


@pytest.mark.parametrize(("wd", "proximal"), [(0.0, True), (0.1, True), (0.1, False)])
def test_steps_match_algorithm_1(run_steps, wd, proximal):
    start = [1.0, -2.0, 0.5]
    betas = (0.98, 0.92, 0.99)
    _, (p,) = run_steps(
        lambda p: Adan([p], lr=0.01, betas=betas, eps=1e-8, weight_decay=wd, proximal=proximal),
        [start],
        [GRADS],
    )
    expected = adan_by_hand(start, GRADS, 0.01, *betas, 1e-8, wd, proximal)
    assert p == pytest.approx(expected, abs=1e-12)


def test_first_step_is_a_sign_like_step_of_size_lr(run_steps):
    # k = 1: d = 0, m_hat = g, n_hat = g^2, so the step is lr * g / (|g| + eps)
    _, (p,) = run_steps(lambda p: Adan([p], lr=0.1, eps=0.0), [[0.0, 0.0]], [[[3.0, -0.25]]])
    assert p == pytest.approx([-0.1, 0.1], abs=1e-12)


def test_state_dict_round_trip_is_bitwise(check_roundtrip):
    check_roundtrip(lambda groups: Adan(groups, lr=1e-2, weight_decay=0.02))


def test_param_groups_use_their_own_lr(check_group_lr_is_its_own):
    check_group_lr_is_its_own(lambda params, lr: Adan(params, lr=lr, weight_decay=0.1), GRADS)


def test_no_host_sync(run_without_sync):
    run_without_sync(lambda groups: Adan(groups, lr=1e-3, weight_decay=0.02))


def test_minimizes_a_regression(check_minimizes_regression):
    check_minimizes_regression(lambda groups: Adan(groups, lr=0.05), steps=500, schedule="linear")


def test_proximal_weight_decay_is_the_default(run_steps):
    # by hand, one step from p = 2 with g = 1, lr = 0.1, wd = 0.5, eps = 0: the first step is
    # a sign step of size lr (p_half = 1.9); proximal: 1.9 / (1 + 0.05); decoupled: 2 * 0.95 - 0.1
    assert Adan([torch.zeros(1, requires_grad=True)]).defaults["proximal"] is True
    _, (p,) = run_steps(lambda p: Adan([p], lr=0.1, eps=0.0, weight_decay=0.5), [[2.0]], [[[1.0]]])
    assert p == pytest.approx([1.9 / 1.05], abs=1e-15)
    _, (p,) = run_steps(
        lambda p: Adan([p], lr=0.1, eps=0.0, weight_decay=0.5, proximal=False), [[2.0]], [[[1.0]]]
    )
    assert p == pytest.approx([1.8], abs=1e-15)
