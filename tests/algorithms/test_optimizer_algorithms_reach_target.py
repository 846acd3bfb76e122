"""End to end: the optimizer recipes of ``trainlab.algorithms.optimizers`` reach the target of a
cheap workload in step mode with their default hyperparameters (digits_cnn, seed 0); the
learning-rate-free ones as self-tuning algorithms, with no hyperparameters at all."""

from __future__ import annotations

import pytest
import torch

from trainlab.bench.runner import run_trial
from trainlab.registry import get_algorithm, get_workload

pytestmark = pytest.mark.slow

TUNED = ["lion", "adan", "lamb", "shampoo", "muon", "schedule_free_adamw", "schedule_free_sgd"]
SELF_TUNING = ["dog", "prodigy", "dadapt_adam"]


@pytest.fixture(scope="module")
def workload():
    # small models on a shared CPU run faster on one thread than fighting over several
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield get_workload("digits_cnn")
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", TUNED + SELF_TUNING)
def test_reaches_target(workload, name):
    algorithm = get_algorithm(name)
    assert algorithm.self_tuning == (name in SELF_TUNING)
    result = run_trial(workload, algorithm, seed=0, eval_every_steps=workload.eval_every_steps)
    assert result.status == "reached", (result.status, result.best_metric, result.error)
    assert result.steps_to_target <= workload.step_budget
    assert workload.target.is_met({workload.target.metric: result.best_metric})
