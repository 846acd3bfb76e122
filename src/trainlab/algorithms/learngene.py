"""Benchmark glue for Learngene (:mod:`trainlab.methods.learngene`, TLEG and SWS): recipes that
train an auxiliary model by distillation, and that train a descendant initialised from a
learngene, each under the runner's clock.

Neither registers a name: both need Python objects (a trained ancestor, a trained auxiliary
model), so they are built in-process, as ``benchmarks/learngene.py`` does::

    distil = AuxiliaryDistillation(ancestor, lambda m: tleg.make_auxiliary(m, depth=4))
    run_trial(workload, distil, seed=0, eval_every_steps=100, max_steps=600)
    aux = distil.last_model
    child = InheritedInit(lambda m: tleg.initialize_descendant(m, aux))
    run_trial(workload.with_changes("L6", layers=6), child, seed=0, ...)

Both are NAdamW + warmup/cosine (the ``nadamw`` baseline's defaults), so a descendant differs
from the baseline only in its initial weights. The expansion runs inside ``init`` (timed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from trainlab.algorithms._common import NadamwCosineMethod
from trainlab.methods.learngene.distill import distillation_loss
from trainlab.nn_utils import evaluating
from trainlab.spec import Batch, TrainState, Workload


class InheritedInit(NadamwCosineMethod):
    """NAdamW + cosine on the workload's model after ``initialize(model)`` (for example a
    learngene expansion) has set its weights; ``initialize=None`` is the plain baseline.
    ``last_model`` is the model of the latest ``init``, for a caller that keeps it."""

    def __init__(
        self, initialize: Callable[[nn.Module], Any] | None = None, name: str = "learngene_init"
    ) -> None:
        super().__init__(name, "NAdamW + cosine from inherited (learngene) weights")
        self.initialize = initialize
        self.last_model: nn.Module | None = None

    def init(self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int):
        if self.initialize is not None:
            self.initialize(model)
        self.last_model = model
        return super().init(workload, model, hp, seed)


class AuxiliaryDistillation(NadamwCosineMethod):
    """Stage 1 of a Learngene method: ``build(model)`` turns the workload's fresh model into the
    auxiliary model (``tleg.make_auxiliary``, ``sws.make_auxiliary``), trained with NAdamW +
    cosine on the soft-distillation loss from the frozen ``teacher`` (``alpha``, ``tau``; see
    :func:`trainlab.methods.learngene.distill.distillation_loss`). Evaluations score the
    auxiliary model; ``last_model`` is it after training."""

    def __init__(
        self,
        teacher: nn.Module,
        build: Callable[[nn.Module], nn.Module],
        alpha: float = 1.0,
        tau: float = 1.0,
        name: str = "learngene_aux",
    ) -> None:
        super().__init__(name, "auxiliary learngene model distilled from an ancestor",
                         fixed={"label_smoothing": 0.0})  # fmt: skip
        self.teacher = teacher.eval().requires_grad_(False)
        self.build, self.alpha, self.tau = build, alpha, tau
        self.last_model: nn.Module | None = None

    def init(self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int):
        aux = self.build(model)
        self.last_model = aux
        return super().init(workload, aux, hp, seed)

    def training_loss(self, state: TrainState, batch: Batch) -> Tensor:
        outputs = state.workload.forward(state.model, batch)
        with evaluating(self.teacher):
            teacher = state.workload.forward(self.teacher, batch).detach()
        return distillation_loss(outputs, teacher, batch.targets, self.alpha, self.tau)
