"""Net2Net (Chen et al., 2016): the widening rule on hand-computed values, function preservation
on every suite model the growth methods support, the optimizer state mapping against the
gradients of the grown network, and what holds in train mode."""

import copy

import pytest
import torch
from torch import nn

from trainlab.methods.growth import (
    UnsupportedModel,
    carry_optimizer_state,
    depth_slots,
    family,
    grow,
    identity_conv,
    random_mapping,
    replication_counts,
    shrink,
    undo_batchnorm,
    widen,
    width_sites,
)
from trainlab.registry import get_workload

SUITE = ["mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "charlm_gpt"]


@pytest.fixture(scope="module")
def workloads():
    return {name: get_workload(name) for name in SUITE}


def test_random_mapping_is_the_identity_then_uniform_draws():
    g = random_mapping(3, 7, torch.Generator().manual_seed(0))
    assert g[:3].tolist() == [0, 1, 2]
    assert g.min() >= 0 and g.max() < 3
    assert replication_counts(g, 3).sum() == 7
    with pytest.raises(ValueError):
        random_mapping(4, 3)


def test_widen_copies_incoming_and_divides_outgoing_by_the_count():
    prod, cons = nn.Linear(2, 2), nn.Linear(2, 1)
    with torch.no_grad():
        prod.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        prod.bias.copy_(torch.tensor([0.5, -0.5]))
        cons.weight.copy_(torch.tensor([[6.0, 10.0]]))
    widen(prod, cons, 4, mapping=torch.tensor([0, 1, 0, 0]))
    # unit 0 has three copies: each gets 6 / 3 of the outgoing weight
    assert prod.weight.tolist() == [[1, 2], [3, 4], [1, 2], [1, 2]]
    assert prod.bias.tolist() == [0.5, -0.5, 0.5, 0.5]
    assert cons.weight.tolist() == [[2.0, 10.0, 2.0, 2.0]]
    assert (prod.out_features, cons.in_features) == (4, 4)


def test_widen_a_flattened_convolution_replicates_each_channels_positions():
    conv, head = nn.Conv1d(1, 2, 3, padding=1), nn.Linear(2 * 5, 3)
    x = torch.randn(4, 1, 5)
    before = head(conv(x).flatten(1))
    widen(conv, head, 3, group=5, mapping=torch.tensor([0, 1, 1]))
    assert torch.equal(head.weight[:, 5:10], head.weight[:, 10:15])
    assert torch.allclose(head(conv(x).flatten(1)), before, atol=1e-6)


@pytest.mark.parametrize("name", SUITE)
def test_growth_preserves_the_function_on_every_suite_model(workloads, name):
    """Cut to half width and half the depth slots, grow back: the workload's architecture and
    the same outputs (eval mode, noise off) to 1e-5."""
    w = workloads[name]
    full = w.init_model(0)
    small = shrink(full, 0.5, 0.5, rescale_fan_in=family(full) == "chain")
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in full.parameters())
    batch = w.get_examples(torch.arange(32))
    grown = copy.deepcopy(small)
    grow(grown, full, 1.0, 1.0, inputs=batch.inputs, generator=torch.Generator().manual_seed(1))
    assert str(grown) == str(full)  # same modules, shapes and hyperparameters
    assert {k: v.shape for k, v in grown.state_dict().items()} == {
        k: v.shape for k, v in full.state_dict().items()
    }
    small.eval(), grown.eval()
    with torch.no_grad():
        assert torch.allclose(w.forward(grown, batch), w.forward(small, batch), atol=1e-5)


def test_the_suite_models_sites_and_slots(workloads):
    mlp = workloads["mnist1d_mlp"].init_model(0)
    assert [(s.producer, s.consumer) for s in width_sites(mlp)] == [("0", "2"), ("2", "4")]
    assert [s.names for s in depth_slots(mlp)] == [("2", None, "3")]
    cnn = workloads["mnist1d_cnn"].init_model(0)
    assert width_sites(cnn)[-1].group == 10  # 32 channels x 10 positions flattened
    assert depth_slots(cnn) == []  # stride-2 convolutions cannot start as the identity
    digits = workloads["digits_cnn"].init_model(0)
    assert [s.names[0] for s in depth_slots(digits)] == ["features.3", "features.10"]
    gpt = workloads["charlm_gpt"].init_model(0)
    assert len(depth_slots(gpt)) == 2 and width_sites(gpt)[0].producer == "blocks.0.mlp.0"
    with pytest.raises(UnsupportedModel):
        family(nn.GRU(3, 4))


def test_widening_with_batchnorm_is_exact_in_train_mode_too(workloads):
    w = workloads["digits_cnn"]
    full = w.init_model(0)
    small = shrink(full, 0.5, 1.0)
    x = w.get_examples(torch.arange(64)).inputs
    small.train()
    before = small(x)
    grown = copy.deepcopy(small)
    grow(grown, full, 1.0, 1.0)
    grown.train()  # replicated channels have the same batch statistics
    assert torch.allclose(grown(x), before, atol=1e-5)


def test_an_inserted_batchnorm_undoes_the_statistics_of_the_batch_it_was_given(workloads):
    """Paper: scale and shift set to undo the normalisation. In train mode the new BN is the
    identity on the batch its statistics came from (only approximately on another); in eval
    mode (running statistics set alike) on every input."""
    w = workloads["digits_cnn"]
    full = w.init_model(0)
    small = shrink(full, 1.0, 0.0)  # both 3x3 same-width convolutions removed
    x, other = w.get_examples(torch.arange(64)).inputs, w.get_examples(torch.arange(64, 128)).inputs
    grown = copy.deepcopy(small)
    grow(grown, full, 1.0, 1.0, inputs=x)
    with torch.no_grad():
        assert torch.allclose(copy.deepcopy(grown).eval()(other), small.eval()(other), atol=1e-5)
        small.train(), grown.train()
        assert torch.allclose(grown(x), small(x), atol=1e-5)
        assert not torch.allclose(grown(other), small(other), atol=1e-5)


def test_undo_batchnorm_sets_scale_and_shift_from_the_statistics():
    bn = nn.BatchNorm1d(2, eps=1e-5)
    h = torch.tensor([[1.0, 0.0], [3.0, 4.0]])  # means (2, 2), biased variances (1, 4)
    undo_batchnorm(bn, h)
    assert torch.allclose(bn.weight, torch.tensor([1.0, 4.0]).add(1e-5).sqrt())
    assert bn.bias.tolist() == [2.0, 2.0] and bn.running_var.tolist() == [1.0, 4.0]
    assert torch.allclose(bn.eval()(h), h) and torch.allclose(bn.train()(h), h, atol=1e-6)


def test_identity_conv_refuses_what_is_not_an_identity():
    assert torch.equal(identity_conv(nn.Conv1d(3, 3, 3, padding=1), 3)(x := torch.randn(2, 3, 7)),
                       x)  # fmt: skip
    with pytest.raises(ValueError, match="stride"):
        identity_conv(nn.Conv1d(3, 3, 3, stride=2, padding=1), 3)


def test_noise_moves_only_the_new_replicas():
    prod, cons = nn.Linear(3, 2), nn.Linear(2, 1)
    kept = prod.weight.detach().clone()
    widen(prod, cons, 4, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(prod.weight[:2], kept)
    g = random_mapping(2, 4, torch.Generator().manual_seed(0))
    assert not torch.equal(prod.weight[2:], kept[g[2:]])


def test_carried_moments_are_those_of_the_grown_networks_gradients():
    """Replicas' incoming gradients are the old ones / c, outgoing ones equal: the moments
    mapped from an Adam step (betas 0: moments = g and g^2) equal the moments of the grown
    network's own gradient at the same weights."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(8, 3)
    mapping = torch.tensor([0, 1, 2, 3, 0, 0])
    reference = copy.deepcopy(net)  # the weights the gradient is taken at, grown
    widen(reference[0], reference[2], 6, mapping=mapping)
    reference(x).square().sum().backward()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.0, 0.0))
    net(x).square().sum().backward()
    opt.step()
    kept_state = opt.state[net[2].bias]
    log = widen(net[0], net[2], 6, mapping=mapping)
    new_opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.0, 0.0))
    carry_optimizer_state(opt, new_opt, log)
    for layer, ref in [(net[0], reference[0]), (net[2], reference[2])]:
        for name in ("weight", "bias"):
            state, grad = new_opt.state[getattr(layer, name)], getattr(ref, name).grad
            assert torch.allclose(state["exp_avg"], grad, atol=1e-6)
            assert torch.allclose(state["exp_avg_sq"], grad.square(), atol=1e-6)
    assert new_opt.state[net[2].bias] is kept_state  # a kept parameter keeps its state
