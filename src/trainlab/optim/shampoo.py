"""Shampoo: Kronecker-factored preconditioning with Adam grafting, in one process (Gupta et al.,
2018; Anil et al., 2020; Shi et al., 2023)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from trainlab.optim._common import (
    Params,
    TrainlabOptimizer,
    check_betas,
    check_nonnegative,
    check_positive,
    evaluate_closure,
    group_tensors,
    lr_of,
    run_update,
)


class Shampoo(TrainlabOptimizer):
    r"""Shampoo with Adam(W) grafting: every block of a parameter with two or more dimensions is
    preconditioned by one inverse root per dimension of its Kronecker-factor statistics, and the
    result is rescaled to the norm of the Adam step of that block.

    For a block :math:`G` of order :math:`k` (the gradient restricted to the block, shape
    :math:`d_1 \times \cdots \times d_k`), :math:`G_{(i)}` is :math:`G` matricised along
    dimension :math:`i` (shape :math:`d_i \times \prod_{j \ne i} d_j`), and
    :math:`X \times_i Q` multiplies dimension :math:`i` of :math:`X` by the symmetric :math:`Q`:

    .. math::
        \begin{aligned}
        &\textbf{input}: \theta_0, \eta \text{ (lr)}, \beta_1, \beta_2, \epsilon
            \text{ (epsilon)}, \epsilon_a \text{ (graft\_eps)}, \lambda \text{ (weight\_decay)},
            p = 2k \text{ (or inv\_root\_override)}, F \text{ (precondition\_frequency)},
            S \text{ (start\_preconditioning\_step)} \\
        &\textbf{init}: m_0, v_0 \leftarrow 0, \quad L_{i,0} \leftarrow 0 \in
            \mathbb{R}^{d_i \times d_i} \\
        &\textbf{for}\ t = 1, 2, \ldots: \\
        &\quad g_t \leftarrow \nabla f_t(\theta_{t-1})
            \quad (-\nabla f_t \text{ if maximize}) \\
        &\quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
               v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        &\quad n_t \leftarrow m_t \quad (\beta_1 m_t + (1 - \beta_1) g_t
            \text{ if nesterov}), \qquad \hat n_t \leftarrow n_t / (1 - \beta_1^t) \\
        &\quad a_t \leftarrow \hat n_t \,/\, \big(\sqrt{v_t / (1 - \beta_2^t)} + \epsilon_a\big)
            \quad \text{(the Adam direction)} \\
        &\quad \textbf{per block } G \text{ (and the same block } N \text{ of } \hat n_t,
            A \text{ of } a_t), \ \textbf{for}\ i = 1..k: \\
        &\qquad L_{i,t} \leftarrow \beta_2 L_{i,t-1} + (1 - \beta_2)\, G_{(i)} G_{(i)}^\top \\
        &\qquad \textbf{if}\ t \ge S \textbf{ and } (t - S) \bmod F = 0:\
            U \,\mathrm{diag}(\mu)\, U^\top \leftarrow \mathrm{eigh}\big(L_{i,t} /
            (1 - \beta_2^t)\big), \
            Q_i \leftarrow U \,\mathrm{diag}\big((\max(\mu, 0) + \epsilon)^{-1/p}\big) U^\top \\
        &\quad \textbf{per block}: D \leftarrow A \ \textbf{if}\ t < S, \textbf{ else }
            P \,\lVert A \rVert_F / \lVert P \rVert_F
            \ \text{with}\ P = N \times_1 Q_1 \times_2 \cdots \times_k Q_k
            \quad (D = 0 \text{ if } P = 0) \\
        &\quad \theta_t \leftarrow \theta_{t-1}(1 - \eta\lambda) - \eta D
        \end{aligned}

    Parameters with fewer than two dimensions (biases, norm gains, scalars) take the Adam
    step :math:`a_t` alone and keep no factor statistics. With ``start_preconditioning_step``
    beyond the run this is exactly AdamW (``nesterov=True``: trainlab's NAdamW).

    **Blocking.** Every dimension longer than ``max_preconditioner_dim`` is cut into
    consecutive chunks of ``max_preconditioner_dim`` (the last one shorter, as
    ``Tensor.split`` does), and the parameter into the grid of blocks these chunks make;
    blocks are numbered row-major (the first dimension varies slowest). A 10 x 3 weight with
    ``max_preconditioner_dim=4`` is three blocks, rows 0-3, 4-7 and 8-9, with factors
    (4x4, 3x3), (4x4, 3x3) and (2x2, 3x3). Each block has its own statistics, roots and
    grafting norm; the block's order :math:`k` is the parameter's ``ndim`` (dimensions of
    size 1 included: their 1x1 factors only scale the block, which grafting undoes).

    **Choices where the papers leave it open** (after Shi et al.'s implementation unless said):
    the factor statistics use the raw gradient, the preconditioner is applied to the
    bias-corrected first moment :math:`\hat n_t`; Adam grafting shares :math:`\beta_2` with
    the factor statistics (as in the AlgoPerf submission) but has its own
    :math:`\epsilon_a`; the factors are bias-corrected by :math:`1 - \beta_2^t` before the
    root (which only matters relative to :math:`\epsilon`); the eigendecomposition is taken in
    float64 whatever the parameter's dtype (eigenvalues below 0, rounding errors of a
    positive semi-definite matrix, are clamped to 0 before :math:`\epsilon` is added), the
    roots are stored in the parameter's dtype; the roots are first computed at step
    :math:`S` and then every :math:`F` steps (a root that is missing when needed, for
    instance after :math:`S` was lowered, is computed at once); the exponent is the paper's
    :math:`p = 2k` (Shi et al. use :math:`2` for every factor of a merged matrix); dimensions
    are not merged; the Nesterov look-ahead and its bias correction :math:`1 - \beta_1^t` are
    those of the AlgoPerf NAdamW; weight decay is decoupled, torch-AdamW-style
    (:math:`\eta\lambda` per step, applied first); the step count is per parameter.

    **Left out of Shi et al.'s distributed version**: distributing blocks across workers
    (and the all-gather of the search directions), merging small dimensions, the
    coupled-Newton and QR inverse-root methods (only the symmetric eigendecomposition),
    the separate heavy-ball momentum on top of the filtered gradient (here ``betas[0]`` is
    the one momentum), grafting types other than Adam, preconditioner dtypes other than the
    parameter's, precision-fallback and error-tolerance logic (a failed ``eigh`` raises), the
    AdaGrad limit :math:`\beta_2 = 1`.

    Args:
        params (iterable): parameters, or dicts defining parameter groups.
        lr (float or Tensor, optional): :math:`\eta \ge 0` (default: 1e-3).
        betas (tuple[float, float], optional): :math:`(\beta_1, \beta_2)`, each in [0, 1):
            the first moment and the EMA of both the factor statistics and Adam's second
            moment (default: (0.9, 0.999)).
        epsilon (float, optional): :math:`\epsilon > 0`, added to the eigenvalues of each
            (bias-corrected) factor before the inverse root (default: 1e-12).
        weight_decay (float, optional): :math:`\lambda \ge 0`, decoupled (default: 0).
        graft_eps (float, optional): :math:`\epsilon_a \ge 0` of the Adam direction
            (default: 1e-8).
        nesterov (bool, optional): use the Nesterov look-ahead :math:`n_t` (default: False).
        max_preconditioner_dim (int, optional): the longest block side, >= 1 (default: 1024).
        precondition_frequency (int, optional): :math:`F \ge 1`, steps between root
            recomputations (default: 20).
        start_preconditioning_step (int, optional): :math:`S \ge 1`, the first step that uses
            the preconditioner; ``None`` means :math:`F` (default: None).
        inv_root_override (int, optional): :math:`p` for every factor if > 0; 0 means
            :math:`2k` (default: 0).
        foreach (bool, optional): multi-tensor kernels for the elementwise (Adam, decay)
            parts if not False (default: None). The preconditioning is a loop over blocks
            either way.
        maximize (bool, optional): maximize the objective (default: False).

    State per parameter: ``step``, ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`v`), and
    for preconditioned ones ``factor{b}.{i}`` (:math:`L_i` of block ``b``) and, once
    computed, ``inv_root{b}.{i}`` (:math:`Q_i`). The blocks follow from the shape and
    ``max_preconditioner_dim``: changing it after the first step raises ``RuntimeError``.
    Memory: :math:`2 \sum_i d_i^2` per block on top of Adam's two buffers. Cost: two
    matrix products per dimension and block every step, one ``eigh`` per dimension and
    block every :math:`F` steps (on an accelerator each ``eigh`` synchronises with the host).

    Not supported: ``differentiable``, ``capturable``, ``fused`` (``ValueError`` if True),
    sparse gradients (``RuntimeError``). Complex parameters are updated as their real view
    (so a complex vector is preconditioned as an n x 2 matrix). Out-of-range arguments raise
    ``ValueError`` naming the argument.

    Papers: V. Gupta, T. Koren and Y. Singer, "Shampoo: Preconditioned Stochastic Tensor
    Optimization", ICML 2018, https://arxiv.org/abs/1802.09568 (Algorithm 2); R. Anil et al.,
    "Scalable Second Order Optimization for Deep Learning", 2020,
    https://arxiv.org/abs/2002.09018 (grafting, blocking, EMA statistics); H.-J. M. Shi et
    al., "A Distributed Data-Parallel PyTorch Implementation of the Distributed Shampoo
    Optimizer for Training Neural Networks At-Scale", 2023, https://arxiv.org/abs/2309.06497.

    Example:
        >>> import torch
        >>> from trainlab.optim import Shampoo
        >>> model = torch.nn.Linear(3, 2)
        >>> opt = Shampoo(model.parameters(), lr=1e-3, precondition_frequency=1)
        >>> before = model.weight.detach().clone()
        >>> model(torch.ones(4, 3)).square().mean().backward()
        >>> opt.step()
        >>> bool((model.weight - before).abs().max() < 2e-3)  # grafted: Adam-sized steps
        True
    """

    def __init__(
        self,
        params: Params,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        epsilon: float = 1e-12,
        weight_decay: float = 0.0,
        *,
        graft_eps: float = 1e-8,
        nesterov: bool = False,
        max_preconditioner_dim: int = 1024,
        precondition_frequency: int = 20,
        start_preconditioning_step: int | None = None,
        inv_root_override: int = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        fused: bool | None = None,
    ) -> None:
        name = "Shampoo"
        check_betas(name, betas)
        check_positive(name, epsilon=epsilon)
        check_nonnegative(name, weight_decay=weight_decay, graft_eps=graft_eps)
        if start_preconditioning_step is None:
            start_preconditioning_step = precondition_frequency
        _check_int(name, "max_preconditioner_dim", max_preconditioner_dim, 1)
        _check_int(name, "precondition_frequency", precondition_frequency, 1)
        _check_int(name, "start_preconditioning_step", start_preconditioning_step, 1)
        _check_int(name, "inv_root_override", inv_root_override, 0)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            epsilon=epsilon,
            weight_decay=weight_decay,
            graft_eps=graft_eps,
            nesterov=nesterov,
            max_preconditioner_dim=max_preconditioner_dim,
            precondition_frequency=precondition_frequency,
            start_preconditioning_step=start_preconditioning_step,
            inv_root_override=inv_root_override,
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

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            params, grads, ms, vs, steps = group_tensors(
                self, group, ("exp_avg", "exp_avg_sq"), step=True
            )
            if not params:
                continue
            states = [self.state[p] for p in group["params"] if p.grad is not None]
            run_update(group, _foreach_shampoo, _single_shampoo, params, grads, ms, vs, steps,
                       states)  # fmt: skip
        return loss


def _check_int(opt: str, arg: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{opt}: {arg} must be an integer >= {low}, got {value!r}")


def blocks(t: Tensor, max_dim: int) -> list[Tensor]:
    """The blocks of ``t`` (views): every dimension cut into chunks of ``max_dim`` (the last
    one shorter), in row-major order of the grid of chunks (first dimension slowest)."""
    out = [t]
    for dim in range(t.ndim):
        out = [chunk for b in out for chunk in b.split(max_dim, dim)]
    return out


def _precondition(p, grad, first, direction, step, state, group) -> None:
    """Update the factor statistics of ``p`` from ``grad`` and, from step S on, replace each
    block of ``direction`` (holding the Adam direction) by the grafted Shampoo direction,
    computed from ``first`` (the bias-corrected first moment)."""
    b2, eps = group["betas"][1], group["epsilon"]
    start, freq = group["start_preconditioning_step"], group["precondition_frequency"]
    max_dim, order = group["max_preconditioner_dim"], p.ndim
    root = group["inv_root_override"] or 2 * order
    preconditioning = step >= start
    recompute = preconditioning and (step - start) % freq == 0
    grad_blocks = blocks(grad, max_dim)
    count = len(grad_blocks)
    if "factor0.0" not in state:  # the parameter's first step: zero statistics
        for b, g in enumerate(grad_blocks):
            state.update({f"factor{b}.{i}": g.new_zeros(g.shape[i], g.shape[i])
                          for i in range(order)})  # fmt: skip
    parts = zip(grad_blocks, blocks(first, max_dim), blocks(direction, max_dim), strict=True)
    for b, (g, n, d) in enumerate(parts):
        factors = _factors(state, b, g, order, count)
        if order == 2:  # the common case, in one kernel per factor
            factors[0].addmm_(g, g.T, beta=b2, alpha=1 - b2)
            factors[1].addmm_(g.T, g, beta=b2, alpha=1 - b2)
        else:
            for i, factor in enumerate(factors):
                others = [j for j in range(order) if j != i]
                factor.mul_(b2).add_(torch.tensordot(g, g, dims=(others, others)), alpha=1 - b2)
        if not preconditioning:
            continue
        roots = []
        for i, factor in enumerate(factors):
            key = f"inv_root{b}.{i}"
            if recompute or key not in state:
                state[key] = _inverse_root(factor / (1 - b2**step), root, eps)
            roots.append(state[key])
        if order == 2:
            pre = roots[0] @ n @ roots[1]
        else:
            pre = n
            for q in roots:  # contracting dim 0 each time cycles the dims back into their order
                pre = torch.tensordot(pre, q, dims=([0], [0]))
        # the graft: ||A|| / ||P||, and 0 where P = 0 (no host synchronisation to test it)
        scale = torch.linalg.vector_norm(d).div_(torch.linalg.vector_norm(pre))
        torch.mul(pre, scale.nan_to_num_(nan=0.0, posinf=0.0), out=d)


def _factors(state: dict, b: int, g: Tensor, order: int, count: int) -> list[Tensor]:
    """The factor statistics of block ``b`` (of ``count``, ``g`` its gradient);
    ``RuntimeError`` if the stored ones do not fit the blocks."""
    factors = [state.get(f"factor{b}.{i}") for i in range(order)]
    fits = all(f is not None and f.shape[0] == g.shape[i] for i, f in enumerate(factors))
    if not fits or f"factor{count}.0" in state:
        raise RuntimeError(
            "Shampoo: the stored factor statistics do not fit the parameter's blocks "
            "(max_preconditioner_dim changed after the first step?)"
        )
    return factors


def _inverse_root(matrix: Tensor, root: int, eps: float) -> Tensor:
    """``(matrix + eps I)^(-1/root)`` of a symmetric positive semi-definite ``matrix``, via
    its eigendecomposition in float64 (eigenvalues clamped at 0 first), in ``matrix``'s
    dtype."""
    values, vectors = torch.linalg.eigh(matrix.double())
    powers = values.clamp(min=0).add_(eps).pow_(-1.0 / root)
    return ((vectors * powers) @ vectors.T).to(matrix.dtype)


def _single_shampoo(params, grads, ms, vs, steps, states, group) -> None:
    lr, (b1, b2), wd = lr_of(group), group["betas"], group["weight_decay"]
    eps, nesterov = group["graft_eps"], group["nesterov"]
    for p, g, m, v, t, state in zip(params, grads, ms, vs, steps, states, strict=True):
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        first = (g.lerp(m, b1) if nesterov else m).div(1 - b1**t)
        direction = first / (v.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
        if p.ndim >= 2:
            _precondition(p, g, first, direction, t, state, group)
        if wd != 0:
            p.mul_(1 - lr * wd)
        p.add_(direction, alpha=-lr)


def _foreach_shampoo(params, grads, ms, vs, steps, states, group) -> None:
    lr, (b1, b2), wd = lr_of(group), group["betas"], group["weight_decay"]
    eps, nesterov = group["graft_eps"], group["nesterov"]
    torch._foreach_lerp_(ms, grads, 1 - b1)
    torch._foreach_mul_(vs, b2)
    torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
    first = torch._foreach_lerp(grads, ms, b1) if nesterov else ms
    first = torch._foreach_div(first, [1 - b1**t for t in steps])
    denom = torch._foreach_sqrt(vs)
    torch._foreach_div_(denom, [math.sqrt(1 - b2**t) for t in steps])
    torch._foreach_add_(denom, eps)
    directions = torch._foreach_div(first, denom)
    for p, g, n, d, t, state in zip(params, grads, first, directions, steps, states, strict=True):
        if p.ndim >= 2:
            _precondition(p, g, n, d, t, state, group)
    if wd != 0:
        torch._foreach_mul_(params, 1 - lr * wd)
    torch._foreach_add_(params, directions, alpha=-lr)
