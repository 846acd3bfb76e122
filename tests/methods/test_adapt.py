"""The AdaPT controller in a plain loop (quantized forward, straight-through gradients,
quantized gradients, switches on a full window, the bit-width history) and the analytical
performance model against hand computations."""

import pytest
import torch
from torch import nn

from trainlab.methods.precision import (
    AdaPT,
    PrecisionError,
    Switch,
    fixed_point_quantize,
    layer_macs,
    layer_weights,
    modelled_speedup,
)


def test_quantized_forward_uses_fixed_point_weights_and_inputs_and_restores_the_master():
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.3)
    adapt = AdaPT(layer, wl_start=8, fl_start=2)  # step 0.25
    with adapt.quantized():
        y = layer(torch.tensor([[0.6]]))  # 0.25 x 0.5
        assert y.item() == 0.125
        y.sum().backward()
    # straight through: dL/dw is the gradient at the quantized point (the quantized input)
    assert layer.weight.grad.item() == 0.5
    assert layer.weight.item() == pytest.approx(0.3)  # the float32 master is back
    assert layer(torch.tensor([[0.6]])).item() == pytest.approx(0.18)  # plain float outside


def test_step_quantizes_gradients_to_the_layer_word_length():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    adapt = AdaPT(model, wl_start=6, fl_start=3)
    with adapt.quantized():
        model(torch.randn(16, 8)).square().sum().backward()
    adapt.step()
    for p in model.parameters():
        g = p.grad
        peak = g.abs().max().item()
        # some fraction length puts every element on a 6-bit grid covering the peak
        fl = next(f for f in range(40, -40, -1) if peak <= 31 * 2.0**-f)
        assert torch.equal(g, fixed_point_quantize(g, 6, fl))
        assert g.abs().unique().numel() <= 32


def test_a_layer_switches_when_its_window_is_full_and_the_history_records_it():
    layer = nn.Linear(4, 4, bias=False)
    with torch.no_grad():  # values on the grid k / 8 in [-1, 0.875]: lossless at (4, 3)
        layer.weight.copy_((torch.arange(-8, 8, dtype=torch.float32) / 8).view(4, 4))
    adapt = AdaPT(layer, wl_start=12, fl_start=6, min_lookback=2, max_lookback=2,
                  min_resolution=16, max_resolution=16, kl_tolerance=0.0,
                  quantize_gradients=False, quantize_activations=False)  # fmt: skip
    assert adapt.bit_history == [(0, {"": (12, 6)})]
    for step in (1, 2):
        layer.weight.grad = torch.ones(4, 4)  # the same gradient twice: diversity 1
        switched = adapt.step()
        assert bool(switched) == (step == 2)
    # PushDown -> (4, 3); PushUp with diversity 1: s = 1 -> fl 4, buffer 4 -> wl 8
    assert adapt.snapshot() == {"": (8, 4)}
    assert adapt.bit_history == [(0, {"": (12, 6)}), (2, {"": (8, 4)})]
    (event,) = adapt.switches
    assert (event.before, event.after, event.diversity, event.numel) == ((12, 6), (8, 4), 1.0, 16)
    assert adapt.formats[""].window_count == 0
    for _ in (3, 4):  # the next window decides the same format: a switch, no new history
        layer.weight.grad = torch.ones(4, 4)
        adapt.step()
    assert len(adapt.switches) == 2 and adapt.switches[1].after == (8, 4)
    assert adapt.bit_history == [(0, {"": (12, 6)}), (2, {"": (8, 4)})]


def test_bad_settings_are_errors_before_training():
    model = nn.Linear(2, 2)
    with pytest.raises(PrecisionError, match="word length"):
        AdaPT(model, wl_start=1)
    with pytest.raises(PrecisionError, match="min_lookback"):
        AdaPT(model, min_lookback=50, max_lookback=10)
    with pytest.raises(PrecisionError, match="no layer"):
        AdaPT(nn.Sequential(nn.ReLU()))


def test_remove_leaves_a_plain_model():
    model = nn.Linear(2, 2)
    before = model.weight.detach().clone()
    adapt = AdaPT(model)
    adapt.quantize_weights()
    adapt.remove()
    assert torch.equal(model.weight, before)
    assert not model._forward_pre_hooks


# -- performance model ------------------------------------------------------------------------


def test_mac_counts_by_hand():
    lin = nn.Linear(4, 3)
    assert layer_macs(lin, lambda: lin(torch.zeros(2, 4))) == {"": 2 * 4 * 3}
    conv = nn.Conv2d(2, 3, 3, padding=1)  # 3x5x5 outputs, each 2 x 3 x 3 MACs
    assert layer_macs(conv, lambda: conv(torch.zeros(1, 2, 5, 5))) == {"": 75 * 18}
    grouped = nn.Conv1d(4, 4, 3, groups=2)  # 4x8 outputs, each 2 x 3 MACs
    assert layer_macs(grouped, lambda: grouped(torch.zeros(1, 4, 10))) == {"": 32 * 6}
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert layer_weights(model, ["0", "2"]) == {"0": 12, "2": 6}


def test_speedups_by_hand():
    macs, weights = {"a": 100, "b": 300}, {"a": 10, "b": 30}
    history = [(0, {"a": (8, 4), "b": (16, 8)}), (10, {"a": (4, 2), "b": (8, 4)})]
    est = modelled_speedup(macs, weights, history, total_steps=20)
    c32 = 20 * 32 * 400  # 256,000 bit-MACs
    cq = 10 * (8 * 100 + 16 * 300) + 10 * (4 * 100 + 8 * 300)  # 84,000
    assert est.training == pytest.approx(2 * c32 / (cq + c32))  # 1.5059
    assert est.inference == pytest.approx(32 * 400 / (4 * 100 + 8 * 300))  # 4.571
    assert est.model_size == pytest.approx((4 * 10 + 8 * 30) / (32 * 40))
    assert est.final_mean_word_length == 6.0
    assert est.mean_word_length_over_training == pytest.approx((10 * 12 + 10 * 6) / 20)
    assert est.overhead_fraction == 0.0
    # a switch of layer a (10 weights), 2 KL evaluations of 5 bins, lookback 3:
    # 3*10*2 + 5*2 + (3+1)*10 = 110 operations at 32 bits
    switch = Switch(10, "a", (8, 4), (4, 2), 1.0, lookback=3, resolution=5, kl_evaluations=2,
                    numel=10)  # fmt: skip
    with_overhead = modelled_speedup(macs, weights, history, 20, [switch])
    assert with_overhead.training == pytest.approx(2 * c32 / (cq + 3520 + c32))
    assert with_overhead.overhead_fraction == pytest.approx(3520 / (cq + 3520))


def test_all_32_bit_is_no_speedup():
    est = modelled_speedup({"a": 7}, {"a": 3}, [(0, {"a": (32, 16)})], total_steps=5)
    assert (est.training, est.inference, est.model_size) == (1.0, 1.0, 1.0)


def test_speedup_rejects_a_history_that_does_not_start_at_zero():
    with pytest.raises(ValueError, match="step 0"):
        modelled_speedup({"a": 1}, {"a": 1}, [(3, {"a": (8, 4)})], 10)


def test_a_tied_weight_is_quantized_once_and_its_master_restored():
    emb, head = nn.Embedding(5, 4), nn.Linear(4, 5, bias=False)
    head.weight = emb.weight  # tied, as in a GPT
    model = nn.Sequential(nn.Linear(4, 4), head)
    before = head.weight.detach().clone()
    adapt = AdaPT(model, wl_start=6, fl_start=2)
    with adapt.quantized():
        assert torch.equal(emb.weight, fixed_point_quantize(before, 6, 2))
        model(torch.randn(3, 4)).sum().backward()
    assert torch.equal(emb.weight, before)
    adapt.step()
    assert head.weight.grad.abs().unique().numel() <= 32
