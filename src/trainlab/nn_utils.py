"""Small PyTorch helpers that several layers share (workloads, methods, algorithms).

Only plain-PyTorch code lives here: nothing in this module knows the benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards, even
    when the block raises.

    >>> import torch
    >>> net = torch.nn.Dropout(0.5)
    >>> with evaluating(net):
    ...     net.training
    False
    >>> net.training
    True
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy against a probability distribution per example, ``-sum(p * log_softmax(z))``
    over the last (class) axis; shape ``logits.shape[:-1]``. Equal to ``F.cross_entropy`` with
    probability targets and ``reduction="none"``, for any number of leading axes.

    >>> import torch
    >>> z = torch.zeros(2, 4)
    >>> soft_cross_entropy(z, torch.full((2, 4), 0.25))  # log 4
    tensor([1.3863, 1.3863])
    """
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1)


def shuffled_batches(
    pool: Tensor, batch_size: int, generator: torch.Generator, epochs: int | None = None
) -> Iterator[Tensor]:
    """Rows of ``pool`` in batches of ``batch_size``, reshuffled every pass (endless unless
    ``epochs`` is given); the last partial batch of a pass is dropped, so every batch is full.
    The permutation is drawn on the CPU with ``generator`` and moved to ``pool``'s device.

    >>> g = torch.Generator().manual_seed(0)
    >>> [b.tolist() for b in shuffled_batches(torch.arange(5), 2, g, epochs=1)]
    [[4, 0], [1, 3]]
    """
    passes = 0
    while epochs is None or passes < epochs:
        order = pool[torch.randperm(len(pool), generator=generator).to(pool.device)]
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield order[start : start + batch_size]
        passes += 1
