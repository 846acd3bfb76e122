"""Soft distillation from an ancestor, the loss both Learngene methods train their auxiliary
model with, and the error raised for a descendant a learngene cannot initialise.

Paper (the loss): Touvron et al., "Training data-efficient image transformers & distillation
through attention" (DeiT, ICML 2021), whose soft distillation TLEG (Xia et al., AAAI 2024) and
SWS (Xia et al., IJCAI 2024) reuse: with student logits ``z_s``, teacher logits ``z_t``, labels
``y``, temperature ``tau`` and weight ``alpha``,

    loss = (1 - alpha) * CE(z_s, y) + alpha * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))

TLEG's released configuration uses ``alpha = 1`` and ``tau = 1`` (the student learns from the
ancestor alone), our defaults. The KL is taken per example (per position for a language model)
and averaged by the caller (DeiT divides the summed KL by the number of logits, a constant
factor of the class count that we leave out).

A plain PyTorch loop:

    teacher.eval()
    for x, y in loader:
        with torch.no_grad():
            t = teacher(x)
        loss = distillation_loss(student(x), t, y, alpha=1.0, tau=1.0)
        opt.zero_grad(); loss.backward(); opt.step()
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from trainlab.errors import TrainlabError


class LearngeneError(TrainlabError, ValueError):
    """A descendant the learngene cannot initialise (a depth it cannot produce, a layer whose
    shape does not match the learngene's)."""


def soft_distillation(student_logits: Tensor, teacher_logits: Tensor, tau: float = 1.0) -> Tensor:
    """``tau^2 KL(softmax(z_t / tau) || softmax(z_s / tau))`` over the last (class) axis, one
    value per example: shape ``student_logits.shape[:-1]``. The teacher side carries no
    gradient. DeiT's soft distillation (Touvron et al., 2021), as TLEG and SWS use it."""
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    log_p_s = F.log_softmax(student_logits.float() / tau, dim=-1)
    log_p_t = F.log_softmax(teacher_logits.detach().float() / tau, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1) * tau**2


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor | None = None,
    alpha: float = 1.0,
    tau: float = 1.0,
) -> Tensor:
    """Mean of ``(1 - alpha) CE(z_s, y) + alpha tau^2 KL(p_t || p_s)`` over all examples (and
    positions): a 0-d tensor. ``targets`` (class indices, shape ``logits.shape[:-1]``) are only
    needed when ``alpha < 1``. DeiT's soft distillation (Touvron et al., 2021)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    loss = alpha * soft_distillation(student_logits, teacher_logits, tau).mean()
    if alpha < 1.0:
        if targets is None:
            raise ValueError("alpha < 1 needs the targets for the cross-entropy term")
        ce = F.cross_entropy(student_logits.flatten(0, -2).float(), targets.flatten())
        loss = loss + (1.0 - alpha) * ce
    return loss
