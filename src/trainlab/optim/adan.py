"""Adan: adaptive Nesterov momentum through gradient differences (Xie et al., 2022)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from trainlab.optim._common import (
    ElementwiseOptimizer,
    Params,
    check_betas,
    check_nonnegative,
    copy_of_grad,
    corrected_sqrt,
    ema_square_,
    lr_of,
)


class Adan(ElementwiseOptimizer):
    r"""Adan: Adam-like steps from a momentum of the gradients and a momentum of their
    differences, which together estimate a Nesterov look-ahead without evaluating the
    gradient elsewhere.

    .. math::
        \begin{aligned}
        &\textbf{input}: \theta_0, \eta \text{ (lr)}, \beta_1, \beta_2, \beta_3, \epsilon,
            \lambda \text{ (weight\_decay)} \qquad
         \textbf{init}: m_0, v_0, n_0 \leftarrow 0,\ g_0 \leftarrow g_1 \\
        &\textbf{for}\ k = 1, 2, \ldots: \\
        &\quad g_k \leftarrow \nabla f_k(\theta_{k-1})
            \quad (-\nabla f_k \text{ if maximize}), \qquad
            d_k \leftarrow g_k - g_{k-1} \\
        &\quad m_k \leftarrow \beta_1 m_{k-1} + (1 - \beta_1) g_k, \quad
               v_k \leftarrow \beta_2 v_{k-1} + (1 - \beta_2) d_k \\
        &\quad n_k \leftarrow \beta_3 n_{k-1} + (1 - \beta_3)(g_k + \beta_2 d_k)^2 \\
        &\quad u_k \leftarrow \frac{m_k}{1 - \beta_1^k} + \beta_2 \frac{v_k}{1 - \beta_2^k},
            \qquad \eta_k \leftarrow \frac{\eta}{\sqrt{n_k / (1 - \beta_3^k)} + \epsilon} \\
        &\quad \textbf{if}\ \text{proximal}:\ \theta_k \leftarrow
            (\theta_{k-1} - \eta_k u_k) / (1 + \eta\lambda) \\
        &\quad \textbf{else}:\ \theta_k \leftarrow \theta_{k-1}(1 - \eta\lambda) - \eta_k u_k
        \end{aligned}

    Choices where the paper is open:

    - ``betas`` are decay rates, as in the authors' release: the paper's
      :math:`(0.02, 0.08, 0.01)` are :math:`1 - \beta`.
    - Moments start at zero and are bias-corrected (release); the paper's Algorithm 1 starts
      them from the first gradient without correction. The first difference is zero.
    - Weight decay is the paper's proximal step by default; ``proximal=False`` is the
      release's ``no_prox`` (decoupled). They agree to first order in :math:`\eta\lambda`.
    - No restart condition and no gradient clipping inside (the release's
      ``max_grad_norm``): clip outside.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`\eta \ge 0` (default: 1e-3).
        betas (tuple[float, float, float], optional): :math:`(\beta_1, \beta_2, \beta_3)`,
            each in [0, 1) (default: (0.98, 0.92, 0.99)).
        eps (float, optional): :math:`\epsilon \ge 0` (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        proximal (bool, optional): proximal (True) or decoupled (False) decay (default: True).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view.
    Four buffers per parameter (m, v, n, previous gradient). Out-of-range arguments raise
    ``ValueError`` naming the argument.

    Paper: X. Xie, P. Zhou, H. Li, Z. Lin and S. Yan, "Adan: Adaptive Nesterov Momentum
    Algorithm for Faster Optimizing Deep Models", 2022 (TPAMI 2024),
    https://arxiv.org/abs/2208.06677 (Algorithm 1).

    Example:
        >>> import torch
        >>> from trainlab.optim import Adan
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = Adan(model.parameters(), lr=1e-2, weight_decay=0.02)
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     model(torch.ones(4, 3)).square().mean().backward()
        ...     opt.step()
        >>> opt.state[model.weight]["step"]
        3
    """

    buffers = ("exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad")
    buffer_init = {"prev_grad": copy_of_grad}  # g_0 := g_1: the first difference is zero
    counts_steps = True

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float, float] = (0.98, 0.92, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        proximal: bool = True,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_betas("Adan", betas, count=3)
        check_nonnegative("Adan", eps=eps, weight_decay=weight_decay)
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, proximal=proximal
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

    def foreach_update(self, *tensors: Any) -> None:
        _foreach_adan(*tensors)

    def single_update(self, *tensors: Any) -> None:
        _single_adan(*tensors)


def _single_adan(params, grads, ms, vs, ns, prevs, steps, group) -> None:
    lr, (b1, b2, b3), eps, wd = lr_of(group), group["betas"], group["eps"], group["weight_decay"]
    for p, g, m, v, n, prev, k in zip(params, grads, ms, vs, ns, prevs, steps, strict=True):
        diff = g - prev
        m.lerp_(g, 1 - b1)
        v.lerp_(diff, 1 - b2)
        look = diff.mul_(b2).add_(g)  # g_k + b2 * d_k
        n.mul_(b3).addcmul_(look, look, value=1 - b3)
        denom = (n.sqrt() / math.sqrt(1 - b3**k)).add_(eps)
        if wd != 0 and not group["proximal"]:
            p.mul_(1 - lr * wd)
        p.addcdiv_(m, denom, value=-lr / (1 - b1**k))
        p.addcdiv_(v, denom, value=-lr * b2 / (1 - b2**k))
        if wd != 0 and group["proximal"]:
            p.div_(1 + lr * wd)
        prev.copy_(g)


def _foreach_adan(params, grads, ms, vs, ns, prevs, steps, group) -> None:
    lr, (b1, b2, b3), eps, wd = lr_of(group), group["betas"], group["eps"], group["weight_decay"]
    # prevs becomes a scratch buffer: first -d = g_prev - g, then g + b2 * d, then g again
    torch._foreach_sub_(prevs, grads)  # -d_k
    torch._foreach_lerp_(ms, grads, 1 - b1)
    torch._foreach_mul_(vs, b2)
    torch._foreach_add_(vs, prevs, alpha=-(1 - b2))
    torch._foreach_mul_(prevs, -b2)
    torch._foreach_add_(prevs, grads)  # g_k + b2 * d_k
    ema_square_(ns, prevs, b3)
    denom = corrected_sqrt(ns, b3, steps, eps)
    if wd != 0 and not group["proximal"]:
        torch._foreach_mul_(params, 1 - lr * wd)
    torch._foreach_addcdiv_(params, ms, denom, [-lr / (1 - b1**k) for k in steps])
    torch._foreach_addcdiv_(params, vs, denom, [-lr * b2 / (1 - b2**k) for k in steps])
    if wd != 0 and group["proximal"]:
        torch._foreach_div_(params, 1 + lr * wd)
    torch._foreach_copy_(prevs, grads)
