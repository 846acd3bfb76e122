"""Gradual magnitude pruning (GMP): Michael Zhu and Suyog Gupta, "To prune, or not to prune:
exploring the efficacy of pruning for model compression" (arXiv:1710.01878, 2017).

Rule (the paper's Eq. 1): from step ``t_0`` the sparsity is raised every ``delta_t`` steps
along the cubic

    s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (n delta_t))^3,   t in {t_0, t_0 + delta_t, ...},

until ``t_0 + n delta_t`` (here ``t_end``), and at each of those steps the smallest-magnitude
weights are masked until the sparsity is ``s_t``. Masks only grow: a pruned weight stays zero
through every later optimizer step (its optimizer state too, see
:mod:`trainlab.methods.sparse.masks`), and training goes on with the final mask after
``t_end``.

Choices the paper leaves open, as trainlab makes them:

* ``t_end`` is given directly, so ``n delta_t = t_end - t_0``; when ``delta_t`` does not divide
  it, the masks are also updated at ``t_end`` itself, so the final sparsity ``s_f`` is always
  reached at ``t_end`` (the paper's TensorFlow implementation would stop at the last multiple).
* Exact counts: a layer (or, globally, the set of layers) of ``n`` weights keeps exactly
  ``n - round(s_t n)`` of them, ties broken by ``torch.topk``, rather than thresholding.
* ``scope="layer"`` (the paper's: every layer pruned to ``s_t``) or ``"global"`` (one magnitude
  threshold over all sparsified weights, as GraNet uses).
* With ``t_0 = 0`` and ``s_i > 0`` the first pruning happens when the object is built.

A plain PyTorch loop is in the docstring of :class:`GMP` (``help(GMP)``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from trainlab.methods.sparse.masks import _check_sparsity, magnitude_prune
from trainlab.methods.sparse.sparsifier import Sparsifier


def gmp_sparsity(
    t: float, final_sparsity: float, t_0: float, t_end: float, initial_sparsity: float = 0.0
) -> float:
    """Zhu & Gupta's (2017) cubic schedule ``s_t = s_f + (s_i - s_f)(1 - (t - t_0)/(t_end -
    t_0))^3``: ``s_i`` before ``t_0``, ``s_f`` from ``t_end`` on (``t_end - t_0`` is the paper's
    ``n delta_t``).

    >>> gmp_sparsity(50, 0.9, 0, 100)    # 0.9 (1 - 0.5^3)
    0.7875
    """
    if t >= t_end:
        return final_sparsity
    if t <= t_0:
        return initial_sparsity
    frac = (t - t_0) / (t_end - t_0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - frac) ** 3


def pruning_steps(t_0: int, t_end: int, delta_t: int) -> list[int]:
    """The steps at which the masks change: ``t_0, t_0 + delta_t, ...`` up to ``t_end``, and
    ``t_end`` itself.

    >>> pruning_steps(10, 40, 12)
    [10, 22, 34, 40]
    """
    steps = list(range(t_0, t_end + 1, delta_t))
    if steps[-1] != t_end:
        steps.append(t_end)
    return steps


def check_schedule(t_0: int, t_end: int, delta_t: int) -> None:
    """``ValueError`` unless ``0 <= t_0 <= t_end`` and ``delta_t >= 1``."""
    if not 0 <= t_0 <= t_end:
        raise ValueError(f"need 0 <= t_0 <= t_end, got t_0={t_0}, t_end={t_end}")
    if delta_t < 1:
        raise ValueError(f"delta_t must be >= 1, got {delta_t}")


class GMP(Sparsifier):
    """Gradual magnitude pruning (Zhu & Gupta, "To prune, or not to prune" (2017)) of the
    ``Linear``/``Conv`` weights of ``model``.

    Rule: at ``t in {t_0, t_0 + delta_t, ..., t_end}`` mask the smallest-magnitude active
    weights until the sparsity is ``s_t = s_f + (s_i - s_f)(1 - (t - t_0)/(t_end - t_0))^3``
    (``s_f = sparsity``, ``s_i = initial_sparsity``), per layer (``scope="layer"``, the paper)
    or over all layers at once (``"global"``); masked weights and their optimizer state stay
    zero. Call :meth:`step` after every ``optimizer.step()``. Raises ``ValueError`` for a
    sparsity outside ``[0, 1)``, ``initial_sparsity > sparsity`` or a bad schedule.

    In a plain PyTorch loop (``loader`` yields ``(x, y)``)::

        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        gmp = GMP(model, sparsity=0.9, t_0=100, t_end=1400, delta_t=50, optimizer=opt)
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            gmp.step()                # prunes at 100, 150, ..., 1400; keeps zeros at zero
    """

    def __init__(
        self,
        model: nn.Module,
        sparsity: float,
        t_0: int,
        t_end: int,
        delta_t: int,
        optimizer: torch.optim.Optimizer | None = None,
        initial_sparsity: float = 0.0,
        scope: str = "layer",
        exclude: Iterable[str] = (),
    ) -> None:
        _check_sparsity(sparsity)
        _check_sparsity(initial_sparsity)
        if initial_sparsity > sparsity:
            raise ValueError("initial_sparsity must not exceed sparsity")
        check_schedule(t_0, t_end, delta_t)
        if scope not in ("layer", "global"):
            raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
        super().__init__(model, optimizer, exclude)
        self.final_sparsity, self.initial_sparsity = sparsity, initial_sparsity
        self.t_0, self.t_end, self.delta_t, self.scope = t_0, t_end, delta_t, scope
        self.schedule = set(pruning_steps(t_0, t_end, delta_t))
        if t_0 == 0:
            self.update_masks(0)
            self.masks.apply(optimizer)

    def target(self, t: int) -> float:
        """The scheduled sparsity at step ``t``."""
        return gmp_sparsity(t, self.final_sparsity, self.t_0, self.t_end, self.initial_sparsity)

    def update_masks(self, t: int) -> bool:
        if t not in self.schedule:
            return False
        new = magnitude_prune(self.weights, self.masks.masks, self.target(t), self.scope)
        for name, mask in new.items():
            self.masks.set(name, mask)
        return True
