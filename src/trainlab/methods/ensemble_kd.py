"""Ensemble distillation: a student learns only from the averaged softmax of several teachers.

Paper: Zhiqiang Shen, Marios Savvides, "MEAL V2: Boosting Vanilla ResNet-50 to 80%+ Top-1
Accuracy on ImageNet without Tricks" (arXiv:2009.08453, 2020).

Rule implemented. Several teachers are trained first; the soft target for an input is the mean
of the teachers' softmax outputs, ``t(x) = (1/K) sum_k softmax(f_k(x))``, and the student
minimises the cross-entropy to ``t(x)`` (equal to the KL divergence ``KL(t || p_student)`` up to
a constant). The one-hot labels are never used by the student.

Choices where the paper is open or that we simplify:

* MEAL V2 also trains a discriminator on the student's and teachers' outputs and starts the
  student from pre-trained weights; we keep only the averaged-softmax similarity loss (the part
  that distils the ensemble) and start the student from scratch.
* Temperature 1 (as in MEAL V2); teachers in eval mode; targets may be cached per training
  example (:class:`TeacherTargets`) because the teachers are frozen.

A plain PyTorch loop (teachers trained first; the student never sees a label):

>>> import torch, torch.nn.functional as F
>>> from torch import nn
>>> from trainlab.nn_utils import soft_cross_entropy
>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(128, 4, generator=g)
>>> Y = (X[:, 0] > 0).long()
>>> def trained(seed):
...     net = nn.Linear(4, 2)
...     opt = torch.optim.SGD(net.parameters(), lr=0.5)
...     for _ in range(50):
...         opt.zero_grad(); F.cross_entropy(net(X), Y).backward(); opt.step()
...     return net
>>> teachers = [trained(s) for s in (1, 2)]
>>> student = nn.Linear(4, 2)
>>> opt = torch.optim.SGD(student.parameters(), lr=0.5)
>>> for x in X.split(32):                                       # inputs only
...     target = ensemble_soft_targets(teachers, x)
...     loss = soft_cross_entropy(student(x), target).mean()   # KL(target || student) + const
...     opt.zero_grad(); loss.backward(); opt.step()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor, nn

from trainlab.nn_utils import evaluating

X = TypeVar("X")


@torch.no_grad()
def ensemble_soft_targets(
    teachers: Sequence[nn.Module],
    inputs: X,
    forward: Callable[[nn.Module, X], Tensor] | None = None,
) -> Tensor:
    """Mean softmax of ``teachers`` on ``inputs`` (teachers run in eval mode; their mode is
    restored afterwards). ``inputs`` is whatever ``forward(model, inputs)`` takes (a tensor, a
    batch object); ``forward`` defaults to ``model(inputs)``.
    The soft targets of Shen & Savvides, "MEAL V2: Boosting Vanilla ResNet-50 to 80%+ Top-1 Accuracy
    on ImageNet without Tricks" (arXiv:2009.08453, 2020)."""
    if not teachers:
        raise ValueError("need at least one teacher")
    total = None
    for t in teachers:
        with evaluating(t):
            out = forward(t, inputs) if forward is not None else t(inputs)
        p = out.float().softmax(-1)
        total = p if total is None else total + p
    return total / len(teachers)


class TeacherTargets:
    """Teacher soft targets for a fixed training set, computed once and looked up by index.

    ``compute(indices) -> soft targets`` is called once per chunk of the training set. Freshly
    generated examples (negative indices) have no entry: compute theirs with
    :func:`ensemble_soft_targets`.

    Paper: Shen & Savvides, "MEAL V2: Boosting Vanilla ResNet-50 to 80%+ Top-1 Accuracy on ImageNet
    without Tricks" (arXiv:2009.08453, 2020).
    """

    def __init__(
        self,
        num_examples: int,
        compute: Callable[[Tensor], Tensor],
        chunk_size: int = 1024,
    ) -> None:
        parts = [
            compute(torch.arange(s, min(s + chunk_size, num_examples)))
            for s in range(0, num_examples, chunk_size)
        ]
        self.table = torch.cat(parts)

    def __call__(self, indices: Tensor) -> Tensor:
        idx = indices.to(self.table.device).long()
        if bool((idx < 0).any()):
            raise KeyError("freshly generated examples (index -1) have no cached teacher targets")
        return self.table[idx]
