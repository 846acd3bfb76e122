"""Where a model can grow: its width sites and depth slots, a small model cut from it, and
Net2Net growth of the small model back towards it.

Three families of model are recognised by their structure (no class is imported):

* **chain**: an ``nn.Sequential`` of ``Linear`` layers and elementwise modules (an MLP), or a
  model with a ``features`` ``nn.Sequential`` (convolutions, BatchNorms, activations, pooling)
  and a ``head`` ``Linear`` (a CNN). Each pair of consecutive weight layers is a *width site*:
  the producer's outputs, the BatchNorm right after it, the consumer's inputs (``group``
  inputs per channel where a convolution is flattened into the head). A weight layer that
  maps ``n`` units to ``n`` (stride 1, 'same' padding), is followed by its BatchNorm (if any)
  and a ReLU and comes after a ReLU is a *depth slot*: Net2DeeperNet can insert it as the
  identity.
* **gpt**: a model with ``blocks`` (an ``nn.Sequential`` of pre-norm residual blocks, each with
  an ``mlp`` ``nn.Sequential`` ``[Linear, activation, Linear]`` and an ``attn`` whose output
  projection is ``attn.proj``). The width site of each block is its MLP's hidden layer; every
  block is a depth slot, inserted as the identity by zeroing its two output projections
  (residual stream width is not grown: LayerNorm's statistics would change with it).

A removed slot is held by ``nn.Identity`` placeholders, so module names (``"features.3"``,
``"blocks.1"``) stay those of the full model, which serves as the *blueprint*: the
architecture to grow back to. :func:`shrink` cuts the small model from the blueprint (the
first units of every site, the last depth slots removed); :func:`grow` inserts slots and
widens sites towards a width fraction and a number of slots.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainlab.methods.growth.net2net import (
    GrowthLog,
    identity_conv,
    identity_linear,
    narrow,
    undo_batchnorm,
    widen,
    zero_output,
)

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: modules that act per unit/channel (a width site may pass through them)
_PER_UNIT = (nn.ReLU, nn.GELU, nn.Tanh, nn.SiLU, nn.Sigmoid, nn.Identity, nn.Dropout,
             nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
             nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.Flatten,
             *_NORMS)  # fmt: skip
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class UnsupportedModel(TypeError):
    """The model is none of the families this module can grow."""


@dataclass(frozen=True)
class WidthSite:
    """Producer -> (norm) -> consumer, by module name; ``group`` consumer inputs per unit."""

    producer: str
    consumer: str
    norm: str | None
    group: int


@dataclass(frozen=True)
class DepthSlot:
    """Modules that together start as the identity: ``(layer, norm or None, activation)`` for
    a chain, ``(block,)`` for a GPT."""

    names: tuple[str, ...]


def family(model: nn.Module) -> str:
    """``"chain"`` or ``"gpt"``; :class:`UnsupportedModel` otherwise."""
    if isinstance(getattr(model, "blocks", None), nn.Sequential) and all(
        isinstance(getattr(b, "mlp", None), nn.Sequential) and hasattr(b, "attn")
        for b in model.blocks
        if not isinstance(b, nn.Identity)
    ):
        return "gpt"
    if _chain(model) is not None:
        return "chain"
    raise UnsupportedModel(
        f"{type(model).__name__}: not an MLP (Sequential of Linear layers), a CNN (features + "
        "head) or a GPT (blocks with an mlp)"
    )


def _chain(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """``(name, module)`` of a chain model in forward order, or None."""
    if isinstance(model, nn.Sequential):
        items = [(str(i), m) for i, m in enumerate(model)]
    elif isinstance(getattr(model, "features", None), nn.Sequential) and isinstance(
        getattr(model, "head", None), nn.Linear
    ):
        items = [(f"features.{i}", m) for i, m in enumerate(model.features)]
        items.append(("head", model.head))
    else:
        return None
    if not all(isinstance(m, _WEIGHTED + _PER_UNIT) for _, m in items):
        return None
    if sum(isinstance(m, _WEIGHTED) for _, m in items) < 2:
        return None
    return items


def width_sites(model: nn.Module) -> list[WidthSite]:
    """The model's width sites in forward order (placeholders skipped)."""
    if family(model) == "gpt":
        return [
            WidthSite(f"blocks.{i}.mlp.0", f"blocks.{i}.mlp.2", None, 1)
            for i, b in enumerate(model.blocks)
            if not isinstance(b, nn.Identity)
        ]
    items = _chain(model)
    sites = []
    weighted = [k for k, (_, m) in enumerate(items) if isinstance(m, _WEIGHTED)]
    for a, b in zip(weighted, weighted[1:], strict=False):
        name_a, prod = items[a]
        name_b, cons = items[b]
        norm = next((n for n, m in items[a + 1 : b] if isinstance(m, _NORMS)), None)
        units = prod.out_features if isinstance(prod, nn.Linear) else prod.out_channels
        group = cons.weight.shape[1] // units
        sites.append(WidthSite(name_a, name_b, norm, group))
    return sites


def depth_slots(model: nn.Module) -> list[DepthSlot]:
    """The model's depth slots in forward order (present modules only)."""
    if family(model) == "gpt":
        return [
            DepthSlot((f"blocks.{i}",))
            for i, b in enumerate(model.blocks)
            if not isinstance(b, nn.Identity)
        ]
    items = [(n, m) for n, m in _chain(model) if not isinstance(m, nn.Identity)]
    slots = []
    for k, (name, layer) in enumerate(items[1:-1], start=1):
        if not isinstance(layer, _WEIGHTED) or not _square_same(layer):
            continue
        before = [m for _, m in items[:k] if not isinstance(m, _POOLS)]
        if not before or not isinstance(before[-1], nn.ReLU):
            continue
        after = items[k + 1 : k + 3]
        if after and isinstance(after[0][1], _NORMS):
            if len(after) == 2 and isinstance(after[1][1], nn.ReLU):
                slots.append(DepthSlot((name, after[0][0], after[1][0])))
        elif after and isinstance(after[0][1], nn.ReLU):
            slots.append(DepthSlot((name, None, after[0][0])))
    return slots


_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.Dropout)


def _square_same(layer: nn.Module) -> bool:
    if isinstance(layer, nn.Linear):
        return layer.in_features == layer.out_features
    k = layer.kernel_size
    return (
        layer.in_channels == layer.out_channels
        and layer.groups == 1
        and all(s == 1 for s in layer.stride)
        and all(d == 1 for d in layer.dilation)
        and all(kk % 2 == 1 for kk in k)
        and tuple(layer.padding) == tuple(kk // 2 for kk in k)
    )


def _units(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _target_width(blueprint: nn.Module, site: WidthSite, fraction: float) -> int:
    return max(1, math.floor(fraction * _units(blueprint.get_submodule(site.producer)) + 1e-9))


def kept_slots(blueprint: nn.Module, fraction: float) -> int:
    """How many of the blueprint's depth slots a depth ``fraction`` keeps (rounded down)."""
    return math.floor(fraction * len(depth_slots(blueprint)) + 1e-9)


def shrink(
    blueprint: nn.Module, width: float = 1.0, depth: float = 1.0, *, rescale_fan_in: bool = True
) -> nn.Module:
    """A small copy of ``blueprint`` to grow from: every width site keeps its first
    ``floor(width * n)`` units (at least 1) and only the first ``floor(depth * slots)`` depth
    slots stay (the others become ``nn.Identity``). The kept entries are the blueprint's own
    initial values; ``rescale_fan_in`` (for layers with PyTorch's fan-in scaled default
    initialisation, not for a GPT's fixed-std one) rescales each narrowed consumer to the
    distribution of its smaller fan-in. ``ValueError`` unless ``0 < width <= 1`` and ``0 <=
    depth <= 1``."""
    if not (0 < width <= 1) or not (0 <= depth <= 1):
        raise ValueError(f"width must be in (0, 1] and depth in [0, 1], got {width}, {depth}")
    small = copy.deepcopy(blueprint)
    keep = kept_slots(blueprint, depth)
    for slot in depth_slots(small)[keep:]:
        for name in slot.names:
            if name is not None:
                _set(small, name, nn.Identity())
    for site in width_sites(small):
        producer = small.get_submodule(site.producer)
        k = _target_width(blueprint, site, width)
        if k < _units(producer):
            narrow(
                producer,
                small.get_submodule(site.consumer),
                torch.arange(k),
                norm=small.get_submodule(site.norm) if site.norm else None,
                group=site.group,
                rescale_fan_in=rescale_fan_in and family(small) == "chain",
            )
    return small


def grow(
    model: nn.Module,
    blueprint: nn.Module,
    width: float = 1.0,
    depth: float = 1.0,
    *,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
    inputs: Tensor | None = None,
) -> GrowthLog:
    """Net2Net ``model`` in place towards ``blueprint``: the removed depth slots among the
    first ``floor(depth * slots)`` are inserted as the identity (sized to the width they sit
    in), then every width site is widened to ``floor(width * n)`` units (never narrowed).
    ``inputs`` (a batch of model inputs) estimates the statistics an inserted BatchNorm undoes;
    without it the BN is the identity in eval mode only. Returns the :class:`GrowthLog` for
    :func:`~trainlab.methods.growth.net2net.carry_optimizer_state`."""
    log = GrowthLog()
    fam = family(blueprint)
    wanted = depth_slots(blueprint)[: kept_slots(blueprint, depth)]
    missing = [s for s in wanted if isinstance(model.get_submodule(s.names[0]), nn.Identity)]
    for slot in missing:
        if fam == "gpt":
            _insert_block(model, blueprint, slot.names[0], log)
        else:
            _insert_layer(model, blueprint, slot, log, inputs)
    for site in width_sites(model):
        producer = model.get_submodule(site.producer)
        k = _target_width(blueprint, site, width)
        if k > _units(producer):
            widen(
                producer,
                model.get_submodule(site.consumer),
                k,
                norm=model.get_submodule(site.norm) if site.norm else None,
                group=site.group,
                noise=noise,
                generator=generator,
                log=log,
            )
    return log


def _insert_layer(
    model: nn.Module, blueprint: nn.Module, slot: DepthSlot, log: GrowthLog, inputs: Tensor | None
) -> None:
    layer_name, norm_name, act_name = slot.names
    # the width the slot sits in: the output width of the weight layer before it
    items = [(n, m) for n, m in _chain(model) if not isinstance(m, nn.Identity)]
    order = [n for n, _ in _chain(model)]
    before = [m for n, m in items if order.index(n) < order.index(layer_name)]
    width = _units(next(m for m in reversed(before) if isinstance(m, _WEIGHTED)))
    like = blueprint.get_submodule(layer_name)
    if isinstance(like, nn.Linear):
        layer = identity_linear(width, bias=like.bias is not None).to(like.weight.device)
    else:
        layer = identity_conv(like, width)
    _set(model, layer_name, layer)
    log.created.extend(layer.parameters())
    if norm_name is not None:
        norm = type(blueprint.get_submodule(norm_name))(width).to(like.weight.device)
        stats = None
        if inputs is not None:  # the BN's input: the activations reaching the new layer
            stats = _activations_at(model, layer_name, inputs)
        undo_batchnorm(norm, stats)
        _set(model, norm_name, norm)
        log.created.extend(norm.parameters())
    _set(model, act_name, copy.deepcopy(blueprint.get_submodule(act_name)))


@torch.no_grad()
def _activations_at(model: nn.Module, name: str, inputs: Tensor) -> Tensor:
    """The output of module ``name`` (an identity layer: its input) on ``inputs``, computed in
    train mode (the BatchNorms before it use the batch's statistics, as the next training
    step will) with their running statistics left untouched."""
    out: list[Tensor] = []
    handle = model.get_submodule(name).register_forward_hook(lambda m, a, o: out.append(o))
    norms = [m for m in model.modules() if isinstance(m, _NORMS)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None
              else None) for m in norms]  # fmt: skip
    was_training = model.training
    try:
        for m in norms:
            m.momentum = 0.0  # running <- (1 - 0) running: unchanged
        model.train()
        model(inputs)
    finally:
        handle.remove()
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
        model.train(was_training)
    return out[0]


def _insert_block(model: nn.Module, blueprint: nn.Module, name: str, log: GrowthLog) -> None:
    block = copy.deepcopy(blueprint.get_submodule(name))
    # narrow its MLP to the width the other blocks have now (their first units)
    present = [b for b in model.blocks if not isinstance(b, nn.Identity)]
    if present:
        width = present[0].mlp[0].out_features
        if width < block.mlp[0].out_features:
            narrow(block.mlp[0], block.mlp[2], torch.arange(width))
    zero_output(block.attn.proj)
    zero_output(block.mlp[2])
    _set(model, name, block)
    log.created.extend(block.parameters())


def grown_copy(model: nn.Module, blueprint: nn.Module) -> nn.Module:
    """A copy of ``model`` grown to the whole ``blueprint`` without noise (the same function,
    the blueprint's architecture): what a growth method evaluates before it has grown."""
    out = copy.deepcopy(model)
    grow(out, blueprint, 1.0, 1.0, generator=torch.Generator().manual_seed(0))
    return out
