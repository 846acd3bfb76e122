"""D-Adaptation (Adam variant) against its update rule written out by hand (Defazio &
Mishchenko, 2023; the authors' release, version 3)."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import DAdaptAdam

# two tensors (in two groups), mostly consistent gradients so that d grows
GRADS_A = [[0.5, -1.0, 0.2], [0.4, -0.8, 0.1], [0.6, -0.5, -0.1], [0.3, -0.9, 0.2]]
GRADS_B = [[1.0, 2.0], [0.5, 1.5], [0.8, 1.0], [0.25, 1.2]]
STEPS = 24  # cycling through the four gradients


def dadapt_by_hand(starts, lrs, wds, *, betas, eps, d0, d_coef, growth_rate, use_bias_correction):
    (b1, b2), growth, bias_corr = betas, growth_rate, use_bias_correction
    xs = [list(x) for x in starts]
    ms = [[0.0] * len(x) for x in xs]
    vs = [[0.0] * len(x) for x in xs]
    ss = [[0.0] * len(x) for x in xs]
    b = math.sqrt(b2)
    d, r = d0, 0.0
    for k in range(STEPS):
        grads = (GRADS_A[k % 4], GRADS_B[k % 4])
        bc = math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1)) if bias_corr else 1.0
        dlrs = [d * lr * bc for lr in lrs]
        dot = 0.0
        for g, v, s, dlr in zip(grads, vs, ss, dlrs, strict=True):
            terms = zip(g, s, v, strict=True)
            dot += dlr * sum(gi * si / (math.sqrt(vi) + eps) for gi, si, vi in terms)
        r = b * r + (1 - b) * dot
        for g, m, v, s, dlr in zip(grads, ms, vs, ss, dlrs, strict=True):
            for i, gi in enumerate(g):
                m[i] = b1 * m[i] + (1 - b1) * dlr * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                s[i] = b * s[i] + (1 - b) * dlr * gi
        d_hat = d_coef * r / ((1 - b) * sum(abs(si) for s in ss for si in s))
        for x, m, v, dlr, wd in zip(xs, ms, vs, dlrs, wds, strict=True):
            for i in range(len(x)):
                x[i] *= 1 - wd * dlr
                x[i] -= m[i] / (math.sqrt(v[i]) + eps)
        d = max(d, min(d_hat, d * growth))
    return xs, d


@pytest.mark.parametrize(("bias_corr", "growth"), [(False, math.inf), (True, 1.1)])
def test_steps_match_the_update_rule(run_steps, bias_corr, growth):
    starts = [[1.0, -2.0, 0.5], [0.3, 0.0]]
    settings = dict(
        betas=(0.9, 0.99),
        eps=1e-8,
        d0=1e-3,
        d_coef=0.7,
        growth_rate=growth,
        use_bias_correction=bias_corr,
    )
    opt, (a, b) = run_steps(
        lambda a, b: DAdaptAdam(
            [{"params": [a], "weight_decay": 0.1}, {"params": [b], "lr": 0.5}], **settings
        ),
        starts,
        [GRADS_A, GRADS_B],
        steps=STEPS,
    )
    (exp_a, exp_b), d = dadapt_by_hand(starts, [1.0, 0.5], [0.1, 0.0], **settings)
    assert d > 1.3e-3  # d did grow: the test exercises the estimate
    assert opt.param_groups[1]["d"].item() == pytest.approx(d, rel=1e-10)
    assert a == pytest.approx(exp_a, rel=1e-10, abs=1e-13)
    assert b == pytest.approx(exp_b, rel=1e-10, abs=1e-13)


def test_state_dict_round_trip_is_bitwise(check_roundtrip):
    check_roundtrip(lambda groups: DAdaptAdam(groups, weight_decay=0.01))


def test_param_groups_use_their_own_lr(check_lr_scales_the_step):
    # same values and gradients: the lr = 3 group moves exactly 3x as far, lr = 0 not at all
    check_lr_scales_the_step(DAdaptAdam, GRADS_A)


def test_no_host_sync(run_without_sync):
    run_without_sync(lambda groups: DAdaptAdam(groups, weight_decay=0.01, use_bias_correction=True))


def test_minimizes_a_regression(check_minimizes_regression):
    check_minimizes_regression(DAdaptAdam, steps=500, schedule="cosine")


@pytest.mark.parametrize("foreach", [True, False])
def test_a_step_without_gradient_information_changes_nothing(foreach):
    # all gradients zero: ||s||_1 = 0, the release returns early; the decoupled decay must not
    # shrink the weights either, and d stays d0
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = DAdaptAdam([x], weight_decay=0.5, foreach=foreach)
    for _ in range(3):
        x.grad = torch.zeros(3, dtype=torch.float64)
        opt.step()
    assert x.detach().tolist() == [1.0, -2.0, 0.5]
    assert opt.param_groups[0]["d"].item() == 1e-6
    x.grad = torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64)
    opt.step()
    assert not torch.equal(x.detach(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
