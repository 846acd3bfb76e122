"""Learning-rate schedules as pure functions of the step.

Every schedule has the signature ``f(step, total_steps, **params) -> float`` and returns the
*multiplier* of the base learning rate at update ``step`` (0-based) of a run whose budget is
``total_steps`` updates. Past ``total_steps`` a schedule holds its final value. Keeping them
pure makes them testable against their formulas and usable anywhere; :func:`lambda_lr`
adapts one to ``torch.optim.lr_scheduler.LambdaLR`` for a plain PyTorch loop:

>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> sched = lambda_lr(opt, warmup_cosine, total_steps=100, warmup_steps=10)
>>> lrs = []
>>> for step in range(100):
...     loss = model(torch.ones(4, 2)).pow(2).mean()
...     opt.zero_grad(); loss.backward(); opt.step(); sched.step()
...     lrs.append(opt.param_groups[0]["lr"])
>>> round(lrs[8], 4), round(lrs[54], 4)     # the peak after warmup; half way down the cosine
(0.1, 0.05)

The schedule-part names of composed benchmark recipes (``-a nadamw+one_cycle``) are these
functions' names.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

Schedule = Callable[..., float]


def _progress(step: int, total_steps: int) -> float:
    """Fraction of the budget done, clipped to [0, 1]."""
    if total_steps <= 0:
        return 1.0
    return min(max(step / total_steps, 0.0), 1.0)


def constant(step: int, total_steps: int) -> float:
    """The base learning rate throughout."""
    return 1.0


def cosine(step: int, total_steps: int, final_fraction: float = 0.0) -> float:
    """Cosine decay (Loshchilov & Hutter, "SGDR", 2017, without restarts):
    ``f = final + (1 - final) * (1 + cos(pi * t / T)) / 2``."""
    p = _progress(step, total_steps)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * p))


def linear_warmup(
    step: int, total_steps: int, warmup_steps: int, after: Schedule = constant, **params: float
) -> float:
    """Linear warmup for ``warmup_steps`` updates, then ``after`` over the remaining budget.

    Warmup multiplier: ``(step + 1) / warmup_steps``, so the first update already moves
    (choice: the ``step / warmup_steps`` form of some codebases wastes update 0 on lr = 0).
    The wrapped schedule sees ``step - warmup_steps`` of ``total_steps - warmup_steps``, so
    the whole run, warmup included, ends at ``total_steps``.

    >>> [linear_warmup(s, 30, 10, linear_decay) for s in (0, 9, 10, 20, 30)]
    [0.1, 1.0, 1.0, 0.5, 0.0]
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return after(step - warmup_steps, max(total_steps - warmup_steps, 0), **params)


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0
) -> float:
    """Linear warmup then cosine decay: the AlgoPerf baselines' schedule."""
    return linear_warmup(step, total_steps, warmup_steps, cosine, final_fraction=final_fraction)


# --------------------------------------------------------------------------------------------
# Decay shapes for a known budget


def step_decay(
    step: int, total_steps: int, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.1
) -> float:
    """Step decay (piecewise constant), the schedule of He et al., "Deep Residual Learning for
    Image Recognition" (2016) and of the "30-60-90" ImageNet recipe.

    ``f = gamma ** k`` where ``k`` counts the milestones passed, a milestone ``m`` (a fraction
    of the budget) being passed once ``step >= m * total_steps``. Choice: milestones are
    fractions of the budget rather than absolute steps, so the shape survives a change of
    budget (the default (0.5, 0.75) is the CIFAR ResNet recipe's 32k/48k of 64k).
    """
    passed = sum(1 for m in milestones if step >= m * total_steps)
    return gamma**passed


def linear_decay(step: int, total_steps: int, final_fraction: float = 0.0) -> float:
    """Linear decay to ``final_fraction``: ``f = final + (1 - final) * (1 - t / T)``.

    The budget-aware schedule of Li, Yumer & Ramanan, "Budgeted Training: Rethinking Deep Neural
    Network Training Under Resource Constraints" (2020), and the worst-case optimal last-iterate
    schedule of Defazio et al., "When, Why and How Much? Adaptive Learning Rate Scheduling by
    Refinement" (2023). Compose with :func:`linear_warmup` for a warmup.
    """
    p = _progress(step, total_steps)
    return final_fraction + (1.0 - final_fraction) * (1.0 - p)


def _interpolate(a: float, b: float, x: float, anneal: str) -> float:
    """From ``a`` (x = 0) to ``b`` (x = 1), linearly or along a half cosine."""
    if anneal == "linear":
        return a + (b - a) * x
    if anneal == "cos":
        return a + (b - a) * 0.5 * (1.0 - math.cos(math.pi * x))
    raise ValueError(f"anneal must be 'linear' or 'cos', not {anneal!r}")


def one_cycle(
    step: int,
    total_steps: int,
    pct_start: float = 0.45,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = True,
    anneal: str = "linear",
) -> float:
    """The 1cycle policy of Smith & Topin, "Super-Convergence: Very Fast Training of Neural
    Networks Using Large Learning Rates" (2019). The base lr is the cycle's *maximum*.

    With ``p = t / T``, ``lo = 1 / div_factor`` and ``end = lo / final_div_factor``:

    - three-phase (the paper's shape: one cycle of two equal steps, then an annihilation phase):
      ``lo -> 1`` over ``[0, pct)``, ``1 -> lo`` over ``[pct, 2 pct)``, ``lo -> end`` over
      ``[2 pct, 1]``;
    - two-phase (fastai / ``torch.optim.lr_scheduler.OneCycleLR``): ``lo -> 1`` over
      ``[0, pct)``, ``1 -> end`` over ``[pct, 1]``.

    Each piece is linear (``anneal="linear"``, as in the paper) or a half cosine
    (``anneal="cos"``). Choices where the paper is open: the cycle takes 90 % of the budget
    (``pct_start=0.45``), and the magnitudes ``div_factor=25``, ``final_div_factor=1e4`` are
    fastai's. The paper's inverse momentum cycling is an optimizer setting, not part of this lr
    multiplier.
    """
    if not 0.0 < pct_start < (0.5 if three_phase else 1.0):
        raise ValueError(f"pct_start={pct_start} out of range for three_phase={three_phase}")
    p = _progress(step, total_steps)
    lo = 1.0 / div_factor
    end = lo / final_div_factor
    if p < pct_start:
        return _interpolate(lo, 1.0, p / pct_start, anneal)
    if not three_phase:
        return _interpolate(1.0, end, (p - pct_start) / (1.0 - pct_start), anneal)
    if p < 2.0 * pct_start:
        return _interpolate(1.0, lo, (p - pct_start) / pct_start, anneal)
    return _interpolate(lo, end, (p - 2.0 * pct_start) / (1.0 - 2.0 * pct_start), anneal)


def inverse_sqrt(
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    timescale: int = 0,
    cooldown_steps: int = 0,
) -> float:
    """Inverse square root decay with linear warmup: Vaswani et al., "Attention Is All You
    Need" (2017), ``lr = d^-0.5 * min(s^-0.5, s * w^-1.5)``, normalized to peak 1.

    With ``s = step + 1`` and ``tau = max(timescale, warmup_steps, 1)``::

        f = s / warmup_steps               for step < warmup_steps
        f = sqrt(tau / max(s, tau))        afterwards

    With ``timescale = 0`` this is exactly Vaswani's formula times ``sqrt(warmup_steps)``;
    a larger ``timescale`` holds the peak until step ``tau`` (the T5 form ``1/sqrt(max(s, k))``).
    The decay ignores ``total_steps``: the schedule is budget-free. Optional
    ``cooldown_steps`` multiply the last steps by a linear ramp ``(T - step) / cooldown_steps``
    to zero (the "rsqrt + cooldown" of Zhai et al., "Scaling Vision Transformers", 2022);
    default off.
    """
    s = step + 1
    if step < warmup_steps:
        f = s / warmup_steps
    else:
        tau = max(timescale, warmup_steps, 1)
        f = math.sqrt(tau / max(s, tau))
    if cooldown_steps > 0 and step >= total_steps - cooldown_steps:
        f *= max(total_steps - step, 0) / cooldown_steps
    return f


def rex(step: int, total_steps: int, beta: float = 0.5) -> float:
    """REX, the reflected-exponential profile of Chen, Wolfe & Kyrillidis, "REX: Revisiting
    Budgeted Training with an Improved Schedule" (2021; MLSys 2022), sampled every update.

    With ``z = t / T`` the paper's profile is ``f = (1 - z) / (1/2 + (1 - z) / 2)``, which is
    ``(1 - z) / (1 - beta * z)`` with ``beta = 1/2``. ``beta`` generalizes it (``0`` is linear
    decay; towards ``1`` the lr stays high longer and drops at the end); the default is the
    paper's. The paper's choice of *sampling rate* is every iteration, which a per-step
    multiplier gives.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta={beta} must be in [0, 1)")
    z = _progress(step, total_steps)
    return (1.0 - z) / (1.0 - beta * z)


_COOLDOWN_SHAPES: dict[str, Callable[[float], float]] = {
    "linear": lambda x: 1.0 - x,
    "cosine": lambda x: 0.5 * (1.0 + math.cos(math.pi * x)),
    "1-sqrt": lambda x: 1.0 - math.sqrt(x),
}


def wsd(
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    decay_steps: int | None = None,
    shape: str = "1-sqrt",
    final_fraction: float = 0.0,
) -> float:
    """Warmup-stable-decay (WSD, "trapezoidal"): Hu et al., "MiniCPM" (2024), and Hägele et
    al., "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations" (2024).

    Linear warmup ``(step + 1) / warmup_steps``, then ``f = 1`` until the cooldown starts at
    ``T - D`` (``D = decay_steps``), then with ``x = (step - (T - D)) / D`` in ``[0, 1]``::

        f = final + (1 - final) * g(x),   g = 1 - x (linear), (1 + cos(pi x)) / 2 (cosine),
                                           1 - sqrt(x) (1-sqrt)

    Choices: ``decay_steps`` defaults to 20 % of the budget and ``shape`` to 1-sqrt, the
    combination Hägele et al. find matches cosine; MiniCPM's exponential cooldown is not
    included.
    """
    if shape not in _COOLDOWN_SHAPES:
        raise ValueError(f"shape must be one of {sorted(_COOLDOWN_SHAPES)}, not {shape!r}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay_steps is None:
        decay_steps = round(0.2 * total_steps)
    start = total_steps - decay_steps
    if decay_steps <= 0 or step < start:  # the stable phase (forever without a cooldown)
        return 1.0
    x = min((step - start) / decay_steps, 1.0)
    return final_fraction + (1.0 - final_fraction) * _COOLDOWN_SHAPES[shape](x)


def infinite(
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    cooldown_steps: int = 0,
    anneal_steps: int = 0,
    constant_factor: float = 0.25,
    min_factor: float = 0.01,
) -> float:
    """The infinite learning-rate schedule, as studied in Singh et al., "Beyond Cosine Decay: On
    the effectiveness of Infinite Learning Rate Schedule for Continual Pre-training" (2025)
    (after Ibrahim et al., "Simple and Scalable Strategies to Continually Pre-train Large
    Language Models", 2024). Four phases, with ``W, C, A`` the warmup, cooldown and anneal
    lengths and ``c = constant_factor``, ``m = min_factor``::

        warmup    step < W:            f = (step + 1) / W
        cooldown  W <= step < W + C:    f = c + (1 - c) (1 + cos(pi (step - W) / C)) / 2
        constant  W + C <= step < T - A: f = c
        anneal    T - A <= step:        f = c * (m / c) ** ((step - (T - A)) / A)

    The constant phase can run for any number of steps; a checkpoint can be annealed at any
    time. Choice: the annealing exponent is normalized by ``A`` so that the lr reaches exactly
    ``m`` at the end of the budget (the paper writes the exponent with its own step constants;
    the exponential shape is the same). Defaults for ``c`` and ``m`` are ours.
    """
    if warmup_steps + cooldown_steps + anneal_steps > total_steps:
        raise ValueError("warmup_steps + cooldown_steps + anneal_steps exceed total_steps")
    if not 0.0 < min_factor <= constant_factor <= 1.0:
        raise ValueError("need 0 < min_factor <= constant_factor <= 1")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step < warmup_steps + cooldown_steps:
        x = (step - warmup_steps) / cooldown_steps
        return constant_factor + (1.0 - constant_factor) * 0.5 * (1.0 + math.cos(math.pi * x))
    anneal_start = total_steps - anneal_steps
    if step < anneal_start:
        return constant_factor
    if anneal_steps <= 0:
        return constant_factor
    x = min((step - anneal_start) / anneal_steps, 1.0)
    return constant_factor * (min_factor / constant_factor) ** x


def rewarm(
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    start_factor: float = 0.0,
    peak_factor: float = 1.0,
    final_fraction: float = 0.1,
) -> float:
    """Re-warming for continual pre-training: Gupta et al., "Continual Pre-Training of Large
    Language Models: How to (re)warm your model?" (2023).

    A run that continues from a checkpoint re-warms linearly from ``start_factor`` (the
    multiplier the previous run ended on, often its minimum; 0 by default) to the new maximum
    ``peak_factor`` over ``warmup_steps``, then decays along a cosine to
    ``final_fraction * peak_factor``::

        f = start + (peak - start) (step + 1) / W                        for step < W
        f = peak (final + (1 - final) (1 + cos(pi (step - W) / (T - W))) / 2)  afterwards

    The paper's default is the last: decay to a tenth of the maximum; the warmup length (it
    studies 0.5 % to 2 % of the budget) and the new maximum are the arguments.
    """
    if step < warmup_steps:
        return start_factor + (peak_factor - start_factor) * (step + 1) / warmup_steps
    p = _progress(step - warmup_steps, total_steps - warmup_steps)
    return peak_factor * (
        final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * p))
    )


# --------------------------------------------------------------------------------------------
# Schedules refined from a previous run


def refined(
    grad_norms: Sequence[float] | np.ndarray, smoothing: float = 0.05, power: float = 2.0
) -> np.ndarray:
    """The refined schedule of Defazio, Cutkosky, Mehta & Mishchenko, "When, Why and How Much?
    Adaptive Learning Rate Scheduling by Refinement" (2023).

    Given the per-step gradient norms ``g_1..g_T`` of a previous run (same budget), returns the
    multipliers ``f_1..f_T`` for the next run::

        g   <- median filter of g with window 2 * floor(smoothing * T / 2) + 1
        w_t  = g_t ** -power
        f_t  = w_t * sum_{p > t} w_p,   then f <- f / max(f)      (so f_T = 0, peak 1)

    ``power=2`` with l2 norms is the paper's schedule for SGD; for Adam-type methods the paper
    weights by the l1 norm of the gradient to the power 1 (pass those norms and ``power=1``).
    Choices: the median filter (the paper's smoothing) treats the ends as the authors' code
    does: the end of the series is padded by reflection (two filter widths) before filtering
    and the padding dropped, so the last steps are smoothed over a full window of real values
    (gradient norms often move fast at the end of a run); the start repeats the first value
    (``mode="nearest"``). Normalizing to a peak of 1 makes the base lr the refined schedule's
    maximum (the authors divide by a tail sum instead; a constant factor either way). Use it
    with :func:`array_schedule`:

    >>> model = torch.nn.Linear(2, 1)
    >>> def run(opt, sched, steps=40):
    ...     norms = []
    ...     for _ in range(steps):
    ...         loss = model(torch.randn(8, 2)).pow(2).mean()
    ...         opt.zero_grad(); loss.backward()
    ...         norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9).item())
    ...         opt.step(); sched.step()
    ...     return norms
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> norms = run(opt, lambda_lr(opt, linear_decay, total_steps=40))     # run 1
    >>> opt2 = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> sched2 = lambda_lr(opt2, array_schedule, total_steps=40, values=refined(norms))
    >>> _ = run(opt2, sched2)                                              # run 2, refined
    >>> refined([1.0, 1.0, 1.0, 1.0], smoothing=0.0).tolist()              # flat: linear decay
    [1.0, 0.6666666666666666, 0.3333333333333333, 0.0]
    """
    from scipy.ndimage import median_filter

    g = np.asarray(grad_norms, dtype=np.float64)
    if g.ndim != 1 or len(g) < 2:
        raise ValueError("need a 1-D sequence of at least two gradient norms")
    if not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError("gradient norms must be finite and positive")
    width = 2 * (int(smoothing * len(g)) // 2) + 1
    if width > 1:
        pad = 2 * width  # the authors' padding of the end
        g = median_filter(np.pad(g, (0, pad), mode="reflect"), size=width, mode="nearest")[:-pad]
    w = g**-power
    tail = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])  # sum_{p > t} w_p
    f = w * tail
    return f / f.max()


def array_schedule(step: int, total_steps: int, values: Sequence[float] | np.ndarray) -> float:
    """A schedule given as one multiplier per step (e.g. from :func:`refined`).

    ``f = values[floor(step * n / T)]`` with ``n = len(values)``: the array is stretched over the
    budget (index ``step`` when ``n == T``); past the budget it holds its last value.
    """
    n = len(values)
    if total_steps <= 0:
        return float(values[-1])
    idx = min(max(step, 0) * n // total_steps, n - 1)
    return float(values[idx])


def lambda_lr(
    optimizer: torch.optim.Optimizer, schedule: Schedule, total_steps: int, **params: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that multiplies every group's initial lr by
    ``schedule(step, total_steps, **params)``."""
    fn = functools.partial(_call_schedule, schedule, total_steps, params)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)


def _call_schedule(schedule: Schedule, total_steps: int, params: dict, step: int) -> float:
    # a module-level function (not a lambda) so the scheduler's state_dict stays picklable
    return schedule(step, total_steps, **params)
