"""``hesso``: NAdamW + cosine under the HESSO structured-pruning optimizer (Only-Train-Once).

The library half is :mod:`trainlab.methods.structured` (zero-invariant groups, the optimizer,
the compact sub-network). Here the schedule's length ``T`` (``horizon * step_hint``) fixes
HESSO's: ``round(hesso_warmup_fraction * L)`` warm-up steps, then ``pruning_periods`` periods
over ``round(pruning_fraction * L)`` steps, ``L = min(T, step budget)`` (:meth:`schedule`),
at the end of which a fraction ``target_group_sparsity`` of the groups is exactly zero; the
cosine learning rate (its own ``warmup_fraction``) runs over all of ``T``, so the pruned
network recovers after the last period.

``prepare_for_eval`` returns the workload's own model, zeros in place (the benchmark's
contract: the architecture is the workload's); its cost as a compact network is measured by
building one. Time-to-target counts the first evaluation that meets the target, as for every
algorithm: that can fall before the last pruning period, on a model not yet at its target
sparsity; ``benchmarks/hesso.py`` runs the whole schedule (``full_curve``) and judges the
final compact model.

Getting the compact model after training (``trainlab.methods.structured.compact_model``)::

    state = algorithm.init(workload, model, hp, seed)
    ...  # training
    small = compact_model(state.model, (example_inputs,))   # smaller dense layers, same outputs

The zero-invariant groups are found from the workload's model in :meth:`check_workload`, before
the trial (untimed), and reused by ``init`` for models of the same architecture; a model whose
graph cannot be partitioned is refused there with one line naming the blocking module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe
from trainlab.errors import HyperparameterError, TrainlabError
from trainlab.methods.structured.groups import ZIGPartition, zero_invariant_groups
from trainlab.methods.structured.hesso import HESSO
from trainlab.registry import register_algorithm
from trainlab.spec import Param, SearchSpace, TrainState, Workload

HESSO_SPACE = SearchSpace(
    (
        Param("target_group_sparsity", 0.5, 0.1, 0.9,
              help="fraction of the zero-invariant groups driven to zero"),
        Param("hesso_warmup_fraction", 0.1, 0.0, 0.3,
              help="steps before pruning starts, as a fraction of the schedule"),
        Param("pruning_fraction", 0.4, 0.1, 0.6,
              help="steps over which the pruning periods run, as a fraction of the schedule"),
        Param("pruning_periods", 5, 1, 20, kind="int",
              help="K: periods, each selecting 1/K of the redundant groups"),
    )
)  # fmt: skip


@dataclass(frozen=True)
class _Space(SearchSpace):
    """The recipe's space, whose :meth:`validate` also checks that HESSO's schedule fits."""

    def validate(self, hp=None, allow_out_of_range: bool = False) -> dict[str, Any]:
        out = super().validate(hp, allow_out_of_range)
        s = out["target_group_sparsity"]
        if not 0.0 <= s < 1.0:
            raise HyperparameterError(f"target_group_sparsity must be in [0, 1), got {s}")
        end = out["hesso_warmup_fraction"] + out["pruning_fraction"]
        if out["hesso_warmup_fraction"] < 0 or out["pruning_fraction"] <= 0 or end > 1.0:
            raise HyperparameterError(
                "hesso_warmup_fraction + pruning_fraction must be in (0, 1] (pruning ends "
                f"within the schedule), got {end:g}"
            )
        if out["pruning_periods"] < 1:
            raise HyperparameterError(f"pruning_periods must be >= 1, got {out['pruning_periods']}")
        return out


def example_inputs(workload: Workload) -> tuple[torch.Tensor]:
    """Two training examples, the batch ``torch.export`` traces the model with."""
    return (workload.get_examples(torch.arange(2)).inputs,)


def _signature(model: nn.Module) -> tuple:
    return (type(model).__qualname__,) + tuple(
        (n, tuple(p.shape)) for n, p in model.named_parameters()
    )


@dataclass(kw_only=True)
class HESSOState(TrainState):
    hesso: HESSO


class HESSOAlgorithm(Recipe):
    """NAdamW + cosine, stepped through HESSO (see the module docstring)."""

    state_type = HESSOState

    def __init__(self) -> None:
        super().__init__(
            NADAMW,
            SCHEDULES["cosine"],
            name="hesso",
            description="HESSO structured pruning (Only-Train-Once) around NAdamW + cosine",
        )
        self.search_space = _Space(self.search_space.merged(HESSO_SPACE).params)
        self._partitions: dict[tuple, ZIGPartition] = {}

    def _partition(self, workload: Workload, model: nn.Module) -> ZIGPartition:
        key = _signature(model)
        if key not in self._partitions:
            self._partitions[key] = zero_invariant_groups(model, example_inputs(workload))
        return self._partitions[key]

    def check_workload(self, workload: Workload) -> None:
        try:
            self._partition(workload, workload.init_model(0))
        except TrainlabError as exc:
            raise TrainlabError(f"hesso cannot prune {workload.full_name}: {exc}") from None

    def schedule(self, workload: Workload, hp: dict[str, Any]) -> dict[str, int]:
        """HESSO's step counts for this workload: ``warmup_steps``, ``pruning_steps``,
        ``pruning_periods``, as fractions of ``L = min(T, step budget)`` (``T`` the schedule's
        length; the step budget in step mode), so that pruning always ends within the run:
        with ``hesso_warmup_fraction + pruning_fraction <= 1`` (checked when the
        hyperparameters are validated) it cannot end after the budget. A budget shorter than
        ``pruning_periods`` pruning steps gets one period per step."""
        length = self.total_steps(workload, hp)
        if workload.max_steps:
            length = min(length, workload.step_budget)
        warmup = round(hp["hesso_warmup_fraction"] * length)
        pruning = max(1, min(length - warmup, round(hp["pruning_fraction"] * length)))
        periods = max(1, min(int(hp["pruning_periods"]), pruning))
        return {"warmup_steps": warmup, "pruning_steps": pruning, "pruning_periods": periods}

    def build_optimizer(self, workload: Workload, model: nn.Module, hp: dict[str, Any]):
        base = super().build_optimizer(workload, model, hp)
        return HESSO(
            model,
            base,
            groups=self._partition(workload, model),
            target_group_sparsity=hp["target_group_sparsity"],
            **self.schedule(workload, hp),
        )

    def make_state(self, workload, model, hp, seed, /, **fields) -> HESSOState:
        return super().make_state(workload, model, hp, seed, hesso=fields["optimizer"], **fields)


register_algorithm("hesso", HESSOAlgorithm)
