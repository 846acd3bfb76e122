"""Shared plumbing of the optimizers: a base class with torch.optim's conventions, argument
checks, closure evaluation, gathering of per-parameter state, and reductions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

# (param, grad) -> the initial value of a state buffer; grad is already negated under maximize
BufferInit = Callable[[Tensor, Tensor], Tensor]
Params = Iterable[Tensor] | Iterable[dict]


# -- argument checks: each raises a one-line ValueError naming the optimizer and the argument --


def check_lr(opt: str, lr: float | Tensor) -> None:
    """A learning rate is a float or a one-element tensor, finite and >= 0."""
    if isinstance(lr, Tensor):
        if lr.numel() != 1:
            raise ValueError(
                f"{opt}: a tensor lr must have one element, got shape {tuple(lr.shape)}"
            )
        lr = lr.item()
    if not (0.0 <= lr < math.inf):
        raise ValueError(f"{opt}: lr must be finite and >= 0, got {lr}")


def check_nonnegative(opt: str, **values: float) -> None:
    for arg, value in values.items():
        if not value >= 0.0:
            raise ValueError(f"{opt}: {arg} must be >= 0, got {value}")


def check_positive(opt: str, **values: float) -> None:
    for arg, value in values.items():
        if not value > 0.0:
            raise ValueError(f"{opt}: {arg} must be > 0, got {value}")


def check_betas(opt: str, betas: Sequence[float], count: int = 2) -> None:
    """``count`` decay rates, each in ``[0, 1)``."""
    if len(betas) != count:
        raise ValueError(f"{opt}: betas must have {count} values, got {tuple(betas)}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"{opt}: betas[{i}] must be in [0, 1), got {beta}")


def check_d_estimate(opt: str, d0: float, d_coef: float, growth_rate: float) -> None:
    """The settings of the distance estimate ``d`` of D-Adaptation and Prodigy."""
    check_positive(opt, d0=d0, d_coef=d_coef)
    if not growth_rate >= 1.0:
        raise ValueError(f"{opt}: growth_rate must be >= 1, got {growth_rate}")


# -- the base class --


class TrainlabOptimizer(Optimizer):
    """``torch.optim.Optimizer`` with the conventions every trainlab optimizer shares.

    Every group carries ``foreach`` (``None`` or ``True``: one multi-tensor kernel per
    operation, per device and dtype; ``False``: a loop over tensors, lower peak memory) and
    ``maximize`` (ascend instead of descend: the gradient is negated before anything else, as
    in torch.optim). ``differentiable``, ``capturable`` and ``fused`` are not implemented:
    setting one of them raises ``ValueError`` rather than silently ignoring it. Complex
    parameters are updated as their real view (``torch.view_as_real``), as torch.optim does.
    """

    def __init__(
        self,
        params: Params,
        defaults: dict,
        *,
        foreach: bool | None,
        maximize: bool,
        differentiable: bool,
        capturable: bool,
        fused: bool | None,
    ) -> None:
        name = type(self).__name__
        flags = dict(differentiable=differentiable, capturable=capturable, fused=fused)
        for flag, value in flags.items():
            if value:
                raise ValueError(f"{name} does not support {flag}=True")
        check_lr(name, defaults["lr"])
        super().__init__(params, {**defaults, "foreach": foreach, "maximize": maximize})

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # checkpoints written before these keys existed
            group.setdefault("foreach", None)
            group.setdefault("maximize", False)


class ElementwiseOptimizer(TrainlabOptimizer):
    """An optimizer whose update is elementwise per parameter given its state buffers: a
    subclass names its ``buffers`` (with initializers in ``buffer_init``, zero otherwise),
    whether it counts steps, and its two update paths ``foreach_update`` and ``single_update``
    (multi-tensor and per-tensor, chosen by the group's ``foreach``), each called as
    ``update(group, params, grads, *buffers[, steps])``."""

    buffers: tuple[str, ...] = ()
    buffer_init: Mapping[str, BufferInit] = {}
    counts_steps: bool = False

    def foreach_update(self, group: dict, *tensors: Any) -> None:
        raise NotImplementedError

    def single_update(self, group: dict, *tensors: Any) -> None:
        raise NotImplementedError

    def group_tensors(self, group: dict) -> tuple[list, ...]:
        """``(params, grads, *buffers[, steps])`` of ``group``'s parameters with a gradient."""
        return group_tensors(self, group, self.buffers, init=self.buffer_init,
                             step=self.counts_steps)  # fmt: skip

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            tensors = self.group_tensors(group)
            if tensors[0]:
                run_update(group, self.foreach_update, self.single_update, *tensors)
        return loss


def uses_foreach(group: dict) -> bool:
    """The multi-tensor path unless the group says ``foreach=False`` (``None`` means foreach on
    every device: on small tensors it is faster even on a CPU)."""
    return group["foreach"] is not False


def lr_of(group: dict) -> float:
    """The group's learning rate as a float. A tensor lr is read on the host (one device
    synchronisation per group and step if it lives on an accelerator)."""
    lr = group["lr"]
    return lr.item() if isinstance(lr, Tensor) else lr


def evaluate_closure(closure: Callable[[], Tensor] | None) -> Tensor | None:
    """The loss from ``closure`` (with autograd on, inside a ``no_grad`` step), or None."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def zeros(p: Tensor, grad: Tensor) -> Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


def copy_of_param(p: Tensor, grad: Tensor) -> Tensor:
    return p.detach().clone(memory_format=torch.preserve_format)


def copy_of_grad(p: Tensor, grad: Tensor) -> Tensor:
    return grad.detach().clone(memory_format=torch.preserve_format)


def group_tensors(
    optimizer: Optimizer,
    group: dict,
    buffers: Sequence[str],
    *,
    init: Mapping[str, BufferInit] | None = None,
    step: bool = False,
) -> tuple[list, ...]:
    """The tensors of ``group``'s parameters that have a gradient, as the updates take them:
    ``(params, grads, *buffers)``, plus ``steps`` last when ``step`` is set.

    On a parameter's first update its state gets the named ``buffers``, in that order, each
    zero unless ``init`` maps its name to another initializer; with ``step``, a python-int
    ``"step"`` (first in the state) counts the parameter's updates, this one included.
    Gradients are negated (new tensors) when the group maximizes. Complex parameters, their
    gradients and buffers come as their real views. Sparse gradients raise ``RuntimeError``."""
    init = init or {}
    name = type(optimizer).__name__
    params, grads, steps = [], [], []
    lists = [[] for _ in buffers]
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError(f"{name} does not support sparse gradients")
        grad = -p.grad if group["maximize"] else p.grad
        state = optimizer.state[p]
        if not state:
            if step:
                state["step"] = 0
            for key in buffers:
                state[key] = init.get(key, zeros)(p, grad)
        real = torch.view_as_real if torch.is_complex(p) else _same
        params.append(real(p))
        grads.append(real(grad))
        for values, key in zip(lists, buffers, strict=True):
            values.append(real(state[key]))
        if step:
            state["step"] += 1
            steps.append(state["step"])
    return (params, grads, *lists, steps) if step else (params, grads, *lists)


def _same(t: Tensor) -> Tensor:
    return t


def buckets(*lists: list) -> list[tuple[list, ...]]:
    """``lists`` (parallel, indexed like the first, a list of tensors) split by the first's
    device and dtype, as multi-tensor kernels want them; one bucket in the common case."""
    keys: dict[tuple, list[int]] = {}
    for i, t in enumerate(lists[0]):
        keys.setdefault((t.device, t.dtype), []).append(i)
    if len(keys) <= 1:
        return [lists]
    return [tuple([values[i] for i in index] for values in lists) for index in keys.values()]


def run_update(
    group: dict, foreach_fn: Callable, single_fn: Callable, *lists: list, **kwargs
) -> list:
    """``foreach_fn(*bucket, group, **kwargs)`` per device/dtype bucket, or
    ``single_fn(*lists, group, **kwargs)`` when the group turns foreach off; their results in
    a list (partial sums to add up, for the optimizers with global reductions)."""
    if uses_foreach(group):
        return [foreach_fn(*bucket, group, **kwargs) for bucket in buckets(*lists)]
    return [single_fn(*lists, group, **kwargs)]


def add_coupled_decay(group: dict, params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
    """``grad + wd * p`` (new tensors) where the group has a weight decay ``wd``: L2 decay."""
    wd = group["weight_decay"]
    if wd == 0:
        return grads
    if uses_foreach(group):
        return [g for b in buckets(grads, params) for g in torch._foreach_add(*b, alpha=wd)]
    return [g.add(p, alpha=wd) for g, p in zip(grads, params, strict=True)]


def groups_with_grads(
    optimizer: Optimizer,
    buffers: Sequence[str],
    *,
    init: Mapping[str, BufferInit] | None = None,
    decoupled: Callable[[dict], bool] = lambda group: False,
) -> list[tuple]:
    """``(group, params, grads, *buffers)`` from ``group_tensors`` for every parameter group
    that has gradients, for the optimizers whose step needs all groups at once (one global
    step size). ``grads`` include ``wd * p`` where the group has a weight decay and not
    ``decoupled(group)`` (coupled, L2 decay)."""
    work = []
    for group in optimizer.param_groups:
        params, grads, *lists = group_tensors(optimizer, group, buffers, init=init)
        if not params:
            continue
        if not decoupled(group):
            grads = add_coupled_decay(group, params, grads)
        work.append((group, params, grads, *lists))
    return work


def reduction_dtype(tensors: Iterable[Tensor]) -> torch.dtype:
    """The dtype in which global sums over ``tensors`` are taken: the widest of theirs, at least
    float32 (so a float32 and a float64 parameter together sum in float64)."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def publish(optimizer: Optimizer, **values) -> None:
    """Store the global quantities (0-d tensors, step counts) in every parameter group, so that
    ``state_dict()`` carries them and any group can be read."""
    for group in optimizer.param_groups:
        group.update(values)


def adam_bias_correction(group: dict, k: int) -> float:
    """Adam's step-size factor ``sqrt(1 - b2^(k+1)) / (1 - b1^(k+1))`` at step ``k = 0, 1, ...``
    when the group asks for it (``use_bias_correction``), else 1."""
    if not group["use_bias_correction"]:
        return 1.0
    b1, b2 = group["betas"]
    return math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))


def ema_square_(avgs: list[Tensor], xs: list[Tensor], beta: float) -> None:
    """``avgs <- beta * avgs + (1 - beta) * xs^2`` in place (Adam's second moment), foreach."""
    torch._foreach_mul_(avgs, beta)
    torch._foreach_addcmul_(avgs, xs, xs, value=1 - beta)


def corrected_sqrt(avgs: list[Tensor], beta: float, steps: list[int], eps: float) -> list[Tensor]:
    """``sqrt(avgs / (1 - beta^t)) + eps`` per tensor (new tensors), ``t`` from ``steps``."""
    denom = torch._foreach_sqrt(avgs)
    torch._foreach_div_(denom, [math.sqrt(1 - beta**t) for t in steps])
    torch._foreach_add_(denom, eps)
    return denom


def total(values: list[Tensor]) -> Tensor:
    """The sum of a list of 0-d tensors, as a 0-d tensor."""
    return torch.stack(values).sum()


def norms(tensors: list[Tensor], order: float, dtype: torch.dtype, foreach: bool) -> list[Tensor]:
    """The ``order``-norm of each tensor, as 0-d tensors of ``dtype``."""
    if foreach:
        return [n for (b,) in buckets(tensors) for n in torch._foreach_norm(b, order, dtype=dtype)]
    return [torch.linalg.vector_norm(t, order, dtype=dtype) for t in tensors]


def total_norm(tensors: list[Tensor], dtype: torch.dtype, foreach: bool) -> Tensor:
    """The 2-norm of the concatenation of ``tensors``, as a 0-d tensor of ``dtype``."""
    return torch.linalg.vector_norm(torch.stack(norms(tensors, 2, dtype, foreach)))


# -- shared by the distance-adaptive Adams (DAdaptAdam, Prodigy) --


class DistanceAdaptiveAdam(TrainlabOptimizer):
    """What D-Adaptation's Adam and Prodigy share: their common hyperparameters and checks,
    the global 0-d estimates kept in every group, the per-group step size
    ``dlr = d * lr * bias_correction``, and the final Adam-like step, which is skipped entirely
    (parameters unchanged, decay included) while no gradient information has arrived."""

    def __init__(
        self,
        params: Params,
        *,
        lr: float | Tensor,
        betas: tuple[float, float],
        eps: float,
        weight_decay: float,
        decouple: bool,
        use_bias_correction: bool,
        d0: float,
        d_coef: float,
        growth_rate: float,
        extra: dict,
        **torch_flags,
    ) -> None:
        name = type(self).__name__
        check_betas(name, betas)
        check_nonnegative(name, eps=eps, weight_decay=weight_decay)
        check_d_estimate(name, d0, d_coef, growth_rate)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decouple=decouple,
            use_bias_correction=use_bias_correction,
            d0=d0,
            d_coef=d_coef,
            growth_rate=growth_rate,
            **extra,
        )
        super().__init__(params, defaults, **torch_flags)

    def _begin(
        self, buffers: Sequence[str], init: Mapping[str, BufferInit], scalars: Mapping[str, float]
    ) -> tuple[list, torch.dtype, dict, int] | None:
        """``(work, dtype, values, k)``: ``work`` from ``groups_with_grads`` (weight decay in
        the gradient unless the group decouples it), the dtype of the global sums, the 0-d
        estimates ``d`` and ``scalars`` (from the groups, or new: ``d = d0`` and each of
        ``scalars`` at its given initial value), and the step count ``k``; None if no
        parameter has a gradient."""
        work = groups_with_grads(self, buffers, init=init, decoupled=lambda g: g["decouple"])
        if not work:
            return None
        first = self.param_groups[0]
        dtype = reduction_dtype(p for w in work for p in w[1])
        if "d" in first:
            values = {key: first[key] for key in ("d", *scalars)}
            return work, dtype, values, first["k"]
        device = work[0][1][0].device
        values = {"d": torch.tensor(first["d0"], dtype=dtype, device=device)}
        for key, start in scalars.items():
            values[key] = torch.tensor(start, dtype=dtype, device=device)
        return work, dtype, values, 0

    @staticmethod
    def _dlr(group: dict, d: Tensor, k: int) -> Tensor:
        """The group's step size ``d * lr * bc_k`` (a 0-d tensor)."""
        return d * (lr_of(group) * adam_bias_correction(group, k))

    @staticmethod
    def _adam_step(group, params, ms, vs, *, scale: Tensor, eps: Tensor | float, decay: Tensor):
        """``p <- p * (1 - decay) - m / ((sqrt(v) + eps) / scale)`` (decay only when the group
        decouples a nonzero weight decay); ``scale`` and ``decay`` are zero on a skipped step,
        where the infinite denominator makes the step exactly zero (one operation fewer than
        scaling the update, and no host synchronisation to test for the skip)."""
        decays = group["weight_decay"] != 0 and group["decouple"]
        if not uses_foreach(group):
            for p, m, v in zip(params, ms, vs, strict=True):
                if decays:
                    p.mul_(1 - decay)
                p.addcdiv_(m, v.sqrt().add_(eps).div_(scale), value=-1.0)
            return
        for p_list, m_list, v_list in buckets(params, ms, vs):
            if decays:
                torch._foreach_mul_(p_list, 1 - decay)
            denom = torch._foreach_sqrt(v_list)
            torch._foreach_add_(denom, eps)
            torch._foreach_div_(denom, scale)
            torch._foreach_addcdiv_(p_list, m_list, denom, value=-1.0)
