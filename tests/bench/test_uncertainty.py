"""Bootstrap intervals over studies, against distributions worked out by hand."""

import math
import time

import numpy as np
import pytest

from trainlab.bench.scoring import (
    ScoreResult,
    TimeRecord,
    compute_scores,
    read_times_csv,
    write_times_csv,
)
from trainlab.bench.uncertainty import (
    bootstrap_scores,
    medians,
    percentile_interval,
    ratio_array,
    score_arrays,
    study_matrix,
)

INF = math.inf
# the vectorised code silences its expected divisions by zero; anything else is a bug
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def recs(table):
    """{(algorithm, workload): [one time per study]} -> one trial per study."""
    return [
        TimeRecord(a, w, s, 0, t)
        for (a, w), studies in table.items()
        for s, t in enumerate(studies)
    ]


def test_medians_over_a_variable_number_of_studies():
    values = np.array([[5, INF, 7, INF], [5, INF, INF, INF], [5, 7, INF, INF], [INF] * 4])
    counts = np.array([3, 2, 2, 0])  # the last cell has no study at all
    assert medians(values, counts).tolist() == [7.0, INF, 6.0, INF]
    # padding beyond a cell's count never enters its median
    assert medians(np.array([[2.0, 1.0, 0.0]]), np.array([1])).tolist() == [2.0]


def test_ratio_array_conventions():
    t = np.array([3.0, INF, 0.0, 2.0, 5.0])
    best = np.array([1.5, 1.0, 0.0, 0.0, INF])
    assert ratio_array(t, best).tolist() == [2.0, INF, 1.0, INF, INF]


def test_percentile_interval_uses_order_statistics():
    samples = np.arange(100.0)
    # 2.5 % of 99 = 2.475 -> the order statistic below (2); 97.5 % = 96.525 -> above (97)
    assert percentile_interval(samples).tolist() == [2.0, 97.0]
    assert percentile_interval(samples, 0.5).tolist() == [24.0, 75.0]
    misses = np.array([1.0] * 50 + [INF] * 50)
    assert percentile_interval(misses).tolist() == [1.0, INF]  # not nan


def test_one_study_has_no_interval():
    r = compute_scores(recs({("A", "w"): [1.0], ("B", "w"): [2.0]}))
    assert r.n_boot == 0
    assert r.score_intervals == {"A": None, "B": None}
    assert r.ratio_intervals == {"A": {"w": None}, "B": {"w": None}}
    assert r.time_intervals["B"] == {"w": None} and r.speedup_intervals == {"A": None, "B": None}
    js = r.to_json()
    assert js["score_intervals"] == {"A": None, "B": None} and js["n_boot"] == 0


def test_constant_studies_give_degenerate_intervals():
    r = compute_scores(recs({("A", "w"): [10, 10, 10], ("B", "w"): [20, 20, 20]}), n_boot=50)
    assert r.n_boot == 50
    assert r.time_intervals["B"]["w"] == (20.0, 20.0)
    assert r.ratio_intervals == {"A": {"w": (1.0, 1.0)}, "B": {"w": (2.0, 2.0)}}
    assert r.score_intervals["B"] == pytest.approx((2 / 3, 2 / 3))
    assert r.speedup_intervals["B"] == pytest.approx((0.5, 0.5))  # reference: A


def test_two_studies_by_hand():
    # A's studies 1 and 3: a replicate's median is 1 (p 1/4), 2 (p 1/2) or 3 (p 1/4);
    # B always 2. So A's ratio is 1, 1 or 1.5, B's 2, 1 or 1 -> scores 1 / (4-1.5)/3.
    r = compute_scores(recs({("A", "w"): [1.0, 3.0], ("B", "w"): [2.0, 2.0]}), seed=3)
    assert r.times["A"]["w"] == 2.0 and r.time_intervals["A"]["w"] == (1.0, 3.0)
    assert r.ratio_intervals["A"]["w"] == (1.0, 1.5)
    assert r.ratio_intervals["B"]["w"] == (1.0, 2.0)
    assert r.score_intervals["A"] == pytest.approx((2.5 / 3, 1.0))
    assert r.score_intervals["B"] == pytest.approx((2 / 3, 1.0))
    # speedup of B over A = t_A / t_B: 0.5, 1 or 1.5
    assert r.speedup_intervals["B"] == pytest.approx((0.5, 1.5))


def test_a_miss_is_a_resampled_value():
    # A's studies 5 and a miss: the median is 5 (p 1/4) or inf (p 3/4)
    r = compute_scores(recs({("A", "w"): [5.0, INF], ("B", "w"): [8.0, 8.0]}))
    assert r.times["A"]["w"] == INF and r.time_intervals["A"]["w"] == (5.0, INF)
    assert r.ratio_intervals["A"]["w"] == (1.0, INF)
    assert r.score_intervals["A"] == (0.0, 1.0)
    assert r.speedups["A"]["geomean"] is None and r.speedup_intervals["A"] is None


def test_seeded_and_reproducible():
    table = {("A", "w"): [1.0, 2.0, 4.0, 3.0], ("B", "w"): [2.0, 1.5, 3.0, 2.5]}
    a = compute_scores(recs(table), seed=7, n_boot=300)
    b = compute_scores(recs(table), seed=7, n_boot=300)
    assert a.to_json() == b.to_json()


TABLES = [
    {("A", "w1"): [10, 12, INF], ("A", "w2"): [20, 21, 19], ("B", "w1"): [20, 15, 25],
     ("B", "w2"): [10, INF, INF], ("C", "w1"): [INF, INF, INF], ("C", "w2"): [30, 35, 25]},
    {("A", "w"): [10, 12], ("A", "w:v"): [INF, 5], ("B", "w"): [12, 11], ("B", "w:v"): [4, 4],
     ("C", "w"): [INF, 30], ("C", "w:v"): [1, 1], ("A", "x"): [3, 3], ("B", "x"): [30, 30],
     ("C", "x"): [9, 12]},
    {("nadamw", "a"): [2, 4, 6, 8], ("X", "a"): [1, 1, 2, 2], ("nadamw", "b"): [0, 0, 1, 1],
     ("X", "b"): [0, 0, 0, 0]},
    {("A", "w"): [1, 1], ("B", "w"): [INF, INF]},  # B's speedup is undefined
    {("A", "u"): [1, 2], ("B", "u"): [2, 4], ("A", "v"): [3, 3], ("B", "v"): [1, 1]},
]  # fmt: skip


@pytest.mark.parametrize("table", TABLES)
def test_vectorised_rules_agree_with_the_point_estimates(table):
    """The replicate computation applied to the observed medians gives compute_scores' numbers
    (held-out variants, misses, zero times and ties included)."""
    r = compute_scores(recs(table), r_max=3.0, n_boot=0)
    workloads = sorted(r.raw_times[r.algorithms[0]])
    values, counts = study_matrix(r.study_times, r.algorithms, workloads)
    raw = medians(values, counts)[None]
    out = score_arrays(
        raw, workloads, r.workloads, r.variants, 3.0, r.algorithms.index(r.reference)
    )
    for i, a in enumerate(r.algorithms):
        assert out["times"][0, i].tolist() == [r.times[a][w] for w in r.workloads]
        assert out["ratios"][0, i].tolist() == pytest.approx([r.ratios[a][w] for w in r.workloads])
        assert out["scores"][0, i] == pytest.approx(r.scores[a])
        geomean = r.speedups[a]["geomean"]
        if geomean is None:
            assert math.isnan(out["speedups"][0, i])
        else:
            assert out["speedups"][0, i] == pytest.approx(geomean)


def test_fast_enough_for_a_real_benchmark():
    rng = np.random.default_rng(0)
    records = [
        TimeRecord(f"a{a}", f"w{w}", s, k, float(rng.lognormal(3, 0.3)) if rng.random() > 0.2
                   else INF)
        for a in range(10) for w in range(5) for s in range(5) for k in range(3)
    ]  # fmt: skip
    start = time.perf_counter()
    r = compute_scores(records, n_boot=2000)
    assert time.perf_counter() - start < 1.0
    low, high = r.score_intervals["a0"]
    assert low <= r.scores["a0"] <= high


def test_contended_trials_are_counted_and_survive_the_csv(tmp_path):
    records = [
        TimeRecord("A", "w", 0, 0, 1.0, True), TimeRecord("A", "w", 0, 1, 2.0, True),
        TimeRecord("A", "w", 1, 0, 3.0), TimeRecord("B", "w", 0, 0, INF, True),
        TimeRecord("B", "w:v", 0, 0, 2.0),
    ]  # fmt: skip
    r = compute_scores(records)
    assert r.contended == {"A": {"w": 2, "w:v": 0}, "B": {"w": 1, "w:v": 0}}
    path = tmp_path / "t.csv"
    write_times_csv(records, path)
    assert path.read_text().splitlines()[:2] == [
        "algorithm,workload,study,trial,time,contended",
        "A,w,0,0,1.0,1",
    ]
    assert read_times_csv(path) == records
    plain = tmp_path / "plain.csv"
    write_times_csv(records[2:3], plain)
    assert plain.read_text().splitlines()[0] == "algorithm,workload,study,trial,time"


def test_options_reach_the_bootstrap():
    table = {
        ("A", "w"): [1.0, 2.0, 4.0, 3.0, 9.0], ("B", "w"): [2.0, 1.5, 3.0, 2.5, 1.0],
        ("A", "x"): [5.0, 6.0, INF, 4.0, 5.5], ("B", "x"): [7.0, 4.5, 6.0, 5.0, 8.0],
    }  # fmt: skip
    r = compute_scores(recs(table), n_boot=40, seed=5, confidence=0.6)
    direct = bootstrap_scores(r.study_times, ["A", "B"], ["w", "x"], ["w", "x"], {}, 4.0, "A",
                              n_boot=40, seed=5, confidence=0.6)  # fmt: skip
    assert (r.n_boot, r.confidence) == (40, 0.6)
    assert r.score_intervals == direct["scores"] and r.ratio_intervals == direct["ratios"]
    assert r.time_intervals == direct["times"] and r.speedup_intervals == direct["speedups"]
    default = bootstrap_scores(r.study_times, ["A", "B"], ["w", "x"], ["w", "x"], {}, 4.0, "A")
    assert compute_scores(recs(table)).to_json()["score_intervals"] == default["scores"]
    assert default["scores"] != direct["scores"]
    # a narrower confidence level: A's studies 1 and 3 (medians 1, 2, 2, 3 equally likely)
    # give [2, 2] at 40 %
    two = recs({("A", "w"): [1.0, 3.0], ("B", "w"): [2.0, 2.0]})
    assert compute_scores(two, confidence=0.4).time_intervals["A"]["w"] == (2.0, 2.0)


def test_a_score_result_s_defaults():
    r = ScoreResult("time", 4.0, [], [], {}, {}, {}, {}, {}, {}, {}, {}, None, {})
    assert r.warnings == [] and r.contended == {} and r.n_boot == 0 and r.confidence == 0.95
    assert r.score_intervals == {} and r.speedup_intervals == {}
    assert r.time_intervals == {} and r.ratio_intervals == {}


def test_a_speedup_interval_counts_only_replicates_where_it_is_defined():
    # the reference A misses in about 7/27 of the replicates (two or three draws of its miss):
    # B's speedup is then undefined and left out, so every counted replicate gives 1/2
    r = compute_scores(recs({("A", "w"): [1.0, 1.0, INF], ("B", "w"): [2.0, 2.0, 2.0]}))
    assert r.speedups["B"]["geomean"] == 0.5 and r.speedup_intervals["B"] == (0.5, 0.5)
    assert r.ratio_intervals["A"]["w"] == (1.0, INF)


@pytest.mark.parametrize("table", TABLES)
def test_point_estimates_lie_inside_their_intervals(table):
    r = compute_scores(recs(table), r_max=3.0, n_boot=300, seed=1)
    for a in r.algorithms:
        low, high = r.score_intervals[a]
        assert low <= r.scores[a] <= high
        for w in r.workloads:
            low, high = r.ratio_intervals[a][w]
            assert low <= r.ratios[a][w] <= high or r.ratios[a][w] == high == INF


def test_a_single_study_cell_keeps_its_time_and_one_replicate_is_enough():
    # A has one study on w: every replicate draws it, never the padding next to it
    r = compute_scores(recs({("A", "w"): [1.0], ("B", "w"): [2.0, 4.0, 8.0]}))
    assert r.time_intervals["A"]["w"] == (1.0, 1.0)
    assert r.time_intervals["B"]["w"] == (2.0, 8.0)
    one = compute_scores(recs({("A", "w"): [1.0, 1.0], ("B", "w"): [3.0, 3.0]}), n_boot=1)
    assert one.n_boot == 1 and one.ratio_intervals["B"]["w"] == (3.0, 3.0)
