"""LAMB: Adam updates rescaled per tensor by a trust ratio (You et al., 2019)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from trainlab.optim._common import (
    ElementwiseOptimizer,
    Params,
    check_betas,
    check_nonnegative,
    corrected_sqrt,
    ema_square_,
    lr_of,
)


class LAMB(ElementwiseOptimizer):
    r"""LAMB (Layer-wise Adaptive Moments for Batch training): AdamW's update direction,
    rescaled per tensor so that its norm is ``lr`` times the tensor's norm.

    .. math::
        \begin{aligned}
        &\textbf{input}: \theta_0, \eta \text{ (lr)}, \beta_1, \beta_2, \epsilon,
            \lambda \text{ (weight\_decay)} \qquad
         \textbf{init}: m_0 \leftarrow 0,\ v_0 \leftarrow 0 \\
        &\textbf{for}\ t = 1, 2, \ldots\ \textbf{and each tensor}\ \theta: \\
        &\quad g_t \leftarrow \nabla f_t(\theta_{t-1})
            \quad (-\nabla f_t \text{ if maximize}) \\
        &\quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
               v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        &\quad r_t \leftarrow \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)}
            + \epsilon}, \qquad u_t \leftarrow r_t + \lambda\theta_{t-1} \\
        &\quad \theta_t \leftarrow \theta_{t-1} - \eta\,
            \frac{\|\theta_{t-1}\|}{\|u_t\|}\, u_t
            \quad \text{(ratio 1 if either norm is 0)}
        \end{aligned}

    Choices where the paper is open:

    - A "layer" is one parameter tensor; the scaling function :math:`\phi` is the identity
      without clipping (the paper allows any :math:`\phi` clipped to
      :math:`[\gamma_l, \gamma_u]`), as common implementations do. If
      :math:`\|\theta\| = 0` (a zero-initialised bias) or :math:`\|u_t\| = 0` the ratio is 1:
      a plain AdamW-like step.
    - Bias correction on, as in the paper's final Algorithm 2; ``bias_correction=False``
      drops it, as some releases do.
    - The trust ratio applies to every tensor, biases and norm gains included.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`\eta \ge 0` (default: 1e-3).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon \ge 0` (default: 1e-6).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        bias_correction (bool, optional): Adam's bias correction (default: True).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view
    (whose norm is the complex norm). The ratio stays a tensor: no host synchronisation.
    Out-of-range arguments raise ``ValueError`` naming the argument.

    Paper: Y. You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", ICLR 2020, https://arxiv.org/abs/1904.00962 (Algorithm 2).

    Example:
        >>> import torch
        >>> from trainlab.optim import LAMB
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = LAMB(model.parameters(), lr=1e-2)
        >>> before = model.weight.detach().clone()
        >>> model(torch.ones(4, 3)).sum().backward()
        >>> opt.step()
        >>> ratio = (model.weight - before).norm() / before.norm()
        >>> round(ratio.item(), 6)  # the step is lr times the tensor's norm
        0.01
    """

    buffers = ("exp_avg", "exp_avg_sq")
    counts_steps = True

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_betas("LAMB", betas)
        check_nonnegative("LAMB", eps=eps, weight_decay=weight_decay)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
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
        _foreach_lamb(*tensors)

    def single_update(self, *tensors: Any) -> None:
        _single_lamb(*tensors)


def _trust_ratio(w_norm: Tensor, u_norm: Tensor) -> Tensor:
    """``||w|| / ||u||``, or 1 where either is zero (element-wise over stacked norms)."""
    return torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))


def _single_lamb(params, grads, ms, vs, steps, group) -> None:
    lr, (b1, b2), eps, wd = lr_of(group), group["betas"], group["eps"], group["weight_decay"]
    for p, g, m, v, t in zip(params, grads, ms, vs, steps, strict=True):
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        if group["bias_correction"]:
            denom = (v.sqrt() / (1 - b2**t) ** 0.5).add_(eps).mul_(1 - b1**t)
        else:
            denom = v.sqrt().add_(eps)
        update = m / denom
        if wd != 0:
            update.add_(p, alpha=wd)
        ratio = _trust_ratio(torch.linalg.vector_norm(p), torch.linalg.vector_norm(update))
        p.add_(update.mul_(ratio * -lr))


def _foreach_lamb(params, grads, ms, vs, steps, group) -> None:
    lr, (b1, b2), eps, wd = lr_of(group), group["betas"], group["eps"], group["weight_decay"]
    torch._foreach_lerp_(ms, grads, 1 - b1)
    ema_square_(vs, grads, b2)
    if group["bias_correction"]:
        denom = corrected_sqrt(vs, b2, steps, eps)
        torch._foreach_mul_(denom, [1 - b1**t for t in steps])  # divides m by 1 - b1^t
    else:
        denom = torch._foreach_sqrt(vs)
        torch._foreach_add_(denom, eps)
    update = torch._foreach_div(ms, denom)
    if wd != 0:
        torch._foreach_add_(update, params, alpha=wd)
    w_norm = torch.stack(torch._foreach_norm(params))
    u_norm = torch.stack(torch._foreach_norm(update))
    ratio = _trust_ratio(w_norm, u_norm)
    torch._foreach_mul_(update, list(ratio.mul_(-lr).unbind(0)))
    torch._foreach_add_(params, update)
