"""The ``Recipe.make_state`` hook: a method extends the state with typed fields of its own, and
the shared base gives every method algorithm its seed and batch size."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
from torch import nn

from trainlab.algorithms._common import MethodState, NadamwCosineMethod, derived_seed
from trainlab.algorithms.baselines import BASELINES, NADAMW
from trainlab.algorithms.recipe import SCHEDULES, Recipe, adam_betas
from trainlab.registry import get_algorithm
from trainlab.spec import SearchSpace, Target, TrainState
from trainlab.workloads.base import ClassificationWorkload, Splits, seeded_model


class Blobs(ClassificationWorkload):
    """Two Gaussian classes in 3-D: enough to build and step an algorithm."""

    name = "blobs3"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime, eval_period, step_hint, num_classes = 10.0, 1.0, 100, 2

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        y = torch.randint(2, (300,), generator=g)
        x = torch.randn(300, 3, generator=g) + (2 * y - 1).float()[:, None]
        self.splits = Splits(x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:])

    def init_model(self, seed: int) -> nn.Module:
        return seeded_model(seed, lambda: nn.Linear(3, 2), self.device)


@dataclasses.dataclass(kw_only=True)
class CountingState(MethodState):
    marks: int


class Counting(NadamwCosineMethod):
    state_type = CountingState
    extra_space = SearchSpace()

    def __init__(self) -> None:
        super().__init__("counting", "test method")

    def make_state(self, workload, model: nn.Module, hp: dict[str, Any], seed: int, /, **fields):
        return super().make_state(workload, model, hp, seed, marks=seed * 2, **fields)


def test_a_method_extends_the_state_through_make_state():
    w = Blobs()
    algo = Counting()
    hp = algo.search_space.validate({"batch_size": 32})
    state = algo.init(w, w.init_model(0), hp, seed=3)
    assert isinstance(state, CountingState)
    assert (state.marks, state.seed, state.batch_size) == (6, 3, 32)
    assert state.optimizer is not None and state.scheduler is not None
    loss = algo.update(state, next(w.batches(32, 0)), 0)
    assert torch.isfinite(loss)


def test_plain_recipe_state_and_missing_fields_fail_loudly():
    w = Blobs()
    recipe = Recipe(NADAMW, SCHEDULES["cosine"])
    state = recipe.init(w, w.init_model(0), recipe.search_space.validate({}), seed=0)
    assert type(state) is TrainState

    class Broken(Counting):
        def make_state(self, workload, model, hp, seed, /, **fields):
            return NadamwCosineMethod.make_state(self, workload, model, hp, seed, **fields)

    with pytest.raises(TypeError, match="marks"):
        Broken().init(w, w.init_model(0), Broken().search_space.validate({}), seed=0)


def test_shared_helpers():
    assert adam_betas({"beta1": 0.9, "one_minus_beta2": 0.01}) == (0.9, 0.99)
    assert BASELINES == ("adamw", "nadamw", "nesterov", "heavyball")
    assert all(get_algorithm(name).name == name for name in BASELINES)
    seeds = {derived_seed(0, p, r) for p in (1, 3, 4, 5, 7) for r in range(3)} | {0}
    assert len(seeds) == 16
