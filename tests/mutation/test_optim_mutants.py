"""Lion, NAdamW and Adan: the cases that the update-rule tests of tests/optim let mutants through
(the defaults, a weight decay of exactly 1, both code paths). Every expected value is one or two
steps worked out by hand; docs/mutation.md lists the mutants that no test can kill."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import Adan, Lion, NAdamW

PATHS = pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "per-tensor"])


def one_step(opt_class, start, grad, **kwargs):
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = opt_class([p], **kwargs)
    p.grad = torch.tensor(grad, dtype=torch.float64)
    opt.step()
    return p.detach().tolist(), opt


# -- Lion ----------------------------------------------------------------------------------------


def test_lion_defaults():
    # lr 1e-4, no decay: every coordinate with a gradient moves by exactly 1e-4 against its sign
    p, opt = one_step(Lion, [1.0, -2.0, 0.5], [2.0, -3.0, 0.0])
    assert p == pytest.approx([1.0 - 1e-4, -2.0 + 1e-4, 0.5], abs=1e-15)
    assert opt.defaults["betas"] == (0.9, 0.99) and opt.defaults["weight_decay"] == 0.0


@PATHS
def test_lion_weight_decay_of_one(foreach):
    # p (1 - lr wd) - lr sign(g): 1 * 0.9 - 0.1 = 0.8 and -2 * 0.9 + 0.1 = -1.7
    p, _ = one_step(Lion, [1.0, -2.0], [1.0, -1.0], lr=0.1, weight_decay=1.0, foreach=foreach)
    assert p == pytest.approx([0.8, -1.7], abs=1e-15)


# -- NAdamW --------------------------------------------------------------------------------------
# The first step from m = v = 0 is lr (1 + b1) g / (|g| + eps) (tests/optim/test_nadamw.py), after
# the decay p (1 - lr wd).


def test_nadamw_defaults():
    # lr 1e-3, b1 0.9, eps 1e-8, no decay: 1 - 1e-3 * 1.9 * 2 / (2 + 1e-8)
    p, opt = one_step(NAdamW, [1.0], [2.0])
    assert p == pytest.approx([1.0 - 1e-3 * 1.9 * 2 / (2 + 1e-8)], abs=1e-15)
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["weight_decay"] == 0.0


@PATHS
def test_nadamw_weight_decay_of_one(foreach):
    # 1 * (1 - 0.1) - 0.1 * 1.9 = 0.71
    p, _ = one_step(NAdamW, [1.0], [1.0], lr=0.1, eps=0.0, weight_decay=1.0, foreach=foreach)
    assert p == pytest.approx([0.71], abs=1e-15)


# -- Adan ----------------------------------------------------------------------------------------
# The first step has d = 0, so it is lr g / (|g| + eps): from p = 2 with g = 1 and eps = 0 it
# reaches 2 - lr before the decay (tests/optim/test_adan.py).


def test_adan_defaults():
    # lr 1e-3, eps 1e-8: 1 - 1e-3 * 2 / (2 + 1e-8)
    p, opt = one_step(Adan, [1.0], [2.0])
    assert p == pytest.approx([1.0 - 1e-3 * 2 / (2 + 1e-8)], abs=1e-15)
    assert opt.defaults["betas"] == (0.98, 0.92, 0.99) and opt.defaults["weight_decay"] == 0.0


@PATHS
@pytest.mark.parametrize(
    ("wd", "proximal", "expected"),
    [
        (0.5, True, 1.9 / 1.05),  # (p - lr u) / (1 + lr wd)
        (0.5, False, 2 * 0.95 - 0.1),  # p (1 - lr wd) - lr u
        (1.0, True, 1.9 / 1.1),
        (1.0, False, 2 * 0.9 - 0.1),
    ],
)
def test_adan_weight_decay_both_forms_both_paths(foreach, wd, proximal, expected):
    p, _ = one_step(
        Adan, [2.0], [1.0], lr=0.1, eps=0.0, weight_decay=wd, proximal=proximal, foreach=foreach
    )
    assert p == pytest.approx([expected], abs=1e-15)


def test_adan_rejects_a_negative_weight_decay():
    with pytest.raises(ValueError) as info:
        Adan([torch.zeros(1, requires_grad=True)], weight_decay=-0.1)
    assert str(info.value) == "Adan: weight_decay must be >= 0, got -0.1"
