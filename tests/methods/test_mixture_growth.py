"""MixtureGrowth (Pham et al., 2024): weights as linear combinations of templates, growth by new
combinations of the learned templates with coefficients orthogonal to the learned ones, and the
grown network in the workload's architecture."""

import pytest
import torch
from torch import nn

from trainlab.methods.growth import (
    TemplateBank,
    materialize,
    mixture_grow,
    mixture_members,
    orthogonal_coefficients,
)
from trainlab.registry import get_workload


def test_a_bank_is_the_grid_of_its_blocks_linear_combinations():
    t0 = nn.Parameter(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))  # 2 templates of shape [1, 2]
    t1 = nn.Parameter(torch.tensor([[[2.0, 2.0]], [[1.0, -1.0]]]))
    a, b, c = (nn.Parameter(torch.tensor(v)) for v in ([3.0, 4.0], [1.0, 1.0], [0.5, 0.0]))
    bank = TemplateBank(
        [t0, t1], [a, b, c], [[(0, 0, 1.0), (0, 2, 1.0)], [(1, 1, 0.5), (1, 1, 1.0)]]
    )
    # block = sum_k coef[k] T[k]: [3, 4]; [0.5, 0]; 0.5 * [3, 1]; [3, 1]
    assert bank().tolist() == [[3.0, 4.0, 0.5, 0.0], [1.5, 0.5, 3.0, 1.0]]


def test_new_coefficients_are_unit_vectors_orthogonal_to_the_learned_ones():
    learned = torch.tensor([[3.0, 4.0, 0.0]])
    new = orthogonal_coefficients(learned, 2)
    assert torch.allclose(new @ learned.T, torch.zeros(2, 1), atol=1e-6)
    assert torch.allclose(new @ new.T, torch.eye(2), atol=1e-6)


@pytest.mark.parametrize("name", ["mnist1d_mlp", "mnist1d_cnn", "digits_cnn"])
def test_grown_with_zero_new_coefficients_is_the_members_logit_average(name):
    w = get_workload(name)
    full = w.init_model(0)
    members = mixture_members(full, 2, 2, torch.Generator().manual_seed(0))
    batch = w.get_examples(torch.arange(32))
    grown = materialize(mixture_grow(members, full, coef_scale=0.0))
    assert str(grown) == str(full)
    assert {k: v.shape for k, v in grown.state_dict().items()} == {
        k: v.shape for k, v in full.state_dict().items()
    }
    with torch.no_grad():
        mean = torch.stack([w.forward(m.eval(), batch) for m in members]).mean(0)
        assert torch.allclose(w.forward(grown.eval(), batch), mean, atol=1e-5)


def test_growth_recombines_the_learned_templates_with_orthogonal_coefficients():
    full = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    members = mixture_members(full, 2, 2, torch.Generator().manual_seed(0))
    grown = mixture_grow(members, full, coef_scale=0.5)
    bank = grown[2].mixture  # a hidden layer: a 2 x 2 grid of [2, 2] blocks
    m0, m1 = members[0][2].mixture, members[1][2].mixture
    assert bank.templates[0] is m0.templates[0] and bank.templates[1] is m1.templates[0]
    assert bank.coefficients[0] is m0.coefficients[0]  # learned: shared, not copied
    weight = bank()
    new = bank.coefficients[2]  # block (0, 1): member 0's templates, a new combination
    new_value, learned = new.detach(), m0.coefficients[0].detach()
    assert abs(float(new_value @ learned)) < 1e-6 and abs(float(new_value.norm()) - 0.5) < 1e-6
    assert torch.allclose(weight[:2, 2:], torch.tensordot(new, m0.templates[0], dims=1))
    assert torch.allclose(weight[:2, :2], members[0][2].weight)
    assert torch.allclose(weight[2:, 2:], members[1][2].weight)
    assert grown[0].mixture().shape == (4, 3) and grown[4].mixture().shape == (2, 4)
    grown(torch.randn(5, 3)).sum().backward()  # the templates learn through every block
    assert m0.templates[0].grad is not None and new.grad is not None


def test_members_are_halves_of_the_workloads_model_and_gpt_is_refused():
    full = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    members = mixture_members(full, 2, 3)
    assert [m[0].mixture().shape for m in members] == [(4, 3), (4, 3)]
    assert members[0][0].mixture.templates[0].shape == (3, 4, 3)
    with pytest.raises(TypeError, match="chain"):
        mixture_members(get_workload("charlm_gpt").init_model(0))
