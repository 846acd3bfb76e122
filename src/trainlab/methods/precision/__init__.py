"""Low-precision training: bf16 mixed precision and AdaPT's adaptive fixed point.

>>> from trainlab.methods.precision import AdaPT, bf16_autocast, fixed_point_quantize

* :mod:`.autocast` — bf16 autocast with float32 master weights (Micikevicius et al., 2018;
  Kalamkar et al., 2019); the benchmark's ``ALGORITHM+bf16`` wraps any algorithm with it.
* :mod:`.fixed_point` — fixed-point formats ``(wl, fl)``, quantization, straight-through
  fake quantization.
* :mod:`.switching` and :mod:`.adapt` — AdaPT (Kummer et al., SDM 2023): per-layer formats
  switched by an information-loss (KL) test and a gradient-diversity test.
* :mod:`.adapt_model` — AdaPT's analytical performance model (modelled speedups on fixed-point
  hardware; emulation itself is not faster).
"""

from trainlab.methods.precision.adapt import QUANTIZED_LAYERS, AdaPT, LayerFormat, Switch
from trainlab.methods.precision.adapt_model import (
    PAPER_INFERENCE_SPEEDUP,
    PAPER_TRAINING_SPEEDUP,
    SpeedupEstimate,
    layer_macs,
    layer_weights,
    modelled_speedup,
)
from trainlab.methods.precision.autocast import (
    autocast_device_type,
    bf16_autocast,
    float32_step,
    in_bf16,
)
from trainlab.methods.precision.fixed_point import (
    PrecisionError,
    dynamic_fraction_length,
    fake_quantize,
    fixed_point_quantize,
    fixed_point_range,
)
from trainlab.methods.precision.switching import (
    adapt_lookback,
    adapt_resolution,
    gradient_diversity,
    histogram_kl,
    push_down,
    push_up,
)

__all__ = [
    "AdaPT", "LayerFormat", "Switch", "QUANTIZED_LAYERS",
    "layer_macs", "layer_weights", "modelled_speedup", "SpeedupEstimate",
    "PAPER_TRAINING_SPEEDUP", "PAPER_INFERENCE_SPEEDUP",
    "bf16_autocast", "autocast_device_type", "float32_step", "in_bf16",
    "PrecisionError", "fixed_point_quantize", "fixed_point_range", "fake_quantize",
    "dynamic_fraction_length",
    "histogram_kl", "push_down", "push_up", "gradient_diversity", "adapt_lookback",
    "adapt_resolution",
]  # fmt: skip
