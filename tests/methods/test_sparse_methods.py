"""GMP's cubic schedule against hand values and its pruning steps; RigL's drop/grow counts, that
grown weights start at zero (weight and Adam state) and are chosen by gradient magnitude;
GraNet's prune-and-regrow keeps the scheduled sparsity, in both modes."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainlab.methods.sparse import (
    GMP,
    GraNet,
    RigL,
    gmp_sparsity,
    pruning_steps,
    regeneration_fraction,
    rigl_drop_fraction,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # small models on a shared CPU run faster on one thread than fighting over several
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_cubic_schedule_by_hand():
    # s_t = 0.9 + (0 - 0.9)(1 - (t - 100)/400)^3
    assert gmp_sparsity(50, 0.9, 100, 500) == 0.0
    assert gmp_sparsity(100, 0.9, 100, 500) == 0.0
    assert gmp_sparsity(200, 0.9, 100, 500) == pytest.approx(0.9 * (1 - 0.75**3))  # 0.5203125
    assert gmp_sparsity(200, 0.9, 100, 500) == pytest.approx(0.5203125)
    assert gmp_sparsity(300, 0.9, 100, 500) == pytest.approx(0.7875)
    assert gmp_sparsity(400, 0.9, 100, 500) == pytest.approx(0.8859375)
    assert gmp_sparsity(500, 0.9, 100, 500) == 0.9
    assert gmp_sparsity(900, 0.9, 100, 500) == 0.9
    assert gmp_sparsity(300, 0.9, 100, 500, initial_sparsity=0.5) == pytest.approx(0.85)
    assert pruning_steps(100, 500, 100) == [100, 200, 300, 400, 500]
    assert pruning_steps(0, 10, 4) == [0, 4, 8, 10]


def test_rigl_and_granet_fractions_by_hand():
    assert rigl_drop_fraction(25, 0.3, 100) == pytest.approx(0.15 * (1 + math.sqrt(0.5)))
    assert rigl_drop_fraction(100, 0.3, 100) == 0.0
    assert regeneration_fraction(75, 0.5, 100) == pytest.approx(0.25 * (1 - math.sqrt(0.5)))


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 4))  # fmt: skip


def _loop(model, opt, sparsifier, steps, check=None):
    gen = torch.Generator().manual_seed(1)
    for t in range(1, steps + 1):
        x, y = torch.randn(16, 10, generator=gen), torch.randint(4, (16,), generator=gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        before = {n: m.clone() for n, m in sparsifier.masks.masks.items()}
        changed = sparsifier.step()
        if check is not None:
            check(t, changed, before)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_gmp_prunes_on_schedule_to_exact_counts_and_masks_only_grow(scope):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gmp = GMP(model, 0.8, t_0=4, t_end=20, delta_t=5, optimizer=opt, scope=scope)
    sizes = {n: w.numel() for n, w in gmp.weights.items()}

    def check(t, changed, before):
        assert changed == (t in (4, 9, 14, 19, 20))
        s = gmp.target(max([p for p in (4, 9, 14, 19, 20) if p <= t], default=0))
        if scope == "layer":
            for name, mask in gmp.masks.masks.items():
                zeros = sizes[name] - int(mask.sum()) if t >= 4 else 0
                assert zeros == (round(s * sizes[name]) if t >= 4 else 0)
        else:
            assert gmp.masks.total - gmp.masks.active == (
                round(s * gmp.masks.total) if t >= 4 else 0
            )
        for name, mask in gmp.masks.masks.items():
            assert not torch.any(mask & ~before[name])  # nothing comes back
            assert torch.all(gmp.weights[name][~mask] == 0)

    _loop(model, opt, gmp, 25, check)
    assert gmp.updates == [4, 9, 14, 19, 20]
    assert gmp.sparsity == pytest.approx(0.8, abs=3 / gmp.masks.total)


def test_rigl_drops_and_grows_the_scheduled_count_by_gradient_with_zero_new_weights():
    torch.manual_seed(0)
    layer = nn.Linear(20, 10, bias=False)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    rigl = RigL(layer, 0.5, t_end=100, delta_t=10, alpha=0.3, optimizer=opt,
                generator=torch.Generator().manual_seed(0))  # fmt: skip
    w = layer.weight
    assert rigl.masks.active == 100
    layer(torch.randn(4, 20)).sum().backward()
    opt.step()  # Adam state exists for every entry; the masked ones are zeroed by step()
    assert not rigl.step(5)  # not an update step
    old = rigl.masks.masks["weight"].clone()
    # a gradient that is zero on active weights and distinct on inactive ones
    grad = torch.rand(10, 20, generator=torch.Generator().manual_seed(2)) + 0.1
    w.grad = torch.where(old, torch.zeros_like(grad), grad)
    magnitudes = torch.where(old, w.detach().abs(), torch.full_like(grad, float("inf")))
    assert rigl.step(10)
    new = rigl.masks.masks["weight"]
    k = math.floor(rigl_drop_fraction(10, 0.3, 100) * 100)  # 0.15 (1 + cos(pi/10)) -> 29
    assert k == 29
    assert int(new.sum()) == 100
    dropped, grown = old & ~new, new & ~old
    assert int(dropped.sum()) == int(grown.sum()) == k
    # dropped: the k smallest |w| among active; grown: the k largest |grad| among inactive
    assert set(torch.topk(-magnitudes.flatten(), k).indices.tolist()) == set(
        dropped.flatten().nonzero().flatten().tolist()
    )
    assert set(torch.topk(w.grad.flatten(), k).indices.tolist()) == set(
        grown.flatten().nonzero().flatten().tolist()
    )
    assert torch.all(w[grown] == 0)
    for value in (opt.state[w]["exp_avg"], opt.state[w]["exp_avg_sq"]):
        assert torch.all(value[grown] == 0) and torch.all(value[~new] == 0)
    assert not rigl.step(100)  # t_end: no more updates


def test_rigl_keeps_every_layers_count_through_training():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rigl = RigL(model, 0.9, t_end=40, delta_t=10, optimizer=opt,
                generator=torch.Generator().manual_seed(0))  # fmt: skip
    counts = {n: int(m.sum()) for n, m in rigl.masks.masks.items()}
    moved = []

    def check(t, changed, before):
        assert {n: int(m.sum()) for n, m in rigl.masks.masks.items()} == counts
        moved.append(sum(int((m != before[n]).sum()) for n, m in rigl.masks.masks.items()))

    _loop(model, opt, rigl, 50, check)
    assert rigl.updates == [10, 20, 30]
    assert moved[9] > 0 and moved[4] == 0 and moved[39] == 0  # at 10 only, never at 40


@pytest.mark.parametrize("initial", [0.0, 0.5], ids=["dense_to_sparse", "sparse_to_sparse"])
def test_granet_prune_and_regrow_keeps_the_scheduled_sparsity(initial):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    granet = GraNet(model, 0.9, t_0=0, t_end=30, delta_t=10, total_steps=40, optimizer=opt,
                    initial_sparsity=initial, generator=gen)  # fmt: skip
    total = granet.masks.total
    assert granet.masks.total - granet.masks.active == round(initial * total)
    regrown = []

    def check(t, changed, before):
        assert changed == (t in (10, 20, 30))
        last = 10 * min(t // 10, 3)  # the last pruning step so far
        expected = gmp_sparsity(last, 0.9, 0, 30, initial)
        assert total - granet.masks.active == round(expected * total)
        if changed:  # weights that were inactive and are active now: regrowth
            regrown.append(sum(int((m & ~before[n]).sum()) for n, m in granet.masks.masks.items()))
        for name, mask in granet.masks.masks.items():
            assert torch.all(granet.weights[name][~mask] == 0)

    _loop(model, opt, granet, 35, check)
    assert granet.sparsity == pytest.approx(round(0.9 * total) / total)
    assert regrown[1] > 0 and regrown[2] > 0  # connections came back after the first pruning


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        GMP(_model(), 1.0, 0, 10, 1)
    with pytest.raises(ValueError, match="t_0 <= t_end"):
        GMP(_model(), 0.5, 10, 5, 1)
    with pytest.raises(ValueError, match="initial_sparsity"):
        GraNet(_model(), 0.5, 0, 10, 1, 20, initial_sparsity=0.6)
    rigl = RigL(_model(), 0.5, t_end=10, delta_t=1)
    with pytest.raises(ValueError, match="no gradient"):
        rigl.step(1)
    with pytest.raises(ValueError, match="no Linear or Conv"):
        RigL(nn.GRU(3, 3), 0.5, t_end=10)


@pytest.mark.parametrize("cls", ["GMP", "RigL", "GraNet"])
def test_help_of_each_sparsifier_shows_a_plain_loop(cls):
    """``help(GMP)`` (the class docstring, not only the module's) shows the loop to copy."""
    import trainlab.methods.sparse as sparse

    doc = getattr(sparse, cls).__doc__
    assert "for x, y in loader:" in doc and "opt.step()" in doc
    assert f"{cls.lower()}.step()" in doc and f"= {cls}(model" in doc
