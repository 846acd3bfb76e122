"""Muon against its update rule written out by hand, the orthogonality of the Newton-Schulz
output, and the authors' package (``muon-optimizer`` 0.1.0 from PyPI), step for step."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlab.optim import Muon, create_optimizer, muon_param_groups, newton_schulz
from trainlab.registry import get_workload

A, B, C = 3.4445, -4.7750, 2.0315


# -- plain-python linear algebra on lists of rows --


def matmul(x, y):
    return [[sum(x[i][k] * y[k][j] for k in range(len(y))) for j in range(len(y[0]))]
            for i in range(len(x))]  # fmt: skip


def transpose(x):
    return [list(col) for col in zip(*x, strict=True)]


def combine(*terms):
    """sum of coefficient * matrix"""
    rows, cols = len(terms[0][1]), len(terms[0][1][0])
    return [[sum(k * m[i][j] for k, m in terms) for j in range(cols)] for i in range(rows)]


def ns_by_hand(g, steps, eps=1e-7):
    """X <- aX + b(XX^T)X + c(XX^T)^2 X on G / (||G||_F + eps), transposed when rows > cols."""
    tall = len(g) > len(g[0])
    x = transpose(g) if tall else [row[:] for row in g]
    norm = math.sqrt(sum(v * v for row in x for v in row))
    x = [[v / (norm + eps) for v in row] for row in x]
    for _ in range(steps):
        gram = matmul(x, transpose(x))
        gx = matmul(gram, x)
        ggx = matmul(gram, gx)
        x = combine((A, x), (B, gx), (C, ggx))
    return transpose(x) if tall else x


def muon_by_hand(p, grads, lr, mu, wd, nesterov=True, steps=5):
    """Muon on one matrix ``p`` (list of rows) through ``grads``."""
    rows, cols = len(p), len(p[0])
    m = [[0.0] * cols for _ in range(rows)]
    for g in grads:
        m = combine((mu, m), (1 - mu, g))
        u = combine((1 - mu, g), (mu, m)) if nesterov else m
        o = ns_by_hand(u, steps)
        scale = math.sqrt(max(1.0, rows / cols))
        p = combine((1 - lr * wd, p), (-lr * scale, o))
    return p


G = [[0.5, -1.0, 0.25], [2.0, 0.1, -0.3]]


@pytest.mark.parametrize("g", [G, transpose(G)], ids=["wide", "tall"])
def test_one_newton_schulz_iteration_matches_the_formula(g):
    got = newton_schulz(torch.tensor(g, dtype=torch.float64), steps=1)
    assert got.dtype == torch.float64 and got.shape == (len(g), len(g[0]))
    expected = torch.tensor(ns_by_hand(g, 1), dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    # the formula by hand, once more for the wide case: X1 = aX + b(XX^T)X + c(XX^T)^2X
    if len(g) < len(g[0]):
        x = torch.tensor(g, dtype=torch.float64)
        x = x / (x.norm() + 1e-7)
        gram = x @ x.T
        torch.testing.assert_close(got, A * x + B * gram @ x + C * gram @ gram @ x)


def test_five_iterations_match_the_formula():
    got = newton_schulz(torch.tensor(G, dtype=torch.float64))
    expected = ns_by_hand(G, 5)
    for row, want in zip(got.tolist(), expected, strict=True):
        assert row == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48), (4, 3, 8)])
def test_newton_schulz_output_is_nearly_orthogonal(shape):
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(shape, generator=gen)
    o = newton_schulz(g)
    assert o.dtype == torch.float32  # on CPU in float32 (the release: bfloat16)
    s = torch.linalg.svdvals(o)
    # the quintic's known band for singular values not tiny relative to ||G||_F
    assert s.min() > 0.65 and s.max() < 1.2, (s.min(), s.max())
    # ... with the singular vectors of G kept: U^T O V is diagonal
    u, _, vh = torch.linalg.svd(g.double(), full_matrices=False)
    core = u.mT @ o.double() @ vh.mT
    off = core - torch.diag_embed(torch.diagonal(core, dim1=-2, dim2=-1))
    assert off.abs().max() < 1e-4


def test_newton_schulz_refuses_vectors():
    with pytest.raises(ValueError, match="ndim >= 2"):
        newton_schulz(torch.ones(3))


P0 = [[1.0, -2.0, 0.5], [0.3, 0.0, -1.0]]
GRADS = [G, [[0.2, 0.3, -0.4], [-1.5, 0.05, 0.01]], [[1.0, 1.0, 0.0], [0.0, -2.0, 0.5]]]


@pytest.mark.parametrize("wd", [0.0, 0.5])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("tall", [False, True])
def test_steps_match_the_update_rule(run_steps, wd, nesterov, tall):
    start = transpose(P0) if tall else P0
    grads = [transpose(g) for g in GRADS] if tall else GRADS
    _, (p,) = run_steps(
        lambda p: Muon([p], lr=0.1, momentum=0.9, weight_decay=wd, nesterov=nesterov),
        [start],
        [grads],
    )
    expected = muon_by_hand(start, grads, 0.1, 0.9, wd, nesterov)
    for row, want in zip(p, expected, strict=True):
        assert row == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_a_convolution_kernel_is_its_flattened_matrix():
    gen = torch.Generator().manual_seed(1)
    grads = [torch.randn(3, 2, 2, 2, generator=gen, dtype=torch.float64) for _ in range(3)]
    conv = torch.zeros(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    mat = torch.zeros(3, 8, dtype=torch.float64, requires_grad=True)
    opts = [Muon([conv], lr=0.1), Muon([mat], lr=0.1)]
    for g in grads:
        conv.grad, mat.grad = g.clone(), g.reshape(3, 8).clone()
        for opt in opts:
            opt.step()
    torch.testing.assert_close(conv.detach().reshape(3, 8), mat.detach(), rtol=0, atol=0)
    # a tall flattened kernel (out > in*kh*kw) is scaled by sqrt(out / (in*kh*kw))
    tall = torch.zeros(8, 1, 1, 2, dtype=torch.float64, requires_grad=True)
    opt = Muon([tall], lr=0.1, momentum=0.0)
    tall.grad = torch.randn(8, 1, 1, 2, generator=gen, dtype=torch.float64)
    opt.step()
    expected = -0.1 * 2.0 * newton_schulz(tall.grad.reshape(8, 2))
    torch.testing.assert_close(tall.detach().reshape(8, 2), expected)


def test_the_gradient_is_left_unchanged():
    p = torch.ones(3, 4, requires_grad=True)
    p.grad = torch.arange(12.0).reshape(3, 4)
    before = p.grad.clone()
    Muon([p], lr=0.1).step()
    assert torch.equal(p.grad, before)


def test_use_muon_false_is_adamw():
    gen = torch.Generator().manual_seed(2)
    grads = [torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(6)]
    a = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
    ours = Muon([{"params": [a], "use_muon": False}], lr=0.01, weight_decay=0.1, eps=1e-8)
    ref = torch.optim.AdamW([b], lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_routing_by_shape_and_its_errors():
    w = torch.zeros(2, 3, requires_grad=True)
    v = torch.zeros(3, requires_grad=True)
    opt = Muon([w, v])
    w.grad, v.grad = torch.ones(2, 3), torch.ones(3)
    opt.step()
    assert set(opt.state[w]) == {"momentum_buffer"}
    assert set(opt.state[v]) == {"step", "exp_avg", "exp_avg_sq"}
    with pytest.raises(ValueError, match="use_muon=True group holds a parameter of shape"):
        Muon([{"params": [w, v], "use_muon": True}])
    with pytest.raises(ValueError, match="use_muon must be"):
        Muon([{"params": [w], "use_muon": "yes"}])


def test_state_dict_round_trip_is_bitwise(check_roundtrip):
    check_roundtrip(lambda groups: Muon(groups, lr=0.02, weight_decay=0.1))


def test_param_groups_use_their_own_lr(check_lr_scales_the_step):
    # 1-d tensors: AdamW's step; every group's lr scales it
    check_lr_scales_the_step(lambda g: Muon(g, lr=1.0), [[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]])
    # matrices: the Muon step is linear in lr too
    a, b = (torch.zeros(3, 2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    opt = Muon([{"params": [a]}, {"params": [b], "lr": 0.3}], lr=0.1)
    for k in range(3):
        a.grad = torch.arange(6.0, dtype=torch.float64).reshape(3, 2).sin() + k
        b.grad = a.grad.clone()
        opt.step()
    torch.testing.assert_close(b.detach(), 3 * a.detach())


def test_no_host_sync(run_without_sync):
    run_without_sync(lambda groups: Muon(groups, lr=0.02, weight_decay=0.1))


def test_minimizes_a_regression(check_minimizes_regression):
    # the (5, 1) weight takes orthogonalised (normalised) steps: they need a decaying lr
    check_minimizes_regression(
        lambda groups: Muon(groups, lr=0.05, betas=(0.9, 0.99)), steps=1500, schedule="linear"
    )


# -- the parameter split --


def test_muon_param_groups_on_the_gpt_with_tied_embeddings():
    model = get_workload("charlm_gpt").init_model(0)
    hidden, aux, vectors = muon_param_groups(model, lr=0.05, adam_lr=1e-3, weight_decay=0.1)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    # the token embedding (= the tied head) and the position embedding: AdamW, each once
    assert ids(aux["params"]) == {id(model.tok.weight), id(model.pos.weight)}
    assert len(aux["params"]) == 2 and aux["use_muon"] is False and aux["lr"] == 1e-3
    assert all(p.ndim == 2 for p in hidden["params"]) and hidden["use_muon"] is True
    assert all(p.ndim == 1 for p in vectors["params"]) and vectors["weight_decay"] == 0.0
    everything = ids(hidden["params"]) | ids(aux["params"]) | ids(vectors["params"])
    assert everything == ids(model.parameters())
    assert len(hidden["params"]) + 2 + len(vectors["params"]) == len(list(model.parameters()))
    Muon(muon_param_groups(model))  # accepted as they are


def test_muon_param_groups_on_a_cnn_take_the_last_linear_as_head():
    model = get_workload("digits_cnn").init_model(0)
    hidden, aux, _ = muon_param_groups(model)
    assert [id(p) for p in aux["params"]] == [id(model.head.weight)]
    assert all(p.ndim == 4 for p in hidden["params"]) and hidden["params"]
    # an explicit head
    hidden2, aux2, _ = muon_param_groups(model, head=nn.Identity())
    assert aux2["params"] == [] and len(hidden2["params"]) == len(hidden["params"]) + 1


def test_create_optimizer_by_name():
    opt = create_optimizer(nn.Linear(3, 2), "muon", lr=0.01, weight_decay=0.1)
    assert type(opt) is Muon and [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


# -- the authors' package --


def _package():
    muon = pytest.importorskip("muon", reason="muon-optimizer (test extra) not installed")
    if not hasattr(muon, "SingleDeviceMuonWithAuxAdam"):
        pytest.skip("another package named muon")
    return muon


SHAPES = [(8, 5), (5, 8), (6, 6), (5,), (8,)]


def _against_package(dtype, ns_dtype, steps=8):
    muon = _package()
    gen = torch.Generator().manual_seed(4)
    starts = [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES] for _ in range(steps)]
    ours = [nn.Parameter(s.clone()) for s in starts]
    theirs = [nn.Parameter(s.clone()) for s in starts]

    def groups(ps):
        return [
            dict(params=ps[:3], use_muon=True, lr=0.05, momentum=0.95, weight_decay=0.1),
            dict(params=ps[3:], use_muon=False, lr=3e-3, betas=(0.9, 0.95), eps=1e-10,
                 weight_decay=0.01),
        ]  # fmt: skip

    opt = Muon(groups(ours), ns_dtype=ns_dtype)
    ref = muon.SingleDeviceMuonWithAuxAdam(groups(theirs))
    for step in grads:
        for a, b, g in zip(ours, theirs, step, strict=True):
            a.grad, b.grad = g.clone(), g.clone()  # the package's Nesterov step writes b.grad
        opt.step()
        ref.step()
    return ours, theirs


def test_step_for_step_against_the_authors_package_in_float64(monkeypatch):
    _package()
    # the package runs the iteration in bfloat16: let it keep the input's dtype (float64) so
    # the two implementations can be compared to rounding error
    monkeypatch.setattr(torch.Tensor, "bfloat16", lambda self: self)
    ours, theirs = _against_package(torch.float64, None)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_against_the_authors_package_in_bfloat16():
    # the release's own precision: ns_dtype=bfloat16 follows it up to bfloat16 rounding
    ours, theirs = _against_package(torch.float32, torch.bfloat16, steps=4)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-2, atol=2e-3)


def test_conv_update_against_the_authors_function():
    muon = _package()
    gen = torch.Generator().manual_seed(5)
    grads = [torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64) for _ in range(3)]
    p = torch.zeros(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    opt = Muon([p], lr=1.0)
    buf = torch.zeros(4, 3, 3, 3, dtype=torch.float64)
    expected = torch.zeros(4, 27, dtype=torch.float64)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.Tensor, "bfloat16", lambda self: self)
        for g in grads:
            p.grad = g.clone()
            opt.step()
            # (4, 27) is wide: the package's scale (kh/kw = 1) and ours (r/c < 1) agree
            expected -= muon.muon_update(g.clone(), buf, beta=0.95)
    torch.testing.assert_close(p.detach().reshape(4, 27), expected, rtol=1e-10, atol=1e-12)
