"""HESSO: the period schedule, the progressive forgetting factor (P - t - 1) / (P - t), the
saliency scores by hand, the family floor, and its use in a plain loop with a scheduler."""

import math

import pytest
import torch
from torch import nn

from trainlab.errors import HyperparameterError
from trainlab.methods.structured import zero_invariant_groups
from trainlab.methods.structured.compact import compact_model
from trainlab.methods.structured.hesso import DEFAULT_SALIENCY, HESSO, saliency_scores
from trainlab.optim import NAdamW

X = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


def _step(opt, model):
    opt.zero_grad()
    model(X).pow(2).sum().backward()
    opt.step()


def _row_norms(model):
    return model[0].weight.norm(dim=1) ** 2 + model[0].bias ** 2


def test_forgetting_factor_telescopes_to_zero():
    """With a base step of zero (lr = 0), a group chosen at the start of a period of P = 4
    steps is x0 * (P - t - 1) / P after position t, and exactly zero at t = P - 1."""
    model = _mlp()
    with torch.no_grad():  # unit 3 of layer 0 is the smallest by far: it is chosen first
        model[0].weight[3] *= 1e-3
        model[0].bias[3] *= 1e-3
    x0 = model[0].weight[3].clone()
    opt = HESSO(
        model,
        torch.optim.SGD(model.parameters(), lr=0.0),
        example_inputs=(X,),
        target_group_sparsity=1 / 16,
        warmup_steps=2,
        pruning_steps=4,
        pruning_periods=1,
    )
    assert opt.period_counts == [1]
    for _ in range(2):  # warm-up: untouched
        _step(opt, model)
    assert torch.equal(model[0].weight[3], x0) and opt.active == []
    for t in range(4):
        _step(opt, model)
        if t < 3:
            assert opt.active == [3]
        torch.testing.assert_close(model[0].weight[3], x0 * (4 - t - 1) / 4)
    assert torch.equal(model[0].weight[3], torch.zeros(4)) and model[0].bias[3] == 0
    assert opt.redundant == [3] and opt.active == []
    assert opt.group_sparsity == 1 / 16


def test_periods_select_the_target_count_hierarchically():
    """16 groups, s = 0.5 -> 8 redundant groups over K = 3 periods: 2, 2, 4; each period adds
    groups not chosen before, and they stay exactly zero while NAdamW keeps training."""
    model = _mlp()
    opt = HESSO(
        model,
        NAdamW(model.parameters(), lr=1e-2),
        example_inputs=(X,),
        target_group_sparsity=0.5,
        warmup_steps=1,
        pruning_steps=6,
        pruning_periods=3,
    )
    assert opt.period_counts == [2, 2, 4]
    sizes = []
    for _ in range(1 + 6):
        _step(opt, model)
        sizes.append(len(opt.redundant))
    assert sizes == [0, 0, 2, 2, 4, 4, 8]
    for _ in range(5):
        _step(opt, model)
    assert opt.group_sparsity == 0.5
    # the compact model is the same function with 8 of the 16 hidden units left (the
    # selection is global: the layers may split them unevenly)
    compact = compact_model(model, (X,))
    w0, w1, w2 = (p for n, p in compact.named_parameters() if n.endswith("weight"))
    assert w0.shape[0] + w1.shape[0] == 8 and w1.shape[1] == w0.shape[0]
    assert w2.shape == (2, w1.shape[0])
    with torch.no_grad():
        torch.testing.assert_close(compact(X), model(X))


def test_lowest_magnitude_groups_are_chosen_first():
    """With lr = 0 the step d is zero, so only the two magnitude criteria score: the groups
    with the smallest rows go first."""
    model = _mlp()
    with torch.no_grad():
        model[0].weight[[1, 6]] *= 1e-2
    opt = HESSO(
        model,
        torch.optim.SGD(model.parameters(), lr=0.0),
        example_inputs=(X,),
        target_group_sparsity=2 / 16,
        warmup_steps=0,
        pruning_steps=1,
        pruning_periods=1,
    )
    _step(opt, model)
    assert opt.redundant == [1, 6]
    assert torch.equal(_row_norms(model)[[1, 6]], torch.zeros(2))


def test_saliency_scores_by_hand():
    """Two groups of one entry each: x = (3, 4), d = (1, -1)."""
    x = [[torch.tensor([3.0])], [torch.tensor([4.0])]]
    d = [[torch.tensor([1.0])], [torch.tensor([-1.0])]]
    mag = torch.tensor([3.0, 4.0]) / 5
    cos = torch.tensor([-1.0, 1.0]) / math.sqrt(2)  # cos(-d, x)
    taylor1 = torch.tensor([3.0, 4.0]) / 5  # |x d|
    taylor2 = torch.tensor([9.0, 16.0]) / math.sqrt(81 + 256)
    expected = 0.2 * (mag + mag + cos + taylor1 + taylor2)
    got = saliency_scores(x, d, DEFAULT_SALIENCY)
    torch.testing.assert_close(got, expected.double())
    only_cos = saliency_scores(x, d, {"cosine_similarity": 1.0})
    torch.testing.assert_close(only_cos, cos.double())


def test_every_layer_keeps_a_group():
    model = _mlp()
    opt = HESSO(
        model,
        torch.optim.SGD(model.parameters(), lr=0.0),
        example_inputs=(X,),
        target_group_sparsity=0.99,
        warmup_steps=0,
        pruning_steps=2,
        pruning_periods=2,
    )
    assert sum(opt.period_counts) == 16 - 2
    for _ in range(3):
        _step(opt, model)
    assert (_row_norms(model) > 0).sum() == 1
    assert (model[2].weight.norm(dim=1) > 0).sum() == 1


def test_scheduler_drives_the_base_learning_rate():
    model = _mlp()
    base = NAdamW(model.parameters(), lr=1.0)
    opt = HESSO(model, base, example_inputs=(X,), pruning_steps=2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5**step)
    _step(opt, model)
    sched.step()
    assert base.param_groups[0]["lr"] == 0.5


def test_state_dict_round_trip():
    model = _mlp()
    opt = HESSO(
        model,
        NAdamW(model.parameters(), lr=1e-2),
        example_inputs=(X,),
        target_group_sparsity=0.5,
        warmup_steps=0,
        pruning_steps=4,
        pruning_periods=2,
    )
    for _ in range(3):
        _step(opt, model)
    state = opt.state_dict()
    other = HESSO(
        model,
        NAdamW(model.parameters(), lr=1e-2),
        groups=opt.partition,
        target_group_sparsity=0.5,
        warmup_steps=0,
        pruning_steps=4,
        pruning_periods=2,
    )
    other.load_state_dict(state)
    assert (other.num_steps, other.redundant, other.active) == (3, opt.redundant, opt.active)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target_group_sparsity": 1.0}, "target_group_sparsity"),
        ({"target_group_sparsity": -0.1}, "target_group_sparsity"),
        ({"pruning_steps": 2, "pruning_periods": 3}, "pruning_steps >= pruning_periods"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"saliency": {"magnitud": 1.0}}, "unknown saliency"),
    ],
)
def test_bad_values(kwargs, match):
    model = _mlp()
    groups = zero_invariant_groups(model, (X,))
    with pytest.raises(HyperparameterError, match=match):
        HESSO(model, torch.optim.SGD(model.parameters(), lr=0.1), groups=groups, **kwargs)
