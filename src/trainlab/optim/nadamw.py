"""NAdamW: Adam with Nesterov momentum and decoupled weight decay (AlgoPerf's baseline)."""

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
    corrected_sqrt,
    ema_square_,
    lr_of,
)


class NAdamW(ElementwiseOptimizer):
    r"""Adam with a Nesterov look-ahead of the momentum and decoupled weight decay.

    .. math::
        \begin{aligned}
        &\textbf{input}: \theta_0, \gamma \text{ (lr)}, \beta_1, \beta_2, \epsilon,
            \lambda \text{ (weight\_decay)} \qquad
         \textbf{init}: m_0 \leftarrow 0,\ v_0 \leftarrow 0 \\
        &\textbf{for}\ t = 1, 2, \ldots: \\
        &\quad g_t \leftarrow \nabla f_t(\theta_{t-1})
            \quad (-\nabla f_t \text{ if maximize}) \\
        &\quad \theta_{t-1} \leftarrow \theta_{t-1}(1 - \gamma\lambda) \\
        &\quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
               v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        &\quad n_t \leftarrow \beta_1 m_t + (1 - \beta_1) g_t
            \quad \text{(Nesterov look-ahead)} \\
        &\quad \theta_t \leftarrow \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{n_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}
        \end{aligned}

    This is the variant of the MLCommons AlgoPerf baseline, not ``torch.optim.NAdam`` (which
    adds a momentum-decay schedule :math:`\mu_t`). Where Dozat leaves the bias correction of
    the look-ahead open, it is :math:`1 - \beta_1^t` as in AlgoPerf (Dozat's text has
    :math:`1 - \beta_1^{t+1}` for the look-ahead term). The decay is torch-``AdamW``-style,
    :math:`\gamma\lambda` per step, applied before the step.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`\gamma \ge 0` (default: 1e-3).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon \ge 0` (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    ``amsgrad``, sparse gradients (``RuntimeError``). Complex parameters are updated as their
    real view. Out-of-range arguments raise ``ValueError`` naming the argument.

    Papers: T. Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop 2016,
    https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ; I. Loshchilov and F. Hutter,
    "Decoupled Weight Decay Regularization", ICLR 2019, https://arxiv.org/abs/1711.05101;
    G. E. Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023,
    https://arxiv.org/abs/2306.07179 (the baseline).

    Example:
        >>> import torch
        >>> from trainlab.optim import NAdamW
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = NAdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        >>> before = model.weight.detach().clone()
        >>> model(torch.ones(4, 3)).square().mean().backward()
        >>> opt.step()
        >>> bool((model.weight - before).abs().max() < 2e-3)  # Adam steps are about lr
        True
    """

    buffers = ("exp_avg", "exp_avg_sq")
    counts_steps = True

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_betas("NAdamW", betas)
        check_nonnegative("NAdamW", eps=eps, weight_decay=weight_decay)
        super().__init__(
            params,
            dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay),
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
            fused=fused,
        )

    def foreach_update(self, *tensors: Any) -> None:
        _foreach_nadamw(*tensors)

    def single_update(self, *tensors: Any) -> None:
        _single_nadamw(*tensors)


def _single_nadamw(params, grads, ms, vs, steps, group) -> None:
    lr, (b1, b2), eps, wd = lr_of(group), group["betas"], group["eps"], group["weight_decay"]
    for p, g, m, v, t in zip(params, grads, ms, vs, steps, strict=True):
        if wd != 0:
            p.mul_(1 - lr * wd)
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        nesterov = g.lerp(m, b1)  # b1 * m + (1 - b1) * g
        denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
        p.addcdiv_(nesterov, denom, value=-lr / (1 - b1**t))


def _foreach_nadamw(params, grads, ms, vs, steps, group) -> None:
    lr, (b1, b2), eps, wd = lr_of(group), group["betas"], group["eps"], group["weight_decay"]
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    torch._foreach_lerp_(ms, grads, 1 - b1)
    ema_square_(vs, grads, b2)
    nesterov = torch._foreach_mul(ms, b1)
    torch._foreach_add_(nesterov, grads, alpha=1 - b1)
    denom = corrected_sqrt(vs, b2, steps, eps)
    torch._foreach_addcdiv_(params, nesterov, denom, [-lr / (1 - b1**t) for t in steps])
