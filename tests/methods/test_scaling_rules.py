"""Learning-rate / batch-size scaling rules: values by hand."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.methods.scaling_rules import (
    Regime,
    granziol_lr,
    hoffer_regime,
    lr_multiplier,
    rule_for_optimizer,
    scale_lr,
    scale_optimizer_lr,
)
from trainlab.optim import SGDW, NAdamW

approx = pytest.approx


def test_linear_and_sqrt_rules():
    assert scale_lr(0.1, 128, 1024, "linear") == approx(0.8)  # k = 8
    assert scale_lr(0.1, 128, 1024, "sqrt") == approx(0.1 * math.sqrt(8))
    assert scale_lr(0.1, 128, 1024, "none") == 0.1
    assert scale_lr(0.8, 1024, 128, "linear") == approx(0.1)  # shrinking works too
    assert scale_lr(1e-3, 64, 16, "sqrt") == approx(5e-4)  # k = 1/4
    # optional saturation: beyond max_batch_size the lr stops growing
    assert scale_lr(0.1, 128, 4096, "linear", max_batch_size=512) == approx(0.4)
    assert lr_multiplier(128, 256, "linear", max_batch_size=64) == 1.0
    with pytest.raises(ValueError):
        scale_lr(0.1, 128, 256, "quadratic")
    with pytest.raises(ValueError):
        scale_lr(0.1, 0, 256)


def test_granziol_rule_by_optimizer():
    p = [torch.nn.Parameter(torch.zeros(1))]
    assert rule_for_optimizer(torch.optim.SGD(p, lr=0.1)) == "linear"
    assert rule_for_optimizer(SGDW) == "linear"
    assert rule_for_optimizer(torch.optim.AdamW) == "sqrt"
    assert rule_for_optimizer(NAdamW(p)) == "sqrt"
    assert rule_for_optimizer("adam") == "sqrt"
    assert granziol_lr(0.1, 256, 1024, torch.optim.SGD) == approx(0.4)
    assert granziol_lr(1e-3, 256, 1024, torch.optim.Adam) == approx(2e-3)
    with pytest.raises(ValueError, match="no scaling rule"):
        rule_for_optimizer("mystery")


def test_rules_for_trainlab_optimizers():
    from trainlab.optim import DAdaptAdam, DoG, Lion, Prodigy

    p = [torch.nn.Parameter(torch.zeros(1))]
    assert rule_for_optimizer(Lion) == rule_for_optimizer(Lion(p, lr=1e-4)) == "sqrt"
    for lr_free in (DoG, Prodigy, DAdaptAdam):
        assert rule_for_optimizer(lr_free) == "none"
        assert rule_for_optimizer(lr_free(p)) == "none"
    # Lion at 1e-4 from batch 256 to 1024: doubled; Prodigy's multiplier 1 stays 1
    assert granziol_lr(1e-4, 256, 1024, Lion) == approx(2e-4)
    assert granziol_lr(1.0, 256, 1024, Prodigy) == 1.0


def test_hoffer_regime_adaptation():
    base = Regime(lr=0.1, batch_size=128, epochs=10, milestones=(5, 8))
    big = hoffer_regime(base, 1024)  # k = 8
    assert big.lr == approx(0.1 * math.sqrt(8))
    assert big.batch_size == 1024
    assert big.epochs == approx(80) and big.milestones == approx((40, 64))
    # the number of updates, and the update at which each milestone falls, stay the same
    assert big.steps(50_000) == base.steps(50_000) == round(10 * 50_000 / 128)
    assert big.milestone_steps(50_000) == base.milestone_steps(50_000)
    assert hoffer_regime(base, 128) == base


def test_scale_optimizer_lr_in_place():
    p = torch.nn.Parameter(torch.zeros(1))
    q = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.2}], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5)
    scale_optimizer_lr(opt, 4.0, sched)
    assert [g["lr"] for g in opt.param_groups] == approx([0.2, 0.4])
    assert [g["initial_lr"] for g in opt.param_groups] == approx([0.4, 0.8])
    opt.step()
    sched.step()  # the scheduler now works from the scaled base
    assert [g["lr"] for g in opt.param_groups] == approx([0.2, 0.4])
