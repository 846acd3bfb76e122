"""Net2Net: function-preserving widening and deepening of layers.

Paper: Tianqi Chen, Ian Goodfellow, Jonathon Shlens, "Net2Net: Accelerating Learning via
Knowledge Transfer" (ICLR 2016), arXiv:1511.05641.

**Net2WiderNet** (:func:`widen`). A hidden layer of ``n`` units (a ``Linear``'s outputs, a
convolution's channels) that feeds a consumer layer becomes ``q >= n`` units through a random
mapping ``g: {1..q} -> {1..n}``, ``g(j) = j`` for ``j <= n`` and ``g(j)`` drawn uniformly from
``{1..n}`` for ``j > n`` (:func:`random_mapping`). With ``c_i = |{j : g(j) = i}|`` the
replication count of unit ``i``:

* incoming weights (rows of the producer, its bias, and the per-channel parameters and running
  statistics of a BatchNorm between the two) are copied: ``U'[j] = U[g(j)]``;
* outgoing weights (columns of the consumer) are divided by the count:
  ``V'[:, j] = V[:, g(j)] / c_{g(j)}``.

So every replica computes the same activation and the consumer sees the same sum: the network
computes the same function, in train and in eval mode (replicated BatchNorm channels have the
same batch statistics). A convolution flattened into a ``Linear`` consumer gives each channel
``group`` consecutive consumer inputs (``group`` = positions per channel).
Symmetry: replicas of a unit stay identical under any optimizer unless something separates
them; the paper adds a small noise. Here ``noise`` adds ``N(0, (noise * std(U))^2)`` to the
incoming weights of the *new* replicas only (``j > n``), so the original units are untouched
and the function changes by at most that perturbation; ``noise=0`` preserves it exactly.

**Net2DeeperNet** (:func:`identity_linear`, :func:`identity_conv`, :func:`undo_batchnorm`). A
new layer ``h -> phi(I h)`` is inserted, initialised to the identity: identity matrix for a
``Linear``, a Dirac kernel (1 at the centre tap of channel ``i`` to channel ``i``) for a
stride-1 'same'-padded convolution, zero bias. This preserves the function when ``phi`` is
idempotent on its inputs (ReLU after a ReLU: ``relu(relu(x)) = relu(x)``). For a BatchNorm'd
layer the paper sets the normalisation's scale and shift to undo it: ``gamma = sqrt(var +
eps)``, ``beta = mean``, with ``mean``/``var`` the statistics of the layer's input, and the
running statistics set to the same values. Then the BN is the identity in eval mode for every
input, and in train mode on any batch whose statistics are those (exactly on the batch they
were estimated from, approximately on others). Without data, ``mean = 0``, ``var = 1``: exact
in eval mode only.

**Optimizer state** (:func:`carry_optimizer_state`). Each replaced parameter is described by
:class:`Expansion` steps (``new = old.index_select(dim, index)``, outgoing weights also divided
by the counts). The gradient of a replicated *incoming* entry is the old gradient divided by
``c`` (each replica gets ``1/c`` of the consumer's weight), the gradient of a replicated
*outgoing* entry equals the old one. Moment buffers are mapped accordingly: first moments
(``exp_avg``, ``momentum_buffer``) are indexed and multiplied by that gradient scale, second
moments (keys containing ``sq``) by its square, scalars (``step``) copied: the state the grown
network would have accumulated from the same gradients. Parameters that did not exist get no
state (fresh zero moments and step count when the optimizer first sees them).

A plain PyTorch loop, widening the hidden layer of a trained MLP from 8 to 12 units:

>>> import torch
>>> from torch import nn
>>> _ = torch.manual_seed(0)
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> opt = torch.optim.Adam(net.parameters(), lr=1e-2)
>>> x = torch.randn(16, 4)
>>> net(x).square().mean().backward(); opt.step()
>>> before = net(x)
>>> log = widen(net[0], net[2], 12)
>>> new_opt = torch.optim.Adam(net.parameters(), lr=1e-2)
>>> carry_optimizer_state(opt, new_opt, log)
>>> net[0].weight.shape, bool(torch.allclose(net(x), before, atol=1e-6))
(torch.Size([12, 4]), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

#: the layers a width site can produce or consume
Weighted = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def random_mapping(old: int, new: int, generator: torch.Generator | None = None) -> Tensor:
    """Net2Net's ``g``: ``[new]`` indices into ``old`` units, the identity on the first ``old``
    and uniform draws for the rest. ``ValueError`` when ``new < old`` or ``old < 1``."""
    if old < 1 or new < old:
        raise ValueError(f"a mapping needs 1 <= old <= new, got old={old}, new={new}")
    extra = torch.randint(old, (new - old,), generator=generator)
    return torch.cat([torch.arange(old), extra])


def replication_counts(mapping: Tensor, old: int) -> Tensor:
    """``c_i``: how many new units copy old unit ``i`` (``[old]``, each >= 1)."""
    return torch.bincount(mapping, minlength=old)


@dataclass
class Expansion:
    """One step from an old parameter to its replacement: ``new = old.index_select(dim,
    index) * value_scale`` (broadcast along ``dim``), the gradient scaled by ``grad_scale``."""

    dim: int
    index: Tensor
    value_scale: Tensor | None = None
    grad_scale: Tensor | None = None

    def apply(self, t: Tensor, power: int = 0, values: bool = False) -> Tensor:
        """``t`` mapped; ``values`` multiplies by ``value_scale``, ``power`` by
        ``grad_scale ** power`` (1: first moments, 2: second moments)."""
        out = t.index_select(self.dim, self.index.to(t.device))
        scale = (
            self.value_scale
            if values
            else (None if self.grad_scale is None or power == 0 else self.grad_scale**power)
        )
        if scale is None:
            return out
        shape = [1] * t.ndim
        shape[self.dim] = -1
        return out * scale.to(out).view(shape)


@dataclass
class GrowthLog:
    """Which new parameter came from which old one, through which :class:`Expansion` steps;
    parameters created from nothing are listed in ``created``."""

    origin: dict[nn.Parameter, tuple[nn.Parameter, list[Expansion]]] = field(default_factory=dict)
    created: list[nn.Parameter] = field(default_factory=list)

    def replace(self, module: nn.Module, name: str, step: Expansion) -> None:
        """Replace ``module.<name>`` (a parameter) by its expansion, and record it."""
        old = getattr(module, name)
        with torch.no_grad():
            new = nn.Parameter(step.apply(old.detach(), values=True).clone(), old.requires_grad)
        source, steps = self.origin.pop(old, (old, []))
        self.origin[new] = (source, [*steps, step])
        setattr(module, name, new)

    def merge(self, other: GrowthLog) -> None:
        for new, (source, steps) in other.origin.items():
            base, before = self.origin.pop(source, (source, []))
            self.origin[new] = (base, before + steps)
        self.created.extend(other.created)


def _out_dim(layer: nn.Module) -> int:
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if isinstance(layer, nn.modules.conv._ConvNd):
        return layer.out_channels
    raise TypeError(f"cannot widen a {type(layer).__name__}")


def _check_plain(layer: nn.Module) -> None:
    if isinstance(layer, nn.modules.conv._ConvNd) and layer.groups != 1:
        raise TypeError("grouped convolutions are not supported")


def widen(
    producer: nn.Module,
    consumer: nn.Module,
    new_width: int,
    *,
    norm: nn.Module | None = None,
    group: int = 1,
    mapping: Tensor | None = None,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
    log: GrowthLog | None = None,
) -> GrowthLog:
    """Net2WiderNet in place: ``producer``'s outputs (``Linear`` rows or conv channels) become
    ``new_width`` units, ``norm`` (a BatchNorm between them) is replicated alike, and
    ``consumer``'s inputs are replicated and divided by the counts (``group`` consecutive
    consumer inputs per unit, for a flattened convolution). ``mapping`` defaults to
    :func:`random_mapping`; ``noise`` (relative std) perturbs the new replicas' incoming
    weights. Returns the :class:`GrowthLog` (appended to ``log`` when given).

    ``ValueError`` when ``new_width`` is below the current width or the shapes disagree."""
    _check_plain(producer)
    _check_plain(consumer)
    old = _out_dim(producer)
    if mapping is None:
        mapping = random_mapping(old, new_width, generator)
    if len(mapping) != new_width or (len(mapping) and int(mapping.max()) >= old):
        raise ValueError(f"mapping must have {new_width} entries in [0, {old})")
    in_dim = consumer.weight.shape[1]
    if in_dim != old * group:
        raise ValueError(f"consumer has {in_dim} inputs, expected {old} units x group {group}")
    log = log if log is not None else GrowthLog()
    counts = replication_counts(mapping, old).float()
    inv = 1.0 / counts[mapping]  # [new]: 1 / c_g(j)
    log.replace(producer, "weight", Expansion(0, mapping, grad_scale=inv))
    if producer.bias is not None:
        log.replace(producer, "bias", Expansion(0, mapping, grad_scale=inv))
    if norm is not None:
        if not isinstance(norm, _NORMS) or norm.num_features != old:
            raise ValueError(f"norm must be a BatchNorm over {old} channels")
        if norm.affine:
            log.replace(norm, "weight", Expansion(0, mapping, grad_scale=inv))
            log.replace(norm, "bias", Expansion(0, mapping, grad_scale=inv))
        for buf in ("running_mean", "running_var"):
            if getattr(norm, buf) is not None:
                setattr(norm, buf, getattr(norm, buf)[mapping].clone())
        norm.num_features = new_width
    cols = (mapping[:, None] * group + torch.arange(group)).reshape(-1)
    log.replace(consumer, "weight", Expansion(1, cols, value_scale=inv.repeat_interleave(group)))
    _set_width(producer, new_width, out=True)
    _set_width(consumer, new_width * group, out=False)
    if noise > 0 and new_width > old:
        with torch.no_grad():
            w = producer.weight
            std = float(w[:old].std()) if w[:old].numel() > 1 else 1.0
            shape = (new_width - old, *w.shape[1:])
            w[old:] += noise * std * torch.randn(shape, generator=generator).to(w)
    return log


def _set_width(layer: nn.Module, width: int, out: bool) -> None:
    if isinstance(layer, nn.Linear):
        if out:
            layer.out_features = width
        else:
            layer.in_features = width
    elif out:
        layer.out_channels = width
    else:
        layer.in_channels = width


def narrow(
    producer: nn.Module,
    consumer: nn.Module,
    keep: Tensor,
    *,
    norm: nn.Module | None = None,
    group: int = 1,
    rescale_fan_in: bool = False,
) -> None:
    """The inverse direction, for building a small model to grow from: keep units ``keep`` of
    ``producer`` (and ``norm``) and the matching inputs of ``consumer``. With
    ``rescale_fan_in`` the consumer's weight and bias are multiplied by ``sqrt(old_in /
    new_in)``, so a layer with PyTorch's default (fan-in scaled uniform) initialisation keeps
    the distribution a layer of the smaller fan-in would have been initialised with."""
    old_in = consumer.weight.shape[1]
    cols = (keep[:, None] * group + torch.arange(group)).reshape(-1)
    with torch.no_grad():
        producer.weight = nn.Parameter(producer.weight[keep].clone())
        if producer.bias is not None:
            producer.bias = nn.Parameter(producer.bias[keep].clone())
        if norm is not None:
            if norm.affine:
                norm.weight = nn.Parameter(norm.weight[keep].clone())
                norm.bias = nn.Parameter(norm.bias[keep].clone())
            for buf in ("running_mean", "running_var"):
                if getattr(norm, buf) is not None:
                    setattr(norm, buf, getattr(norm, buf)[keep].clone())
            norm.num_features = len(keep)
        scale = (old_in / len(cols)) ** 0.5 if rescale_fan_in else 1.0
        consumer.weight = nn.Parameter(consumer.weight[:, cols].clone() * scale)
        if rescale_fan_in and consumer.bias is not None:
            consumer.bias.mul_(scale)
    _set_width(producer, len(keep), out=True)
    _set_width(consumer, len(cols), out=False)


def identity_linear(width: int, bias: bool = True) -> nn.Linear:
    """Net2DeeperNet's new fully connected layer: ``Linear(width, width)`` with ``W = I``, ``b =
    0`` (the identity; keep it after a ReLU and before a ReLU)."""
    layer = nn.Linear(width, width, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(width))
        if bias:
            layer.bias.zero_()
    return layer


def identity_conv(like: nn.Module, channels: int) -> nn.Module:
    """Net2DeeperNet's new convolution: a layer of ``like``'s class and kernel with
    ``channels`` in and out, stride 1, its 'same' padding and a Dirac kernel (channel ``i``'s
    centre tap is 1), zero bias. ``ValueError`` for a stride, dilation, grouping or padding
    that is not the identity's."""
    k = like.kernel_size
    if any(s != 1 for s in like.stride) or any(d != 1 for d in like.dilation) or like.groups != 1:
        raise ValueError("an identity convolution needs stride 1, dilation 1, groups 1")
    if any(kk % 2 == 0 for kk in k) or tuple(like.padding) != tuple(kk // 2 for kk in k):
        raise ValueError("an identity convolution needs an odd kernel with 'same' padding")
    layer = type(like)(channels, channels, k, padding=like.padding,
                       bias=like.bias is not None, padding_mode=like.padding_mode)  # fmt: skip
    with torch.no_grad():
        nn.init.dirac_(layer.weight)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer.to(like.weight.device)


def undo_batchnorm(norm: nn.Module, inputs: Tensor | None = None) -> nn.Module:
    """Set a BatchNorm to the identity, as Net2DeeperNet does for a BatchNorm'd new layer:
    ``gamma = sqrt(var + eps)``, ``beta = mean`` and running statistics ``(mean, var)``, with
    the per-channel mean and biased variance of ``inputs`` (``[N, C, ...]``, the BN's input)
    or ``(0, 1)`` without data. Returns ``norm``."""
    c = norm.num_features
    if inputs is None:
        mean, var = torch.zeros(c), torch.ones(c)
    else:
        dims = [d for d in range(inputs.ndim) if d != 1]
        mean = inputs.detach().mean(dims)
        var = inputs.detach().var(dims, unbiased=False)
    with torch.no_grad():
        dev = norm.running_mean.device if norm.running_mean is not None else mean.device
        mean, var = mean.to(dev), var.to(dev)
        if norm.affine:
            norm.weight.copy_((var + norm.eps).sqrt())
            norm.bias.copy_(mean)
        if norm.running_mean is not None:
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
    return norm


def zero_output(layer: nn.Linear) -> nn.Linear:
    """Zero a residual branch's output projection (weight and bias), so that ``x + f(x)``
    starts as ``x``: how a pre-norm transformer block is inserted as the identity."""
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def carry_optimizer_state(
    old: torch.optim.Optimizer, new: torch.optim.Optimizer, log: GrowthLog
) -> None:
    """Give ``new`` (built on the grown model) the state of ``old``: kept parameters keep
    theirs, replaced ones get it mapped through their :class:`Expansion` steps (first moments
    times the gradient scale, second moments — keys containing ``sq`` — times its square,
    scalars copied), new ones none. Each group's ``lr`` (set by a scheduler) is copied from
    ``old``'s group of the same position."""
    for g_new, g_old in zip(new.param_groups, old.param_groups, strict=False):
        g_new["lr"] = g_old["lr"]
        if "initial_lr" in g_old:
            g_new["initial_lr"] = g_old["initial_lr"]
    for group in new.param_groups:
        for p in group["params"]:
            if p in old.state:
                new.state[p] = old.state[p]
                continue
            if p not in log.origin:
                continue
            source, steps = log.origin[p]
            if source not in old.state:
                continue
            state = {}
            for key, value in old.state[source].items():
                if isinstance(value, Tensor) and value.shape == source.shape:
                    power = 2 if "sq" in key else 1
                    for step in steps:
                        value = step.apply(value, power=power)
                    state[key] = value.clone()
                else:
                    state[key] = value.clone() if isinstance(value, Tensor) else value
            new.state[p] = state
