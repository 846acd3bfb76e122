"""Learning-curve early stopping: the runner's stop rule, the rule's own conditions, a
benchmark with ``--early-stop`` end to end, and its bad inputs."""

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
import pytest
from fakes import FakeClock, ScriptedAlgorithm, ScriptedWorkload

from trainlab.bench import measures, runner
from trainlab.bench.benchmark import BenchmarkConfig, make_plan, run_benchmark
from trainlab.bench.early_stop import MIN_EVALS, CurveStopRule, rule_from_row
from trainlab.bench.runner import run_trial
from trainlab.bench.scoring import scores_from_store
from trainlab.bench.store import FINISHED, Store
from trainlab.cli import main
from trainlab.errors import TrainlabError
from trainlab.spec import EvalRecord, Target, WorkloadSpec


@pytest.fixture(autouse=True)
def fresh_process():
    runner._warmed_up.clear()
    measures._FLOPS.clear()


def test_injected_rule_stops_the_trial_and_its_reason_is_stored(tmp_path):
    clock = FakeClock()
    w, a = ScriptedWorkload(clock, [0.1, 0.2, 0.3, 0.95]), ScriptedAlgorithm(clock)
    seen = []

    def rule(spec, evals):
        seen.append(len(evals))
        return {"p_target": 0.01, "step": evals[-1].step} if len(evals) == 3 else None

    with Store(tmp_path / "s.db") as store:
        r = run_trial(w, a, clock=clock, store=store, stop_rule=rule, count_flops=False,
                      calibrate=False)  # fmt: skip
        row = store.trial(r.trial_id)
    assert seen == [1, 2, 3]  # after each evaluation, until it fires
    assert r.status == "stopped-early" and r.n_evals == 3 and r.time_to_target is None
    assert r.stop_reason == {"p_target": 0.01, "step": r.evals[2].step}
    assert row["status"] == "stopped-early" and row["stop_reason"] == r.stop_reason
    assert "stopped-early" in FINISHED


def test_rule_is_not_asked_once_the_target_is_met():
    clock = FakeClock()
    w, a = ScriptedWorkload(clock, [0.95]), ScriptedAlgorithm(clock)
    r = run_trial(w, a, clock=clock, stop_rule=lambda s, e: pytest.fail("asked"),
                  count_flops=False, calibrate=False)  # fmt: skip
    assert r.status == "reached"


SPEC = WorkloadSpec(target=Target("accuracy", 0.9, True), max_runtime=10.0, eval_period=1.0,
                    step_hint=100, eval_every_steps=10, max_steps=100)  # fmt: skip


def evals(values, every=10):
    return [EvalRecord(every * (i + 1), 0.1 * (i + 1), {"accuracy": v})
            for i, v in enumerate(values)]  # fmt: skip


@pytest.mark.parametrize("method", ["lc-parametric", "lc-pfn"])
def test_rule_fires_on_a_flat_curve_far_below_the_target(method):
    rule = CurveStopRule(method, 0.05)
    flat = [0.50, 0.52, 0.53, 0.535, 0.54, 0.542]
    assert rule(SPEC, evals(flat[: MIN_EVALS - 1])) is None  # too few evaluations
    assert rule(SPEC, evals(flat[:MIN_EVALS], every=1)) is None  # 5 % of the budget: too early
    reason = rule(SPEC, evals(flat))
    assert reason["method"] == method and reason["p_target"] < 0.05
    assert reason["threshold"] == 0.05 and reason["step"] == 60
    assert reason["target"] == 0.9 and reason["fraction"] == pytest.approx(0.6)
    # a curve heading for the target is left alone
    assert rule(SPEC, evals([0.5, 0.7, 0.8, 0.85, 0.88, 0.89])) is None


def test_a_nan_in_the_curve_lets_the_trial_go_on():
    assert CurveStopRule("lc-parametric")(SPEC, evals([0.5] * 5 + [float("nan")])) is None


def config(**kw):
    base = dict(workloads=["tiny_blobs"], algorithms=["tiny_sgd"], n_trials=3, n_studies=1,
                eval_every_steps=2, max_steps=60, targets="class", early_stop="lc-parametric",
                early_stop_threshold=0.5)  # fmt: skip
    return BenchmarkConfig(**{**base, **kw})


def test_benchmark_with_early_stop_runs_end_to_end(tmp_path):
    db = tmp_path / "s.db"
    run = run_benchmark(config(), db, jobs=1, threads=1)
    with Store(db) as store:
        rows = store.trials(benchmark_id=run.benchmark_id)
        record = store.benchmark(run.benchmark_id)
        scores_from_store(store, run.benchmark_id)  # a stopped trial scores (as a miss)
    assert all(r["status"] in FINISHED for r in rows)
    want = {"method": "lc-parametric", "threshold": 0.5}
    assert all(r["search"] == {"early_stop": want} for r in rows)
    assert all(rule_from_row(r) == CurveStopRule("lc-parametric", 0.5) for r in rows)
    for r in rows:
        assert (r["stop_reason"] is not None) == (r["status"] == "stopped-early")
        if r["stop_reason"]:
            assert r["stop_reason"]["p_target"] < 0.5 and r["steps"] < 60
    assert record["config"]["options"]["early_stop"] == "lc-parametric"
    # the rule is part of the fingerprint: without it the plan is another benchmark
    assert make_plan(config()).key != make_plan(config(early_stop="none")).key
    assert "early_stop" not in config(early_stop="none").options()  # old keys unchanged


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_threshold_outside_the_open_interval_is_refused(threshold):
    with pytest.raises(TrainlabError, match="--early-stop-threshold must be in"):
        config(early_stop_threshold=threshold)


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "nan", "x"])
def test_cli_bad_threshold_is_exit_2_before_training(tmp_path, capsys, value):
    db = tmp_path / "s.db"
    code = main(["bench", "-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "2",
                 "--max-steps", "10", "--early-stop", "lc-pfn", "--early-stop-threshold", value,
                 "--store", str(db), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("trainlab: error:") and len(err.splitlines()) == 1
    assert "threshold" in err and not db.exists()
