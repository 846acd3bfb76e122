"""Prodigy: Adam whose step size estimates the distance to the solution (Mishchenko & Defazio,
2023)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from trainlab.optim._common import (
    DistanceAdaptiveAdam,
    Params,
    copy_of_param,
    ema_square_,
    evaluate_closure,
    publish,
    run_update,
    total,
)


class Prodigy(DistanceAdaptiveAdam):
    r"""Prodigy: Adam whose step size :math:`d` is a growing estimate of the distance from
    the start to the solution, so ``lr`` stays 1 (times a schedule).

    With :math:`x` the concatenation of all parameters, :math:`\text{lr}_k` the group's
    (scheduled) lr and :math:`\text{bc}_k` 1 or Adam's
    :math:`\sqrt{1 - \beta_2^{k+1}} / (1 - \beta_1^{k+1})`:

    .. math::
        \begin{aligned}
        &\textbf{input}: x_0, \beta_1, \beta_2, \beta_3, \epsilon, \lambda, d_0, c
            \text{ (d\_coef)}, \rho \text{ (growth\_rate)} \\
        &\textbf{init}: d_0,\ m, v, s \leftarrow 0,\ r \leftarrow 0,\ d_{\max} \leftarrow d_0 \\
        &\textbf{for}\ k = 0, 1, \ldots: \\
        &\quad g_k \leftarrow \nabla f(x_k) \ (+\lambda x_k \text{ if not decouple};
            \text{ negated if maximize}) \\
        &\quad \delta_k \leftarrow d_k\, \text{lr}_k\, \text{bc}_k \\
        &\quad m \leftarrow \beta_1 m + (1 - \beta_1) d_k g_k, \quad
               v \leftarrow \beta_2 v + (1 - \beta_2) d_k^2 g_k^2 \\
        &\quad r \leftarrow \beta_3 r + (d_k / d_0)\, \delta_k \langle g_k, x_0 - x_k\rangle,
            \quad s \leftarrow \beta_3 s + (d_k / d_0)\, w_k\, g_k
            \quad (w_k = d_k \text{ if safeguard\_warmup else } \delta_k) \\
        &\quad \textbf{if}\ \|s\|_1 = 0: \textbf{skip}
            \text{ (no parameter changes, } d \text{ kept)} \\
        &\quad \hat d \leftarrow c\, r / \|s\|_1, \quad
               d_{\max} \leftarrow \max(d_{\max}, \hat d), \quad
               d_{k+1} \leftarrow \min(d_{\max}, \rho \cdot
               (\max(d_k, \hat d) \text{ if } d_k = d_0 \text{ else } d_k)) \\
        &\quad x_{k+1} \leftarrow x_k (1 - \lambda \delta_k)
               - \delta_k\, m / (\sqrt{v} + d_{k+1}\epsilon)
               \quad (\text{decay only if decouple})
        \end{aligned}

    The paper's :math:`(1 - \beta_3)` factors and the release's :math:`d_k / d_0` rescaling
    cancel in :math:`r / \|s\|_1`; this class keeps the release's rescaling (it avoids tiny
    numbers). The authors recommend ``lr = 1`` with a cosine decay; with a warmup, use
    ``safeguard_warmup=True`` (the lr is left out of :math:`s`).

    Choices where the paper is open:

    - One global :math:`d` over all groups (as in the release); unlike the release, groups
      may have different ``lr``: each group's lr weighs its own terms of :math:`r` and
      :math:`s`. ``beta3``, ``d0``, ``d_coef``, ``growth_rate`` and ``safeguard_warmup`` are
      read from the first group; the others apply per group.
    - No bias correction by default and weight decay decoupled at rate :math:`\delta_k`
      (the release's defaults).
    - A step without gradient information (:math:`\|s\|_1 = 0`, e.g. all gradients zero so
      far) changes no parameter, as the release returns early; the moments are still updated.

    :math:`d`, :math:`d_{\max}` and :math:`r` are 0-d tensors in every group (``"d"``,
    ``"d_max"``, ``"d_numerator"``): no host synchronisation, and ``state_dict()`` carries
    them; sums are taken in the widest parameter dtype (at least float32).

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): multiplier of the step size, >= 0 (default: 1).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1)
            (default: (0.9, 0.999)).
        beta3 (float, optional): :math:`\beta_3 \in [0, 1)`; None means
            :math:`\sqrt{\beta_2}` (default: None).
        eps (float, optional): :math:`\epsilon \ge 0` (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        decouple (bool, optional): decoupled (True) or L2 (False) decay (default: True).
        use_bias_correction (bool, optional): Adam's :math:`\text{bc}_k` (default: False).
        safeguard_warmup (bool, optional): leave the lr out of :math:`s` (default: False).
        d0 (float, optional): initial estimate :math:`d_0 > 0` (default: 1e-6).
        d_coef (float, optional): :math:`c > 0`, scales the estimate (default: 1).
        growth_rate (float, optional): :math:`\rho \ge 1`, cap on the growth of :math:`d`
            per step (default: inf).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``), the release's ``fsdp_in_use`` and ``slice_p``.
    Complex parameters are updated as their real view. Out-of-range arguments raise
    ``ValueError`` naming the argument.

    Paper: K. Mishchenko and A. Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
    Learner", ICML 2024, https://arxiv.org/abs/2306.06101 (Algorithm 4, Adam version).

    Example:
        >>> import torch
        >>> from trainlab.optim import Prodigy
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = Prodigy(model.parameters(), weight_decay=0.01)
        >>> sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     model(torch.ones(4, 3)).square().mean().backward()
        ...     opt.step()
        ...     sched.step()
        >>> bool(opt.param_groups[0]["d"] > 1e-6)  # the estimate grew from d0
        True
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
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
        if beta3 is not None and not 0.0 <= beta3 < 1.0:
            raise ValueError(f"Prodigy: beta3 must be in [0, 1) or None, got {beta3}")
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
            extra=dict(beta3=beta3, safeguard_warmup=safeguard_warmup),
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
        first = self.param_groups[0]
        begun = self._begin(
            ("x0", "s", "exp_avg", "exp_avg_sq"),
            {"x0": copy_of_param},
            {"d_max": first["d0"], "d_numerator": 0.0},
        )
        if begun is None:
            return loss
        work, dtype, values, k = begun  # work: (group, params, grads, x0s, ss, ms, vs) per group
        d, d_max = values["d"], values["d_max"]
        d0, d_coef, growth = first["d0"], first["d_coef"], first["growth_rate"]
        beta3 = first["beta3"] if first["beta3"] is not None else math.sqrt(first["betas"][1])

        dots, l1_norms, dlrs = [], [], []
        for group, *lists in work:
            dlr = self._dlr(group, d, k)
            dlrs.append(dlr)
            s_weight = d / d0 * (d if first["safeguard_warmup"] else dlr)
            sums = run_update(
                group, _foreach_moments, _single_moments, *lists,
                d=d, s_weight=s_weight, beta3=beta3, dtype=dtype,
            )  # fmt: skip
            dots.extend(dot * dlr for dot, _ in sums)
            l1_norms.extend(l1 for _, l1 in sums)

        numerator = values["d_numerator"] * beta3 + d / d0 * total(dots)
        l1 = total(l1_norms)
        informed = l1 > 0
        d_hat = torch.where(informed, d_coef * numerator / l1, d)
        d_new = torch.where(d == d0, torch.maximum(d, d_hat), d)  # the first jump is uncapped
        d_max = torch.maximum(d_max, d_hat)
        d_new = torch.where(informed, torch.minimum(d_max, d_new * growth), d)
        publish(self, d=d_new, d_max=d_max, d_numerator=numerator, k=k + 1)

        gate = informed.to(dtype)  # 0: no gradient information, skip the step entirely
        for (group, params, _, _, _, ms, vs), dlr in zip(work, dlrs, strict=True):
            step = dlr * gate
            decay = group["weight_decay"] * step
            self._adam_step(
                group, params, ms, vs, scale=step, eps=d_new * group["eps"], decay=decay
            )
        return loss


def _single_moments(params, grads, x0s, ss, ms, vs, group, d, s_weight, beta3, dtype):
    """Update m, v and s; return ``(<g, x0 - x>, ||s||_1)`` over these tensors."""
    b1, b2 = group["betas"]
    dots, l1s = [], []
    for p, g, x0, s, m, v in zip(params, grads, x0s, ss, ms, vs, strict=True):
        dots.append(((x0 - p) * g).sum(dtype=dtype))
        scaled = g * d
        m.lerp_(scaled, 1 - b1)
        v.mul_(b2).addcmul_(scaled, scaled, value=1 - b2)
        s.mul_(beta3).add_(g * s_weight)
        l1s.append(torch.linalg.vector_norm(s, 1, dtype=dtype))
    return total(dots), total(l1s)


def _foreach_moments(params, grads, x0s, ss, ms, vs, group, d, s_weight, beta3, dtype):
    b1, b2 = group["betas"]
    shifts = torch._foreach_sub(x0s, params)
    torch._foreach_mul_(shifts, grads)
    dot = total([t.sum(dtype=dtype) for t in shifts])
    scaled = torch._foreach_mul(grads, d)
    torch._foreach_lerp_(ms, scaled, 1 - b1)
    ema_square_(vs, scaled, b2)
    torch._foreach_mul_(ss, beta3)
    torch._foreach_add_(ss, torch._foreach_mul(grads, s_weight))
    return dot, total(list(torch._foreach_norm(ss, 1, dtype=dtype)))
