"""Hard mini-batches: train on the highest-loss mini-batches among several candidates.

Paper: Subin Sahayam, John Zakkam, Umarani Jayaraman, "Can we learn better with hard samples?"
(arXiv:2304.03486, 2023). The paper's variant of mini-batch training computes the loss of
candidate mini-batches with a forward pass and back-propagates only through those with the
highest loss; its hyperparameter **delta** decides how many mini-batches are considered for
training, and the paper reports that small delta keeps accuracy while generalising faster.

Rule implemented (our reading of delta). Candidates arrive in *pools* of ``pool_size``
consecutive mini-batches from the ordinary shuffled stream. Each candidate's mean loss is
computed without gradients under the current weights; the ``delta`` candidates with the highest
loss are trained on, highest first, and the others are skipped. ``delta = pool_size`` is ordinary
training (in a loss-sorted order); ``delta = 1`` trains only on the hardest batch of each pool.

Choices where the paper is open:

* The paper ranks the mini-batches of an epoch; we rank a rolling pool of ``pool_size`` so that
  every loss is measured with weights at most ``delta`` updates old (with ``pool_size`` equal to
  the number of batches per epoch this is the whole-epoch ranking, with staler losses).
* A candidate's loss is its mean per-example loss, computed by a caller-provided scoring
  function (in the benchmark: eval mode, so scoring does not touch BatchNorm statistics).

A plain PyTorch loop (``batch_loss`` scores a candidate without gradients, in eval mode):

>>> import itertools, torch, torch.nn.functional as F
>>> from torch import nn
>>> from trainlab.nn_utils import evaluating
>>> g = torch.Generator().manual_seed(0)
>>> X, Y = torch.randn(256, 4, generator=g), torch.randint(2, (256,), generator=g)
>>> model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 2))
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> def shuffled_batches(batch_size=32):            # endless, reshuffled every epoch
...     while True:
...         for rows in torch.randperm(len(X), generator=g).split(batch_size):
...             yield X[rows], Y[rows]
>>> @torch.no_grad()
... def batch_loss(batch):
...     with evaluating(model):
...         return F.cross_entropy(model(batch[0]), batch[1])
>>> hard = hard_batches(shuffled_batches(), batch_loss, pool_size=4, delta=1)
>>> for x, y in itertools.islice(hard, 20):          # 20 updates, each on 1 of 4 candidates
...     loss = F.cross_entropy(model(x), y)
...     opt.zero_grad(); loss.backward(); opt.step()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import torch
from torch import Tensor

B = TypeVar("B")


def hardest(losses: Sequence[float] | Tensor, delta: int) -> list[int]:
    """Positions of the ``delta`` highest losses, highest first (ties: earlier first).

    The selection of Sahayam, Zakkam & Jayaraman, "Can we learn better with hard samples?"
    (arXiv:2304.03486, 2023)."""
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    values = torch.as_tensor(losses, dtype=torch.float64).flatten()
    order = torch.sort(values, descending=True, stable=True).indices
    return order[: min(delta, len(values))].tolist()


def hard_batches(
    batches: Iterable[B],
    batch_loss: Callable[[B], float | Tensor],
    pool_size: int = 4,
    delta: int = 1,
) -> Iterator[B]:
    """From each pool of ``pool_size`` candidate batches, yield the ``delta`` with the highest
    ``batch_loss`` (highest first). The losses of a pool are computed when the pool is drawn,
    i.e. with the weights current at that moment. Stops when ``batches`` runs out.
    Paper: Sahayam, Zakkam & Jayaraman, "Can we learn better with hard samples?" (arXiv:2304.03486,
    2023)."""
    if pool_size < 1:
        raise ValueError(f"pool_size must be >= 1, got {pool_size}")
    if not 1 <= delta <= pool_size:
        raise ValueError(f"delta must be in [1, pool_size={pool_size}], got {delta}")
    it = iter(batches)
    while True:
        pool = []
        for _ in range(pool_size):
            try:
                pool.append(next(it))
            except StopIteration:
                break
        if not pool:
            return
        # one host read per pool (in hardest), not one per candidate
        losses = torch.stack([torch.as_tensor(batch_loss(b), dtype=torch.float64) for b in pool])
        for i in hardest(losses, min(delta, len(pool))):
            yield pool[i]
        if len(pool) < pool_size:
            return
