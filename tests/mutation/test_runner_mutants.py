"""The runner's timing rules and bookkeeping, to the last field: the cases that
tests/bench/test_runner_timing.py let mutants through. A recording algorithm, workload and store
show every argument the runner passes; a second fake clock stands for process CPU time and moves
at half the speed of the wall clock in the timed sections. Every cost is a multiple of 1/8, so the
expected seconds below are exact sums; docs/mutation.md lists the mutants no test can kill."""

from __future__ import annotations

import math

import pytest
import torch
from fakes import FakeClock, ScriptedAlgorithm, ScriptedWorkload

from trainlab.bench import measures, runner
from trainlab.bench.runner import Progress, run_trial
from trainlab.spec import (
    EvalRecord,
    HyperparameterError,
    OutOfRangeWarning,
    Param,
    SearchSpace,
    Target,
    WorkloadSpec,
)


@pytest.fixture(autouse=True)
def fresh_process():
    runner._warmed_up.clear()
    measures._FLOPS.clear()


class RecordingStore:
    def __init__(self):
        self.created, self.started, self.evals, self.finished = [], [], [], []

    def create_trial(self, **kwargs):
        self.created.append(kwargs)
        return 7

    def start_trial(self, trial_id):
        self.started.append(trial_id)

    def add_evaluation(self, trial_id, record):
        self.evals.append((trial_id, record))

    def finish_trial(self, trial_id, **kwargs):
        self.finished.append((trial_id, kwargs))


class RecordingWorkload(ScriptedWorkload):
    """Records ``init_model``, ``batches`` and ``evaluate`` calls. A script entry of None
    evaluates to no metrics at all; a dict is returned as it is."""

    def __init__(self, clock, script=(), eval_cost=0.5, **kwargs):
        super().__init__(clock, script, eval_cost=eval_cost, **kwargs)
        self.calls = []

    def init_model(self, seed):
        self.calls.append(("init_model", seed))
        return super().init_model(seed)

    def batches(self, batch_size, seed, indices=None):
        self.calls.append(("batches", batch_size, seed))
        return super().batches(batch_size, seed, indices)

    def evaluate(self, model, split="valid"):
        self.calls.append(("evaluate", model, split))
        if split == "valid" and self.valid_evals < len(self.script):
            entry = self.script[self.valid_evals]
            if entry is None or isinstance(entry, dict):
                self.clock.advance(self.eval_cost)
                self.valid_evals += 1
                return dict(entry or {})
        return super().evaluate(model, split)


class GenerativeWorkload(RecordingWorkload):
    generative = True

    def fresh_batches(self, batch_size, seed):
        self.calls.append(("fresh_batches", batch_size, seed))
        return self.batches(batch_size, seed)


class Recording(ScriptedAlgorithm):
    """Records every call; init builds an SGD optimizer with the ``lr`` hyperparameter (so an
    evaluation records it); ``cpu`` advances by half of each timed cost. Crashes at step 1000, so
    that a mutant which never stops fails instead of hanging."""

    search_space = SearchSpace(
        (
            Param("batch_size", 8, kind="choice", choices=(8,)),
            Param("lr", 0.125, low=0.0625, high=0.5),
        )
    )

    def __init__(self, clock, cpu=None, step_cost=0.25, init_cost=0.5, prepare_cost=0.25, **kw):
        kw.setdefault("crash_at", 1000)
        super().__init__(clock, step_cost, init_cost, prepare_cost, **kw)
        self.cpu = cpu or FakeClock()
        self.calls = []

    def batch_size(self, workload, hp):
        self.calls.append(("batch_size", workload, hp))
        return super().batch_size(workload, hp)

    def check_workload(self, workload):
        self.calls.append(("check_workload", workload))

    def init(self, workload, model, hp, seed):
        self.calls.append(("init", workload, model, hp, seed))
        self.cpu.advance(self.init_cost / 2)
        state = super().init(workload, model, hp, seed)
        state.optimizer = torch.optim.SGD(model.parameters(), lr=hp["lr"])
        return state

    def select_data(self, state, stream):
        self.calls.append(("select_data", state, stream))
        return stream

    def update(self, state, batch, step):
        self.calls.append(("update", state, batch, step))
        self.cpu.advance(self.step_cost / 2)
        return super().update(state, batch, step)

    def prepare_for_eval(self, state):
        self.cpu.advance(self.prepare_cost / 2)
        return super().prepare_for_eval(state)


def calls(recorder, name):
    return [c[1:] for c in recorder.calls if c[0] == name]


def test_step_mode_trial_every_argument_and_field():
    clock, cpu = FakeClock(), FakeClock()
    cpu.now = 50.0
    w = RecordingWorkload(clock, script=[0.5, 0.95])
    a = Recording(clock, cpu)
    store, progress = RecordingStore(), []
    r = run_trial(
        w, a, {"lr": 0.25}, seed=3, eval_every_steps=4, max_steps=20, store=store,
        on_progress=progress.append, cpu_clock=cpu, clock=clock, count_flops=False, calibrate=False,
    )  # fmt: skip
    hp = {"batch_size": 8, "lr": 0.25}
    # timed: init 0.5, 0.25 a step, 0.25 a preparation: evaluations at 0.5 + 1 + 0.25 = 1.75
    # (step 4) and 1.75 + 1 + 0.25 = 3.0 (step 8), where the target is met
    record = [EvalRecord(4, 1.75, {"accuracy": 0.5, "loss": 1.0}, 1.0, 0.25)]
    record.append(EvalRecord(8, 3.0, {"accuracy": 0.95, "loss": 1.0}, 1.0, 0.25))
    assert r.evals == record
    assert (r.workload, r.algorithm, r.hyperparameters, r.seed, r.mode) == (
        "scripted", "scripted", hp, 3, "steps",
    )  # fmt: skip
    assert (r.status, r.time_to_target, r.steps_to_target, r.steps, r.n_evals) == (
        "reached", 3.0, 8, 8, 2,
    )  # fmt: skip
    assert (r.timed_seconds, r.cpu_seconds, r.cpu_time_to_target) == (3.0, 1.5, 1.5)
    # two validation and one test evaluation of 0.5; wall: two model builds of 2.0 on top
    assert (r.eval_seconds, r.wall_seconds, r.median_step_seconds) == (1.5, 8.5, 0.25)
    assert r.best_metric == 0.95 and r.test_metrics == {"accuracy": 0.0}
    assert r.trial_id == 7 and r.error is None
    assert a.prepared == 2  # the model evaluated at the target is the one scored on the test set
    # what the algorithm and the workload were handed
    ((checked,),) = calls(a, "check_workload")
    assert checked.max_steps == 20 and checked.eval_every_steps == 4
    assert calls(a, "batch_size") == [(checked, hp)]
    ((init_w, model, init_hp, seed),) = calls(a, "init")
    assert (init_w, init_hp, seed) == (checked, hp, 3) and isinstance(model, torch.nn.Linear)
    ((state, _),) = calls(a, "select_data")
    assert state.model is model
    updates = calls(a, "update")
    assert [u[2] for u in updates] == list(range(8))
    assert all(u[0] is state and u[1].inputs.shape == (8, 2) for u in updates)
    assert calls(w, "init_model") == [(3,), (3,)]  # warm-up, then the trial's model
    assert calls(w, "batches") == [(8, 3), (8, 3)]
    assert calls(w, "evaluate") == [(model, "valid"), (model, "valid"), (model, "test")]
    # the store: the trial row, each evaluation as it happens, the closing row
    assert store.created == [
        dict(
            workload="scripted", variant="", algorithm="scripted", hyperparameters=hp, seed=3,
            mode="steps", eval_every_steps=4, max_runtime=10.0, max_steps=20, eval_period=1.0,
            step_hint=100, target_source="class", target_metric="accuracy", target_value=0.9,
            higher_is_better=1, nproc=1,
        )
    ]  # fmt: skip
    assert store.started == [7] and store.evals == [(7, e) for e in record]
    assert store.finished == [
        (
            7,
            dict(
                status="reached", time_to_target=3.0, steps_to_target=8, timed_seconds=3.0,
                eval_seconds=1.5, wall_seconds=8.5, n_evals=2, steps=8, best_metric=0.95,
                cpu_seconds=1.5, cpu_time_to_target=1.5, ref_steps_to_target=None,
                reference_step_seconds=None, median_step_seconds=0.25,
                flops_per_step=None, flops_to_target=None, contended=int(r.contended),
                test_metrics={"accuracy": 0.0},
                # the evaluated Linear(2, 2): 6 parameters, 2 x 2 multiply-adds = 8 FLOPs
                model_cost={"params": 6, "nonzero_params": 6, "flops_per_example": 8.0,
                            "nonzero_flops_per_example": 8.0, "examples": 64},
                error=None, stop_reason=None,
            ),
        )
    ]  # fmt: skip
    # progress after every step (0.25 s >= the default interval of 0.25 s) but the last
    timed = [0.75, 1.0, 1.25, 1.75, 2.0, 2.25, 2.5]
    last = [None] * 3 + [record[0]] * 4
    assert progress == [
        Progress(s, t, 20, "steps", e) for s, t, e in zip(range(1, 8), timed, last, strict=True)
    ]
    assert "evals" not in r.to_json() and r.to_json()["status"] == "reached"


def test_defaults_seed_zero_and_hyperparameter_range():
    clock = FakeClock()
    w, a = RecordingWorkload(clock), Recording(clock)
    r = run_trial(
        w, a, clock=clock, eval_every_steps=2, max_steps=2, count_flops=False, calibrate=False
    )
    assert calls(a, "init")[0][3] == 0 and r.seed == 0
    assert r.hyperparameters == {"batch_size": 8, "lr": 0.125}
    with pytest.raises(HyperparameterError):
        run_trial(w, a, {"lr": 1.0}, clock=clock, eval_every_steps=2, max_steps=2)
    with pytest.warns(OutOfRangeWarning):
        r = run_trial(
            w, a, {"lr": 1.0}, clock=clock, eval_every_steps=2, max_steps=2,
            allow_out_of_range=True,
        )  # fmt: skip
    assert r.hyperparameters["lr"] == 1.0


def test_progress_interval_and_time_mode_budget():
    clock = FakeClock()
    w, a = RecordingWorkload(clock), Recording(clock, prepare_cost=0.0)
    progress = []
    run_trial(
        w, a, clock=clock, max_runtime=2.0, on_progress=progress.append, progress_interval=0.5,
        count_flops=False, calibrate=False,
    )  # fmt: skip
    # timed 0.5 + 0.25 a step: evaluations due at steps 2 (1.0) and 6 (2.0, exactly the budget).
    # Reports: step 1 (the model builds lie between the start and it), 2 (due), 3 (the 0.5 s
    # evaluation at step 2 came after the report there), 5 (0.5 s later), 6 (due)
    assert [(p.step, p.budget, p.mode) for p in progress] == [
        (1, 2.0, "time"), (2, 2.0, "time"), (3, 2.0, "time"), (5, 2.0, "time"), (6, 2.0, "time"),
    ]  # fmt: skip


def test_evaluation_exactly_at_the_period_and_the_budget():
    # no init or preparation cost, 0.5 s a step: timed is 1.0 after step 2 and 2.0 after step 4.
    # An evaluation is due once eval_period has passed (>=), and one exactly at the budget still
    # happens (only passing it, >, stops the run): evaluations at steps 2 and 4, stop after 5
    clock = FakeClock()
    w = RecordingWorkload(clock)
    a = Recording(clock, step_cost=0.5, init_cost=0.0, prepare_cost=0.0)
    r = run_trial(w, a, clock=clock, max_runtime=2.0, count_flops=False, calibrate=False)
    assert [(e.step, e.timed_seconds) for e in r.evals] == [(2, 1.0), (4, 2.0)]
    assert r.steps == 5 and r.timed_seconds == 2.5 and r.status == "missed"


def test_preparation_ending_exactly_at_the_budget_still_evaluates():
    # 0.25 init + 3 steps of 0.25 = 1.0, then a preparation of 1.0 reaches exactly 2.0
    clock = FakeClock()
    w = RecordingWorkload(clock)
    a = Recording(clock, step_cost=0.25, init_cost=0.25, prepare_cost=1.0)
    r = run_trial(w, a, clock=clock, max_runtime=2.0, count_flops=False, calibrate=False)
    assert [(e.step, e.timed_seconds) for e in r.evals] == [(3, 2.0)]


def test_eval_every_step_and_its_bound():
    clock = FakeClock()
    w, a = RecordingWorkload(clock), Recording(clock)
    r = run_trial(
        w, a, clock=clock, eval_every_steps=1, max_steps=3, count_flops=False, calibrate=False
    )
    assert [e.step for e in r.evals] == [1, 2, 3]
    with pytest.raises(ValueError) as info:
        run_trial(w, a, clock=clock, eval_every_steps=0, max_steps=3)
    assert str(info.value) == "eval_every_steps must be >= 1"


def test_a_one_step_run_is_scored_on_the_test_split():
    clock = FakeClock()
    w, a = RecordingWorkload(clock), Recording(clock)
    r = run_trial(
        w, a, clock=clock, eval_every_steps=5, max_steps=1, count_flops=False, calibrate=False
    )
    assert r.steps == 1 and r.n_evals == 0 and r.test_metrics == {"accuracy": 0.0}
    assert a.prepared == 1


def test_spec_alone_or_overrides_not_both():
    spec = WorkloadSpec(
        Target("accuracy", 0.9, higher_is_better=True),
        max_runtime=4.0,
        eval_period=1.0,
        step_hint=10,
    )
    clock = FakeClock()
    w, a = RecordingWorkload(clock), Recording(clock)
    r = run_trial(w, a, spec=spec, clock=clock, count_flops=False, calibrate=False)
    assert r.mode == "time" and 4.0 < r.timed_seconds <= 4.25
    with pytest.raises(ValueError) as info:
        run_trial(w, a, spec=spec, max_steps=5, clock=clock)
    assert str(info.value) == "give either spec or eval_every_steps/max_steps/max_runtime, not both"


def test_nonfinite_loss_is_found_at_the_sixteenth_step_without_an_evaluation():
    clock = FakeClock()
    w, a = RecordingWorkload(clock), Recording(clock, losses={2: math.nan})
    r = run_trial(
        w, a, clock=clock, eval_every_steps=50, max_steps=100, count_flops=False, calibrate=False
    )
    assert r is not None and r.status == "diverged" and r.steps == runner.NONFINITE_CHECK_EVERY


def test_nonfinite_loss_at_the_end_of_the_budget_is_diverged():
    clock = FakeClock()
    w, a = RecordingWorkload(clock), Recording(clock, losses={2: math.inf})
    r = run_trial(
        w, a, clock=clock, eval_every_steps=50, max_steps=5, count_flops=False, calibrate=False
    )
    assert r.status == "diverged" and r.steps == 5 and r.test_metrics is None


def test_nonfinite_validation_loss_is_diverged():
    clock = FakeClock()
    w = RecordingWorkload(clock, script=[{"accuracy": 0.5, "loss": math.inf}, 0.95])
    a = Recording(clock)
    r = run_trial(
        w, a, clock=clock, eval_every_steps=2, max_steps=10, count_flops=False, calibrate=False
    )
    assert r is not None and r.status == "diverged" and r.n_evals == 1 and r.steps == 2


def test_missing_or_nan_metrics():
    # no metrics at all: no best metric, no divergence; a NaN accuracy is not a best metric
    clock = FakeClock()
    script = [None, {"accuracy": math.nan}, {"accuracy": 0.5}, {"accuracy": 0.3}]
    w = RecordingWorkload(clock, script=script)
    a = Recording(clock)
    r = run_trial(
        w, a, clock=clock, eval_every_steps=2, max_steps=8, count_flops=False, calibrate=False
    )
    assert (r.status, r.n_evals, r.best_metric) == ("missed", 4, 0.5)  # the best, not the last
    clock = FakeClock()
    w = RecordingWorkload(clock, script=[None, {"accuracy": math.inf}])
    r = run_trial(w, Recording(clock), clock=clock, eval_every_steps=2, max_steps=4)
    assert r.n_evals == 2 and r.best_metric is None


def test_a_state_without_an_optimizer_records_no_lr():
    class Plain(Recording):
        def init(self, workload, model, hp, seed):
            self.clock.advance(self.init_cost)
            return type("State", (), {"model": model})()

    clock = FakeClock()
    r = run_trial(
        RecordingWorkload(clock, script=[0.5]), Plain(clock), clock=clock, eval_every_steps=2,
        max_steps=2, count_flops=False, calibrate=False,
    )  # fmt: skip
    assert r.status == "missed" and r.evals[0].lr is None


def test_flops_are_counted_and_reported():
    clock = FakeClock()
    w = RecordingWorkload(clock, script=[0.95])
    a = Recording(clock)
    store = RecordingStore()
    r = run_trial(w, a, {"lr": 0.25}, clock=clock, eval_every_steps=2, max_steps=4, store=store)
    # the scripted update does no arithmetic on tensors: zero FLOPs, but counted
    assert r.flops_per_step == 0 and r.flops_to_target == 0
    row = store.finished[0][1]
    assert row["flops_per_step"] == 0 and row["flops_to_target"] == 0
    # the throwaway step of the count got the same hyperparameters as the trial
    assert [c[2] for c in calls(a, "init")] == [{"batch_size": 8, "lr": 0.25}] * 2


def test_contention_follows_the_thread_count(monkeypatch):
    # the CPU clock does not move: with one thread that is contention, with four it is not
    for threads, contended in ((1, True), (4, False)):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        clock = FakeClock()
        w, a = RecordingWorkload(clock), Recording(clock)
        r = run_trial(
            w, a, clock=clock, cpu_clock=FakeClock(), eval_every_steps=2, max_steps=4,
            count_flops=False, calibrate=False,
        )  # fmt: skip
        assert r.contended is contended


def _f1():
    _f2()


def _f2():
    _f3()


def _f3():
    _f4()


def _f4():
    _f5()


def _f5():
    _f6()


def _f6():
    _f7()


def _f7():
    _f8()


def _f8():
    raise RuntimeError("deep")


def test_crash_error_names_the_exception_and_keeps_eight_frames():
    # run_trial -> update -> _f1 ... _f8: ten frames, of which the error keeps the first eight
    class Deep(Recording):
        def update(self, state, batch, step):
            _f1()

    clock = FakeClock()
    r = run_trial(
        RecordingWorkload(clock), Deep(clock), clock=clock, count_flops=False, calibrate=False
    )
    assert r.status == "failed" and r.error.startswith("RuntimeError: deep\n")
    assert r.error.count('  File "') == 8


def test_generative_workload_draws_fresh_examples_in_the_warm_up():
    clock = FakeClock()
    w = GenerativeWorkload(clock)
    run_trial(w, Recording(clock), seed=5, clock=clock, eval_every_steps=2, max_steps=2,
              count_flops=False, calibrate=False)  # fmt: skip
    assert calls(w, "fresh_batches") == [(8, 5)]
