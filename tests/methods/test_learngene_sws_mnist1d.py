"""SWS (Xia et al., IJCAI 2024) on the 1-D MNIST CNN, whose stride-2 convolutions change the
shape: each stage opens with its transition (the stem, then each stride-2 convolution, kept per
stage) and only the shape-preserving convolutions after it are shared; descendants of several
depths are built from one learngene and train."""

import pytest
import torch

from trainlab.algorithms.learngene import AuxiliaryDistillation, InheritedInit
from trainlab.bench.runner import run_trial
from trainlab.methods.learngene import LearngeneError, sws
from trainlab.registry import get_algorithm, get_workload

WORKLOAD = get_workload("mnist1d_cnn")


def cnn(depths, seed=0):
    return WORKLOAD.with_changes("", depths=depths).init_model(seed)


def test_default_depths_are_the_workload_model_and_three_lone_transitions():
    f = WORKLOAD.init_model(0).features
    assert [(type(m).__name__, getattr(m, "stride", None)) for m in f[::2]] == [
        ("Conv1d", (1,)), ("Conv1d", (2,)), ("Conv1d", (2,))]  # fmt: skip
    assert sws.find_stages(f) == [sws.Stage((0, 1), ()), sws.Stage((2, 3), ()),
                                  sws.Stage((4, 5), ())]  # fmt: skip


def test_stride_two_convolutions_open_stages_and_only_stride_one_layers_repeat():
    f = cnn((2, 3, 1)).features
    stages = sws.find_stages(f)
    assert [s.depth for s in stages] == [2, 3, 1]
    for stage in stages[1:]:
        assert f[stage.transition[0]].stride == (2,)
    for stage in stages:
        for layer in stage.repeats:
            assert f[layer[0]].stride == (1,) and f[layer[0]].in_channels == 32


def test_auxiliary_shares_one_layer_per_stage_and_keeps_the_transitions():
    aux = sws.make_auxiliary(cnn((3, 3, 3)))
    f = aux.features
    transitions = [f[s.transition[0]] for s in sws.find_stages(f)]
    assert len({id(t) for t in transitions}) == 3  # one per stage, not shared
    for stage in sws.find_stages(f):
        assert all(f[layer[0]] is f[stage.repeats[0][0]] for layer in stage.repeats)
    # three transitions, three shared 3-wide 32->32 convolutions (3 x 32 x 32 + 32 each), head
    assert sum(p.numel() for p in aux.parameters()) == (
        sum(p.numel() for p in cnn((1, 1, 1)).parameters()) + 3 * (32 * 32 * 3 + 32))


@pytest.mark.parametrize("depths", [(1, 1, 1), (2, 1, 3), (4, 2, 2)])
def test_descendants_of_several_depths_copy_the_learngene(depths):
    aux = sws.make_auxiliary(cnn((3, 3, 3)))
    with torch.no_grad():  # distinct values so a wrong copy shows
        for k, p in enumerate(aux.parameters()):
            p.copy_(torch.randn(p.shape) + k)
    child = sws.initialize_descendant(cnn(depths, seed=1), aux)
    for a, c in zip(sws.find_stages(aux.features), sws.find_stages(child.features), strict=True):
        assert c.depth == depths[sws.find_stages(child.features).index(c)]
        assert torch.equal(child.features[c.transition[0]].weight,
                           aux.features[a.transition[0]].weight)  # fmt: skip
        for layer in c.repeats:
            assert torch.equal(child.features[layer[0]].weight,
                               aux.features[a.repeats[0][0]].weight)  # fmt: skip
    assert torch.equal(child.head.weight, aux.head.weight)
    out = child(torch.randn(5, 40))
    assert out.shape == (5, 10) and torch.isfinite(out).all()


def test_a_stage_without_a_learngene_layer_cannot_grow():
    aux = sws.make_auxiliary(cnn((2, 1, 2)))
    with pytest.raises(LearngeneError, match="stage 1 of the learngene has no shared layer"):
        sws.initialize_descendant(cnn((2, 2, 2)), aux)


def test_descendants_of_one_learngene_train_under_the_runner():
    distil = AuxiliaryDistillation(WORKLOAD.init_model(1), sws.make_auxiliary)
    r = run_trial(WORKLOAD.with_changes("d333", depths=(3, 3, 3)), distil, seed=0,
                  eval_every_steps=3, max_steps=3, count_flops=False, calibrate=False,
                  measure_cost=False)  # fmt: skip
    assert r.steps == 3
    aux = distil.last_model
    for depths in ((1, 1, 1), (2, 4, 1)):
        child = InheritedInit(lambda m: sws.initialize_descendant(m, aux))
        w = WORKLOAD.with_changes("d" + "".join(map(str, depths)), depths=depths)
        before = [p.detach().clone() for p in w.init_model(0).parameters()]
        r = run_trial(w, child, seed=0, eval_every_steps=3, max_steps=3, count_flops=False,
                      calibrate=False, measure_cost=False)  # fmt: skip
        assert r.status in ("reached", "missed") and r.steps == 3, r.error
        trained = list(child.last_model.parameters())
        assert [s.depth for s in sws.find_stages(child.last_model.features)] == list(depths)
        assert any(not torch.equal(a, b) for a, b in zip(before, trained, strict=True))


def test_the_registered_sws_runs_on_mnist1d_cnn_and_refuses_a_depth_of_one():
    a = get_algorithm("sws")
    a.check_workload(WORKLOAD)
    hp = a.search_space.validate({"lg_stage_depth": 1}, allow_out_of_range=True)
    with pytest.raises(LearngeneError, match="lg_stage_depth=1"):
        a.check_hyperparameters(WORKLOAD.with_changes("d121", depths=(1, 2, 1)), hp)
    small = {"lg_ancestor_fraction": 0.02, "lg_aux_fraction": 0.02}
    r = run_trial(WORKLOAD, a, small, eval_every_steps=2, max_steps=2, count_flops=False,
                  calibrate=False, measure_cost=False, allow_out_of_range=True)  # fmt: skip
    assert r.status in ("reached", "missed") and r.steps == 2, r.error
