"""End to end: the controllers and a few composed schedule recipes reach the target of a cheap
workload in step mode with their default hyperparameters (digits_cnn, seed 0)."""

from __future__ import annotations

import pytest
import torch

from trainlab.bench.runner import run_trial
from trainlab.registry import get_algorithm, get_workload

pytestmark = pytest.mark.slow

ALGORITHMS = ["autolrs", "accelat", "nadamw+rex", "nadamw+wsd", "adamw+one_cycle"]


@pytest.fixture(scope="module")
def workload():
    # small models on a shared CPU run faster on one thread than fighting over several
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield get_workload("digits_cnn")
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_reaches_target(workload, name):
    algorithm = get_algorithm(name)
    result = run_trial(workload, algorithm, seed=0, eval_every_steps=workload.eval_every_steps)
    assert result.status == "reached", (result.status, result.best_metric, result.error)
    assert result.steps_to_target <= workload.step_budget
    assert workload.target.is_met({workload.target.metric: result.best_metric})
