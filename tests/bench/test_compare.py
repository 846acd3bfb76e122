"""compare A B: speedups, paired signed-rank p-values and verdicts, worked out by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from trainlab.bench.compare import compare, log_ratios, signed_rank_p
from trainlab.bench.scoring import TimeRecord
from trainlab.spec import TrainlabError

INF = math.inf
# the vectorised code silences its expected divisions by zero; anything else is a bug
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def recs(table):
    """{(algorithm, workload): [one time per study]} -> records, study i = position i."""
    return [
        TimeRecord(a, w, s, 0, t)
        for (a, w), studies in table.items()
        for s, t in enumerate(studies)
    ]


def test_an_absent_algorithm_is_a_one_line_error():
    records = recs({("adam", "w"): [1.0], ("lion", "w"): [2.0]})
    with pytest.raises(TrainlabError) as info:
        compare(records, "adam", "sgd")
    assert str(info.value) == "algorithm 'sgd' is not in the benchmark; present: adam, lion"
    with pytest.raises(TrainlabError, match="two different"):
        compare(records, "adam", "adam")


def test_twice_as_fast_on_one_workload_is_not_enough_with_five_studies():
    r = compare(recs({("A", "w"): [1, 2, 3, 4, 5], ("B", "w"): [2, 4, 6, 8, 10]}), "A", "B")
    (w,) = r.workloads
    assert (w.time_a, w.time_b, w.speedup, w.pairs) == (3, 6, 2.0, 5)
    assert w.p_value == pytest.approx(1 / 32) and w.p_value_slower == 1.0
    # the same draw for both algorithms: every replicate's speedup is exactly 2
    assert w.interval == pytest.approx((2.0, 2.0)) and r.interval == pytest.approx((2.0, 2.0))
    assert r.speedup == pytest.approx(2.0) and r.p_value == pytest.approx(1 / 32)
    # five pairs cannot reach p < 0.01 (the smallest one-sided p is 1/32): say so
    assert r.verdict == "inconclusive: 5 pairs cannot reach p < 0.01 (needs >= 7)"
    assert r.n_boot == 2000
    assert r.summary().startswith("A vs B: inconclusive: 5 pairs cannot reach p < 0.01")


def test_pooled_over_workloads_it_is_faster_or_slower():
    table = {}
    for k, w in enumerate(("u", "v", "x")):
        table[("A", w)] = [10 + k + s for s in range(5)]
        table[("B", w)] = [20 + 3 * k + s for s in range(5)]
    r = compare(recs(table), "A", "B")
    assert r.pairs == 15 and r.p_value == pytest.approx(2.0**-15) and r.verdict == "faster"
    assert r.summary().startswith("A is faster than B: speedup 1.92x [")
    assert r.summary().endswith("over 3 workloads; one-sided p = 3.1e-05 (faster), 1 (slower), "
                                "15 paired studies")  # fmt: skip
    back = compare(recs(table), "B", "A")
    assert back.p_value_slower == pytest.approx(2.0**-15) and back.verdict == "slower"
    assert back.speedup == pytest.approx(1 / r.speedup)
    # speedups 22/12, 25/13, 28/14: their geometric mean
    assert r.speedup == pytest.approx((22 / 12 * 25 / 13 * 28 / 14) ** (1 / 3))


def test_misses():
    assert log_ratios(np.array([1.0, INF, INF, 0.0, 2.0]), np.array([INF, 1.0, INF, 3.0, 2.0]))[
        :2
    ].tolist() == [INF, -INF]
    d = log_ratios(np.array([INF, 0.0, 2.0]), np.array([INF, 3.0, 2.0]))
    assert math.isnan(d[0]) and d[1:].tolist() == [INF, 0.0]
    # only B missed twice, and B slower once: three positive pairs -> 1/8
    r = compare(recs({("A", "w"): [1, 1, 1], ("B", "w"): [INF, 2, INF]}), "A", "B")
    assert r.workloads[0].speedup == INF and r.p_value == pytest.approx(1 / 8)
    assert r.speedup is None and r.speedup_workloads == 0 and r.interval is None
    # a pair where both missed is dropped; only A missing gives a speedup of 0
    r = compare(recs({("A", "w"): [INF, 1, INF], ("B", "w"): [INF, 2, 3]}), "A", "B")
    assert r.pairs == 2 and r.workloads[0].speedup == 0.0
    assert r.p_value == pytest.approx(3 / 4) and r.p_value_slower == pytest.approx(1 / 2)
    both = compare(recs({("A", "w"): [INF, INF], ("B", "w"): [INF, INF]}), "A", "B")
    assert both.workloads[0].speedup is None and both.pairs == 0 and both.p_value == 1.0


def test_tied_ranks_by_hand():
    # |d| all equal: doubled ranks 4, 4, 4; W+ = 8; P(W+ >= 8) = P(>= 2 of 3 signs +) = 1/2
    assert signed_rank_p(np.array([1.0, 1.0, -1.0])) == (0.5, 0.875, 3)
    # an infinite difference ranks above the finite ones: ranks 1, 2, 3 for 0.5, -1, inf
    p, q, n = signed_rank_p(np.array([0.5, -1.0, INF, 0.0, np.nan]))
    # W+ = 1 + 3 = 4; the 8 sign patterns give sums 0,1,2,3,3,4,5,6: three are >= 4
    assert n == 3 and p == pytest.approx(3 / 8) and q == pytest.approx(6 / 8)
    assert signed_rank_p(np.array([])) == (1.0, 1.0, 0)


def test_the_exact_null_matches_scipy_without_ties():
    d = np.random.default_rng(3).normal(0.3, 1.0, size=12)
    p, q, _ = signed_rank_p(d)
    assert p == pytest.approx(stats.wilcoxon(d, alternative="greater", method="exact").pvalue)
    assert q == pytest.approx(stats.wilcoxon(d, alternative="less", method="exact").pvalue)


def test_unpaired_studies_and_the_json_shape():
    records = [TimeRecord("A", "w", 0, 0, 1.0), TimeRecord("A", "w", 1, 0, 1.0),
               TimeRecord("B", "w", 2, 0, 2.0), TimeRecord("B", "x", 0, 0, 2.0)]  # fmt: skip
    r = compare(records, "A", "B", n_boot=100)
    assert r.pairs == 0 and r.p_value == 1.0 and r.interval is None and r.n_boot == 0
    assert r.notes == ["A has no finished trial on x"]
    js = r.to_json()
    assert set(js) >= {"a", "b", "by", "alpha", "workloads", "speedup", "interval", "pairs",
                       "p_value", "p_value_slower", "verdict", "test", "n_boot"}  # fmt: skip
    assert js["workloads"][0]["workload"] == "w" and js["workloads"][0]["speedup"] == 2.0
    rows = r.rows()
    assert [row["workload"] for row in rows] == ["w", "x", "overall"]
    assert rows[-1]["speedup"] == 2.0


def test_compare_from_a_store(tmp_path):
    from trainlab.bench.compare import compare_from_store
    from trainlab.bench.store import Store

    with Store(tmp_path / "s.db") as store:
        bid, _ = store.get_or_create_benchmark("k", {"options": {}})
        for algorithm, scale in (("A", 1.0), ("B", 3.0)):
            for study in range(3):
                tid = store.create_trial(
                    benchmark_id=bid, study=study, trial_index=0, workload="w", variant="",
                    algorithm=algorithm, hyperparameters={}, seed=study, mode="time",
                )  # fmt: skip
                store.start_trial(tid)
                t = scale * (study + 1)
                store.finish_trial(tid, status="reached", time_to_target=t, steps_to_target=10)
        result, bench = compare_from_store(store, "A", "B", n_boot=20)
        assert bench["id"] == bid and result.speedup == pytest.approx(3.0)
        assert result.p_value == pytest.approx(1 / 8) and result.n_boot == 20
        steps, _ = compare_from_store(store, "A", "B", benchmark_id=bid, by="steps")
        assert steps.by == "steps" and steps.speedup == 1.0 and steps.pairs == 0
        with pytest.raises(TrainlabError, match="'C' is not in the benchmark; present: A, B"):
            compare_from_store(store, "A", "C")
        assert compare_from_store(store, "A", "B", alpha=0.2)[0].verdict == "faster"  # p = 1/8
        # a later benchmark where A is the slow one: each benchmark is compared on its own
        later, _ = store.get_or_create_benchmark("later", {"options": {}})
        for algorithm, t in (("A", 5.0), ("B", 1.0)):
            tid = store.create_trial(
                benchmark_id=later, study=0, trial_index=0, workload="w", variant="",
                algorithm=algorithm, hyperparameters={}, seed=0, mode="time",
            )  # fmt: skip
            store.start_trial(tid)
            store.finish_trial(tid, status="reached", time_to_target=t, steps_to_target=10)
        assert compare_from_store(store, "A", "B")[0].speedup == pytest.approx(0.2)
        assert compare_from_store(store, "A", "B", benchmark_id=bid)[0].pairs == 3


def test_signed_rank_edge_cases_by_hand():
    assert signed_rank_p(np.array([2.0])) == (0.5, 1.0, 1)
    # all infinite: three tied ranks, two positive -> P(W+ >= 2 of 3 signs) = 1/2
    assert signed_rank_p(np.array([INF, INF, -INF])) == (0.5, 0.875, 3)
    # a miss outranks a large finite difference: ranks 1 (-3), 2 (5), 3 (inf); W+ = 5;
    # sums of the 8 sign patterns 0,1,2,3,3,4,5,6: two are >= 5
    assert signed_rank_p(np.array([5.0, -3.0, INF]))[0] == pytest.approx(2 / 8)


def test_verdict_needs_p_strictly_below_alpha():
    from trainlab.bench.compare import verdict

    assert verdict(0.01, 1.0) == "no difference at p < 0.01" == verdict(1.0, 0.01)
    assert verdict(0.03, 1.0, pairs=5).startswith("inconclusive: 5 pairs")
    assert verdict(0.5, 0.5, pairs=7) == "no difference at p < 0.01"
    assert verdict(0.0099, 1.0) == "faster" and verdict(1.0, 0.0099) == "slower"
    assert verdict(0.04, 1.0, alpha=0.05) == "faster"


def test_bootstrap_options_and_spread():
    table = {}
    for k, w in enumerate(("u", "v")):
        table[("A", w)] = [10 + k + s for s in (0, 3, 1, 4, 2)]
        table[("B", w)] = [20 + 3 * k + s for s in (4, 0, 2, 1, 3)]
    r = compare(recs(table), "A", "B", confidence=0.6)
    assert r.confidence == 0.6 and r.interval[0] < r.speedup < r.interval[1]
    # three replicates: the interval depends on the seed, and the default seed is 0
    assert compare(recs(table), "A", "B", n_boot=3).interval == (
        compare(recs(table), "A", "B", n_boot=3, seed=0).interval
    )
    assert compare(recs(table), "A", "B", n_boot=3, seed=1).interval != (
        compare(recs(table), "A", "B", n_boot=3, seed=0).interval
    )
    one = compare(recs({("A", "w"): [1, 2], ("B", "w"): [2, 4]}), "A", "B", n_boot=1)
    assert one.n_boot == 1 and one.interval == pytest.approx((2.0, 2.0))
