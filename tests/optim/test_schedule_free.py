"""Schedule-Free AdamW and SGD (Defazio et al., 2024) against the authors' package
``schedulefree`` (its ``AdamWScheduleFree`` and ``SGDScheduleFree``, the non-"Reference"
classes) step for step, train and eval points both, and against the paper's three sequences
written out with ``x`` stored explicitly."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import ScheduleFreeAdamW, ScheduleFreeSGD

schedulefree = pytest.importorskip("schedulefree")

SHAPES = [(3, 4), (4,), (2, 3)]
STEPS = 9
EVAL_AT = {1, 3, 4, 8}  # steps after which both go to eval mode and back


def _start_and_grads():
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
             for _ in range(STEPS)]  # fmt: skip
    return start, grads


def _groups(params, wd):
    # two groups as the recipes build them: the first decays, the second does not
    return [{"params": params[:2], "weight_decay": wd}, {"params": params[2:], "weight_decay": 0.0}]


CASES = {
    "adamw": (
        lambda g, **kw: ScheduleFreeAdamW(g, **kw),
        lambda g, **kw: schedulefree.AdamWScheduleFree(g, **kw),
        dict(lr=0.05, betas=(0.9, 0.99), eps=1e-8),
    ),
    "sgd": (
        lambda g, **kw: ScheduleFreeSGD(g, **kw),
        lambda g, **kw: schedulefree.SGDScheduleFree(g, **kw),
        dict(lr=0.3, momentum=0.85),
    ),
}


@pytest.mark.parametrize("variant", list(CASES))
@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize(
    "extra",
    [
        dict(warmup_steps=4),  # warmup longer than the first eval: c changes every step
        dict(warmup_steps=3, r=1.0, weight_lr_power=1.0),
        dict(warmup_steps=0),
    ],
)
def test_matches_the_authors_package_step_for_step(variant, foreach, extra):
    ours_cls, theirs_cls, kwargs = CASES[variant]
    start, grads = _start_and_grads()
    ours_p = [t.clone().requires_grad_() for t in start]
    theirs_p = [t.clone().requires_grad_() for t in start]
    ours = ours_cls(_groups(ours_p, 0.1), foreach=foreach, **kwargs, **extra)
    theirs = theirs_cls(_groups(theirs_p, 0.1), foreach=foreach, **kwargs, **extra)
    theirs.train()  # the package starts in eval mode; ours in train mode
    evals = 0
    for k, step in enumerate(grads):
        for a, b, g in zip(ours_p, theirs_p, step, strict=True):
            a.grad, b.grad = g.clone(), g.clone()  # the package divides its grads in place
        ours.step()
        theirs.step()
        for a, b in zip(ours_p, theirs_p, strict=True):  # y
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(ours.state[a]["z"], theirs.state[b]["z"], rtol=1e-12,
                                       atol=1e-14)  # fmt: skip
        assert ours.param_groups[0]["scheduled_lr"] == pytest.approx(
            theirs.param_groups[0]["scheduled_lr"], rel=1e-15
        )
        if k in EVAL_AT:
            y = [a.detach().clone() for a in ours_p]
            ours.eval()
            theirs.eval()
            for a, b, y0 in zip(ours_p, theirs_p, y, strict=True):  # x
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
                assert not torch.allclose(a, y0) or k < 1  # x differs from y after step 2
            ours.train()
            theirs.train()
            for a, b, y0 in zip(ours_p, theirs_p, y, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
                torch.testing.assert_close(a.detach(), y0, rtol=1e-12, atol=1e-14)
            evals += 1
    assert evals == len(EVAL_AT)
    if variant == "adamw":
        for a, b in zip(ours_p, theirs_p, strict=True):
            torch.testing.assert_close(
                ours.state[a]["exp_avg_sq"], theirs.state[b]["exp_avg_sq"], rtol=1e-12, atol=0
            )


def _paper(start, grads, *, lr, beta, wd, warmup, adam=None, r=0.0, power=2.0, eps=1e-8):
    """The paper's iteration with all three sequences stored (one tensor), scalar loop."""
    x = start.clone()
    z = start.clone()
    y = start.clone()
    v = torch.zeros_like(start)
    weight_sum, lr_max = 0.0, -1.0
    xs = []
    for t, g in enumerate(grads):
        gamma = lr * min(1.0, (t + 1) / warmup) if warmup else lr
        lr_max = max(lr_max, gamma)
        w = (t + 1) ** r * lr_max**power
        weight_sum += w
        c = w / weight_sum
        if adam is None:
            d = g + wd * y
        else:
            v = adam * v + (1 - adam) * g * g
            d = g / ((v / (1 - adam ** (t + 1))).sqrt() + eps) + wd * y
        z = z - gamma * d
        x = (1 - c) * x + c * z
        y = (1 - beta) * z + beta * x
        xs.append(x.clone())
    return y, xs


@pytest.mark.parametrize("adam", [None, 0.95])
def test_matches_the_papers_three_sequences(adam):
    gen = torch.Generator().manual_seed(5)
    start = torch.randn(6, generator=gen, dtype=torch.float64)
    grads = [torch.randn(6, generator=gen, dtype=torch.float64) for _ in range(7)]
    lr, beta, wd, warmup = 0.2, 0.8, 0.3, 3
    expected_y, expected_x = _paper(start, grads, lr=lr, beta=beta, wd=wd, warmup=warmup,
                                    adam=adam)  # fmt: skip
    p = start.clone().requires_grad_()
    if adam is None:
        opt = ScheduleFreeSGD([p], lr=lr, momentum=beta, weight_decay=wd, warmup_steps=warmup)
    else:
        opt = ScheduleFreeAdamW(
            [p], lr=lr, betas=(beta, adam), weight_decay=wd, warmup_steps=warmup
        )
    for g, x in zip(grads, expected_x, strict=True):
        p.grad = g.clone()
        opt.step()
        opt.eval()
        torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-13)
        opt.train()
    torch.testing.assert_close(p.detach(), expected_y, rtol=1e-12, atol=1e-13)


def test_first_steps_by_hand():
    # SGD, lr 1, beta 0.5, warmup 2: gamma = 0.5, 1, 1; weights 0.25, 1, 1 -> c = 1, 0.8, 1/2.25
    p = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    opt = ScheduleFreeSGD([p], lr=1.0, momentum=0.5, warmup_steps=2)
    p.grad = torch.tensor([1.0], dtype=torch.float64)
    opt.step()  # z = -0.5, x = z (c = 1), y = 0.5 z + 0.5 x = -0.5
    assert p.item() == pytest.approx(-0.5)
    p.grad = torch.tensor([2.0], dtype=torch.float64)
    opt.step()  # z = -0.5 - 2 = -2.5, x = 0.2 (-0.5) + 0.8 (-2.5) = -2.1, y = -2.3
    assert p.item() == pytest.approx(-2.3)
    assert opt.state[p]["z"].item() == pytest.approx(-2.5)
    opt.eval()
    assert p.item() == pytest.approx(-2.1)
    assert opt.param_groups[0]["weight_sum"] == pytest.approx(1.25)


def test_scheduler_warmup_equals_warmup_steps():
    start, grads = _start_and_grads()
    a = [t.clone().requires_grad_() for t in start]
    b = [t.clone().requires_grad_() for t in start]
    own = ScheduleFreeAdamW(_groups(a, 0.1), lr=0.05, warmup_steps=4)
    outside = ScheduleFreeAdamW(_groups(b, 0.1), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(outside, lambda k: min(1.0, (k + 1) / 4))
    for step in grads:
        for pa, pb, g in zip(a, b, step, strict=True):
            pa.grad, pb.grad = g.clone(), g.clone()
        own.step()
        outside.step()
        sched.step()
    for pa, pb in zip(a, b, strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cls", [ScheduleFreeAdamW, ScheduleFreeSGD])
def test_step_in_eval_mode_raises_and_switches_are_idempotent(cls):
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = cls([p], lr=0.1)
    opt.eval()  # before any step: no state, nothing moves
    assert torch.equal(p.detach(), torch.ones(3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="eval mode; call optimizer.train"):
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
    opt.train()
    for g in ([1.0, -2.0, 0.5], [0.3, 0.3, -1.0]):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    y = p.detach().clone()
    opt.eval()
    x = p.detach().clone()
    opt.eval()  # twice: still x
    assert torch.equal(p.detach(), x) and not torch.allclose(x, y)
    opt.train()
    opt.train()
    torch.testing.assert_close(p.detach(), y, rtol=1e-14, atol=1e-15)


def test_no_decay_without_weight_decay_and_lr_zero_keeps_params():
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = ScheduleFreeSGD([p], lr=0.0, weight_decay=0.5)
    p.grad = torch.ones(2, dtype=torch.float64)
    opt.step()
    opt.eval()
    assert torch.equal(p.detach(), torch.ones(2, dtype=torch.float64))
    assert opt.param_groups[0]["weight_sum"] == 0.0


@pytest.mark.parametrize("cls", [ScheduleFreeAdamW, ScheduleFreeSGD])
def test_state_dict_round_trip_is_bitwise(check_roundtrip, cls):
    check_roundtrip(lambda groups: cls(groups, lr=1e-2, weight_decay=0.1, warmup_steps=3))


@pytest.mark.parametrize("cls", [ScheduleFreeAdamW, ScheduleFreeSGD])
def test_no_host_sync(run_without_sync, cls):
    run_without_sync(lambda groups: cls(groups, lr=1e-3, weight_decay=0.1, warmup_steps=2))


def test_group_lr_is_its_own(check_group_lr_is_its_own):
    grads = [[0.1, -0.2, 0.3], [0.5, 0.1, -0.1], [-0.2, 0.2, 0.4]]
    check_group_lr_is_its_own(lambda groups, lr: ScheduleFreeSGD(groups, lr=lr), grads)


def test_sgd_lr_scales_the_step(check_lr_scales_the_step):
    # SGD without decay is linear in lr: every sequence scales with it
    check_lr_scales_the_step(lambda g: ScheduleFreeSGD(g, lr=1.0), [[1.0, -2.0, 0.5]] * 3)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: ScheduleFreeAdamW(g, lr=0.05, warmup_steps=20),
        lambda g: ScheduleFreeSGD(g, lr=0.2, warmup_steps=20),
    ],
)
def test_minimizes_a_regression_without_a_schedule(make):
    # evaluated at y (the parameters while training), with a constant lr: no schedule needed
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(64, 5, generator=gen, dtype=torch.float64)
    b = a @ torch.randn(5, generator=gen, dtype=torch.float64) + 1.0
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = make([w])
    for _ in range(600):
        opt.zero_grad()
        (a @ w - b).square().mean().backward()
        opt.step()
    opt.eval()
    solution = torch.linalg.lstsq(a, b[:, None]).solution.squeeze(1)
    with torch.no_grad():
        gap = (a @ w - b).square().mean() - (a @ solution - b).square().mean()
    assert gap < 1e-3 * b.square().mean()
    assert math.isfinite(gap.item())
