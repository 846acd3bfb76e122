"""Schedules against their formulas: values at the start, at phase boundaries and at the end
computed by hand, monotonicity where the paper implies it, and the LambdaLR adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab import schedules as S

approx = pytest.approx


def values(fn, total, steps=None, **params):
    steps = range(total + 1) if steps is None else steps
    return [fn(s, total, **params) for s in steps]


def non_increasing(xs) -> bool:
    return all(b <= a + 1e-12 for a, b in zip(xs, xs[1:], strict=False))


# -- existing schedules keep their signatures and values -------------------------------------


def test_existing_schedules_unchanged():
    assert S.constant(5, 10) == 1.0
    assert S.cosine(0, 100) == 1.0 and S.cosine(50, 100) == approx(0.5) and S.cosine(100, 100) == 0
    assert S.linear_warmup(0, 100, 10) == 0.1
    assert S.warmup_cosine(10, 110, warmup_steps=10) == 1.0


# -- step decay --------------------------------------------------------------------------------


def test_step_decay_values():
    f = lambda s: S.step_decay(s, 100, milestones=(0.5, 0.75), gamma=0.1)  # noqa: E731
    assert [f(0), f(49), f(50), f(74), f(75), f(100), f(1000)] == approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01, 0.01]
    )
    assert non_increasing(values(S.step_decay, 100))


# -- linear decay ------------------------------------------------------------------------------


def test_linear_decay_values():
    assert S.linear_decay(0, 100) == 1.0
    assert S.linear_decay(25, 100) == approx(0.75)
    assert S.linear_decay(100, 100) == 0.0
    assert S.linear_decay(150, 100) == 0.0  # holds its final value
    assert S.linear_decay(50, 100, final_fraction=0.1) == approx(0.1 + 0.9 * 0.5)
    assert non_increasing(values(S.linear_decay, 100))


# -- one-cycle ---------------------------------------------------------------------------------


def test_one_cycle_three_phase_linear():
    kw = dict(pct_start=0.3, div_factor=10.0, final_div_factor=100.0, three_phase=True)
    f = lambda s: S.one_cycle(s, 100, anneal="linear", **kw)  # noqa: E731
    lo, end = 0.1, 0.001
    assert f(0) == approx(lo)
    assert f(15) == approx(lo + (1 - lo) * 0.5)  # half way up
    assert f(30) == approx(1.0)  # the peak
    assert f(45) == approx(1 - (1 - lo) * 0.5)  # half way down
    assert f(60) == approx(lo)  # end of the cycle
    assert f(80) == approx(lo + (end - lo) * 0.5)  # half way through the annihilation
    assert f(100) == approx(end) and f(200) == approx(end)
    ys = values(S.one_cycle, 100, anneal="linear", **kw)
    assert ys.index(max(ys)) == 30
    assert all(b >= a for a, b in zip(ys[:31], ys[1:31], strict=False))  # rises
    assert non_increasing(ys[30:])  # then only falls


def test_one_cycle_two_phase_cos():
    kw = dict(pct_start=0.25, div_factor=10.0, final_div_factor=100.0, three_phase=False)
    f = lambda s: S.one_cycle(s, 100, anneal="cos", **kw)  # noqa: E731
    assert f(0) == approx(0.1)
    assert f(25) == approx(1.0)
    # p = 0.5: x = (0.5 - 0.25) / 0.75 = 1/3 along a half cosine from 1 to 0.001
    assert f(50) == approx(1 + (0.001 - 1) * 0.5 * (1 - math.cos(math.pi / 3)))
    assert f(100) == approx(0.001)
    with pytest.raises(ValueError):
        S.one_cycle(0, 100, pct_start=0.6, three_phase=True)


# -- inverse square root -----------------------------------------------------------------------


def test_inverse_sqrt_values_and_vaswani_form():
    f = lambda s, **kw: S.inverse_sqrt(s, 1000, warmup_steps=100, **kw)  # noqa: E731
    assert f(0) == approx(0.01)  # (0 + 1) / 100
    assert f(99) == approx(1.0)  # end of warmup: the peak
    assert f(399) == approx(0.5)  # s = 400: sqrt(100 / 400)
    assert f(9999) == approx(0.1)  # s = 10000: sqrt(100 / 10000)
    # Vaswani et al.: d^-0.5 * min(s^-0.5, s * w^-1.5), normalized by its peak w^-0.5
    w = 100
    for step in (0, 10, 99, 100, 500, 5000):
        s = step + 1
        assert f(step) == approx(min(s**-0.5, s * w**-1.5) * math.sqrt(w))
    # a timescale beyond the warmup holds the peak, then decays as 1 / sqrt(s / timescale)
    assert f(199, timescale=400) == approx(1.0)
    assert f(1599, timescale=400) == approx(0.5)
    # a linear cooldown over the last 200 steps of 1000
    assert f(899, cooldown_steps=200) == approx(math.sqrt(100 / 900) * 101 / 200)
    assert f(1000, cooldown_steps=200) == 0.0
    assert non_increasing(values(S.inverse_sqrt, 1000, range(99, 1001), warmup_steps=100))


# -- REX ---------------------------------------------------------------------------------------


def test_rex_values_match_paper_profile():
    assert S.rex(0, 100) == 1.0
    assert S.rex(50, 100) == approx(0.5 / 0.75)  # z = 1/2: (1/2) / (1/2 + 1/4)
    assert S.rex(75, 100) == approx(0.25 / 0.625)
    assert S.rex(100, 100) == 0.0 and S.rex(120, 100) == 0.0
    for step in range(101):
        z = step / 100
        assert S.rex(step, 100) == approx((1 - z) / (0.5 + 0.5 * (1 - z)))
    ys = values(S.rex, 100)
    assert non_increasing(ys)
    # REX stays above the linear schedule it reflects, and beta = 0 is linear decay
    assert all(r >= S.linear_decay(s, 100) - 1e-12 for s, r in enumerate(ys))
    assert values(S.rex, 100, beta=0.0) == approx(values(S.linear_decay, 100))


# -- warmup-stable-decay -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, at_85, at_90",
    [
        ("linear", 0.75, 0.5),
        ("cosine", 0.5 * (1 + math.cos(math.pi / 4)), 0.5),
        ("1-sqrt", 0.5, 1 - math.sqrt(0.5)),
    ],
)
def test_wsd_values(shape, at_85, at_90):
    f = lambda s: S.wsd(s, 100, warmup_steps=10, decay_steps=20, shape=shape)  # noqa: E731
    assert f(0) == approx(0.1)
    assert f(9) == approx(1.0)
    assert all(f(s) == 1.0 for s in range(10, 81))  # stable phase, cooldown starts at x = 0
    assert f(85) == approx(at_85)  # x = 1/4
    assert f(90) == approx(at_90)  # x = 1/2
    assert f(100) == approx(0.0) and f(130) == approx(0.0)
    assert non_increasing([f(s) for s in range(9, 101)])


def test_wsd_default_cooldown_is_a_fifth_and_final_fraction():
    assert S.wsd(79, 100) == 1.0 and S.wsd(90, 100, shape="linear") == approx(0.5)
    assert S.wsd(90, 100, shape="linear", final_fraction=0.2) == approx(0.2 + 0.8 * 0.5)
    with pytest.raises(ValueError):
        S.wsd(0, 100, shape="exp")


# -- infinite ----------------------------------------------------------------------------------


def test_infinite_values():
    kw = dict(warmup_steps=10, cooldown_steps=20, anneal_steps=20, constant_factor=0.25)
    f = lambda s: S.infinite(s, 100, min_factor=0.01, **kw)  # noqa: E731
    assert f(0) == approx(0.1)
    assert f(9) == approx(1.0)
    assert f(10) == approx(1.0)  # cooldown starts at the peak
    assert f(20) == approx(0.25 + 0.75 * 0.5)  # half way down the cosine
    assert f(30) == approx(0.25) and f(79) == approx(0.25)  # constant phase
    assert f(80) == approx(0.25)  # annealing starts at the constant
    assert f(90) == approx(0.25 * (0.01 / 0.25) ** 0.5)  # = 0.05
    assert f(100) == approx(0.01) and f(150) == approx(0.01)
    assert non_increasing([f(s) for s in range(9, 101)])
    with pytest.raises(ValueError):
        S.infinite(0, 100, warmup_steps=50, cooldown_steps=40, anneal_steps=20)


# -- re-warming --------------------------------------------------------------------------------


def test_rewarm_values():
    kw = dict(warmup_steps=10, start_factor=0.1, peak_factor=2.0, final_fraction=0.1)
    f = lambda s: S.rewarm(s, 110, **kw)  # noqa: E731
    assert f(0) == approx(0.1 + 1.9 * 0.1)
    assert f(9) == approx(2.0)  # the new maximum
    assert f(10) == approx(2.0)
    assert f(60) == approx(2.0 * (0.1 + 0.9 * 0.5))  # half way through the cosine
    assert f(110) == approx(0.2) and f(500) == approx(0.2)  # a tenth of the new maximum
    ys = [f(s) for s in range(111)]
    assert all(b >= a for a, b in zip(ys[:10], ys[1:10], strict=False))
    assert non_increasing(ys[9:])


# -- refined schedules -------------------------------------------------------------------------


def test_refined_by_hand():
    # g = [1, 2, 1, 0.5] -> w = g^-2 = [1, .25, 1, 4]; tails = [5.25, 5, 4, 0]
    f = S.refined([1.0, 2.0, 1.0, 0.5], smoothing=0.0)
    raw = np.array([1 * 5.25, 0.25 * 5, 1 * 4, 0.0])
    assert f == approx(raw / raw.max())


def test_refined_constant_norms_is_linear_decay_and_smoothing_removes_spikes():
    T = 50
    f = S.refined(np.full(T, 3.0))
    assert f == approx([(T - 1 - t) / (T - 1) for t in range(T)])
    spiky = np.ones(T)
    spiky[[10, 30]] = 100.0  # isolated spikes: a median filter of width 5 removes them
    assert S.refined(spiky, smoothing=0.1) == approx(f)
    # growing gradient norms give a warmup-free fast final decay; shrinking ones, a warmup
    rising = S.refined(np.linspace(1, 2, T), smoothing=0.0)
    falling = S.refined(np.linspace(2, 1, T), smoothing=0.0)
    assert rising[0] == 1.0  # peak at the start
    assert int(np.argmax(falling)) > 0  # an automatic warmup
    with pytest.raises(ValueError):
        S.refined([1.0, 0.0, 1.0])


def test_array_schedule():
    vals = [1.0, 0.5, 0.25, 0.125]
    assert [S.array_schedule(s, 4, vals) for s in range(6)] == [1, 0.5, 0.25, 0.125, 0.125, 0.125]
    assert [S.array_schedule(s, 8, vals) for s in (0, 1, 2, 3, 7)] == [1, 1, 0.5, 0.5, 0.125]


# -- the LambdaLR adapter ----------------------------------------------------------------------


ALL = [
    (S.step_decay, {}),
    (S.linear_decay, {"final_fraction": 0.05}),
    (S.one_cycle, {"pct_start": 0.3}),
    (S.one_cycle, {"pct_start": 0.3, "three_phase": False, "anneal": "cos"}),
    (S.inverse_sqrt, {"warmup_steps": 5, "cooldown_steps": 10}),
    (S.rex, {}),
    (S.wsd, {"warmup_steps": 5, "decay_steps": 10, "shape": "cosine"}),
    (S.infinite, {"warmup_steps": 5, "cooldown_steps": 10, "anneal_steps": 10}),
    (S.rewarm, {"warmup_steps": 5, "start_factor": 0.1}),
    (S.array_schedule, {"values": S.refined(np.linspace(2, 1, 40))}),
]


@pytest.mark.parametrize("fn, params", ALL, ids=lambda x: getattr(x, "__name__", ""))
def test_lambda_lr_gives_the_same_lrs(fn, params):
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([param], lr=0.5)
    sched = S.lambda_lr(opt, fn, total_steps=40, **params)
    for step in range(45):
        assert opt.param_groups[0]["lr"] == approx(0.5 * fn(step, 40, **params))
        opt.step()
        sched.step()


@pytest.mark.parametrize("fn, params", ALL, ids=lambda x: getattr(x, "__name__", ""))
def test_schedules_hold_their_final_value(fn, params):
    end = fn(40, 40, **params)
    assert [fn(s, 40, **params) for s in (41, 60, 400)] == approx([end] * 3)


# -- mutants that earlier tests let through ----------------------------------------------------


@pytest.mark.parametrize(
    ("after", "mid", "params"),
    [
        (S.linear_decay, 0.5, {}),
        (S.cosine, 0.5, {}),
        (S.rex, 0.5 / 0.75, {}),
        (S.step_decay, 0.1, {"milestones": (0.5,), "gamma": 0.1}),
    ],
)
def test_warmup_then_schedule_ends_at_total_not_total_plus_warmup(after, mid, params):
    # 20 warmup steps + 80 more: the wrapped schedule spans 80, its midpoint is step 60
    f = lambda s: S.linear_warmup(s, 100, 20, after, **params)  # noqa: E731
    assert f(19) == 1.0 and f(20) == 1.0
    assert f(60) == approx(mid)
    assert f(100) == approx(after(80, 80, **params))
    if after is not S.step_decay:
        assert f(100) == 0.0 and f(99) > 0.0


def test_inverse_sqrt_without_warmup_starts_at_one():
    # tau = max(timescale, warmup, 1) = 1: f = 1 / sqrt(step + 1)
    assert [S.inverse_sqrt(s, 100) for s in (0, 3, 8, 99)] == approx([1.0, 0.5, 1 / 3, 0.1])
    # a timescale of 4 without warmup: 1 until s = 4, then sqrt(4 / s)
    assert [S.inverse_sqrt(s, 100, timescale=4) for s in (0, 3, 15)] == approx([1.0, 1.0, 0.5])


def test_refined_pads_the_end_as_the_authors_do():
    # a spike on the last step: a median filter with edge repetition keeps it (the window at
    # the end is [1, 1, 100, 100, 100]); reflecting the end first removes it
    T = 50
    spiky_end = np.ones(T)
    spiky_end[-1] = 100.0
    assert S.refined(spiky_end, smoothing=0.1) == approx(S.refined(np.ones(T)))


# -- the schedule parts of composed recipes -----------------------------------------------------


def _parts():
    import trainlab.algorithms.schedule_parts  # noqa: F401  (registers the parts)
    from trainlab.algorithms.recipe import SCHEDULES

    return SCHEDULES


def test_schedule_part_names_are_the_schedule_function_names():
    parts = _parts()
    names = {"constant", "step_decay", "linear_decay", "one_cycle", "inverse_sqrt", "rex", "wsd"}
    names |= {"infinite"}
    assert names <= set(parts)
    assert all(callable(getattr(S, name)) for name in names)
    assert not {"onecycle", "rsqrt", "step", "linear"} & set(parts)  # no aliases


def _factor(name, step, total=200, **hp):
    part = _parts()[name]
    return part.factor(step, total, {**part.space.defaults(), **hp})


def test_schedule_parts_at_hand_computed_points():
    # total 200, warmup 5 % = 10 steps: (step + 1) / 10, then the shape over the other 190
    assert _factor("constant", 4) == approx(0.5) and _factor("constant", 150) == 1.0
    assert _factor("linear_decay", 9) == 1.0
    assert _factor("linear_decay", 105) == approx(0.5)  # 95 of 190
    assert _factor("linear_decay", 200) == 0.0
    # step decay: gamma 0.1 at 50 % and 75 % of the 190 post-warmup steps (105, 152.5)
    assert [_factor("step_decay", s) for s in (104, 105, 152, 153)] == approx([1.0, 0.1, 0.1, 0.01])
    assert _factor("rex", 105) == approx(0.5 / 0.75)
    # inverse sqrt: warmup 10, then sqrt(10 / (step + 1))
    assert _factor("inverse_sqrt", 39) == approx(0.5)
    assert _factor("inverse_sqrt", 199, cooldown_fraction=0.1) == approx(math.sqrt(10 / 200) / 20)
    # one cycle (pct_start 0.45, div_factor 10): lo = 0.1 at 0, the peak at 90, lo at 180
    assert _factor("one_cycle", 0) == approx(0.1) and _factor("one_cycle", 90) == approx(1.0)
    assert _factor("one_cycle", 180) == approx(0.1)
    # wsd: stable to 160 (decay 20 % = 40 steps), 1-sqrt cooldown: x = 1/4 at 170
    assert _factor("wsd", 159) == 1.0 and _factor("wsd", 170) == approx(0.5)
    # infinite: warmup 10, cosine cooldown 40 to 0.3, constant, anneal 40 from 160 to 1 %
    assert _factor("infinite", 30) == approx(0.3 + 0.7 * 0.5)
    assert _factor("infinite", 100) == approx(0.3)
    assert _factor("infinite", 180) == approx(0.3 * 0.01**0.5)
