"""Algorithms whose learning rate is set on the fly by a controller: ``autolrs`` and ``accelat``.

Both are :class:`~trainlab.algorithms.recipe.Recipe` subclasses on the NAdamW optimizer part
(the strongest AlgoPerf baseline optimizer) with the controller in place of a schedule. All
controller work (checkpoints, explorations, forecasts, GP fits, held-out accuracy) happens in
``init``, ``select_data``, ``update`` and ``prepare_for_eval``, so it is on the timed clock.

- ``autolrs`` (:mod:`trainlab.methods.autolrs`) is self-tuning, as the paper intends: its only
  inputs are the lr search range, fixed here to the baselines' Adam range [1e-4, 3e-2], and the
  stage length, ``tau = step_hint / 8`` (at least 40 steps), doubling up to ``8 tau`` (the
  paper's 1000 -> 8000). Other hyperparameters are the NAdamW defaults. Simplification for
  benchmark-sized budgets: 6 candidates per stage instead of 10, so the search costs
  ``0.6 tau`` steps per stage of ``tau`` (with ``tau' = tau / 10``). Exploration steps are
  runner steps (they count toward steps-to-target); while exploring, ``prepare_for_eval``
  returns the stage checkpoint, the weights training actually continues from. A candidate that
  blows up is a search result, not a divergence: ``update`` then reports the last finite loss.
- ``accelat`` (:mod:`trainlab.methods.accelat`) tunes the initial lr (and the NAdamW
  hyperparameters), the cut factor and the accuracy-gradient threshold; window and patience
  are the paper's 5 epochs. The held-out accuracy comes from a slice of the *training* split
  (10 %, at most 1,024 examples, drawn with the trial's seed) that is removed from the training
  stream and scored inside the timed ``update``; the workload's validation split is never read.
  A controller "epoch" is one pass over the remaining training data, capped at 1/20 of the
  schedule horizon so that short budgets still see 20 checks. For regression workloads the
  score is ``-log(mse)`` on the slice (so the threshold is a relative improvement).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import COMMON_SPACE, Recipe, SchedulePart
from trainlab.methods.accelat import AccelAT
from trainlab.methods.autolrs import AutoLRS
from trainlab.nn_utils import evaluating
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, TrainState, Workload


def _no_factor(step: int, total: int, hp: dict[str, Any]) -> float:
    raise AssertionError("a controller sets the learning rate; no schedule factor is used")


#: The ``Recipe`` constructor needs a schedule part; a controller has none. This one has no
#: hyperparameters and a factor that fails loudly if anything ever builds a schedule from it
#: (the recipes below return ``None`` from ``build_scheduler``).
CONTROLLER = SchedulePart("controller", SearchSpace(), _no_factor, "lr set by a controller")


class ControlledRecipe(Recipe):
    """A recipe whose learning rate a controller sets: no scheduler."""

    def build_scheduler(self, workload, optimizer, hp):
        return None


# --------------------------------------------------------------------------------------------
# AutoLRS


@dataclass(kw_only=True)
class AutoLRSState(TrainState):
    controller: AutoLRS
    #: the copy that holds the stage checkpoint for evaluation while the controller explores
    eval_model: nn.Module
    #: the last finite training loss, reported when a candidate lr blows up
    last_loss: float = 0.0


class AutoLRSRecipe(ControlledRecipe):
    """NAdamW with the learning rate of each stage chosen by AutoLRS (self-tuning)."""

    lr_min = 1e-4
    lr_max = 3e-2
    n_trials = 6
    tau_fraction = 1 / 8
    min_tau = 40
    tau_growth = 8

    def __init__(self) -> None:
        defaults = COMMON_SPACE.merged(NADAMW.space).defaults()
        super().__init__(
            NADAMW,
            CONTROLLER,
            name="autolrs",
            description="NAdamW with AutoLRS (Jin et al., 2021): per-stage lr by Bayesian "
            "optimization over short explorations with exponential loss forecasts",
            fixed=defaults,
        )

    state_type = AutoLRSState

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> AutoLRSState:
        tau = max(self.min_tau, round(self.tau_fraction * workload.step_hint))
        controller = AutoLRS(
            model,
            fields["optimizer"],
            self.lr_min,
            self.lr_max,
            tau=tau,
            n_trials=self.n_trials,
            tau_max=self.tau_growth * tau,
            seed=seed,
        )
        return super().make_state(workload, model, hp, seed, controller=controller,
                                  eval_model=copy.deepcopy(model), **fields)  # fmt: skip

    def update(self, state: AutoLRSState, batch: Batch, step: int) -> Tensor:
        controller = state.controller
        exploring = controller.exploring
        state.model.train()
        loss = self.training_loss(state, batch)
        value = float(loss.detach())
        if math.isfinite(value):
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()
        controller.step(value)
        if not math.isfinite(value) and exploring:
            # a candidate lr blew up: a search result; training continues from the checkpoint
            return torch.tensor(state.last_loss)
        state.last_loss = value
        return loss.detach()

    def prepare_for_eval(self, state: AutoLRSState) -> nn.Module:
        reference = state.controller.reference_state()
        if reference is None:
            return state.model
        state.eval_model.load_state_dict(reference)
        return state.eval_model


# --------------------------------------------------------------------------------------------
# AccelAT

ACCELAT_SPACE = SearchSpace(
    (
        Param("reduce_factor", 0.8, 0.3, 0.95, help="lr multiplier at a flat accuracy gradient"),
        Param("threshold", 0.005, 1e-4, 0.05, log=True, help="accuracy-gradient threshold"),
    )
)


@dataclass(kw_only=True)
class AccelATState(TrainState):
    controller: AccelAT
    #: the held-out slice of the training split that the controller scores
    holdout: Batch
    #: the rest of the training split, the only examples trained on
    train_indices: Tensor
    #: updates per controller "epoch"
    epoch_steps: int
    batch_size: int
    seed: int


class AccelATRecipe(ControlledRecipe):
    """NAdamW at a constant lr that AccelAT cuts when held-out accuracy stops rising."""

    holdout_fraction = 0.1
    holdout_max = 1024
    min_checks = 20
    score_chunk = 256

    def __init__(self) -> None:
        super().__init__(
            NADAMW,
            CONTROLLER,
            name="accelat",
            description="NAdamW with AccelAT (Nikfam et al., 2022): lr cut per epoch when the "
            "gradient of held-out (training-slice) accuracy flattens",
        )
        self.search_space = self.search_space.merged(ACCELAT_SPACE)

    state_type = AccelATState

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> AccelATState:
        n = workload.train_size
        gen = torch.Generator().manual_seed(int(seed) + 7919)  # not the stream's own generator
        order = torch.randperm(n, generator=gen)
        n_hold = min(max(1, round(self.holdout_fraction * n)), self.holdout_max, n - 1)
        holdout = order[:n_hold].sort().values
        train_indices = order[n_hold:].sort().values
        batch_size = self.batch_size(workload, hp)
        epoch_steps = max(
            1,
            min(
                math.ceil(len(train_indices) / batch_size),
                self.total_steps(workload, hp) // self.min_checks,
            ),
        )
        controller = AccelAT(
            fields["optimizer"], factor=hp["reduce_factor"], threshold=hp["threshold"]
        )
        return super().make_state(
            workload, model, hp, seed,
            controller=controller,
            holdout=workload.get_examples(holdout),
            train_indices=train_indices,
            epoch_steps=epoch_steps,
            batch_size=batch_size,
            seed=seed,
            **fields,
        )  # fmt: skip

    def select_data(self, state: AccelATState, stream):
        # the runner's stream covers the whole training split; train on the rest of it only
        return state.workload.batches(state.batch_size, state.seed, indices=state.train_indices)

    @torch.no_grad()
    def holdout_score(self, state: AccelATState) -> float:
        """Accuracy on the held-out training slice (``-log(mse)`` for regression workloads)."""
        workload, holdout = state.workload, state.holdout
        correct, total, loss_sum = 0.0, 0, 0.0
        with evaluating(state.model) as model:
            for start in range(0, len(holdout), self.score_chunk):
                part = holdout.subset(
                    torch.arange(start, min(start + self.score_chunk, len(holdout)))
                )
                outputs = workload.forward(model, part)
                if workload.loss_type == "cross_entropy":
                    hits = outputs.argmax(-1) == part.targets
                    correct += float(hits.float().sum())
                    total += hits.numel()
                else:
                    loss_sum += float(workload.loss_from_outputs(outputs, part).sum())
                    total += len(part)
        if workload.loss_type == "cross_entropy":
            return correct / total
        mse = loss_sum / total
        return -math.log(mse) if mse > 0 else math.inf

    def update(self, state: AccelATState, batch: Batch, step: int) -> Tensor:
        loss = super().update(state, batch, step)
        if (step + 1) % state.epoch_steps == 0:
            state.controller.step(self.holdout_score(state))
        return loss


register_algorithm("autolrs", AutoLRSRecipe)
register_algorithm("accelat", AccelATRecipe)
