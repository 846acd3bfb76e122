"""SWS (Xia et al., IJCAI 2024) on the digits CNN: stages found, layers shared in the auxiliary
model, descendants repeat each stage's learngene layer; bad depths raise before training."""

import pytest
import torch

from trainlab.algorithms.learngene import AuxiliaryDistillation, InheritedInit
from trainlab.bench.runner import run_trial
from trainlab.methods.learngene import LearngeneError, distillation_loss, soft_distillation, sws
from trainlab.registry import get_workload
from trainlab.workloads.digits import DigitsCNN


def cnn(depths, seed=0):
    torch.manual_seed(seed)
    return DigitsCNN(depths=depths)


def test_stages_of_the_digits_cnn():
    stages = sws.find_stages(cnn((2, 2)).features)
    # conv-bn-relu x2, pool, conv-bn-relu x2, pool
    assert stages == [
        sws.Stage((0, 1, 2), ((3, 4, 5),)),
        sws.Stage((7, 8, 9), ((10, 11, 12),)),
    ]
    assert [s.depth for s in sws.find_stages(cnn((1, 4)).features)] == [1, 4]


def test_default_depths_keep_the_workload_architecture():
    workload = get_workload("digits_cnn")
    assert [type(m).__name__ for m in workload.init_model(0).features] == [
        "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
        "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d",
    ]  # fmt: skip


def test_auxiliary_shares_one_layer_per_stage():
    aux = sws.make_auxiliary(cnn((4, 3)))
    f = aux.features
    stage1, stage2 = sws.find_stages(f)
    for stage in (stage1, stage2):
        gene = stage.repeats[0]
        for layer in stage.repeats[1:]:
            assert all(f[i] is f[j] for i, j in zip(layer, gene, strict=True))
    # parameters counted once: transitions + one shared layer per stage + head
    assert sum(p.numel() for p in aux.parameters()) == sum(
        p.numel() for p in cnn((2, 2)).parameters()
    )


@pytest.mark.parametrize("depths", [(1, 1), (2, 3), (5, 2)])
def test_descendants_repeat_each_stage_learngene_layer(depths):
    aux = sws.make_auxiliary(cnn((3, 3)))
    with torch.no_grad():  # distinct values so a wrong copy shows
        for k, p in enumerate(aux.parameters()):
            p.copy_(torch.randn(p.shape) + k)
        for m in aux.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.fill_(0.5)
    child = sws.initialize_descendant(cnn(depths, seed=1), aux)
    a_stages, c_stages = sws.find_stages(aux.features), sws.find_stages(child.features)
    for a, c in zip(a_stages, c_stages, strict=True):
        conv_a, bn_a = aux.features[a.transition[0]], aux.features[a.transition[1]]
        assert torch.equal(child.features[c.transition[0]].weight, conv_a.weight)
        assert torch.equal(child.features[c.transition[1]].bias, bn_a.bias)
        gene_conv, gene_bn = aux.features[a.repeats[0][0]], aux.features[a.repeats[0][1]]
        for layer in c.repeats:
            assert torch.equal(child.features[layer[0]].weight, gene_conv.weight)
            assert child.features[layer[0]].weight is not gene_conv.weight  # a copy
            assert torch.equal(child.features[layer[1]].running_mean, gene_bn.running_mean)
    assert torch.equal(child.head.weight, aux.head.weight)
    out = child(torch.randn(3, 8, 8))
    assert out.shape == (3, 10) and torch.isfinite(out).all()


def test_distillation_steps_lower_the_kl_to_the_ancestor():
    ancestor = cnn((2, 2), seed=5).eval()
    aux = sws.make_auxiliary(cnn((3, 3), seed=6))
    x = torch.rand(64, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        teacher = ancestor(x) * 10  # peaked targets

    def kl() -> float:
        with torch.no_grad():
            return soft_distillation(aux.eval()(x), teacher).mean().item()

    before = kl()
    opt = torch.optim.Adam(aux.parameters(), lr=1e-2)
    aux.train()
    for _ in range(40):
        loss = distillation_loss(aux(x), teacher)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before > 0.1 and kl() < 0.5 * before


@pytest.mark.parametrize(
    ("depths", "message"),
    [
        ((2,), "has 2 stages"),
        ((2, 2, 2), "has 2 stages"),
        ((0, 2), "stage 0 depth must be an integer >= 1"),
        ((2, 1.5), "stage 1 depth"),
    ],
)
def test_depths_the_learngene_cannot_produce(depths, message):
    aux = sws.make_auxiliary(cnn((3, 3)))
    with pytest.raises(LearngeneError, match=message):
        sws.check_depths(aux, depths)


def test_a_stage_without_a_learngene_layer_cannot_grow():
    aux = sws.make_auxiliary(cnn((1, 3)))  # stage 0 is a lone transition
    sws.check_depths(aux, (1, 5))
    with pytest.raises(LearngeneError, match="stage 0 of the learngene has no shared layer"):
        sws.initialize_descendant(cnn((2, 2)), aux)


def test_digits_stages_run_under_the_runner():
    workload = get_workload("digits_cnn")
    distil = AuxiliaryDistillation(workload.init_model(1), sws.make_auxiliary)
    deep = workload.with_changes("d33", depths=(3, 3))
    result = run_trial(deep, distil, seed=0, eval_every_steps=3, max_steps=3,
                       count_flops=False, calibrate=False)  # fmt: skip
    assert result.steps == 3
    aux = distil.last_model
    child = InheritedInit(lambda m: sws.initialize_descendant(m, aux))
    result = run_trial(
        workload.with_changes("d14", depths=(1, 4)),
        child,
        seed=0,
        eval_every_steps=3,
        max_steps=3,
        count_flops=False,
        calibrate=False,
    )
    assert result.steps == 3 and len(sws.find_stages(child.last_model.features)[1].repeats) == 3
