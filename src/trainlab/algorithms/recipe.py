"""Recipes: an algorithm composed of an optimizer part and a schedule part.

A recipe trains with ``mean(per-example loss)`` (label smoothing where the loss is
cross-entropy), one optimizer step and one schedule step per batch. Its search space is the
union of the common part (batch size, label smoothing), the optimizer part and the schedule
part, so any optimizer composes with any schedule: ``-a lion+rex``. The parts live in the
:data:`OPTIMIZERS` and :data:`SCHEDULES` tables; modules add entries with
:func:`add_optimizer` / :func:`add_schedule`, and the registry resolver builds ``OPT+SCHED``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab import schedules
from trainlab.optim import param_groups
from trainlab.registry import register_resolver
from trainlab.spec import (
    Algorithm,
    Batch,
    Param,
    SearchSpace,
    TrainlabError,
    TrainState,
    Workload,
)


@dataclass(frozen=True)
class OptimizerPart:
    """How to build one optimizer from hyperparameters.

    ``build(param_groups, hp)`` receives two parameter groups (``decay``: weights, ``no_decay``:
    biases and norm gains, which get no weight decay, as is standard) and the validated hp;
    or, where ``groups`` is set, the groups ``groups(model)`` (Muon: hidden matrices apart from
    embeddings and the head).
    """

    name: str
    space: SearchSpace
    build: Callable[[list[dict], dict[str, Any]], torch.optim.Optimizer]
    description: str = ""
    groups: Callable[[nn.Module], list[dict]] | None = None


@dataclass(frozen=True)
class SchedulePart:
    """A learning-rate multiplier ``factor(step, total_steps, hp)`` and its hyperparameters."""

    name: str
    space: SearchSpace
    factor: Callable[[int, int, dict[str, Any]], float]
    description: str = ""


OPTIMIZERS: dict[str, OptimizerPart] = {}
SCHEDULES: dict[str, SchedulePart] = {}


def add_optimizer(part: OptimizerPart) -> OptimizerPart:
    OPTIMIZERS[part.name] = part
    return part


def add_schedule(part: SchedulePart) -> SchedulePart:
    SCHEDULES[part.name] = part
    return part


COMMON_SPACE = SearchSpace(
    (
        Param(
            "batch_size",
            "auto",
            kind="choice",
            choices=("auto", 32, 64, 128, 256, 512),
            help="auto: the workload's batch_size_hint",
        ),
        Param("label_smoothing", 0.0, 0.0, 0.3, help="cross-entropy workloads only"),
        Param(
            "horizon",
            1.0,
            0.25,
            2.0,
            help="schedule length as a multiple of the workload's step_hint",
        ),
    )
)


def adam_betas(hp: dict[str, Any]) -> tuple[float, float]:
    """``(beta1, beta2)`` from the Adam-family hyperparameters ``beta1`` and ``one_minus_beta2``
    (searched as ``1 - beta2`` on a log scale, where its scale matters)."""
    return hp["beta1"], 1.0 - hp["one_minus_beta2"]


class Recipe(Algorithm):
    """Optimizer part + schedule part + the common training step.

    ``defaults`` overrides the parts' defaults (a named recipe may ship better ones);
    ``fixed`` pins hyperparameters and removes them from the search space.
    """

    #: the dataclass :meth:`make_state` builds; methods with state of their own extend it
    state_type: type[TrainState] = TrainState

    def __init__(
        self,
        optimizer: OptimizerPart,
        schedule: SchedulePart,
        name: str | None = None,
        description: str = "",
        defaults: dict[str, Any] | None = None,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        self.optimizer_part = optimizer
        self.schedule_part = schedule
        self.name = name or f"{optimizer.name}+{schedule.name}"
        space = COMMON_SPACE.merged(optimizer.space).merged(schedule.space)
        if defaults:  # a named recipe may ship better defaults than its parts
            space = SearchSpace(
                tuple(
                    Param(**{**p.__dict__, "default": defaults[p.name]})
                    if p.name in defaults
                    else p
                    for p in space.params
                )
            )
        # fixed hyperparameters are not tunable: a recipe that fixes all is self-tuning
        self.fixed = dict(fixed or {})
        self.search_space = SearchSpace(tuple(p for p in space.params if p.name not in self.fixed))
        parts = (optimizer.description or optimizer.name, schedule.description or schedule.name)
        self.description = description or f"{parts[0]} with {parts[1]}"

    def batch_size(self, workload: Workload, hp: dict[str, Any]) -> int:
        size = {**self.fixed, **hp}["batch_size"]
        return workload.batch_size_hint if size == "auto" else int(size)

    def total_steps(self, workload: Workload, hp: dict[str, Any]) -> int:
        return max(1, round({**self.fixed, **hp}["horizon"] * workload.step_hint))

    # -- hooks: subclasses override one of these instead of re-writing ``init`` ------------
    def build_optimizer(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any]
    ) -> torch.optim.Optimizer:
        """The optimizer part on :func:`param_groups` of ``model``, or on the part's own
        ``groups(model)`` (``hp`` includes fixed)."""
        groups = self.optimizer_part.groups or param_groups
        return self.optimizer_part.build(groups(model), hp)

    def build_scheduler(
        self, workload: Workload, optimizer: torch.optim.Optimizer, hp: dict[str, Any]
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        """``LambdaLR`` with the schedule part's factor over :meth:`total_steps`; a controller
        that sets the learning rate itself returns ``None``."""
        total = self.total_steps(workload, hp)
        factor = self.schedule_part.factor
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step, total, hp))

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> TrainState:
        """The state ``init`` returns, built as ``self.state_type(workload=, model=, hp=,
        **fields)``; ``init`` passes ``optimizer`` and ``scheduler`` in ``fields``.

        A method with state of its own sets ``state_type`` to a dataclass extending
        :class:`TrainState`, computes its fields here (on the timed clock, like all of ``init``)
        and passes them on: ``return super().make_state(workload, model, hp, seed, keep=keep,
        **fields)``. The leading arguments are positional-only, so a state may have a ``seed``
        field.
        """
        return self.state_type(workload=workload, model=model, hp=hp, **fields)

    def init(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int
    ) -> TrainState:
        hp = {**self.fixed, **hp}
        optimizer = self.build_optimizer(workload, model, hp)
        scheduler = self.build_scheduler(workload, optimizer, hp)
        return self.make_state(workload, model, hp, seed, optimizer=optimizer, scheduler=scheduler)

    def training_loss(self, state: TrainState, batch: Batch) -> Tensor:
        """Mean per-example loss; label smoothing only where the loss is cross-entropy."""
        smoothing = (
            state.hp["label_smoothing"] if state.workload.loss_type == "cross_entropy" else 0.0
        )
        return state.workload.mean_loss(state.model, batch, label_smoothing=smoothing)

    def update(self, state: TrainState, batch: Batch, step: int) -> Tensor:
        if not state.model.training:  # train() walks every module: skip it when it's a no-op
            state.model.train()
        _switch_optimizer(state.optimizer, "train")
        loss = self.training_loss(state, batch)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        if state.scheduler is not None:  # None: a controller sets the lr itself
            state.scheduler.step()
        return loss.detach()

    def prepare_for_eval(self, state: TrainState) -> nn.Module:
        """The model as trained, except that an optimizer which evaluates at other weights
        than it takes gradients at is switched to its evaluation weights (see
        :func:`_switch_optimizer`); :meth:`update` switches it back before the next step."""
        _switch_optimizer(state.optimizer, "eval")
        return state.model

    # -- checkpoints (--search pbt) ------------------------------------------------------
    def check_checkpoints(self) -> None:
        """A recipe checkpoints when its state is the plain :class:`TrainState` and its
        schedule a ``LambdaLR``: subclasses with state of their own (EMA, controllers, data
        selection) raise unless they override :meth:`state_dict` themselves."""
        cls = type(self)
        if cls.state_dict is not Recipe.state_dict:
            return
        plain = self.state_type is TrainState and all(
            getattr(cls, m) is getattr(Recipe, m)
            for m in ("init", "update", "select_data", "make_state", "build_scheduler",
                      "observe_evaluation"))  # fmt: skip
        if not plain:
            raise TrainlabError(f"algorithm {self.name} does not support checkpoints, so "
                                "--search pbt cannot run it")  # fmt: skip

    def state_dict(self, state: TrainState) -> dict[str, Any]:
        """Model, optimizer and the schedule's position (``last_epoch``); a schedule-free
        optimizer is saved in its train mode (the mode :meth:`update` steps in)."""
        self.check_checkpoints()
        _switch_optimizer(state.optimizer, "train")
        scheduler = state.scheduler
        return {
            "hp": dict(state.hp),
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "last_epoch": None if scheduler is None else int(scheduler.last_epoch),
        }

    def load_state_dict(self, state: TrainState, sd: dict[str, Any]) -> None:
        """Weights and optimizer state from ``sd``; the hyperparameters ``state`` was built with.

        ``optimizer.load_state_dict`` also restores the saved param-group values (``lr``,
        ``weight_decay``, betas...), so those the hyperparameters set (the values that differ
        between optimizers built with the saved and the new hp) are set back to the fresh
        optimizer's; values the optimizer learns in its groups (D-Adaptation's ``d``) stay.
        The schedule continues at the saved step from the new base learning rates:
        ``lr = base_lr(new hp) * factor(step; new hp)``."""
        self.check_checkpoints()
        fresh = [{k: v for k, v in g.items() if k != "params"}
                 for g in state.optimizer.param_groups]  # fmt: skip
        before = fresh
        if sd.get("hp") is not None:  # the groups the saved hp build, to see what hp set
            hp = {**self.fixed, **sd["hp"]}
            before = self.build_optimizer(state.workload, state.model, hp).param_groups
        state.model.load_state_dict(sd["model"])
        state.optimizer.load_state_dict(sd["optimizer"])
        for group, new, old in zip(state.optimizer.param_groups, fresh, before, strict=True):
            group.update({k: v for k, v in new.items()
                          if k == "initial_lr" or not _same(v, old.get(k))})  # fmt: skip
        scheduler = state.scheduler
        if scheduler is not None and sd.get("last_epoch") is not None:
            scheduler.last_epoch = int(sd["last_epoch"])
            for group, base, factor in zip(state.optimizer.param_groups, scheduler.base_lrs,
                                           scheduler.lr_lambdas, strict=True):  # fmt: skip
                group["lr"] = base * factor(scheduler.last_epoch)
            scheduler._last_lr = [g["lr"] for g in state.optimizer.param_groups]


def _same(a: Any, b: Any) -> bool:
    """Equal param-group values (numbers, tuples, tensors)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
    return bool(a == b)


def _switch_optimizer(optimizer: torch.optim.Optimizer | None, mode: str) -> None:
    """Call ``optimizer.train()`` or ``optimizer.eval()`` where the optimizer has them: the
    protocol of schedule-free optimizers (``trainlab.optim.ScheduleFreeAdamW``, the authors'
    ``schedulefree`` package), whose parameters hold the gradient point ``y`` in train mode
    and the average ``x`` in eval mode. ``torch.optim.Optimizer`` has neither method, so any
    other optimizer is untouched. Both calls are no-ops when already in that mode."""
    switch = getattr(optimizer, mode, None)
    if callable(switch):
        switch()


def resolve_composed(name: str) -> Algorithm | None:
    """``OPT+SCHED`` -> a :class:`Recipe`. A name with a ``+`` whose part is unknown is an
    error that lists the optimizers or the schedules (not every algorithm)."""
    if "+" not in name:
        return None
    opt_name, sched_name = name.split("+", 1)
    if opt_name not in OPTIMIZERS:
        raise TrainlabError(
            f"unknown optimizer {opt_name!r} in {name!r}; optimizers: "
            f"{', '.join(sorted(OPTIMIZERS))}"
        )
    if sched_name not in SCHEDULES:
        raise TrainlabError(
            f"unknown schedule {sched_name!r} in {name!r}; schedules: "
            f"{', '.join(sorted(SCHEDULES))}"
        )
    return Recipe(OPTIMIZERS[opt_name], SCHEDULES[sched_name])


register_resolver(resolve_composed)


# --------------------------------------------------------------------------------------------
# The baseline schedule; more schedule parts live in trainlab.algorithms.schedule_parts

add_schedule(
    SchedulePart(
        "cosine",
        SearchSpace((Param("warmup_fraction", 0.05, 0.0, 0.3),)),
        lambda step, total, hp: schedules.warmup_cosine(
            step, total, warmup_steps=round(hp["warmup_fraction"] * total)
        ),
        "linear warmup then cosine decay to zero",
    )
)
