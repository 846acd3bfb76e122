"""SWS: stage-wise weight sharing, one learngene layer per stage, repeated to any depth.

Paper: Shi-Yu Xia, Wenxuan Zhu, Xu Yang, Xin Geng, "Exploring Learngene via Stage-wise Weight
Sharing for Initializing Variable-sized Models" (IJCAI 2024, arXiv:2404.16897).

Rule implemented. A network is a sequence of **stages**; within a stage every layer after the
stage's first has the same input and output shape (a *repeatable* layer). The **auxiliary
model** shares the weights of the repeatable layers of each stage: stage ``s`` applies its one
learngene layer ``g_s`` ``r_s`` times. It is trained by distillation from an ancestor
(:func:`trainlab.methods.learngene.distill.distillation_loss`). A **descendant** with
``d_s`` layers in stage ``s`` is initialised with the stage's first (transition) layer, then
``d_s - 1`` copies of ``g_s`` (independent copies: the descendant shares nothing), and every
other tensor (the head) from the auxiliary model.

Choices where the paper is open, or that we adapt (the paper studies Vision Transformers; we
apply its rule to the suite's CNNs, ``digits_cnn`` and ``mnist1d_cnn``):

* **Stages and layers of a CNN.** A *layer* is a convolution with the normalisation and
  activation modules that follow it; pooling ends a stage, and a layer that changes the channel
  count or the spatial size (stride, padding) starts one. In ``digits_cnn`` this gives two
  stages, 16 and 32 channels, each a transition convolution followed by repeatable ones; the
  stage depths are the model's ``depths`` option (default ``(2, 2)``).
* **What is shared.** The whole repeatable layer: convolution weights, BatchNorm affine
  parameters *and* running statistics (the auxiliary model holds one module per stage and
  applies it repeatedly). The transition layers and the head are not shared (the paper's
  stages are joined by unshared transforms too) and are inherited by descendants unchanged.
* **Distillation** (the paper says the auxiliary model is trained "through distillation" from
  the ancestor, DeiT-style): DeiT's soft distillation, ``alpha = 1``, ``tau = 1`` by default,
  the same loss as TLEG; ``alpha`` and ``tau`` are the caller's to change.
* **Depths a learngene can produce**: any ``d_s >= 1`` per stage (``d_s = 1`` uses only the
  transition layer), provided the auxiliary stage has a learngene layer whenever
  ``d_s > 1``; otherwise, or with another number of stages, :class:`LearngeneError`.
* **Shape-changing layers** (``mnist1d_cnn``, whose stem is followed by two stride-2
  convolutions, each halving the signal). The paper's ViT stages are joined by unshared
  transforms and its repeated blocks all keep their shape, so a layer that changes the shape
  cannot be the shared one: each stride-2 convolution starts a stage as its (unshared)
  transition layer, and only the shape-preserving convolutions after it (stride 1, 'same'
  padding, channels kept) are the stage's learngene layer. The workload's ``depths`` option
  (three stages at lengths 40, 20, 10; default ``(1, 1, 1)``, the workload's model: three
  lone transitions) adds such layers; a descendant with the default depths inherits the
  transitions and the head, deeper ones also the learngene layers.

A plain PyTorch loop (``DigitsCNN`` from :mod:`trainlab.workloads.digits`, any ``ancestor``):

    aux = make_auxiliary(DigitsCNN(depths=(4, 4)))      # stage layers 2-4 share one layer
    opt = torch.optim.AdamW(aux.parameters(), lr=1e-3)
    for x in batches:                                    # distil the ancestor
        with torch.no_grad():
            t = ancestor(x)
        loss = distillation_loss(aux(x), t)
        opt.zero_grad(); loss.backward(); opt.step()
    for depths in ((1, 2), (2, 3), (3, 5)):              # descendants of any depth
        child = initialize_descendant(DigitsCNN(depths=depths), aux)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainlab.methods.learngene.distill import LearngeneError

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip


@dataclass(frozen=True)
class Stage:
    """One stage of a convolutional ``nn.Sequential``: the indices of the modules of its
    transition layer (the stage's first, which may change the shape) and of each repeatable
    layer after it (a layer = a convolution and the modules up to the next convolution)."""

    transition: tuple[int, ...]
    repeats: tuple[tuple[int, ...], ...]

    @property
    def depth(self) -> int:
        return 1 + len(self.repeats)


def _repeatable(conv: nn.Module) -> bool:
    """Same input and output shape: channels kept, stride 1, 'same' padding, odd kernel."""
    k = conv.kernel_size
    return (
        conv.in_channels == conv.out_channels
        and all(s == 1 for s in conv.stride)
        and all(d == 1 for d in conv.dilation)
        and conv.padding == tuple(x // 2 for x in k)
        and all(x % 2 == 1 for x in k)
    )


def find_stages(features: nn.Sequential) -> list[Stage]:
    """The stages of a flat convolutional ``nn.Sequential`` (conv, norm, activation, ...,
    pooling): a pooling module ends a stage, a non-repeatable convolution starts one. Modules
    before the first convolution and pooling modules belong to no layer. (SWS, Xia et al.,
    IJCAI 2024, adapted to CNNs.)"""
    layers: list[list[int]] = []  # module indices of each layer
    starts: list[int] = []  # the layers that start a stage
    new_stage, in_layer = True, False
    for i, m in enumerate(features):
        if isinstance(m, _CONV):
            if new_stage or not _repeatable(m):
                starts.append(len(layers))
            layers.append([i])
            new_stage, in_layer = False, True
        elif isinstance(m, _POOL):
            new_stage, in_layer = True, False
        elif in_layer:
            layers[-1].append(i)
    bounds = [*starts, len(layers)]
    return [
        Stage(tuple(layers[a]), tuple(tuple(layer) for layer in layers[a + 1 : b]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def make_auxiliary(model: nn.Module, features_attr: str = "features") -> nn.Module:
    """Turn ``model`` into SWS's auxiliary model, in place: in every stage of
    ``getattr(model, features_attr)`` (see :func:`find_stages`) the repeatable layers all
    become the *same* modules as the first of them, so the stage applies one learngene layer
    repeatedly. Returns ``model``. (Xia et al., "Exploring Learngene via Stage-wise Weight
    Sharing", IJCAI 2024.)"""
    features = getattr(model, features_attr)
    for stage in find_stages(features):
        if not stage.repeats:
            continue
        gene = stage.repeats[0]
        for layer in stage.repeats[1:]:
            if len(layer) != len(gene):
                raise LearngeneError("the repeatable layers of a stage differ in structure")
            for i, j in zip(layer, gene, strict=True):
                features[i] = features[j]
    return model


def check_depths(auxiliary: nn.Module, depths: tuple[int, ...], features_attr: str = "features"):
    """Raise :class:`LearngeneError` unless the auxiliary model can initialise a descendant
    with ``depths[s]`` layers in stage ``s``: one depth per stage, each >= 1, and > 1 only
    where the stage has a learngene layer. (SWS, Xia et al., IJCAI 2024.)"""
    stages = find_stages(getattr(auxiliary, features_attr))
    depths = tuple(depths)
    if len(depths) != len(stages):
        raise LearngeneError(
            f"the learngene has {len(stages)} stages, the descendant depths {depths} have "
            f"{len(depths)}"
        )
    for s, (d, stage) in enumerate(zip(depths, stages, strict=True)):
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise LearngeneError(f"stage {s} depth must be an integer >= 1, got {d!r}")
        if d > 1 and not stage.repeats:
            raise LearngeneError(
                f"stage {s} of the learngene has no shared layer, so it cannot produce depth {d}"
            )


@torch.no_grad()
def initialize_descendant(
    descendant: nn.Module, auxiliary: nn.Module, features_attr: str = "features"
) -> nn.Module:
    """Initialise ``descendant`` from a trained SWS auxiliary model, in place: each stage's
    transition layer is copied, each of its repeatable layers gets a copy of the stage's
    learngene layer (parameters and buffers, e.g. BatchNorm statistics), and every tensor
    outside ``features_attr`` is copied by name. Raises :class:`LearngeneError` when the
    descendant's depths cannot be produced or a shape differs. Returns ``descendant``.
    (Xia et al., "Exploring Learngene via Stage-wise Weight Sharing", IJCAI 2024.)"""
    src, dst = getattr(auxiliary, features_attr), getattr(descendant, features_attr)
    src_stages, dst_stages = find_stages(src), find_stages(dst)
    check_depths(auxiliary, tuple(st.depth for st in dst_stages), features_attr)
    for a, d in zip(src_stages, dst_stages, strict=True):
        pairs = [(a.transition, d.transition)] + [(a.repeats[0], layer) for layer in d.repeats]
        for from_layer, to_layer in pairs:
            if len(from_layer) != len(to_layer):
                raise LearngeneError("a descendant layer differs in structure from the learngene")
            for i, j in zip(from_layer, to_layer, strict=True):
                _copy_state(dst[j], src[i], f"{features_attr}.{j}")
    prefix = features_attr + "."
    source = {k: v for k, v in auxiliary.state_dict().items() if not k.startswith(prefix)}
    for k, t in descendant.state_dict().items():
        if k.startswith(prefix):
            continue
        if k not in source or source[k].shape != t.shape:
            raise LearngeneError(f"descendant tensor {k} has no match in the learngene")
        t.copy_(source[k])
    return descendant


def _copy_state(target: nn.Module, source: nn.Module, name: str) -> None:
    src = source.state_dict()
    for k, t in target.state_dict().items():
        if k not in src or src[k].shape != t.shape:
            raise LearngeneError(f"descendant tensor {name}.{k} does not match the learngene")
        t.copy_(src[k])
