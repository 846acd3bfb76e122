"""TLEG (Xia et al., AAAI 2024): block l of L is theta_A + (l / L) theta_B, checked by hand;
descendants of several depths; distillation lowers the KL; bad depths raise."""

import pytest
import torch
from torch import nn

from trainlab.algorithms.learngene import AuxiliaryDistillation, InheritedInit
from trainlab.bench.runner import run_trial
from trainlab.methods.learngene import LearngeneError, distillation_loss, soft_distillation, tleg
from trainlab.registry import get_workload
from trainlab.workloads.charlm import GPT

VOCAB, CONTEXT, WIDTH = 7, 8, 16


def tiny_gpt(layers: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(VOCAB, context=CONTEXT, width=WIDTH, layers=layers, heads=2)


def constant_learngene(depth: int) -> nn.Module:
    """A Linear stack with theta_A = 1 and theta_B = 4 everywhere."""
    model = nn.Module()
    model.blocks = nn.Sequential(nn.Linear(2, 2))
    tleg.make_auxiliary(model, depth)
    with torch.no_grad():
        for p in model.blocks.theta_a.parameters():
            p.fill_(1.0)
        for p in model.blocks.theta_b.parameters():
            p.fill_(4.0)
    return model


def test_descendant_blocks_are_theta_a_plus_l_over_L_theta_b():
    aux = constant_learngene(depth=3)
    child = nn.Module()
    child.blocks = nn.Sequential(*(nn.Linear(2, 2) for _ in range(4)))
    tleg.initialize_descendant(child, aux)
    # L = 4, l = 0..3: 1 + (l / 4) * 4 = 1, 2, 3, 4 exactly, weights and biases alike
    for layer, block in enumerate(child.blocks):
        assert torch.equal(block.weight, torch.full((2, 2), 1.0 + layer))
        assert torch.equal(block.bias, torch.full((2,), 1.0 + layer))
    assert [tleg.expansion_coefficient(i, 4) for i in range(4)] == [0, 0.25, 0.5, 0.75]


def test_auxiliary_forward_applies_the_expanded_blocks_in_order():
    aux = constant_learngene(depth=2)
    x = torch.tensor([[1.0, -1.0]])
    # block 0: W = 1, b = 1 -> y = (x1 + x2) + 1 per unit = 1; block 1: W = 3, b = 3 -> 3*2 + 3
    assert torch.equal(aux.blocks(x), torch.tensor([[9.0, 9.0]]))


def test_learngene_initialisation_follows_the_released_code():
    gen = torch.Generator().manual_seed(0)
    stack = tleg.LinearExpansion(nn.LayerNorm(4), depth=3, generator=gen)
    assert torch.equal(stack.theta_a.weight, torch.ones(4))
    assert torch.equal(stack.theta_b.weight, torch.zeros(4))  # vectors of theta_B start at 0
    lin = tleg.LinearExpansion(nn.Linear(64, 64), depth=3, generator=gen)
    assert lin.theta_b.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.equal(lin.theta_b.bias, torch.zeros(64))


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_gpt_descendants_of_three_depths_build_and_run(depth):
    aux = tleg.make_auxiliary(tiny_gpt(layers=1), depth=4)
    child = tleg.initialize_descendant(tiny_gpt(layers=depth, seed=1), aux)
    out = child(torch.randint(0, VOCAB, (2, CONTEXT)))
    assert out.shape == (2, CONTEXT, VOCAB) and torch.isfinite(out).all()
    assert torch.equal(child.tok.weight, aux.tok.weight)  # non-block parts inherited
    assert child.head.weight is child.tok.weight  # still tied
    last = aux.blocks.layer_parameters(depth - 1, depth)["attn.qkv.weight"]
    assert torch.equal(child.blocks[depth - 1].attn.qkv.weight, last)


def test_auxiliary_trains_only_theta_a_theta_b_and_the_non_block_parts():
    aux = tleg.make_auxiliary(tiny_gpt(layers=3), depth=6)
    block = sum(p.numel() for p in tiny_gpt(1).blocks.parameters())
    plain = sum(p.numel() for p in tiny_gpt(1).parameters())
    assert sum(p.numel() for p in aux.parameters()) == plain + block  # theta_A and theta_B
    distillation_loss(
        aux(torch.randint(0, VOCAB, (2, CONTEXT))), torch.zeros(2, CONTEXT, VOCAB)
    ).backward()
    assert aux.blocks.theta_b.mlp[0].weight.grad.abs().sum() > 0


def test_distillation_steps_lower_the_kl_to_the_ancestor():
    ancestor = tiny_gpt(layers=2, seed=3)
    with torch.no_grad():  # a peaked, non-trivial teacher
        ancestor.head.weight.mul_(40.0)
    aux = tleg.make_auxiliary(tiny_gpt(layers=1, seed=4), depth=3)
    x = torch.randint(0, VOCAB, (16, CONTEXT), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        teacher = ancestor(x)

    def kl() -> float:
        with torch.no_grad():
            return soft_distillation(aux(x), teacher).mean().item()

    before = kl()
    opt = torch.optim.Adam(aux.parameters(), lr=1e-2)
    for _ in range(30):
        loss = distillation_loss(aux(x), teacher)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before > 0.1 and kl() < 0.5 * before


def test_soft_distillation_is_tau_squared_kl():
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    tau = 2.0
    p = torch.softmax(t / tau, -1)  # student uniform: KL = sum p log(2 p)
    expected = tau**2 * (p * (2 * p).log()).sum()
    assert soft_distillation(s, t, tau).item() == pytest.approx(expected.item(), rel=1e-6)
    ce = torch.nn.functional.cross_entropy(s, torch.tensor([1]))
    mixed = distillation_loss(s, t, torch.tensor([1]), alpha=0.25, tau=tau)
    assert mixed.item() == pytest.approx(0.75 * ce.item() + 0.25 * expected.item(), rel=1e-6)


@pytest.mark.parametrize("depth", [0, -2, 2.0, True])
def test_a_depth_tleg_cannot_produce_is_a_one_line_error(depth):
    with pytest.raises(LearngeneError, match="cannot produce a descendant of depth"):
        tleg.check_depth(depth)


def test_depth_zero_descendant_and_mismatched_width_raise():
    aux = tleg.make_auxiliary(tiny_gpt(layers=1), depth=2)
    with pytest.raises(LearngeneError, match="depth 0"):
        tleg.initialize_descendant(tiny_gpt(layers=0), aux)
    wide = GPT(VOCAB, context=CONTEXT, width=2 * WIDTH, layers=2, heads=2)
    with pytest.raises(LearngeneError, match="shape"):
        tleg.initialize_descendant(wide, aux)


def test_charlm_stages_run_under_the_runner():
    workload = get_workload("charlm_gpt")
    ancestor = workload.init_model(0)
    distil = AuxiliaryDistillation(ancestor, lambda m: tleg.make_auxiliary(m, depth=3))
    result = run_trial(workload, distil, seed=0, eval_every_steps=2, max_steps=2,
                       count_flops=False, calibrate=False)  # fmt: skip
    assert result.status in ("missed", "reached") and result.steps == 2
    aux = distil.last_model
    child = InheritedInit(lambda m: tleg.initialize_descendant(m, aux))
    deeper = workload.with_changes("layers3", layers=3)
    result = run_trial(deeper, child, seed=0, eval_every_steps=2, max_steps=2,
                       count_flops=False, calibrate=False)  # fmt: skip
    assert result.steps == 2 and len(child.last_model.blocks) == 3
