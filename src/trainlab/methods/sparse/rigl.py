"""RigL, sparse-to-sparse training with a changing topology: Utku Evci, Trevor Gale, Jacob
Menick, Pablo Samuel Castro and Erich Elsen, "Rigging the Lottery: Making All Tickets Winners"
(ICML 2020, arXiv:1911.11134).

Rule. The network is sparse from the first step: each layer gets a density from the
Erdős-Rényi-Kernel distribution (:func:`~trainlab.methods.sparse.masks.erk_densities`, or
uniform) and a mask drawn uniformly at random with that density; masked weights are zero.
Every ``delta_t`` steps while ``t < t_end``, in each layer, with ``f(t) = alpha / 2 (1 +
cos(pi t / t_end))`` (the paper's cosine update schedule):

1. drop the ``k = floor(f(t) * active_l)`` active weights of smallest magnitude;
2. grow the ``k`` connections of largest dense-gradient magnitude ``|dL/dw|`` (of the current
   mini-batch) among those inactive after the drop; connections that were inactive before
   start at zero (weight and optimizer state).

The per-layer counts, and so the ERK distribution and the overall sparsity, never change.

Choices as trainlab makes them (the paper's defaults where it has them):

* ``alpha = 0.3``, ``delta_t = 100``, ``t_end = 0.75`` of training (the paper's ImageNet
  setting); ``k`` rounds down, as in the authors' code.
* Which layers: ERK sparsifies every ``Linear``/``Conv`` weight, the first and the output layer
  included (ERK gives small layers a high density; a layer is made dense only where the
  budget forces it); embeddings, a tied head and recurrent weights are never sparsified (see
  :mod:`trainlab.methods.sparse.masks`). With ``distribution="uniform"`` the paper keeps the
  first layer dense: pass its module name in ``exclude``.
* A weight dropped and grown again in the same update keeps its value (as in the authors'
  code, which zero-initializes only connections new to the mask).
* The gradient is the one ``backward`` left in ``weight.grad`` at the update step; the masks
  are applied by value, so it is the dense gradient without extra work.

A plain PyTorch loop is in the docstring of :class:`RigL` (``help(RigL)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from trainlab.methods.sparse.masks import (
    _check_sparsity,
    drop_and_grow,
    erk_densities,
    random_masks,
    uniform_densities,
)
from trainlab.methods.sparse.sparsifier import Sparsifier

DISTRIBUTIONS = {"erk": erk_densities, "uniform": uniform_densities}


def rigl_drop_fraction(t: float, alpha: float, t_end: float) -> float:
    """RigL's update fraction ``alpha / 2 (1 + cos(pi t / t_end))`` (Evci et al. (2020),
    Eq. 1), zero from ``t_end`` on.

    >>> rigl_drop_fraction(0, 0.3, 100), rigl_drop_fraction(50, 0.3, 100)
    (0.3, 0.15)
    """
    if t >= t_end:
        return 0.0
    return alpha / 2 * (1 + math.cos(math.pi * t / t_end))


def sparse_init(
    sparsifier: Sparsifier,
    sparsity: float,
    distribution: str,
    generator: torch.Generator | None,
) -> None:
    """Give ``sparsifier`` random masks with ``distribution``'s per-layer densities at
    ``sparsity`` overall (exactly ``round((1 - sparsity) n)`` active weights) and zero the
    masked weights."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {sorted(DISTRIBUTIONS)}, got {distribution!r}"
        )
    shapes = {name: tuple(w.shape) for name, w in sparsifier.weights.items()}
    densities = DISTRIBUTIONS[distribution](shapes, sparsity)
    device = next(iter(sparsifier.weights.values())).device
    for name, mask in random_masks(shapes, densities, generator, device).items():
        sparsifier.masks.set(name, mask)
    sparsifier.masks.apply(sparsifier.optimizer)


class RigL(Sparsifier):
    """RigL (Evci et al., "Rigging the Lottery: Making All Tickets Winners" (ICML 2020)):
    sparse-to-sparse training with periodic drop-by-magnitude, grow-by-gradient updates.

    Rule: masks drawn at construction with the ERK (or uniform) per-layer densities for
    ``sparsity``; at every ``t`` with ``t % delta_t == 0`` and ``t < t_end``, each layer drops
    its ``floor(f(t) n_active)`` smallest-magnitude active weights and grows as many inactive
    ones with the largest ``|grad|``, new ones at zero, ``f(t) = alpha/2 (1 + cos(pi t /
    t_end))``. Call :meth:`step` after every ``optimizer.step()`` and before ``zero_grad()``.
    ``generator`` seeds the initial masks. Raises ``ValueError`` for a sparsity outside
    ``[0, 1)``, ``alpha`` outside ``[0, 1]`` or ``delta_t``/``t_end`` below 1.

    In a plain PyTorch loop (``loader`` yields ``(x, y)``)::

        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        rigl = RigL(model, sparsity=0.9, t_end=1500, delta_t=100, optimizer=opt)  # masks now
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            rigl.step()               # before the next zero_grad: it reads weight.grad
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float,
        t_end: int,
        delta_t: int = 100,
        alpha: float = 0.3,
        optimizer: torch.optim.Optimizer | None = None,
        distribution: str = "erk",
        exclude: Iterable[str] = (),
        generator: torch.Generator | None = None,
    ) -> None:
        _check_sparsity(sparsity)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if delta_t < 1 or t_end < 1:
            raise ValueError(f"delta_t and t_end must be >= 1, got {delta_t}, {t_end}")
        super().__init__(model, optimizer, exclude)
        self.sparsity_target, self.t_end, self.delta_t, self.alpha = sparsity, t_end, delta_t, alpha
        sparse_init(self, sparsity, distribution, generator)

    def drop_fraction(self, t: int) -> float:
        return rigl_drop_fraction(t, self.alpha, self.t_end)

    def update_masks(self, t: int) -> bool:
        if t % self.delta_t != 0 or t >= self.t_end:
            return False
        fraction = self.drop_fraction(t)
        for name, w in self.weights.items():
            mask = self.masks.masks[name]
            k = math.floor(fraction * int(mask.sum()))
            self.masks.set(name, drop_and_grow(w, mask, self._grad(name), k))
        return True
