"""DoG: parameter-free SGD whose step size is distance travelled over root summed squared
gradients (Ivgi, Hinder & Carmon, 2023)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from trainlab.optim._common import (
    Params,
    TrainlabOptimizer,
    check_nonnegative,
    check_positive,
    copy_of_param,
    evaluate_closure,
    groups_with_grads,
    lr_of,
    publish,
    reduction_dtype,
    run_update,
    total,
    total_norm,
    uses_foreach,
)


class DoG(TrainlabOptimizer):
    r"""DoG (Distance over Gradients): SGD with the step size
    :math:`\bar r_t / \sqrt{G_t}`, the largest distance from the start over the root of the
    summed squared gradient norms; no learning rate to tune.

    With :math:`x` the concatenation of all parameters (all groups):

    .. math::
        \begin{aligned}
        &\textbf{input}: x_0, c \text{ (lr)}, r_\epsilon \text{ (reps\_rel)}, \epsilon,
            \lambda \text{ (weight\_decay)} \\
        &\textbf{init}: \bar r_{-1} \leftarrow r_\epsilon (1 + \|x_0\|),\
            G_{-1} \leftarrow \epsilon \\
        &\textbf{for}\ t = 0, 1, \ldots: \\
        &\quad g_t \leftarrow \nabla f_t(x_t) + \lambda x_t
            \quad (-\nabla f_t + \lambda x_t \text{ if maximize}) \\
        &\quad \bar r_t \leftarrow \max(\bar r_{t-1}, \|x_t - x_0\|), \qquad
               G_t \leftarrow G_{t-1} + \|g_t\|^2 \\
        &\quad x_{t+1} \leftarrow x_t - c\, \frac{\bar r_t}{\sqrt{G_t}}\, g_t
        \end{aligned}

    ``lr`` is the paper's constant :math:`c` (1: leave it unless a schedule multiplies it).
    The paper recommends ``reps_rel = 1e-6`` (``1e-4`` with batch norm) and iterate
    averaging, which is not part of this optimizer.

    Choices where the paper is open:

    - One global step size over all groups, as in the paper's analysis (the authors' release
      has one per group; its L-DoG one per tensor). Groups differ only in their ``lr``
      multiplier and ``weight_decay``; ``reps_rel`` and ``eps`` are read from the first group.
    - Weight decay is coupled (L2) and counts in :math:`G_t`, as in the release.
    - :math:`x_0` of a parameter is its value at its first update.

    :math:`\bar r` and :math:`G` are 0-d tensors kept in every group (``"rbar"``, ``"G"``),
    so no step synchronises with the host and ``state_dict()`` carries them; sums are taken
    in the widest parameter dtype (at least float32).

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`c \ge 0` (default: 1).
        reps_rel (float, optional): :math:`r_\epsilon > 0` (default: 1e-6).
        eps (float, optional): :math:`\epsilon > 0` (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view.
    Out-of-range arguments raise ``ValueError`` naming the argument.

    Paper: M. Ivgi, O. Hinder and Y. Carmon, "DoG is SGD's Best Friend: A Parameter-Free
    Dynamic Step Size Schedule", ICML 2023, https://arxiv.org/abs/2302.12022.

    Example:
        >>> import torch
        >>> from trainlab.optim import DoG
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = DoG(model.parameters())
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     model(torch.ones(4, 3)).square().mean().backward()
        ...     opt.step()
        >>> bool(opt.param_groups[0]["rbar"] > 1e-6)  # the distance estimate grew
        True
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1.0,
        reps_rel: float = 1e-6,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_positive("DoG", reps_rel=reps_rel, eps=eps)
        check_nonnegative("DoG", weight_decay=weight_decay)
        super().__init__(
            params,
            dict(lr=lr, reps_rel=reps_rel, eps=eps, weight_decay=weight_decay),
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
            fused=fused,
        )

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = evaluate_closure(closure)
        # (group, params, grads, x0s) per group with gradients; the decay is part of the gradient
        work = groups_with_grads(self, ("x0",), init={"x0": copy_of_param})
        if not work:
            return loss
        first = self.param_groups[0]
        start = "rbar" not in first  # the first step also needs ||x0||
        dtype = reduction_dtype(p for w in work for p in w[1])
        sums = [
            s
            for group, params, grads, x0s in work
            for s in run_update(group, _foreach_sums, _single_sums, params, grads, x0s, dtype=dtype)
        ]
        distance_sq, grad_sq = (total(list(column)) for column in zip(*sums, strict=True))
        if start:  # first step: r_eps and G = eps
            x0s = [x for w in work for x in w[3]]
            rbar = first["reps_rel"] * (1 + total_norm(x0s, dtype, uses_foreach(first)))
            big_g = torch.full_like(rbar, first["eps"])
        else:
            rbar, big_g = first["rbar"], first["G"]
        rbar = torch.maximum(rbar, distance_sq.sqrt())
        big_g = big_g + grad_sq
        publish(self, rbar=rbar, G=big_g)
        eta = rbar / big_g.sqrt()
        for group, params, grads, _ in work:
            run_update(group, _foreach_step, _single_step, params, grads, scale=-lr_of(group) * eta)
        return loss


def _single_sums(params, grads, x0s, group, dtype) -> tuple[Tensor, Tensor]:
    """``(||x - x0||^2, ||g||^2)`` over these tensors, in ``dtype``."""
    dist = [
        torch.linalg.vector_norm(p - x0, dtype=dtype) for p, x0 in zip(params, x0s, strict=True)
    ]
    grad = [torch.linalg.vector_norm(g, dtype=dtype) for g in grads]
    return torch.stack(dist).square().sum(), torch.stack(grad).square().sum()


def _foreach_sums(params, grads, x0s, group, dtype) -> tuple[Tensor, Tensor]:
    dist = torch._foreach_norm(torch._foreach_sub(params, x0s), 2, dtype=dtype)
    grad = torch._foreach_norm(grads, 2, dtype=dtype)
    return torch.stack(dist).square().sum(), torch.stack(grad).square().sum()


def _single_step(params, grads, group, scale) -> None:
    for p, g in zip(params, grads, strict=True):
        p.add_(g * scale)


def _foreach_step(params, grads, group, scale) -> None:
    torch._foreach_add_(params, torch._foreach_mul(grads, scale))
