"""TLEG: a Transformer's layers as a linear expansion of a two-part learngene.

Paper: Shiyu Xia, Miaosen Zhang, Xu Yang, Ruiming Chen, Haokun Chen, Xin Geng, "Transformer as
Linear Expansion of Learngene" (AAAI 2024, arXiv:2312.05614).

Rule implemented. The learngene is two sets of block parameters, ``theta_A`` and ``theta_B``,
of the shape of one Transformer block. A model of depth ``L`` built from it has, at block
``l``,

    theta_l = theta_A + (l / L) * theta_B,      l = 0, 1, ..., L - 1

for *every* parameter of the block (attention and MLP weights and biases, LayerNorm gains and
biases). Stage 1 trains an auxiliary model whose blocks are this expansion (only ``theta_A``,
``theta_B`` and the non-block parts are trainable) with soft distillation from an ancestor
(:func:`trainlab.methods.learngene.distill.distillation_loss`). Stage 2 initialises a
descendant of any depth ``L'`` with ``theta_A + (l / L') theta_B`` and the auxiliary model's
non-block parameters, then trains it normally.

Choices where the paper is open, or that we fix:

* **Indexing.** The paper writes ``theta_l = theta_A + (l / L) theta_B``; we follow the
  authors' released code, which counts blocks from 0 (``i / num_layers`` for ``i`` in
  ``range(num_layers)``): block 0 is exactly ``theta_A`` and the last block is
  ``theta_A + (L - 1) / L * theta_B``. In 1-based terms the coefficient is ``(l - 1) / L``.
* **Initialisation of the learngene** (as the released code): ``theta_A`` takes the template
  block's own initialisation (for the suite's GPT, normal(0, 0.02) weights, zero biases, unit
  LayerNorm gains); ``theta_B`` is normal(0, ``init_std`` = 0.02) for weight matrices and zero
  for vectors (biases, LayerNorm gains and biases), so the LayerNorm gain starts at 1 in
  every layer.
* **What a descendant inherits besides the blocks**: everything else of the auxiliary model
  (token and position embeddings, final norm, tied output head), as the released code does
  for ImageNet descendants (same task, same classes); ``initialize_descendant`` copies every
  non-block tensor whose name and shape match and raises on a mismatch.
* **Any depth ``L' >= 1``** can be produced; depth 0 raises :class:`LearngeneError`.
* Buffers of the template block (the suite's GPT block has none) are shared by all expanded
  blocks of the auxiliary model and copied into every descendant block.

A plain PyTorch loop (``GPT`` and an ``ancestor`` as in :mod:`trainlab.workloads.charlm`):

    aux = make_auxiliary(GPT(vocab, layers=1), depth=6)      # blocks become a TLEG stack
    opt = torch.optim.AdamW(aux.parameters(), lr=1e-3)
    for x in batches:                                         # stage 1: distil the ancestor
        with torch.no_grad():
            t = ancestor(x)
        loss = distillation_loss(aux(x), t)                   # alpha = 1, tau = 1
        opt.zero_grad(); loss.backward(); opt.step()
    for depth in (2, 4, 8):                                   # stage 2: any depth
        child = GPT(vocab, layers=depth)
        initialize_descendant(child, aux)
        ...                                                   # train child as usual
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.func import functional_call

from trainlab.methods.learngene.distill import LearngeneError


def expansion_coefficient(layer: int, depth: int) -> float:
    """The weight of ``theta_B`` in block ``layer`` (0-based) of a depth-``depth`` model:
    ``layer / depth`` (TLEG, Xia et al., AAAI 2024; the released code's indexing)."""
    check_depth(depth)
    if not 0 <= layer < depth:
        raise ValueError(f"layer {layer} is outside 0..{depth - 1}")
    return layer / depth


def check_depth(depth: int) -> None:
    """Raise :class:`LearngeneError` unless ``depth`` is an integer >= 1: the depths a TLEG
    learngene can produce (Xia et al., AAAI 2024)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise LearngeneError(f"TLEG cannot produce a descendant of depth {depth!r} (need >= 1)")


class LinearExpansion(nn.Module):
    """A stack of ``depth`` blocks whose parameters are ``theta_A + (l / depth) theta_B``
    (l = 0..depth-1): the auxiliary model's body in TLEG (Xia et al., "Transformer as Linear
    Expansion of Learngene", AAAI 2024).

    ``block`` is the template (deep-copied twice: ``theta_a`` keeps its initialisation,
    ``theta_b`` gets normal(0, ``init_std``) matrices and zero vectors; ``generator`` seeds
    that draw). Forward maps ``x`` through the blocks in order, like ``nn.Sequential``.
    """

    def __init__(
        self,
        block: nn.Module,
        depth: int,
        init_std: float = 0.02,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_depth(depth)
        self.depth = depth
        self.theta_a = copy.deepcopy(block)
        self.theta_b = copy.deepcopy(block)
        with torch.no_grad():
            for p in self.theta_b.parameters():
                if p.dim() >= 2:
                    noise = torch.randn(p.shape, generator=generator, dtype=p.dtype)
                    p.copy_(noise.to(p.device) * init_std)
                else:
                    p.zero_()

    def layer_parameters(self, layer: int, depth: int | None = None) -> dict[str, Tensor]:
        """``{name: theta_A + (layer / depth) theta_B}`` for every block parameter (``depth``
        defaults to the stack's own); differentiable in ``theta_A`` and ``theta_B``."""
        c = expansion_coefficient(layer, self.depth if depth is None else depth)
        b = dict(self.theta_b.named_parameters())
        return {n: a + c * b[n] for n, a in self.theta_a.named_parameters()}

    def forward(self, x: Tensor) -> Tensor:
        for layer in range(self.depth):
            x = functional_call(self.theta_a, self.layer_parameters(layer), (x,))
        return x


def make_auxiliary(
    model: nn.Module,
    depth: int,
    blocks_attr: str = "blocks",
    init_std: float = 0.02,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Turn ``model`` into TLEG's auxiliary model, in place: its block stack
    ``getattr(model, blocks_attr)`` (an ``nn.Sequential`` of identical blocks, at least one) is
    replaced by a :class:`LinearExpansion` of ``depth`` blocks templated on the first block.
    Returns ``model``. (Xia et al., "Transformer as Linear Expansion of Learngene", AAAI 2024.)
    """
    blocks = getattr(model, blocks_attr)
    if len(blocks) < 1:
        raise LearngeneError(f"model.{blocks_attr} has no block to template the learngene on")
    setattr(model, blocks_attr, LinearExpansion(blocks[0], depth, init_std, generator))
    return model


@torch.no_grad()
def initialize_descendant(
    descendant: nn.Module, auxiliary: nn.Module, blocks_attr: str = "blocks"
) -> nn.Module:
    """Initialise ``descendant`` (any depth) from a trained auxiliary model, in place: block
    ``l`` of ``L`` gets ``theta_A + (l / L) theta_B``; every other tensor is copied from the
    auxiliary model by name. Raises :class:`LearngeneError` for depth 0 or a tensor whose
    shape differs. Returns ``descendant``. (TLEG, Xia et al., AAAI 2024.)"""
    expansion = getattr(auxiliary, blocks_attr)
    if not isinstance(expansion, LinearExpansion):
        raise LearngeneError(f"auxiliary.{blocks_attr} is not a TLEG LinearExpansion")
    blocks = getattr(descendant, blocks_attr)
    check_depth(len(blocks))
    buffers = dict(expansion.theta_a.named_buffers())
    for layer, block in enumerate(blocks):
        _copy_into(block, {**expansion.layer_parameters(layer, len(blocks)), **buffers})
    prefix = blocks_attr + "."
    source = {k: v for k, v in auxiliary.state_dict().items() if not k.startswith(prefix)}
    target = {k: v for k, v in descendant.state_dict().items() if not k.startswith(prefix)}
    _copy_matching(target, source, "descendant")
    return descendant


def _copy_into(module: nn.Module, tensors: dict[str, Tensor]) -> None:
    _copy_matching(module.state_dict(), tensors, "descendant block")


def _copy_matching(target: dict[str, Tensor], source: dict[str, Tensor], what: str) -> None:
    """Copy ``source[k]`` into ``target[k]`` for every key; the key sets and shapes must agree."""
    if set(target) != set(source):
        missing = sorted(set(target) ^ set(source))[:3]
        raise LearngeneError(f"{what} and learngene differ in tensors {missing}")
    for k, t in target.items():
        if t.shape != source[k].shape:
            raise LearngeneError(
                f"{what} tensor {k} has shape {tuple(t.shape)}, the learngene's "
                f"{tuple(source[k].shape)}"
            )
        t.copy_(source[k])
