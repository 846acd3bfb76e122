"""Mask bookkeeping (trainlab.methods.sparse.masks): which weights, ERK densities against hand
values, exact counts, magnitude pruning, drop-and-grow, and zeros kept through optimizer steps
with momentum and Adam state."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import trainlab.methods.sparse as sparse
from trainlab.methods.sparse import (
    GMP,
    Masks,
    RigL,
    drop_and_grow,
    erk_densities,
    magnitude_prune,
    sparsifiable_weights,
)
from trainlab.methods.sparse.masks import allocate

CITATION = re.compile(r"\((?:[^()]*\D)?(?:19|20)\d\d[a-z]?\)|arXiv:\d{4}\.\d{4,5}")
HELPERS = {"Sparsifier", "Masks", "sparsifiable_weights", "uniform_densities", "random_masks",
           "magnitude_prune", "drop_and_grow", "pruning_steps"}  # fmt: skip


@pytest.mark.parametrize("name", sparse.__all__)
def test_exports_are_documented_and_methods_cite_their_paper(name):
    doc = getattr(sparse, name).__doc__
    assert doc and doc.strip()
    if name not in HELPERS:
        assert CITATION.search(doc), name


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))  # fmt: skip


class TinyGPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(11, 8)
        self.mlp = nn.Linear(8, 8)
        self.rnn = nn.GRU(8, 8)
        self.conv = nn.Conv1d(8, 4, 3)
        self.head = nn.Linear(8, 11, bias=False)
        self.head.weight = self.tok.weight  # tied


def test_sparsifiable_weights_are_linear_and_conv_weights_but_not_tied_or_recurrent():
    assert list(sparsifiable_weights(TinyGPT())) == ["mlp.weight", "conv.weight"]
    assert list(sparsifiable_weights(mlp(), exclude=["0"])) == ["2.weight", "4.weight"]
    with pytest.raises(ValueError, match="'nope' is not a module"):
        sparsifiable_weights(mlp(), exclude=["nope"])


def test_erk_densities_of_the_mnist1d_mlp_by_hand():
    # raw (n_in + n_out) / (n_in n_out): 296/10240, 512/65536, 266/2560; their weighted sum is
    # 296 + 512 + 266 = 1074, and eps * 1074 = 0.1 * 78336 non-zeros
    shapes = {n: tuple(w.shape) for n, w in sparsifiable_weights(mlp()).items()}
    d = erk_densities(shapes, 0.9)
    eps = 0.1 * 78336 / 1074
    assert d["0.weight"] == pytest.approx(eps * 296 / 10240)  # 0.2108
    assert d["2.weight"] == pytest.approx(eps * 512 / 65536)  # 0.0570
    assert d["4.weight"] == pytest.approx(eps * 266 / 2560)  # 0.7579
    assert d["4.weight"] == pytest.approx(0.757877, abs=1e-6)
    total = sum(d[n] * math.prod(s) for n, s in shapes.items())
    assert total == pytest.approx(0.1 * 78336)


def test_erk_kernel_term_and_a_layer_made_dense_by_the_budget():
    # conv (8, 3, 3, 3): (n_in + n_out + kh + kw) / (n_in n_out kh kw) = 17 / 216
    d = erk_densities({"conv": (8, 3, 3, 3), "fc": (10, 32)}, 0.8)
    eps = 0.2 * (216 + 320) / (17 + 42)
    assert d == pytest.approx({"conv": eps * 17 / 216, "fc": eps * 42 / 320})
    # a tiny layer would get eps * 1.0 > 1: it is made dense, its share taken from the other
    d = erk_densities({"tiny": (2, 2), "big": (100, 100)}, 0.5)
    assert d["tiny"] == 1.0
    assert d["big"] == pytest.approx((0.5 * 10004 - 4) / 10000)  # 0.4998
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        erk_densities({"a": (2, 2)}, 1.0)


def test_allocate_hits_the_total_exactly():
    counts = allocate({"a": 10, "b": 10, "c": 10}, {"a": 0.25, "b": 0.25, "c": 0.25}, 8)
    assert sum(counts.values()) == 8 and sorted(counts.values()) == [2, 3, 3]


def test_rigl_initial_masks_have_the_erk_counts_and_exactly_the_target_sparsity():
    model = mlp()
    rigl = RigL(model, 0.9, t_end=100, generator=torch.Generator().manual_seed(0))
    total = 78336
    assert rigl.masks.active == round(0.1 * total)
    shapes = {n: tuple(w.shape) for n, w in rigl.weights.items()}
    erk = erk_densities(shapes, 0.9)
    for name, density in rigl.masks.densities().items():
        assert density == pytest.approx(erk[name], abs=1.0 / math.prod(shapes[name]))
        assert int((rigl.weights[name] != 0).sum()) == int(rigl.masks.masks[name].sum())


def test_magnitude_prune_global_and_per_layer_by_hand():
    w = {"a": torch.tensor([0.1, -0.9, 0.5, 0.2]), "b": torch.tensor([0.3, 0.05, -0.7, 0.4])}
    ones = {k: torch.ones(4, dtype=torch.bool) for k in w}
    glob = magnitude_prune(w, ones, 0.5, "global")  # keep the 4 largest |w| of all 8
    assert glob["a"].tolist() == [False, True, True, False]
    assert glob["b"].tolist() == [False, False, True, True]
    layer = magnitude_prune(w, ones, 0.25, "layer")  # drop the smallest of each
    assert layer["a"].tolist() == [False, True, True, True]
    assert layer["b"].tolist() == [True, False, True, True]
    # monotone: a pruned weight with a large value stays pruned
    again = magnitude_prune({"a": torch.tensor([5.0, -0.9, 0.5, 0.2])}, {"a": layer["a"]},
                            0.5, "layer")  # fmt: skip
    assert again["a"].tolist() == [False, True, True, False]


def test_drop_and_grow_by_hand():
    weight = torch.tensor([0.5, -0.1, 0.0, 0.3, 0.0, 0.0])
    mask = torch.tensor([True, True, False, True, False, False])
    grad = torch.tensor([0.0, 0.0, 0.2, 0.0, 0.9, 0.4])
    weight[5] = 7.0  # a stale value under the mask: a new connection must start at zero
    new = drop_and_grow(weight, mask, grad, 2)
    # drop -0.1 and 0.3 (smallest active |w|); grow positions 4 and 5 (largest |grad|)
    assert new.tolist() == [True, False, False, False, True, True]
    assert weight[4] == 0 and weight[5] == 0 and weight[0] == 0.5
    assert int(new.sum()) == int(mask.sum())


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: torch.optim.Adam(p, lr=0.01),
    lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
], ids=["sgd_momentum", "adam", "adamw"])  # fmt: skip
def test_pruned_weights_and_their_optimizer_state_stay_zero(make_opt):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = make_opt(model.parameters())
    x, y = torch.randn(32, 6), torch.randint(3, (32,))

    def train_step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):  # fill the momentum / Adam state while dense
        train_step()
    gmp = GMP(model, 0.5, t_0=0, t_end=0, delta_t=1, optimizer=opt)  # prunes to 0.5 now
    pruned = {n: ~m for n, m in gmp.masks.masks.items()}
    for _ in range(5):
        train_step()
        gmp.step()
    for name, w in gmp.weights.items():
        assert torch.all(w[pruned[name]] == 0)
        for value in opt.state[w].values():
            if value.shape == w.shape:
                assert torch.all(value[pruned[name]] == 0)
    # the dense gradient moves pruned weights in every optimizer step: step() must run after it
    train_step()
    w = gmp.weights["0.weight"]
    assert torch.any(w[pruned["0.weight"]] != 0)
    gmp.step()
    assert torch.all(w[pruned["0.weight"]] == 0)


def test_masks_apply_zeroes_entries_the_optimizer_moved():
    w = nn.Parameter(torch.ones(4))
    opt = torch.optim.SGD([w], lr=0.5, momentum=0.9)
    w.grad = torch.ones(4)
    opt.step()  # w = 0.5, momentum buffer [1, 1, 1, 1]
    masks = Masks({"w": w}, {"w": torch.tensor([True, False, True, False])})
    masks.apply(opt)
    assert w.tolist() == [0.5, 0.0, 0.5, 0.0]
    assert opt.state[w]["momentum_buffer"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert masks.sparsity == 0.5 and masks.total == 4 and masks.active == 2
