"""AdaPT: adaptive per-layer fixed-point precision during training, emulated.

Kummer, Sidak, Reichmann & Gansterer, "Adaptive Precision Training (AdaPT): A dynamic fixed
point quantized training approach for DNNs" (SDM 2023, arXiv:2107.13490). Every layer that
multiplies (``nn.Linear``, ``nn.Conv1d/2d/3d``) computes in its own fixed-point format
``(wl, fl)`` (word length, fraction length: see :mod:`.fixed_point`); between training
"epochs" each layer's format moves to the lowest one that loses no information about its
weights (PushDown) and then up by as much as its gradients need not to vanish (PushUp); the
conditions are in :mod:`.switching`.

The update rule per step, for a quantized layer with weights ``w`` (float32 master copy):

* forward and backward with ``Q(w; wl, fl)`` (nearest rounding) in place of ``w``, and the
  layer's input activations ``x`` replaced by ``Q(x; wl, fl)`` with the clipped
  straight-through gradient (:func:`.fake_quantize`); the weights' gradient is passed straight
  through to the master copy (``dL/dw := dL/dQ(w)``);
* the gradient ``g`` is quantized to ``Q(g; wl, fl_g)`` with stochastic rounding, where
  ``fl_g`` is the dynamic fraction length at which ``max |g|`` fits ``wl`` bits;
* the optimizer updates the float32 master weights (any ``torch.optim`` optimizer);
* ``g / ||g||`` joins the layer's window; when the window holds ``lookback`` gradients the
  layer switches: ``(wl, fl) <- PushUp(PushDown(w), Delta)`` and the window empties.

Choices the paper leaves open (or that differ from the authors' code), as made here:

* **"Epoch".** A layer's switch happens when its window is full: every ``lookback`` updates,
  ``lookback`` adapting within ``[min_lookback, max_lookback]`` (25-100 by default, the
  authors' configuration). This is what the authors' implementation does; on the benchmark's
  step-based workloads it is a fixed number of updates, not a pass over the training set.
* **Gradients** get the layer's word length with a per-tensor (dynamic) fraction length and
  stochastic rounding; the authors quantize them with the weights' format. Weights and
  activations round to nearest (the authors round stochastically; the float32 master copy
  already keeps small updates, so the weights need no unbiased rounding).
* **Start** at ``(wl_start, fl_start) = (8, 4)``, the authors' value. Biases share their
  layer's format; a weight tied to another layer's (a GPT's embedding and head) is stored in
  the format of the first layer that holds it. Normalization layers, embeddings, attention
  products and everything else outside the quantized layers stay float32.
* **Information loss** is a KL divergence at most ``kl_tolerance`` (not exactly 0: any
  rounding moves some weights across a bin edge) with half-element smoothing of empty bins.
* Not implemented: the authors' sparsifying L1 term and bit-width penalty in the loss, and
  their normalization of gradients to unit norm before the SGD step (use any optimizer).

Emulation stores float32 tensors whose values lie on the fixed-point grid: it shows what the
formats do to training, not their speed. What fixed-point hardware would gain is estimated by
the analytical model in :mod:`.adapt_model`.

In a plain loop::

    from trainlab.methods.precision import AdaPT

    adapt = AdaPT(model)                      # wl_start=8, fl_start=4, lookback 25-100
    for x, y in loader:
        with adapt.quantized():               # fixed-point weights and activations
            loss = loss_fn(model(x), y)
            opt.zero_grad(); loss.backward()
        adapt.step()                          # quantize the gradients; maybe switch formats
        opt.step()                            # float32 master weights
    with adapt.quantized(), torch.no_grad():  # the trained model is fixed point
        accuracy = (model(x_test).argmax(-1) == y_test).float().mean()
    adapt.bit_history                         # [(step, {layer: (wl, fl)}), ...]
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from trainlab.methods.precision.fixed_point import (
    PrecisionError,
    check_format,
    dynamic_fraction_length,
    fake_quantize,
    fixed_point_quantize,
)
from trainlab.methods.precision.switching import (
    adapt_lookback,
    adapt_resolution,
    gradient_diversity,
    push_down,
    push_up,
)

#: the layers AdaPT quantizes: those whose multiply-accumulates dominate the cost
QUANTIZED_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class LayerFormat:
    """One layer's fixed-point format and switching state."""

    wl: int
    fl: int
    lookback: int
    resolution: int
    #: the running sum of the window's unit-norm weight gradients, and how many
    window_sum: Tensor | None = None
    window_count: int = 0


@dataclass(frozen=True)
class Switch:
    """One precision switch: after ``step`` updates, ``layer`` went from ``before`` to
    ``after`` (``(wl, fl)`` pairs); its cost inputs for the performance model."""

    step: int
    layer: str
    before: tuple[int, int]
    after: tuple[int, int]
    diversity: float
    lookback: int
    resolution: int
    kl_evaluations: int
    numel: int


@dataclass
class _Saved:
    tensors: list[tuple[nn.Parameter, Tensor]] = field(default_factory=list)


class AdaPT:
    """Per-layer adaptive fixed-point training (Kummer et al., SDM 2023, arXiv:2107.13490),
    emulated with fake quantization and straight-through gradients.

    Usage: forward and backward inside :meth:`quantized`, then :meth:`step` before the
    optimizer's step (see the module docstring for the loop and the update rule).

    ``wl_start``/``fl_start``: every layer's first format (word and fraction length, bits).
    ``min_lookback``/``max_lookback``: the window of gradients between a layer's switches
    (updates). ``min_resolution``/``max_resolution``: histogram bins of the information-loss
    test. ``lookback_momentum``: smoothing of the lookback. ``results_buffer``: integer bits
    kept above the fraction. ``kl_tolerance``: the KL divergence (nats) that still counts as no
    information loss. ``quantize_activations``/``quantize_gradients``: emulate those too.
    ``layer_types``: the modules quantized. A word length below 2 (or any inconsistent
    setting) raises :class:`PrecisionError`, a ``TrainlabError``.

    Attributes: ``formats`` (``{layer: LayerFormat}``), ``bit_history`` (``[(step, {layer:
    (wl, fl)})]``: the start and every step at which a format changed), ``grad_history`` (the
    gradients' ``(wl, fl_g)`` at the same steps), ``switches`` (every :class:`Switch`),
    ``steps`` (updates so far).
    """

    def __init__(
        self,
        model: nn.Module,
        wl_start: int = 8,
        fl_start: int = 4,
        min_lookback: int = 25,
        max_lookback: int = 100,
        min_resolution: int = 50,
        max_resolution: int = 150,
        lookback_momentum: float = 0.33,
        results_buffer: int = 4,
        kl_tolerance: float = 0.01,
        quantize_activations: bool = True,
        quantize_gradients: bool = True,
        layer_types: tuple[type[nn.Module], ...] = QUANTIZED_LAYERS,
    ) -> None:
        check_format(wl_start, fl_start)
        if not 1 <= min_lookback <= max_lookback:
            raise PrecisionError(f"need 1 <= min_lookback <= max_lookback, got "
                                 f"{min_lookback}, {max_lookback}")  # fmt: skip
        if not 2 <= min_resolution <= max_resolution:
            raise PrecisionError(f"need 2 <= min_resolution <= max_resolution, got "
                                 f"{min_resolution}, {max_resolution}")  # fmt: skip
        if not 0.0 <= lookback_momentum <= 1.0:
            raise PrecisionError(f"lookback_momentum must be in [0, 1], got {lookback_momentum}")
        if not 0 <= results_buffer <= 30:
            raise PrecisionError(f"results_buffer must be in [0, 30], got {results_buffer}")
        if not (kl_tolerance >= 0.0 and math.isfinite(kl_tolerance)):
            raise PrecisionError(f"kl_tolerance must be finite and >= 0, got {kl_tolerance}")
        self.min_lookback, self.max_lookback = int(min_lookback), int(max_lookback)
        self.min_resolution, self.max_resolution = int(min_resolution), int(max_resolution)
        self.lookback_momentum = float(lookback_momentum)
        self.results_buffer = int(results_buffer)
        self.kl_tolerance = float(kl_tolerance)
        self.quantize_activations = bool(quantize_activations)
        self.quantize_gradients = bool(quantize_gradients)
        self.layers: dict[str, nn.Module] = {
            name: m for name, m in model.named_modules() if isinstance(m, layer_types)
        }
        if not self.layers:
            raise PrecisionError("the model has no layer AdaPT quantizes (Linear or Conv)")
        self.formats = {
            name: LayerFormat(wl_start, fl_start, self.min_lookback, self.min_resolution)
            for name in self.layers
        }
        self.steps = 0
        self.bit_history: list[tuple[int, dict[str, tuple[int, int]]]] = [(0, self.snapshot())]
        #: the gradients' formats at the same steps: ``(wl, fl_g)`` with ``fl_g`` the dynamic
        #: fraction length of that step's gradient (``None`` at step 0, before any gradient)
        self.grad_fl: dict[str, int | None] = dict.fromkeys(self.layers)
        self.grad_history: list[tuple[int, dict[str, tuple[int, int | None]]]] = [
            (0, self.grad_snapshot())
        ]
        self.switches: list[Switch] = []
        self._active = False
        self._saved: _Saved | None = None
        self._hooks = [
            m.register_forward_pre_hook(self._make_input_hook(name))
            for name, m in self.layers.items()
        ]

    # -- formats ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, tuple[int, int]]:
        """``{layer: (wl, fl)}`` now."""
        return {name: (f.wl, f.fl) for name, f in self.formats.items()}

    def grad_snapshot(self) -> dict[str, tuple[int, int | None]]:
        """``{layer: (wl, fl_g)}``: the gradients' word length (the layer's) and the fraction
        length the latest step's gradient was quantized with (``None`` before any)."""
        return {name: (f.wl, self.grad_fl[name]) for name, f in self.formats.items()}

    def mean_word_length(self) -> float:
        """The mean word length over the quantized layers (bits), unweighted, as the paper
        reports it."""
        return sum(f.wl for f in self.formats.values()) / len(self.formats)

    def _params(self, name: str) -> list[nn.Parameter]:
        m = self.layers[name]
        return [p for p in (getattr(m, "weight", None), getattr(m, "bias", None))
                if isinstance(p, nn.Parameter)]  # fmt: skip

    # -- forward: fixed-point weights and activations -----------------------------------------
    def _make_input_hook(self, name: str):
        def hook(module: nn.Module, args: tuple) -> tuple | None:
            if not (self._active and self.quantize_activations) or not args:
                return None
            x = args[0]
            if not (isinstance(x, Tensor) and x.is_floating_point()):
                return None
            f = self.formats[name]
            return (fake_quantize(x, f.wl, f.fl), *args[1:])

        return hook

    def quantize_weights(self) -> None:
        """Put the quantized weights (and biases) in the parameters and turn on activation
        quantization, keeping the float32 master values aside; :meth:`restore_weights` puts
        them back. A no-op when already quantized."""
        if self._saved is not None:
            return
        saved, seen = _Saved(), set()
        with torch.no_grad():
            for name, f in self.formats.items():
                for p in self._params(name):
                    if id(p) in seen:  # a tied weight: quantized once, by its first layer
                        continue
                    seen.add(id(p))
                    saved.tensors.append((p, p.data))
                    p.data = fixed_point_quantize(p.data, f.wl, f.fl)
        self._saved = saved
        self._active = True

    def restore_weights(self) -> None:
        """Put the float32 master weights back (gradients stay as they are)."""
        if self._saved is not None:
            for p, master in self._saved.tensors:
                p.data = master
        self._saved = None
        self._active = False

    @property
    def is_quantized(self) -> bool:
        return self._saved is not None

    @contextlib.contextmanager
    def quantized(self) -> Iterator[None]:
        """A block that computes with the fixed-point model: training forward and backward,
        or evaluation of the trained (quantized) model."""
        self.quantize_weights()
        try:
            yield
        finally:
            self.restore_weights()

    # -- after backward: gradients and switching ----------------------------------------------
    @torch.no_grad()
    def step(self) -> list[Switch]:
        """After ``backward()`` (with the master weights back), before ``optimizer.step()``:
        quantize the gradients, add them to the windows, adapt lookbacks and resolutions, and
        switch the formats of the layers whose window is full. Returns this step's switches."""
        if self.is_quantized:
            raise RuntimeError("AdaPT.step() runs after the quantized() block, not inside it")
        self.steps += 1
        names = [n for n in self.formats if self._params(n)[0].grad is not None]
        if not names:
            return []
        if self.quantize_gradients:
            owned, seen = [], set()  # (layer, word length, parameter), a tied weight once
            for n in names:
                for p in self._params(n):
                    if p.grad is not None and id(p) not in seen:
                        seen.add(id(p))
                        owned.append((n, self.formats[n].wl, p))
            peaks = torch.stack([p.grad.abs().max() for _, _, p in owned]).tolist()
            for (n, wl, p), peak in zip(owned, peaks, strict=True):
                fl = _fraction_for_peak(peak, wl)
                if p is getattr(self.layers[n], "weight", None):  # the weight's gradient format
                    self.grad_fl[n] = fl
                p.grad.copy_(fixed_point_quantize(p.grad, wl, fl, rounding="stochastic"))
        norms = []
        for n in names:
            g = self._params(n)[0].grad
            f = self.formats[n]
            unit = g / g.norm().clamp(min=1e-30)
            f.window_sum = unit.clone() if f.window_sum is None else f.window_sum.add_(unit)
            f.window_count += 1
            norms.append(f.window_sum.norm())
        switched = []
        for n, norm in zip(names, torch.stack(norms).tolist(), strict=True):
            f = self.formats[n]
            diversity = gradient_diversity(norm, f.window_count)
            f.lookback = adapt_lookback(f.lookback, diversity, self.min_lookback,
                                        self.max_lookback, self.lookback_momentum)  # fmt: skip
            f.resolution = adapt_resolution(f.resolution, f.lookback, self.min_lookback,
                                            self.max_lookback, self.min_resolution,
                                            self.max_resolution)  # fmt: skip
            if f.window_count >= f.lookback:
                switched.append(self._switch(n, diversity))
        if switched:
            self.switches.extend(switched)
            formats = self.snapshot()
            if formats != self.bit_history[-1][1]:  # a switch may keep a layer's format
                self.bit_history.append((self.steps, formats))
                self.grad_history.append((self.steps, self.grad_snapshot()))
        return switched

    def _switch(self, name: str, diversity: float) -> Switch:
        f = self.formats[name]
        w = self._params(name)[0].detach()
        wl, fl, evaluations = push_down(w, f.resolution, self.kl_tolerance)
        wl, fl = push_up(wl, fl, diversity, self.results_buffer)
        event = Switch(self.steps, name, (f.wl, f.fl), (wl, fl), diversity, f.lookback,
                       f.resolution, evaluations, w.numel())  # fmt: skip
        f.wl, f.fl = wl, fl
        f.window_sum, f.window_count = None, 0
        return event

    def remove(self) -> None:
        """Restore the master weights and remove the hooks: the model is plain float32."""
        self.restore_weights()
        for h in self._hooks:
            h.remove()
        self._hooks = []


def _fraction_for_peak(peak: float, wl: int) -> int:
    """:func:`dynamic_fraction_length` from an already-read peak magnitude."""
    return dynamic_fraction_length(torch.tensor([peak]), wl)
