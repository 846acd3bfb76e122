"""The committed ``targets.json``: one entry per default workload, each consistent with the
procedure that wrote it (``trainlab.bench.targets``), and the workloads read it.

The slow test reruns the target-setting result of the cheapest workload and checks that it
reaches the committed target: the file records a run, not a number typed in by hand.
"""

import math
import statistics

import pytest
import torch

from trainlab.bench.runner import run_trial
from trainlab.bench.targets import BASELINES, RUNTIME_MARGIN
from trainlab.cli import DEMO_WORKLOADS
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import Target
from trainlab.workloads.targets import TARGETS_FILE, load_targets, resolve_spec


@pytest.fixture
def entries():
    assert TARGETS_FILE.exists(), "targets.json is not committed"
    return load_targets(TARGETS_FILE)


def test_every_default_workload_has_a_target(entries):
    assert set(DEMO_WORKLOADS) <= set(entries)
    for name in DEMO_WORKLOADS:
        e = entries[name]
        assert e["command"].startswith("trainlab targets") and e["machine"] and e["date"]
        spec = resolve_spec(get_workload(name), "tuned")
        assert spec.target == Target(e["metric"], e["value"], e["higher_is_better"])
        assert (spec.max_runtime, spec.step_hint, spec.source) == (
            e["max_runtime"], e["step_hint"], "tuned")  # fmt: skip


@pytest.mark.parametrize("name", DEMO_WORKLOADS)
def test_entry_follows_the_procedure(entries, name):
    e = entries[name]
    target = Target(e["metric"], e["value"], e["higher_is_better"])
    reruns = e["reruns"]
    assert len(reruns) == e["procedure"]["seeds"] >= 3
    assert e["value"] == statistics.median(r["best_metric"] for r in reruns)
    reached = [r for r in reruns if r["time_to_target"] is not None]
    assert len(reached) >= math.ceil(len(reruns) / 2)
    assert all(target.is_met({e["metric"]: r["best_metric"]}) for r in reached)
    t_ref = max(r["time_to_target"] for r in reached)
    assert e["max_runtime"] == math.ceil(RUNTIME_MARGIN * t_ref)
    best = e["best"]
    assert best["algorithm"] in BASELINES
    assert best["hyperparameters"]["batch_size"] == "auto"
    assert e["step_hint"] == round(best["hyperparameters"]["horizon"] * e["previous"]["step_hint"])


@pytest.mark.slow
def test_digits_target_setting_run_reaches_the_committed_target(entries):
    e = entries["digits_cnn"]
    best_rerun = min(
        (r for r in e["reruns"] if r["steps_to_target"] is not None),
        key=lambda r: r["best_metric"] * (-1 if e["higher_is_better"] else 1),
    )
    w = get_workload("digits_cnn")
    # with the committed step_hint, horizon 1 is the schedule the best point trained with
    hp = {**e["best"]["hyperparameters"], "horizon": 1.0}
    every = e["procedure"]["eval_every_steps"]
    budget = e["procedure"]["max_steps"] or 3 * e["previous"]["step_hint"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the benchmark workers ran it
    try:
        r = run_trial(
            w, get_algorithm(e["best"]["algorithm"]), hp, best_rerun["seed"],
            eval_every_steps=w.eval_every_steps if every == "auto" else every,
            max_steps=budget,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert r.status == "reached", (r.best_metric, w.target)
    assert r.steps_to_target <= budget
