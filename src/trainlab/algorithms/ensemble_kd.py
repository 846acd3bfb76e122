"""``ensemble_kd``: a NAdamW + warmup/cosine student trained only on the averaged softmax of
teachers trained first, in the manner of MEAL V2 (:mod:`trainlab.methods.ensemble_kd`).

``kd_teachers`` teachers are trained *inside* ``init`` (so on the timed clock), each for
``kd_teacher_fraction`` of the student's schedule with a complete warmup/cosine schedule of its
own. The student never sees a one-hot label. Cross-entropy workloads only; label smoothing is
fixed at 0 (the soft targets replace it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import (
    MAX_CACHED_FLOATS,
    MethodState,
    NadamwCosineMethod,
    derived_seed,
    needs_cross_entropy,
    train_run,
)
from trainlab.methods.ensemble_kd import TeacherTargets, ensemble_soft_targets
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, Workload


@dataclass(kw_only=True)
class EnsembleKDState(MethodState):
    #: the frozen teachers (eval mode, no gradients)
    teachers: list[nn.Module]
    #: their targets for every training example, when the table is small enough
    cache: TeacherTargets | None = None


class EnsembleKD(NadamwCosineMethod):
    """A student trained only on the averaged softmax of teachers trained first (MEAL V2 style)."""

    state_type = EnsembleKDState
    extra_space = SearchSpace(
        (
            Param("kd_teachers", 2, 1, 4, kind="int", help="number of teachers"),
            Param("kd_teacher_fraction", 1.0, 0.1, 1.5,
                  help="each teacher's training length, as a fraction of the student's schedule"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "ensemble_kd",
            "NAdamW + cosine student trained on the mean softmax of teachers trained within the "
            "budget (MEAL V2-style ensemble distillation, no one-hot labels)",
            fixed={"label_smoothing": 0.0},
        )

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> EnsembleKDState:
        needs_cross_entropy(self.name, workload)
        steps = max(1, round(hp["kd_teacher_fraction"] * self.total_steps(workload, hp)))
        teachers = [
            train_run(workload, hp, derived_seed(seed, 5, k), steps, schedule_steps=steps)
            for k in range(hp["kd_teachers"])
        ]
        for t in teachers:
            t.eval().requires_grad_(False)

        def targets_of(idx: Tensor) -> Tensor:
            batch = workload.get_examples(idx)
            return ensemble_soft_targets(teachers, batch, forward=workload.forward)

        probe = targets_of(torch.arange(1))
        cache = None
        if probe.numel() * workload.train_size <= MAX_CACHED_FLOATS:
            cache = TeacherTargets(workload.train_size, targets_of)
        return super().make_state(
            workload, model, hp, seed, teachers=teachers, cache=cache, **fields
        )

    def soft_targets(self, state: EnsembleKDState, batch: Batch) -> Tensor:
        """Cached targets for training-set examples, the teachers' output for fresh ones."""
        if state.cache is not None and bool((batch.indices >= 0).all()):
            return state.cache(batch.indices)
        return ensemble_soft_targets(state.teachers, batch, forward=state.workload.forward)

    def training_loss(self, state: EnsembleKDState, batch: Batch) -> Tensor:
        soft = self.soft_targets(state, batch)
        return state.workload.loss(state.model, batch, soft_targets=soft).mean()


register_algorithm("ensemble_kd", EnsembleKD)
