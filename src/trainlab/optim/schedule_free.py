"""Schedule-Free AdamW and SGD: primal averaging with interpolated gradient points instead of a
learning-rate schedule (Defazio et al., 2024)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from trainlab.optim._common import (
    Params,
    TrainlabOptimizer,
    buckets,
    check_betas,
    check_nonnegative,
    copy_of_param,
    evaluate_closure,
    group_tensors,
    lr_of,
    run_update,
    uses_foreach,
)


class _ScheduleFree(TrainlabOptimizer):
    """What both schedule-free optimizers share: the warmup, the averaging weights, the
    train/eval switch and the step that updates ``y`` (the parameters) and ``z`` (a buffer)
    from a base direction each subclass computes (``_direction``)."""

    buffers: tuple[str, ...] = ("z",)

    def __init__(self, params: Params, defaults: dict, **torch_flags: Any) -> None:
        name = type(self).__name__
        check_nonnegative(
            name,
            weight_decay=defaults["weight_decay"],
            r=defaults["r"],
            weight_lr_power=defaults["weight_lr_power"],
        )
        steps = defaults["warmup_steps"]
        if not (isinstance(steps, int) and steps >= 0):
            raise ValueError(f"{name}: warmup_steps must be an int >= 0, got {steps!r}")
        # per-group bookkeeping, in the group so that state_dict() carries it
        book = dict(k=0, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0, train_mode=True)
        super().__init__(params, {**defaults, **book}, **torch_flags)

    @staticmethod
    def _beta(group: dict) -> float:
        raise NotImplementedError

    def _direction(self, group: dict, grads: list[Tensor], *buffers: list[Tensor]) -> list:
        raise NotImplementedError

    # -- the train/eval switch --

    def _move(self, to_train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == to_train:
                continue
            beta = self._beta(group)
            # y = (1 - beta) z + beta x, hence x = y + (1 - 1/beta)(z - y)
            weight = 1 - beta if to_train else 1 - 1 / beta
            ps, zs = [], []
            for p in group["params"]:
                state = self.state[p]
                if "z" in state:
                    real = torch.view_as_real if torch.is_complex(p) else _same
                    ps.append(real(p.detach()))
                    zs.append(real(state["z"]))
            if ps and uses_foreach(group):
                for p_list, z_list in buckets(ps, zs):
                    torch._foreach_lerp_(p_list, z_list, weight)
            else:
                for p, z in zip(ps, zs, strict=True):
                    p.lerp_(z, weight)
            group["train_mode"] = to_train

    @torch.no_grad()
    def eval(self) -> None:
        """Move the parameters to the average ``x`` (where to evaluate); no-op if already
        there. Call before evaluating or saving a model for inference."""
        self._move(False)

    @torch.no_grad()
    def train(self) -> None:
        """Move the parameters back to the gradient point ``y``; no-op if already there. Call
        before the next ``step()`` after an ``eval()``."""
        self._move(True)

    # -- the step --

    def _advance(self, group: dict) -> tuple[float, float]:
        """``(lr_t, c_{t+1})`` for the group's next step, with its bookkeeping advanced."""
        k, warmup = group["k"], group["warmup_steps"]
        lr = lr_of(group) * ((k + 1) / warmup if k < warmup else 1.0)
        lr_max = group["lr_max"] = max(lr, group["lr_max"])
        weight = (k + 1) ** group["r"] * lr_max ** group["weight_lr_power"]
        weight_sum = group["weight_sum"] = group["weight_sum"] + weight
        group["scheduled_lr"] = lr
        group["k"] = k + 1
        return lr, (weight / weight_sum if weight_sum > 0 else 0.0)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter with a gradient; returns ``closure()`` if given.
        Raises ``RuntimeError`` after ``eval()`` without ``train()`` (the gradient would have
        been taken at ``x``, not ``y``)."""
        if not all(group["train_mode"] for group in self.param_groups):
            raise RuntimeError(
                f"{type(self).__name__}: step() in eval mode; call optimizer.train() before "
                "computing the gradient"
            )
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            params, grads, *buffers = group_tensors(
                self, group, self.buffers, init={"z": copy_of_param}
            )
            if not params:
                continue
            lr, c = self._advance(group)
            coef = -lr * (1 - self._beta(group) * (1 - c))
            run_update(group, self._foreach, self._single, params, grads, *buffers,
                       lr=lr, c=c, coef=coef)  # fmt: skip
        return loss

    # run_update passes (params, grads, z, *other buffers, group)
    def _foreach(self, ys, grads, zs, *rest, lr, c, coef) -> None:
        *rest, group = rest
        d = self._direction(group, grads, *rest, ys=ys, foreach=True)
        torch._foreach_lerp_(ys, zs, c)
        torch._foreach_add_(ys, d, alpha=coef)
        torch._foreach_add_(zs, d, alpha=-lr)

    def _single(self, ys, grads, zs, *rest, lr, c, coef) -> None:
        *rest, group = rest
        d = self._direction(group, grads, *rest, ys=ys, foreach=False)
        for y, z, di in zip(ys, zs, d, strict=True):
            y.lerp_(z, c)
            y.add_(di, alpha=coef)
            z.add_(di, alpha=-lr)


def _same(t: Tensor) -> Tensor:
    return t


_COMMON_MATH = r"""
    .. math::
        \begin{aligned}
        &\textbf{init}: z_0 = x_0 = y_0 = \theta_0 \text{ (params)},\ W_0 = 0,
            \ \gamma^{\max}_{-1} = -1 \\
        &\textbf{for}\ t = 0, 1, \ldots: \\
        &\quad g_t \leftarrow \nabla f_t(y_t) \quad (-\nabla f_t \text{ if maximize}) \\
        &\quad \gamma_t \leftarrow \eta \cdot \min(1, (t+1)/T_w)
            \quad \text{(lr, linear warmup over } T_w = \text{warmup\_steps)} \\
        &\quad \gamma^{\max}_t \leftarrow \max(\gamma^{\max}_{t-1}, \gamma_t),\quad
            w_t \leftarrow (t+1)^r (\gamma^{\max}_t)^{p},\quad W_{t+1} \leftarrow W_t + w_t,
            \quad c_{t+1} \leftarrow w_t / W_{t+1} \\
        &\quad d_t \leftarrow \text{(the variant's direction, below)}
            + \lambda y_t \quad \text{(decoupled decay, at } y) \\
        &\quad z_{t+1} \leftarrow z_t - \gamma_t d_t \\
        &\quad x_{t+1} \leftarrow (1 - c_{t+1}) x_t + c_{t+1} z_{t+1} \\
        &\quad y_{t+1} \leftarrow (1 - \beta) z_{t+1} + \beta x_{t+1}
        \end{aligned}
"""

_SHARED_NOTES = r"""
    **Which weights are where.** The parameters hold :math:`y` (where gradients are taken)
    while training; :math:`z` is the state buffer ``"z"``; :math:`x` (the average, the point
    to evaluate) is never stored: :meth:`eval` moves the parameters to
    :math:`x = (y - (1-\beta) z)/\beta` and :meth:`train` back to :math:`y`. The optimizer
    starts in train mode (at the start :math:`x = y = z`, so the authors' package, which starts
    in eval mode and needs a first ``train()``, puts the parameters at the same place);
    ``step()`` after ``eval()`` without ``train()`` raises ``RuntimeError``. With a BatchNorm
    model the running statistics were gathered at :math:`y`, not :math:`x` (the authors
    advise recomputing them at :math:`x` before evaluating; this class does not).

    **Choices.** Matches the authors' package ``schedulefree`` (1.4.1), classes
    ``AdamWScheduleFree`` / ``SGDScheduleFree`` (the non-"Reference" ones, which keep
    :math:`y` and :math:`z` and never store :math:`x`), step for step, with
    :math:`y_{t+1} = (1-c_{t+1}) y_t + c_{t+1} z_t - \gamma_t (1 - \beta(1 - c_{t+1})) d_t`,
    the same update written without :math:`x`. The paper's weight is
    :math:`\gamma_t^{p}`; the package (and this class) uses the largest lr so far,
    :math:`\gamma^{\max}_t`, which is the same whenever the lr does not decrease (warmup, then
    constant: the intended use), and keeps later weights from shrinking if an outside
    schedule lowers the lr. :math:`c_{t+1} = 0` while :math:`W_{t+1} = 0` (lr 0). The step
    counter :math:`t`, :math:`W`, :math:`\gamma^{\max}` and the mode are per parameter group
    (``k``, ``weight_sum``, ``lr_max``, ``train_mode`` in the group; ``scheduled_lr`` is the
    last :math:`\gamma_t`); a group with no gradient is skipped and does not count the step.
    The group's ``lr`` is read at every step, so an outside scheduler works on top
    (:math:`\eta` is then its current value); a linear warmup from a scheduler,
    :math:`(t+1)/T_w`, gives exactly the same iterates as ``warmup_steps``. Gradients are not
    modified (the package divides them in place).
"""


class ScheduleFreeAdamW(_ScheduleFree):
    __doc__ = (
        r"""Schedule-Free AdamW: Adam's preconditioned gradient, averaged by the schedule-free
    iteration, so that no decaying learning-rate schedule is needed (only a warmup).
"""
        + _COMMON_MATH
        + r"""
    with :math:`\beta = \beta_1` and the direction
    :math:`v_{t+1} = \beta_2 v_t + (1-\beta_2) g_t^2` (:math:`v_0 = 0`),
    :math:`d_t = g_t / (\sqrt{v_{t+1} / (1 - \beta_2^{t+1})} + \epsilon) + \lambda y_t`:
    Adam's bias correction of the second moment; there is no first-moment buffer (the
    interpolation :math:`\beta_1` plays momentum's part), so no first-moment correction.
    :math:`\lambda` is taken at :math:`y` and added after the preconditioning (decoupled, like
    AdamW's; its rate per step is :math:`\gamma_t\lambda`).
"""
        + _SHARED_NOTES
        + r"""
    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`\eta \ge 0` (default: 0.0025, the package's).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, :math:`\beta_1 \in
            (0, 1)`, :math:`\beta_2 \in [0, 1)` (default: (0.9, 0.999)).
        eps (float, optional): :math:`\epsilon \ge 0`, outside the root (default: 1e-8).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        warmup_steps (int, optional): :math:`T_w \ge 0`, linear warmup (default: 0).
        r (float, optional): polynomial weighting power :math:`r \ge 0` (default: 0).
        weight_lr_power (float, optional): :math:`p \ge 0` (default: 2).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view.
    Out-of-range arguments raise ``ValueError`` naming the argument.

    Paper: A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled, A. Cutkosky, "The Road
    Less Scheduled", NeurIPS 2024, https://arxiv.org/abs/2405.15682 (Algorithm 1);
    package: https://github.com/facebookresearch/schedule_free

    Example:
        >>> import torch
        >>> from trainlab.optim import ScheduleFreeAdamW
        >>> model = torch.nn.Linear(3, 1)
        >>> opt = ScheduleFreeAdamW(model.parameters(), lr=1e-2, warmup_steps=10)
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     model(torch.ones(4, 3)).sum().backward()
        ...     opt.step()
        >>> y = model.weight.detach().clone()
        >>> opt.eval()  # evaluate at x
        >>> bool((model.weight != y).all())
        True
        >>> opt.train()  # back to y before the next step
        >>> torch.allclose(model.weight, y)
        True
    """
    )

    buffers = ("z", "exp_avg_sq")

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        name = type(self).__name__
        check_betas(name, betas)
        if not betas[0] > 0:
            raise ValueError(f"{name}: betas[0] must be in (0, 1), got {betas[0]}")
        check_nonnegative(name, eps=eps)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
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

    @staticmethod
    def _beta(group: dict) -> float:
        return group["betas"][0]

    def _direction(self, group, grads, vs, *, ys, foreach):
        b2, eps, wd = group["betas"][1], group["eps"], group["weight_decay"]
        bc = 1 - b2 ** group["k"]  # k already counts this step
        if foreach:
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
            denom = torch._foreach_div(vs, bc)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, eps)
            d = torch._foreach_div(grads, denom)
            if wd != 0:
                torch._foreach_add_(d, ys, alpha=wd)
            return d
        out = []
        for g, v, y in zip(grads, vs, ys, strict=True):
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            di = g / v.div(bc).sqrt_().add_(eps)
            out.append(di.add_(y, alpha=wd) if wd != 0 else di)
        return out


class ScheduleFreeSGD(_ScheduleFree):
    __doc__ = (
        r"""Schedule-Free SGD: plain gradient steps on :math:`z`, averaged into :math:`x`, with
    gradients taken at the interpolation :math:`y`; no decaying schedule (only a warmup).
"""
        + _COMMON_MATH
        + r"""
    with :math:`\beta` = ``momentum`` and the direction :math:`d_t = g_t + \lambda y_t`.
"""
        + _SHARED_NOTES
        + r"""
    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`\eta \ge 0` (default: 1.0, the package's; the
            step on :math:`y` is about :math:`(1-\beta)\eta`, hence the large value).
        momentum (float, optional): the interpolation :math:`\beta \in (0, 1)`
            (default: 0.9).
        weight_decay (float, optional): :math:`\lambda \ge 0` (default: 0).
        warmup_steps (int, optional): :math:`T_w \ge 0`, linear warmup (default: 0).
        r (float, optional): polynomial weighting power :math:`r \ge 0` (default: 0).
        weight_lr_power (float, optional): :math:`p \ge 0` (default: 2).
        foreach (bool, optional): multi-tensor kernels if not False (default: None).
        maximize (bool, optional): maximize the objective (default: False).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view.
    Out-of-range arguments raise ``ValueError`` naming the argument.

    Paper: A. Defazio, X. Yang, H. Mehta, K. Mishchenko, A. Khaled, A. Cutkosky, "The Road
    Less Scheduled", NeurIPS 2024, https://arxiv.org/abs/2405.15682 (Algorithm 1);
    package: https://github.com/facebookresearch/schedule_free

    Example:
        >>> import torch
        >>> from trainlab.optim import ScheduleFreeSGD
        >>> p = torch.zeros(2, requires_grad=True)
        >>> opt = ScheduleFreeSGD([p], lr=1.0, momentum=0.9)
        >>> p.grad = torch.tensor([1.0, -1.0])
        >>> opt.step()  # c_1 = 1: y_1 = y_0 - (1 - 0.9 * 0) * 1.0 * g
        >>> p.detach()
        tensor([-1.,  1.])
        >>> opt.eval()  # x_1 = z_1 = -g
        >>> p.detach()
        tensor([-1.,  1.])
    """
    )

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if not 0.0 < momentum < 1.0:
            raise ValueError(f"ScheduleFreeSGD: momentum must be in (0, 1), got {momentum}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
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

    @staticmethod
    def _beta(group: dict) -> float:
        return group["momentum"]

    def _direction(self, group, grads, *, ys, foreach):
        wd = group["weight_decay"]
        if wd == 0:
            return grads
        if foreach:
            return torch._foreach_add(grads, ys, alpha=wd)
        return [g.add(y, alpha=wd) for g, y in zip(grads, ys, strict=True)]
