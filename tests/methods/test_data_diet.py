"""EL2N / GraNd against direct computation, and selection on planted mislabeled examples."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.methods.data_diet import (
    VmapUnsupportedError,
    average_over_runs,
    el2n_scores,
    grand_scores,
    score_examples,
    select_by_score,
)


def _tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def _ce(model, x, y):
    return F.cross_entropy(model(x), y, reduction="none")


def test_el2n_matches_direct_formula():
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 4), torch.tensor([0, 3, 1, 1, 2, 0])
    expected = []
    for i in range(6):
        p = torch.exp(logits[i]) / torch.exp(logits[i]).sum()
        onehot = torch.zeros(4)
        onehot[labels[i]] = 1.0
        expected.append(torch.sqrt(((p - onehot) ** 2).sum()))
    torch.testing.assert_close(el2n_scores(logits, labels), torch.stack(expected))


def test_el2n_sequence_and_regression():
    torch.manual_seed(1)
    logits, labels = torch.randn(3, 5, 4), torch.randint(4, (3, 5))
    per_pos = (logits.softmax(-1) - F.one_hot(labels, 4)).norm(dim=-1)
    torch.testing.assert_close(el2n_scores(logits, labels), per_pos.mean(1))
    pred, target = torch.randn(4, 2, 3), torch.randn(4, 2, 3)
    torch.testing.assert_close(el2n_scores(pred, target), (pred - target).flatten(1).norm(dim=1))


def test_grand_matches_loop_over_examples():
    model = _tiny_model()
    model[0].bias.requires_grad_(False)  # frozen parameters are not part of the norm
    x, y = torch.randn(10, 5), torch.randint(3, (10,))
    expected = []
    for i in range(10):  # the direct way: one backward per example
        model.zero_grad()
        _ce(model, x[i : i + 1], y[i : i + 1]).sum().backward()
        sq = sum(p.grad.pow(2).sum() for p in model.parameters() if p.requires_grad)
        expected.append(sq.sqrt())
    got = grand_scores(model, _ce, x, y, chunk_size=4)  # chunks of 4, 4, 2
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-5, atol=1e-6)


class _GRUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(1, 6, batch_first=True)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.rnn(x.unsqueeze(-1))[0][:, -1])


def test_grand_for_a_gru_matches_loop_over_examples():
    # nn.GRU has no vmap batching rule: the per-example loop must give the same norms
    torch.manual_seed(0)
    model = _GRUNet()
    x, y = torch.randn(7, 5), torch.randn(7, 2)

    def mse(m, xb, yb):
        return (m(xb) - yb).pow(2).mean(1)

    expected = []
    for i in range(7):
        model.zero_grad()
        mse(model, x[i : i + 1], y[i : i + 1]).sum().backward()
        expected.append(sum(p.grad.pow(2).sum() for p in model.parameters()).sqrt())
    model.zero_grad()
    got = grand_scores(model, mse, x, y, chunk_size=4)
    torch.testing.assert_close(got, torch.stack(expected), rtol=1e-5, atol=1e-6)
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert not any(hasattr(p, "grad_sample") for p in model.parameters())


def test_select_by_score_keeps_top_after_offset():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 1.0])
    assert select_by_score(scores, 0.3).tolist() == [9, 1, 5]
    assert select_by_score(scores, 0.3, offset_fraction=0.2).tolist() == [5, 3, 7]
    assert len(select_by_score(scores, 1.0)) == 10
    with pytest.raises(ValueError):
        select_by_score(scores, 0.0)


def test_average_over_runs_is_the_mean():
    runs = {0: torch.tensor([1.0, 2.0]), 1: torch.tensor([3.0, 6.0])}
    torch.testing.assert_close(average_over_runs(runs.__getitem__, 2), torch.tensor([2.0, 4.0]))


def _planted_data(n=400, flipped=20, seed=0):
    """Two well-separated Gaussian classes in 5-D; the first ``flipped`` labels are wrong."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(2, (n,), generator=g)
    x = torch.randn(n, 5, generator=g) * 0.5
    x[:, 0] += 2.0 * (2 * y - 1).float()
    y_noisy = y.clone()
    y_noisy[:flipped] = 1 - y[:flipped]
    return x, y_noisy


def _briefly_trained(seed, x, y, steps=150):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("score", ["el2n", "grand"])
def test_mislabeled_examples_score_highest_and_offset_drops_them(score):
    x, y = _planted_data()

    def run(r):
        model = _briefly_trained(r, x, y)
        if score == "el2n":
            with torch.no_grad():
                return el2n_scores(model(x), y)
        return grand_scores(model, _ce, x, y)

    scores = average_over_runs(run, 3)
    top = set(select_by_score(scores, 20 / 400).tolist())
    assert len(top & set(range(20))) >= 18  # the planted mislabeled examples
    kept = set(select_by_score(scores, 0.5, offset_fraction=20 / 400).tolist())
    assert len(kept & set(range(20))) <= 2


def test_grand_loop_matches_vmap_and_unbatchable_model_fails_clearly():
    model, x, y = _tiny_model(), torch.randn(6, 5), torch.randint(3, (6,))
    torch.testing.assert_close(
        grand_scores(model, _ce, x, y, method="loop"), grand_scores(model, _ce, x, y, chunk_size=4)
    )
    gru = _GRUNet()
    with pytest.raises(VmapUnsupportedError, match="method='loop'"):
        grand_scores(gru, lambda m, xb, yb: (m(xb) - yb).pow(2).mean(1), x, torch.randn(6, 2),
                     method="vmap")  # fmt: skip


def test_score_examples_in_index_order_in_eval_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.9))
    data = torch.randn(7, 2)
    modes = []

    def score(rows):
        modes.append(model.training)
        return model(data[rows]).sum(1)

    got = score_examples(model, 7, lambda idx: idx, score, chunk_size=3)
    torch.testing.assert_close(got, model[0](data).sum(1).detach())
    assert modes == [False, False, False] and model.training
