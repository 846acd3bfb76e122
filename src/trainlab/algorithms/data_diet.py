"""``data_diet_el2n`` / ``data_diet_grand``: NAdamW + warmup/cosine on the examples with the
highest EL2N / GraNd scores (:mod:`trainlab.methods.data_diet`).

Every training example is scored after a short run from each of ``diet_runs`` independent
initialisations (prefixes of an ordinary ``nadamw`` run, seeded from the trial seed but not the
trained model's), the scores averaged, and the highest-scoring fraction kept after an optional
offset of the very hardest. The scoring runs and passes happen inside ``init``, so on the timed
clock. Nothing looks at the validation split.
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
    score_training_set,
    train_run,
)
from trainlab.methods.data_diet import (
    average_over_runs,
    el2n_scores,
    grand_chunk_size,
    grand_scores,
    select_by_score,
)
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, Workload


@dataclass(kw_only=True)
class DataDietState(MethodState):
    #: per-example score averaged over the scoring runs (training-split order)
    scores: Tensor
    #: the training indices kept
    keep: Tensor


def _fresh_indices(n: int, device: torch.device) -> Tensor:
    return torch.full((n,), -1, dtype=torch.long, device=device)


def el2n_of(workload: Workload, model: nn.Module) -> Tensor:
    """EL2N of every training example under ``model`` (eval mode)."""

    @torch.no_grad()
    def score(batch: Batch) -> Tensor:
        return el2n_scores(workload.forward(model, batch), batch.targets)

    return score_training_set(workload, model, score)


def grand_of(workload: Workload, model: nn.Module) -> Tensor:
    """GraNd of every training example under ``model`` (eval mode, unsmoothed loss)."""

    def loss_fn(m: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return workload.loss(m, Batch(x, y, _fresh_indices(len(x), x.device)))

    chunk = grand_chunk_size(model)

    def score(batch: Batch) -> Tensor:
        return grand_scores(model, loss_fn, batch.inputs, batch.targets, chunk_size=chunk)

    return score_training_set(workload, model, score)


class DataDiet(NadamwCosineMethod):
    """Train on the examples with the highest EL2N or GraNd score (Paul et al., 2021)."""

    state_type = DataDietState

    def __init__(self, score: str) -> None:
        if score not in ("el2n", "grand"):
            raise ValueError(f"unknown data-diet score {score!r}")
        self.score = score
        # the paper computes EL2N after ~10% of training and shows GraNd working already at
        # initialisation (diet_score_fraction=0); on this suite GraNd at init selects poorly
        # (see benchmarks/data_methods.py), so both default to 10%
        self.extra_space = SearchSpace(
            (
                Param("diet_keep_fraction", 0.8, 0.05, 1.0, help="fraction of examples kept"),
                Param("diet_offset_fraction", 0.0, 0.0, 0.3,
                      help="fraction of the highest scorers skipped before keeping"),
                Param("diet_runs", 2, 1, 8, kind="int",
                      help="independent initialisations the scores are averaged over"),
                Param("diet_score_fraction", 0.1, 0.0, 0.5,
                      help="length of each scoring run, as a fraction of the schedule"),
            )
        )  # fmt: skip
        super().__init__(
            f"data_diet_{score}",
            f"NAdamW + cosine on the examples with the highest {score.upper()} scores "
            "(Paul et al., 2021, 'Deep Learning on a Data Diet')",
        )

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> DataDietState:
        steps = round(hp["diet_score_fraction"] * self.total_steps(workload, hp))
        scorer = el2n_of if self.score == "el2n" else grand_of

        def run(r: int) -> Tensor:
            return scorer(workload, train_run(workload, hp, derived_seed(seed, 1, r), steps))

        scores = average_over_runs(run, hp["diet_runs"])
        keep = select_by_score(scores, hp["diet_keep_fraction"], hp["diet_offset_fraction"])
        return super().make_state(workload, model, hp, seed, scores=scores, keep=keep, **fields)

    def select_data(self, state: DataDietState, stream: Iterator[Batch]) -> Iterator[Batch]:
        return state.workload.batches(state.batch_size, state.seed, indices=state.keep)


register_algorithm("data_diet_el2n", lambda: DataDiet("el2n"))
register_algorithm("data_diet_grand", lambda: DataDiet("grand"))
