"""The schedule-free recipes: no decaying schedule, and evaluation at the average ``x``
(``prepare_for_eval`` switches the optimizer to eval mode, the next update back to train)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.bench.runner import run_trial
from trainlab.optim import ScheduleFreeAdamW, ScheduleFreeSGD
from trainlab.registry import get_algorithm
from trainlab.spec import Batch, Target
from trainlab.workloads.base import ClassificationWorkload, Splits, seeded_model

NAMES = ["schedule_free_adamw", "schedule_free_sgd"]


class Blobs(ClassificationWorkload):
    """Two Gaussian classes in 5-D, an MLP without BatchNorm."""

    name = "blobs_sf"
    target = Target("accuracy", 0.99, higher_is_better=True)  # kept out of reach: all evals run
    max_runtime = 30.0
    eval_period = 1.0
    step_hint = 60
    eval_every_steps = 10
    num_classes = 2

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        y = torch.randint(2, (600,), generator=g)
        x = torch.randn(600, 5, generator=g)
        x[:, 0] += (2 * y - 1).float()
        self.splits = Splits(x[:400], y[:400], x[400:500], y[400:500], x[500:], y[500:])

    def init_model(self, seed: int) -> nn.Module:
        return seeded_model(seed, lambda: nn.Sequential(nn.Linear(5, 8), nn.Tanh(),
                                                        nn.Linear(8, 2)), self.device)  # fmt: skip


def _batches(n: int) -> list[Batch]:
    g = torch.Generator().manual_seed(1)
    return [
        Batch(torch.randn(16, 5, generator=g), torch.randint(2, (16,), generator=g),
              torch.arange(16))
        for _ in range(n)
    ]  # fmt: skip


def _init(name: str, workload):
    algo = get_algorithm(name)
    hp = algo.search_space.validate({"warmup_fraction": 0.1})
    return algo, algo.init(workload, workload.init_model(0), hp, 0)


def _beta(opt) -> float:
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group["momentum"]


@pytest.mark.parametrize("name", NAMES)
def test_recipe_has_a_constant_schedule_and_a_search_space(name):
    algo, state = _init(name, Blobs())
    assert isinstance(state.optimizer, (ScheduleFreeAdamW, ScheduleFreeSGD))
    assert not algo.self_tuning and "learning_rate" in algo.search_space.names
    assert algo.schedule_part.name == "constant"
    # after the warmup (10 % of 60 updates) the lr stays at its peak, past the horizon too
    factor = algo.schedule_part.factor
    assert [factor(k, 60, state.hp) for k in (0, 5)] == pytest.approx([1 / 6, 1.0])
    assert all(factor(k, 60, state.hp) == 1.0 for k in range(6, 200))
    assert get_algorithm(f"{name}+cosine").optimizer_part.name == name  # composes


@pytest.mark.parametrize("name", NAMES)
def test_prepare_for_eval_evaluates_at_x_and_update_returns_to_y(name):
    workload = Blobs()
    batches = _batches(10)
    algo, state = _init(name, workload)
    for k, batch in enumerate(batches[:5]):
        algo.update(state, batch, k)
    opt = state.optimizer
    params = list(state.model.parameters())
    y = [p.detach().clone() for p in params]
    beta = _beta(opt)
    x = [yi + (1 - 1 / beta) * (opt.state[p]["z"] - yi) for p, yi in zip(params, y, strict=True)]
    model = algo.prepare_for_eval(state)
    assert model is state.model
    for p, xi, yi in zip(model.parameters(), x, y, strict=True):
        torch.testing.assert_close(p.detach(), xi, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(p.detach(), yi)
    # the evaluation in between changes nothing about training: the next update is taken at y
    for k, batch in enumerate(batches[5:], start=5):
        algo.update(state, batch, k)
    assert all(group["train_mode"] for group in opt.param_groups)
    _, plain = _init(name, workload)
    for k, batch in enumerate(batches):
        algo.update(plain, batch, k)
    for a, b in zip(state.model.parameters(), plain.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_the_runner_evaluates_in_eval_mode(name, monkeypatch):
    workload = Blobs()
    algo = get_algorithm(name)
    states, modes = [], []
    init = algo.init
    monkeypatch.setattr(algo, "init", lambda *a: states.append(init(*a)) or states[-1])
    evaluate = workload.evaluate

    def recording(model, split):
        modes.append((split, [g["train_mode"] for g in states[0].optimizer.param_groups]))
        return evaluate(model, split)

    monkeypatch.setattr(workload, "evaluate", recording)
    result = run_trial(
        workload, algo, seed=0, eval_every_steps=10, max_steps=40, count_flops=False
    )
    assert len(states) == 1
    assert result.status in ("reached", "missed"), result.error
    assert [split for split, _ in modes] == ["valid"] * 4 + ["test"]
    assert all(mode == [False, False] for _, mode in modes)  # x, never y
