"""The tuning cost of a searcher (issue 13): the cost of a study's trials up to the first that
reached the target, by hand on fabricated trial rows; the ``score`` table; and the pure
functions of ``benchmarks/tuning_cost.py`` on fixed numbers."""

import importlib.util
import math
from pathlib import Path

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
import pytest

from trainlab.bench import tuning_cost as tc
from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.store import Store
from trainlab.errors import TrainlabError

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tuning_cost.py"


def trial(id, status, seconds, span, reach=None, study=0, workload="w", **extra):
    """A finished trial row: ``seconds`` of timed training over the wall-clock ``span``."""
    started, finished = span if span is not None else (None, None)
    return {"id": id, "algorithm": "a", "workload": workload, "variant": "", "study": study,
            "status": status, "timed_seconds": seconds, "time_to_target": reach,
            "cpu_seconds": 2 * seconds, "reference_step_seconds": 0.5,
            "ref_steps_to_target": None if reach is None else 4 * reach,
            "steps": extra.pop("steps", 10), "steps_to_target": extra.pop("steps_to_target", None),
            "started": started, "finished": finished, "search": extra.pop("search", None),
            **extra}  # fmt: skip


def only(rows, by="time"):
    (cost,) = tc.study_costs(rows, by)
    return cost


def test_reached_at_the_third_trial_counts_the_first_two_and_the_third_to_its_target():
    rows = [trial(1, "missed", 10.0, (0, 11)), trial(2, "stopped-early", 20.0, (11, 32)),
            trial(3, "reached", 30.0, (32, 63), reach=12.0), trial(4, "missed", 40.0, (63, 104))]
    c = only(rows)
    # 10 + 20 + (the third up to its target) 12; the fourth trained after the find
    assert (c.cost, c.total, c.first, c.found, c.trials) == (42.0, 100.0, 3, True, 4)
    # the same in reference steps: CPU seconds / reference step (2 s / 0.5 = 4 per second), and
    # the reaching trial's own ref steps to the target (4 * 12)
    r = only(rows, "ref-steps")
    assert (r.cost, r.total) == (4 * 42.0, 4 * 100.0)
    # the order is the training order (finished), not the row order
    assert only(rows[::-1]).cost == 42.0


def test_never_reached_is_an_infinite_cost_and_unfinished_trials_are_not_counted():
    rows = [trial(1, "missed", 10.0, (0, 10)), trial(2, "diverged", 5.0, (10, 15)),
            {**trial(3, "pending", 0.0, None), "timed_seconds": None}]
    c = only(rows)
    assert math.isinf(c.cost) and not c.found and c.first is None
    assert (c.total, c.trials, c.unfinished) == (15.0, 2, 1)


def test_parallel_trials_in_flight_count_the_share_of_their_span_before_the_find():
    rows = [
        trial(1, "missed", 10.0, (0, 10)),  # in flight when 2 reaches at t=4: 4/10 of it
        trial(2, "reached", 4.0, (0, 4), reach=4.0),  # the find, at t=4
        trial(3, "missed", 6.0, (4, 10)),  # started at the find: nothing
        trial(4, "reached", 3.0, (1, 9), reach=3.0),  # reaches at t=9: later, in flight (3/8)
    ]
    c = only(rows)
    assert c.first == 2
    assert c.cost == pytest.approx(4.0 + 10.0 * 4 / 10 + 3.0 * 3 / 8)
    # full_curve: a reaching trial trains on; it was found at started + span * reach / cost
    rows = [trial(1, "reached", 8.0, (0, 8), reach=2.0), trial(2, "missed", 6.0, (0, 6))]
    c = only(rows)
    assert c.cost == pytest.approx(2.0 + 6.0 * 2 / 6)


def test_without_timestamps_the_trials_count_in_id_order():
    rows = [trial(2, "reached", 5.0, None, reach=3.0), trial(1, "missed", 7.0, None),
            trial(3, "missed", 9.0, None)]
    assert only(rows).cost == 7.0 + 3.0


def pbt(id, member, generation, parent, status, seconds, steps, span, reach=None):
    search = {"searcher": "pbt", "member": member, "generation": generation,
              "start_step": 10 * generation, "parent": parent}  # fmt: skip
    return trial(id, status, seconds, span, reach=reach, steps=steps, search=search)


def test_pbt_segments_count_their_own_seconds_along_the_lineage():
    # two members, segments of 10 steps; measures cumulative along each lineage
    rows = [
        pbt(1, 0, 0, None, "missed", 10.0, 10, (0, 10)),
        pbt(2, 1, 0, None, "missed", 8.0, 10, (10, 18)),
        pbt(3, 0, 1, 1, "missed", 21.0, 20, (18, 29)),  # own: 21 - 10 = 11
        # member 1 exploits member 0: resumes from segment 3 (21 s); reaches at 21 + 3 = 24 s
        pbt(4, 1, 2, 3, "reached", 26.0, 27, (29, 34), reach=24.0),
        pbt(5, 0, 2, 3, "missed", 30.0, 30, (34, 43)),  # after the find
    ]
    c = only(rows)
    assert c.first == 4
    assert c.cost == pytest.approx(10.0 + 8.0 + 11.0 + 3.0)
    assert c.total == pytest.approx(10.0 + 8.0 + 11.0 + 5.0 + 9.0)
    # a segment that records its own seconds only (steps not past its start) is taken as is
    own = pbt(6, 1, 1, 2, "missed", 4.0, 10, (43, 47))
    assert tc.trial_costs([*rows, own])[-1].cost == 4.0


def test_groups_table_medians_and_bad_measures():
    rows = [trial(1, "reached", 10.0, (0, 10), reach=6.0, study=0),
            trial(2, "missed", 10.0, (0, 10), study=1), trial(3, "reached", 5.0, (10, 15),
                                                                reach=5.0, study=1),
            trial(4, "missed", 7.0, (0, 7), study=2)]  # fmt: skip
    costs = tc.study_costs(rows)
    assert [(c.study, c.cost) for c in costs] == [(0, 6.0), (1, 15.0), (2, math.inf)]
    (row,) = tc.cost_table(costs, "asha")
    # median of (6, 15, inf) is 15; of the whole studies (10, 15, 7) is 10
    assert (row.median_cost, row.median_total, row.found, row.studies) == (15.0, 10.0, 2, 3)
    (row,) = tc.cost_table(costs[1:], "asha")
    assert math.isinf(row.median_cost) and row.to_json()["median_cost"] is None
    with pytest.raises(TrainlabError, match="flops"):
        tc.study_costs(rows, "flops")  # no FLOPs per step recorded
    with pytest.raises(TrainlabError, match="--by"):
        tc.study_costs(rows, "bogus")


def test_searcher_label_and_when_score_shows_the_table():
    assert tc.searcher_of({}) == "halton" and not tc.shown_by_default({"search": "halton"})
    assert tc.searcher_of({"search": "asha"}) == "asha" and tc.shown_by_default({"search": "asha"})
    opts = {"early_stop": "lc-pfn", "early_stop_threshold": 0.05}
    assert tc.searcher_of(opts) == "halton+lc-pfn" and tc.shown_by_default(opts)


def tiny(tmp_path, **kw):
    base = dict(workloads=["tiny_blobs"], algorithms=["tiny_sgd"], n_trials=3, n_studies=2,
                eval_every_steps=1, max_steps=9, targets="class")  # fmt: skip
    return BenchmarkConfig(**{**base, **kw})


def test_score_prints_the_tuning_cost_table(tmp_path, capsys):
    from trainlab.cli import main

    def cli(*args):
        code = main([str(a) for a in args])
        return code, capsys.readouterr().out, None

    halton, asha = tmp_path / "h.db", tmp_path / "a.db"
    run_benchmark(tiny(tmp_path), halton, jobs=1)
    run_benchmark(tiny(tmp_path, search="asha", asha_rungs=2), asha, jobs=1)
    code, out, _ = cli("score", "--store", halton, "--bootstrap", "0")
    assert code == 0 and "Tuning cost" not in out  # plain Halton: only when asked
    code, out, _ = cli("score", "--store", halton, "--bootstrap", "0", "--tuning-cost")
    assert code == 0 and "Tuning cost" in out and "halton" in out
    code, out, _ = cli("score", "--store", asha, "--bootstrap", "0", "--by", "steps")
    assert code == 0 and "Tuning cost" in out and "asha" in out
    with Store(asha, readonly=True) as store:
        (row,) = tc.benchmark_cost_table(store, 1, "steps")
        trials = store.trials(benchmark_id=1)
    assert row.searcher == "asha" and row.studies == 2
    assert row.median_total == sum(t["steps"] for t in trials) / 2  # median of two: the mean
    # the table's cell for the cost to the first reach, in steps
    from trainlab.report.cells import time

    assert time(row.median_cost, "steps") in out
    code, out, _ = cli("score", "--store", asha, "--bootstrap", "0", "--json")
    assert code == 0 and '"tuning_cost"' in out


def test_report_has_the_tuning_cost_section(tmp_path):
    from trainlab.report.html import build_report

    db = tmp_path / "s.db"
    run_benchmark(tiny(tmp_path, early_stop="lc-parametric"), db, jobs=1)
    page = build_report(db, tmp_path / "r", n_boot=0).read_text()
    assert "<h2>Tuning cost</h2>" in page and "halton+lc-parametric" in page


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("tuning_cost_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_saving_ratio_and_its_interval_over_studies(script):
    halton = {("w1", 0): 40.0, ("w2", 0): 10.0, ("w1", 1): 30.0, ("w2", 1): math.inf,
              ("w3", 0): 8.0}  # fmt: skip
    asha = {("w1", 0): 10.0, ("w2", 0): 10.0, ("w1", 1): 10.0, ("w2", 1): 5.0,
            ("w3", 0): math.inf}  # fmt: skip
    logs = script.saving_logs(halton, asha)
    # pairs where both found: w1 s0 (4x), w2 s0 (1x), w1 s1 (3x)
    assert logs == {0: [math.log(4.0), 0.0], 1: [math.log(3.0)]}
    assert script.geomean_saving(logs) == pytest.approx((4 * 1 * 3) ** (1 / 3))
    assert script.geomean_saving({}) is None
    low, high = script.saving_interval(logs, n_boot=4000, seed=1)
    # replicates pool study 0 twice (2x), 0 and 1 (12^(1/3)) or 1 twice (3x): the 2.5 % and
    # 97.5 % order statistics are the extremes, each drawn with probability 1/4
    assert (low, high) == pytest.approx((2.0, 3.0))
    assert script.saving_interval({0: [0.1]}) is None  # one study: nothing to resample


def test_verdicts(script):
    rows = {"halton": {"saving": 1.0, "whole": 1.0, "in_interval": True},
            "asha": {"saving": 2.5, "whole": 1.8, "in_interval": True, "saving_low": 2.1},
            "halton+lc-pfn": {"saving": 1.2, "whole": 2.4, "in_interval": False}}  # fmt: skip
    goal, claim = script.verdicts(rows)
    assert goal == "2x goal: met by asha"
    assert claim.startswith("LC-PFN claim (2-6x less compute, little loss): does not hold")
    rows["asha"]["saving_low"] = 1.5
    assert script.verdicts(rows)[0].startswith("2x goal: met by asha (point estimate; the saving")
    rows["asha"]["in_interval"] = False
    rows["halton+lc-pfn"]["in_interval"] = True
    goal, claim = script.verdicts(rows)
    assert goal.startswith("2x goal: not met") and ": holds here" in claim
    assert [script.versus(v, (0.4, 0.6)) for v in (0.3, 0.5, 0.7)] == ["below", "inside", "above"]
    assert script.versus(0.5, None) is None
