"""The annealing law (Tissue et al., 2024): areas by hand, the fit recovers its constants, and a
fit on two schedules predicts a third."""

import numpy as np
import pytest

from trainlab.curves.annealing import AnnealingLaw, Curve, lr_areas
from trainlab.errors import TrainlabError


def test_areas_by_hand():
    # warm-up 1 -> 2 (not annealing), constant, then drops of 1 and 0.5
    s1, s2 = lr_areas([1.0, 2.0, 2.0, 1.0, 0.5], decay=0.5)
    assert s1.tolist() == [1.0, 3.0, 5.0, 6.0, 6.5]
    # m: 0, 0 (warm-up), 0, 1, 0.5 * 1 + 0.5 = 1.0  ->  S2: 0, 0, 0, 1, 2
    assert s2.tolist() == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_a_rewarming_counts_with_its_sign():
    _, s2 = lr_areas([2.0, 1.0, 2.0], decay=0.0)
    assert s2.tolist() == [0.0, 1.0, 0.0]  # m: 0, +1, -1


def schedule(kind, n=400, peak=1e-2, warmup=20):
    t = np.arange(n)
    base = np.minimum(1.0, (t + 1) / warmup)
    if kind == "constant":
        f = np.ones(n)
    elif kind == "cosine":
        f = 0.5 * (1 + np.cos(np.pi * t / n))
    elif kind == "wsd":
        f = np.where(t < 0.8 * n, 1.0, 1.0 - (t - 0.8 * n) / (0.2 * n))
    return peak * base * f


def test_fit_recovers_the_constants_and_predicts_another_schedule():
    truth = AnnealingLaw(L0=1.2, A=0.3, alpha=0.5, C=0.5)
    rng = np.random.default_rng(0)
    steps = np.arange(10, 401, 10)
    curves = []
    for kind in ("constant", "cosine"):
        lrs = schedule(kind)
        loss = truth.predict(lrs)[steps - 1] + rng.normal(0, 1e-3, len(steps))
        curves.append(Curve(steps, lrs, loss))
    law = AnnealingLaw.fit(curves)
    assert law.L0 == pytest.approx(1.2, abs=0.05)
    assert law.alpha == pytest.approx(0.5, abs=0.05)
    assert law.C == pytest.approx(0.5, rel=0.1)
    wsd = schedule("wsd")
    assert np.abs(law.predict(wsd) - truth.predict(wsd))[9:].max() < 0.01


def test_too_few_points_and_bad_curves_are_errors():
    with pytest.raises(TrainlabError, match="4 constants"):
        AnnealingLaw.fit([Curve([1, 2], [0.1, 0.1], [1.0, 0.9])])
    with pytest.raises(TrainlabError, match="steps must lie"):
        Curve([5], [0.1, 0.1], [1.0])
