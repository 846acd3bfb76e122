"""SGDW: SGD with momentum and decoupled weight decay (Loshchilov & Hutter, 2019)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from trainlab.optim._common import (
    ElementwiseOptimizer,
    Params,
    check_nonnegative,
    group_tensors,
    lr_of,
)


class SGDW(ElementwiseOptimizer):
    r"""SGD with heavy-ball or Nesterov momentum and decoupled weight decay: Algorithm 1 of
    the paper, whose schedule multiplier scales both the step and the decay.

    .. math::
        \begin{aligned}
        &\textbf{input}: \theta_0 \text{ (params)}, \alpha \text{ (initial lr)},
            \mu \text{ (momentum)}, \lambda \text{ (weight\_decay)}, \text{nesterov} \\
        &\textbf{init}: m_0 \leftarrow 0 \\
        &\textbf{for}\ t = 1, 2, \ldots: \\
        &\quad g_t \leftarrow \nabla f_t(\theta_{t-1})
            \quad (-\nabla f_t \text{ if maximize}) \\
        &\quad \eta_t \leftarrow \text{lr}_t / \alpha
            \quad \text{(schedule multiplier; } \eta_t \alpha = \text{lr}_t) \\
        &\quad m_t \leftarrow \mu m_{t-1} + \eta_t \alpha g_t
            \quad \text{(the buffer holds the scaled step)} \\
        &\quad \textbf{if}\ \text{nesterov}:\
            \theta_t \leftarrow \theta_{t-1} - (\mu m_t + \eta_t \alpha g_t)
            - \eta_t \lambda \theta_{t-1} \\
        &\quad \textbf{else}:\ \theta_t \leftarrow \theta_{t-1} - m_t
            - \eta_t \lambda \theta_{t-1}
        \end{aligned}

    **How** :math:`\eta_t` **is obtained.** In a torch loop the schedule lives in the group's
    ``lr`` (a scheduler, or code, rewrites it), so :math:`\eta_t\alpha` is the current
    ``group["lr"]`` and :math:`\alpha` is ``group["initial_lr"]``: the key torch's lr
    schedulers use for the base lr. This class sets it to the group's lr when the group is
    added (a scheduler built later keeps it, as it only sets the key when absent); change it
    by hand if you change the base lr. A group whose ``initial_lr`` is 0 does not decay.

    Because the buffer holds :math:`\text{lr}_t g_t` rather than :math:`g_t`, momentum
    accumulated before an lr drop keeps its old scale (unlike ``torch.optim.SGD``, whose
    buffer holds gradients and is multiplied by the current lr); without a schedule the two
    forms agree. ``weight_decay`` is the paper's *normalized-by-schedule* :math:`\lambda`: the
    per-step decay is :math:`\eta_t\lambda`, independent of :math:`\alpha` (torch's
    ``AdamW``-style ``lr * weight_decay`` corresponds to :math:`\lambda = \alpha \cdot` that
    ``weight_decay``). The Nesterov form is Sutskever et al.'s, written with the same buffer.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): learning rate :math:`\alpha` (default: 0.1).
        momentum (float, optional): :math:`\mu \in [0, 1)` (default: 0.9); 0 keeps no buffer.
        nesterov (bool, optional): Nesterov momentum (default: False).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True);
    sparse gradients (``RuntimeError``); ``dampening``. Complex parameters are updated as
    their real view. Raises ``ValueError`` for a negative lr or weight decay or a momentum
    outside ``[0, 1)``.

    Paper: I. Loshchilov and F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
    https://arxiv.org/abs/1711.05101 (Algorithm 1); momentum: B. T. Polyak (1964); Nesterov
    form: I. Sutskever et al., "On the importance of initialization and momentum in deep
    learning", ICML 2013.

    Example:
        >>> import torch
        >>> from trainlab.optim import SGDW
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = SGDW(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        >>> sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.1)
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     model(torch.ones(4, 3)).square().mean().backward()
        ...     opt.step()
        ...     sched.step()
        >>> opt.param_groups[0]["initial_lr"]
        0.1
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 0.1,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"SGDW: momentum must be in [0, 1), got {momentum}")
        check_nonnegative("SGDW", weight_decay=weight_decay)
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
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
        """torch's ``add_param_group``, plus the group's ``initial_lr`` (the paper's alpha)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        lr = group["lr"]
        group.setdefault("initial_lr", lr.clone() if isinstance(lr, Tensor) else lr)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # checkpoints written before initial_lr was kept
            group.setdefault("initial_lr", group["lr"])

    def group_tensors(self, group: dict) -> tuple[list, ...]:
        """Without momentum there is no buffer: ``None`` stands in for each."""
        if group["momentum"] != 0:
            return group_tensors(self, group, ("momentum_buffer",))
        params, grads = group_tensors(self, group, ())
        return params, grads, [None] * len(params)

    def foreach_update(self, *tensors: Any) -> None:
        _foreach_sgdw(*tensors)

    def single_update(self, *tensors: Any) -> None:
        _single_sgdw(*tensors)


def _scales(group: dict) -> tuple[float, float]:
    """``(lr_t, eta_t * lambda)``: the step's scale and the decay rate of this step."""
    lr = lr_of(group)
    initial = group["initial_lr"]
    initial = initial.item() if isinstance(initial, Tensor) else initial
    eta = lr / initial if initial != 0 else 0.0
    return lr, eta * group["weight_decay"]


def _single_sgdw(params, grads, bufs, group) -> None:
    lr, decay = _scales(group)
    mu = group["momentum"]
    for p, g, m in zip(params, grads, bufs, strict=True):
        if decay != 0:
            p.mul_(1 - decay)
        if m is None:
            p.add_(g, alpha=-lr)
            continue
        m.mul_(mu).add_(g, alpha=lr)
        if group["nesterov"]:
            p.add_(g, alpha=-lr).add_(m, alpha=-mu)
        else:
            p.sub_(m)


def _foreach_sgdw(params, grads, bufs, group) -> None:
    lr, decay = _scales(group)
    mu = group["momentum"]
    if decay != 0:
        torch._foreach_mul_(params, 1 - decay)
    if bufs[0] is None:
        torch._foreach_add_(params, grads, alpha=-lr)
        return
    torch._foreach_mul_(bufs, mu)
    torch._foreach_add_(bufs, grads, alpha=lr)
    if group["nesterov"]:
        torch._foreach_add_(params, grads, alpha=-lr)
        torch._foreach_add_(params, bufs, alpha=-mu)
    else:
        torch._foreach_sub_(params, bufs)
