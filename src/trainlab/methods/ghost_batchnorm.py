"""Ghost Batch Normalization.

Paper: Hoffer, Hubara & Soudry, "Train longer, generalize better: closing the generalization
gap in large batch training of neural networks" (2017).

In training mode a batch of ``N`` examples is split, in order, into *ghost* (virtual) batches of
``ghost_batch_size`` examples (the last one smaller when ``N`` is not a multiple); each ghost
batch is normalized with its own mean and (biased) variance, per channel::

    y = (x - mean_ghost) / sqrt(var_ghost + eps) * weight + bias

so a large batch sees the normalization noise of a small one. Running statistics are updated
once per ghost batch, exactly as :class:`torch.nn.BatchNorm2d` would update them had it seen
the ghost batches one after the other (momentum, or the cumulative average when
``momentum=None``; the unbiased ghost-batch variance; ``num_batches_tracked`` counts ghost
batches). In eval mode, and whenever the batch is not larger than ``ghost_batch_size``, the
module is exactly its BatchNorm parent. Choice where the paper is open: the running statistics
follow the ghost batches (as in the authors' code) rather than the full batch.

Drop-in use (same constructor arguments as BatchNorm, plus ``ghost_batch_size``; same
``state_dict``):

>>> import torch.nn.functional as F
>>> _ = torch.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(5, 4), GhostBatchNorm1d(4, ghost_batch_size=8), nn.ReLU(),
...                       nn.Linear(4, 2))
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> x, y = torch.randn(32, 5), torch.randint(2, (32,))   # a batch of 32: 4 ghost batches
>>> loss = F.cross_entropy(model(x), y)
>>> opt.zero_grad(); loss.backward(); opt.step()
>>> int(model[1].num_batches_tracked)
4
>>> gbn = GhostBatchNorm1d(1, ghost_batch_size=2, affine=False, eps=1e-8)
>>> out = gbn(torch.tensor([[0.0], [2.0], [10.0], [30.0]]))     # each pair alone
>>> [round(v, 4) for v in out.flatten().tolist()]
[-1.0, 1.0, -1.0, 1.0]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _GhostBatchNorm(nn.modules.batchnorm._BatchNorm):
    def __init__(
        self,
        num_features: int,
        ghost_batch_size: int = 32,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        if ghost_batch_size < 1:
            raise ValueError("ghost_batch_size must be >= 1")
        self.ghost_batch_size = int(ghost_batch_size)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", ghost_batch_size={self.ghost_batch_size}"

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        n = input.shape[0]
        if not self.training or n <= self.ghost_batch_size:
            return super().forward(input)
        if n % self.ghost_batch_size == 0:
            return self._forward_reshaped(input)
        return self._forward_chunks(input)

    def _forward_chunks(self, input: Tensor) -> Tensor:
        """Reference path: the BatchNorm parent on each ghost batch in turn."""
        return torch.cat(
            [
                super(_GhostBatchNorm, self).forward(chunk)
                for chunk in input.split(self.ghost_batch_size)
            ]
        )

    def _forward_reshaped(self, input: Tensor) -> Tensor:
        """All ghost batches in one ``batch_norm`` call: ghost batch ``j``'s channel ``c``
        becomes channel ``j * C + c`` of a batch of ``ghost_batch_size`` examples."""
        n, c = input.shape[0], input.shape[1]
        g = self.ghost_batch_size
        k = n // g
        rest = input.shape[2:]
        x = input.reshape(k, g, c, *rest).transpose(0, 1).reshape(g, k * c, *rest)
        weight = self.weight.repeat(k) if self.weight is not None else None
        bias = self.bias.repeat(k) if self.bias is not None else None
        y = F.batch_norm(x, None, None, weight, bias, True, 0.0, self.eps)
        if self.track_running_stats and self.running_mean is not None:
            self._update_running_stats(x.detach(), k, c)
        return y.reshape(g, k, c, *rest).transpose(0, 1).reshape(input.shape)

    @torch.no_grad()
    def _update_running_stats(self, x: Tensor, k: int, c: int) -> None:
        dims = [0, *range(2, x.dim())]
        means = x.mean(dim=dims).view(k, c)
        variances = x.var(dim=dims, unbiased=True).view(k, c)
        for j in range(k):  # one BatchNorm update per ghost batch, in order
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
            mean, var = (
                means[j].to(self.running_mean.dtype),
                variances[j].to(self.running_var.dtype),
            )
            self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
            self.running_var.mul_(1.0 - factor).add_(var, alpha=factor)


class GhostBatchNorm1d(_GhostBatchNorm, nn.BatchNorm1d):
    """Ghost Batch Normalization for ``(N, C)`` or ``(N, C, L)`` inputs: in training, each run
    of ``ghost_batch_size`` examples is normalized by its own statistics (see the module doc).
    Paper: Hoffer, Hubara & Soudry, "Train longer, generalize better: closing the
    generalization gap in large batch training of neural networks" (NeurIPS 2017)."""


class GhostBatchNorm2d(_GhostBatchNorm, nn.BatchNorm2d):
    """Ghost Batch Normalization for ``(N, C, H, W)`` inputs: in training, each run of
    ``ghost_batch_size`` examples is normalized by its own statistics (see the module doc).
    Paper: Hoffer, Hubara & Soudry, "Train longer, generalize better: closing the
    generalization gap in large batch training of neural networks" (NeurIPS 2017)."""
