"""Fixed-point quantization (rounding, saturation, stochastic rounding), the straight-through
gradient and AdaPT's switching conditions, on values worked out by hand."""

import math

import pytest
import torch

from trainlab.errors import TrainlabError
from trainlab.methods.precision import (
    PrecisionError,
    adapt_lookback,
    adapt_resolution,
    dynamic_fraction_length,
    fake_quantize,
    fixed_point_quantize,
    fixed_point_range,
    gradient_diversity,
    histogram_kl,
    push_down,
    push_up,
)


def test_range_of_a_format():
    # (wl=4, fl=2): integers -8..7 times 0.25
    assert fixed_point_range(4, 2) == (-2.0, 1.75)
    assert fixed_point_range(8, 4) == (-8.0, 7.9375)
    assert fixed_point_range(4, 4) == (-0.5, 0.4375)  # fl = wl: a range below 1


def test_nearest_rounding_and_saturation():
    x = torch.tensor([0.3, 0.38, -0.3, 0.125, 0.375, 9.0, -9.0, 1.74])
    # step 0.25: 0.3 -> 0.25, 0.38 -> 0.5, ties to even (0.5 -> 0, 1.5 -> 2 steps),
    # saturation at 1.75 and -2
    expected = torch.tensor([0.25, 0.5, -0.25, 0.0, 0.5, 1.75, -2.0, 1.75])
    assert torch.equal(fixed_point_quantize(x, 4, 2), expected)


def test_negative_fraction_length_is_a_coarse_step():
    # fl = -1: step 2, range [-16, 14] at wl = 4
    x = torch.tensor([2.9, 3.1, 100.0])
    assert torch.equal(fixed_point_quantize(x, 4, -1), torch.tensor([2.0, 4.0, 14.0]))


def test_stochastic_rounding_is_unbiased_and_stays_on_the_two_neighbours():
    g = torch.Generator().manual_seed(0)
    x = torch.full((20000,), 0.1)
    q = fixed_point_quantize(x, 4, 0, rounding="stochastic", generator=g)
    assert set(q.unique().tolist()) == {0.0, 1.0}
    # mean 0.1, standard error sqrt(0.09 / 20000) = 0.0021
    assert abs(q.mean().item() - 0.1) < 0.01


def test_straight_through_gradient_is_the_identity_inside_the_range_and_zero_outside():
    x = torch.tensor([-3.0, -1.9, 0.3, 1.7, 2.5], requires_grad=True)
    y = fake_quantize(x, 4, 2)  # range [-2, 1.75]
    assert torch.equal(y.detach(), torch.tensor([-2.0, -2.0, 0.25, 1.75, 1.75]))
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 4.0, 0.0]))


@pytest.mark.parametrize("wl", [1, 0, -3, 33, 2.5])
def test_a_word_length_outside_2_to_32_bits_is_a_trainlab_error(wl):
    with pytest.raises(PrecisionError, match="word length"):
        fixed_point_quantize(torch.ones(2), wl, 0)
    assert issubclass(PrecisionError, TrainlabError)


def test_dynamic_fraction_length_fits_the_largest_magnitude():
    # wl 8 holds 127 steps: max 3 fits at fl 5 (127/32 = 3.97) but not at 6 (1.98)
    assert dynamic_fraction_length(torch.tensor([0.1, -3.0]), 8) == 5
    # max 4: log2 gives fl 5, but 127/32 < 4, so one step coarser
    assert dynamic_fraction_length(torch.tensor([4.0]), 8) == 4
    assert dynamic_fraction_length(torch.zeros(3), 8) == 7
    g = torch.tensor([1e-3, -2.5e-4])
    fl = dynamic_fraction_length(g, 12)
    assert torch.equal(fixed_point_quantize(g, 12, fl), fixed_point_quantize(g, 32, fl))


# -- the switching conditions -----------------------------------------------------------------


def test_kl_of_histograms_by_hand():
    w = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert histogram_kl(w, w.clone(), 2) == 0.0
    # 2 bins over [0, 1]: P = (1/2, 1/2), Q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2
    q = torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert histogram_kl(w, q, 2) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)


def test_kl_counts_an_emptied_bin_as_half_an_element():
    w = torch.tensor([0.0, 0.0, 1.0, 1.0])
    w_hat = torch.tensor([0.0, 0.0, 0.0, 0.0])
    # the range comes from both tensors, [0, 1]; P = (1/2, 1/2), Q = (1, 0 -> 0.5 / 4)
    expected = 0.5 * math.log(0.5 / 1.0) + 0.5 * math.log(0.5 / 0.125)
    assert histogram_kl(w, w_hat, 2) == pytest.approx(expected, rel=1e-6)


def test_push_down_finds_the_lowest_lossless_format_of_grid_values():
    # 16 values k / 8 in [-1, 0.875]: exact from fl = 3 on; the range needs wl - fl - 1 >= 0
    w = torch.arange(-8, 8, dtype=torch.float32) / 8
    wl, fl, evaluations = push_down(w, resolution=16, tolerance=0.0)
    assert (wl, fl) == (4, 3)
    assert evaluations <= 2 * (1 + math.ceil(math.log2(32)))  # bisection, not a scan
    assert histogram_kl(w, fixed_point_quantize(w, 4, 3), 16) == 0.0
    assert histogram_kl(w, fixed_point_quantize(w, 4, 2), 16) > 0.0  # one bit less merges
    assert histogram_kl(w, fixed_point_quantize(w, 3, 3), 16) > 0.0  # and saturates


def test_push_down_needs_more_fraction_bits_for_a_finer_distribution():
    g = torch.Generator().manual_seed(0)
    wide = torch.randn(5000, generator=g)
    narrow = wide / 64  # the same shape, 6 binary orders smaller
    _, fl_wide, _ = push_down(wide, 50, 0.01)
    _, fl_narrow, _ = push_down(narrow, 50, 0.01)
    assert fl_narrow == fl_wide + 6


def test_gradient_diversity():
    e = torch.eye(4)
    assert gradient_diversity(float(e.sum(0).norm()), 4) == pytest.approx(2.0)  # orthogonal
    assert gradient_diversity(float((4 * e[0]).norm()), 4) == 1.0  # identical
    assert gradient_diversity(0.0, 4) == math.inf  # cancelled out


@pytest.mark.parametrize(
    "diversity, expected",
    [
        (1.0, (8, 4)),  # d = ln 1 - 1 < 0: s = 1; fl 3 -> 4, wl 5, buffer: wl >= 4 + 4
        (math.e**2.5, (8, 4)),  # d = 1.5: s1 = ceil(0.44) = 1
        (math.e**1.6, (10, 6)),  # d = 0.6: s1 = ceil(2.78) = 3, s2 = ceil(11.52) - 3 = 9: s = 3
        (math.e**1.2, (7, 3)),  # d = 0.2: s2 = ceil(1.28) - 3 < 0 -> 0: no push up
        (math.inf, (8, 4)),
    ],
)
def test_push_up_by_hand(diversity, expected):
    assert push_up(4, 3, diversity, results_buffer=4) == expected


def test_lookback_and_resolution_adapt_within_their_bounds():
    # consistent gradients: towards the maximum, smoothed by the momentum 0.33
    assert adapt_lookback(25, 1.0, 25, 100, 0.33) == math.ceil(0.33 * 100 + 0.67 * 25)
    # diverse gradients: 100 / 10 = 10 clipped up to 25
    assert adapt_lookback(25, 10.0, 25, 100, 0.33) == 25
    assert adapt_lookback(40, 2.0, 25, 100, 1.0) == 50
    assert adapt_resolution(50, 100, 25, 100, 50, 150) == 51
    assert adapt_resolution(50, 25, 25, 100, 50, 150) == 50  # clipped at the minimum
    assert adapt_resolution(80, 25, 25, 100, 50, 150) == 79
    assert adapt_resolution(80, 60, 25, 100, 50, 150) == 80
