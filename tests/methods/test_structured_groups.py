"""Zero-invariant groups of the suite's models: counts and sizes derived by hand from each
architecture, the defining property (a zeroed group makes its consumer columns irrelevant),
and the refusals."""

import pytest
import torch
from torch import nn

from trainlab.methods.structured import GraphPartitionError, zero_invariant_groups
from trainlab.registry import get_workload


def _partition(name):
    w = get_workload(name)
    model = w.init_model(0)
    x = w.splits.x_train[:2]
    return w, model, zero_invariant_groups(model, (x,))


def _by_family(partition):
    out = {}
    for g in partition.groups:
        out.setdefault(g.family, []).append(g)
    return out


def _entries(group, role):
    return {(s.name, s.dim): len(s.index) for s in group.slices if s.role == role}


@pytest.fixture(scope="module")
def suite():
    names = ["mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "charlm_gpt", "forecast_gru"]
    return {n: _partition(n) for n in names}


def test_mlp_hidden_units(suite):
    _, model, p = suite["mnist1d_mlp"]
    fam = _by_family(p)
    assert {f: len(g) for f, g in fam.items()} == {"0": 256, "2": 256}  # the output is kept
    g = fam["0"][7]
    assert _entries(g, "out") == {("0.weight", 0): 1, ("0.bias", 0): 1}
    assert _entries(g, "in") == {("2.weight", 1): 1}
    assert g.size(model) == 40 + 1  # one row of the 40-input layer and its bias
    assert p.blocked == ("reaches the model's output",)


def test_cnn1d_channels_own_their_flattened_columns(suite):
    _, model, p = suite["mnist1d_cnn"]
    fam = _by_family(p)
    assert {f: len(g) for f, g in fam.items()} == {
        "features.0": 32, "features.2": 32, "features.4": 32,
    }  # fmt: skip
    last = fam["features.4"][3]
    head_cols = [s for s in last.slices if s.name == "head.weight"][0]
    # flatten of [b, 32, 10]: channel 3 is columns 30..39 of the head
    assert head_cols.index == tuple(range(30, 40)) and head_cols.dim == 1
    assert last.size(model) == 32 * 3 + 1


def test_digits_cnn_channels_carry_batchnorm(suite):
    _, model, p = suite["digits_cnn"]
    fam = _by_family(p)
    assert [len(fam[f]) for f in ("features.0", "features.3", "features.7", "features.10")] == [
        16, 16, 32, 32,
    ]  # fmt: skip
    g = fam["features.3"][0]
    assert _entries(g, "out") == {
        ("features.3.weight", 0): 1, ("features.4.weight", 0): 1, ("features.4.bias", 0): 1,
        ("features.4.running_mean", 0): 1, ("features.4.running_var", 0): 1,
    }  # fmt: skip
    assert _entries(g, "in") == {("features.7.weight", 1): 1}
    assert g.size(model) == 16 * 9 + 2  # conv row (bias=False) + BN weight and bias


def test_gpt_heads_and_mlp_units(suite):
    _, model, p = suite["charlm_gpt"]
    fam = _by_family(p)
    assert {f: len(g) for f, g in fam.items()} == {
        "blocks.0.attn.qkv": 4, "blocks.1.attn.qkv": 4,
        "blocks.0.mlp.0": 256, "blocks.1.mlp.0": 256,
    }  # fmt: skip
    head = fam["blocks.1.attn.qkv"][2]
    rows = [s for s in head.slices if s.name == "blocks.1.attn.qkv.weight"][0].index
    # head 2 of 4 (head_dim 16): its q, k and v rows
    assert rows == tuple(range(32, 48)) + tuple(range(96, 112)) + tuple(range(160, 176))
    cols = [s for s in head.slices if s.name == "blocks.1.attn.proj.weight"][0]
    assert cols.dim == 1 and cols.index == tuple(range(32, 48))
    assert head.size(model) == 48 * 64 + 48
    # the residual stream goes through LayerNorm: not prunable, and said so
    assert any("normalises across the features" in b for b in p.blocked)


def test_gru_hidden_units(suite):
    _, model, p = suite["forecast_gru"]
    assert len(p) == 64
    g = p.groups[5]
    rows = [s for s in g.slices if s.name == "rnn.weight_hh_l0" and s.role == "out"][0]
    assert rows.index == (5, 69, 133)  # reset, update and new gates of unit 5
    assert _entries(g, "in") == {("rnn.weight_hh_l0", 1): 1, ("head.weight", 1): 1}
    assert g.size(model) == 3 * (1 + 64 + 2)


@pytest.mark.parametrize("name", ["mnist1d_cnn", "digits_cnn", "charlm_gpt", "forecast_gru"])
def test_zeroed_group_makes_its_consumers_irrelevant(suite, name):
    """The defining property: once a group's producer entries are zero, its consumer entries
    can be anything without changing the output."""
    w, model, p = suite[name]
    model = w.init_model(1).eval()
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(0)
    chosen = torch.randperm(len(p), generator=gen)[:5].tolist()
    with torch.no_grad():
        for i in chosen:
            for s in p.groups[i].out_slices():
                params[s.name].index_fill_(s.dim, torch.tensor(s.index), 0.0)
        x = w.splits.x_valid[:16]
        before = model(x)
        for i in chosen:
            for s in p.groups[i].slices:
                if s.role == "in":
                    idx = torch.tensor(s.index)
                    t = params[s.name]
                    t.index_copy_(s.dim, idx, torch.randn_like(t.index_select(s.dim, idx)) * 5)
        assert torch.equal(model(x), before)


class _CumSum(nn.Module):
    def forward(self, x):
        return x.cumsum(-1)


def test_unsupported_op_names_the_module():
    model = nn.Sequential(nn.Linear(4, 8), _CumSum(), nn.Linear(8, 2))
    with pytest.raises(
        GraphPartitionError, match=r"no prunable group: module 1: operation .*cumsum"
    ):
        zero_invariant_groups(model, (torch.randn(2, 4),))


def test_unexportable_model_is_refused():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) if x.sum() > 0 else -self.fc(x)

    with pytest.raises(GraphPartitionError, match="Branchy cannot be exported"):
        zero_invariant_groups(Branchy(), (torch.randn(2, 4),))


def test_model_without_prunable_group_is_refused():
    with pytest.raises(GraphPartitionError, match="no prunable group"):
        zero_invariant_groups(nn.Linear(4, 2), (torch.randn(2, 4),))


def test_sigmoid_is_not_zero_invariant():
    """sigmoid(0) = 1/2: a zeroed unit would still feed its consumer, so the units before the
    sigmoid are kept and those after the ReLU are groups."""
    model = nn.Sequential(
        nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2)
    )
    partition = zero_invariant_groups(model, (torch.randn(2, 4),))
    assert [g.family for g in partition.groups] == ["2"] * 6
    assert any(b.startswith("module 1: operation aten.sigmoid") for b in partition.blocked)


def test_rmsnorm_gpt_keeps_heads_and_mlp_units():
    w = get_workload("charlm_gpt", "rmsnorm")
    partition = zero_invariant_groups(w.init_model(0), (w.splits.x_train[:2],))
    assert len(partition) == 2 * (256 + 4)
