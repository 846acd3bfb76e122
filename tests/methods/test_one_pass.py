"""One-pass planner against its formula, and the no-repeat guard."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainlab.methods.one_pass import (
    RepeatedExampleError,
    choose_model_size,
    one_pass,
    plan_one_epoch,
)


def test_plan_follows_tokens_per_parameter_rule():
    # C = 6 * N * D with D = 5 N: N = 1000 -> C = 3e7
    plan = plan_one_epoch(3e7, tokens_per_iteration=64)
    assert plan.parameters == 1000 and plan.tokens == 5000
    assert plan.iterations == math.ceil(5000 / 64)
    assert not plan.data_bound and plan.regularization == "none"
    # four times the compute: twice the parameters and twice the tokens
    bigger = plan_one_epoch(1.2e8, tokens_per_iteration=64)
    assert bigger.parameters == 2000 and bigger.tokens == 10_000


def test_plan_is_data_bound_when_data_runs_out():
    plan = plan_one_epoch(3e7, tokens_per_iteration=100, available_tokens=2000)
    assert plan.data_bound and plan.tokens == 2000 and plan.parameters == 400
    assert plan.iterations == 20


def test_choose_model_size_is_closest_on_log_scale():
    sizes = {"small": 1_000, "medium": 10_000, "large": 100_000}
    assert choose_model_size(sizes, 2_500) == "small"
    assert choose_model_size(sizes, 4_000) == "medium"


def test_one_pass_refuses_repeats_but_not_fresh_examples():
    batches = [[0, 1], [2, -1], [-1, 3]]
    assert list(one_pass(batches, key=lambda b: b)) == batches
    with pytest.raises(RepeatedExampleError):
        list(one_pass([[0, 1], [1, 2]], key=lambda b: b))


@pytest.mark.parametrize(
    "wrap",
    [
        torch.tensor,
        np.array,
        lambda ids: [torch.tensor(i) for i in ids],
        lambda ids: [np.int64(i) for i in ids],
    ],  # fmt: skip
    ids=["tensor", "ndarray", "tensor scalars", "numpy scalars"],
)
def test_repeats_are_caught_by_value_for_tensors_and_arrays(wrap):
    with pytest.raises(RepeatedExampleError):
        list(one_pass([wrap([0, 1]), wrap([2, 1])], key=lambda b: b))
    fresh = [wrap([-1, -1]), wrap([-1, 3]), wrap([4, -1])]  # -1: freshly generated, never a repeat
    assert len(list(one_pass(fresh, key=lambda b: b))) == 3


def test_repeats_are_caught_in_multidimensional_ids():
    with pytest.raises(RepeatedExampleError):
        list(one_pass([torch.tensor([[0, 1], [2, 0]])], key=lambda b: b))
