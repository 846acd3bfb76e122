"""``Algorithm.check_hyperparameters``: a point the workload cannot take is refused before any
trial row is started (runner), before anything is stored (``bench`` plan), and the growth,
learngene, precision and sparse algorithms check theirs against the resolved workload."""

import benchfakes
import pytest

from trainlab.bench.benchmark import BenchmarkConfig, make_plan
from trainlab.bench.runner import run_trial
from trainlab.bench.store import Store
from trainlab.errors import HyperparameterError, TrainlabError
from trainlab.registry import _ALGORITHMS, get_algorithm, get_workload, register_algorithm
from trainlab.spec import WorkloadSpec


class PickySGD(benchfakes.PlainSGD):
    """Refuses learning rates above 0.2 on any workload, and records what it was shown."""

    name = "tiny_picky"
    seen: list = []

    def check_hyperparameters(self, workload, hp):
        PickySGD.seen.append((workload.max_steps, dict(hp)))
        if hp["learning_rate"] > 0.2:
            raise HyperparameterError(f"tiny_picky: learning_rate={hp['learning_rate']} > 0.2")


if PickySGD.name not in _ALGORITHMS:
    register_algorithm(PickySGD.name, PickySGD)


def test_the_runner_refuses_before_the_trial_row_exists(tmp_path):
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(TrainlabError, match="learning_rate=0.5 > 0.2"):
            run_trial(get_workload("tiny_blobs"), PickySGD(), {"learning_rate": 0.5},
                      eval_every_steps=5, max_steps=10, store=store)  # fmt: skip
        assert store.trials() == []
    PickySGD.seen.clear()
    r = run_trial(get_workload("tiny_blobs"), PickySGD(), {"learning_rate": 0.1},
                  eval_every_steps=5, max_steps=10, count_flops=False, calibrate=False)
    assert r.steps >= 5 and PickySGD.seen == [(10, {"learning_rate": 0.1})]  # resolved spec


def test_bench_checks_every_planned_point_at_plan_time():
    PickySGD.seen.clear()
    cfg = BenchmarkConfig(workloads=["tiny_blobs"], algorithms=["tiny_picky"], n_trials=8,
                          n_studies=1, eval_every_steps=5, max_steps=40)  # fmt: skip
    with pytest.raises(TrainlabError, match="tiny_picky: learning_rate="):
        make_plan(cfg)  # the Halton points span 1e-3..1: some are above 0.2
    assert PickySGD.seen and all(steps == 40 for steps, _ in PickySGD.seen)
    ok = BenchmarkConfig(workloads=["tiny_blobs"], algorithms=["tiny_picky"], n_trials=1,
                         n_studies=1, eval_every_steps=5, max_steps=40, ruleset="fixed",
                         hyperparameters={"tiny_picky": {"learning_rate": 0.1}})  # fmt: skip
    assert len(make_plan(ok).rows) == 1


def _step_mode(workload, steps):
    return workload.with_spec(WorkloadSpec(target=workload.target, max_runtime=60.0,
                                           eval_period=1.0, step_hint=steps,
                                           eval_every_steps=1, max_steps=steps))  # fmt: skip


def test_growth_refuses_a_last_growth_at_or_past_the_budget():
    a = get_algorithm("grow_net2net")
    w = get_workload("mnist1d_mlp")
    hp = a.search_space.validate({"stages": 4})
    # 3 updates, schedule 3: growths at max(1, round(0.25 * 3 * s / 4)) -> 1, 2, 3, 4
    with pytest.raises(HyperparameterError, match="growth 4 of 4 would come at update 4"):
        a.check_hyperparameters(_step_mode(w, 3), hp)
    a.check_hyperparameters(_step_mode(w, 40), hp)  # 2.5 -> 2, 5, 8, 10 < 40


def test_adapt_refuses_an_empty_lookback_window_before_training():
    a = get_algorithm("adapt")
    hp = a.search_space.validate({"min_lookback": 50, "max_lookback": 40},
                                 allow_out_of_range=True)  # fmt: skip
    with pytest.raises(HyperparameterError, match="min_lookback=50 must not exceed"):
        a.check_hyperparameters(get_workload("mnist1d_mlp"), hp)
    with pytest.raises(HyperparameterError, match="a word length must be 2 to 32 bits"):
        a.search_space.validate({"wl_start": 1}, allow_out_of_range=True)


def test_bf16_passes_the_check_to_the_algorithm_it_wraps():
    a = get_algorithm("adapt+bf16")
    hp = a.search_space.validate({"min_lookback": 50, "max_lookback": 40},
                                 allow_out_of_range=True)  # fmt: skip
    with pytest.raises(HyperparameterError, match="min_lookback"):
        a.check_hyperparameters(get_workload("mnist1d_mlp"), hp)
