"""AccelAT: the lr response to planted accuracy sequences, computed by hand; the benchmark
algorithm's held-out slice comes from the training split and is never trained on."""

from __future__ import annotations

import pytest
import torch

from trainlab.methods.accelat import AccelAT

approx = pytest.approx


def _opt(lr=1e-3, second=None):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]}]
    if second is not None:
        groups.append({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": second})
    return torch.optim.SGD(groups, lr=lr)


def test_rising_then_plateau():
    # means: .5 .55 .6 .65 .7 .78 .84 .88 .9 .9 ...; gradients: .05 .05 .05 .05 .08 .06 .04 .02 0
    # first cut at epoch 10 (gradient 0 < .005, six earlier means), then every 5 epochs (quiet)
    acc = [0.5, 0.6, 0.7, 0.8, 0.9] + [0.9] * 16
    ctl = AccelAT(_opt(1e-3))
    lrs = [ctl.step(a) for a in acc]
    assert ctl.means[:9] == approx([0.5, 0.55, 0.6, 0.65, 0.7, 0.78, 0.84, 0.88, 0.9])
    assert ctl.gradients[8] == approx(0.02) and ctl.gradients[9] == approx(0.0)
    assert ctl.cuts == [10, 15, 20]
    assert lrs[8] == approx(1e-3)  # epoch 9: gradient .02 is not flat
    assert lrs[9] == approx(8e-4) and lrs[13] == approx(8e-4)
    assert lrs[14] == approx(6.4e-4) and lrs[19] == approx(1e-3 * 0.8**3)


def test_flat_from_the_start_waits_for_a_full_window():
    ctl = AccelAT(_opt(1e-3))
    for _ in range(17):
        ctl.step(0.5)
    assert ctl.cuts == [7, 12, 17]  # the first needs six earlier means


def test_steadily_rising_accuracy_never_cuts_and_threshold_is_strict():
    ctl = AccelAT(_opt(1e-3))
    for e in range(30):
        ctl.step(0.3 + 0.02 * e)
    assert ctl.cuts == [] and ctl.lr == 1e-3
    # the accuracy gradient of a linear rise is its slope: cut below the threshold only
    above, below = AccelAT(_opt(1e-3), threshold=0.01), AccelAT(_opt(1e-3), threshold=0.01)
    for e in range(12):
        above.step(0.011 * e)
        below.step(0.009 * e)
    assert above.gradients[-1] == approx(0.011) and above.cuts == []
    assert below.gradients[-1] == approx(0.009) and below.cuts == [7, 12]


def test_min_lr_and_groups():
    ctl = AccelAT(_opt(1e-3, second=1e-2), factor=0.1)  # default floor: 1e-3 x initial
    for _ in range(40):
        ctl.step(0.5)
    assert [g["lr"] for g in ctl.optimizer.param_groups] == approx([1e-6, 1e-5])
    ctl = AccelAT(_opt(1e-3), factor=0.1, min_lr=2e-5)
    for _ in range(17):
        ctl.step(0.5)
    assert ctl.lr == approx(2e-5)
    with pytest.raises(ValueError):
        AccelAT(_opt(), factor=1.5)


def test_benchmark_algorithm_holds_out_training_data():
    from trainlab.registry import get_algorithm, get_workload

    workload = get_workload("digits_cnn")
    algorithm = get_algorithm("accelat")
    hp = algorithm.search_space.validate({"batch_size": 64, "horizon": 0.25})
    model = workload.init_model(0)
    state = algorithm.init(workload, model, hp, seed=0)
    holdout = set(state.holdout.indices.tolist())
    assert state.scheduler is None and not hasattr(state, "extra")
    assert {"reduce_factor", "threshold"} <= set(algorithm.search_space.names)
    assert len(holdout) == round(0.1 * workload.train_size)
    horizon_steps = round(0.25 * workload.step_hint)
    epoch = -(-(workload.train_size - len(holdout)) // 64)  # one pass, capped at 20 checks
    assert state.epoch_steps == max(1, min(epoch, horizon_steps // 20))

    def no_validation(*args, **kwargs):
        raise AssertionError("AccelAT must not read the validation split")

    workload.evaluate = no_validation
    stream = algorithm.select_data(state, workload.batches(64, 0))
    seen: set[int] = set()
    for step in range(3 * state.epoch_steps):
        batch = next(stream)
        seen.update(batch.indices.tolist())
        algorithm.update(state, batch, step)
    assert not seen & holdout
    assert len(state.controller.accuracies) == 3
    assert all(0.0 <= a <= 1.0 for a in state.controller.accuracies)
