"""``cyclical_curriculum``: NAdamW + warmup/cosine on per-epoch subsets whose size cycles
between an easy-first fraction and the full data (:mod:`trainlab.methods.cyclical_curriculum`).

Difficulty is the per-example loss of a scoring model trained briefly (a prefix of an ordinary
``nadamw`` run from its own initialisation) inside ``init``, so on the timed clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import (
    MethodState,
    NadamwCosineMethod,
    derived_seed,
    per_example_losses,
    train_run,
)
from trainlab.methods.cyclical_curriculum import CyclicalCurriculum
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, Workload


@dataclass(kw_only=True)
class CurriculumState(MethodState):
    #: per-example loss of the scoring model (training-split order)
    difficulty: Tensor
    #: the epoch subsets; its ``epoch`` is the one being trained on
    curriculum: CyclicalCurriculum


class CyclicalCurriculumAlgorithm(NadamwCosineMethod):
    """Epoch subsets cycling between easy-first and full data (Kesgin & Amasyali, 2022)."""

    state_type = CurriculumState
    extra_space = SearchSpace(
        (
            Param("ccl_start_fraction", 0.25, 0.05, 1.0, help="smallest data fraction"),
            Param("ccl_multiplier", 0.5, 0.25, 0.9, help="per-epoch size ratio of the cycle"),
            Param("ccl_score_fraction", 0.1, 0.02, 0.5,
                  help="scoring model's training length, as a fraction of the schedule"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "cyclical_curriculum",
            "NAdamW + cosine on per-epoch subsets whose size cycles between an easy-first "
            "fraction and the full data",
        )

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> CurriculumState:
        steps = max(1, round(hp["ccl_score_fraction"] * self.total_steps(workload, hp)))
        scorer = train_run(workload, hp, derived_seed(seed, 3), steps)
        difficulty = per_example_losses(workload, scorer)
        curriculum = CyclicalCurriculum(difficulty, hp["ccl_start_fraction"], hp["ccl_multiplier"])
        return super().make_state(
            workload, model, hp, seed, difficulty=difficulty, curriculum=curriculum, **fields
        )

    def select_data(self, state: CurriculumState, stream: Iterator[Batch]) -> Iterator[Batch]:
        gen = torch.Generator().manual_seed(derived_seed(state.seed, 4))
        rows = state.curriculum.batch_indices(state.batch_size, gen)
        return map(state.workload.get_examples, rows)


register_algorithm("cyclical_curriculum", CyclicalCurriculumAlgorithm)
