"""Fixed-point numbers, emulated in floating point: quantization and straight-through gradients.

A signed fixed-point format ``(wl, fl)`` has a word length of ``wl`` bits (sign included) of
which ``fl`` are fraction bits: its values are the integers ``k`` with
``-2**(wl-1) <= k <= 2**(wl-1) - 1``, scaled by ``2**-fl`` (two's complement). So the step is
``2**-fl`` and the range is ``[-2**(wl-fl-1), 2**(wl-fl-1) - 2**-fl]`` (the convention of the
``qtorch`` package, which AdaPT's authors use). ``fl`` may exceed ``wl`` (a range below 1) or be
negative (a step above 1).

Quantization rounds to the grid, to the nearest point (ties to even, ``torch.round``) or
stochastically (up with probability equal to the distance from the point below, so the result is
unbiased: Gupta et al., "Deep Learning with Limited Numerical Precision" (ICML 2015)), then
saturates at the range. Emulation ("fake quantization") keeps float32 tensors whose values lie on
the grid: it shows the numerical effect of the format, not its speed.

>>> import torch
>>> fixed_point_quantize(torch.tensor([0.3, -0.3, 9.0]), wl=4, fl=2)  # step 0.25, range [-2, 1.75]
tensor([ 0.2500, -0.2500,  1.7500])
"""

from __future__ import annotations

import torch
from torch import Tensor

from trainlab.errors import TrainlabError

#: the widest word length the formats here use (float32's significand is 24 bits, so wider
#: fixed-point words are not exactly representable in the emulation anyway)
MAX_WORD_LENGTH = 32


class PrecisionError(TrainlabError, ValueError):
    """A fixed-point format or precision setting that cannot work (a word length below 2...)."""


def check_format(wl: int, fl: int) -> None:
    """Raise :class:`PrecisionError` unless ``wl`` is an integer in ``[2, 32]`` and ``fl`` an
    integer in ``[-32, 64]``: one bit is the sign, so a word of 1 bit holds only 0 and -1."""
    if not isinstance(wl, int) or isinstance(wl, bool) or not 2 <= wl <= MAX_WORD_LENGTH:
        raise PrecisionError(
            f"word length must be an integer in [2, {MAX_WORD_LENGTH}], got {wl!r}"
        )
    if not isinstance(fl, int) or isinstance(fl, bool) or not -32 <= fl <= 64:
        raise PrecisionError(f"fraction length must be an integer in [-32, 64], got {fl!r}")


def fixed_point_range(wl: int, fl: int) -> tuple[float, float]:
    """``(lowest, highest)`` value of the format ``(wl, fl)``."""
    check_format(wl, fl)
    step = 2.0**-fl
    return -(2.0 ** (wl - 1)) * step, (2.0 ** (wl - 1) - 1) * step


def fixed_point_quantize(
    x: Tensor,
    wl: int,
    fl: int,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
) -> Tensor:
    """``x`` rounded to the format ``(wl, fl)`` and saturated at its range (same shape and
    dtype as ``x``). ``rounding`` is ``"nearest"`` or ``"stochastic"`` (draws from
    ``generator``, or the global generator of ``x``'s device). No gradient: see
    :func:`fake_quantize`."""
    check_format(wl, fl)
    if rounding not in ("nearest", "stochastic"):
        raise PrecisionError(f"rounding must be 'nearest' or 'stochastic', got {rounding!r}")
    scale = 2.0**fl
    scaled = x.detach() * scale
    if rounding == "nearest":
        codes = torch.round(scaled)
    else:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        codes = torch.floor(scaled + noise)
    codes = codes.clamp_(-(2.0 ** (wl - 1)), 2.0 ** (wl - 1) - 1)
    return codes / scale


class _FakeQuantize(torch.autograd.Function):
    """Quantize forward; straight-through backward, zero where the input saturated."""

    @staticmethod
    def forward(ctx, x: Tensor, wl: int, fl: int, rounding: str) -> Tensor:  # type: ignore[override]
        low, high = fixed_point_range(wl, fl)
        ctx.save_for_backward((x >= low) & (x <= high))
        return fixed_point_quantize(x, wl, fl, rounding)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None


def fake_quantize(x: Tensor, wl: int, fl: int, rounding: str = "nearest") -> Tensor:
    """``x`` quantized to ``(wl, fl)`` with a straight-through gradient (Bengio et al.,
    "Estimating or Propagating Gradients Through Stochastic Neurons" (arXiv:1308.3432, 2013)):
    the backward pass treats the rounding as the identity inside the format's range and passes
    no gradient where the value saturated (the clipped straight-through estimator)."""
    return _FakeQuantize.apply(x, wl, fl, rounding)


def dynamic_fraction_length(x: Tensor, wl: int) -> int:
    """The largest fraction length at which every element of ``x`` fits the word length ``wl``
    (dynamic fixed point: one shared exponent per tensor, set by its largest magnitude;
    Courbariaux et al., "Training deep neural networks with low precision multiplications"
    (arXiv:1412.7024, 2014)). An all-zero tensor gets ``wl - 1``. Reads one number to the
    host."""
    check_format(wl, 0)
    peak = float(x.detach().abs().max()) if x.numel() else 0.0
    if peak == 0.0:
        return wl - 1
    # need peak <= (2**(wl-1) - 1) * 2**-fl; start from the exponent and step down if short
    fl = wl - 1 - int(torch.tensor(peak).log2().ceil())
    while fl > -32 and peak > (2.0 ** (wl - 1) - 1) * 2.0**-fl:
        fl -= 1
    return max(-32, min(64, fl))
