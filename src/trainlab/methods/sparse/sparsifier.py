"""The contract shared by :class:`~trainlab.methods.sparse.GMP`,
:class:`~trainlab.methods.sparse.RigL` and :class:`~trainlab.methods.sparse.GraNet`.

A sparsifier wraps a model (and, optionally, its optimizer) and is called once after every
``optimizer.step()``, **before** the next ``zero_grad()``, with the number of optimizer steps
taken so far (``t = 1`` after the first). At the steps its schedule names it changes the masks
(RigL and GraNet read the dense gradient of that step from ``weight.grad``); at every step it
then zeroes the masked weights and their per-element optimizer state
(:meth:`~trainlab.methods.sparse.masks.Masks.apply`). Between two calls the model is an
ordinary dense model whose pruned weights are zeros.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from trainlab.methods.sparse.masks import Masks, sparsifiable_weights


class Sparsifier:
    """Base class: the sparsified weights of ``model`` (see
    :func:`~trainlab.methods.sparse.masks.sparsifiable_weights`), their :class:`Masks`, and
    :meth:`step`. Subclasses implement :meth:`update_masks`."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        self.weights = sparsifiable_weights(model, exclude)
        if not self.weights:
            raise ValueError("the model has no Linear or Conv weight to sparsify")
        self.masks = Masks(self.weights)
        self.optimizer = optimizer
        #: optimizer steps seen by :meth:`step`
        self.t = 0
        #: steps at which the masks changed
        self.updates: list[int] = []

    def step(self, t: int | None = None) -> bool:
        """Call after each ``optimizer.step()`` (before ``zero_grad``) with the number of
        optimizer steps taken so far (default: one more than the last call). Updates the masks
        where the schedule says so, then applies them. Returns whether the masks changed."""
        self.t = self.t + 1 if t is None else int(t)
        changed = self.update_masks(self.t)
        if changed:
            self.updates.append(self.t)
        self.masks.apply(self.optimizer)
        return changed

    def update_masks(self, t: int) -> bool:
        """Change ``self.masks`` for step ``t`` if the schedule says so; return whether it
        did."""
        return False

    def _grad(self, name: str) -> torch.Tensor:
        grad = self.weights[name].grad
        if grad is None:
            raise ValueError(
                f"{type(self).__name__}: {name} has no gradient at step {self.t}; call step() "
                "after optimizer.step() and before zero_grad()"
            )
        return grad

    @property
    def sparsity(self) -> float:
        """Fraction of zeros (masked entries) among the sparsified weights."""
        return self.masks.sparsity

    def state_dict(self) -> dict:
        return {"t": self.t, "updates": list(self.updates), "masks": self.masks.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        self.updates = list(state["updates"])
        self.masks.load_state_dict(state["masks"])
