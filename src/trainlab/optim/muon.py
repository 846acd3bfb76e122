"""Muon: momentum orthogonalised by Newton-Schulz, for hidden weight matrices, with AdamW for
the rest (Jordan et al., 2024)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.optim._common import (
    Params,
    TrainlabOptimizer,
    check_betas,
    check_nonnegative,
    check_positive,
    corrected_sqrt,
    ema_square_,
    evaluate_closure,
    lr_of,
    uses_foreach,
)

#: the quintic Newton-Schulz coefficients (a, b, c) of Keller Jordan's release
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


class Muon(TrainlabOptimizer):
    r"""Muon (MomentUm Orthogonalized by Newton-Schulz) for weight matrices, AdamW for the
    parameters that are not matrices; one optimizer for a whole model.

    **Muon parameters.** A parameter with ``ndim >= 2`` is seen as the matrix
    :math:`W \in \mathbb{R}^{r \times c}` with ``r = shape[0]`` rows and ``c`` = the product of
    the other dimensions (a convolution kernel ``(out, in, kh, kw)`` becomes
    ``(out, in*kh*kw)``, each output channel's filter one row; every ``ndim > 2`` tensor is
    flattened the same way). With :math:`\mu` (``momentum``), :math:`\eta` (lr),
    :math:`\lambda` (``weight_decay``), :math:`m_0 = 0`:

    .. math::
        \begin{aligned}
        &g_t \leftarrow \nabla f_t(W_{t-1}) \quad (-\nabla f_t \text{ if maximize}) \\
        &m_t \leftarrow \mu\, m_{t-1} + (1 - \mu)\, g_t \\
        &u_t \leftarrow (1 - \mu)\, g_t + \mu\, m_t \quad
            (u_t \leftarrow m_t \text{ if not nesterov}) \\
        &O_t \leftarrow \mathrm{NS}_5(u_t) \\
        &W_t \leftarrow W_{t-1}(1 - \eta\lambda)
            - \eta \sqrt{\max(1, r / c)}\; O_t
        \end{aligned}

    :math:`\mathrm{NS}_k(G)`: transpose :math:`G` if :math:`r > c` (so that :math:`X X^\top`
    is the smaller Gram matrix), :math:`X_0 = G / (\lVert G \rVert_F + \epsilon_{ns})`, then
    ``ns_steps`` quintic Newton-Schulz iterations

    .. math::
        X_{k+1} = a X_k + b (X_k X_k^\top) X_k + c (X_k X_k^\top)^2 X_k,
        \qquad (a, b, c) = (3.4445, -4.7750, 2.0315),

    and transpose back. Dividing by the Frobenius norm bounds the spectral norm by 1; the
    iteration maps each singular value :math:`\sigma` of :math:`X_0` through the odd
    polynomial :math:`p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5`, five times, keeping the
    singular vectors: :math:`O \approx U V^\top` for :math:`G = U \Sigma V^\top`. These
    coefficients trade exactness for speed (steep slope at 0), so the singular values of
    :math:`O` land in roughly [0.7, 1.2] rather than at 1 (a :math:`\sigma` below ~1e-3
    relative to :math:`\lVert G \rVert_F` stays smaller). :math:`O` has spectral norm
    about 1, so ``lr`` is a step in spectral norm (times :math:`\sqrt{\max(1, r/c)}`).

    **AdamW parameters.** Every other parameter (biases, norm gains: ``ndim < 2``) and every
    parameter of a group with ``use_muon=False`` takes a decoupled AdamW step:
    :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`,
    :math:`p \leftarrow p(1 - \eta\lambda) - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)`
    with the bias corrections :math:`\hat m = m / (1 - \beta_1^t)`,
    :math:`\hat v = v / (1 - \beta_2^t)`, ``t`` counted per parameter.

    **Which parameters take which step.** A group's ``use_muon`` decides: ``True`` -- all its
    parameters are matrices for Muon (a parameter with ``ndim < 2`` raises ``ValueError``);
    ``False`` -- all take AdamW (embeddings, the output head); ``None`` (the default) -- by
    shape, ``ndim >= 2`` Muon and the rest AdamW, both at the group's ``lr``. Muon is meant for
    hidden layers only: the authors optimise the input embedding and the output head with
    AdamW, at its own learning rate; :func:`muon_param_groups` builds such groups from a model.

    **Variant.** Keller Jordan's release (github.com/KellerJordan/Muon, PyPI
    ``muon-optimizer`` 0.1.0, ``SingleDeviceMuonWithAuxAdam``): momentum as an EMA (``lerp``,
    not SGD's :math:`m = \mu m + g`), Nesterov by default, the :math:`\sqrt{\max(1, r/c)}`
    scale, decoupled decay at rate :math:`\eta\lambda`, the auxiliary Adam's defaults. Where
    this class differs, deliberately: (1) the release runs the iteration in bfloat16 (for GPU
    speed); here it runs in float32, or float64 for float64 parameters (``ns_dtype`` may ask
    for another, e.g. ``torch.bfloat16`` to match the release); (2) the release's Nesterov step
    overwrites ``p.grad`` with :math:`u_t`; here ``p.grad`` is left unchanged; (3) for a
    convolution kernel the release takes the scale from the kernel's last two dimensions
    (``kh/kw``) and then fails to add the flattened update to the 4-d parameter (0.1.0); here
    the scale uses the flattened matrix's ``r/c`` (equal to 1 whenever
    ``out <= in*kh*kw``, as in the usual convolution); (4) the release treats 3-d tensors as
    a batch of matrices; here every ``ndim > 2`` tensor is flattened to one matrix.

    Args:
        params (iterable): parameters, or dicts defining parameter groups (a group may set
            ``use_muon``: True, False or None, and any of the arguments below).
        lr (float or Tensor, optional): :math:`\eta \ge 0`, for Muon and AdamW parameters of
            the group (default: 0.02, the release's Muon rate).
        momentum (float, optional): :math:`\mu \in [0, 1)` (default: 0.95).
        weight_decay (float, optional): :math:`\lambda \ge 0`, decoupled (default: 0).
        betas (tuple[float, float], optional): AdamW's :math:`(\beta_1, \beta_2)`, each in
            [0, 1) (default: (0.9, 0.95), the release's).
        eps (float, optional): AdamW's :math:`\epsilon \ge 0` (default: 1e-10, the release's).
        nesterov (bool, optional): the Nesterov update :math:`u_t` (default: True).
        ns_steps (int, optional): Newton-Schulz iterations, >= 1 (default: 5).
        ns_eps (float, optional): :math:`\epsilon_{ns} > 0` in the normalisation (default:
            1e-7).
        ns_dtype (torch.dtype, optional): dtype of the iteration; None: the parameter's
            dtype, at least float32 (default: None).
        foreach (bool, optional): multi-tensor kernels for the elementwise parts, and one
            batched iteration per group of same-shaped matrices, if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view
    (a complex ``(n,)`` vector is the real ``(n, 2)`` matrix, so it takes the Muon step under
    ``use_muon=None``). Out-of-range arguments raise ``ValueError`` naming the argument.

    Paper: K. Jordan, Y. Jin, V. Boza, J. You, F. Cesista, L. Newhouse, J. Bernstein, "Muon:
    An optimizer for hidden layers in neural networks", 2024,
    https://kellerjordan.github.io/posts/muon/ (code: https://github.com/KellerJordan/Muon).

    Example:
        >>> import torch
        >>> from trainlab.optim import Muon
        >>> model = torch.nn.Linear(4, 3)
        >>> opt = Muon(model.parameters(), lr=0.02)  # weight: Muon, bias: AdamW
        >>> before = model.weight.detach().clone()
        >>> model(torch.randn(8, 4)).square().sum().backward()
        >>> opt.step()
        >>> s = torch.linalg.svdvals((before - model.weight) / 0.02)
        >>> bool(((s > 0.6) & (s < 1.25)).all())  # an (almost) orthogonal step
        True
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 0.02,
        momentum: float = 0.95,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-10,
        *,
        nesterov: bool = True,
        ns_steps: int = 5,
        ns_eps: float = 1e-7,
        ns_dtype: torch.dtype | None = None,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_betas("Muon", betas)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Muon: momentum must be in [0, 1), got {momentum}")
        check_nonnegative("Muon", weight_decay=weight_decay, eps=eps)
        check_positive("Muon", ns_eps=ns_eps)
        if not (isinstance(ns_steps, int) and ns_steps >= 1):
            raise ValueError(f"Muon: ns_steps must be an int >= 1, got {ns_steps!r}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            betas=tuple(betas),
            eps=eps,
            nesterov=nesterov,
            ns_steps=ns_steps,
            ns_eps=ns_eps,
            ns_dtype=ns_dtype,
            use_muon=None,
        )
        super().__init__(
            params,
            defaults,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
            fused=fused,
        )

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["use_muon"] not in (True, False, None):
            raise ValueError(
                f"Muon: use_muon must be True, False or None, got {group['use_muon']!r}"
            )
        if group["use_muon"]:
            for p in group["params"]:
                if _matrix_ndim(p) < 2:
                    raise ValueError(
                        f"Muon: a use_muon=True group holds a parameter of shape {tuple(p.shape)}; "
                        "Muon updates matrices (ndim >= 2), give the others use_muon=False"
                    )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("use_muon", None)
            group.setdefault("ns_dtype", None)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            muon, adam = self._gather(group)
            if muon[0]:
                (_foreach_muon if uses_foreach(group) else _single_muon)(*muon, group)
            if adam[0]:
                (_foreach_adamw if uses_foreach(group) else _single_adamw)(*adam, group)
        return loss

    def _gather(self, group: dict) -> tuple[tuple[list, ...], tuple[list, ...]]:
        """``(params, grads, momentum_buffers)`` of the group's Muon parameters and
        ``(params, grads, exp_avgs, exp_avg_sqs, steps)`` of its AdamW parameters, those with a
        gradient, as real views (gradients negated under maximize); state made on first use."""
        muon: tuple[list, ...] = ([], [], [])
        adam: tuple[list, ...] = ([], [], [], [], [])
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Muon does not support sparse gradients")
            grad = -p.grad if group["maximize"] else p.grad
            state = self.state[p]
            if torch.is_complex(p):
                p, grad = torch.view_as_real(p), torch.view_as_real(grad)
            use_muon = group["use_muon"]
            if use_muon is None:
                use_muon = p.ndim >= 2
            if use_muon:
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                for values, t in zip(muon, (p, grad, _real(state["momentum_buffer"])), strict=True):
                    values.append(t)
            else:
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = _real(state["exp_avg"]), _real(state["exp_avg_sq"])
                tensors = (p, grad, m, v, state["step"])
                for values, t in zip(adam, tensors, strict=True):
                    values.append(t)
        return muon, adam


def _real(t: Tensor) -> Tensor:
    return torch.view_as_real(t) if torch.is_complex(t) else t


def _matrix_ndim(p: Tensor) -> int:
    return p.ndim + 1 if torch.is_complex(p) else p.ndim


# -- the Newton-Schulz orthogonalisation --


def newton_schulz(
    g: Tensor, steps: int = 5, eps: float = 1e-7, dtype: torch.dtype | None = None
) -> Tensor:
    r"""The quintic Newton-Schulz approximation of :math:`U V^\top` for each matrix
    ``g[..., :, :]`` (``G = U \Sigma V^\top``), computed in ``dtype`` (default: ``g``'s,
    at least float32) and returned in it; see :class:`Muon` for the iteration
    (Jordan et al., 2024)."""
    if g.ndim < 2:
        raise ValueError(f"newton_schulz: needs matrices (ndim >= 2), got shape {tuple(g.shape)}")
    a, b, c = NS_COEFFICIENTS
    dtype = dtype or torch.promote_types(g.dtype, torch.float32)
    x = g.to(dtype)
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if tall else x


def _as_matrix(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1) if t.ndim > 2 else t


def _scale(shape: torch.Size) -> float:
    rows, cols = shape[0], math.prod(shape[1:])
    return math.sqrt(max(1.0, rows / cols))


def _nesterov_or_momentum(g: Tensor, m: Tensor, group: dict) -> Tensor:
    return g.lerp(m, group["momentum"]) if group["nesterov"] else m


def _single_muon(params, grads, ms, group) -> None:
    lr, wd, mu = lr_of(group), group["weight_decay"], group["momentum"]
    for p, g, m in zip(params, grads, ms, strict=True):
        m.lerp_(g, 1 - mu)
        u = _nesterov_or_momentum(g, m, group)
        o = newton_schulz(_as_matrix(u), group["ns_steps"], group["ns_eps"], group["ns_dtype"])
        if wd != 0:
            p.mul_(1 - lr * wd)
        p.add_(o.view(p.shape).to(p.dtype), alpha=-lr * _scale(p.shape))


def _foreach_muon(params, grads, ms, group) -> None:
    lr, wd, mu = lr_of(group), group["weight_decay"], group["momentum"]
    torch._foreach_lerp_(ms, grads, 1 - mu)
    us = torch._foreach_lerp(grads, ms, mu) if group["nesterov"] else ms
    # one batched iteration per (matrix shape, dtype): a transformer has few distinct shapes
    batches: dict[tuple, list[int]] = {}
    for i, u in enumerate(us):
        batches.setdefault((_as_matrix(u).shape, u.dtype, u.device), []).append(i)
    updates: list[Tensor] = [None] * len(us)  # type: ignore[list-item]
    for index in batches.values():
        stacked = torch.stack([_as_matrix(us[i]) for i in index])
        out = newton_schulz(stacked, group["ns_steps"], group["ns_eps"], group["ns_dtype"])
        for k, i in enumerate(index):
            p = params[i]
            updates[i] = out[k].view(p.shape).to(p.dtype).mul_(-lr * _scale(p.shape))
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    torch._foreach_add_(params, updates)


# -- the auxiliary AdamW --


def _single_adamw(params, grads, ms, vs, steps, group) -> None:
    lr, wd, (b1, b2), eps = lr_of(group), group["weight_decay"], group["betas"], group["eps"]
    for p, g, m, v, t in zip(params, grads, ms, vs, steps, strict=True):
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v / (1 - b2**t)).sqrt_().add_(eps)
        if wd != 0:
            p.mul_(1 - lr * wd)
        p.addcdiv_(m, denom, value=-lr / (1 - b1**t))


def _foreach_adamw(params, grads, ms, vs, steps, group) -> None:
    lr, wd, (b1, b2), eps = lr_of(group), group["weight_decay"], group["betas"], group["eps"]
    torch._foreach_lerp_(ms, grads, 1 - b1)
    ema_square_(vs, grads, b2)
    denom = corrected_sqrt(vs, b2, steps, eps)
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    torch._foreach_addcdiv_(params, ms, denom, [-lr / (1 - b1**t) for t in steps])


# -- splitting a model's parameters --


def muon_param_groups(
    model: nn.Module,
    *,
    lr: float = 0.02,
    adam_lr: float = 3e-4,
    weight_decay: float = 0.0,
    adam_weight_decay: float = 0.0,
    head: nn.Module | None = None,
) -> list[dict]:
    """Three groups for :class:`Muon`, in this order: the hidden matrices (``use_muon=True``,
    ``lr``, ``weight_decay``), the embeddings and the output head (``use_muon=False``,
    ``adam_lr``, ``adam_weight_decay``), and the parameters with ``ndim < 2`` (biases, norm
    gains: ``use_muon=False``, ``adam_lr``, no weight decay): the split the authors advise
    (Jordan et al., 2024), Muon for hidden layers only.

    The rule: a parameter of an ``nn.Embedding`` module (any ``nn.Embedding`` subclass too)
    or of the output head is an embedding/head parameter; the head is ``head`` if given,
    else the **last** ``nn.Linear`` in ``model.modules()`` order (registration order: put the
    head last, as usual). Every other parameter with ``ndim >= 2`` (hidden linear layers,
    convolution kernels) is a hidden matrix. A parameter shared by several modules (tied
    embeddings) is placed once, by its first role in the order embedding/head > ndim < 2 >
    hidden. Parameters with ``requires_grad=False`` are left out; a group may be empty.

    >>> from torch import nn
    >>> model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 10))
    >>> [[tuple(p.shape) for p in g["params"]] for g in muon_param_groups(model)]
    [[(8, 8)], [(10, 8), (10, 8)], [(8,), (10,)]]
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    head = head if head is not None else (linears[-1] if linears else None)
    special: dict[int, Tensor] = {}
    for module in model.modules():
        if isinstance(module, nn.Embedding) or module is head:
            for p in module.parameters():
                if p.ndim >= 2:
                    special[id(p)] = p
    hidden, aux, vectors = [], list(special.values()), []
    for p in model.parameters():
        if not p.requires_grad or id(p) in special:
            continue
        (hidden if _matrix_ndim(p) >= 2 else vectors).append(p)
    aux = [p for p in aux if p.requires_grad]
    adam: dict[str, Any] = dict(use_muon=False, lr=adam_lr)
    return [
        dict(params=hidden, use_muon=True, lr=lr, weight_decay=weight_decay),
        dict(params=aux, weight_decay=adam_weight_decay, **adam),
        dict(params=vectors, weight_decay=0.0, **adam),
    ]
