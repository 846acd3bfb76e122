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
from trainlab.methods.precision import AdaPT, bf16_autocast, float32_step
from trainlab.methods.precision.autocast import autocast_device_type
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

    def prepare_for_eval(self, state: Any) -> nn.Module:
        return self.inner.prepare_for_eval(state)


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

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> AdaPTState:
        if hp["min_lookback"] > hp["max_lookback"]:
            raise HyperparameterError("min_lookback must not exceed max_lookback")
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


register_algorithm("adapt", AdaPTAlgorithm)
