"""The controller (autolrs, accelat) and weight-averaging (ema, swa) algorithms: typed states,
no scheduler where a controller sets the lr, the SWA learning-rate path, and the averaged
model evaluated with its BatchNorm statistics recomputed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.algorithms.averaging import EMAState, SWAState
from trainlab.algorithms.controllers import AccelATState, AutoLRSState
from trainlab.registry import get_algorithm
from trainlab.spec import Batch, Target
from trainlab.workloads.base import ClassificationWorkload, Splits, seeded_model


class Blobs(ClassificationWorkload):
    """Two Gaussian classes in 5-D, 600 training examples; optional BatchNorm."""

    name = "blobs_avg"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime = 30.0
    eval_period = 1.0
    step_hint = 200
    eval_every_steps = 50
    num_classes = 2
    generative = True

    def __init__(self, batchnorm: bool = False) -> None:
        g = torch.Generator().manual_seed(0)
        y = torch.randint(2, (1000,), generator=g)
        x = torch.randn(1000, 5, generator=g) * 0.7
        x[:, 0] += 1.5 * (2 * y - 1).float()
        self.splits = Splits(x[:600], y[:600], x[600:800], y[600:800], x[800:], y[800:])
        self.batchnorm = batchnorm

    def init_model(self, seed: int) -> nn.Module:
        def build() -> nn.Module:
            norm = [nn.BatchNorm1d(16)] if self.batchnorm else []
            return nn.Sequential(nn.Linear(5, 16), *norm, nn.ReLU(), nn.Linear(16, 2))

        return seeded_model(seed, build, self.device)

    def fresh_batches(self, batch_size: int, seed: int):
        g = torch.Generator().manual_seed(10_000 + seed)
        while True:
            y = torch.randint(2, (batch_size,), generator=g)
            x = torch.randn(batch_size, 5, generator=g) * 0.7
            x[:, 0] += 1.5 * (2 * y - 1).float()
            yield Batch(x, y, torch.full((batch_size,), -1))


def _init(name: str, workload, hp=None, seed=0):
    algo = get_algorithm(name)
    hp = algo.search_space.validate(hp or {})
    return algo, algo.init(workload, workload.init_model(seed), hp, seed)


@pytest.mark.parametrize(
    ("name", "cls", "scheduled"),
    [
        ("autolrs", AutoLRSState, False),
        ("accelat", AccelATState, False),
        ("ema", EMAState, True),
        ("swa", SWAState, True),
    ],
)
def test_typed_state_and_scheduler(name, cls, scheduled):
    _, state = _init(name, Blobs())
    assert isinstance(state, cls) and not hasattr(state, "extra")
    assert (state.scheduler is not None) == scheduled


def test_swa_learning_rate_warms_up_decays_to_the_swa_rate_then_stays():
    # step_hint 200, horizon 1: 200 updates; warmup 10% = 20, SWA from 50% = update 100
    hp = {"warmup_fraction": 0.1, "swa_start_fraction": 0.5, "swa_lr_fraction": 0.2}
    _, state = _init("swa", Blobs(), hp)
    peak = state.hp["learning_rate"]
    lrs = []
    for _ in range(200):
        lrs.append(state.optimizer.param_groups[0]["lr"])
        state.optimizer.step()
        state.scheduler.step()
    assert lrs[0] == pytest.approx(peak / 20) and lrs[19] == pytest.approx(peak)
    # halfway through the cosine (update 60 of 20..100): (1 + 0.2) / 2 of the peak
    assert lrs[60] == pytest.approx(peak * 0.6)
    assert lrs[100:] == pytest.approx([peak * 0.2] * 100)
    assert state.swa_start == 100


def test_swa_averages_from_its_start_and_recomputes_batchnorm_once_per_change():
    w = Blobs(batchnorm=True)
    hp = {"horizon": 0.25, "swa_start_fraction": 0.4, "swa_every": 5, "swa_bn_batches": 3}
    algo, state = _init("swa", w, hp)
    assert state.swa_start == 20  # 0.4 of 50 updates
    stream = w.batches(64, 0)
    for step in range(20):
        algo.update(state, next(stream), step)
    assert state.swa.n_averaged == 0 and algo.prepare_for_eval(state) is state.model
    for step in range(20, 31):  # averaged at 20, 25, 30
        algo.update(state, next(stream), step)
    assert state.swa.n_averaged == 3 and state.bn_stale
    evaluated = algo.prepare_for_eval(state)
    assert evaluated is state.swa.model and not state.bn_stale
    assert int(evaluated[1].num_batches_tracked) == 3  # recomputed over 3 batches
    algo.prepare_for_eval(state)  # nothing changed: no second recomputation
    assert int(evaluated[1].num_batches_tracked) == 3
