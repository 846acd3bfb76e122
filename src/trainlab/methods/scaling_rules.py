"""Learning-rate / batch-size scaling rules.

When the batch size changes from ``B0`` to ``B`` (ratio ``k = B / B0``), a tuned learning rate
``lr0`` should move with it:

- **Linear** rule, ``lr = lr0 * k``, for SGD (with or without momentum), and **square-root**
  rule, ``lr = lr0 * sqrt(k)``, for adaptive methods of the Adam family: Granziol, Zohren &
  Roberts, "Learning Rates as a Function of Batch Size: A Random Matrix Theory Approach to
  Neural Network Training" (2020; JMLR 2022). Their derivation holds while the batch is small
  against the data set (the curvature noise of the mini-batch Hessian dominates); the optional
  ``max_batch_size`` stops the scaling there (our addition, off by default).
- **Regime adaptation**: Hoffer, Hubara & Soudry, "Train longer, generalize better: closing the
  generalization gap in large batch training of neural networks" (2017). A large batch
  ``B = k B0`` keeps the small batch's *number of updates*: the epoch budget and every epoch
  milestone are multiplied by ``k`` (so steps, and step milestones, stay the same), and the lr
  grows by ``sqrt(k)`` (keeping the variance of the weight update as with ``B0``). The paper's
  other ingredient, Ghost Batch Normalization, is :mod:`trainlab.methods.ghost_batchnorm`.

:func:`rule_for_optimizer` also covers trainlab's own optimizers outside Granziol et al.'s two
families (choices where no paper gives a batch-size rule):

- **Lion** (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023): square root.
  Its update is the sign of a momentum, the limit of an Adam step whose second moment is the
  current gradient's square; Malladi, Lyu, Panigrahi & Arora, "On the SDEs and Scaling Rules
  for Adaptive Gradient Algorithms" (NeurIPS 2022), derive the square-root rule for that
  family. The Lion paper itself gives no rule (it reports Lion's gain over AdamW growing with
  the batch size).
- **Learning-rate-free methods** — DoG (Ivgi, Hinder & Carmon, 2023), Prodigy (Mishchenko &
  Defazio, 2023), D-Adaptation (Defazio & Mishchenko, 2023): ``"none"``. They estimate the
  step size from the distance travelled and the observed gradients, so a larger batch (smaller
  gradient noise) changes their step by itself; their ``lr`` is a multiplier of that estimate
  which the papers keep at 1 whatever the batch. Scaling it would double-count.

Plain PyTorch use:

>>> rule = rule_for_optimizer(torch.optim.SGD)
>>> rule, scale_lr(0.1, base_batch_size=128, batch_size=1024, rule=rule)
('linear', 0.8)
>>> regime = hoffer_regime(Regime(lr=0.1, batch_size=128, epochs=10, milestones=(5, 8)), 1024)
>>> regime.epochs, regime.milestones, round(regime.lr, 4)   # same number of updates
(80.0, (40.0, 64.0), 0.2828)
>>> model = torch.nn.Linear(2, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=regime.lr, momentum=0.9)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RULES = ("linear", "sqrt", "none")

#: optimizer class names (lower case) that follow the square-root rule
ADAPTIVE_OPTIMIZERS = frozenset(
    {"adam", "adamw", "nadam", "nadamw", "radam", "adamax", "adagrad", "rmsprop", "lamb", "adan"}
)
#: optimizer class names that follow the linear rule
SGD_OPTIMIZERS = frozenset({"sgd", "sgdw", "nesterov", "heavyball", "lars"})
#: sign-based updates: the square-root rule of adaptive methods (see the module docstring)
SIGN_OPTIMIZERS = frozenset({"lion"})
#: learning-rate-free methods: ``lr`` is a multiplier of their own estimate, not scaled
LR_FREE_OPTIMIZERS = frozenset(
    {"dog", "ldog", "prodigy", "dadaptadam", "dadaptsgd", "dadaptadagrad", "dadaptlion"}
)


def lr_multiplier(
    base_batch_size: int, batch_size: int, rule: str, max_batch_size: int | None = None
) -> float:
    """The factor ``k`` (linear), ``sqrt(k)`` (sqrt) or 1 (none), ``k = B / B0``; with
    ``max_batch_size``, ``B`` is clipped to it first. The linear and square-root rules of
    Granziol, Zohren & Roberts, "Learning Rates as a Function of Batch Size: A
    Random Matrix Theory Approach to Neural Network Training" (JMLR 2022); the linear one
    also Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017).

    >>> lr_multiplier(128, 512, "linear"), lr_multiplier(128, 512, "sqrt")
    (4.0, 2.0)
    """
    if base_batch_size <= 0 or batch_size <= 0:
        raise ValueError("batch sizes must be positive")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    if max_batch_size is not None:
        batch_size = min(batch_size, max(max_batch_size, base_batch_size))
    k = batch_size / base_batch_size
    return {"linear": k, "sqrt": math.sqrt(k), "none": 1.0}[rule]


def scale_lr(
    lr: float,
    base_batch_size: int,
    batch_size: int,
    rule: str = "linear",
    max_batch_size: int | None = None,
) -> float:
    """``lr`` tuned at ``base_batch_size`` moved to ``batch_size`` by ``rule`` (see
    :func:`lr_multiplier`; Granziol et al. (2022), Goyal et al. (2017)).

    >>> scale_lr(1e-3, base_batch_size=64, batch_size=256, rule="sqrt")
    0.002
    """
    return lr * lr_multiplier(base_batch_size, batch_size, rule, max_batch_size)


def rule_for_optimizer(optimizer: torch.optim.Optimizer | type | str) -> str:
    """The batch-size rule for an optimizer (instance, class or name): ``"sqrt"`` for the Adam
    family, other per-coordinate adaptive methods and Lion, ``"linear"`` for SGD variants
    (Granziol et al. (2022)), ``"none"`` for learning-rate-free DoG, Prodigy and D-Adaptation (their
    ``lr`` multiplies a step size they estimate themselves).

    >>> rule_for_optimizer(torch.optim.SGD), rule_for_optimizer("AdamW")
    ('linear', 'sqrt')
    >>> rule_for_optimizer("Lion"), rule_for_optimizer("Prodigy")
    ('sqrt', 'none')
    """
    if isinstance(optimizer, str):
        name = optimizer
    elif isinstance(optimizer, type):
        name = optimizer.__name__
    else:
        name = type(optimizer).__name__
    key = name.lower()
    if key in ADAPTIVE_OPTIMIZERS or key in SIGN_OPTIMIZERS:
        return "sqrt"
    if key in SGD_OPTIMIZERS:
        return "linear"
    if key in LR_FREE_OPTIMIZERS:
        return "none"
    raise ValueError(f"no scaling rule known for optimizer {name!r}; pass rule= explicitly")


def granziol_lr(
    lr: float,
    base_batch_size: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer | type | str,
    max_batch_size: int | None = None,
) -> float:
    """``lr`` moved from ``base_batch_size`` to ``batch_size`` by the rule for ``optimizer``
    (:func:`rule_for_optimizer`): Granziol, Zohren & Roberts, "Learning Rates as a Function of
    Batch Size: A Random Matrix Theory Approach to Neural Network Training" (JMLR 2022).

    >>> granziol_lr(0.1, 128, 512, torch.optim.SGD), granziol_lr(1e-3, 128, 512, "Adam")
    (0.4, 0.002)
    """
    return scale_lr(lr, base_batch_size, batch_size, rule_for_optimizer(optimizer), max_batch_size)


def scale_optimizer_lr(
    optimizer: torch.optim.Optimizer,
    factor: float,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> None:
    """Multiply every parameter group's ``lr`` (and ``initial_lr`` when present) by ``factor``
    in place. A scheduler built earlier keeps its own copy of the base lrs: pass it as
    ``scheduler`` to scale those too.

    >>> opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    >>> scale_optimizer_lr(opt, 4.0)
    >>> opt.param_groups[0]["lr"]
    0.4
    """
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    if scheduler is not None:
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]


@dataclass(frozen=True)
class Regime:
    """A training regime: learning rate, batch size, epoch budget and lr-decay milestones (in
    epochs); :func:`hoffer_regime` adapts one to a larger batch."""

    lr: float
    batch_size: int
    epochs: float
    milestones: tuple[float, ...] = ()

    def steps(self, dataset_size: int) -> int:
        """Updates in the regime (``epochs * dataset_size / batch_size``, rounded)."""
        return round(self.epochs * dataset_size / self.batch_size)

    def milestone_steps(self, dataset_size: int) -> tuple[int, ...]:
        return tuple(round(m * dataset_size / self.batch_size) for m in self.milestones)


def hoffer_regime(base: Regime, batch_size: int) -> Regime:
    """Hoffer et al.'s regime adaptation of ``base`` to ``batch_size``: with
    ``k = batch_size / base.batch_size``, epochs and milestones times ``k`` (the same number of
    updates) and ``lr * sqrt(k)``. Paper: Hoffer, Hubara & Soudry, "Train longer, generalize
    better: closing the generalization gap in large batch training of neural networks"
    (NeurIPS 2017)."""
    if batch_size <= 0:
        raise ValueError("batch size must be positive")
    k = batch_size / base.batch_size
    return Regime(
        lr=base.lr * math.sqrt(k),
        batch_size=batch_size,
        epochs=base.epochs * k,
        milestones=tuple(m * k for m in base.milestones),
    )
