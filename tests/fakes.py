"""A scripted workload, algorithm and clock for testing the timing rules without training."""

from __future__ import annotations

import torch
from torch import nn

from trainlab.spec import Algorithm, Batch, Param, SearchSpace, Target, TrainState, Workload


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedWorkload(Workload):
    """Accuracy after each evaluation comes from ``script``; each evaluation costs ``eval_cost``
    and building the model costs ``build_cost`` on the fake clock (both untimed)."""

    name = "scripted"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime = 10.0
    eval_period = 1.0
    step_hint = 100
    eval_every_steps = 10

    def __init__(self, clock: FakeClock, script=None, eval_cost=0.5, build_cost=2.0) -> None:
        self.clock = clock
        self.script = list(script or [])
        self.eval_cost = eval_cost
        self.build_cost = build_cost
        self.valid_evals = 0

    @property
    def train_size(self) -> int:
        return 64

    def get_examples(self, indices):
        x = torch.ones(len(indices), 2)
        return Batch(x, torch.zeros(len(indices), dtype=torch.long), indices)

    def init_model(self, seed):
        self.clock.advance(self.build_cost)
        return nn.Linear(2, 2)

    def loss_from_outputs(self, outputs, batch, label_smoothing=0.0, soft_targets=None):
        return nn.functional.cross_entropy(outputs, batch.targets, reduction="none")

    def evaluate(self, model, split="valid"):
        self.clock.advance(self.eval_cost)
        if split != "valid":
            return {"accuracy": 0.0}
        value = self.script[self.valid_evals] if self.valid_evals < len(self.script) else 0.0
        self.valid_evals += 1
        return {"accuracy": value, "loss": 1.0}


class ScriptedAlgorithm(Algorithm):
    """Each update costs ``step_cost`` seconds; init and prepare_for_eval have their own costs.
    ``losses`` scripts the returned training loss (to test divergence)."""

    name = "scripted"
    search_space = SearchSpace((Param("batch_size", 8, kind="choice", choices=(8,)),))

    def __init__(
        self,
        clock,
        step_cost=0.1,
        init_cost=0.3,
        prepare_cost=0.05,
        losses=None,
        crash_at=None,
        crash_with=RuntimeError,
    ):
        self.clock = clock
        self.step_cost, self.init_cost, self.prepare_cost = step_cost, init_cost, prepare_cost
        self.losses = losses or {}
        self.crash_at, self.crash_with = crash_at, crash_with
        self.prepared = 0

    def init(self, workload, model, hp, seed):
        self.clock.advance(self.init_cost)
        return TrainState(workload, model, hp)

    def update(self, state, batch, step):
        if step == self.crash_at:
            raise self.crash_with("boom")
        self.clock.advance(self.step_cost)
        return torch.tensor(self.losses.get(step, 1.0))

    def prepare_for_eval(self, state):
        self.clock.advance(self.prepare_cost)
        self.prepared += 1
        return state.model


def gaussian_splits(dim: int):
    """Two Gaussian classes in ``dim``-D, separated along the first axis: 600 training, 200
    validation and 200 test examples (fixed seed), for tiny end-to-end algorithm tests."""
    from trainlab.workloads.base import Splits

    g = torch.Generator().manual_seed(0)
    y = torch.randint(2, (1000,), generator=g)
    x = torch.randn(1000, dim, generator=g) * 0.7
    x[:, 0] += 1.5 * (2 * y - 1).float()
    return Splits(x[:600], y[:600], x[600:800], y[600:800], x[800:], y[800:])
