"""``hard_samples``: NAdamW + warmup/cosine trained only on the highest-loss mini-batches of
each pool of candidates (:mod:`trainlab.methods.hard_samples`).

The candidates' forward passes run in ``select_data``, so on the timed clock; they are scored
in eval mode so that scoring leaves BatchNorm statistics alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from trainlab.algorithms._common import MethodState, NadamwCosineMethod
from trainlab.methods.hard_samples import hard_batches
from trainlab.nn_utils import evaluating
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace


class HardSamples(NadamwCosineMethod):
    """Train on the ``delta`` highest-loss batches of every pool of candidates (Sahayam et al.,
    2023, 'Can we learn better with hard samples?')."""

    extra_space = SearchSpace(
        (
            Param("hard_pool", 4, 2, 16, kind="int", help="candidate batches per pool"),
            Param("hard_delta", 1, 1, 8, kind="int",
                  help="batches trained on per pool (the paper's delta; clipped to hard_pool)"),
        )
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(
            "hard_samples",
            "NAdamW + cosine trained only on the highest-loss mini-batches of each candidate pool",
        )

    def select_data(self, state: MethodState, stream: Iterator[Batch]) -> Iterator[Batch]:
        pool = state.hp["hard_pool"]
        delta = min(state.hp["hard_delta"], pool)
        model, workload = state.model, state.workload

        @torch.no_grad()
        def batch_loss(batch: Batch) -> Tensor:
            with evaluating(model):
                return workload.mean_loss(model, batch)

        return hard_batches(stream, batch_loss, pool_size=pool, delta=delta)


register_algorithm("hard_samples", HardSamples)
