"""AdaPT's precision-switching conditions as pure functions (Kummer et al., "Adaptive Precision
Training (AdaPT): A dynamic fixed point quantized training approach for DNNs" (SDM 2023,
arXiv:2107.13490)); :class:`trainlab.methods.precision.AdaPT` applies them per layer.

* **No information loss (PushDown).** The empirical distribution of a layer's weights, a
  histogram of ``resolution`` bins, must not change under quantization: the format is the
  lowest one whose Kullback-Leibler divergence ``D_KL(P || Q)`` between the histograms of the
  float weights ``P`` and the quantized weights ``Q`` stays within ``tolerance``. First the
  fraction length (the step), found without saturation, then the word length (the range) at
  that fraction length; each by bisection over the integers, as in the paper.
* **No vanishing gradients (PushUp).** The gradient diversity of the last ``lookback``
  gradients, ``Delta = sum_i ||g_i|| / ||sum_i g_i||`` with every ``g_i`` scaled to unit norm
  (so ``Delta = lookback / ||sum_i g_i||`` >= 1; Yin et al., "Gradient Diversity" (AISTATS
  2018)), adds ``s`` fraction bits: with ``d = ln(Delta) - 1``, ``s = 1`` when ``d <= 0``, else
  ``s = min(max(ceil(1 / d^2), 1), max(min(ceil(32 d^2), 32) - fl, 0))``; then ``wl <-
  max(wl, fl) + 1`` and a buffer of ``results_buffer`` integer bits:
  ``fl <= 32 - buffer``, ``wl >= fl + buffer`` (the rule of the authors' implementation,
  ``optimizers/msgd_fp.py``: the paper states the condition, the code the exact step).
* **Lookback and resolution** adapt between ``[min, max]``: ``lookback <- ceil(m lb_new +
  (1 - m) lookback)`` with ``lb_new = clip(ceil(max_lookback / Delta), min, max)`` and momentum
  ``m``; the resolution grows by one bin while the lookback sits at its maximum and shrinks by
  one at its minimum.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from trainlab.methods.precision.fixed_point import MAX_WORD_LENGTH, fixed_point_quantize


def histogram_kl(w: Tensor, w_hat: Tensor, resolution: int) -> float:
    """``D_KL(P || Q)`` in nats between the ``resolution``-bin histograms of ``w`` (``P``) and
    of its quantized copy ``w_hat`` (``Q``), both over the range spanned by the two. An empty
    bin of ``Q`` where ``P`` has mass counts as half an element (so a lost element costs a
    finite, large amount instead of infinity). 0 when both histograms are equal."""
    w, w_hat = w.detach().float().flatten(), w_hat.detach().float().flatten()
    lo = float(torch.minimum(w.min(), w_hat.min()))
    hi = float(torch.maximum(w.max(), w_hat.max()))
    if hi <= lo:  # a constant tensor left unchanged
        return 0.0
    p = torch.histc(w, bins=resolution, min=lo, max=hi)
    q = torch.histc(w_hat, bins=resolution, min=lo, max=hi)
    n = float(p.sum())
    mask = p > 0
    p, q = p[mask] / n, q[mask].clamp(min=0.5) / n
    return float((p * (p / q).log()).sum().clamp(min=0.0))


def _lowest(ok, lo: int, hi: int) -> tuple[int, int]:
    """The smallest integer in ``[lo, hi]`` for which ``ok`` holds, by bisection (``ok`` is
    assumed monotone: false then true); ``hi`` when even ``hi`` fails. Returns it and the
    number of ``ok`` evaluations."""
    evaluations = 1
    if not ok(hi):
        return hi, evaluations
    while lo < hi:
        mid = (lo + hi) // 2
        evaluations += 1
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo, evaluations


def push_down(
    w: Tensor, resolution: int, tolerance: float, min_fl: int = 0, max_fl: int = 24
) -> tuple[int, int, int]:
    """``(wl, fl, evaluations)``: the lowest format that quantizes ``w`` (nearest rounding)
    without information loss, i.e. ``histogram_kl <= tolerance``. The fraction length is
    searched in ``[min_fl, max_fl]`` at the widest word (no saturation), then the word length
    in ``[2, 32]`` at that fraction length (saturation)."""

    def loss(wl: int, fl: int) -> float:
        return histogram_kl(w, fixed_point_quantize(w, wl, fl), resolution)

    fl, n1 = _lowest(lambda f: loss(MAX_WORD_LENGTH, f) <= tolerance, min_fl, max_fl)
    wl, n2 = _lowest(lambda b: loss(b, fl) <= tolerance, 2, MAX_WORD_LENGTH)
    return wl, fl, n1 + n2


def gradient_diversity(unit_sum_norm: float, count: int) -> float:
    """``Delta = count / ||sum of count unit-norm gradients||`` (>= 1; infinite when they
    cancel exactly)."""
    return math.inf if unit_sum_norm <= 0.0 else count / unit_sum_norm


def push_up(wl: int, fl: int, diversity: float, results_buffer: int) -> tuple[int, int]:
    """``(wl, fl)`` after PushUp: ``s`` more fraction bits from the gradient diversity (see the
    module docstring), a sign bit above the fraction and ``results_buffer`` integer bits."""
    s = 1
    if 0.0 < diversity < math.inf:
        d = math.log(diversity) - 1.0
        if d > 0.0:
            s1 = max(math.ceil(1.0 / (d * d)), 1)
            s2 = max(min(math.ceil(32.0 * d * d), 32) - fl, 0)
            s = min(s1, s2)
    fl = min(fl + s, MAX_WORD_LENGTH)
    wl = min(max(wl, fl) + 1, MAX_WORD_LENGTH)
    fl = min(fl, MAX_WORD_LENGTH - results_buffer)
    wl = max(min(fl + results_buffer, MAX_WORD_LENGTH), wl)
    return wl, fl


def adapt_lookback(
    lookback: int, diversity: float, min_lookback: int, max_lookback: int, momentum: float
) -> int:
    """The next lookback: consistent gradients (``Delta`` near 1) lengthen it towards
    ``max_lookback``, diverse ones shorten it towards ``min_lookback``, smoothed with
    ``momentum``."""
    new = max_lookback if diversity <= 0 else math.ceil(max_lookback / diversity)
    new = min(max(new, min_lookback), max_lookback)
    # ceil, with float rounding (0.33 x 25 + 0.67 x 25 = 24.999...) forgiven
    return math.ceil(momentum * new + (1.0 - momentum) * lookback - 1e-9)


def adapt_resolution(
    resolution: int, lookback: int, min_lookback: int, max_lookback: int,
    min_resolution: int, max_resolution: int,
) -> int:  # fmt: skip
    """One more histogram bin while the lookback is at its maximum, one fewer at its minimum,
    within ``[min_resolution, max_resolution]``."""
    if lookback >= max_lookback:
        resolution += 1
    elif lookback <= min_lookback:
        resolution -= 1
    return min(max(resolution, min_resolution), max_resolution)
