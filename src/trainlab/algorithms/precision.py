"""Low-precision algorithms: ``ALGORITHM+bf16`` (bf16 mixed precision around any algorithm) and
``adapt`` (AdaPT's adaptive per-layer fixed point, emulated). The methods are in
:mod:`trainlab.methods.precision`.

``+bf16`` composes with every name ``get_algorithm`` resolves (``nadamw+bf16``,
``lion+rex+bf16``, ``swa+bf16``, ``adapt+bf16``). What runs under ``torch.autocast(device,
bfloat16)`` (CPU autocast on the CPU, CUDA autocast on a GPU; the device is the batch's):

* the inner algorithm's whole ``update`` (forward, loss, backward, and any extra forward a
  method makes there: teachers, scoring), except the optimizer's ``step``, which runs with
  autocast disabled so the update of the float32 master weights and its state stays float32;
* each batch drawn from the inner ``select_data`` (data selection that scores examples with
  the model scores them in bf16).

Not under autocast: ``init`` (a method that trains or scores in ``init`` does so in float32)
and ``prepare_for_eval`` and evaluation (float32, as the workload defines it). Parameters,
gradients and optimizer states are never cast.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe
from trainlab.errors import HyperparameterError
from trainlab.methods.precision import (
    PAPER_INFERENCE_SPEEDUP,
    PAPER_TRAINING_SPEEDUP,
    AdaPT,
    PrecisionError,
    bf16_autocast,
    float32_step,
    layer_macs,
    layer_weights,
    modelled_speedup,
)
from trainlab.methods.precision.autocast import autocast_device_type
from trainlab.methods.precision.fixed_point import check_format
from trainlab.nn_utils import evaluating
from trainlab.registry import register_algorithm, register_suffix
from trainlab.spec import Algorithm, Batch, Param, SearchSpace, TrainlabError, TrainState, Workload

# --------------------------------------------------------------------------------------------
# +bf16


class BF16(Algorithm):
    """``inner`` with its updates under bf16 autocast and float32 master weights and optimizer
    state (Micikevicius et al., "Mixed Precision Training" (ICLR 2018); bfloat16 per Kalamkar
    et al. (arXiv:1905.12322, 2019)). Same hyperparameters, batch size and state as ``inner``;
    see the module docstring for what runs in bf16."""

    def __init__(self, inner: Algorithm) -> None:
        if inner.name.endswith("+bf16"):
            raise TrainlabError(f"algorithm {inner.name!r} is already bf16; drop one '+bf16'")
        self.inner = inner
        self.name = f"{inner.name}+bf16"
        self.search_space = inner.search_space
        self.description = f"{inner.description or inner.name}; bf16 autocast, float32 weights"

    def batch_size(self, workload: Workload, hp: dict[str, Any]) -> int:
        return self.inner.batch_size(workload, hp)

    def check_workload(self, workload: Workload) -> None:
        try:
            autocast_device_type(workload.device)
        except ValueError as e:
            raise TrainlabError(f"{self.name}: {e}") from None
        self.inner.check_workload(workload)

    def init(self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int) -> Any:
        state = self.inner.init(workload, model, hp, seed)
        optimizer = getattr(state, "optimizer", None)
        if isinstance(optimizer, torch.optim.Optimizer):
            float32_step(optimizer, workload.device)
        return state

    def select_data(self, state: Any, stream: Iterator[Batch]) -> Iterator[Batch]:
        workload = getattr(state, "workload", None)
        device = workload.device if workload is not None else torch.device("cpu")
        return _drawn_in_bf16(self.inner.select_data(state, stream), device)

    def update(self, state: Any, batch: Batch, step: int) -> Tensor:
        with bf16_autocast(batch.inputs.device):
            return self.inner.update(state, batch, step)

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        self.inner.check_hyperparameters(workload, hp)

    def prepare_for_eval(self, state: Any) -> nn.Module:
        return self.inner.prepare_for_eval(state)

    def compact_model(self, state: Any) -> nn.Module | None:
        return self.inner.compact_model(state)

    def trial_record(self, state: Any) -> dict[str, Any] | None:
        return self.inner.trial_record(state)


def _drawn_in_bf16(batches: Iterator[Batch], device: torch.device) -> Iterator[Batch]:
    """Each ``next`` of ``batches`` under bf16 autocast; the consumer's code between draws is
    not (the context is left before every ``yield``)."""
    while True:
        with bf16_autocast(device):
            try:
                batch = next(batches)
            except StopIteration:
                return
        yield batch


register_suffix("bf16", BF16)


# --------------------------------------------------------------------------------------------
# adapt


class BitWidthParam(Param):
    """An integer bit count whose hard limits (2 to 32 bits) hold even where a single run may
    leave the tuning range: a word length below 2 is an error before any training."""

    def coerce(self, value: Any, allow_out_of_range: bool = False) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isfinite(number) and not 2 <= number <= 32:
            raise HyperparameterError(
                f"hyperparameter {self.name}={value!r}: a word length must be 2 to 32 bits"
            )
        return super().coerce(value, allow_out_of_range)


ADAPT_SPACE = SearchSpace(
    (
        BitWidthParam("wl_start", 8, 4, 16, kind="int", help="first word length of every layer"),
        Param("fl_start", 4, 0, 12, kind="int", help="first fraction length of every layer"),
        Param("min_lookback", 25, 5, 50, kind="int", help="fewest updates between switches"),
        Param("max_lookback", 100, 50, 400, kind="int", help="most updates between switches"),
        Param("kl_tolerance", 0.01, 1e-3, 0.1, log=True,
              help="KL divergence (nats) that counts as no information loss"),
        Param("results_buffer", 4, 1, 8, kind="int", help="integer bits kept above the fraction"),
    )
)  # fmt: skip


@dataclass(kw_only=True)
class AdaPTState(TrainState):
    adapt: AdaPT
    #: ``[(step, {layer: (wl, fl)})]``: the start and every step at which a format changed (the
    #: same list as ``adapt.bit_history``; the report plots it)
    bit_history: list[tuple[int, dict[str, tuple[int, int]]]]


class AdaPTAlgorithm(Recipe):
    """NAdamW + warmup/cosine training the model in AdaPT's per-layer fixed point (Kummer et
    al., SDM 2023, arXiv:2107.13490): weights and activations of every Linear/Conv layer
    quantized in the forward pass, gradients before the step, formats switched by the paper's
    conditions (:class:`trainlab.methods.precision.AdaPT`). The evaluated model is the
    quantized one. The authors train with momentum SGD on normalized gradients; NAdamW is the
    suite's baseline optimizer (any ``optimizer+schedule`` works with the library class)."""

    state_type = AdaPTState

    def __init__(self) -> None:
        super().__init__(
            NADAMW, SCHEDULES["cosine"], name="adapt",
            description="NAdamW + cosine in AdaPT's adaptive per-layer fixed point (emulated)",
        )  # fmt: skip
        self.search_space = self.search_space.merged(ADAPT_SPACE)

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        """The first format must be one (``2 <= wl_start <= 32``, ``fl_start`` in ``[-32,
        64]``) and the lookback window non-empty (``min_lookback <= max_lookback``)."""
        try:
            check_format(int(hp["wl_start"]), int(hp["fl_start"]))
        except PrecisionError as exc:
            raise HyperparameterError(f"adapt: wl_start/fl_start: {exc}") from None
        if hp["min_lookback"] > hp["max_lookback"]:
            raise HyperparameterError(
                f"adapt: min_lookback={hp['min_lookback']!r} must not exceed "
                f"max_lookback={hp['max_lookback']!r}"
            )

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> AdaPTState:
        self.check_hyperparameters(workload, hp)
        adapt = AdaPT(
            model,
            wl_start=int(hp["wl_start"]),
            fl_start=int(hp["fl_start"]),
            min_lookback=int(hp["min_lookback"]),
            max_lookback=int(hp["max_lookback"]),
            kl_tolerance=float(hp["kl_tolerance"]),
            results_buffer=int(hp["results_buffer"]),
        )
        return super().make_state(
            workload, model, hp, seed, adapt=adapt, bit_history=adapt.bit_history, **fields
        )

    def update(self, state: AdaPTState, batch: Batch, step: int) -> Tensor:
        if not state.model.training:
            state.model.train()
        adapt = state.adapt
        adapt.restore_weights()  # the evaluated (quantized) weights -> the float32 master
        with adapt.quantized():
            loss = self.training_loss(state, batch)
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        adapt.step()
        state.optimizer.step()
        if state.scheduler is not None:
            state.scheduler.step()
        return loss.detach()

    def prepare_for_eval(self, state: AdaPTState) -> nn.Module:
        """The fixed-point model: quantized weights in place (until the next update) and
        quantized activations."""
        state.adapt.quantize_weights()
        return state.model


    def trial_record(self, state: AdaPTState) -> dict[str, Any]:
        """AdaPT's run: see :func:`adapt_record`."""
        return adapt_record(state.adapt, state.workload, state.model)


def adapt_record(adapt: AdaPT, workload: Workload, model: nn.Module) -> dict[str, Any]:
    """The trial record of an AdaPT run (stored under ``model_cost["method"]``): ``layers``
    (the quantized layers' names), ``steps`` (the update after which each format set began:
    0 and every switch that changed a format), ``weights`` and ``gradients`` (per entry of
    ``steps``, per layer, ``[wl, fl]`` of the weights and ``[wl, fl_g]`` of the gradients:
    their word length is the layer's, ``fl_g`` the dynamic fraction length of that step's
    gradient, ``None`` at 0), ``updates``, ``switches``, ``mean_bits`` (the final mean word
    length over the layers), ``mean_bits_over_training``, the performance model's
    ``modelled_training_speedup`` (over all ``updates``), ``modelled_inference_speedup`` and
    ``model_size`` (:func:`~trainlab.methods.precision.modelled_speedup`), and the paper's
    ``paper_training_speedup`` and ``paper_inference_speedup`` beside them. MACs are counted
    on a forward of up to 64 training examples in eval mode (ratios: the batch cancels)."""
    batch = workload.get_examples(torch.arange(min(64, workload.train_size)))
    with evaluating(model):
        macs = layer_macs(model, lambda: workload.forward(model, batch))
    est = modelled_speedup(macs, layer_weights(model, macs), adapt.bit_history,
                           max(1, adapt.steps), adapt.switches)  # fmt: skip
    layers = list(adapt.formats)
    return {
        "name": "adapt",
        "layers": layers,
        "steps": [step for step, _ in adapt.bit_history],
        "weights": [[list(f[n]) for n in layers] for _, f in adapt.bit_history],
        "gradients": [[list(f[n]) for n in layers] for _, f in adapt.grad_history],
        "updates": adapt.steps,
        "switches": len(adapt.switches),
        "mean_bits": est.final_mean_word_length,
        "mean_bits_over_training": est.mean_word_length_over_training,
        "modelled_training_speedup": est.training,
        "modelled_inference_speedup": est.inference,
        "model_size": est.model_size,
        "paper_training_speedup": PAPER_TRAINING_SPEEDUP,
        "paper_inference_speedup": PAPER_INFERENCE_SPEEDUP,
    }


register_algorithm("adapt", AdaPTAlgorithm)
