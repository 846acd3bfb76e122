"""Weight averaging for evaluation: an exponential moving average (EMA) of the weights, and
Stochastic Weight Averaging (SWA) with BatchNorm statistics recomputed for the average.

Papers: Pavel Izmailov, Dmitrii Podoprikhin, Timur Garipov, Dmitry Vetrov, Andrew Gordon Wilson,
"Averaging Weights Leads to Wider Optima and Better Generalization" (UAI 2018) for SWA; the EMA
of weights is the Polyak-Ruppert averaging variant used since (e.g. Polyak & Juditsky, 1992;
Tan & Le's EfficientNet training, 2019).

Rules implemented, on ``torch.optim.swa_utils``' public helpers (``AveragedModel``,
``get_ema_multi_avg_fn``, ``update_bn``).

* **EMA**: after every update ``w_ema <- d * w_ema + (1 - d) * w``, starting from the weights
  the EMA was built from. With ``warmup=True`` the decay used at update ``n`` (1-based) is
  ``min(d, (1 + n) / (10 + n))`` so that the average is not dominated by the initial weights
  early on (the TensorFlow ``ExponentialMovingAverage`` rule; a choice, not part of any one
  paper). ``get_ema_multi_avg_fn`` takes one fixed decay, so the warmup calls it with the decay
  of each update. Buffers (BatchNorm running statistics) are copied, not averaged
  (``AveragedModel``'s ``use_buffers=False``).
* **SWA**: from ``swa_start`` on, every ``every`` updates, the running mean
  ``w_swa <- w_swa + (w - w_swa) / (n + 1)`` of the weights visited (``n`` = models averaged
  so far; ``AveragedModel``'s default). The paper runs that phase with a constant (or
  cyclical) learning rate after a decaying one; :func:`swa_schedule` anneals to the SWA
  learning rate at ``swa_start`` and holds it. Because averaged weights change the activation
  statistics, BatchNorm running statistics of the averaged model are recomputed by a pass over
  training batches (:func:`recompute_batchnorm`, ``update_bn``'s cumulative average) before it
  is evaluated.

The averaged models are separate copies; the training model is never touched. Both carry
``state_dict()`` / ``load_state_dict()`` (weights and counts) for resumed runs.

A plain PyTorch loop (``loader`` yields ``(x, y)``):

>>> import torch.nn.functional as F
>>> _ = torch.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> loader = [(torch.randn(16, 4), torch.randint(2, (16,))) for _ in range(10)]
>>> ema, swa = EMA(model, decay=0.9, warmup=True), SWA(model)
>>> for step, (x, y) in enumerate(loader):
...     loss = F.cross_entropy(model(x), y)
...     opt.zero_grad(); loss.backward(); opt.step()
...     ema.update(model)
...     if step >= 5:                       # SWA phase: average every update
...         swa.update(model)
>>> recompute_batchnorm(loader, swa.model)  # (x, y) batches, as torch's update_bn takes
10
>>> ema.num_updates, swa.n_averaged
(10, 5)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn


def _frozen(avg: AveragedModel) -> nn.Module:
    for p in avg.module.parameters():
        p.requires_grad_(False)
    return avg.module.eval()


class EMA:
    """An exponential moving average of a model's weights, in a separate copy ``.model``.

    Rule: ``w_ema <- d w_ema + (1 - d) w`` per :meth:`update`, from the weights at
    construction; ``warmup=True`` uses ``d_n = min(d, (1 + n) / (10 + n))`` at update ``n``.
    Buffers are copied from the model. Polyak-Ruppert averaging in its exponential form
    (Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging" (1992)).

    >>> net = nn.Linear(1, 1, bias=False)
    >>> _ = net.weight.data.fill_(0.0)
    >>> ema = EMA(net, decay=0.9)
    >>> _ = net.weight.data.fill_(1.0)
    >>> ema.update(net); ema.update(net)            # 0.1, then 0.9 * 0.1 + 0.1
    >>> round(ema.model.weight.item(), 4)
    0.19
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self._avg = AveragedModel(model, multi_avg_fn=self._average)
        self._avg.update_parameters(model)  # the first call copies: the EMA starts at ``model``
        self.model = _frozen(self._avg)

    @property
    def num_updates(self) -> int:
        """Updates averaged in since construction."""
        return int(self._avg.n_averaged) - 1

    def current_decay(self) -> float:
        """The decay the next update will use."""
        return self._decay_at(self.num_updates + 1)

    def _decay_at(self, n: int) -> float:
        return min(self.decay, (1.0 + n) / (10.0 + n)) if self.warmup else self.decay

    def _average(self, averaged: list[Tensor], current: list[Tensor], n_averaged: Tensor) -> None:
        # AveragedModel counts the initial copy: its n_averaged is this update's 1-based index
        get_ema_multi_avg_fn(self._decay_at(int(n_averaged)))(averaged, current, n_averaged)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``w_ema <- d * w_ema + (1 - d) * w`` for every parameter; buffers copied."""
        self._avg.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        """Averaged weights and buffers, the update count, decay and warmup."""
        return {"averaged": self._avg.state_dict(), "decay": self.decay, "warmup": self.warmup}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._avg.load_state_dict(state["averaged"])
        self.decay, self.warmup = state["decay"], state["warmup"]


class SWA:
    """The running mean of the weights passed to :meth:`update`, in a separate copy ``.model``.

    Rule: ``w_swa <- w_swa + (w - w_swa) / (n + 1)``; the first update copies ``w``.
    Stochastic Weight Averaging: Izmailov et al., "Averaging Weights Leads to Wider Optima and
    Better Generalization" (UAI 2018).

    >>> net = nn.Linear(1, 1, bias=False)
    >>> swa = SWA(net)
    >>> for value in (1.0, 2.0, 6.0):
    ...     _ = net.weight.data.fill_(value)
    ...     swa.update(net)
    >>> swa.model.weight.item(), swa.n_averaged
    (3.0, 3)
    """

    def __init__(self, model: nn.Module) -> None:
        self._avg = AveragedModel(model)
        self.model = _frozen(self._avg)

    @property
    def n_averaged(self) -> int:
        return int(self._avg.n_averaged)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``w_swa <- w_swa + (w - w_swa) / (n + 1)``; the first call copies ``w``."""
        self._avg.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        """Averaged weights and buffers and the number of models averaged."""
        return {"averaged": self._avg.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._avg.load_state_dict(state["averaged"])


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` holds a BatchNorm layer (its running statistics would need
    :func:`recompute_batchnorm` after averaging).

    >>> has_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))), has_batchnorm(nn.ReLU())
    (True, False)
    """
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class _Opaque:
    """A batch ``update_bn`` must not unpack or move: ``forward`` gets it as it came."""

    __slots__ = ("batch",)

    def __init__(self, batch: Any) -> None:
        self.batch = batch


class _CallForward(nn.Module):
    def __init__(self, model: nn.Module, forward: Callable[[nn.Module, Any], Any]) -> None:
        super().__init__()
        self.model, self.forward_fn = model, forward
        self.train(model.training)

    def forward(self, item: _Opaque) -> Any:
        return self.forward_fn(self.model, item.batch)


@torch.no_grad()
def recompute_batchnorm(
    loader: Iterable[Any],
    model: nn.Module,
    device: torch.device | str | None = None,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> int:
    """Reset every BatchNorm's running statistics and re-estimate them as the plain average
    over the batches of ``loader``: ``torch.optim.swa_utils.update_bn`` (same arguments, same
    result), returning the number of batches used (0, nothing done, without BatchNorm).

    Batches are tensors or ``(x, ...)`` tuples/lists whose first element is the input, moved
    to ``device`` when given. For other batch types pass ``forward(model, batch)``: it gets
    each batch as the loader yields it (no unpacking, no ``device`` move).

    SWA's last step before evaluation (Izmailov et al., 2018): averaged weights
    change the activation statistics, so BatchNorm's are recomputed with one pass over data.
    """
    if not isinstance(model, nn.Module):
        raise TypeError("recompute_batchnorm(loader, model, ...): model is not an nn.Module")
    if not has_batchnorm(model):
        return 0
    count = 0

    def counted() -> Iterator[Any]:
        nonlocal count
        for batch in loader:
            count += 1
            yield batch if forward is None else _Opaque(batch)

    if forward is None:
        update_bn(counted(), model, device)
    else:
        if device is not None:
            raise ValueError("recompute_batchnorm: with forward=, move batches in forward")
        update_bn(counted(), _CallForward(model, forward))
    return count


def swa_schedule(
    step: int,
    total_steps: int,
    swa_start: int,
    swa_lr_fraction: float = 0.05,
    warmup_steps: int = 0,
) -> float:
    """Learning-rate multiplier for SWA training: linear warmup, cosine decay from 1 to
    ``swa_lr_fraction`` reached at ``swa_start``, then constant ``swa_lr_fraction``
    (``total_steps`` is accepted for the common schedule signature; the SWA phase runs to it).

    The learning rate of SWA training (Izmailov et al., 2018): a decaying phase, then a
    constant one whose weights are averaged.

    >>> [round(swa_schedule(s, 10, swa_start=4, swa_lr_fraction=0.1), 3) for s in (0, 2, 4, 9)]
    [1.0, 0.55, 0.1, 0.1]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= swa_start:
        return swa_lr_fraction
    span = max(swa_start - warmup_steps, 1)
    p = (step - warmup_steps) / span
    return swa_lr_fraction + (1.0 - swa_lr_fraction) * 0.5 * (1.0 + math.cos(math.pi * p))
