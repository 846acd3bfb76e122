"""ASHA (Li et al., 2020) as a searcher: the promotion rule by hand, and whole benchmarks whose
rungs, budgets and promotions are exactly successive halving's."""

import json
import threading

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
import pytest

from trainlab.bench import asha
from trainlab.bench.benchmark import BenchmarkConfig, make_plan, prepare, run_benchmark
from trainlab.bench.store import Store
from trainlab.errors import TrainlabError


def row(id, rung, status, metric, study=0, parent=None, higher=1):
    search = {"searcher": "asha", "rung": rung, "rungs": 3, "eta": 3, "full_budget": 27}
    if parent is not None:
        search["parent"] = parent
    return {"id": id, "study": study, "trial_index": id, "algorithm": "a", "workload": "w",
            "variant": "", "mode": "steps", "max_steps": 3 * 3**rung, "max_runtime": None,
            "status": status, "best_metric": metric, "higher_is_better": higher,
            "hyperparameters": {}, "seed": id, "search": search}  # fmt: skip


def test_budgets_and_default_rungs():
    assert [asha.rung_budget(27, k, 3, 3, True) for k in range(3)] == [3, 9, 27]
    assert asha.rung_budget(10, 0, 3, 3, True) == 2  # ceil(10 / 9)
    assert asha.rung_budget(90.0, 1, 3, 3, False) == 30.0  # time mode: seconds
    assert asha.default_rungs(3) == 3  # 50 evaluations: the bottom rung (1/9) keeps >= 5
    assert asha.default_rungs(2) == 4


def test_top_third_of_what_finished_so_far_is_promoted_best_first():
    rows = [row(1, 0, "missed", 0.5), row(2, 0, "missed", 0.7)]
    assert asha.promotion(rows) is None  # 2 // 3 == 0: nothing yet, nobody waits either
    rows.append(row(3, 0, "running", None))
    assert asha.promotion(rows) is None  # unfinished trials are not ranked
    rows[2] = row(3, 0, "missed", 0.6)
    child = asha.promotion(rows)
    assert child["search"] == {"searcher": "asha", "rung": 1, "rungs": 3, "eta": 3,
                               "full_budget": 27, "parent": 2}  # fmt: skip
    assert child["max_steps"] == 9 and child["seed"] == 2 and "status" not in child
    rows.append({**row(4, 1, "pending", None, parent=2)})
    assert asha.promotion(rows) is None  # config 2 is promoted once


def test_lower_is_better_and_reached_or_diverged_are_not_promoted():
    rows = [row(1, 0, "reached", 0.1, higher=0), row(2, 0, "missed", 0.3, higher=0),
            row(3, 0, "diverged", None, higher=0), row(4, 0, "missed", 0.2, higher=0),
            row(5, 0, "missed", 0.9, higher=0), row(6, 0, "missed", 0.8, higher=0)]
    # top 2 of 6: trial 1 (reached: its time is known) and trial 4
    assert asha.promotion(rows)["search"]["parent"] == 4


def test_higher_rungs_first():
    rows = [row(k, 0, "missed", k / 10) for k in range(1, 10)]
    rows += [row(10 + k, 1, "missed", k, parent=k) for k in (9, 8, 7)]
    child = asha.promotion(rows)
    assert child["search"]["rung"] == 2 and child["search"]["parent"] == 19


def config(tmp_path, **kw):
    targets = tmp_path / "targets.json"  # unreachable: every trial runs its whole rung
    targets.write_text(json.dumps({"workloads": {"tiny_blobs": {
        "metric": "loss", "value": 0.0, "higher_is_better": False, "max_runtime": 2.0,
        "step_hint": 27}}}))  # fmt: skip
    base = dict(workloads=["tiny_blobs"], algorithms=["tiny_sgd"], n_trials=9, n_studies=1,
                eval_every_steps=1, max_steps=27, targets=str(targets), search="asha",
                asha_rungs=3)  # fmt: skip
    return BenchmarkConfig(**{**base, **kw})


def test_a_whole_asha_benchmark_is_successive_halving(tmp_path):
    db = tmp_path / "s.db"
    run = run_benchmark(config(tmp_path), db, jobs=1)
    with Store(db, readonly=True) as store:
        trials = store.trials(benchmark_id=run.benchmark_id)
    on = {k: [t for t in trials if t["search"]["rung"] == k] for k in range(3)}
    assert len(on[0]) == 9 and all(t["status"] == "missed" for t in trials)
    children = [t["search"]["parent"] for t in trials if t["search"]["rung"]]
    assert len(children) == len(set(children))  # a configuration is promoted once per rung
    for k in (0, 1):
        # asynchronous: whatever was promoted on partial results stays promoted, and once the
        # rung has finished, its final top 1/eta has been promoted too
        final_top = sorted(on[k], key=lambda t: t["best_metric"])[: len(on[k]) // 3]
        assert {t["id"] for t in final_top} <= set(children)
        assert len(on[k + 1]) >= len(on[k]) // 3
    assert {t["search"]["rung"]: t["steps"] for t in trials} == {0: 3, 1: 9, 2: 27}
    by_id = {t["id"]: t for t in trials}
    for t in trials:
        if t["search"]["rung"]:
            parent = by_id[t["search"]["parent"]]
            assert parent["search"]["rung"] == t["search"]["rung"] - 1
            assert (parent["hyperparameters"], parent["seed"]) == (t["hyperparameters"],
                                                                   t["seed"])  # fmt: skip
    # the final rung's configuration is the best of rung 1, which holds the best of rung 0
    # at the time each was promoted (asynchronous); rerunning finds everything done
    assert run_benchmark(config(tmp_path), db, jobs=1).ran == 0


def test_step_mode_rungs_are_prefixes_of_the_full_run(tmp_path):
    db = tmp_path / "s.db"
    run_benchmark(config(tmp_path), db, jobs=1)
    with Store(db, readonly=True) as store:
        trials = store.trials()
        top = next(t for t in trials if t["search"]["rung"] == 2)
        parent = store.trial(top["search"]["parent"])
        longer = {r.step: r.metrics for r in store.evaluations(top["id"])}
        shorter = {r.step: r.metrics for r in store.evaluations(parent["id"])}
    assert all(longer[s] == m for s, m in shorter.items())


def test_two_processes_promote_each_configuration_once(tmp_path, location):
    db = location
    with Store(db) as store:
        bid, _ = prepare(store, make_plan(config(tmp_path)))
        for t in store.trials(benchmark_id=bid):  # finish rung 0 by hand: 9 configs
            assert store.claim(t["id"])
            store.start_trial(t["id"])
            store.finish_trial(t["id"], status="missed", best_metric=float(t["id"]), steps=3)
    got = []

    def promote():
        with Store(db) as mine:
            while (trial_id := mine.claim_or_add(bid, asha.promotion)) is not None:
                got.append(trial_id)
                mine.start_trial(trial_id)  # "trains" it: a fixed metric
                mine.finish_trial(trial_id, status="missed", best_metric=0.5, steps=9)

    threads = [threading.Thread(target=promote) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Store(db, readonly=True) as store:
        added = [t for t in store.trials(benchmark_id=bid) if t["search"]["rung"] == 1]
        top = [t for t in store.trials(benchmark_id=bid) if t["search"]["rung"] == 2]
    assert len(got) == len(set(got)) == len(added) + len(top) == 3 + 1
    # the top third (loss: lower is better)
    assert sorted(t["search"]["parent"] for t in added) == [1, 2, 3]


@pytest.mark.parametrize("kw, words", [
    ({"eta": 1}, "--eta must be >= 2"),
    ({"search": "grid"}, "unknown --search 'grid'"),
    ({"ruleset": "self", "n_trials": 1}, "nothing to search"),
])  # fmt: skip
def test_bad_settings_are_refused_before_anything_runs(tmp_path, kw, words):
    with pytest.raises(TrainlabError, match=words):
        config(tmp_path, **kw)
