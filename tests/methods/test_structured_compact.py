"""The compact sub-network: the same outputs as the group-sparse model (to 1e-5) on every suite
model with random groups zeroed, and exactly the parameters the removed groups leave."""

import pytest
import torch

from trainlab.methods.structured import zero_invariant_groups
from trainlab.methods.structured.compact import compact_model, removed_entries, zero_groups
from trainlab.registry import get_workload

# mnist1d_mlp: test_compact_mlp_sizes_by_hand (one export fewer)
SUITE = ["mnist1d_cnn", "digits_cnn", "charlm_gpt", "forecast_gru"]


def _group_sparse(name, fraction=0.5, seed=0):
    """The workload's model with BatchNorm statistics and affine entries randomised and a random
    ``fraction`` of each layer's groups zeroed; returns (workload, model, partition, zeroed)."""
    w = get_workload(name)
    model = w.init_model(seed)
    x = w.splits.x_train[:2]
    partition = zero_invariant_groups(model, (x,))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.5, generator=gen)
                mod.running_var.uniform_(0.5, 2.0, generator=gen)
                mod.weight.uniform_(0.5, 1.5, generator=gen)
                mod.bias.normal_(0, 0.3, generator=gen)
    families = {}
    for i, g in enumerate(partition.groups):
        families.setdefault(g.family, []).append(i)
    zeroed = []
    for ids in families.values():
        perm = torch.randperm(len(ids), generator=gen).tolist()
        zeroed += [ids[j] for j in perm[: int(len(ids) * fraction)]]
    params = dict(model.named_parameters())
    with torch.no_grad():
        for i in zeroed:
            for s in partition.groups[i].out_slices():
                params[s.name].index_fill_(s.dim, torch.tensor(s.index), 0.0)
    return w, model.eval(), partition, sorted(zeroed)


def _expected_parameter_count(model, partition, zeroed):
    """Each parameter keeps the product of its kept sizes along every dimension."""
    gone = removed_entries(partition, zeroed)
    total = 0
    for name, p in model.named_parameters():
        count = 1
        for dim, size in enumerate(p.shape):
            count *= size - len(gone.get((name, dim), ()))
        total += count
    return total


@pytest.mark.parametrize("name", SUITE)
def test_compact_equals_group_sparse(name):
    w, model, partition, zeroed = _group_sparse(name)
    assert zero_groups(model, partition) == zeroed
    compact = compact_model(model, (w.splits.x_train[:2],))
    x = w.splits.x_valid[:48]  # another batch size than the export's
    with torch.no_grad():
        assert torch.allclose(compact(x), model(x), atol=1e-5, rtol=0)
    n_compact = sum(p.numel() for p in compact.parameters())
    assert n_compact == _expected_parameter_count(model, partition, zeroed)
    assert n_compact < sum(p.numel() for p in model.parameters())


def test_compact_mlp_sizes_by_hand():
    """MLP 40-256-256-10 with 128 units of each hidden layer removed: 40*128 + 128 +
    128*128 + 128 + 128*10 + 10 parameters, and the layers' shapes say so."""
    w, model, partition, zeroed = _group_sparse("mnist1d_mlp")
    compact = compact_model(model, (w.splits.x_train[:2],))
    x = w.splits.x_valid[:48]
    with torch.no_grad():
        assert torch.allclose(compact(x), model(x), atol=1e-5, rtol=0)
    assert zero_groups(model, partition) == zeroed
    shapes = {n: tuple(p.shape) for n, p in compact.named_parameters()}
    assert shapes["0.weight"] == (128, 40) and shapes["2.weight"] == (128, 128)
    assert shapes["4.weight"] == (10, 128)
    assert sum(p.numel() for p in compact.parameters()) == 40 * 128 + 128 + 128 * 128 + 128 + 1290


def test_nothing_zeroed_changes_nothing():
    w = get_workload("digits_cnn")
    model = w.init_model(0).eval()
    compact = compact_model(model, (w.splits.x_train[:2],))
    x = w.splits.x_valid[:8]
    with torch.no_grad():
        assert torch.allclose(compact(x), model(x), atol=1e-6)
    assert sum(p.numel() for p in compact.parameters()) == sum(
        p.numel() for p in model.parameters()
    )


def test_a_whole_layer_zeroed_is_refused():
    w, model, partition, _ = _group_sparse("mnist1d_mlp", fraction=0.0)
    params = dict(model.named_parameters())
    with torch.no_grad():
        params["2.weight"].zero_()
        params["2.bias"].zero_()
    with pytest.raises(ValueError, match="every group of 2 is zero"):
        compact_model(model, (w.splits.x_train[:2],))
