"""Growth algorithms: train a smaller model first and grow it, during training, into the
workload's model (NAdamW + warmup/cosine, like the baseline).

* ``grow_net2net`` — :mod:`trainlab.methods.growth` (Net2Net, Chen et al., 2016): the small
  model is the workload's model cut to ``start_width`` of every width site and
  ``start_depth`` of its depth slots (:func:`~trainlab.methods.growth.shrink`); in ``stages``
  equal steps ending at ``grow_at`` of the schedule it is grown by Net2WiderNet (``noise``
  on the new replicas) and Net2DeeperNet (an inserted BatchNorm undoes the statistics of the
  batch at hand) to the full architecture.
* ``grow_mixture`` — MixtureGrowth (Pham et al., 2024): see
  :mod:`trainlab.algorithms.growth_mixture`.

**The schedule.** Growth ``s`` of ``S`` happens before update ``round(grow_at * total * s /
S)`` (``total`` = the schedule's length, ``horizon x step_hint``), to width ``start_width +
(1 - start_width) s / S`` and depth ``start_depth + (1 - start_depth) s / S``; the last one
reaches the workload's architecture. Growth runs inside ``update`` (on the timed clock). A
schedule that starts wider or deeper than the workload's model (a fraction above 1) or grows
at or after the end of the budget (``grow_at x horizon >= 1``) is refused when the
hyperparameters are validated, before anything is trained (``HyperparameterError``), also in
a single ``trainlab run``, which otherwise lets values leave the tuning range.

**Optimizer state.** After each growth the optimizer and its scheduler are rebuilt on the grown
model at the same step and learning rate; kept parameters keep their state, widened ones get
it mapped (moments of replicated incoming weights divided by the replication count, second
moments by its square, outgoing weights' moments copied: see
:func:`~trainlab.methods.growth.carry_optimizer_state`), inserted layers start with fresh
zero moments and their own step count.

**Evaluation rule** (the workload contract: the evaluated model has the workload's
architecture). Before the last growth ``prepare_for_eval`` returns a copy of the small model
grown to the full architecture without noise: the same function as the small model (Net2Net
is function-preserving; an inserted BatchNorm is the identity in eval mode), so the score is
the small model's own, in the workload's architecture. The copy is timed and reused until the
next update. After the last growth the training model is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import derived_seed
from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe
from trainlab.errors import HyperparameterError
from trainlab.methods.growth import (
    UnsupportedModel,
    carry_optimizer_state,
    depth_slots,
    family,
    grow,
    grown_copy,
    shrink,
)
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, TrainState, Workload

#: derived_seed purpose of the growth mappings' generator
GROWTH_SEED_PURPOSE = 14


@dataclass(frozen=True)
class GrowthSpace(SearchSpace):
    """A search space that also refuses a growth schedule the run cannot follow: one that
    starts beyond the workload's model or grows after the budget (these are hard limits,
    even where a single run may leave the tuning ranges)."""

    def validate(
        self, hp: Mapping[str, Any] | None = None, allow_out_of_range: bool = False
    ) -> dict[str, Any]:
        out = super().validate(hp, allow_out_of_range)
        for name in ("start_width", "start_depth"):
            if name in out and not (0 < out[name] <= 1 or (name == "start_depth" and
                                                           out[name] == 0)):
                raise HyperparameterError(
                    f"hyperparameter {name}={out[name]!r} must be in "
                    f"{'[0, 1]' if name == 'start_depth' else '(0, 1]'}: a growth schedule "
                    "cannot start beyond the workload's model"
                )  # fmt: skip
        if "grow_at" in out:
            end = out["grow_at"] * out.get("horizon", 1.0)
            if out["grow_at"] <= 0 or end >= 1:
                raise HyperparameterError(
                    f"hyperparameter grow_at={out['grow_at']!r} (x horizon "
                    f"{out.get('horizon', 1.0)!r}) must be in (0, 1): the last growth must "
                    "come before the end of the budget"
                )
        return out


def growth_steps(total: int, grow_at: float, stages: int) -> list[int]:
    """The updates before which growths 1..S happen (strictly increasing, at least 1)."""
    steps = []
    for s in range(1, stages + 1):
        step = max(1, round(grow_at * total * s / stages))
        steps.append(max(step, steps[-1] + 1) if steps else step)
    return steps


@dataclass(kw_only=True)
class GrowthState(TrainState):
    #: the workload's model as initialised: the architecture grown to
    blueprint: nn.Module
    #: updates before which each growth happens, and how many happened
    schedule: list[int]
    grown: int = 0
    generator: torch.Generator
    #: the eval copy of a not yet fully grown model, and the update count it was made at
    updates: int = 0
    eval_model: nn.Module | None = None
    eval_at: int = -1
    #: per growth: (update, parameter count after it), for reports and tests
    history: list[tuple[int, int]] = field(default_factory=list)


GROWTH_SCHEDULE = SearchSpace(
    (
        Param("grow_at", 0.25, 0.05, 0.75,
              help="fraction of the schedule at which the last growth happens"),
        Param("stages", 1, 1, 4, kind="int", help="growths, evenly spaced up to grow_at"),
    )
)  # fmt: skip


class GrowthRecipe(Recipe):
    """NAdamW + warmup/cosine on a model grown on a schedule; subclasses say how the small
    model is made (:meth:`start_model`) and grown (:meth:`grow_model`)."""

    state_type = GrowthState
    extra_space = SearchSpace()

    def __init__(self, name: str, description: str) -> None:
        super().__init__(NADAMW, SCHEDULES["cosine"], name=name, description=description)
        merged = self.search_space.merged(GROWTH_SCHEDULE).merged(self.extra_space)
        self.search_space = GrowthSpace(merged.params)

    def check_workload(self, workload: Workload) -> None:
        try:
            family(workload.init_model(0))
        except UnsupportedModel as exc:
            raise HyperparameterError(
                f"{self.name} cannot grow {workload.full_name}'s model: {exc}"
            ) from None

    # -- hooks ----------------------------------------------------------------------------
    def start_model(self, blueprint: nn.Module, hp: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def grow_model(self, state: GrowthState, fraction: float, batch: Batch):
        """Grow ``state.model`` in place to ``fraction`` (0..1) of the way; returns the
        growth log for the optimizer state."""
        raise NotImplementedError

    def eval_copy(self, state: GrowthState) -> nn.Module:
        raise NotImplementedError

    # -- the algorithm ----------------------------------------------------------------------
    def init(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int
    ) -> GrowthState:
        hp = {**self.fixed, **hp}
        small = self.start_model(model, hp)
        optimizer = self.build_optimizer(workload, small, hp)
        scheduler = self.build_scheduler(workload, optimizer, hp)
        total = self.total_steps(workload, hp)
        return GrowthState(
            workload=workload, model=small, hp=hp, optimizer=optimizer, scheduler=scheduler,
            blueprint=model, schedule=growth_steps(total, hp["grow_at"], int(hp["stages"])),
            generator=torch.Generator().manual_seed(derived_seed(seed, GROWTH_SEED_PURPOSE)),
        )  # fmt: skip

    def update(self, state: GrowthState, batch: Batch, step: int) -> Tensor:
        if state.grown < len(state.schedule) and step >= state.schedule[state.grown]:
            self._grow(state, batch, step)
        state.updates += 1
        return super().update(state, batch, step)

    def _grow(self, state: GrowthState, batch: Batch, step: int) -> None:
        state.grown += 1
        log = self.grow_model(state, state.grown / len(state.schedule), batch)
        old_opt, old_sched = state.optimizer, state.scheduler
        state.optimizer = self.build_optimizer(state.workload, state.model, state.hp)
        state.scheduler = self.build_scheduler(state.workload, state.optimizer, state.hp)
        carry_optimizer_state(old_opt, state.optimizer, log)
        state.scheduler.last_epoch = old_sched.last_epoch
        state.scheduler._step_count = old_sched._step_count
        state.eval_model = None
        state.history.append((step, sum(p.numel() for p in state.model.parameters())))

    def prepare_for_eval(self, state: GrowthState) -> nn.Module:
        if state.grown == len(state.schedule):
            return state.model
        if state.eval_model is None or state.eval_at != state.updates:
            state.eval_model = self.eval_copy(state)
            state.eval_at = state.updates
        return state.eval_model


class Net2NetGrowth(GrowthRecipe):
    """Start narrow and shallow, grow by Net2WiderNet / Net2DeeperNet (Chen et al., 2016)."""

    extra_space = SearchSpace(
        (
            Param("start_width", 0.5, 0.25, 1.0, help="starting fraction of every width site"),
            Param("start_depth", 0.5, 0.0, 1.0,
                  help="starting fraction of the layers that can start as identity"),
            Param("noise", 0.01, 0.0, 0.1,
                  help="std of the noise on new replicas, relative to the layer's weights"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "grow_net2net",
            "NAdamW + cosine on a model that starts at start_width/start_depth of the "
            "workload's and grows to it by Net2Net (Chen et al., 2016)",
        )

    def start_model(self, blueprint: nn.Module, hp: dict[str, Any]) -> nn.Module:
        rescale = family(blueprint) == "chain"
        return shrink(blueprint, hp["start_width"], hp["start_depth"], rescale_fan_in=rescale)

    def grow_model(self, state: GrowthState, fraction: float, batch: Batch):
        hp = state.hp
        width = hp["start_width"] + (1 - hp["start_width"]) * fraction
        depth = hp["start_depth"] + (1 - hp["start_depth"]) * fraction
        if fraction >= 1:
            width = depth = 1.0
        inputs = batch.inputs if depth_slots(state.blueprint) else None
        return grow(state.model, state.blueprint, width, depth, noise=hp["noise"],
                    generator=state.generator, inputs=inputs)  # fmt: skip

    def eval_copy(self, state: GrowthState) -> nn.Module:
        return grown_copy(state.model, state.blueprint)


register_algorithm("grow_net2net", Net2NetGrowth)
