"""Cyclical curriculum: the training-set size cycles between an easy subset and the full data.

Paper: H. Toprak Kesgin, M. Fatih Amasyali, "Cyclical Curriculum Learning" (arXiv:2202.05531,
2022; IEEE TNNLS 2023).

Rule implemented. Every example has a difficulty score (e.g. its loss under a scoring model).
Epoch ``e`` trains on a subset of size ``n_e * N`` drawn *easy-first*: without replacement, with
probability proportional to ``1 / difficulty`` (the authors' reference code draws this way, so
easy examples dominate small subsets while some harder ones still enter). The fraction ``n_e``
cycles geometrically: it starts at ``start_fraction``, is divided by ``multiplier`` each epoch
until it reaches ``end_fraction`` (the full data by default), then multiplied by ``multiplier``
each epoch back down to ``start_fraction``, and so on; with the defaults 0.25 and 0.5 the
sequence is 0.25, 0.5, 1, 0.5, 0.25, 0.5, 1, ...

Choices where the paper is open: ``mode="easiest"`` replaces the weighted draw by the
deterministic ``n_e * N`` lowest-difficulty examples; a subset is reshuffled every epoch; a
difficulty of zero is clamped to ``1e-8`` before inverting.

A plain PyTorch loop (difficulty from a scoring model, then easy-first epochs of cycling size):

>>> import torch, torch.nn.functional as F
>>> from torch import nn
>>> g = torch.Generator().manual_seed(0)
>>> X, Y = torch.randn(256, 4, generator=g), torch.randint(2, (256,), generator=g)
>>> scorer, model = nn.Linear(4, 2), nn.Linear(4, 2)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> with torch.no_grad():
...     difficulty = F.cross_entropy(scorer(X), Y, reduction="none")
>>> ccl = CyclicalCurriculum(difficulty, start_fraction=0.25, multiplier=0.5)
>>> for epoch in range(4):
...     for rows in ccl.epoch_indices(epoch, g).split(32):
...         loss = F.cross_entropy(model(X[rows]), Y[rows])
...         opt.zero_grad(); loss.backward(); opt.step()
>>> [ccl.fraction(e) for e in range(4)]
[0.25, 0.5, 1.0, 0.5]

Or as an endless stream of index batches, for a loop counted in steps:
``for rows in itertools.islice(ccl.batch_indices(32, g), 1000): ...``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor


def iter_cycle_fractions(
    start_fraction: float = 0.25, multiplier: float = 0.5, end_fraction: float = 1.0
) -> Iterator[float]:
    """The endless sequence of per-epoch data fractions (see the module docstring).

    The cycle of Kesgin & Amasyali, "Cyclical Curriculum Learning" (arXiv:2202.05531, 2022)."""
    if not 0.0 < start_fraction <= end_fraction <= 1.0:
        raise ValueError("need 0 < start_fraction <= end_fraction <= 1")
    if not 0.0 < multiplier < 1.0:
        raise ValueError(f"multiplier must be in (0, 1), got {multiplier}")
    n, rising = start_fraction, True
    while True:
        yield n
        if start_fraction == end_fraction:
            continue
        if rising:
            n = min(n / multiplier, end_fraction)
            rising = n < end_fraction
        else:
            n = max(n * multiplier, start_fraction)
            rising = n <= start_fraction


def cycle_fractions(
    num_epochs: int,
    start_fraction: float = 0.25,
    multiplier: float = 0.5,
    end_fraction: float = 1.0,
) -> list[float]:
    """The first ``num_epochs`` data fractions of the cycle.

    The cycle of Kesgin & Amasyali, "Cyclical Curriculum Learning" (arXiv:2202.05531, 2022)."""
    it = iter_cycle_fractions(start_fraction, multiplier, end_fraction)
    return [next(it) for _ in range(num_epochs)]


def curriculum_subset(
    difficulty: Tensor,
    fraction: float,
    generator: torch.Generator | None = None,
    mode: str = "weighted",
) -> Tensor:
    """Indices of an easy-first subset of ``ceil(fraction * N)`` examples.

    ``mode="weighted"``: drawn without replacement with probability ``∝ 1 / difficulty``;
    ``mode="easiest"``: the lowest-difficulty examples (ties: lower index first).

    The easy-first draw of Kesgin & Amasyali, "Cyclical Curriculum Learning" (arXiv:2202.05531,
    2022).
    """
    n = len(difficulty)
    k = min(n, max(1, math.ceil(fraction * n - 1e-9)))
    d = difficulty.detach().double().cpu()
    if mode == "easiest":
        return torch.sort(d, stable=True).indices[:k]
    if mode == "weighted":
        if k == n:
            return torch.arange(n)
        weights = 1.0 / d.clamp_min(1e-8)
        return torch.multinomial(weights, k, replacement=False, generator=generator)
    raise ValueError(f"unknown mode {mode!r}; use 'weighted' or 'easiest'")


class CyclicalCurriculum:
    """Per-epoch training subsets whose size cycles between an easy subset and the full data.

    Paper: Kesgin & Amasyali, "Cyclical Curriculum Learning" (arXiv:2202.05531, 2022)."""

    def __init__(
        self,
        difficulty: Tensor,
        start_fraction: float = 0.25,
        multiplier: float = 0.5,
        end_fraction: float = 1.0,
        mode: str = "weighted",
    ) -> None:
        self.difficulty = difficulty.detach().cpu()
        self.start_fraction = start_fraction
        self.multiplier = multiplier
        self.end_fraction = end_fraction
        self.mode = mode
        self._fractions: list[float] = []
        self._cycle = iter_cycle_fractions(start_fraction, multiplier, end_fraction)
        #: the epoch :meth:`batch_indices` is drawing (0 before it starts)
        self.epoch = 0

    def fraction(self, epoch: int) -> float:
        """The data fraction of ``epoch``."""
        while len(self._fractions) <= epoch:
            self._fractions.append(next(self._cycle))
        return self._fractions[epoch]

    def epoch_indices(self, epoch: int, generator: torch.Generator | None = None) -> Tensor:
        """The (shuffled) example indices to train on in ``epoch``."""
        subset = curriculum_subset(self.difficulty, self.fraction(epoch), generator, self.mode)
        return subset[torch.randperm(len(subset), generator=generator)]

    def batch_indices(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> Iterator[Tensor]:
        """Endless index batches of ``batch_size``, epoch after epoch (:attr:`epoch` tells which
        one is being drawn). Each epoch's last partial batch is dropped; an epoch smaller than
        one batch gives one batch drawn from it with repeats."""
        self.epoch = 0
        while True:
            order = self.epoch_indices(self.epoch, generator)
            if len(order) < batch_size:
                yield order[torch.randint(len(order), (batch_size,), generator=generator)]
            for start in range(0, len(order) - batch_size + 1, batch_size):
                yield order[start : start + batch_size]
            self.epoch += 1
