"""SortedNet: nested sub-models that share the main model's parameters, trained together.

Paper: Mojtaba Valipour, Mehdi Rezagholizadeh, Hossein Rajabzadeh, Parsa Kavehzadeh, Marzieh
Tahaei, Boxing Chen, Ali Ghodsi, "SortedNet, a Place for Every Network and Every Network in its
Place: Towards a Generalized Solution for Training Many-in-One Neural Networks" (2023; later
"SortedNet: A Scalable and Generalized Framework for Training Modular Deep Neural Networks"),
arXiv:2309.00255.

Rule implemented. The architecture is *sorted*: a sub-model of width fraction ``w`` keeps the
first ``k = ceil(w n)`` units (Linear outputs) or channels (Conv outputs) of every hidden layer,
and a sub-model of depth ``d`` keeps the first ``d`` blocks; its parameters are the leading
slices of the main model's (``W[:k_out, :k_in]``, ``b[:k_out]``), so every sub-model lives
inside the main model and one set of weights holds them all. Training (the paper's Algorithm 1,
random sub-model sampling with gradient accumulation) takes, per update, the gradient of

    L(theta) = L_main(theta) + sum_{j=1..g} L(theta[b_j]),   b_j ~ Uniform(B \\ {main}),

i.e. the main model's loss plus ``g`` (``n_sub``, the paper's ``gacc``) sub-models drawn
uniformly and independently from the grid ``B = widths x depths`` without the main model, their
gradients accumulated into the shared parameters before one optimizer step. A sub-model's
forward runs on the sliced weights themselves (``torch.func.functional_call``), so it costs
what the smaller network costs, not a masked full one.

Choices where the paper is open (or that this implementation makes):

* **The main model is in every update** (``include_main=True``, the default). The paper
  samples ``gacc`` sub-models per update from all of ``B``, the main model being one of them
  (``include_main=False`` does exactly that: ``b_j ~ Uniform(B)``, ``L = sum_j L(theta[b_j])``);
  by default the main model's loss is always included and the ``g`` samples come from the
  others, so the main model gets as many updates as when it is trained alone, at the price of
  the sub-models' forward and backward passes on top. The losses are summed, unweighted.
* **Which layers are nested.** By default every Linear and Conv1d/2d of the model except the
  last one registered (the output layer, whose outputs are the classes) is sorted by width;
  a BatchNorm follows its input's channels. Which input features of each layer come from kept
  units is found once by a *positive probe*: a copy of the model with positive weights, unit
  norm statistics and the dropped units zeroed is run on an all-positive input, and an input
  feature is kept where it is non-zero. This handles flattening (a 1-D CNN's head reads
  ``channels x positions``) and pooling without knowing the graph; it needs activations with
  ``f(0) = 0`` and ``f(x) > 0`` for ``x > 0`` (ReLU, GELU, SiLU), which holds for the suite.
  ``width_scopes`` restricts width to named sub-modules, each probed on its own (the GPT:
  the hidden units of each block's MLP; the residual width, the attention heads and the
  embeddings stay whole).
* **Depth** (``depths``, with ``depth_attr`` naming the model's ``nn.Sequential`` of blocks,
  the GPT's ``blocks``): a depth-``d`` sub-model runs blocks ``0..d-1`` and then the rest of the
  model (final norm, head), as the paper's early-exit sub-models share the head.
* **BatchNorm statistics.** The affine parameters are shared (sliced) like any weight; the
  running mean and variance are *private per width* (slimmable networks' switchable statistics,
  Yu et al. 2019): a width-``w`` forward in training mode updates its own copies, which start as
  the main model's leading channels, and evaluation and :meth:`SortedNet.extract` use them.
  The main model's statistics see only full-width batches.
* ``k = max(1, ceil(w n))``; widths are fractions in ``(0, 1]`` and the full model (``w = 1``,
  full depth) is always part of the grid.

Use in a plain PyTorch loop::

    model = nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 10))
    sorted_net = SortedNet(model, example_input=x[:2], widths=(0.25, 0.5, 0.75, 1.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for x, y in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)                          # the main model
        for sub in sorted_net.sample(gen):                           # g sub-models
            loss = loss + F.cross_entropy(sorted_net.submodel(sub)(x), y)
        loss.backward()
        opt.step()
    small = sorted_net.extract(width=0.25)   # a standalone nn.Module with smaller layers
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from trainlab.errors import TrainlabError

__all__ = ["SortedNet", "SubModel"]

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class SubModel:
    """One nested sub-model: a width fraction and a depth (``None``: every block)."""

    width: float = 1.0
    depth: int | None = None


def kept(fraction: float, n: int) -> int:
    """Units of an ``n``-unit layer a width-``fraction`` sub-model keeps: ``max(1, ceil(f n))``
    (a small tolerance keeps ``0.25 x 32`` at 8)."""
    return max(1, math.ceil(fraction * n - 1e-9))


class _SubModelView(nn.Module):
    """A sub-model as a module: its forward runs the parent on sliced weights."""

    def __init__(self, parent: SortedNet, sub: SubModel) -> None:
        super().__init__()
        object.__setattr__(self, "_parent", parent)  # not a submodule: no parameters of its own
        self.sub = sub

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._parent.forward(self.sub, *args, **kwargs)


class SortedNet:
    """The nested sub-models of ``model``: SortedNet (Valipour et al., arXiv:2309.00255, 2023).

    A width-``w`` sub-model keeps the first ``ceil(w n)`` units/channels of each hidden layer
    (``W[:k_out, :k_in]``), a depth-``d`` one the first ``d`` blocks; an update minimises
    ``L_main + sum_{j=1..n_sub} L(sub_j)`` with ``sub_j`` drawn uniformly from the other
    sub-models (or ``sum_j L(sub_j)`` over the whole grid, ``include_main=False``). The choices
    the paper leaves open are listed in the module docstring.

    ``widths``: fractions in ``(0, 1]``; ``depths``: block counts in ``1..len(blocks)`` (needs
    ``depth_attr``, the name of the model's ``nn.Sequential`` of blocks); ``n_sub``: sub-models
    sampled per update, from the grid without the main model (``include_main``: the main model
    is trained in every update besides them) or from the whole grid (``include_main=False``,
    the paper's Algorithm 1). ``example_input``: a batch the model accepts (only its shape and dtype
    are used; needed unless every scope of ``width_scopes`` starts with a Linear). Raises
    :class:`TrainlabError` for a bad setting or a model whose width cannot be nested (naming
    the module that blocks it).
    """

    def __init__(
        self,
        model: nn.Module,
        example_input: Tensor | None = None,
        widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
        depths: Sequence[int] | None = None,
        n_sub: int = 1,
        width_scopes: Sequence[str] = ("",),
        depth_attr: str | None = None,
        include_main: bool = True,
    ) -> None:
        self.model = model
        self.widths = sorted({float(w) for w in widths} | {1.0})
        if not all(0.0 < w <= 1.0 for w in self.widths):
            raise TrainlabError(f"sortednet widths must be fractions in (0, 1], got {widths}")
        self.depth_attr = depth_attr
        full_depth = None
        if depths is not None:
            if depth_attr is None or not isinstance(getattr(model, depth_attr, None),
                                                    nn.Sequential):  # fmt: skip
                raise TrainlabError("sortednet depths need depth_attr, the name of the model's "
                                    "nn.Sequential of blocks")  # fmt: skip
            full_depth = len(getattr(model, depth_attr))
            if not all(1 <= int(d) <= full_depth for d in depths):
                raise TrainlabError(f"sortednet depths must be in 1..{full_depth}, got {depths}")
        self.full_depth = full_depth
        self.depths = sorted({int(d) for d in depths or ()} | {full_depth} - {None}) or [None]
        if n_sub < 0:
            raise TrainlabError(f"sortednet n_sub must be >= 0, got {n_sub}")
        self.n_sub = int(n_sub)
        self.grid = [SubModel(w, d) for w, d in itertools.product(self.widths, self.depths)]
        self.main = SubModel(1.0, full_depth)
        self.include_main = bool(include_main)
        #: what :meth:`sample` draws from
        self.candidates = [s for s in self.grid if s != self.main or not include_main]
        self._plans: dict[float, dict[str, tuple[int | None, int | None]]] = {}
        for w in self.widths:
            plan: dict[str, tuple[int | None, int | None]] = {}
            for scope in width_scopes:
                plan.update(_probe(model, scope, example_input, w))
            self._plans[w] = plan
        # private BatchNorm statistics per width below 1 (switchable statistics)
        buffers = dict(model.named_buffers())
        self._stats = {
            w: {name: buffers[name][: plan[name][0]].detach().clone()
                for name in plan if name in buffers}  # fmt: skip
            for w, plan in self._plans.items() if w < 1.0
        }  # fmt: skip

    # -- sampling and forward --------------------------------------------------------------
    def sample(self, generator: torch.Generator | None = None) -> list[SubModel]:
        """``n_sub`` sub-models drawn uniformly (with replacement) from :attr:`candidates`: the
        grid without the main model (``include_main``) or the whole grid."""
        if not self.candidates:
            return []
        picks = torch.randint(len(self.candidates), (self.n_sub,), generator=generator)
        return [self.candidates[int(i)] for i in picks]

    def tensors(self, sub: SubModel) -> dict[str, Tensor]:
        """The sliced parameters (views of the live ones: gradients flow into the shared
        weights) and the width's private BatchNorm statistics of ``sub``."""
        if sub.width not in self._plans:
            raise TrainlabError(f"width {sub.width} is not one of {self.widths}")
        named = dict(self.model.named_parameters())
        stats = self._stats.get(sub.width, {})
        out = {}
        for name, (rows, cols) in self._plans[sub.width].items():
            if name in stats:
                out[name] = stats[name]
                continue
            t = named[name] if name in named else self.model.get_buffer(name)
            t = t[:rows] if rows is not None else t
            out[name] = t[:, :cols] if cols is not None else t
        if sub.depth is not None and sub.depth != self.full_depth:
            dropped = tuple(f"{self.depth_attr}.{i}." for i in range(sub.depth, self.full_depth))
            out = {k: v for k, v in out.items() if not k.startswith(dropped)}
        return out

    @contextmanager
    def _depth(self, depth: int | None) -> Iterator[None]:
        if depth is None or depth == self.full_depth:
            yield
            return
        blocks = getattr(self.model, self.depth_attr)
        setattr(self.model, self.depth_attr, blocks[:depth])
        try:
            yield
        finally:
            setattr(self.model, self.depth_attr, blocks)

    def forward(self, sub: SubModel, *args: Any, **kwargs: Any) -> Any:
        """The output of sub-model ``sub`` (the main model's for width 1 at full depth)."""
        if sub.width == 1.0 and sub.depth in (None, self.full_depth):
            return self.model(*args, **kwargs)
        tensors = self.tensors(sub)  # names of the whole model, before blocks are dropped
        with self._depth(sub.depth):
            return functional_call(self.model, tensors, args, kwargs)

    def submodel(self, sub: SubModel | float) -> nn.Module:
        """Sub-model ``sub`` (or the full-depth sub-model of width ``sub``) as a module sharing
        this model's weights, for a loss or an evaluation that calls ``model(inputs)``."""
        return _SubModelView(self, sub if isinstance(sub, SubModel) else SubModel(float(sub)))

    # -- extraction -----------------------------------------------------------------------
    def extract(self, width: float = 1.0, depth: int | None = None) -> nn.Module:
        """Sub-model ``(width, depth)`` as a standalone dense model: a copy of the model with
        smaller layers (and its width's BatchNorm statistics), whose outputs equal
        :meth:`forward`'s for that sub-model; the copy shares nothing with the model."""
        sub = SubModel(float(width), depth)
        tensors = {k: v.detach().clone() for k, v in self.tensors(sub).items()}
        with self._depth(depth):
            small = copy.deepcopy(self.model)
        for name, value in tensors.items():
            owner_name, _, leaf = name.rpartition(".")
            owner = small.get_submodule(owner_name)
            if isinstance(getattr(owner, leaf), nn.Parameter):
                setattr(owner, leaf, nn.Parameter(value, requires_grad=True))
            else:
                owner.register_buffer(leaf, value)
        for module in small.modules():
            _fix_sizes(module)
        return small


def _fix_sizes(module: nn.Module) -> None:
    """Make a sliced layer's size attributes match its tensors."""
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
        module.out_channels, module.in_channels = module.weight.shape[:2]
    elif isinstance(module, _NORMS):
        module.num_features = (module.running_mean if module.weight is None
                               else module.weight).shape[0]  # fmt: skip


def _probe(model: nn.Module, scope: str, example: Tensor | None,
           width: float) -> dict[str, tuple[int | None, int | None]]:  # fmt: skip
    """The slices of the width-``width`` sub-model inside sub-module ``scope``: name ->
    (rows kept or None, input columns kept or None), found by the positive probe."""
    try:
        root = model.get_submodule(scope)
    except AttributeError:
        raise TrainlabError(f"sortednet: the model has no module {scope!r}") from None
    probe = copy.deepcopy(root).double().eval()
    for name, m in probe.named_modules():
        if not isinstance(m, _WEIGHTED + _NORMS) and any(True for _ in m.parameters(False)):
            raise TrainlabError(f"sortednet cannot nest the width of module "
                                f"{_full(scope, name) or 'the model'} ({type(m).__name__})")
    layers = [(n, m) for n, m in probe.named_modules() if isinstance(m, _WEIGHTED)]
    if len(layers) < 2:
        raise TrainlabError(f"sortednet: {scope or 'the model'} has fewer than two Linear/Conv "
                            "layers, so no hidden width to nest")  # fmt: skip
    for m in probe.modules():
        if isinstance(m, _WEIGHTED):
            with torch.no_grad():
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.fill_(1.0)
        elif isinstance(m, _NORMS):
            m.reset_parameters()  # mean 0, variance 1, gain 1, shift 0: positive stays positive
    output = layers[-1][0]
    out_keep = {n: kept(width, m.weight.shape[0]) for n, m in layers if n != output}
    alive: dict[str, int] = {}
    handles = []

    def mask(name: str):
        def hook(module, inputs, out):
            out = out.clone()
            out[:, out_keep[name]:] = 0.0
            return out
        return hook

    def record(name: str):
        def hook(module, inputs):
            x = inputs[0]
            feats = (x != 0).reshape(-1, x.shape[-1]).any(0) if isinstance(module, nn.Linear) \
                else (x != 0).transpose(0, 1).reshape(x.shape[1], -1).any(1)  # fmt: skip
            n = int(feats.sum())
            if not bool(feats[:n].all()):
                raise TrainlabError(f"sortednet: the inputs of {_full(scope, name)} that the "
                                    "kept units feed are not its leading features")  # fmt: skip
            alive[name] = n
        return hook

    for name, m in probe.named_modules():
        if isinstance(m, _WEIGHTED + _NORMS):
            handles.append(m.register_forward_pre_hook(record(name)))
        if name in out_keep:
            handles.append(m.register_forward_hook(mask(name)))
    if example is None or scope:
        first = layers[0][1]
        if not isinstance(first, nn.Linear):
            raise TrainlabError(f"sortednet needs an example input to probe {scope or 'the model'}")
        x = torch.ones(2, first.in_features, dtype=torch.float64)
    else:
        x = torch.ones_like(example, dtype=torch.float64)
    with torch.no_grad():
        probe(x)
    for h in handles:
        h.remove()
    plan: dict[str, tuple[int | None, int | None]] = {}
    for name, m in probe.named_modules():
        full = _full(scope, name)
        if isinstance(m, _WEIGHTED) and name in alive:
            rows = out_keep.get(name)
            cols = alive[name] if alive[name] < m.weight.shape[1] else None
            if rows is not None or cols is not None:
                plan[f"{full}.weight"] = (rows, cols)
                if m.bias is not None and rows is not None:
                    plan[f"{full}.bias"] = (rows, None)
        elif isinstance(m, _NORMS) and name in alive and alive[name] < m.num_features:
            for leaf in ("weight", "bias", "running_mean", "running_var"):
                if getattr(m, leaf, None) is not None:
                    plan[f"{full}.{leaf}"] = (alive[name], None)
    return plan


def _full(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope and name else scope or name
