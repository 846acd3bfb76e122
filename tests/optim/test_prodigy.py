"""Prodigy against its update rule written out by hand (Mishchenko & Defazio, 2023).

The hand version uses the paper's weights ``(1 - b3) * d_k * dlr_k`` in ``r`` and ``s``; the
optimizer uses the release's ``(d_k / d_0) * dlr_k``. The constant factor cancels in
``r / ||s||_1``, so the two must agree to rounding: the test checks that claim too."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import Prodigy

# two tensors (in two groups), mostly consistent gradients so that d grows
GRADS_A = [[0.5, -1.0, 0.2], [0.4, -0.8, 0.1], [0.6, -0.5, -0.1], [0.3, -0.9, 0.2]]
GRADS_B = [[1.0, 2.0], [0.5, 1.5], [0.8, 1.0], [0.25, 1.2]]
STEPS = 24  # cycling through the four gradients


def prodigy_by_hand(
    starts, lrs, wds, *, betas, eps, d0, d_coef, growth_rate, use_bias_correction, safeguard_warmup
):
    (b1, b2), growth = betas, growth_rate
    bias_corr, safeguard = use_bias_correction, safeguard_warmup
    xs = [list(x) for x in starts]
    x0s = [list(x) for x in starts]
    ms = [[0.0] * len(x) for x in xs]
    vs = [[0.0] * len(x) for x in xs]
    ss = [[0.0] * len(x) for x in xs]
    b3 = math.sqrt(b2)
    d, d_max, r = d0, d0, 0.0
    for k in range(STEPS):
        grads = (GRADS_A[k % 4], GRADS_B[k % 4])
        bc = math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1)) if bias_corr else 1.0
        dlrs = [d * lr * bc for lr in lrs]
        r = b3 * r + (1 - b3) * sum(
            d * dlr * sum(gi * (x0i - xi) for gi, x0i, xi in zip(g, x0, x, strict=True))
            for g, x0, x, dlr in zip(grads, x0s, xs, dlrs, strict=True)
        )
        for g, m, v, s, dlr in zip(grads, ms, vs, ss, dlrs, strict=True):
            for i, gi in enumerate(g):
                m[i] = b1 * m[i] + (1 - b1) * d * gi
                v[i] = b2 * v[i] + (1 - b2) * d * d * gi * gi
                s[i] = b3 * s[i] + (1 - b3) * d * (d if safeguard else dlr) * gi
        d_hat = d_coef * r / sum(abs(si) for s in ss for si in s)
        d_new = max(d, d_hat) if d == d0 else d
        d_max = max(d_max, d_hat)
        d_new = min(d_max, d_new * growth)
        for x, m, v, dlr, wd in zip(xs, ms, vs, dlrs, wds, strict=True):
            for i in range(len(x)):
                x[i] *= 1 - wd * dlr
                x[i] -= dlr * m[i] / (math.sqrt(v[i]) + d_new * eps)
        d = d_new
    return xs, d


@pytest.mark.parametrize(
    ("bias_corr", "safeguard", "growth"),
    [(False, False, math.inf), (True, False, math.inf), (False, True, 1.5), (True, True, 1.02)],
)
def test_steps_match_the_update_rule(run_steps, bias_corr, safeguard, growth):
    starts = [[1.0, -2.0, 0.5], [0.3, 0.0]]
    settings = dict(
        betas=(0.9, 0.99),
        eps=1e-8,
        d0=1e-3,
        d_coef=0.7,
        growth_rate=growth,
        use_bias_correction=bias_corr,
        safeguard_warmup=safeguard,
    )
    opt, (a, b) = run_steps(
        lambda a, b: Prodigy(
            [{"params": [a], "weight_decay": 0.1}, {"params": [b], "lr": 0.5}], **settings
        ),
        starts,
        [GRADS_A, GRADS_B],
        steps=STEPS,
    )
    (exp_a, exp_b), d = prodigy_by_hand(starts, [1.0, 0.5], [0.1, 0.0], **settings)
    assert d > 1.3e-3  # d did grow: the test exercises the estimate
    assert opt.param_groups[1]["d"].item() == pytest.approx(d, rel=1e-10)
    assert a == pytest.approx(exp_a, rel=1e-10, abs=1e-13)
    assert b == pytest.approx(exp_b, rel=1e-10, abs=1e-13)


def test_coupled_weight_decay_enters_the_gradient():
    # decouple=False is Adam + L2: the same as no weight decay on the gradient grad + wd * x
    def run(decouple: bool, wd: float, add_to_grad: float) -> torch.Tensor:
        x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
        opt = Prodigy([x], d0=1e-3, weight_decay=wd, decouple=decouple)
        for g in GRADS_A:
            x.grad = torch.tensor(g, dtype=torch.float64) + add_to_grad * x.detach()
            opt.step()
        return x.detach()

    assert torch.allclose(run(False, 0.1, 0.0), run(True, 0.0, 0.1), rtol=1e-12, atol=0)
    assert not torch.allclose(run(False, 0.1, 0.0), run(True, 0.1, 0.0))


def test_state_dict_round_trip_is_bitwise(check_roundtrip):
    check_roundtrip(lambda groups: Prodigy(groups, weight_decay=0.01))


def test_param_groups_use_their_own_lr(check_lr_scales_the_step):
    # same values and gradients: the lr = 3 group moves exactly 3x as far, lr = 0 not at all
    check_lr_scales_the_step(Prodigy, GRADS_A)


def test_no_host_sync(run_without_sync):
    run_without_sync(lambda groups: Prodigy(groups, weight_decay=0.01, use_bias_correction=True))


def test_minimizes_a_regression(check_minimizes_regression):
    check_minimizes_regression(Prodigy, steps=500, schedule="cosine")


@pytest.mark.parametrize("foreach", [True, False])
def test_a_step_without_gradient_information_changes_nothing(foreach):
    # all gradients zero: ||s||_1 = 0, the release returns early; the decoupled decay must not
    # shrink the weights either, and d stays d0
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = Prodigy([x], weight_decay=0.5, foreach=foreach)
    for _ in range(3):
        x.grad = torch.zeros(3, dtype=torch.float64)
        opt.step()
    assert x.detach().tolist() == [1.0, -2.0, 0.5]
    assert opt.param_groups[0]["d"].item() == 1e-6
    # the first informative step then moves the weights (and decays them)
    x.grad = torch.tensor(GRADS_A[0], dtype=torch.float64)
    opt.step()
    assert not torch.equal(x.detach(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
