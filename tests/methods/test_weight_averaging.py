"""EMA and SWA weights against hand-computed averages, resumed runs, BatchNorm recomputation
against torch's update_bn."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, TensorDataset

from trainlab.methods.weight_averaging import EMA, SWA, recompute_batchnorm, swa_schedule


def _linear(w: list[float], b: float) -> nn.Linear:
    m = nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([w]))
        m.bias.fill_(b)
    return m


def _set(m: nn.Linear, w: list[float], b: float) -> None:
    with torch.no_grad():
        m.weight.copy_(torch.tensor([w]))
        m.bias.fill_(b)


def test_ema_matches_hand_computation_and_leaves_model_alone():
    model = _linear([1.0, 2.0], 0.0)
    ema = EMA(model, decay=0.9)
    _set(model, [3.0, 0.0], 1.0)
    ema.update(model)  # 0.9 * (1, 2, 0) + 0.1 * (3, 0, 1) = (1.2, 1.8, 0.1)
    _set(model, [0.0, 0.0], -1.0)
    ema.update(model)  # 0.9 * (1.2, 1.8, 0.1) + 0.1 * (0, 0, -1) = (1.08, 1.62, -0.01)
    torch.testing.assert_close(ema.model.weight, torch.tensor([[1.08, 1.62]]))
    torch.testing.assert_close(ema.model.bias, torch.tensor([-0.01]))
    torch.testing.assert_close(model.weight, torch.tensor([[0.0, 0.0]]))
    assert model.weight.requires_grad and not ema.model.weight.requires_grad


def test_ema_warmup_decay():
    ema = EMA(nn.Linear(1, 1), decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(2 / 11)
    ema.update(nn.Linear(1, 1))
    assert ema.current_decay() == pytest.approx(3 / 12)
    assert ema.num_updates == 1
    ema = EMA(nn.Linear(1, 1), decay=0.5, warmup=True)
    for _ in range(9):  # (1 + n) / (10 + n) passes 0.5 at n = 8
        ema.update(nn.Linear(1, 1))
    assert ema.current_decay() == 0.5


def test_ema_warmup_matches_hand_computation():
    model = _linear([0.0, 0.0], 0.0)
    ema = EMA(model, decay=0.99, warmup=True)
    _set(model, [1.0, 1.0], 1.0)
    ema.update(model)  # d = 2/11: 9/11 of the new weights
    torch.testing.assert_close(ema.model.bias, torch.tensor([9 / 11]))
    ema.update(model)  # d = 3/12: 9/11 + (1 - 9/11) * 9/12
    torch.testing.assert_close(ema.model.bias, torch.tensor([9 / 11 + 2 / 11 * 0.75]))


def _train(model, steps, start=0):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(start)
    for _ in range(steps):
        x = torch.randn(8, 2, generator=g)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        yield model


@pytest.mark.parametrize("kind", ["ema", "swa"])
def test_state_dict_round_trip_resumes_identically(kind):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    make = (lambda m: EMA(m, decay=0.9, warmup=True)) if kind == "ema" else SWA
    avg = make(model)
    for m in _train(model, 5):
        avg.update(m)
    saved = copy.deepcopy(avg.state_dict())
    model_saved = copy.deepcopy(model.state_dict())
    for m in _train(model, 5, start=1):  # the uninterrupted run
        avg.update(m)
    model.load_state_dict(model_saved)  # a resumed run: fresh objects, loaded state
    resumed = make(model)
    resumed.load_state_dict(saved)
    count = (lambda a: a.num_updates) if kind == "ema" else (lambda a: a.n_averaged)
    assert count(resumed) == 5
    for m in _train(model, 5, start=1):
        resumed.update(m)
    assert count(resumed) == count(avg) == 10
    torch.testing.assert_close(avg.model.state_dict(), resumed.model.state_dict(), rtol=0, atol=0)


def test_swa_is_the_mean_of_the_weights_given():
    model = _linear([0.0, 0.0], 0.0)
    swa = SWA(model)
    points = [([1.0, 2.0], 3.0), ([3.0, 0.0], 0.0), ([2.0, 4.0], -3.0)]
    for w, b in points:
        _set(model, w, b)
        swa.update(model)
    torch.testing.assert_close(swa.model.weight, torch.tensor([[2.0, 2.0]]))
    torch.testing.assert_close(swa.model.bias, torch.tensor([0.0]))
    assert swa.n_averaged == 3


def test_recompute_batchnorm_uses_plain_average_over_batches():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    model.eval()
    model[1].running_mean.fill_(99.0)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(8, 2, generator=g) * (i + 1) for i in range(3)]
    assert recompute_batchnorm(batches, model) == 3
    with torch.no_grad():
        feats = [model[0](b) for b in batches]
    mean = torch.stack([f.mean(0) for f in feats]).mean(0)
    var = torch.stack([f.var(0, unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(model[1].running_mean, mean)
    torch.testing.assert_close(model[1].running_var, var)
    assert not model.training and model[1].momentum == 0.1
    assert recompute_batchnorm(batches, nn.Linear(2, 2)) == 0
    with pytest.raises(TypeError):
        recompute_batchnorm(model, batches)  # the pre-torch argument order


def _bn_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_recompute_batchnorm_takes_an_xy_dataloader_and_equals_update_bn():
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(40, 3, generator=g) * 3 + 1, torch.randint(2, (40,)))
    loader = DataLoader(data, batch_size=8)
    ours, theirs = _bn_net(), _bn_net()
    assert recompute_batchnorm(loader, ours, device="cpu") == 5
    update_bn(loader, theirs, device="cpu")
    for name, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value, rtol=0, atol=0)
    assert ours[1].num_batches_tracked == 5


def test_recompute_batchnorm_with_a_forward_for_other_batch_types():
    g = torch.Generator().manual_seed(2)
    xs = [torch.randn(8, 3, generator=g) for _ in range(3)]
    ours, theirs = _bn_net(), _bn_net()
    ours.eval()
    batches = [{"inputs": x, "scale": 2.0} for x in xs]
    n = recompute_batchnorm(batches, ours, forward=lambda m, b: m(b["inputs"] * b["scale"]))
    update_bn([2.0 * x for x in xs], theirs)
    assert n == 3 and not ours.training  # its mode is restored
    torch.testing.assert_close(ours[1].running_mean, theirs[1].running_mean)
    torch.testing.assert_close(ours[1].running_var, theirs[1].running_var)


def test_swa_schedule():
    assert swa_schedule(0, 100, swa_start=50, swa_lr_fraction=0.1, warmup_steps=10) == 0.1
    assert swa_schedule(9, 100, swa_start=50, swa_lr_fraction=0.1, warmup_steps=10) == 1.0
    assert swa_schedule(10, 100, swa_start=50, swa_lr_fraction=0.1, warmup_steps=10) == 1.0
    assert swa_schedule(30, 100, swa_start=50, swa_lr_fraction=0.1, warmup_steps=10) == (
        pytest.approx(0.55)
    )
    assert swa_schedule(50, 100, swa_start=50, swa_lr_fraction=0.1) == 0.1
    assert swa_schedule(99, 100, swa_start=50, swa_lr_fraction=0.1) == 0.1
