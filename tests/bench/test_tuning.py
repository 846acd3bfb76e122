"""The rulesets: Halton points (deterministic for a seed, covering the space), their split into
studies, self-tuning defaults and budgets, and benchmark plans and fingerprints."""

import math

import benchfakes  # noqa: F401  (registers tiny_blobs, tiny_sgd, tiny_selftuned)
import pytest

from trainlab.algorithms.baselines import ADAM_SPACE
from trainlab.bench import tuning
from trainlab.bench.benchmark import BenchmarkConfig, make_plan
from trainlab.registry import get_algorithm
from trainlab.spec import Param, SearchSpace, TrainlabError

SPACE = SearchSpace(
    (
        Param("lr", 1e-2, 1e-4, 1.0, log=True),
        Param("beta", 0.9, 0.0, 1.0),
        Param("width", 64, 8, 512, kind="int"),
        Param("act", "relu", kind="choice", choices=("relu", "gelu", "tanh", "silu")),
    )
)


def test_halton_points_are_deterministic_for_a_seed():
    a = tuning.halton_points(SPACE, 20, seed=3)
    assert a == tuning.halton_points(SPACE, 20, seed=3)
    assert a != tuning.halton_points(SPACE, 20, seed=4)
    # a longer draw starts with the shorter one (one sequence, split in order)
    assert tuning.halton_points(SPACE, 30, seed=3)[:20] == a


def test_halton_points_cover_the_space():
    n = 64
    units = tuning.halton_unit_points(4, n, seed=0)
    for dim in range(4):
        bins = {min(int(u[dim] * 8), 7) for u in units}
        assert bins == set(range(8)), f"dimension {dim} leaves a 1/8 bin empty"
    points = tuning.halton_points(SPACE, n, seed=0)
    for hp in points:
        assert SPACE.validate(hp) == hp  # every point is in range
    # log scale: about as many points per decade of lr
    decades = [sum(10**-(k + 1) <= hp["lr"] < 10**-k for hp in points) for k in range(4)]
    assert min(decades) >= n // 4 - 4
    assert {hp["act"] for hp in points} == {"relu", "gelu", "tanh", "silu"}
    assert min(hp["width"] for hp in points) < 16 and max(hp["width"] for hp in points) > 256


def test_external_tuning_splits_one_sequence_into_studies():
    plans = tuning.external_tuning(SPACE, n_trials=4, n_studies=3, seed=7)
    assert [(p.study, p.trial_index) for p in plans] == [(s, k) for s in range(3) for k in range(4)]
    assert [p.hyperparameters for p in plans] == tuning.halton_points(SPACE, 12, seed=7)
    assert len({p.seed for p in plans}) == 12  # every trial trains with its own seed
    assert plans == tuning.external_tuning(SPACE, n_trials=4, n_studies=3, seed=7)


def test_external_tuning_can_hold_parameters_fixed():
    plans = tuning.plan_algorithm(get_algorithm("nadamw"), "external", 6, 1, 0, {"batch_size": 64})
    assert {p.hyperparameters["batch_size"] for p in plans} == {64}
    # the Halton sequence runs over the other parameters only
    space = get_algorithm("nadamw").search_space
    free = SearchSpace(tuple(p for p in space.params if p.name != "batch_size"))
    halton = tuning.halton_points(free, 6, seed=0)
    assert [p.hyperparameters for p in plans] == [
        space.validate({**hp, "batch_size": 64}) for hp in halton
    ]
    with pytest.raises(TrainlabError, match="cannot hold 'width' fixed"):
        tuning.plan_algorithm(get_algorithm("nadamw"), "external", 2, 1, 0, {"width": 3})


def test_self_tuning_runs_defaults_once_per_study_with_different_seeds():
    plans = tuning.self_tuning(ADAM_SPACE, n_studies=3, seed=0)
    assert [p.hyperparameters for p in plans] == [ADAM_SPACE.validate({})] * 3
    assert [p.study for p in plans] == [0, 1, 2] and len({p.seed for p in plans}) == 3


def test_an_algorithm_without_hyperparameters_runs_its_defaults_under_external():
    plans = tuning.external_tuning(SearchSpace(), n_trials=5, n_studies=2, seed=0)
    assert [(p.study, p.trial_index, p.hyperparameters) for p in plans] == [(0, 0, {}), (1, 0, {})]


def test_bad_counts():
    with pytest.raises(TrainlabError, match="--trials"):
        tuning.external_tuning(SPACE, 0, 1, 0)
    with pytest.raises(TrainlabError, match="--studies"):
        tuning.self_tuning(SPACE, 0, 0)


def test_plan_external_step_mode():
    config = BenchmarkConfig(
        workloads=["tiny_blobs"], algorithms=["tiny_sgd", "tiny_selftuned"], n_trials=3,
        n_studies=2, eval_every_steps="auto", variants=True,
    )  # fmt: skip
    plan = make_plan(config)
    slots = {
        (r["algorithm"], r["workload"], r["variant"], r["study"], r["trial_index"])
        for r in plan.rows
    }
    assert len(slots) == len(plan.rows) == (3 * 2 + 1 * 2) * 2  # base + its variant
    assert {r["variant"] for r in plan.rows} == {"", "mlp"}
    assert any("tiny_selftuned has no hyperparameters" in n for n in plan.notes)
    row = next(r for r in plan.rows if r["algorithm"] == "tiny_sgd")
    # auto: at least EVALS_PER_RUN evaluations over the budget of 3 x step_hint = 60 steps
    assert row["mode"] == "steps" and row["eval_every_steps"] == 1
    assert row["max_steps"] == 60 and row["step_hint"] == 20 and row["target_source"] == "class"
    assert row["target_metric"] == "accuracy" and row["target_value"] == 0.9
    # study-major order: all of study 0 comes before study 1
    studies = [r["study"] for r in plan.rows]
    assert studies == sorted(studies)
    # the fingerprint is a pure function of the configuration
    assert make_plan(config).key == plan.key
    assert make_plan(BenchmarkConfig(**{**config.options(), "seed": 1})).key != plan.key


def test_self_tuning_budget_is_one_and_a_half_times():
    time_rows = make_plan(
        BenchmarkConfig(
            workloads=["tiny_blobs"], algorithms=["tiny_sgd"], ruleset="self", n_studies=2
        )
    ).rows
    assert [r["max_runtime"] for r in time_rows] == [3.0, 3.0]  # 1.5 x 2 s
    assert [r["hyperparameters"] for r in time_rows] == [{"learning_rate": 0.1}] * 2
    step_rows = make_plan(
        BenchmarkConfig(
            workloads=["tiny_blobs"], algorithms=["tiny_sgd"], ruleset="self",
            eval_every_steps=5, max_steps=7,
        )
    ).rows  # fmt: skip
    assert step_rows[0]["max_steps"] == math.ceil(1.5 * 7)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"ruleset": "nope"}, "unknown ruleset"),
        ({"max_steps": 10}, "applies to step mode"),
        ({"eval_every_steps": 5, "max_runtime": 3.0}, "applies to time mode"),
        ({"eval_every_steps": "often"}, "N or auto"),
        ({"algorithms": ["tiny_sgd", "tiny_sgd"]}, "listed twice"),
        ({"workloads": []}, "no workloads"),
        ({"budget_scale": 0}, "--budget-scale"),
    ],
)
def test_bad_configurations(options, words):
    base = {"workloads": ["tiny_blobs"], "algorithms": ["tiny_sgd"]}
    with pytest.raises(TrainlabError, match=words):
        BenchmarkConfig(**{**base, **options})


def test_unknown_names_fail_before_anything_runs():
    with pytest.raises(TrainlabError, match="unknown algorithm"):
        make_plan(BenchmarkConfig(workloads=["tiny_blobs"], algorithms=["nope"]))
    with pytest.raises(TrainlabError, match="unknown workload"):
        make_plan(BenchmarkConfig(workloads=["nope"], algorithms=["tiny_sgd"]))
    assert get_algorithm("tiny_sgd").search_space.names == ["learning_rate"]
