"""``pskd``: NAdamW + warmup/cosine with PS-KD targets (:mod:`trainlab.methods.pskd`):
one-hot labels mixed with the model's own previous-visit predictions, the mix growing linearly
to ``pskd_alpha_T`` over the schedule (per update). Cross-entropy workloads only; label
smoothing is fixed at 0 (the soft targets replace it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.algorithms._common import (
    MAX_CACHED_FLOATS,
    MethodState,
    NadamwCosineMethod,
    needs_cross_entropy,
)
from trainlab.methods.pskd import PSKD, pskd_alpha
from trainlab.nn_utils import evaluating
from trainlab.registry import register_algorithm
from trainlab.spec import Batch, Param, SearchSpace, Workload


@dataclass(kw_only=True)
class PSKDState(MethodState):
    #: the per-example memory of past predictions
    pskd: PSKD
    #: the schedule's length ``T`` in updates
    total_steps: int


class PSKDAlgorithm(NadamwCosineMethod):
    """Self-knowledge distillation with progressively refined targets (Kim et al., 2021)."""

    state_type = PSKDState
    extra_space = SearchSpace(
        (Param("pskd_alpha_T", 0.8, 0.0, 1.0, help="weight of the past predictions at the end"),)
    )

    def __init__(self) -> None:
        super().__init__(
            "pskd",
            "NAdamW + cosine with PS-KD targets: one-hot mixed with the model's previous-epoch "
            "predictions, the mix growing linearly over training",
            fixed={"label_smoothing": 0.0},
        )

    def make_state(
        self, workload: Workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields: Any
    ) -> PSKDState:
        needs_cross_entropy(self.name, workload)
        with evaluating(model), torch.no_grad():  # one probability vector per example: its size
            probe = workload.forward(model, workload.get_examples(torch.arange(1)))
        big = probe.numel() * workload.train_size > MAX_CACHED_FLOATS
        dtype = torch.float16 if big else torch.float32  # halve the memory of large tables
        pskd = PSKD(workload.train_size, hp["pskd_alpha_T"], dtype=dtype)
        total = self.total_steps(workload, hp)
        return super().make_state(workload, model, hp, seed, pskd=pskd, total_steps=total, **fields)

    def training_loss(self, state: PSKDState, batch: Batch) -> Tensor:
        pskd = state.pskd
        outputs = state.workload.forward(state.model, batch)
        # the scheduler has stepped once per update, so its counter is this update's index k;
        # t = k + 1 (updates done after this one) reaches alpha_T at the last update
        t = state.scheduler.last_epoch + 1
        alpha = pskd_alpha(t, state.total_steps, pskd.alpha_T)
        soft = pskd.targets(batch.indices, batch.targets, alpha, outputs.shape[-1])
        loss = state.workload.loss_from_outputs(outputs, batch, soft_targets=soft).mean()
        pskd.record(batch.indices, outputs)  # the teacher for this example's next visit
        return loss


register_algorithm("pskd", PSKDAlgorithm)
