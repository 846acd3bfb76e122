"""``useful``: NAdamW + warmup/cosine restarted on data where the cluster each class learns late
is upsampled (:mod:`trainlab.methods.useful`).

A short early run (a prefix of the trial's own ``nadamw`` run, on a copy of the initial
weights), k-means (k = 2) per class on its outputs, the higher-loss cluster upsampled; the model
then trains from its untouched initial weights. All of it happens inside ``init``, so on the
timed clock.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import (
    MethodState,
    NadamwCosineMethod,
    score_training_set,
    train_run,
)
from trainlab.methods.useful import cluster_features, slow_learnable_mask, upsampled_indices
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, Workload


@dataclass(kw_only=True)
class UsefulState(MethodState):
    #: True for the examples in the late-learned cluster of their class
    slow: Tensor
    #: the training indices drawn from (slow examples ``useful_upsample`` times)
    indices: Tensor


class Useful(NadamwCosineMethod):
    """Upsample the late-learned cluster of each class, then train from scratch (Nguyen et al.,
    2024, USEFUL)."""

    state_type = UsefulState
    extra_space = SearchSpace(
        (
            Param("useful_early_fraction", 0.08, 0.02, 0.3,
                  help="length of the early run, as a fraction of the schedule"),
            Param("useful_upsample", 2, 2, 4, kind="int",
                  help="copies of each slow-learnable example"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "useful",
            "NAdamW + cosine restarted on data where the cluster learned late is upsampled "
            "(USEFUL)",
        )

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> UsefulState:
        # ``model`` stays at its initial weights: the early run trains a copy
        steps = max(1, round(hp["useful_early_fraction"] * self.total_steps(workload, hp)))
        early = train_run(workload, hp, seed, steps, model=copy.deepcopy(model))
        feats, labels = [], []

        @torch.no_grad()
        def score(batch: Batch) -> Tensor:
            outputs = workload.forward(early, batch)
            feats.append(cluster_features(outputs, batch.targets).cpu())
            labels.append(batch.targets.cpu())
            return workload.loss_from_outputs(outputs, batch)

        losses = score_training_set(workload, early, score)
        targets = torch.cat(labels)
        per_class = not targets.dtype.is_floating_point and targets.ndim == 1
        slow = slow_learnable_mask(
            torch.cat(feats), losses, targets if per_class else None, seed=seed
        )
        indices = upsampled_indices(slow, hp["useful_upsample"])
        return super().make_state(workload, model, hp, seed, slow=slow, indices=indices, **fields)

    def select_data(self, state: UsefulState, stream: Iterator[Batch]) -> Iterator[Batch]:
        return state.workload.batches(state.batch_size, state.seed, indices=state.indices)


register_algorithm("useful", Useful)
