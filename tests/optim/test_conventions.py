"""torch.optim's conventions, for every trainlab optimizer: the foreach and per-tensor paths
agree (and ``foreach=False`` really avoids multi-tensor kernels), a tensor lr, ``maximize``,
unsupported flags, mixed float dtypes, complex parameters as their real view, and a one-line
ValueError naming each out-of-range hyperparameter."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import LAMB, SGDW, Adan, DAdaptAdam, DoG, Lion, Muon, NAdamW, Prodigy, Shampoo
from trainlab.optim.schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD

# name -> constructor with settings that exercise every term (weight decay, momentum, ...)
MAKERS = {
    "NAdamW": lambda p, **kw: NAdamW(p, lr=0.01, weight_decay=0.1, **kw),
    "SGDW": lambda p, **kw: SGDW(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, **kw),
    "Lion": lambda p, **kw: Lion(p, lr=0.01, weight_decay=0.1, **kw),
    "Adan": lambda p, **kw: Adan(p, lr=0.01, weight_decay=0.1, **kw),
    "LAMB": lambda p, **kw: LAMB(p, lr=0.01, weight_decay=0.1, **kw),
    "DoG": lambda p, **kw: DoG(p, reps_rel=1e-2, weight_decay=0.1, **kw),
    "Prodigy": lambda p, **kw: Prodigy(
        p, d0=1e-3, weight_decay=0.1, use_bias_correction=True, **kw
    ),
    "DAdaptAdam": lambda p, **kw: DAdaptAdam(p, d0=1e-3, weight_decay=0.1, **kw),
    # preconditioned from step 2, roots every 2 steps, the (3, 4) weight in blocks
    "Shampoo": lambda p, **kw: Shampoo(
        p,
        lr=0.01,
        weight_decay=0.1,
        nesterov=True,
        precondition_frequency=2,
        start_preconditioning_step=2,
        max_preconditioner_dim=3,
        **kw,
    ),  # fmt: skip
    # by shape: the matrices (3, 4) and (2, 2, 2) take Muon steps, the vector (4,) AdamW's
    "Muon": lambda p, **kw: Muon(p, lr=0.01, weight_decay=0.1, **kw),
    "ScheduleFreeAdamW": lambda p, **kw: ScheduleFreeAdamW(
        p, lr=0.01, weight_decay=0.1, warmup_steps=2, **kw
    ),
    "ScheduleFreeSGD": lambda p, **kw: ScheduleFreeSGD(
        p, lr=0.1, weight_decay=0.1, warmup_steps=2, **kw
    ),
}
NAMES = list(MAKERS)
SHAPES = [(3, 4), (4,), (2, 2, 2)]
STEPS = 5


def _grads(dtype=torch.float64, complex_view=False):
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(STEPS):
        step = [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype) for s in SHAPES]
        out.append(step)
    return out


def _train(name, dtypes=(torch.float64,) * 3, grads=None, sign=1.0, lr=None, **kwargs):
    """Three tensors (two groups: the last one alone) trained for ``STEPS`` steps on fixed
    random gradients times ``sign``; returns them (float64 copies)."""
    gen = torch.Generator().manual_seed(1)
    params = [
        torch.randn(s, generator=gen, dtype=torch.float64).to(dt).requires_grad_()
        for s, dt in zip(SHAPES, dtypes, strict=True)
    ]
    opt = MAKERS[name]([{"params": params[:2]}, {"params": params[2:]}], **kwargs)
    if lr is not None:
        for group in opt.param_groups:
            group["lr"] = lr(group["lr"])
    for step in grads or _grads():
        for p, g in zip(params, step, strict=True):
            p.grad = (sign * g).to(p.dtype)
        opt.step()
    return [p.detach().double() for p in params]


def _assert_close(a, b, rtol=1e-10, atol=1e-12):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", NAMES)
def test_foreach_and_per_tensor_paths_agree(name):
    _assert_close(_train(name, foreach=True), _train(name, foreach=False))
    _assert_close(_train(name, foreach=None), _train(name, foreach=True), rtol=0, atol=0)


@pytest.fixture
def foreach_calls(monkeypatch):
    """Count calls of every ``torch._foreach_*`` function (they still run)."""
    calls = []
    for attr in dir(torch):
        if attr.startswith("_foreach_"):
            real = getattr(torch, attr)

            def counting(*args, _real=real, _attr=attr, **kwargs):
                calls.append(_attr)
                return _real(*args, **kwargs)

            monkeypatch.setattr(torch, attr, counting)
    return calls


@pytest.mark.parametrize("name", NAMES)
def test_foreach_false_uses_the_per_tensor_path(name, foreach_calls):
    _train(name, foreach=False)
    assert foreach_calls == []
    _train(name, foreach=True)
    assert len(foreach_calls) >= STEPS


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("foreach", [True, False])
def test_a_tensor_lr_acts_as_its_value(name, foreach):
    expected = _train(name, foreach=foreach)
    got = _train(name, foreach=foreach, lr=lambda lr: torch.tensor(lr, dtype=torch.float64))
    _assert_close(got, expected, rtol=0, atol=0)
    # and at construction
    p = torch.zeros(2, requires_grad=True)
    assert MAKERS[name]([p]).__class__([p], lr=torch.tensor(0.5), foreach=foreach).param_groups[0][
        "lr"
    ].item() == pytest.approx(0.5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("foreach", [True, False])
def test_maximize_is_descent_on_the_negated_gradient(name, foreach):
    maximized = _train(name, foreach=foreach, maximize=True)
    _assert_close(maximized, _train(name, foreach=foreach, sign=-1.0), rtol=0, atol=0)
    assert not torch.allclose(maximized[0], _train(name, foreach=foreach)[0])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("flag", ["differentiable", "capturable", "fused"])
def test_unsupported_flags_raise(name, flag):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=f"does not support {flag}=True"):
        MAKERS[name]([p], **{flag: True})
    MAKERS[name]([p], **{flag: False})  # False is accepted


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("foreach", [True, False])
def test_mixed_float_dtypes_in_one_group(name, foreach):
    dtypes = (torch.float32, torch.float64, torch.float32)
    mixed = _train(name, dtypes, foreach=foreach)
    wide = _train(name, foreach=foreach)
    _assert_close(mixed, wide, rtol=1e-4, atol=1e-5)
    # the float64 tensor loses nothing to its float32 neighbours beyond their rounding
    assert mixed[1].dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("foreach", [True, False])
def test_complex_parameters_update_as_their_real_view(name, foreach):
    gen = torch.Generator().manual_seed(3)
    start = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    grads = [torch.randn(4, 2, generator=gen, dtype=torch.float64) for _ in range(STEPS)]
    real = start.clone().requires_grad_()
    cplx = torch.view_as_complex(start.clone()).requires_grad_()
    opt_real = MAKERS[name]([real], foreach=foreach)
    opt_cplx = MAKERS[name]([cplx], foreach=foreach)
    for g in grads:
        real.grad = g.clone()
        cplx.grad = torch.view_as_complex(g.clone())
        opt_real.step()
        opt_cplx.step()
    assert cplx.dtype == torch.complex128
    torch.testing.assert_close(torch.view_as_real(cplx.detach()), real.detach(), rtol=0, atol=0)
    # the imaginary parts moved (the bug this guards against left them unchanged)
    assert not torch.equal(cplx.detach().imag, start[:, 1])


BAD = [
    ("NAdamW", {"lr": -1e-3}, "lr"),
    ("NAdamW", {"betas": (1.0, 0.999)}, r"betas\[0\]"),
    ("NAdamW", {"betas": (0.9, -0.1)}, r"betas\[1\]"),
    ("NAdamW", {"eps": -1.0}, "eps"),
    ("NAdamW", {"weight_decay": -0.1}, "weight_decay"),
    ("SGDW", {"lr": -0.1}, "lr"),
    ("SGDW", {"momentum": 1.0}, "momentum"),
    ("SGDW", {"weight_decay": -1.0}, "weight_decay"),
    ("Lion", {"betas": (1.5, 0.99)}, r"betas\[0\]"),
    ("Lion", {"betas": (0.9, 1.01)}, r"betas\[1\]"),
    ("Lion", {"betas": (0.9, 0.99, 0.9)}, "betas must have 2 values"),
    ("Lion", {"weight_decay": -0.1}, "weight_decay"),
    ("Adan", {"betas": (0.98, 0.92)}, "betas must have 3 values"),
    ("Adan", {"betas": (0.98, 0.92, 1.0)}, r"betas\[2\]"),
    ("Adan", {"eps": -1e-8}, "eps"),
    ("LAMB", {"betas": (0.9, 1.0)}, r"betas\[1\]"),
    ("LAMB", {"weight_decay": -0.1}, "weight_decay"),
    ("DoG", {"reps_rel": 0.0}, "reps_rel"),
    ("DoG", {"eps": 0.0}, "eps"),
    ("DoG", {"lr": float("nan")}, "lr"),
    ("DoG", {"weight_decay": -0.1}, "weight_decay"),
    ("Prodigy", {"beta3": 1.0}, "beta3"),
    ("Prodigy", {"d0": 0.0}, "d0"),
    ("Prodigy", {"d_coef": -1.0}, "d_coef"),
    ("Prodigy", {"growth_rate": 0.5}, "growth_rate"),
    ("Prodigy", {"betas": (-0.1, 0.999)}, r"betas\[0\]"),
    ("DAdaptAdam", {"d0": -1e-6}, "d0"),
    ("DAdaptAdam", {"growth_rate": 0.9}, "growth_rate"),
    ("DAdaptAdam", {"eps": -1.0}, "eps"),
    ("Shampoo", {"betas": (0.9, 1.0)}, r"betas\[1\]"),
    ("Shampoo", {"epsilon": 0.0}, "epsilon"),
    ("Shampoo", {"graft_eps": -1e-8}, "graft_eps"),
    ("Shampoo", {"weight_decay": -0.1}, "weight_decay"),
    ("Shampoo", {"max_preconditioner_dim": 0}, "max_preconditioner_dim"),
    ("Shampoo", {"precondition_frequency": 2.5}, "precondition_frequency"),
    ("Shampoo", {"start_preconditioning_step": 0}, "start_preconditioning_step"),
    ("Shampoo", {"inv_root_override": -1}, "inv_root_override"),
    ("Muon", {"momentum": 1.0}, "momentum"),
    ("Muon", {"betas": (0.9, 1.0)}, r"betas\[1\]"),
    ("Muon", {"weight_decay": -0.1}, "weight_decay"),
    ("Muon", {"eps": -1.0}, "eps"),
    ("Muon", {"ns_eps": 0.0}, "ns_eps"),
    ("Muon", {"ns_steps": 0}, "ns_steps"),
    ("ScheduleFreeAdamW", {"betas": (0.0, 0.999)}, r"betas\[0\] must be in \(0, 1\)"),
    ("ScheduleFreeAdamW", {"betas": (0.9, 1.0)}, r"betas\[1\]"),
    ("ScheduleFreeAdamW", {"eps": -1.0}, "eps"),
    ("ScheduleFreeAdamW", {"warmup_steps": -1}, "warmup_steps"),
    ("ScheduleFreeAdamW", {"warmup_steps": 2.5}, "warmup_steps"),
    ("ScheduleFreeSGD", {"momentum": 0.0}, "momentum"),
    ("ScheduleFreeSGD", {"momentum": 1.0}, "momentum"),
    ("ScheduleFreeSGD", {"weight_decay": -0.1}, "weight_decay"),
    ("ScheduleFreeSGD", {"r": -1.0}, "r"),
    ("ScheduleFreeSGD", {"weight_lr_power": -1.0}, "weight_lr_power"),
]
CLASSES = {
    c.__name__: c
    for c in (NAdamW, SGDW, Lion, Adan, LAMB, DoG, Prodigy, DAdaptAdam, Shampoo, Muon)
}
CLASSES.update({c.__name__: c for c in (ScheduleFreeAdamW, ScheduleFreeSGD)})


@pytest.mark.parametrize(("name", "kwargs", "arg"), BAD)
def test_out_of_range_hyperparameters_raise_naming_them(name, kwargs, arg):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=f"^{name}: {arg}") as info:
        CLASSES[name]([p], **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_a_tensor_lr_must_have_one_element(name):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="one element"):
        CLASSES[name]([p], lr=torch.tensor([0.1, 0.2]))


@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradients_are_refused(name):
    p = torch.zeros(3, requires_grad=True)
    opt = MAKERS[name]([p])
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match=f"{name} does not support sparse gradients"):
        opt.step()


@pytest.mark.parametrize("name", NAMES)
def test_every_class_documents_its_algorithm(name):
    doc = CLASSES[name].__doc__
    for needed in ("Args:", "Not supported", ">>>", "http", "maximize", "foreach"):
        assert needed in doc, needed


@pytest.mark.parametrize("name", NAMES)
def test_checkpoints_without_the_new_group_keys_still_load(name):
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = MAKERS[name]([p])
    p.grad = torch.full((3,), 0.5, dtype=torch.float64)
    opt.step()
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        for key in ("foreach", "maximize", "initial_lr"):
            group.pop(key, None)
    fresh = MAKERS[name]([p])
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["foreach"] is None
    assert fresh.param_groups[0]["maximize"] is False
    fresh.step()  # runs
