"""Mask bookkeeping for unstructured sparse training: which weights are sparsified, how a
sparsity budget is spread over layers (ERK or uniform), magnitude pruning, drop-and-grow, and
keeping pruned weights and their optimizer state at exactly zero.

**Which weights.** :func:`sparsifiable_weights` takes the ``weight`` of every ``nn.Linear`` and
``nn.Conv1d/2d/3d`` (transposed convolutions included). Not sparsified: biases, normalization
gains, ``nn.Embedding`` tables (and so a ``Linear`` head whose weight is tied to an embedding,
as in a GPT), recurrent cells' weights (``nn.GRU``, ``nn.LSTM``) and any module named in
``exclude``. The output layer is a ``Linear`` and is sparsified like the others (RigL and
GraNet do the same); ERK gives it a high density when it is small. "Sparsity" everywhere in
:mod:`trainlab.methods.sparse` is the fraction of zeros among the sparsified weights only.

**Masks are values, not a reparametrization.** A pruned weight is a zero in the ordinary dense
tensor, so the model keeps its architecture and any code (evaluation, ``state_dict``) sees it
as is; the dense gradient of a pruned weight is still computed by ``backward``, which is what
RigL and GraNet grow with. :meth:`Masks.apply` (called after every ``optimizer.step()``) zeroes
the masked entries of each weight **and** of every optimizer state tensor of the weight's shape
(SGD's ``momentum_buffer``, Adam's ``exp_avg`` / ``exp_avg_sq``, ...), so a pruned weight does
not drift back through momentum, and a connection grown later starts with zero state as well as
a zero weight. Optimizers whose state is not per element (Shampoo's preconditioners, Muon's
orthogonalized update) still get their pruned weights zeroed after each step, but their state
is left as it is.

Unstructured masks do not make dense kernels faster: the layers still multiply full matrices,
zeros included. What they save is the non-zero parameter count (storage, and FLOPs on hardware
or kernels that skip zeros).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

#: the module types whose ``weight`` is sparsified
SPARSIFIABLE_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, _ConvNd)


def sparsifiable_weights(model: nn.Module, exclude: Iterable[str] = ()) -> dict[str, nn.Parameter]:
    """The weights to sparsify, by parameter name (``model.named_parameters()`` names): the
    ``weight`` of every ``Linear`` and ``Conv`` module except those named in ``exclude``
    (module names, e.g. ``"0"`` for the first layer of an ``nn.Sequential``) and except
    weights shared with an ``nn.Embedding`` (a tied output head). Raises ``ValueError`` for an
    ``exclude`` name that is not a module of ``model``.

    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> list(sparsifiable_weights(net)), list(sparsifiable_weights(net, exclude=["0"]))
    (['0.weight', '2.weight'], ['2.weight'])
    """
    exclude = set(exclude)
    modules = dict(model.named_modules())
    unknown = sorted(exclude - set(modules))
    if unknown:
        raise ValueError(f"exclude: {unknown[0]!r} is not a module of the model")
    names = {id(p): name for name, p in model.named_parameters()}
    tied = {id(m.weight) for m in modules.values() if isinstance(m, nn.Embedding)}
    out: dict[str, nn.Parameter] = {}
    for module_name, module in modules.items():
        if module_name in exclude or not isinstance(module, SPARSIFIABLE_MODULES):
            continue
        weight = getattr(module, "weight", None)
        if weight is None or id(weight) in tied or id(weight) not in names:
            continue
        out.setdefault(names[id(weight)], weight)
    return out


def erk_densities(
    shapes: Mapping[str, Sequence[int]], sparsity: float, power: float = 1.0
) -> dict[str, float]:
    """Per-layer densities of the Erdős-Rényi-Kernel distribution (Evci et al., "Rigging the
    Lottery: Making All Tickets Winners" (ICML 2020), Sec. 3) for an overall ``sparsity``.

    Layer ``l`` of shape ``(n_out, n_in, k_1, ...)`` gets density ``eps * (sum(shape) /
    prod(shape)) ** power``, i.e. ``eps (n_in + n_out + k_h + k_w) / (n_in n_out k_h k_w)``
    for a 2-D convolution and ``eps (n_in + n_out) / (n_in n_out)`` for a linear layer, with
    one ``eps`` chosen so that ``sum_l density_l * n_l = (1 - sparsity) * sum_l n_l``. Where
    that would give a layer a density above 1, the layer with the largest raw density is made
    dense and ``eps`` is solved again over the rest (the budget the dense layer takes beyond
    ``1 - sparsity`` is taken from the others), until every density is at most 1: the rule of
    the authors' code. Raises ``ValueError`` for a sparsity outside ``[0, 1)``.

    >>> d = erk_densities({"a": (4, 4), "b": (2, 8)}, 0.5)   # raw 8/16 and 10/16; eps 16/18
    >>> round(d["a"], 4), round(d["b"], 4)
    (0.4444, 0.5556)
    """
    _check_sparsity(sparsity)
    if sparsity == 0:
        return {name: 1.0 for name in shapes}
    dense: set[str] = set()
    while True:
        budget = 0.0  # non-zeros to place in the sparse layers
        divisor = 0.0
        raw: dict[str, float] = {}
        for name, shape in shapes.items():
            n = math.prod(shape)
            if name in dense:
                budget -= n * sparsity  # its zeros must be made up by the others
            else:
                budget += n * (1 - sparsity)
                raw[name] = (sum(shape) / n) ** power
                divisor += raw[name] * n
        if not raw:
            raise ValueError("ERK: no layer is left sparse")
        eps = budget / divisor
        top = max(raw.values())
        if top * eps <= 1:
            break
        dense.update(name for name, r in raw.items() if r == top)
    return {name: 1.0 if name in dense else eps * raw[name] for name in shapes}


def uniform_densities(shapes: Mapping[str, Sequence[int]], sparsity: float) -> dict[str, float]:
    """Every layer at density ``1 - sparsity`` (RigL's "uniform" distribution; to keep the
    first layer dense as the paper does with it, ``exclude`` that layer from the sparsified
    weights)."""
    _check_sparsity(sparsity)
    return {name: 1.0 - sparsity for name in shapes}


def allocate(
    sizes: Mapping[str, int], densities: Mapping[str, float], total: int
) -> dict[str, int]:
    """Whole non-zero counts per layer that follow ``densities`` and add up to exactly
    ``total``: each layer gets ``floor(density * n)`` and the remainder goes one by one to the
    largest fractional parts (never beyond a layer's size)."""
    exact = {name: min(densities[name], 1.0) * n for name, n in sizes.items()}
    counts = {name: math.floor(x) for name, x in exact.items()}
    order = sorted(sizes, key=lambda name: exact[name] - counts[name], reverse=True)
    left = total - sum(counts.values())
    while left > 0:
        room = [name for name in order if counts[name] < sizes[name]]
        if not room:
            break
        for name in room[:left]:
            counts[name] += 1
        left = total - sum(counts.values())
    return counts


def random_masks(
    shapes: Mapping[str, Sequence[int]],
    densities: Mapping[str, float],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, Tensor]:
    """Boolean masks with exactly ``round((sum_l density_l n_l))`` ones overall (split by
    :func:`allocate`), placed uniformly at random within each layer."""
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    total = round(sum(min(densities[n], 1.0) * sizes[n] for n in sizes))
    counts = allocate(sizes, densities, total)
    masks = {}
    for name, shape in shapes.items():
        flat = torch.zeros(sizes[name], dtype=torch.bool)
        flat[torch.randperm(sizes[name], generator=generator)[: counts[name]]] = True
        masks[name] = flat.view(*shape).to(device)
    return masks


def keep_largest(scores: Tensor, k: int) -> Tensor:
    """A boolean mask of ``scores``' shape with ``True`` at exactly its ``k`` largest entries
    (ties broken by ``torch.topk``)."""
    flat = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    k = max(0, min(int(k), scores.numel()))
    if k:
        flat[torch.topk(scores.reshape(-1), k, sorted=False).indices] = True
    return flat.view_as(scores)


@torch.no_grad()
def magnitude_prune(
    weights: Mapping[str, Tensor], masks: Mapping[str, Tensor], sparsity: float, scope: str
) -> dict[str, Tensor]:
    """New masks with the smallest-magnitude active weights removed until ``sparsity`` (the
    fraction of zeros, ``round(sparsity * n)`` of ``n``) is reached, over all layers together
    (``scope="global"``: one magnitude threshold) or in each layer (``"layer"``). Pruning is
    monotone: an inactive weight never comes back, and a mask already sparser than asked is
    kept as it is."""
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    # inactive entries score -1 < |w|: they are the last to be kept, i.e. never
    scores = {name: torch.where(masks[name], w.abs(), -1.0) for name, w in weights.items()}
    if scope == "layer":
        return {
            name: keep_largest(
                s, min(int(masks[name].sum()), s.numel() - round(sparsity * s.numel()))
            )
            for name, s in scores.items()
        }
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    active = int(sum(int(m.sum()) for m in masks.values()))
    keep = keep_largest(flat, min(active, flat.numel() - round(sparsity * flat.numel())))
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start : start + s.numel()].view_as(s)
        start += s.numel()
    return out


@torch.no_grad()
def drop_and_grow(weight: Tensor, mask: Tensor, grad: Tensor, n: int) -> Tensor:
    """One layer's prune-and-regrow (RigL's update, GraNet's neuroregeneration): drop the ``n``
    active weights of smallest magnitude, then activate the ``n`` weights of largest gradient
    magnitude among those inactive after the drop (a weight just dropped may come straight
    back, keeping its value). Weights that were inactive before and are grown are set to zero
    in ``weight`` (in place). Returns the new mask; its count of ones equals the old one's."""
    active = int(mask.sum())
    n = max(0, min(int(n), active))
    if n == 0:
        return mask.clone()
    kept = keep_largest(torch.where(mask, weight.abs(), -1.0), active - n)
    grown = keep_largest(torch.where(kept, -1.0, grad.abs()), n) & ~kept
    weight.masked_fill_(grown & ~mask, 0.0)
    return kept | grown


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")


class Masks:
    """Boolean masks (``True``: the weight is active) over named weights, applied by value.

    :meth:`apply` zeroes every masked entry of each weight and of each optimizer state tensor
    of the weight's shape; :meth:`set` replaces one layer's mask. Counts: :attr:`total`,
    :attr:`active`, :attr:`sparsity`, :meth:`densities`.
    """

    def __init__(
        self, weights: Mapping[str, nn.Parameter], masks: Mapping[str, Tensor] | None = None
    ):
        self.weights = dict(weights)
        self.masks: dict[str, Tensor] = {}
        self._pruned: dict[str, Tensor] = {}
        for name, w in self.weights.items():
            mask = masks[name] if masks is not None else torch.ones_like(w, dtype=torch.bool)
            self.set(name, mask)

    def set(self, name: str, mask: Tensor) -> None:
        """Replace the mask of weight ``name`` (a boolean tensor of the weight's shape)."""
        w = self.weights[name]
        if mask.shape != w.shape:
            raise ValueError(f"mask for {name}: shape {tuple(mask.shape)} != {tuple(w.shape)}")
        self.masks[name] = mask.to(device=w.device, dtype=torch.bool)
        self._pruned[name] = ~self.masks[name]

    @torch.no_grad()
    def apply(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Zero the masked weights and their per-element optimizer state (every tensor in
        ``optimizer.state[w]`` with ``w``'s shape)."""
        for name, w in self.weights.items():
            pruned = self._pruned[name]
            w.masked_fill_(pruned, 0.0)
            if optimizer is not None:
                for value in optimizer.state.get(w, {}).values():
                    if (
                        isinstance(value, Tensor)
                        and value.shape == w.shape
                        and value.is_floating_point()
                    ):
                        value.masked_fill_(pruned, 0.0)

    @property
    def total(self) -> int:
        return sum(m.numel() for m in self.masks.values())

    @property
    def active(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks.values()))

    @property
    def sparsity(self) -> float:
        """Fraction of masked (zero) entries among all sparsified weights."""
        return 1.0 - self.active / max(self.total, 1)

    def densities(self) -> dict[str, float]:
        """Fraction of active entries per layer."""
        return {name: float(m.float().mean()) for name, m in self.masks.items()}

    def state_dict(self) -> dict[str, Tensor]:
        return {name: m.clone() for name, m in self.masks.items()}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        for name, mask in state.items():
            self.set(name, mask)
