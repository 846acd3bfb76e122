"""Target setting on a tiny workload, and workloads reading their targets from a targets file."""

import json
import math
import statistics

import benchfakes  # noqa: F401  (registers tiny_blobs)
import pytest

from trainlab.bench.budgets import trial_spec
from trainlab.bench.store import Store
from trainlab.bench.targets import RUNTIME_MARGIN, set_target
from trainlab.cli import main
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import EVALS_PER_RUN, TrainlabError
from trainlab.workloads.targets import resolve_spec, write_entries


def test_specs_resolve_from_the_chosen_targets_file(tmp_path):
    path = tmp_path / "targets.json"
    base = get_workload("tiny_blobs")
    write_entries({"tiny_blobs": {"metric": "accuracy", "value": 0.8, "higher_is_better": True,
                                  "max_runtime": 3.0, "step_hint": 25}}, path)  # fmt: skip
    spec = resolve_spec(base, str(path))
    assert (spec.target.value, spec.max_runtime, spec.step_hint) == (0.8, 3.0, 25)
    assert spec.source == str(path)
    assert spec.eval_period == min(base.eval_period, 3.0 / (1.2 * EVALS_PER_RUN))
    # the workload itself is never changed: it keeps its class values
    assert (base.target.value, base.max_runtime, base.step_hint) == (0.9, 2.0, 20)
    # a variant without an entry of its own does not inherit its base's: class values
    variant = get_workload("tiny_blobs:mlp")
    assert resolve_spec(variant, str(path)).source == "class"
    write_entries({"tiny_blobs:mlp": {"value": 0.85}}, path)  # merged, the base entry stays
    assert resolve_spec(variant, str(path)).target.value == 0.85
    assert resolve_spec(base, str(path)).target.value == 0.8
    assert sorted(json.loads(path.read_text())["workloads"]) == ["tiny_blobs", "tiny_blobs:mlp"]
    assert resolve_spec(base, "class").target.value == 0.9
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TrainlabError, match="cannot read targets file"):
        resolve_spec(base, str(tmp_path / "bad.json"))
    with pytest.raises(TrainlabError, match="no such file"):
        resolve_spec(base, str(tmp_path / "missing.json"))


def test_the_budget_sets_the_schedule_and_the_cadence():
    w = get_workload("tiny_blobs")  # class: max_runtime 2 s, step_hint 20
    spec = trial_spec(w, "class", budget_scale=0.5)
    assert spec.max_runtime == 1.0 and spec.step_hint == 20  # time mode: the schedule stays
    assert trial_spec(w, "class", eval_every_steps="auto", budget_scale=0.5).step_hint == 10
    assert spec.max_runtime / spec.eval_period >= EVALS_PER_RUN
    selftuned = trial_spec(w, "class", budget_scale=0.5, multiplier=1.5)
    assert selftuned.max_runtime == 1.5 and selftuned.eval_period == spec.eval_period
    steps = trial_spec(w, "class", eval_every_steps="auto", max_steps=300)
    assert (steps.max_steps, steps.step_hint) == (300, 300)  # horizon 1 decays by step 300
    assert steps.max_steps // steps.eval_every_steps >= EVALS_PER_RUN
    with pytest.raises(TrainlabError, match="step mode"):
        trial_spec(w, "class", max_steps=300)


def test_set_target_procedure(tmp_path, monkeypatch):
    entry = set_target(
        "tiny_blobs", n_trials=2, n_seeds=3, store_path=tmp_path / "s.db", jobs=1, threads=1,
        eval_every_steps=5, max_steps=30, log=lambda s: None,
    )  # fmt: skip
    reruns = entry["reruns"]
    assert len(reruns) == 3 and len({r["seed"] for r in reruns}) == 3
    assert entry["value"] == statistics.median(r["best_metric"] for r in reruns)
    reached = [r for r in reruns if r["time_to_target"] is not None]
    assert len(reached) >= 2  # the median of three: at least two reach it
    assert all(r["best_metric"] >= entry["value"] for r in reached)  # accuracy: higher is better
    t_ref = max(r["time_to_target"] for r in reached)
    assert entry["max_runtime"] == math.ceil(RUNTIME_MARGIN * t_ref)
    best = entry["best"]
    assert best["algorithm"] in ("adamw", "nadamw", "nesterov", "heavyball")
    assert entry["step_hint"] == round(best["hyperparameters"]["horizon"] * 20)
    assert entry["previous"] == {"value": 0.9, "max_runtime": 2.0, "step_hint": 20}
    assert entry["machine"] and entry["date"]
    # tuning: each baseline's defaults plus 2 Halton points, all at the workload's batch size
    with Store(tmp_path / "s.db") as store:
        proc = entry["procedure"]
        defaults = store.trials(benchmark_id=proc["defaults_benchmark"])
        tuned = store.trials(benchmark_id=proc["tuning_benchmark"])
    assert len(defaults) == 4 and len(tuned) == 8
    for t in defaults:
        assert t["hyperparameters"] == get_algorithm(t["algorithm"]).search_space.validate({})
    assert {t["hyperparameters"]["batch_size"] for t in defaults + tuned} == {"auto"}
    for name in ("adamw", "nadamw", "nesterov", "heavyball"):
        points = [t["hyperparameters"] for t in tuned if t["algorithm"] == name]
        assert len(points) == 2 and points[0] != points[1]


def test_targets_cli_writes_the_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "targets.json"
    args = ["targets", "-w", "tiny_blobs", "--trials", "1", "--seeds", "1", "--jobs", "1",
            "--threads", "1", "--eval-every-steps", "5", "--max-steps", "20",
            "--store", str(tmp_path / "s.db"), "--output", str(out), "--json"]  # fmt: skip
    assert main(args) == 0
    doc = json.loads(out.read_text())
    assert doc["command"].startswith("trainlab targets -w tiny_blobs")
    assert doc["machine"] and doc["date"]
    entry = doc["workloads"]["tiny_blobs"]
    assert entry["procedure"]["trials_per_baseline"] == 1 and entry["procedure"]["seeds"] == 1
    assert json.loads(capsys.readouterr().out)["workloads"]["tiny_blobs"]["value"] == entry["value"]
    assert main(["targets", "-w", "nope", "--store", str(tmp_path / "s.db")]) == 2
    assert "unknown workload" in capsys.readouterr().err
