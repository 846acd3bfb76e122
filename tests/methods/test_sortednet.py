"""SortedNet (methods.sortednet): a sub-model is the main model's leading slices (checked by
hand), extraction gives a standalone model with the same outputs on every suite architecture,
gradients and BatchNorm statistics stay where the rule puts them, sampling is uniform over the
sub-models, and bad settings are one-line errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.errors import TrainlabError
from trainlab.methods.sortednet import SortedNet, SubModel, kept
from trainlab.workloads.charlm import GPT
from trainlab.workloads.digits import DigitsCNN
from trainlab.workloads.mnist1d import _CNN1D


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def test_kept_units():
    assert [kept(w, 32) for w in (0.25, 0.5, 0.75, 1.0)] == [8, 16, 24, 32]
    assert kept(0.3, 10) == 3 and kept(0.01, 10) == 1 and kept(0.34, 10) == 4


def test_a_sub_model_is_the_leading_slices_by_hand():
    model = _mlp()
    x = torch.randn(5, 4)
    sn = SortedNet(model, x, widths=(0.5,))
    w1, b1, w2, b2 = (p.detach() for p in model.parameters())
    by_hand = F.relu(x @ w1[:3].T + b1[:3]) @ w2[:, :3].T + b2  # 3 of 6 hidden units
    assert torch.allclose(sn.forward(SubModel(0.5), x), by_hand, atol=1e-6)
    # the same as the main model with hidden units 3.. removed (zeroed)
    masked = _mlp()
    with torch.no_grad():
        masked[0].weight[3:] = 0.0
        masked[0].bias[3:] = 0.0
    assert torch.allclose(masked(x), by_hand, atol=1e-6)
    assert torch.equal(sn.forward(SubModel(1.0), x), model(x))


def _check_extract(sn: SortedNet, x: torch.Tensor) -> dict:
    sn.model.eval()
    sizes = {}
    for sub in sn.grid:
        small = sn.extract(sub.width, sub.depth).eval()
        with torch.no_grad():
            expected, got = sn.forward(sub, x), small(x)
        assert torch.allclose(got, expected, atol=1e-5, rtol=0), sub
        sizes[sub] = sum(p.numel() for p in small.parameters())
        assert not any(p.data_ptr() == q.data_ptr() for p in small.parameters()
                       for q in sn.model.parameters())  # fmt: skip
    return sizes


def test_extract_matches_on_the_1d_cnn():
    model = _CNN1D("relu")
    x = torch.randn(6, 40)
    sizes = _check_extract(SortedNet(model, x[:2]), x)
    small = SortedNet(model, x[:2]).extract(0.25)
    assert [m.out_channels for m in small.features if isinstance(m, nn.Conv1d)] == [8, 8, 8]
    assert small.head.in_features == 80 and small.head.out_features == 10  # 8 channels x 10
    # by hand: conv 1->8 (k5), 8->8 (k3) twice, head 80->10
    assert sizes[SubModel(0.25)] == (8 * 5 + 8) + 2 * (8 * 8 * 3 + 8) + (80 * 10 + 10)


def test_extract_matches_on_the_2d_cnn_with_batchnorm_statistics_per_width():
    model = DigitsCNN()
    x = torch.randn(8, 8, 8)
    sn = SortedNet(model, x[:2])
    bn = model.features[1]
    before = bn.running_mean.clone()
    model.train()
    sn.forward(SubModel(0.5), x)  # a training-mode forward of width 0.5
    assert torch.equal(bn.running_mean, before)  # the main model's statistics are untouched
    private = sn.tensors(SubModel(0.5))["features.1.running_mean"]
    assert private.shape == (8,) and not torch.equal(private, before[:8])
    _check_extract(sn, x)
    small = sn.extract(0.5)
    assert torch.equal(small.features[1].running_mean, private)
    assert small.features[1].num_features == 8 and small.head.in_features == 16


def test_extract_matches_on_the_gpt_with_depth():
    torch.manual_seed(0)
    model = GPT(vocab=20, context=8, width=16, layers=3, heads=2)
    sn = SortedNet(model, widths=(0.25, 0.5), depths=(1, 2), depth_attr="blocks",
                   width_scopes=[f"blocks.{i}.mlp" for i in range(3)])  # fmt: skip
    assert len(sn.grid) == 3 * 3 and len(sn.candidates) == 8
    x = torch.randint(20, (2, 8))
    _check_extract(sn, x)
    small = sn.extract(0.25, depth=1)
    assert len(small.blocks) == 1 and small.blocks[0].mlp[0].out_features == 16  # 0.25 x 64
    assert small.head.weight is small.tok.weight  # the tied embedding stays tied


def test_gradients_reach_only_the_kept_slices():
    model = _mlp()
    x = torch.randn(5, 4)
    SortedNet(model, x, widths=(0.5,)).forward(SubModel(0.5), x).sum().backward()
    assert model[0].weight.grad[3:].abs().sum() == 0 and model[0].weight.grad[:3].abs().sum() > 0
    assert model[2].weight.grad[:, 3:].abs().sum() == 0 and model[2].bias.grad.abs().sum() > 0


def test_sampling_is_uniform_over_the_sub_models_without_the_main_one():
    sn = SortedNet(_mlp(), torch.randn(2, 4), n_sub=2)
    gen = torch.Generator().manual_seed(0)
    draws = [s for _ in range(3000) for s in sn.sample(gen)]
    assert len(draws) == 6000 and SubModel(1.0) not in draws
    for width in (0.25, 0.5, 0.75):  # 2000 expected each; 5 standard deviations is ~180
        assert abs(sum(s.width == width for s in draws) - 2000) < 180
    # the paper's Algorithm 1: the main model is one of the candidates
    paper = SortedNet(_mlp(), torch.randn(2, 4), include_main=False)
    assert paper.candidates == paper.grid and SubModel(1.0) in paper.grid


def test_a_training_loop_trains_every_width():
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    model = _mlp()
    sn = SortedNet(model, x[:2], n_sub=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)

    def losses():
        with torch.no_grad():
            return [float(F.cross_entropy(sn.forward(s, x), y)) for s in sn.grid]

    start = losses()
    for _ in range(150):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        for sub in sn.sample(gen):
            loss = loss + F.cross_entropy(sn.submodel(sub)(x), y)
        loss.backward()
        opt.step()
    assert all(after < 0.7 * before for after, before in zip(losses(), start, strict=True))


@pytest.mark.parametrize("kwargs, message", [
    ({"widths": (0.0, 0.5)}, "widths must be fractions in (0, 1]"),
    ({"widths": (1.5,)}, "widths must be fractions in (0, 1]"),
    ({"depths": (1,)}, "depths need depth_attr"),
    ({"n_sub": -1}, "n_sub must be >= 0"),
    ({"width_scopes": ("nope",)}, "has no module 'nope'"),
])  # fmt: skip
def test_bad_settings(kwargs, message):
    with pytest.raises(TrainlabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SortedNet(_mlp(), torch.randn(2, 4), **kwargs)


def test_a_model_it_cannot_nest_names_the_module():
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 3))
    with pytest.raises(TrainlabError, match=r"module 1 \(LayerNorm\)"):
        SortedNet(model, torch.randn(2, 4))
    with pytest.raises(TrainlabError, match="fewer than two"):
        SortedNet(nn.Linear(4, 3), torch.randn(2, 4))
