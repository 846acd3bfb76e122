"""Weight-averaging algorithms on NAdamW: the averaged copy is what gets evaluated.

* ``ema`` — :class:`trainlab.methods.weight_averaging.EMA` after every update (warmup+cosine
  schedule unchanged); ``prepare_for_eval`` returns the EMA copy.
* ``swa`` — :class:`trainlab.methods.weight_averaging.SWA` (Izmailov et al., 2018): warmup, cosine
  decay to ``swa_lr_fraction`` of the peak learning rate reached at ``swa_start_fraction`` of the
  schedule, then that constant rate while the weights are averaged every ``swa_every`` updates
  (0 = once per epoch, the paper's cycle length). ``prepare_for_eval`` returns the averaged copy,
  its BatchNorm statistics recomputed over ``swa_bn_batches`` training batches when the average
  has changed since the last evaluation (timed, like everything in ``prepare_for_eval``).

The training model is never modified by the averaging.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from trainlab.algorithms._common import derived_seed
from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe, SchedulePart
from trainlab.methods.weight_averaging import (
    EMA,
    SWA,
    has_batchnorm,
    recompute_batchnorm,
    swa_schedule,
)
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, TrainState, Workload


class _AveragingRecipe(Recipe):
    """NAdamW and a schedule part, with the method's hyperparameters appended."""

    extra_space: SearchSpace = SearchSpace()

    def __init__(self, name: str, description: str, schedule: SchedulePart) -> None:
        super().__init__(NADAMW, schedule, name=name, description=description)
        self.search_space = self.search_space.merged(self.extra_space)


@dataclass(kw_only=True)
class EMAState(TrainState):
    ema: EMA


class EMAAlgorithm(_AveragingRecipe):
    """Evaluate an exponential moving average of the weights."""

    extra_space = SearchSpace(
        (
            Param("one_minus_ema_decay", 1e-2, 1e-4, 0.1, log=True, help="1 - EMA decay"),
            Param("ema_warmup", True, kind="choice", choices=(True, False),
                  help="decay min(d, (1+n)/(10+n)) early on"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "ema", "NAdamW + cosine, evaluated with an EMA of the weights", SCHEDULES["cosine"]
        )

    state_type = EMAState

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> EMAState:
        ema = EMA(model, decay=1.0 - hp["one_minus_ema_decay"], warmup=bool(hp["ema_warmup"]))
        return super().make_state(workload, model, hp, seed, ema=ema, **fields)

    def update(self, state: EMAState, batch: Batch, step: int) -> Tensor:
        loss = super().update(state, batch, step)
        state.ema.update(state.model)
        return loss

    def prepare_for_eval(self, state: EMAState) -> nn.Module:
        return state.ema.model


register_algorithm("ema", EMAAlgorithm)


def swa_start_step(total: int, hp: dict[str, Any]) -> int:
    """The update from which weights are averaged (and the learning rate is constant)."""
    return max(1, round(hp["swa_start_fraction"] * total))


def _swa_factor(step: int, total: int, hp: dict[str, Any]) -> float:
    start = swa_start_step(total, hp)
    warmup = min(round(hp["warmup_fraction"] * total), start)
    return swa_schedule(step, total, start, hp["swa_lr_fraction"], warmup)


#: warmup, cosine to ``swa_lr_fraction`` at the SWA start, then constant (the SWA
#: hyperparameters are in the algorithm's own space)
SWA_SCHEDULE = SchedulePart(
    "swa", SCHEDULES["cosine"].space, _swa_factor, "warmup, cosine to the SWA rate, constant"
)


@dataclass(kw_only=True)
class SWAState(TrainState):
    swa: SWA
    #: first averaged update, and updates between averaged models
    swa_start: int
    swa_every: int
    #: the average changed since its BatchNorm statistics were last recomputed
    bn_stale: bool = False
    has_batchnorm: bool
    #: training batches for the recomputation (its own stream, not the training one)
    bn_batches: Iterator[Batch]


class SWAAlgorithm(_AveragingRecipe):
    """Stochastic Weight Averaging with a constant SWA learning rate and BN recomputation."""

    extra_space = SearchSpace(
        (
            Param("swa_start_fraction", 0.75, 0.3, 0.95,
                  help="fraction of the schedule after which weights are averaged"),
            Param("swa_lr_fraction", 0.1, 0.01, 0.5, log=True,
                  help="SWA learning rate as a fraction of the peak"),
            Param("swa_every", 0, 0, 200, kind="int",
                  help="updates between averaged models (0: once per epoch)"),
            Param("swa_bn_batches", 20, 1, 200, kind="int",
                  help="training batches for recomputing BatchNorm statistics"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "swa",
            "NAdamW, cosine to a constant SWA learning rate, evaluated with the SWA average "
            "(Izmailov et al., 2018)",
            SWA_SCHEDULE,
        )

    state_type = SWAState

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> SWAState:
        bs = self.batch_size(workload, hp)
        return super().make_state(
            workload, model, hp, seed,
            swa=SWA(model),
            swa_start=swa_start_step(self.total_steps(workload, hp), hp),
            swa_every=hp["swa_every"] or max(1, workload.train_size // bs),
            has_batchnorm=has_batchnorm(model),
            bn_batches=workload.batches(bs, derived_seed(seed, 7)),
            **fields,
        )  # fmt: skip

    def update(self, state: SWAState, batch: Batch, step: int) -> Tensor:
        loss = super().update(state, batch, step)
        if step >= state.swa_start and (step - state.swa_start) % state.swa_every == 0:
            state.swa.update(state.model)
            state.bn_stale = True
        return loss

    def prepare_for_eval(self, state: SWAState) -> nn.Module:
        swa = state.swa
        if swa.n_averaged == 0:
            return state.model
        if state.bn_stale and state.has_batchnorm:
            batches = itertools.islice(state.bn_batches, state.hp["swa_bn_batches"])
            recompute_batchnorm(batches, swa.model, forward=state.workload.forward)
        state.bn_stale = False
        return swa.model


register_algorithm("swa", SWAAlgorithm)
