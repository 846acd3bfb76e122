"""D-Adaptation's Adam: Adam whose step size grows a lower bound on the distance to the
solution (Defazio & Mishchenko, 2023)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from trainlab.optim._common import (
    DistanceAdaptiveAdam,
    Params,
    ema_square_,
    evaluate_closure,
    publish,
    run_update,
    total,
)


class DAdaptAdam(DistanceAdaptiveAdam):
    r"""D-Adaptation (Adam variant): Adam whose step size :math:`d` is a lower bound on the
    distance to the solution, grown from the history, so ``lr`` stays 1 (times a schedule).

    With :math:`x` all parameters, :math:`\text{lr}_k` the group's (scheduled) lr,
    :math:`\text{bc}_k` 1 or Adam's :math:`\sqrt{1 - \beta_2^{k+1}} / (1 - \beta_1^{k+1})`
    and :math:`b = \sqrt{\beta_2}`:

    .. math::
        \begin{aligned}
        &\textbf{input}: x_0, \beta_1, \beta_2, \epsilon, \lambda, d_0, c \text{ (d\_coef)},
            \rho \text{ (growth\_rate)} \qquad
         \textbf{init}: d_0,\ m, v, s \leftarrow 0,\ r \leftarrow 0 \\
        &\textbf{for}\ k = 0, 1, \ldots: \\
        &\quad g_k \leftarrow \nabla f(x_k) \ (+\lambda x_k \text{ if not decouple};
            \text{ negated if maximize}), \qquad \delta_k \leftarrow d_k\,\text{lr}_k\,
            \text{bc}_k \\
        &\quad r \leftarrow b\, r + (1 - b)\, \delta_k
            \langle g_k, s / (\sqrt{v} + \epsilon)\rangle
            \quad (s, v \text{ from before this step}) \\
        &\quad m \leftarrow \beta_1 m + (1 - \beta_1)\delta_k g_k, \quad
               v \leftarrow \beta_2 v + (1 - \beta_2) g_k^2, \quad
               s \leftarrow b\, s + (1 - b)\delta_k g_k \\
        &\quad \textbf{if}\ \|s\|_1 = 0: \textbf{skip}
            \text{ (no parameter changes, } d \text{ kept)} \\
        &\quad \hat d \leftarrow c\, r / ((1 - b)\|s\|_1), \quad
               d_{k+1} \leftarrow \max(d_k, \min(\hat d, \rho d_k)) \\
        &\quad x_{k+1} \leftarrow x_k (1 - \lambda\delta_k) - m / (\sqrt{v} + \epsilon)
            \quad (\text{decay only if decouple})
        \end{aligned}

    Choices where the paper is open (or the release differs between versions):

    - The form of the authors' release, version 3 (the momentum carries the step size).
    - One global :math:`d` over all groups; each group's lr weighs its own terms (the
      release requires equal lr in all groups). ``d0``, ``d_coef``, ``growth_rate`` and the
      :math:`b` of :math:`r` and :math:`s` are read from the first group.
    - Weight decay decoupled by default (the release's ``decouple=True``), no bias
      correction by default (the release's default).
    - A step without gradient information (:math:`\|s\|_1 = 0`) changes no parameter, as the
      release returns early; the moments are still updated.

    :math:`d` and :math:`r` are 0-d tensors in every group (``"d"``, ``"numerator"``): no
    host synchronisation, and ``state_dict()`` carries them; sums are taken in the widest
    parameter dtype (at least float32).

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): multiplier of the step size, >= 0 (default: 1).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon \ge 0` (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        decouple (bool, optional): decoupled (True) or L2 (False) decay (default: True).
        use_bias_correction (bool, optional): Adam's :math:`\text{bc}_k` (default: False).
        d0 (float, optional): initial estimate :math:`d_0 > 0` (default: 1e-6).
        d_coef (float, optional): :math:`c > 0`, scales the estimate (default: 1).
        growth_rate (float, optional): :math:`\rho \ge 1`, cap on the growth of :math:`d`
            per step (default: inf).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``), the release's ``fsdp_in_use``. Complex parameters
    are updated as their real view. Out-of-range arguments raise ``ValueError`` naming the
    argument.

    Paper: A. Defazio and K. Mishchenko, "Learning-Rate-Free Learning by D-Adaptation",
    ICML 2023, https://arxiv.org/abs/2301.07733 (Adam variant, appendix).

    Example:
        >>> import torch
        >>> from trainlab.optim import DAdaptAdam
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = DAdaptAdam(model.parameters(), weight_decay=0.01)
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     model(torch.ones(4, 3)).square().mean().backward()
        ...     opt.step()
        >>> opt.param_groups[0]["k"]
        3
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = math.inf,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            decouple=decouple,
            use_bias_correction=use_bias_correction,
            d0=d0,
            d_coef=d_coef,
            growth_rate=growth_rate,
            extra={},
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
        begun = self._begin(("s", "exp_avg", "exp_avg_sq"), {}, {"numerator": 0.0})
        if begun is None:
            return loss
        work, dtype, values, k = begun  # work: (group, params, grads, ss, ms, vs) per group
        d = values["d"]
        first = self.param_groups[0]
        sqrt_b2 = math.sqrt(first["betas"][1])

        dots, l1_norms, dlrs = [], [], []
        for group, *lists in work:
            dlr = self._dlr(group, d, k)
            dlrs.append(dlr)
            sums = run_update(
                group, _foreach_moments, _single_moments, *lists,
                dlr=dlr, b=sqrt_b2, dtype=dtype,
            )  # fmt: skip
            dots.extend(dot * dlr for dot, _ in sums)
            l1_norms.extend(l1 for _, l1 in sums)

        numerator = sqrt_b2 * values["numerator"] + (1 - sqrt_b2) * total(dots)
        l1 = total(l1_norms)
        informed = l1 > 0
        d_hat = first["d_coef"] * numerator / ((1 - sqrt_b2) * l1)
        grown = torch.maximum(d, torch.minimum(d_hat, d * first["growth_rate"]))
        publish(self, d=torch.where(informed, grown, d), numerator=numerator, k=k + 1)

        gate = informed.to(dtype)  # 0: no gradient information, skip the step entirely
        for (group, params, _, _, ms, vs), dlr in zip(work, dlrs, strict=True):
            decay = group["weight_decay"] * dlr * gate
            self._adam_step(group, params, ms, vs, scale=gate, eps=group["eps"], decay=decay)
        return loss


def _single_moments(params, grads, ss, ms, vs, group, dlr, b, dtype):
    """``<g, s / (sqrt(v) + eps)>`` with s and v from before this step, then update m, v and
    s; returns that product and ``||s||_1`` over these tensors."""
    b1, b2 = group["betas"]
    dots, l1s = [], []
    for g, s, m, v in zip(grads, ss, ms, vs, strict=True):
        dots.append((s / v.sqrt().add_(group["eps"]) * g).sum(dtype=dtype))
        scaled = g * dlr
        m.lerp_(scaled, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        s.mul_(b).add_(scaled, alpha=1 - b)
        l1s.append(torch.linalg.vector_norm(s, 1, dtype=dtype))
    return total(dots), total(l1s)


def _foreach_moments(params, grads, ss, ms, vs, group, dlr, b, dtype):
    b1, b2 = group["betas"]
    denom = torch._foreach_sqrt(vs)
    torch._foreach_add_(denom, group["eps"])
    ratio = torch._foreach_div(ss, denom)
    torch._foreach_mul_(ratio, grads)
    dot = total([t.sum(dtype=dtype) for t in ratio])
    scaled = torch._foreach_mul(grads, dlr)
    torch._foreach_lerp_(ms, scaled, 1 - b1)
    ema_square_(vs, grads, b2)
    torch._foreach_mul_(ss, b)
    torch._foreach_add_(ss, scaled, alpha=1 - b)
    return dot, total(list(torch._foreach_norm(ss, 1, dtype=dtype)))
