"""Measures beside wall-clock time-to-target: CPU time, FLOPs, the contention flag, and the rule
that the test split is scored on the model as it was last prepared for evaluation."""

import math

import benchfakes  # noqa: F401  (registers tiny_blobs)
import pytest
import torch
from fakes import FakeClock, ScriptedAlgorithm, ScriptedWorkload

from trainlab.algorithms.recipe import Recipe
from trainlab.bench import runner
from trainlab.bench.measures import (
    ReferenceClock,
    flops_to,
    is_contended,
    longest_slow_stretch,
    step_flops,
)
from trainlab.bench.runner import run_trial
from trainlab.registry import algorithm_names, get_algorithm, get_workload
from trainlab.spec import Algorithm


class FakeCPU:
    """A CPU clock that runs at ``share`` of the wall clock it follows."""

    def __init__(self, clock: FakeClock, share: float) -> None:
        self.clock, self.share = clock, share

    def __call__(self) -> float:
        return self.clock.now * self.share


def test_cpu_time_to_target_counts_cpu_seconds_of_the_timed_sections():
    runner._warmed_up.clear()
    clock = FakeClock()
    w = ScriptedWorkload(clock, [0.0, 0.95])
    a = ScriptedAlgorithm(clock)
    r = run_trial(w, a, clock=clock, cpu_clock=FakeCPU(clock, 0.5), count_flops=False,
                  calibrate=False)  # fmt: skip
    assert r.status == "reached"
    # half a core throughout: CPU seconds are half the timed seconds, to the target and in all
    assert r.cpu_time_to_target == pytest.approx(0.5 * r.time_to_target)
    assert r.cpu_seconds == pytest.approx(0.5 * r.timed_seconds)
    assert r.median_step_seconds == pytest.approx(a.step_cost)


def test_contention_flag():
    steady = [0.01] * 200
    assert not is_contended(steady, 2.0, 2.0, threads=1)
    # less than 2/3 of a core over the timed sections, with one thread
    assert is_contended(steady, 2.0, 1.2, threads=1)
    assert not is_contended(steady, 2.0, 1.2, threads=2)  # spin threads blur it: not used
    # a stretch of slow steps: 10 % of the steps (and at least 20) at over twice the median
    burst = [0.01] * 170 + [0.05] * 30
    assert longest_slow_stretch(burst) == 30 and is_contended(burst, 2.0, 2.0, threads=2)
    scattered = ([0.01] * 9 + [0.05]) * 20  # as many slow steps, never in a row
    assert longest_slow_stretch(scattered) == 1 and not is_contended(scattered, 2.0, 2.0, 2)


def test_flops_of_a_linear_model_step_match_the_hand_count():
    w = get_workload("tiny_blobs")  # nn.Linear(8, 2)
    a = get_algorithm("tiny_sgd")
    hp = a.search_space.validate({})
    batch = a.batch_size(w, hp)
    first, steady = step_flops(w, a, hp, 0, batch)
    # forward x @ W^T: 2*B*8*2; backward: grad wrt W (2*B*8*2); no grad wrt the input
    assert steady == 2 * batch * 8 * 2 * 2
    assert first == steady  # tiny_sgd's init does no counted work
    assert flops_to(0, first, steady) == 0 and flops_to(3, first, steady) == 3 * steady


def test_flops_to_target_is_recorded():
    w = get_workload("tiny_blobs")
    a = get_algorithm("tiny_sgd")
    r = run_trial(w, a, eval_every_steps=5, max_steps=200)
    assert r.status == "reached"
    assert r.flops_to_target == pytest.approx(r.flops_per_step * r.steps_to_target)


def _checksum(model: torch.nn.Module) -> float:
    return math.fsum(float(t.double().sum()) for t in model.state_dict().values()
                     if t.is_floating_point())  # fmt: skip


def _with_prepare_for_eval() -> list[str]:
    names = []
    for name in algorithm_names():
        algorithm = get_algorithm(name)
        own = type(algorithm).prepare_for_eval
        if own not in (Algorithm.prepare_for_eval, Recipe.prepare_for_eval) or _switches(algorithm):
            names.append(name)
    return names


def _switches(algorithm: Algorithm) -> bool:
    """A recipe whose optimizer has ``eval()`` (schedule-free): its ``prepare_for_eval``
    moves the weights."""
    if not isinstance(algorithm, Recipe):
        return False
    hp = {**algorithm.search_space.validate({}), **algorithm.fixed}
    opt = algorithm.optimizer_part.build([{"params": [torch.zeros(1, requires_grad=True)]}], hp)
    return callable(getattr(opt, "eval", None))


@pytest.mark.parametrize("name", _with_prepare_for_eval())
def test_test_metrics_come_from_the_model_as_evaluated(name, monkeypatch):
    """The run ends on its step budget three updates after its last evaluation: the test split
    must be scored on the model that prepare_for_eval returns after the final update, not on
    what an earlier call returned (then averaged further, say)."""
    w = get_workload("tiny_blobs:mlp")
    algorithm = get_algorithm(name)
    prepared: list[float] = []
    tested: list[float] = []
    original_prepare = algorithm.prepare_for_eval
    original_evaluate = type(w).evaluate

    def prepare(state):
        model = original_prepare(state)
        prepared.append(_checksum(model))
        return model

    def evaluate(self, model, split="valid"):
        if split == "test":
            tested.append(_checksum(model))
        return original_evaluate(self, model, split)

    monkeypatch.setattr(algorithm, "prepare_for_eval", prepare)
    monkeypatch.setattr(type(w), "evaluate", evaluate)
    r = run_trial(w, algorithm, eval_every_steps=10, max_steps=23, full_curve=True,
                  count_flops=False)  # fmt: skip
    assert r.status in ("reached", "missed"), r.error
    assert [e.step for e in r.evals] == [10, 20]
    assert len(prepared) == 3 and tested == [prepared[-1]]


def test_reference_clock_divides_each_stretch_by_the_mean_reference():
    ref = ReferenceClock(0.01)
    assert ref.advance(1.0, 0.01) == pytest.approx(100.0)  # 1 s at 10 ms a reference step
    # the machine slows 2x: the next second of CPU is worth half as many reference steps
    # (divided by the mean of the two measurements around it: 15 ms)
    assert ref.advance(2.0, 0.02) == pytest.approx(100.0 + 1.0 / 0.015)
    assert ref.advance(4.0, 0.02) == pytest.approx(100.0 + 1.0 / 0.015 + 2.0 / 0.02)
    assert ref.spread == pytest.approx(2.0)
    assert is_contended([0.01] * 100, 1.0, 1.0, threads=2, reference_spread=ref.spread)


class Machine:
    """A fake machine whose every instruction slows by ``factor`` (a busy SMT sibling)."""

    factor = 1.0


class SlowingWorkload(ScriptedWorkload):
    """Its reference step (a plain forward and backward) costs ``ref_cost`` x the slowdown."""

    ref_cost = 0.02

    def __init__(self, clock, machine, script):
        super().__init__(clock, script)
        self.machine = machine

    def mean_loss(self, model, batch, label_smoothing=0.0):
        self.clock.advance(self.ref_cost * self.machine.factor)
        return super().mean_loss(model, batch, label_smoothing)


class SlowingAlgorithm(ScriptedAlgorithm):
    def __init__(self, clock, machine, slow_from: int | None):
        super().__init__(clock)
        self.machine, self.slow_from = machine, slow_from

    def update(self, state, batch, step):
        if self.slow_from is not None and step >= self.slow_from:
            self.machine.factor = 2.0
        self.clock.advance(self.step_cost * (self.machine.factor - 1.0))
        return super().update(state, batch, step)


@pytest.mark.parametrize("slow_from", [None, 0, 25])
def test_reference_steps_cancel_a_slower_machine(slow_from):
    """Every instruction twice as slow (from the start, or from step 25): CPU time to target
    doubles (or nearly), reference steps to target stay those of the quiet machine."""
    runner._warmed_up.clear()
    clock, machine = FakeClock(), Machine()
    w = SlowingWorkload(clock, machine, [0.0] * 5 + [0.95])
    a = SlowingAlgorithm(clock, machine, slow_from)
    a.init_cost = a.prepare_cost = 0.0
    r = run_trial(w, a, clock=clock, cpu_clock=FakeCPU(clock, 1.0), count_flops=False)
    assert r.status == "reached"
    # quiet: 0.1 s steps over 0.02 s reference steps: 5 reference steps per step. A change of
    # speed between two measurements is split between them (their mean), so the stretch around
    # it is off by up to a third; one stretch of about seven: within 10 %, where the CPU time
    # is off by up to 100 %
    assert r.ref_steps_to_target == pytest.approx(5 * r.steps_to_target, rel=0.1)
    if slow_from == 0:
        assert r.cpu_time_to_target == pytest.approx(0.2 * r.steps_to_target)
