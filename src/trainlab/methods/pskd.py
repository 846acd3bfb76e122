"""PS-KD: self-knowledge distillation with progressively refined targets.

Paper: Kyungyul Kim, ByeongMoon Ji, Doyoung Yoon, Sangheum Hwang, "Self-Knowledge Distillation
with Progressive Refinement of Targets" (ICCV 2021).

Rule implemented. The model is its own teacher: the target for example ``i`` at epoch ``t`` is

    y_soft = (1 - alpha_t) * onehot(y_i) + alpha_t * p_{t-1}(x_i),   alpha_t = alpha_T * t / T,

where ``p_{t-1}(x_i)`` is the softmax prediction the model made for ``x_i`` in the previous
epoch and ``alpha_T`` (0.8 in the paper) is reached at the last epoch ``T``. Training minimises
the cross-entropy to ``y_soft``. Predictions are kept per example, keyed by the example's index
in the training set, and recorded from the training forward pass (as the authors' code does),
so the only cost is the memory for one probability vector per example.

Choices where the paper is open:

* ``t / T`` may be given as a fraction of training done, so alpha can grow per update instead
  of per epoch (the benchmark does this: update ``k`` of ``T`` uses ``t = k + 1``, so the last
  update trains with ``alpha_T`` as the last epoch does in the paper).
* An example never seen before (or with a negative index, i.e. freshly generated) has no past
  prediction; its target is the one-hot label.
* Sequence models: predictions are stored per position (``[N, L, C]``).

A plain PyTorch loop (epochs ``t = 1 .. T``, so the last epoch trains with ``alpha_T``):

>>> import torch
>>> from torch import nn
>>> from trainlab.nn_utils import soft_cross_entropy
>>> g = torch.Generator().manual_seed(0)
>>> X, Y = torch.randn(96, 4, generator=g), torch.randint(3, (96,), generator=g)
>>> model = nn.Linear(4, 3)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> pskd, T = PSKD(num_examples=len(X), alpha_T=0.8), 3
>>> for epoch in range(1, T + 1):
...     alpha = pskd_alpha(epoch, T, alpha_T=0.8)
...     for idx in torch.randperm(len(X), generator=g).split(32):  # the example indices
...         logits = model(X[idx])
...         target = pskd.targets(idx, Y[idx], alpha, num_classes=logits.shape[-1])
...         loss = soft_cross_entropy(logits, target).mean()
...         pskd.record(idx, logits)                              # the next epoch's teacher
...         opt.zero_grad(); loss.backward(); opt.step()
>>> alpha
0.8
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pskd_alpha(t: float, total: float, alpha_T: float = 0.8) -> float:
    """``alpha_t = alpha_T * t / T`` (clipped to ``[0, alpha_T]``).

    The schedule of Kim, Ji, Yoon & Hwang, "Self-Knowledge Distillation with Progressive Refinement
    of Targets" (ICCV 2021)."""
    if total <= 0:
        return alpha_T
    return alpha_T * min(max(t / total, 0.0), 1.0)


def pskd_targets(labels: Tensor, past_probs: Tensor, alpha: float) -> Tensor:
    """``(1 - alpha) * onehot(labels) + alpha * past_probs``.

    The soft targets of Kim, Ji, Yoon & Hwang, "Self-Knowledge Distillation with Progressive
    Refinement of Targets" (ICCV 2021)."""
    onehot = F.one_hot(labels.long(), past_probs.shape[-1]).to(past_probs.dtype)
    return (1.0 - alpha) * onehot + alpha * past_probs


class PSKD:
    """Per-example memory of the last predictions, and the PS-KD targets built from it.

    Neither :meth:`targets` nor :meth:`record` reads a value back to the host: negative
    (fresh) indices are routed to a scratch row that is never marked seen.

    Paper: Kim, Ji, Yoon & Hwang, "Self-Knowledge Distillation with Progressive Refinement of
    Targets" (ICCV 2021).
    """

    def __init__(
        self, num_examples: int, alpha_T: float = 0.8, dtype: torch.dtype = torch.float32
    ) -> None:
        if not 0.0 <= alpha_T <= 1.0:
            raise ValueError(f"alpha_T must be in [0, 1], got {alpha_T}")
        self.num_examples = num_examples
        self.alpha_T = alpha_T
        self.dtype = dtype
        self._probs: Tensor | None = None  # [N + 1, *label_shape, C], allocated on first record
        self._seen = torch.zeros(num_examples + 1, dtype=torch.bool)

    @property
    def probs(self) -> Tensor | None:
        """The last recorded softmax per example ``[N, *label_shape, C]`` (``None`` before the
        first :meth:`record`)."""
        return None if self._probs is None else self._probs[: self.num_examples]

    @property
    def seen(self) -> Tensor:
        """``[N]`` booleans: which examples have a recorded prediction."""
        return self._seen[: self.num_examples]

    def _rows(self, indices: Tensor) -> Tensor:
        idx = indices.to(self._seen.device).long()
        return torch.where(idx >= 0, idx, self.num_examples)

    def targets(self, indices: Tensor, labels: Tensor, alpha: float, num_classes: int) -> Tensor:
        """Soft targets for a batch: past predictions where known, else the one-hot label."""
        onehot = F.one_hot(labels.long(), num_classes).float()
        if self._probs is None or alpha == 0.0:
            return onehot
        rows = self._rows(indices)
        known = self._seen[rows].view(-1, *([1] * (onehot.ndim - 1)))
        past = torch.where(known, self._probs[rows].to(onehot), onehot)
        return pskd_targets(labels, past, alpha)

    @torch.no_grad()
    def record(self, indices: Tensor, logits: Tensor) -> None:
        """Remember ``softmax(logits)`` for the examples at ``indices`` (negative: skipped)."""
        if self._probs is None:
            shape = (self.num_examples + 1, *logits.shape[1:])
            self._probs = torch.zeros(shape, dtype=self.dtype, device=logits.device)
            self._seen = self._seen.to(logits.device)
        rows = self._rows(indices)
        self._probs[rows] = logits.detach().float().softmax(-1).to(self.dtype)
        self._seen[rows] = True
        self._seen[self.num_examples] = False  # the scratch row of fresh examples
