"""Shampoo against its equations written out on small tensors (Gupta et al., 2018; Anil et al.,
2020; Shi et al., 2023): the Kronecker factors, their inverse roots by ``torch.linalg.eigh``,
the Adam grafting norm, blocking; and AdamW / NAdamW when preconditioning never starts."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import NAdamW, Shampoo
from trainlab.optim.shampoo import blocks

F64 = torch.float64


def _grads(shape, steps, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=F64) for _ in range(steps)]


def _run(opt_or_make, start, grads):
    p = start.clone().requires_grad_()
    opt = opt_or_make([p])
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach(), opt


def _inv_root(mat, p, eps):
    values, vectors = torch.linalg.eigh(mat)
    return vectors @ torch.diag((values.clamp(min=0) + eps) ** (-1.0 / p)) @ vectors.T


def _matrix_by_hand(w, grads, *, lr, b1, b2, eps, graft_eps, wd, start, freq, nesterov=False):
    """Shampoo on one matrix, written with plain matrix products: L = EMA of G G^T,
    R = EMA of G^T G, direction L^-1/4 N R^-1/4 rescaled to the Adam direction's norm."""
    w = w.clone()
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    left, right = (
        torch.zeros(w.shape[0], w.shape[0], dtype=F64),
        torch.zeros(w.shape[1], w.shape[1], dtype=F64),
    )
    ql = qr = None
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        n = (b1 * m + (1 - b1) * g if nesterov else m) / (1 - b1**t)
        adam = n / (torch.sqrt(v / (1 - b2**t)) + graft_eps)
        left = b2 * left + (1 - b2) * g @ g.T
        right = b2 * right + (1 - b2) * g.T @ g
        if t >= start and (t - start) % freq == 0:
            ql = _inv_root(left / (1 - b2**t), 4, eps)
            qr = _inv_root(right / (1 - b2**t), 4, eps)
        if t >= start:
            pre = ql @ n @ qr
            step = pre * torch.linalg.norm(adam) / torch.linalg.norm(pre)
        else:
            step = adam
        w = w * (1 - lr * wd) - lr * step
    return w


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize(("start", "freq"), [(1, 1), (2, 2)])
def test_a_2x3_weight_follows_the_equations(nesterov, start, freq, foreach):
    w0 = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]], dtype=F64)
    grads = _grads((2, 3), 3)
    hp = dict(lr=0.1, b1=0.9, b2=0.95, eps=1e-6, graft_eps=1e-8, wd=0.1)
    got, opt = _run(
        lambda ps: Shampoo(
            ps,
            lr=0.1,
            betas=(0.9, 0.95),
            epsilon=1e-6,
            weight_decay=0.1,
            nesterov=nesterov,
            foreach=foreach,
            precondition_frequency=freq,
            start_preconditioning_step=start,
        ),  # fmt: skip
        w0,
        grads,
    )
    expected = _matrix_by_hand(w0, grads, start=start, freq=freq, nesterov=nesterov, **hp)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # the statistics are the EMAs of G G^T and G^T G
    state = opt.state[opt.param_groups[0]["params"][0]]
    left = sum(0.05 * 0.95 ** (3 - k) * g @ g.T for k, g in enumerate(grads, start=1))
    torch.testing.assert_close(state["factor0.0"], left, rtol=1e-12, atol=0)
    assert state["factor0.1"].shape == (3, 3) and state["inv_root0.1"].shape == (3, 3)


def test_the_first_step_is_the_normalised_gradient_scaled_to_adams_norm():
    # a rank-1 gradient G = s u v^T (unit u, v; s = ||G||_F): at step 1, L = G G^T = s^2 u u^T
    # and R = s^2 v v^T, so L^-1/4 G R^-1/4 = u v^T = G / s; Adam's step is sign(G) (norm
    # sqrt(6)): the update is -lr * sqrt(6) * G / ||G||_F
    g = torch.outer(torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([0.5, 3.0, -1.0],
                                                                       dtype=F64))  # fmt: skip
    w0 = torch.zeros(2, 3, dtype=F64)
    got, _ = _run(lambda ps: Shampoo(ps, lr=0.01, precondition_frequency=1, graft_eps=0.0), w0, [g])
    torch.testing.assert_close(got, -0.01 * math.sqrt(6) * g / torch.linalg.norm(g))


def test_an_order_3_tensor_uses_the_6th_root_of_each_unfolding():
    shape, steps, b2, eps = (2, 3, 2), 4, 0.9, 1e-4
    grads = _grads(shape, steps, seed=5)
    w0 = torch.zeros(shape, dtype=F64)
    got, _ = _run(
        lambda ps: Shampoo(
            ps,
            lr=1.0,
            betas=(0.0, b2),
            epsilon=eps,
            precondition_frequency=2,
            start_preconditioning_step=2,
            graft_eps=0.0,
        ),  # fmt: skip
        w0,
        grads,
    )
    # by hand: b1 = 0, so n = g; roots at steps 2 and 4 from the unfoldings G_(i)
    factors = [torch.zeros(d, d, dtype=F64) for d in shape]
    w, v = w0.clone(), torch.zeros(shape, dtype=F64)
    for t, g in enumerate(grads, start=1):
        v = b2 * v + (1 - b2) * g * g
        adam = g / torch.sqrt(v / (1 - b2**t))
        for i, d in enumerate(shape):
            unfold = g.movedim(i, 0).reshape(d, -1)
            factors[i] = b2 * factors[i] + (1 - b2) * unfold @ unfold.T
        if t in (2, 4):
            q = [_inv_root(f / (1 - b2**t), 6, eps) for f in factors]
        step = adam
        if t >= 2:
            pre = torch.einsum("abc,ai,bj,ck->ijk", g, *q)
            step = pre * torch.linalg.norm(adam) / torch.linalg.norm(pre)
        w = w - step
    torch.testing.assert_close(got, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("foreach", [True, False])
def test_without_preconditioning_it_is_adamw_step_for_step(foreach):
    gen = torch.Generator().manual_seed(2)
    starts = [torch.randn(4, 3, generator=gen, dtype=F64), torch.randn(3, generator=gen,
                                                                        dtype=F64)]  # fmt: skip
    ours = [s.clone().requires_grad_() for s in starts]
    ref = [s.clone().requires_grad_() for s in starts]
    opt = Shampoo(ours, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1, graft_eps=1e-8,
                  precondition_frequency=1000, start_preconditioning_step=1000,
                  foreach=foreach)  # fmt: skip
    adamw = torch.optim.AdamW(ref, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for _ in range(6):
        for a, b in zip(ours, ref, strict=True):
            a.grad = torch.randn(a.shape, generator=gen, dtype=F64)
            b.grad = a.grad.clone()
        opt.step()
        adamw.step()
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert "inv_root0.0" not in opt.state[ours[0]]


def test_with_nesterov_and_without_preconditioning_it_is_nadamw():
    grads = _grads((3, 2), 5, seed=4)
    w0 = torch.ones(3, 2, dtype=F64)
    got, _ = _run(lambda ps: Shampoo(ps, lr=0.01, weight_decay=0.2, nesterov=True,
                                     start_preconditioning_step=99), w0, grads)  # fmt: skip
    expected, _ = _run(lambda ps: NAdamW(ps, lr=0.01, weight_decay=0.2), w0, grads)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_vectors_take_the_adam_step_alone():
    grads = _grads((5,), 4, seed=6)
    w0 = torch.ones(5, dtype=F64)
    got, opt = _run(lambda ps: Shampoo(ps, lr=0.01, precondition_frequency=1), w0, grads)
    expected, _ = _run(lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.0), w0, grads)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    assert sorted(opt.state[opt.param_groups[0]["params"][0]]) == [
        "exp_avg", "exp_avg_sq", "step"]  # fmt: skip


def test_a_10x3_weight_with_max_dim_4_is_three_blocks_preconditioned_separately():
    assert [tuple(b.shape) for b in blocks(torch.zeros(10, 3), 4)] == [(4, 3), (4, 3), (2, 3)]
    assert [tuple(b.shape) for b in blocks(torch.zeros(5, 6), 4)] == [
        (4, 4), (4, 2), (1, 4), (1, 2)]  # fmt: skip
    grads = _grads((10, 3), 4, seed=7)
    w0 = torch.zeros(10, 3, dtype=F64)

    def make(ps, max_dim):
        return Shampoo(ps, lr=0.1, betas=(0.9, 0.9), epsilon=1e-8, weight_decay=0.1,
                       max_preconditioner_dim=max_dim, precondition_frequency=1)  # fmt: skip

    got, opt = _run(lambda ps: make(ps, 4), w0, grads)
    state = opt.state[opt.param_groups[0]["params"][0]]
    shapes = {k: tuple(v.shape) for k, v in state.items() if k.startswith("factor")}
    assert shapes == {
        "factor0.0": (4, 4), "factor0.1": (3, 3), "factor1.0": (4, 4), "factor1.1": (3, 3),
        "factor2.0": (2, 2), "factor2.1": (3, 3),
    }  # fmt: skip
    # each block moves as that block would alone, unblocked
    rows = [slice(0, 4), slice(4, 8), slice(8, 10)]
    for r in rows:
        alone, _ = _run(lambda ps: make(ps, 1024), w0[r], [g[r] for g in grads])
        torch.testing.assert_close(got[r], alone, rtol=1e-12, atol=1e-14)
    # and not as the unblocked matrix does
    whole, _ = _run(lambda ps: make(ps, 1024), w0, grads)
    assert not torch.allclose(got, whole)
    # the same along the second dimension (blocks that are not contiguous in memory)
    got_t, _ = _run(lambda ps: make(ps, 4), w0.T.contiguous(), [g.T.contiguous() for g in grads])
    torch.testing.assert_close(got_t, got.T, rtol=1e-12, atol=1e-14)


def test_roots_are_recomputed_every_precondition_frequency_steps_from_the_start_step():
    p = torch.zeros(3, 2, dtype=F64, requires_grad=True)
    opt = Shampoo([p], lr=0.01, precondition_frequency=3, start_preconditioning_step=2)
    roots = []
    for g in _grads((3, 2), 8, seed=8):
        p.grad = g
        opt.step()
        roots.append(opt.state[p].get("inv_root0.0"))
    assert roots[0] is None  # step 1 < start
    changed = [t for t in range(2, 9) if roots[t - 2] is None or not torch.equal(
        roots[t - 1], roots[t - 2])]  # fmt: skip
    assert changed == [2, 5, 8]


def test_changing_the_blocks_after_the_first_step_raises():
    p = torch.zeros(6, 2, requires_grad=True)
    opt = Shampoo([p], max_preconditioner_dim=4)
    p.grad = torch.ones(6, 2)
    opt.step()
    opt.param_groups[0]["max_preconditioner_dim"] = 3
    with pytest.raises(RuntimeError, match="max_preconditioner_dim changed"):
        opt.step()


def test_state_dict_round_trip_is_bitwise(check_roundtrip):
    check_roundtrip(lambda groups: Shampoo(groups, lr=1e-2, weight_decay=0.1,
                                           precondition_frequency=2))  # fmt: skip


def test_param_groups_use_their_own_lr(check_group_lr_is_its_own):
    grads = [[0.5, -1.0, 2.0], [0.1, 0.3, -0.4], [1.5, -0.2, 0.7]]
    check_group_lr_is_its_own(lambda groups, lr: Shampoo(groups, lr=lr), grads)


def test_no_host_sync(run_without_sync):
    run_without_sync(lambda groups: Shampoo(groups, lr=1e-3, weight_decay=0.1,
                                            precondition_frequency=1))  # fmt: skip


def test_minimizes_a_regression(check_minimizes_regression):
    check_minimizes_regression(
        lambda groups: Shampoo(groups, lr=0.05, precondition_frequency=5), steps=600,
        schedule="cosine",
    )  # fmt: skip
