"""PS-KD targets and alpha schedule against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainlab.methods.pskd import PSKD, pskd_alpha, pskd_targets
from trainlab.nn_utils import soft_cross_entropy


def test_alpha_grows_linearly_to_alpha_T():
    assert pskd_alpha(0, 10) == 0.0
    assert pskd_alpha(5, 10, alpha_T=0.8) == pytest.approx(0.4)
    assert pskd_alpha(10, 10, alpha_T=0.8) == pytest.approx(0.8)
    assert pskd_alpha(20, 10, alpha_T=0.8) == pytest.approx(0.8)


def test_targets_mix_onehot_and_previous_prediction():
    pskd = PSKD(num_examples=4, alpha_T=0.8)
    labels = torch.tensor([1, 0])
    # before anything is recorded: one-hot
    before = pskd.targets(torch.tensor([2, 3]), labels, 0.5, 3)
    assert torch.equal(before, F.one_hot(labels, 3).float())
    pskd.record(torch.tensor([2, 0]), torch.tensor([[0.0, math.log(3.0), 0.0], [1.0, 1.0, 1.0]]))
    # example 2 predicted (0.2, 0.6, 0.2); example 0 (1/3, 1/3, 1/3); example 3 unseen; -1 fresh
    t = pskd.targets(torch.tensor([2, 3, -1, 0]), torch.tensor([1, 2, 0, 0]), 0.25, 3)
    expected = torch.tensor(
        [
            [0.25 * 0.2, 0.75 + 0.25 * 0.6, 0.25 * 0.2],
            [0.0, 0.0, 1.0],
            [1.0, 0.0, 0.0],
            [0.75 + 0.25 / 3, 0.25 / 3, 0.25 / 3],
        ]
    )
    torch.testing.assert_close(t, expected)
    torch.testing.assert_close(
        pskd_targets(torch.tensor([1]), torch.tensor([[0.2, 0.6, 0.2]]), 0.25), expected[:1]
    )


def test_record_overwrites_and_skips_fresh_examples():
    pskd = PSKD(num_examples=3)
    pskd.record(torch.tensor([1, -1]), torch.tensor([[0.0, 0.0], [5.0, 0.0]]))
    pskd.record(torch.tensor([1]), torch.tensor([[0.0, math.log(3.0)]]))
    torch.testing.assert_close(pskd.probs[1], torch.tensor([0.25, 0.75]))
    assert pskd.seen.tolist() == [False, True, False]


def test_sequence_predictions_are_stored_per_position():
    pskd = PSKD(num_examples=2)
    logits = torch.randn(2, 4, 5)
    pskd.record(torch.tensor([1, 0]), logits)
    labels = torch.randint(5, (2, 4))
    t = pskd.targets(torch.tensor([0, 1]), labels, 0.5, 5)
    expected = 0.5 * F.one_hot(labels, 5) + 0.5 * logits.softmax(-1)[[1, 0]]
    torch.testing.assert_close(t, expected)


def test_soft_cross_entropy_matches_torch():
    logits, probs = torch.randn(3, 4), torch.rand(3, 4).softmax(-1)
    torch.testing.assert_close(
        soft_cross_entropy(logits, probs), F.cross_entropy(logits, probs, reduction="none")
    )


def test_targets_and_record_read_nothing_back_and_skip_fresh_examples(monkeypatch):
    pskd = PSKD(num_examples=2)
    pskd.record(torch.tensor([-1, -1]), torch.tensor([[9.0, 0.0], [9.0, 0.0]]))
    assert pskd.seen.tolist() == [False, False] and len(pskd.probs) == 2

    def no_sync(*args, **kwargs):
        raise AssertionError("host read")

    monkeypatch.setattr(torch.Tensor, "item", no_sync)
    monkeypatch.setattr(torch.Tensor, "__bool__", no_sync)
    pskd.record(torch.tensor([1, -1]), torch.tensor([[0.0, 0.0], [9.0, 0.0]]))
    t = pskd.targets(torch.tensor([-1, 1, 0]), torch.tensor([1, 1, 1]), 0.5, 2)
    monkeypatch.undo()
    torch.testing.assert_close(t, torch.tensor([[0.0, 1.0], [0.25, 0.75], [0.0, 1.0]]))
