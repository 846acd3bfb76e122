"""Benchmark glue for Learngene (:mod:`trainlab.methods.learngene`, TLEG and SWS): recipes that
train an auxiliary model by distillation, and that train a descendant initialised from a
learngene, each under the runner's clock.

``tleg`` (``charlm_gpt``) and ``sws`` (``digits_cnn``, ``mnist1d_cnn``) are the registered,
self-contained algorithms: inside the timed ``init`` they train an ancestor (a deeper copy of
the workload's model, NAdamW + cosine), then the auxiliary model by distillation from it,
then initialise the workload's model from the learngene and train it. One trial therefore
pays for the whole pipeline; the method's saving (one learngene for many sizes) shows only
when the up-front cost is shared, which ``benchmarks/learngene.py`` measures with the two
unregistered recipes below, built in-process from Python objects (a trained ancestor, a
trained auxiliary model)::

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

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import NadamwCosineMethod, derived_seed, train_run
from trainlab.methods.learngene import sws, tleg
from trainlab.methods.learngene.distill import LearngeneError, distillation_loss
from trainlab.nn_utils import evaluating
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, TrainlabError, TrainState, Workload


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


FRACTIONS = (
    Param("lg_ancestor_fraction", 1.0, 0.1, 2.0,
          help="the ancestor's updates, as a fraction of the descendant's schedule"),
    Param("lg_aux_fraction", 0.33, 0.05, 2.0,
          help="the auxiliary model's distillation updates, same unit"),
)  # fmt: skip


class LearngeneAlgorithm(NadamwCosineMethod):
    """Ancestor, then auxiliary model by distillation, then the workload's model initialised
    from the learngene, all in one trial (inside the timed ``init``)."""

    def ancestor_workload(self, workload: Workload, hp: dict[str, Any]) -> Workload:
        raise NotImplementedError

    def auxiliary(self, workload: Workload, hp: dict[str, Any], seed: int) -> nn.Module:
        raise NotImplementedError

    def initialize(self, model: nn.Module, auxiliary: nn.Module) -> None:
        raise NotImplementedError

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        """Raise :class:`~trainlab.methods.learngene.LearngeneError` when the learngene these
        hyperparameters describe cannot initialise the workload's model (the runner, ``run``
        and ``bench`` call it before any training; ``init`` again, first thing)."""
        return None

    def init(self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int):
        hp = {**self.fixed, **hp}
        self.check_hyperparameters(workload, hp)
        steps = self.total_steps(workload, hp)
        n_anc = max(1, round(hp["lg_ancestor_fraction"] * steps))
        ancestor = train_run(self.ancestor_workload(workload, hp), hp, derived_seed(seed, 11),
                             n_anc, schedule_steps=n_anc)  # fmt: skip
        n_aux = max(1, round(hp["lg_aux_fraction"] * steps))
        distil = AuxiliaryDistillation(ancestor, lambda m: m)
        aux_seed = derived_seed(seed, 12)
        aux = self.auxiliary(workload, hp, aux_seed)
        aux_hp = {**hp, "horizon": n_aux / workload.step_hint}
        state = distil.init(workload, aux, aux_hp, aux_seed)
        stream = workload.batches(self.batch_size(workload, hp), aux_seed)
        for step in range(n_aux):
            distil.update(state, next(stream), step)
        self.initialize(model, aux)
        return super().init(workload, model, hp, seed)


class TLEG(LearngeneAlgorithm):
    """TLEG (Xia et al., AAAI 2024) on a workload whose model is a stack of Transformer blocks
    (``charlm_gpt``): a ``lg_ancestor_depth``-block ancestor, a ``lg_aux_depth``-block linear
    expansion distilled from it, the workload's model expanded from the learngene."""

    extra_space = SearchSpace((
        Param("lg_ancestor_depth", 4, 1, 12, kind="int", help="blocks of the ancestor"),
        Param("lg_aux_depth", 4, 1, 12, kind="int",
              help="blocks of the auxiliary model (its linear expansion)"),
        *FRACTIONS,
    ))  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "tleg",
            "TLEG: ancestor, learngene theta_A + (l/L) theta_B distilled from it, the model "
            "expanded from the learngene, then NAdamW + cosine (all inside one trial)",
        )

    def check_workload(self, workload: Workload) -> None:
        if not hasattr(workload, "layers") or not hasattr(workload.init_model(0), "blocks"):
            raise TrainlabError(
                f"tleg needs a workload whose model is a stack of Transformer blocks with a "
                f"depth option (charlm_gpt); {workload.full_name} is not"
            )
        tleg.check_depth(workload.layers)

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        for name in ("lg_ancestor_depth", "lg_aux_depth"):
            try:
                tleg.check_depth(hp[name])
            except LearngeneError as exc:
                raise LearngeneError(f"tleg: {name}={hp[name]!r}: {exc}") from None

    def ancestor_workload(self, workload: Workload, hp: dict[str, Any]) -> Workload:
        return workload.with_changes(workload.variant_name, layers=hp["lg_ancestor_depth"])

    def auxiliary(self, workload: Workload, hp: dict[str, Any], seed: int) -> nn.Module:
        model = workload.with_changes(workload.variant_name, layers=1).init_model(seed)
        gen = torch.Generator().manual_seed(seed)
        return tleg.make_auxiliary(model, hp["lg_aux_depth"], generator=gen)

    def initialize(self, model: nn.Module, auxiliary: nn.Module) -> None:
        tleg.initialize_descendant(model, auxiliary)


class SWS(LearngeneAlgorithm):
    """SWS (Xia et al., IJCAI 2024) on a CNN with stage depths (``digits_cnn``, ``mnist1d_cnn``,
    whose stride-2 convolutions open stages and are not shared): an ancestor
    and an auxiliary model with ``lg_stage_depth`` convolutions per stage (the auxiliary's
    repeatable ones shared), the workload's model initialised by repeating each stage's
    learngene layer."""

    extra_space = SearchSpace((
        Param("lg_stage_depth", 3, 2, 8, kind="int",
              help="convolutions per stage of the ancestor and the auxiliary model"),
        *FRACTIONS,
    ))  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "sws",
            "SWS: ancestor, auxiliary with one shared layer per stage distilled from it, the "
            "model initialised by repeating each stage's layer, then NAdamW + cosine",
        )

    def check_workload(self, workload: Workload) -> None:
        if not hasattr(workload, "depths") or not hasattr(workload.init_model(0), "features"):
            raise TrainlabError(
                f"sws needs a convolutional workload with stage depths (digits_cnn, mnist1d_cnn); "
                f"{workload.full_name} is not"
            )
        self.check_hyperparameters(workload, self.search_space.validate({}))

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        k = hp["lg_stage_depth"]
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise LearngeneError(f"sws: lg_stage_depth must be an integer >= 1, got {k!r}")
        aux = sws.make_auxiliary(self.ancestor_workload(workload, hp).init_model(0))
        try:
            sws.check_depths(aux, tuple(workload.depths))
        except LearngeneError as exc:
            raise LearngeneError(
                f"sws: lg_stage_depth={k} cannot initialise {workload.full_name} (stage depths "
                f"{tuple(workload.depths)}): {exc}"
            ) from None

    @staticmethod
    def _depths(workload: Workload, k: int) -> tuple[int, ...]:
        return (k,) * len(workload.depths)

    def ancestor_workload(self, workload: Workload, hp: dict[str, Any]) -> Workload:
        shape = self._depths(workload, hp["lg_stage_depth"])
        return workload.with_changes(workload.variant_name, depths=shape)

    def auxiliary(self, workload: Workload, hp: dict[str, Any], seed: int) -> nn.Module:
        return sws.make_auxiliary(self.ancestor_workload(workload, hp).init_model(seed))

    def initialize(self, model: nn.Module, auxiliary: nn.Module) -> None:
        sws.initialize_descendant(model, auxiliary)


register_algorithm("tleg", TLEG)
register_algorithm("sws", SWS)
