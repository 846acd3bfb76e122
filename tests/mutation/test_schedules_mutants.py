"""Schedules: the cases that the formula tests of tests/test_schedules.py let mutants through
(defaults, budgets of 0 and 1 step, range checks at their bounds, the error messages, the median
filter of ``refined``). Every expected value is worked out by hand from the docstring's formula;
docs/mutation.md lists the mutants that no test can kill."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainlab import schedules as S

approx = pytest.approx


def test_budget_of_zero_or_one_step():
    # T = 0: the run is over, every schedule holds its final value; T = 1: step 0 is the start
    assert S.cosine(0, 0) == 0.0 and S.linear_decay(0, 0) == 0.0
    assert S.cosine(0, 1) == 1.0 and S.cosine(1, 1) == 0.0
    # warmup equal to the budget: the wrapped schedule sees 0 of 0 steps, i.e. its end
    assert S.linear_warmup(10, 10, 10, S.linear_decay) == 0.0
    assert S.linear_warmup(9, 10, 10, S.linear_decay) == 1.0


def test_cosine_final_fraction():
    # final + (1 - final) * (1 + cos(pi / 2)) / 2 = 0.2 + 0.8 * 0.5
    assert S.cosine(50, 100, final_fraction=0.2) == approx(0.6)
    assert S.cosine(100, 100, final_fraction=0.2) == approx(0.2)


def test_warmup_cosine_defaults_and_final_fraction():
    # no warmup by default: step 1 is already on the cosine of 100 steps
    assert S.warmup_cosine(1, 100) == approx(0.5 * (1 + math.cos(math.pi / 100)))
    assert S.warmup_cosine(100, 100) == 0.0  # decays to 0 by default
    # the final fraction reaches the cosine: 20 warmup + 80 steps down to 0.1
    assert S.warmup_cosine(100, 100, warmup_steps=20, final_fraction=0.1) == approx(0.1)
    assert S.warmup_cosine(60, 100, warmup_steps=20, final_fraction=0.1) == approx(0.55)


def test_one_cycle_defaults():
    # pct_start 0.45, div_factor 25, final_div_factor 1e4: lo = 0.04, end = 4e-6
    assert S.one_cycle(0, 100) == approx(0.04)
    assert S.one_cycle(45, 100) == approx(1.0)
    assert S.one_cycle(90, 100) == approx(0.04)
    assert S.one_cycle(100, 100) == approx(4e-6, rel=1e-9)


def test_one_cycle_pct_start_range_and_messages():
    for pct, three_phase in [(0.0, True), (0.5, True), (0.0, False), (1.0, False), (1.5, False)]:
        with pytest.raises(ValueError, match=rf"^pct_start={pct} out of range for three_phase="):
            S.one_cycle(0, 100, pct_start=pct, three_phase=three_phase)
    # two-phase allows any pct_start in (0, 1): 0.6 rises from lo = 0.1 to 1 at 60 %
    kw = dict(pct_start=0.6, div_factor=10.0, three_phase=False)
    assert S.one_cycle(0, 100, **kw) == approx(0.1)
    assert S.one_cycle(30, 100, **kw) == approx(0.1 + 0.9 * 0.5)
    assert S.one_cycle(60, 100, **kw) == approx(1.0)
    with pytest.raises(ValueError, match=r"^anneal must be 'linear' or 'cos', not 'exp'$"):
        S.one_cycle(10, 100, anneal="exp")


def test_inverse_sqrt_one_step_cooldown():
    # a cooldown of 1 step: (T - step) / 1 is 1 at step T - 1 and 0 at T
    assert S.inverse_sqrt(99, 100, cooldown_steps=1) == approx(0.1)  # 1 / sqrt(100)
    assert S.inverse_sqrt(100, 100, cooldown_steps=1) == 0.0
    assert S.inverse_sqrt(100, 100) == approx(1 / math.sqrt(101))  # without one: no cooldown


def test_rex_beta_range_and_message():
    for beta in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"^beta={beta} must be in \[0, 1\)$"):
            S.rex(0, 100, beta=beta)
    assert S.rex(50, 100, beta=0.9) == approx(0.5 / 0.55)  # (1 - z) / (1 - beta z)


def test_wsd_edges():
    # a cooldown longer than the budget starts before step 0: x = (0 - (10 - 20)) / 20 = 1/2
    assert S.wsd(0, 10, decay_steps=20, shape="linear") == approx(0.5)
    # decay_steps = 0: stable forever (no division by the empty cooldown)
    assert [S.wsd(s, 100, decay_steps=0) for s in (0, 99, 100, 150)] == [1.0] * 4
    # a one-step cooldown: x = 0 at step 99, x = 1 at step 100
    assert S.wsd(99, 100, decay_steps=1, shape="linear") == 1.0
    assert S.wsd(100, 100, decay_steps=1, shape="linear") == 0.0
    with pytest.raises(ValueError, match=r"^shape must be one of \['1-sqrt', 'cosine', 'linear'\]"):
        S.wsd(0, 100, shape="exp")


def test_infinite_defaults_and_edges():
    # no warmup, cooldown or anneal by default: the constant factor throughout
    assert [S.infinite(s, 100) for s in (0, 1, 99, 100, 150)] == [0.25] * 5
    # a one-step anneal: at T - 1 the exponent is 0 (c), at T it is 1 (m)
    assert S.infinite(99, 100, anneal_steps=1) == approx(0.25)
    assert S.infinite(100, 100, anneal_steps=1) == approx(0.01)
    # the phases may fill the budget exactly
    kw = dict(warmup_steps=50, cooldown_steps=30, anneal_steps=20)
    assert S.infinite(100, 100, **kw) == approx(0.01)
    # min_factor == constant_factor (a flat anneal) and constant_factor == 1 are allowed
    assert S.infinite(90, 100, anneal_steps=20, min_factor=0.25) == approx(0.25)
    assert S.infinite(50, 100, constant_factor=1.0) == 1.0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            dict(warmup_steps=50, cooldown_steps=40, anneal_steps=20),
            "warmup_steps + cooldown_steps + anneal_steps exceed total_steps",
        ),
        (dict(min_factor=0.0), "need 0 < min_factor <= constant_factor <= 1"),
        (dict(min_factor=0.3), "need 0 < min_factor <= constant_factor <= 1"),
        (dict(constant_factor=1.5), "need 0 < min_factor <= constant_factor <= 1"),
    ],
)
def test_infinite_rejects(kw, message):
    with pytest.raises(ValueError) as info:
        S.infinite(0, 100, **kw)
    assert str(info.value) == message


def test_rewarm_defaults():
    # start 0, peak 1, final 0.1: no warmup by default, so step 1 is on a 100-step cosine
    assert S.rewarm(0, 100) == 1.0
    assert S.rewarm(1, 100) == approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 100)))
    assert S.rewarm(100, 100) == approx(0.1)
    assert S.rewarm(0, 100, warmup_steps=10) == approx(0.1)  # 0 + (1 - 0) * 1 / 10


def _refined_flat(g):
    return S.refined(np.asarray(g, dtype=np.float64), smoothing=0.0)


def test_refined_default_window_is_three_for_forty_steps():
    # smoothing 0.05 of 40 steps: width 2 * (2 // 2) + 1 = 3. A lone spike goes, a spike two
    # steps wide stays (the median of [1, 100, 100] is 100)
    one = np.ones(40)
    one[20] = 100.0
    assert S.refined(one) == approx(_refined_flat(np.ones(40)))
    two = np.ones(40)
    two[20:22] = 100.0
    assert S.refined(two) == approx(_refined_flat(two))


def test_refined_window_five_for_smoothing_a_tenth():
    # 0.1 * 40 = 4: width 2 * (4 // 2) + 1 = 5: removes a spike two steps wide, keeps one three
    # steps wide (the window at its middle holds three 100s)
    two = np.ones(40)
    two[20:22] = 100.0
    assert S.refined(two, smoothing=0.1) == approx(_refined_flat(np.ones(40)))
    three = np.ones(40)
    three[20:23] = 100.0
    assert S.refined(three, smoothing=0.1) == approx(_refined_flat(three))


def test_refined_median_filter_edges():
    # the start repeats the first value ("nearest"): the window at 0 is [100, 100, 100, 1, 1],
    # so a spike on the first step stays
    first = np.ones(40)
    first[0] = 100.0
    assert S.refined(first, smoothing=0.1) == approx(_refined_flat(first))
    # the end is reflected: [..., 3, 2, 1] continues [2, 3], the window at the last step is
    # [3, 2, 1, 2, 3] (median 2), at the one before [3, 3, 2, 1, 2] (median 2)
    falling = [3.0] * 38 + [2.0, 1.0]
    assert S.refined(falling, smoothing=0.1) == approx(_refined_flat([3.0] * 38 + [2.0, 2.0]))


def test_refined_input_checks():
    assert S.refined([1.0, 2.0], smoothing=0.0).tolist() == [1.0, 0.0]  # two norms suffice
    # float32 input is computed in float64: the same multipliers to the last bit (1 / 3**2 is
    # not a float32, so weights taken in float32 would differ in the 8th digit)
    norms = np.array([3.0, 1.0, 3.0, 2.0], dtype=np.float32)
    assert np.array_equal(S.refined(norms, smoothing=0.0), _refined_flat(norms))
    for bad in ([1.0], [[1.0, 2.0], [3.0, 4.0]]):
        with pytest.raises(ValueError) as info:
            S.refined(bad)
        assert str(info.value) == "need a 1-D sequence of at least two gradient norms"
    for bad in ([1.0, 0.0, 1.0], [1.0, math.inf], [1.0, -2.0]):
        with pytest.raises(ValueError) as info:
            S.refined(bad)
        assert str(info.value) == "gradient norms must be finite and positive"


def test_array_schedule_with_a_budget_of_zero_or_one():
    vals = [1.0, 0.5, 0.25]
    assert S.array_schedule(0, 0, vals) == 0.25  # no budget: the last value
    assert S.array_schedule(0, 1, vals) == 1.0  # index 0 * 3 // 1
    assert S.array_schedule(1, 1, vals) == 0.25
