"""Growth algorithms: train a smaller model first and grow it, during training, into the
workload's model (NAdamW + warmup/cosine, like the baseline).

* ``grow_net2net`` — :mod:`trainlab.methods.growth` (Net2Net, Chen et al., 2016): the small
  model is the workload's model cut to ``start_width`` of every width site and
  ``start_depth`` of its depth slots (:func:`~trainlab.methods.growth.shrink`); in ``stages``
  equal steps ending at ``grow_at`` of the schedule it is grown by Net2WiderNet (``noise``
  on the new replicas) and Net2DeeperNet (an inserted BatchNorm undoes the statistics of the
  batch at hand) to the full architecture. Depth slots are the layers that can start as the
  identity: the MLP's second hidden layer, digits_cnn's two same-width 3x3 convolutions, every
  GPT block; mnist1d_cnn has none (its convolutions have stride 2) and grows in width only.
* ``grow_mixture`` — :mod:`trainlab.methods.growth.mixture_growth` (MixtureGrowth, Pham et
  al., 2024; MLPs and CNNs): two members, each with half the units of every width site and
  its own ``templates_per_set`` templates per layer, are trained side by side (the mean of
  their losses) until ``grow_at`` of the schedule; then the workload's architecture is built
  from their blocks plus off-diagonal blocks mixing the learned templates with new
  coefficients (orthogonal to the learned ones, times ``coef_scale``), and trained on in that
  parameterisation.

**The schedule.** Growth ``s`` of ``S`` happens before update ``round(grow_at * total * s /
S)`` (``total`` = the schedule's length, ``horizon x step_hint``), to width ``start_width +
(1 - start_width) s / S`` and depth ``start_depth + (1 - start_depth) s / S``; the last one
reaches the workload's architecture. Growth runs inside ``update`` (on the timed clock). A
schedule that starts wider or deeper than the workload's model (a fraction above 1) or grows
at or after the end of the budget (``grow_at x horizon >= 1``) is refused when the
hyperparameters are validated, before anything is trained (``HyperparameterError``), also in
a single ``trainlab run``, which otherwise lets values leave the tuning range; a schedule whose
last growth would not come before the end of the trial's step budget (``stages`` growths need
an update each) is refused by ``check_hyperparameters``, also before training.

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
the small model's own, in the workload's architecture. For ``grow_mixture`` it is the two
members in the full architecture with zero off-diagonal blocks (their logit average), and
after growth the template-generated weights computed into the plain architecture
(:func:`~trainlab.methods.growth.materialize`). The copy is timed and reused until the next
update. After Net2Net's last growth the training model itself is evaluated.

MixtureGrowth's state: templates and the members' coefficients are the same parameters
after growth (their state is kept); new coefficients, the concatenated biases and BatchNorm
parameters start with fresh state.
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
    GrowthLog,
    UnsupportedModel,
    carry_optimizer_state,
    depth_slots,
    family,
    grow,
    grown_copy,
    materialize,
    mixture_grow,
    mixture_members,
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
            if name in out and not (
                0 < out[name] <= 1 or (name == "start_depth" and out[name] == 0)
            ):
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

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        """Refuse a schedule whose last growth is not before the end of the step budget (each
        growth needs its own update: with few updates, ``stages`` growths may spill past
        ``grow_at``)."""
        hp = {**self.fixed, **hp}
        steps = growth_steps(self.total_steps(workload, hp), hp["grow_at"],
                             int(hp.get("stages", 1)))  # fmt: skip
        budget = workload.step_budget
        if steps[-1] >= budget:
            raise HyperparameterError(
                f"{self.name}: growth {len(steps)} of {len(steps)} would come at update "
                f"{steps[-1]}, not before the end of the {budget}-update budget (grow_at="
                f"{hp['grow_at']!r}, stages={hp.get('stages', 1)!r}): grow earlier or in "
                "fewer stages"
            )

    # -- hooks ----------------------------------------------------------------------------
    def start_model(self, blueprint: nn.Module, hp: dict[str, Any], seed: int) -> nn.Module:
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
        small = self.start_model(model, hp, seed)
        optimizer = self.build_optimizer(workload, small, hp)
        scheduler = self.build_scheduler(workload, optimizer, hp)
        total = self.total_steps(workload, hp)
        return GrowthState(
            workload=workload, model=small, hp=hp, optimizer=optimizer, scheduler=scheduler,
            blueprint=model, schedule=growth_steps(total, hp["grow_at"], int(hp.get("stages", 1))),
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
            Param("stages", 1, 1, 4, kind="int", help="growths, evenly spaced up to grow_at"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "grow_net2net",
            "NAdamW + cosine on a model that starts at start_width/start_depth of the "
            "workload's and grows to it by Net2Net (Chen et al., 2016)",
        )

    def start_model(self, blueprint: nn.Module, hp: dict[str, Any], seed: int) -> nn.Module:
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


class MixtureGrowthAlgorithm(GrowthRecipe):
    """Two half-width members with template-generated weights, grown into the workload's model
    by recombining their templates (Pham et al., 2024)."""

    extra_space = SearchSpace(
        (
            Param("templates_per_set", 2, 1, 4, kind="int",
                  help="templates per layer and member (the paper: 2)"),
            Param("coef_scale", 1.0, 0.0, 2.0,
                  help="norm of the new coefficients (orthogonal to the learned ones)"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "grow_mixture",
            "NAdamW + cosine: two half-width template-mixed members grown into the workload's "
            "model by recombining their templates (MixtureGrowth, Pham et al., 2024)",
        )

    def check_workload(self, workload: Workload) -> None:
        super().check_workload(workload)
        model = workload.init_model(0)
        try:
            mixture_members(model, 2, 1)
        except TypeError as exc:
            raise HyperparameterError(
                f"grow_mixture cannot grow {workload.full_name}: {exc}"
            ) from None

    def start_model(self, blueprint: nn.Module, hp: dict[str, Any], seed: int) -> nn.Module:
        gen = torch.Generator().manual_seed(derived_seed(seed, GROWTH_SEED_PURPOSE, run=1))
        return nn.ModuleList(mixture_members(blueprint, 2, int(hp["templates_per_set"]), gen))

    def training_loss(self, state: GrowthState, batch: Batch) -> Tensor:
        if state.grown:
            return super().training_loss(state, batch)
        smoothing = (
            state.hp["label_smoothing"] if state.workload.loss_type == "cross_entropy" else 0.0
        )
        losses = [state.workload.mean_loss(m, batch, smoothing) for m in state.model]
        return torch.stack(losses).mean()

    def grow_model(self, state: GrowthState, fraction: float, batch: Batch) -> GrowthLog:
        state.model = mixture_grow(list(state.model), state.blueprint, state.hp["coef_scale"])
        state.model.train()
        return GrowthLog()  # shared parameters keep their state; the rest start fresh

    def eval_copy(self, state: GrowthState) -> nn.Module:
        if state.grown:
            return materialize(state.model)
        return materialize(mixture_grow(list(state.model), state.blueprint, 0.0))

    def prepare_for_eval(self, state: GrowthState) -> nn.Module:
        if state.eval_model is None or state.eval_at != state.updates:
            state.eval_model = self.eval_copy(state)
            state.eval_at = state.updates
        return state.eval_model


register_algorithm("grow_mixture", MixtureGrowthAlgorithm)
