"""``one_pass``: NAdamW + warmup/cosine on freshly generated examples, never a repeated one
(:mod:`trainlab.methods.one_pass`; ``generative`` workloads only).

The workload's architecture and budget are fixed, so the method's size/iteration planning does
not apply; what applies is its data rule: every batch comes from the workload's generator and
passes through :func:`~trainlab.methods.one_pass.one_pass`, which fails the trial if an example
ever came back.
"""

from __future__ import annotations

from collections.abc import Iterator

from trainlab.algorithms._common import MethodState, NadamwCosineMethod
from trainlab.methods.one_pass import one_pass
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, TrainlabError, Workload


class OnePass(NadamwCosineMethod):
    """Every batch newly generated: no example is ever repeated (Komatsuzaki, 2019)."""

    def __init__(self) -> None:
        super().__init__(
            "one_pass",
            "NAdamW + cosine on freshly generated examples instead of repeated epochs "
            "('One Epoch Is All You Need')",
        )

    def check_workload(self, workload: Workload) -> None:
        if not workload.generative:
            raise TrainlabError(
                f"one_pass needs a workload that generates fresh examples; {workload.full_name} "
                "does not (a workload built from a user's file never does)"
            )

    def select_data(self, state: MethodState, stream: Iterator[Batch]) -> Iterator[Batch]:
        fresh = state.workload.fresh_batches(state.batch_size, state.seed)
        return one_pass(fresh, key=lambda batch: batch.indices)


register_algorithm("one_pass", OnePass)
