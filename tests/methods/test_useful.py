"""USEFUL finds the late-learned cluster of each class and upsamples it once."""

from __future__ import annotations

import torch

from trainlab.methods.useful import cluster_features, slow_learnable_mask, upsampled_indices


def _planted(seed=0):
    """Per class, 30 confident (low-loss) and 20 unconfident (high-loss) examples whose logits
    form two well-separated blobs."""
    g = torch.Generator().manual_seed(seed)
    outputs, losses, labels, slow = [], [], [], []
    for c in range(3):
        confident = torch.zeros(30, 3)
        confident[:, c] = 6.0
        unsure = torch.full((20, 3), 1.0)
        unsure[:, c] = 1.5
        block = torch.cat([confident, unsure]) + 0.1 * torch.randn(50, 3, generator=g)
        outputs.append(block)
        labels.append(torch.full((50,), c))
        losses.append(torch.nn.functional.cross_entropy(block, labels[-1], reduction="none"))
        slow.append(torch.arange(50) >= 30)
    perm = torch.randperm(150, generator=g)
    return (
        torch.cat(outputs)[perm],
        torch.cat(losses)[perm],
        torch.cat(labels)[perm],
        torch.cat(slow)[perm],
    )


def test_high_loss_cluster_of_each_class_is_marked():
    outputs, losses, labels, slow = _planted()
    mask = slow_learnable_mask(outputs, losses, labels)
    assert torch.equal(mask, slow)


def test_without_labels_one_group():
    outputs, losses, _, slow = _planted()
    # without labels the two clusters found may mix classes; the marked one has higher loss
    mask = slow_learnable_mask(outputs, losses, None)
    assert 0 < int(mask.sum()) < 150
    assert losses[mask].mean() > losses[~mask].mean()


def test_upsampled_indices_repeat_slow_examples():
    slow = torch.tensor([False, True, False, True])
    idx = upsampled_indices(slow, upsample=3)
    assert torch.bincount(idx, minlength=4).tolist() == [1, 3, 1, 3]
    assert torch.equal(upsampled_indices(slow, 1), torch.arange(4))


def test_cluster_features_for_sequences_average_positions():
    logits = torch.randn(4, 5, 3)
    labels = torch.randint(3, (4, 5))
    torch.testing.assert_close(cluster_features(logits, labels), logits.mean(1))
    assert cluster_features(torch.randn(4, 3), torch.randint(3, (4,))).shape == (4, 3)
