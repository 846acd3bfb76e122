"""AdaPT's analytical performance model: what the bit-widths would gain on fixed-point hardware.

Kummer et al., "Adaptive Precision Training (AdaPT)" (SDM 2023, arXiv:2107.13490), Section 4
and the authors' ``utils/analytics.py``: the cost of a layer's multiply-accumulates (MACs) is
proportional to their count times the operands' word length, float32 counting 32 bits. With
``M_l`` the forward MACs of quantized layer ``l`` per step, ``wl_l(t)`` its word length at
update ``t`` and ``T`` updates:

* training: ``C_32 = T sum_l 32 M_l``, ``C_q = sum_t sum_l wl_l(t) M_l + overhead`` and
  ``speedup_train = 2 C_32 / (C_q + C_32)``: the forward pass at the layers' word lengths,
  the backward pass counted as one more forward's worth of MACs at 32 bits (the update works on
  the float32 master copy); so it cannot exceed 2. The paper reports 1.27x (AlexNet and
  ResNet-20 on CIFAR-10/100; 1.31x in the SDM version).
* inference: ``speedup_inf = sum_l 32 M_l / sum_l wl_l(T) M_l`` at the final formats (paper:
  2.33x; 2.28x in the SDM version); model size ``sum_l wl_l(T) n_l / sum_l 32 n_l`` over the
  layers' ``n_l`` weights.
* overhead: each switch of a layer with ``n`` weights, ``E`` KL evaluations of ``r`` bins and
  lookback ``lb`` costs ``3 n E + r E + (lb + 1) n`` operations at 32 bits (quantize and two
  histograms per evaluation, the KL sum, the window of gradients), added to ``C_q``.

Choices: no credit for zeros (the authors also scale costs by the nonzero fraction their L1
term produces, which is not used here); only the quantized layers are counted (norms,
activations functions and attention products are left out on both sides).

It is a model of hypothetical hardware: emulated fixed point on a CPU is slower than float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab.methods.precision.adapt import QUANTIZED_LAYERS, Switch

#: the paper's averages over its CNNs (arXiv v4 abstract), for side-by-side reports
PAPER_TRAINING_SPEEDUP = 1.27
PAPER_INFERENCE_SPEEDUP = 2.33


def layer_macs(
    model: nn.Module,
    forward: Callable[[], Any],
    layer_types: tuple[type[nn.Module], ...] = QUANTIZED_LAYERS,
) -> dict[str, int]:
    """Forward multiply-accumulates of each ``layer_types`` module of ``model`` during one
    call of ``forward()`` (run without gradients): ``Linear`` ``out.numel() * in_features``,
    a convolution ``out.numel() * in_channels / groups * prod(kernel_size)``."""
    macs: dict[str, int] = {}
    hooks = []

    def make(name: str):
        def hook(module: nn.Module, args: tuple, out: Any) -> None:
            if isinstance(module, nn.Linear):
                n = out.numel() * module.in_features
            else:
                kernel = 1
                for k in module.kernel_size:
                    kernel *= k
                n = out.numel() * module.in_channels // module.groups * kernel
            macs[name] = macs.get(name, 0) + int(n)

        return hook

    for name, m in model.named_modules():
        if isinstance(m, layer_types):
            hooks.append(m.register_forward_hook(make(name)))
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in hooks:
            h.remove()
    return macs


@dataclass(frozen=True)
class SpeedupEstimate:
    """The modelled gains of one run against float32 (ratios > 1 are faster / smaller)."""

    training: float
    inference: float
    #: quantized layers' weights in bits over the same in float32 (< 1 is smaller)
    model_size: float
    #: the switching overhead's share of the quantized training cost
    overhead_fraction: float
    #: mean word length over the layers at the end, and averaged over the updates
    final_mean_word_length: float
    mean_word_length_over_training: float


def modelled_speedup(
    macs: Mapping[str, int],
    weights: Mapping[str, int],
    bit_history: Sequence[tuple[int, Mapping[str, tuple[int, int]]]],
    total_steps: int,
    switches: Iterable[Switch] = (),
) -> SpeedupEstimate:
    """The performance model (module docstring) for a run of ``total_steps`` updates whose
    formats followed ``bit_history`` (``[(step, {layer: (wl, fl)})]``, the first at step 0; an
    entry's formats hold from the update after ``step``). ``macs`` and ``weights``: forward
    MACs per step and weight count per layer (the layers of ``bit_history``). Raises
    :class:`ValueError` on an empty history, a layer without MACs or ``total_steps < 1``."""
    if not bit_history or bit_history[0][0] != 0:
        raise ValueError("bit_history must start with the formats at step 0")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    layers = list(bit_history[0][1])
    missing = [n for n in layers if n not in macs or n not in weights]
    if missing:
        raise ValueError(f"no MAC or weight count for layers {missing}")
    c32_step = sum(32 * macs[n] for n in layers)
    cq = 0.0
    bits_steps = 0.0
    for i, (step, formats) in enumerate(bit_history):
        end = bit_history[i + 1][0] if i + 1 < len(bit_history) else total_steps
        n_steps = max(0, min(end, total_steps) - step)
        cq += n_steps * sum(formats[n][0] * macs[n] for n in layers)
        bits_steps += n_steps * sum(formats[n][0] for n in layers) / len(layers)
    overhead = 0.0
    for s in switches:
        if s.step <= total_steps:
            ops = 3 * s.numel * s.kl_evaluations + s.resolution * s.kl_evaluations
            overhead += 32.0 * (ops + (s.lookback + 1) * s.numel)
    cq += overhead
    c32 = total_steps * c32_step
    final = bit_history[-1][1]
    inference = sum(32 * macs[n] for n in layers) / sum(final[n][0] * macs[n] for n in layers)
    size = sum(final[n][0] * weights[n] for n in layers) / sum(32 * weights[n] for n in layers)
    return SpeedupEstimate(
        training=2.0 * c32 / (cq + c32),
        inference=inference,
        model_size=size,
        overhead_fraction=overhead / cq if cq else 0.0,
        final_mean_word_length=sum(final[n][0] for n in layers) / len(layers),
        mean_word_length_over_training=bits_steps / total_steps,
    )


def layer_weights(model: nn.Module, layers: Iterable[str]) -> dict[str, int]:
    """Weight count (``weight.numel()``, biases aside) of each named layer of ``model``."""
    modules = dict(model.named_modules())
    return {n: int(modules[n].weight.numel()) for n in layers}
