"""Sparse training algorithms: NAdamW + warmup/cosine with a sparsifier from
:mod:`trainlab.methods.sparse` called after every optimizer step.

* ``gmp``: gradual magnitude pruning, dense to sparse (Zhu & Gupta, 2017), per layer by default.
* ``rigl``: RigL, sparse to sparse from ERK masks (Evci et al., 2020).
* ``granet``: GraNet, dense to sparse: GMP's global schedule + neuroregeneration (Liu et al.,
  2021).
* ``granet_sparse``: GraNet, sparse to sparse from ERK masks at ``initial_sparsity``.

The sparsity schedule is given in fractions of the training schedule, ``t = round(fraction x
step_hint)`` (``horizon`` is fixed at 1, so the learning-rate schedule has the same length): in
step mode ``--max-steps`` is that unit, so ``t_end_fraction <= 1`` ends the sparsity schedule
within the budget; in time mode it is the workload's ``step_hint``, as for the learning rate,
and a run stopped earlier has not reached the final sparsity. ``sparsity`` is pinned at 0.9 in
the tuning space (a benchmark compares methods at one sparsity); a single run may set another
(``--set sparsity=0.8``, with an out-of-range warning). Bad values (a sparsity outside
``[0, 1)``, a schedule ending after the budget, ``t0_fraction > t_end_fraction``, an initial
sparsity above the target) are refused when the hyperparameters are validated, before any
training.

**Pruning steps.** ``delta_t`` (steps between GMP's and GraNet's pruning steps, 50 by default)
is clamped so that the schedule has at least :data:`MIN_PRUNING_STEPS` pruning steps: the
interval used is ``max(1, min(delta_t, (t_end - t_0) // 10))``. Without it a short run (60
steps: ``t_end - t_0 = 36``) would prune once, in one shot, at ``t_end``. Zhu & Gupta prune in
tens of steps (their ``n``); RigL's ``delta_t`` (a mask-update interval at constant
sparsity) is not clamped.

**The evaluated model is at the final sparsity** (a choice: the benchmark compares methods at
one sparsity, and ``model_cost`` describes the evaluated model). Once the sparsity schedule
has ended (``t >= t_end``; RigL's masks are at the final sparsity from the start) it is the
training model: the workload's architecture with zeros at the pruned weights. Before, a dense
to sparse method is evaluated on a copy of its training model magnitude-pruned to the final
sparsity from its current masks (:func:`~trainlab.methods.sparse.magnitude_prune`, GMP's
``scope``, GraNet's global threshold; no retraining, BatchNorm statistics as they are), made
in the timed ``prepare_for_eval``. So no evaluation, and no time to target, is of a denser
model than the one the method delivers: the target can be met before ``t_end`` only if a
one-shot prune of the model at that point meets it. Unstructured zeros make nothing faster on
dense CPU kernels.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import derived_seed
from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe
from trainlab.methods.sparse import (
    GMP,
    GraNet,
    RigL,
    Sparsifier,
    magnitude_prune,
    sparsifiable_weights,
)
from trainlab.registry import register_algorithm
from trainlab.spec import (
    Batch,
    HyperparameterError,
    Param,
    SearchSpace,
    TrainlabError,
    TrainState,
    Workload,
)

#: ``derived_seed`` purpose of the random initial masks (RigL, sparse-to-sparse GraNet)
MASK_SEED_PURPOSE = 8

SPARSITY = Param(
    "sparsity",
    0.9,
    0.9,
    0.9,
    help="target fraction of zeros among the Linear/Conv weights; pinned for tuning, "
    "--set sparsity=S for another",
)
T0 = Param("t0_fraction", 0.1, 0.0, 0.5, help="first pruning step t_0, fraction of the budget")
T_END_PRUNE = Param(
    "t_end_fraction", 0.7, 0.5, 1.0, help="last pruning step t_0 + n dt, fraction of the budget"
)
DT_PRUNE = Param(
    "delta_t", 50, 10, 500, kind="int",
    help="steps between pruning steps (dt), at most (t_end - t_0) / 10",
)  # fmt: skip
#: the fewest pruning steps GMP's and GraNet's schedules take (``delta_t`` is clamped)
MIN_PRUNING_STEPS = 10


def pruning_interval(delta_t: int, t_0: int, t_end: int) -> int:
    """``delta_t`` clamped so that ``t_0 .. t_end`` holds at least :data:`MIN_PRUNING_STEPS`
    pruning steps: ``max(1, min(delta_t, (t_end - t_0) // MIN_PRUNING_STEPS))`` (steps)."""
    return max(1, min(int(delta_t), (t_end - t_0) // MIN_PRUNING_STEPS))


@dataclass(frozen=True)
class SparseSearchSpace(SearchSpace):
    """A search space whose :meth:`validate` also checks the sparsity hyperparameters against
    each other, so that a bad combination fails before training even where a single run may
    leave the tuning ranges."""

    def validate(self, hp=None, allow_out_of_range: bool = False) -> dict[str, Any]:
        out = super().validate(hp, allow_out_of_range)
        check_sparse_hp(out)
        return out


def check_sparse_hp(hp: dict[str, Any]) -> None:
    """Raise :class:`HyperparameterError` (one line) for a sparsity outside ``[0, 1)``, an
    initial sparsity outside ``[0, sparsity]``, a schedule that ends after the budget or starts
    after it ends, or ``delta_t``, ``alpha`` or ``regrowth`` outside their domain."""
    s = hp["sparsity"]
    if not 0.0 <= s < 1.0:
        raise HyperparameterError(
            f"hyperparameter sparsity={s!r} is outside [0, 1) (the target fraction of zero weights)"
        )
    if "initial_sparsity" in hp and not 0.0 <= hp["initial_sparsity"] <= s:
        raise HyperparameterError(
            f"hyperparameter initial_sparsity={hp['initial_sparsity']!r} must be in "
            f"[0, sparsity={s!r}]"
        )
    end = hp["t_end_fraction"]
    if end > 1.0:
        raise HyperparameterError(
            f"hyperparameter t_end_fraction={end!r}: the sparsity schedule would end after the "
            "step budget (it must be <= 1)"
        )
    if end <= 0.0:
        raise HyperparameterError(f"hyperparameter t_end_fraction={end!r} must be > 0")
    if "t0_fraction" in hp and not 0.0 <= hp["t0_fraction"] <= end:
        raise HyperparameterError(
            f"hyperparameter t0_fraction={hp['t0_fraction']!r} must be in [0, "
            f"t_end_fraction={end!r}]"
        )
    if hp["delta_t"] < 1:
        raise HyperparameterError(f"hyperparameter delta_t={hp['delta_t']!r} must be >= 1")
    for name in ("alpha", "regrowth"):
        if name in hp and not 0.0 <= hp[name] <= 1.0:
            raise HyperparameterError(f"hyperparameter {name}={hp[name]!r} must be in [0, 1]")


@dataclass(kw_only=True)
class SparseState(TrainState):
    sparsifier: Sparsifier
    #: the final-sparsity copy evaluated before the schedule ends, and the step it was made at
    eval_model: nn.Module | None = None
    eval_at: int = -1


class SparseRecipe(Recipe):
    """NAdamW + warmup/cosine (``horizon`` fixed at 1) and a sparsifier stepped after every
    update; subclasses build the sparsifier in :meth:`make_sparsifier`."""

    state_type = SparseState
    extra_space: SearchSpace = SearchSpace()

    def __init__(self, name: str, description: str) -> None:
        super().__init__(
            NADAMW, SCHEDULES["cosine"], name=name, description=description,
            fixed={"horizon": 1.0},
        )  # fmt: skip
        self.search_space = SparseSearchSpace(self.search_space.merged(self.extra_space).params)

    def check_workload(self, workload: Workload) -> None:
        if not sparsifiable_weights(workload.init_model(0)):
            raise TrainlabError(
                f"{self.name}: the model of {workload.full_name} has no Linear or Conv weight "
                "to sparsify"
            )

    def check_hyperparameters(self, workload: Workload, hp: dict[str, Any]) -> None:
        """The combined checks of :func:`check_sparse_hp` (also run when the search space
        validates, so a bad value never reaches here from the CLI or a benchmark)."""
        check_sparse_hp({**self.fixed, **hp})

    #: the magnitude-pruning scope of the final-sparsity eval copy (see the module docstring)
    def eval_scope(self, hp: dict[str, Any]) -> str:
        return "global"

    def prepare_for_eval(self, state: SparseState) -> nn.Module:
        """The training model once the sparsity schedule has ended; before, a copy pruned to
        the final sparsity (module docstring), remade only after an update."""
        sp = state.sparsifier
        final = state.hp["sparsity"]
        if sp.t >= getattr(sp, "t_end", 0) or sp.masks.total - sp.masks.active >= round(
                final * sp.masks.total):  # fmt: skip
            return state.model
        if state.eval_model is None or state.eval_at != sp.t:
            state.eval_model = final_sparsity_copy(state.model, sp, final,
                                                   self.eval_scope(state.hp))  # fmt: skip
            state.eval_at = sp.t
        return state.eval_model

    def steps(self, workload: Workload, hp: dict[str, Any], name: str) -> int:
        """``round(hp[name] * total_steps)``: a schedule fraction as a step count."""
        return round(hp[name] * self.total_steps(workload, hp))

    def pruning_window(self, workload: Workload, hp: dict[str, Any]) -> tuple[int, int]:
        """``(t_0, t_end)`` in steps (GMP's and GraNet's schedule)."""
        return self.steps(workload, hp, "t0_fraction"), self.steps(workload, hp, "t_end_fraction")

    def make_sparsifier(
        self, workload: Workload, model: nn.Module, optimizer: torch.optim.Optimizer,
        hp: dict[str, Any], generator: torch.Generator,
    ) -> Sparsifier:  # fmt: skip
        raise NotImplementedError

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> SparseState:
        generator = torch.Generator().manual_seed(derived_seed(seed, MASK_SEED_PURPOSE))
        sparsifier = self.make_sparsifier(workload, model, fields["optimizer"], hp, generator)
        return super().make_state(workload, model, hp, seed, sparsifier=sparsifier, **fields)

    def update(self, state: SparseState, batch: Batch, step: int) -> Tensor:
        loss = super().update(state, batch, step)
        state.sparsifier.step(step + 1)  # steps taken so far; .grad still holds this batch's
        return loss


@torch.no_grad()
def final_sparsity_copy(
    model: nn.Module, sparsifier: Sparsifier, sparsity: float, scope: str
) -> nn.Module:
    """A deep copy of ``model`` whose sparsified weights are magnitude-pruned to ``sparsity``
    from ``sparsifier``'s current masks (``scope`` ``"layer"`` or ``"global"``); ``model`` and
    the masks are unchanged."""
    copy = deepcopy(model)
    names = dict(model.named_parameters())
    ids = {id(p): n for n, p in names.items()}
    copied = dict(copy.named_parameters())
    weights = {name: copied[ids[id(w)]] for name, w in sparsifier.weights.items()}
    masks = magnitude_prune(weights, sparsifier.masks.masks, sparsity, scope)
    for name, w in weights.items():
        w.mul_(masks[name])
    return copy


class GMPAlgorithm(SparseRecipe):
    """Gradual magnitude pruning (Zhu & Gupta, 2017), dense to sparse."""

    extra_space = SearchSpace(
        (
            SPARSITY, T0, T_END_PRUNE, DT_PRUNE,
            Param("scope", "layer", kind="choice", choices=("layer", "global"),
                  help="prune each layer to s_t (the paper) or all layers with one threshold"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "gmp",
            "NAdamW + cosine with gradual magnitude pruning to the target sparsity "
            "(Zhu & Gupta, 2017)",
        )

    def eval_scope(self, hp: dict[str, Any]) -> str:
        return hp["scope"]

    def make_sparsifier(self, workload, model, optimizer, hp, generator) -> Sparsifier:
        t_0, t_end = self.pruning_window(workload, hp)
        return GMP(model, hp["sparsity"], t_0, t_end, pruning_interval(hp["delta_t"], t_0, t_end),
                   optimizer=optimizer, scope=hp["scope"])  # fmt: skip


class RigLAlgorithm(SparseRecipe):
    """RigL (Evci et al., 2020), sparse to sparse from ERK masks."""

    extra_space = SearchSpace(
        (
            SPARSITY,
            Param("t_end_fraction", 0.75, 0.5, 1.0,
                  help="T_end: last mask update, fraction of the budget"),
            Param("delta_t", 100, 10, 500, kind="int", help="steps between mask updates"),
            Param("alpha", 0.3, 0.1, 0.5, help="initial drop fraction, cosine-decayed"),
            Param("distribution", "erk", kind="choice", choices=("erk", "uniform"),
                  help="per-layer densities"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "rigl",
            "NAdamW + cosine, sparse from the start (ERK), drop by magnitude and grow by "
            "gradient every delta_t steps (RigL, Evci et al., 2020)",
        )

    def prepare_for_eval(self, state: SparseState) -> nn.Module:
        """The training model: RigL's masks hold the final sparsity from the first step."""
        return state.model

    def make_sparsifier(self, workload, model, optimizer, hp, generator) -> Sparsifier:
        return RigL(
            model, hp["sparsity"], max(1, self.steps(workload, hp, "t_end_fraction")),
            delta_t=hp["delta_t"], alpha=hp["alpha"], optimizer=optimizer,
            distribution=hp["distribution"], generator=generator,
        )  # fmt: skip


class GraNetAlgorithm(SparseRecipe):
    """GraNet (Liu et al., 2021): GMP's global schedule with neuroregeneration."""

    def __init__(self, sparse_start: bool = False) -> None:
        extras = [SPARSITY, T0, T_END_PRUNE, DT_PRUNE,
                  Param("regrowth", 0.5, 0.1, 0.9,
                        help="r_0: fraction pruned and regrown after each pruning step, "
                        "cosine-decayed")]  # fmt: skip
        if sparse_start:
            extras.append(
                Param("initial_sparsity", 0.5, 0.0, 0.8, help="s_i of the random ERK masks")
            )
        self.extra_space = SearchSpace(tuple(extras))
        mode = "sparse to sparse from ERK masks" if sparse_start else "dense to sparse"
        super().__init__(
            "granet_sparse" if sparse_start else "granet",
            f"NAdamW + cosine, GraNet {mode}: gradual global magnitude pruning with zero-cost "
            "neuroregeneration (Liu et al., 2021)",
        )

    def make_sparsifier(self, workload, model, optimizer, hp, generator) -> Sparsifier:
        t_0, t_end = self.pruning_window(workload, hp)
        return GraNet(
            model, hp["sparsity"], t_0, t_end, pruning_interval(hp["delta_t"], t_0, t_end),
            total_steps=self.total_steps(workload, hp), optimizer=optimizer,
            initial_sparsity=hp.get("initial_sparsity", 0.0), regrowth=hp["regrowth"],
            generator=generator,
        )  # fmt: skip


register_algorithm("gmp", GMPAlgorithm)
register_algorithm("rigl", RigLAlgorithm)
register_algorithm("granet", GraNetAlgorithm)
register_algorithm("granet_sparse", lambda: GraNetAlgorithm(sparse_start=True))
