"""Lion: the sign of an interpolated momentum, with decoupled weight decay (Chen et al., 2023)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from trainlab.optim._common import (
    ElementwiseOptimizer,
    Params,
    check_betas,
    check_nonnegative,
    lr_of,
)


class Lion(ElementwiseOptimizer):
    r"""Lion (EvoLved Sign Momentum): every coordinate moves by exactly ``lr`` in the
    direction of the sign of an interpolation between momentum and gradient.

    .. math::
        \begin{aligned}
        &\textbf{input}: \theta_0, \eta \text{ (lr)}, \beta_1, \beta_2,
            \lambda \text{ (weight\_decay)} \qquad \textbf{init}: m_0 \leftarrow 0 \\
        &\textbf{for}\ t = 1, 2, \ldots: \\
        &\quad g_t \leftarrow \nabla f_t(\theta_{t-1})
            \quad (-\nabla f_t \text{ if maximize}) \\
        &\quad c_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t \\
        &\quad \theta_t \leftarrow \theta_{t-1}(1 - \eta\lambda) - \eta\,\mathrm{sign}(c_t) \\
        &\quad m_t \leftarrow \beta_2 m_{t-1} + (1 - \beta_2) g_t
        \end{aligned}

    :math:`\mathrm{sign}(0) = 0`: a coordinate whose :math:`c_t` is exactly zero does not
    move (apart from the decay). The paper advises an lr 3-10x smaller than AdamW's and a
    weight decay 3-10x larger, keeping :math:`\eta\lambda` comparable.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`\eta \ge 0` (default: 1e-4).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.99), the paper's).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view
    (the sign is taken per real and imaginary part). Out-of-range arguments raise
    ``ValueError`` naming the argument.

    Paper: X. Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023,
    https://arxiv.org/abs/2302.06675 (Algorithm 2).

    Example:
        >>> import torch
        >>> from trainlab.optim import Lion
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = Lion(model.parameters(), lr=1e-3)
        >>> before = model.weight.detach().clone()
        >>> model(torch.ones(4, 3)).sum().backward()
        >>> opt.step()
        >>> torch.allclose((model.weight - before).abs(), torch.full((1, 3), 1e-3))
        True
    """

    buffers = ("exp_avg",)

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_betas("Lion", betas)
        check_nonnegative("Lion", weight_decay=weight_decay)
        super().__init__(
            params,
            dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay),
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
            fused=fused,
        )

    def foreach_update(self, *tensors: Any) -> None:
        _foreach_lion(*tensors)

    def single_update(self, *tensors: Any) -> None:
        _single_lion(*tensors)


def _single_lion(params, grads, ms, group) -> None:
    lr, (b1, b2), wd = lr_of(group), group["betas"], group["weight_decay"]
    for p, g, m in zip(params, grads, ms, strict=True):
        update = m.lerp(g, 1 - b1).sign_()
        if wd != 0:
            p.mul_(1 - lr * wd)
        p.add_(update, alpha=-lr)
        m.lerp_(g, 1 - b2)


def _foreach_lion(params, grads, ms, group) -> None:
    lr, (b1, b2), wd = lr_of(group), group["betas"], group["weight_decay"]
    update = torch._foreach_lerp(ms, grads, 1 - b1)  # b1 * m + (1 - b1) * g
    torch._foreach_sign_(update)
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    torch._foreach_add_(params, update, alpha=-lr)
    torch._foreach_lerp_(ms, grads, 1 - b2)
