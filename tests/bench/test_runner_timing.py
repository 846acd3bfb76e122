"""The timing rules of DESIGN.md, driven by an injected clock."""

import math

import pytest
from fakes import FakeClock, ScriptedAlgorithm, ScriptedWorkload

from trainlab.bench import measures, runner
from trainlab.bench.runner import run_trial
from trainlab.bench.store import Store


@pytest.fixture(autouse=True)
def fresh_process():
    """Each test sees the runner as a new process would (warm-up not yet done, no FLOPs counted:
    without the second, whether a trial pays for its FLOP count depends on the tests before it)."""
    runner._warmed_up.clear()
    measures._FLOPS.clear()


def make(script=(), **algo):
    clock = FakeClock()
    return clock, ScriptedWorkload(clock, script), ScriptedAlgorithm(clock, **algo)


def test_timed_untimed_split_adds_up():
    clock, w, a = make()
    r = run_trial(w, a, clock=clock, count_flops=False, calibrate=False)
    # 10 s of budget at 0.1 s/step; evaluation every 1 s of timed training
    assert r.status == "missed"
    # timed = init + steps + prepare_for_eval calls during training, exactly; the run ended on
    # its budget after the last preparation, so the test split's model is prepared once more,
    # untimed, and that preparation counts with the evaluations
    expected_timed = a.init_cost + r.steps * a.step_cost + (a.prepared - 1) * a.prepare_cost
    assert r.timed_seconds == pytest.approx(expected_timed)
    # eval = every validation evaluation plus the final test evaluation (and its preparation)
    assert r.eval_seconds == pytest.approx((r.n_evals + 1) * w.eval_cost + a.prepare_cost)
    # other = the one-time warm-up (a throwaway model) and building the model
    assert r.other_seconds == pytest.approx(2 * w.build_cost)
    assert r.timed_seconds + r.eval_seconds + r.other_seconds == pytest.approx(r.wall_seconds)
    assert r.wall_seconds == pytest.approx(clock.now - 100.0)
    # a second trial in the same process skips the warm-up
    r2 = run_trial(w, a, clock=clock, count_flops=False, calibrate=False)
    assert r2.other_seconds == pytest.approx(w.build_cost)


def test_flop_counting_is_untimed_and_leaves_the_trial_unchanged():
    clock, w, a = make(script=[0.0, 0.0, 0.95])
    plain = run_trial(w, a, clock=clock, count_flops=False, calibrate=False)
    runner._warmed_up.clear()
    clock, w, a = make(script=[0.0, 0.0, 0.95])
    counted = run_trial(w, a, clock=clock, calibrate=False)
    assert counted.timed_seconds == pytest.approx(plain.timed_seconds)
    assert counted.steps_to_target == plain.steps_to_target
    # the throwaway step costs a model build, an init and two updates: all outside the clock
    extra = w.build_cost + a.init_cost + 2 * a.step_cost
    assert counted.other_seconds == pytest.approx(plain.other_seconds + extra)


def test_eval_count_follows_timed_time_and_never_passes_budget():
    clock, w, a = make()
    r = run_trial(w, a, clock=clock)
    # an evaluation is due once eval_period has passed; it then waits for the step in flight
    # and its own prepare_for_eval, so each cycle lasts between eval_period and that plus both
    longest_cycle = w.eval_period + a.step_cost + a.prepare_cost
    assert r.timed_seconds / longest_cycle - 1 <= r.n_evals <= r.timed_seconds / w.eval_period
    assert all(e.timed_seconds <= w.max_runtime for e in r.evals)
    gaps = [b.timed_seconds - a_.timed_seconds for a_, b in zip(r.evals, r.evals[1:], strict=False)]
    assert all(g >= w.eval_period - 1e-9 for g in gaps)
    # training stopped just past the budget: no step after the one that crossed it
    assert r.timed_seconds > w.max_runtime
    assert r.timed_seconds - a.step_cost - a.prepare_cost <= w.max_runtime


def test_no_evaluation_when_prepare_for_eval_crosses_the_budget():
    clock, w, a = make(prepare_cost=0.0)
    # prepare_for_eval is timed: make it expensive so that it pushes past max_runtime
    a.prepare_cost = 4.0
    r = run_trial(w, a, clock=clock)
    assert all(e.timed_seconds <= w.max_runtime for e in r.evals)
    assert a.prepared > r.n_evals  # the last prepare happened, its evaluation did not


def test_time_to_target_is_first_eval_meeting_it_and_stops_early():
    clock, w, a = make(script=[0.5, 0.8, 0.95, 0.99])
    r = run_trial(w, a, clock=clock)
    assert r.status == "reached"
    assert r.n_evals == 3
    assert r.time_to_target == pytest.approx(r.evals[2].timed_seconds)
    assert r.steps_to_target == r.evals[2].step
    assert r.best_metric == pytest.approx(0.95)


def test_full_curve_continues_after_target():
    clock, w, a = make(script=[0.95] + [0.5] * 30)
    r = run_trial(w, a, clock=clock, full_curve=True)
    assert r.status == "reached"
    assert r.steps_to_target == r.evals[0].step
    assert r.n_evals > 5


def test_step_mode_evaluates_every_n_steps_within_step_budget():
    clock, w, a = make()
    r = run_trial(w, a, clock=clock, eval_every_steps=7, max_steps=50)
    assert [e.step for e in r.evals] == [7, 14, 21, 28, 35, 42, 49]
    assert r.steps == 50
    assert r.mode == "steps"


def test_non_finite_loss_is_diverged_not_failed():
    clock, w, a = make(losses={5: math.nan})
    r = run_trial(w, a, clock=clock)
    assert r.status == "diverged"
    # the loss is read to the host before each evaluation and every NONFINITE_CHECK_EVERY steps
    # (no sync per step); a NaN stays in the device-side sum even when later losses are finite,
    # and no evaluation happens after it
    assert 6 <= r.steps <= runner.NONFINITE_CHECK_EVERY and r.n_evals == 0
    assert r.time_to_target is None and r.test_metrics is None


def test_non_finite_loss_is_caught_before_an_evaluation():
    clock, w, a = make(losses={2: math.inf})
    r = run_trial(w, a, clock=clock, eval_every_steps=4, max_steps=50)
    assert r.status == "diverged" and r.steps == 4 and r.n_evals == 0


def test_crash_is_failed_with_error(tmp_path):
    clock, w, a = make(crash_at=3)
    with Store(tmp_path / "s.db") as store:
        r = run_trial(w, a, clock=clock, store=store)
        row = store.trial(r.trial_id)
    assert r.status == "failed" and "boom" in r.error
    assert row["status"] == "failed" and "boom" in row["error"]


def test_interrupted_lone_run_is_closed_as_failed_and_keeps_its_evaluations(tmp_path):
    clock, w, a = make(script=[0.1, 0.2], crash_at=25, crash_with=KeyboardInterrupt)
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(KeyboardInterrupt):
            run_trial(w, a, clock=clock, store=store)
        (row,) = store.trials()
        evals = store.evaluations(row["id"])
    assert row["status"] == "failed" and "interrupted" in row["error"]
    assert row["steps"] == 25
    # 0.3 s of init, then 0.1 s per step: evaluations at 1 s and 2 s of timed training
    assert [e.metrics["accuracy"] for e in evals] == [0.1, 0.2]


def test_interrupted_benchmark_trial_stays_unfinished_for_resume(tmp_path):
    clock, w, a = make(crash_at=5, crash_with=KeyboardInterrupt)
    with Store(tmp_path / "s.db") as store:
        trial_id = store.create_trial(workload=w.name, algorithm=a.name, seed=0, mode="time")
        with pytest.raises(KeyboardInterrupt):
            run_trial(w, a, clock=clock, store=store, trial_id=trial_id)
        assert store.trial(trial_id)["status"] == "running"


def test_store_commits_every_evaluation_as_it_happens(tmp_path):
    path = tmp_path / "s.db"
    seen = []

    def spy(progress):
        # a second connection sees each evaluation as soon as the runner reports it
        with Store(path) as other:
            seen.append(len(other.evaluations(1)))

    clock, w, a = make(script=[0.1, 0.2, 0.3, 0.95])
    with Store(path) as store:
        r = run_trial(w, a, clock=clock, store=store, on_progress=spy, progress_interval=1e9)
        row = store.trial(r.trial_id)
        evals = store.evaluations(r.trial_id)
    assert seen == [1, 2, 3]
    assert row["status"] == "reached" and row["n_evals"] == 4
    assert [e.metrics["accuracy"] for e in evals] == [0.1, 0.2, 0.3, 0.95]
    assert row["timed_seconds"] == pytest.approx(r.timed_seconds)
