"""GraNet, gradual pruning with zero-cost neuroregeneration: Shiwei Liu, Tianlong Chen, Xiaohan
Chen, Zahra Atashgahi, Lu Yin, Huanyu Kou, Li Shen, Mykola Pechenizkiy, Zhangyang Wang and
Decebal Constantin Mocanu, "Sparse Training via Boosting Pruning Plasticity with
Neuroregeneration" (NeurIPS 2021, arXiv:2106.10404).

Rule. At each step ``t in {t_0, t_0 + delta_t, ..., t_end}`` of GMP's schedule:

1. **gradual pruning**: global magnitude pruning (one threshold over all sparsified weights)
   to GMP's cubic sparsity ``s_t = s_f + (s_i - s_f)(1 - (t - t_0)/(t_end - t_0))^3``
   (:func:`~trainlab.methods.sparse.gmp.gmp_sparsity`);
2. **zero-cost neuroregeneration**, right after: in each layer, drop a further
   ``ceil(r_t * active_l)`` active weights of smallest magnitude and regrow as many inactive
   ones of largest gradient magnitude (new ones at zero), so the sparsity stays ``s_t``;
   ``r_t = r_0 / 2 (1 + cos(pi t / T))`` is cosine-decayed over the training length ``T``.

Two modes: **dense-to-sparse** (``initial_sparsity = 0``: start dense, ``s_i = 0``) and
**sparse-to-sparse** (``initial_sparsity = s_i > 0``: start from random ERK masks at ``s_i``,
as RigL does, and prune from there).

Choices as trainlab makes them:

* ``r_0 = 0.5`` (the authors' default) and the per-layer drop count rounds up, as in their
  code; their cosine floors ``r_t`` at 0.005, trainlab does not.
* Neuroregeneration happens at the pruning steps only (the paper: "after each gradual pruning
  step"); the authors' code also keeps regenerating every ``delta_t`` steps after ``t_end``.
* The schedule and exact counts are GMP's (:mod:`trainlab.methods.sparse.gmp`); which weights
  are sparsified is :func:`~trainlab.methods.sparse.masks.sparsifiable_weights` (every
  ``Linear``/``Conv`` weight; the authors' code likewise takes every 2-D and 4-D weight).

A plain PyTorch loop is in the docstring of :class:`GraNet` (``help(GraNet)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from trainlab.methods.sparse.gmp import check_schedule, gmp_sparsity, pruning_steps
from trainlab.methods.sparse.masks import _check_sparsity, drop_and_grow, magnitude_prune
from trainlab.methods.sparse.rigl import sparse_init
from trainlab.methods.sparse.sparsifier import Sparsifier


def regeneration_fraction(t: float, r_0: float, total_steps: float) -> float:
    """GraNet's neuroregeneration fraction ``r_0 / 2 (1 + cos(pi t / T))``, zero from ``T``
    on (Liu et al. (2021)).

    >>> regeneration_fraction(0, 0.5, 100), regeneration_fraction(50, 0.5, 100)
    (0.5, 0.25)
    """
    if t >= total_steps:
        return 0.0
    return r_0 / 2 * (1 + math.cos(math.pi * t / total_steps))


class GraNet(Sparsifier):
    """GraNet (Liu et al., "Sparse Training via Boosting Pruning Plasticity with
    Neuroregeneration" (NeurIPS 2021)): GMP's global schedule plus prune-and-regrow after each
    pruning step.

    Rule: at ``t in {t_0, t_0 + delta_t, ..., t_end}``, global magnitude pruning to ``s_t = s_f
    + (s_i - s_f)(1 - (t - t_0)/(t_end - t_0))^3``, then in each layer drop
    ``ceil(r_t n_active)`` more by magnitude and regrow as many by ``|grad|`` (new ones at
    zero), ``r_t = r_0/2 (1 + cos(pi t / total_steps))``. ``initial_sparsity = 0``:
    dense-to-sparse; ``> 0``: sparse-to-sparse from random ERK masks at that sparsity (drawn
    with ``generator``). Call :meth:`step` after every ``optimizer.step()`` and before
    ``zero_grad()``. Raises ``ValueError`` for sparsities outside ``[0, 1)``,
    ``initial_sparsity > sparsity``, a bad schedule or ``regrowth`` outside ``[0, 1]``.

    In a plain PyTorch loop (``loader`` yields ``(x, y)``)::

        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        granet = GraNet(model, sparsity=0.9, t_0=100, t_end=1400, delta_t=50,
                        total_steps=2000, optimizer=opt)  # initial_sparsity=0.5: sparse start
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            granet.step()             # before the next zero_grad: it reads weight.grad
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float,
        t_0: int,
        t_end: int,
        delta_t: int,
        total_steps: int,
        optimizer: torch.optim.Optimizer | None = None,
        initial_sparsity: float = 0.0,
        regrowth: float = 0.5,
        exclude: Iterable[str] = (),
        generator: torch.Generator | None = None,
    ) -> None:
        _check_sparsity(sparsity)
        _check_sparsity(initial_sparsity)
        if initial_sparsity > sparsity:
            raise ValueError("initial_sparsity must not exceed sparsity")
        check_schedule(t_0, t_end, delta_t)
        if not 0.0 <= regrowth <= 1.0:
            raise ValueError(f"regrowth must be in [0, 1], got {regrowth}")
        super().__init__(model, optimizer, exclude)
        self.final_sparsity, self.initial_sparsity = sparsity, initial_sparsity
        self.t_0, self.t_end, self.delta_t = t_0, t_end, delta_t
        self.total_steps, self.regrowth = max(1, total_steps), regrowth
        self.schedule = set(pruning_steps(t_0, t_end, delta_t))
        if initial_sparsity > 0:
            sparse_init(self, initial_sparsity, "erk", generator)

    def target(self, t: int) -> float:
        """The scheduled sparsity at step ``t``."""
        return gmp_sparsity(t, self.final_sparsity, self.t_0, self.t_end, self.initial_sparsity)

    def regrowth_fraction(self, t: int) -> float:
        return regeneration_fraction(t, self.regrowth, self.total_steps)

    def update_masks(self, t: int) -> bool:
        if t not in self.schedule or t == 0:  # t = 0: no gradient yet, nothing to prune
            return False
        for name, mask in magnitude_prune(
            self.weights, self.masks.masks, self.target(t), "global"
        ).items():
            self.masks.set(name, mask)
        self.masks.apply(self.optimizer)  # the newly pruned are zero before regrowth
        fraction = self.regrowth_fraction(t)
        for name, w in self.weights.items():
            mask = self.masks.masks[name]
            k = math.ceil(fraction * int(mask.sum()))
            self.masks.set(name, drop_and_grow(w, mask, self._grad(name), k))
        return True
