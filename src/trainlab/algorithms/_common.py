"""Helpers shared by the method algorithms (data selection, distillation, averaging).

Private: the registry skips modules whose name starts with ``_``, so nothing here registers an
algorithm. What is here is benchmark glue (workloads, seeds, the baseline recipe); the
pure-PyTorch parts live in :mod:`trainlab.methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms.baselines import NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe, SchedulePart
from trainlab.methods.data_diet import score_examples
from trainlab.spec import Batch, SearchSpace, TrainlabError, TrainState, Workload

#: the plain baseline, used for scoring runs and teachers
BASE = Recipe(NADAMW, SCHEDULES["cosine"], name="nadamw")

#: examples per forward pass when scoring the whole training set
SCORE_CHUNK = 1024

#: per-example tables (teacher targets, PS-KD predictions) larger than this many numbers are not
#: cached (ensemble_kd) or are stored in float16 (pskd)
MAX_CACHED_FLOATS = 50_000_000


def derived_seed(seed: int, purpose: int, run: int = 0) -> int:
    """A seed for auxiliary models/streams, distinct from the trial seed and from each other.

    Purposes in use: 1 data-diet scoring runs, 3 curriculum scorer, 4 curriculum draws,
    5 teachers, 7 SWA BatchNorm stream.
    """
    return 1_000_003 * (int(seed) + 1) + 7_919 * purpose + run


@dataclass(kw_only=True)
class MethodState(TrainState):
    """The state of a :class:`NadamwCosineMethod`: the trial seed (for derived streams) and the
    batch size the runner draws."""

    seed: int
    batch_size: int


class NadamwCosineMethod(Recipe):
    """NAdamW + warmup/cosine (or another ``schedule``) with the method's extra hyperparameters
    (``extra_space``) appended; its state is a :class:`MethodState` or an extension of it."""

    extra_space: SearchSpace = SearchSpace()
    state_type: type[MethodState] = MethodState

    def __init__(
        self,
        name: str,
        description: str,
        defaults: dict[str, Any] | None = None,
        fixed: dict[str, Any] | None = None,
        schedule: SchedulePart | None = None,
    ) -> None:
        super().__init__(
            NADAMW, schedule or SCHEDULES["cosine"], name=name, description=description,
            defaults=defaults, fixed=fixed,
        )  # fmt: skip
        self.search_space = self.search_space.merged(self.extra_space)

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> MethodState:
        size = self.batch_size(workload, hp)
        return super().make_state(workload, model, hp, seed, seed=seed, batch_size=size, **fields)


def train_run(
    workload: Workload,
    hp: dict[str, Any],
    seed: int,
    steps: int,
    model: nn.Module | None = None,
    schedule_steps: int | None = None,
) -> nn.Module:
    """Train ``model`` (default: a fresh ``init_model(seed)``) for ``steps`` baseline updates on
    the stream of ``seed``. The schedule spans ``schedule_steps`` (default: the baseline's own
    horizon, so a short run is a *prefix* of an ordinary run)."""
    hp = dict(hp)
    if schedule_steps is not None:
        hp["horizon"] = max(schedule_steps, 1) / workload.step_hint
    if model is None:
        model = workload.init_model(seed)
    state = BASE.init(workload, model, hp, seed)
    stream = workload.batches(BASE.batch_size(workload, hp), seed)
    for step in range(steps):
        BASE.update(state, next(stream), step)
    return model


def score_training_set(
    workload: Workload, model: nn.Module, score: Callable[[Batch], Tensor]
) -> Tensor:
    """``score(batch)`` over the whole training split in index order, the model in eval mode."""
    return score_examples(model, workload.train_size, workload.get_examples, score, SCORE_CHUNK)


def per_example_losses(workload: Workload, model: nn.Module) -> Tensor:
    """Unsmoothed per-example training losses of ``model`` on the whole training split."""

    @torch.no_grad()
    def score(batch: Batch) -> Tensor:
        return workload.loss(model, batch)

    return score_training_set(workload, model, score)


def needs_cross_entropy(name: str, workload: Workload) -> None:
    """Refuse a workload whose loss is not cross-entropy (soft targets need classes)."""
    if workload.loss_type != "cross_entropy":
        raise TrainlabError(
            f"{name} needs a cross-entropy workload; "
            f"{workload.name} has loss {workload.loss_type!r}"
        )
