"""Ensemble soft targets are the mean teacher softmax; the student loss ignores labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlab.methods.ensemble_kd import TeacherTargets, ensemble_soft_targets
from trainlab.nn_utils import soft_cross_entropy


def test_soft_targets_are_mean_softmax_in_eval_mode():
    torch.manual_seed(0)
    t1 = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))
    t2 = nn.Linear(3, 4)
    t1.train()
    x = torch.randn(5, 3)
    got = ensemble_soft_targets([t1, t2], x)
    expected = (t1[0](x).softmax(-1) + t2(x).softmax(-1)) / 2  # dropout off in eval mode
    torch.testing.assert_close(got, expected)
    assert t1.training and not got.requires_grad


def test_student_loss_is_kl_plus_teacher_entropy():
    logits, t = torch.randn(4, 3), torch.rand(4, 3).softmax(-1)
    kl = F.kl_div(F.log_softmax(logits, -1), t, reduction="none").sum(-1)
    entropy = -(t * t.log()).sum(-1)
    torch.testing.assert_close(soft_cross_entropy(logits, t), kl + entropy)


def test_teacher_targets_lookup_by_index():
    table = torch.rand(10, 3).softmax(-1)
    cache = TeacherTargets(10, lambda idx: table[idx], chunk_size=4)
    torch.testing.assert_close(cache(torch.tensor([7, 0, 7])), table[[7, 0, 7]])


def test_soft_targets_through_a_custom_forward_on_a_batch_object():
    teacher = nn.Linear(3, 4)
    batch = {"x": torch.randn(5, 3)}
    got = ensemble_soft_targets([teacher], batch, forward=lambda m, b: m(b["x"]))
    torch.testing.assert_close(got, teacher(batch["x"]).softmax(-1))
