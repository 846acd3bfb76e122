"""Scoring against small matrices computed by hand, and the --times CSV round trip."""

import json
import math

import pytest

from trainlab.bench.scoring import (
    TimeRecord,
    compute_scores,
    integrated_score,
    median_over_studies,
    profile_points,
    read_times_csv,
    records_from_trials,
    rho,
    write_times_csv,
)
from trainlab.bench.store import Store
from trainlab.cli import main
from trainlab.spec import TrainlabError

INF = math.inf


def recs(table):
    """{(algorithm, workload): [per-study lists of trial times]} -> records."""
    out = []
    for (a, w), studies in table.items():
        for s, times in enumerate(studies):
            for k, t in enumerate(times):
                out.append(TimeRecord(a, w, s, k, t))
    return out


def one(table):
    """One study of one trial per cell."""
    return recs({key: [[t]] for key, t in table.items()})


def test_two_algorithms_two_workloads_by_hand():
    r = compute_scores(one({("A", "w1"): 10, ("A", "w2"): 20, ("B", "w1"): 20, ("B", "w2"): 10}))
    assert r.ratios == {"A": {"w1": 1.0, "w2": 2.0}, "B": {"w1": 2.0, "w2": 1.0}}
    # rho = 1/2 on [1, 2), 1 on [2, 4]: integral = 0.5 + 2 = 2.5, / 3
    assert r.scores["A"] == pytest.approx(2.5 / 3) and r.scores["B"] == pytest.approx(2.5 / 3)
    assert r.profiles["A"] == [(1.0, 0.5), (2.0, 1.0), (4.0, 1.0)]


def test_infinity_and_a_workload_nobody_reached():
    r = compute_scores(
        one({("A", "w1"): 10, ("A", "w2"): INF, ("A", "w3"): INF,
             ("B", "w1"): 30, ("B", "w2"): 5, ("B", "w3"): INF})
    )  # fmt: skip
    assert r.ratios["A"] == {"w1": 1.0, "w2": INF, "w3": INF}
    assert r.ratios["B"] == {"w1": 3.0, "w2": 1.0, "w3": INF}
    # A: only w1 at ratio 1 -> (4-1)/(3*3); B: ratio 1 and 3 -> (3 + 1)/(3*3)
    assert r.scores["A"] == pytest.approx(3 / 9)
    assert r.scores["B"] == pytest.approx(4 / 9)
    assert r.ranking() == ["B", "A"]


def test_ties_share_ratio_one():
    r = compute_scores(one({("A", "w"): 7.5, ("B", "w"): 7.5, ("C", "w"): 15}))
    assert r.ratios["A"]["w"] == r.ratios["B"]["w"] == 1.0 and r.ratios["C"]["w"] == 2.0
    assert r.scores["A"] == r.scores["B"] == 1.0 and r.scores["C"] == pytest.approx(2 / 3)


def test_r_max_cut_off():
    # ratios 3.5 (inside), 4 (on the edge: counted by rho(4) but zero area), 5 (outside)
    r = compute_scores(
        one({("F", "a"): 1, ("F", "b"): 1, ("F", "c"): 1,
             ("S", "a"): 3.5, ("S", "b"): 4, ("S", "c"): 5})
    )  # fmt: skip
    assert r.scores["S"] == pytest.approx((0.5 + 0 + 0) / (3 * 3))
    assert rho(r.ratios["S"].values(), 4.0) == pytest.approx(2 / 3)
    assert rho(r.ratios["S"].values(), 3.9) == pytest.approx(1 / 3)
    assert r.profiles["S"] == [(1.0, 0.0), (3.5, 1 / 3), (4.0, 2 / 3)]
    # a different r_max moves the cut-off
    assert integrated_score([1.0, 5.0], r_max=6.0) == pytest.approx((5 + 1) / (2 * 5))


def test_integral_is_exact_for_a_step_function():
    ratios = [1.0, 1.25, 2.0, 3.0, INF]
    # numeric integration of rho on a fine grid agrees with the exact step integral
    n = 300_000
    grid = [1 + 3 * (i + 0.5) / n for i in range(n)]
    numeric = sum(rho(ratios, t) for t in grid) * (3 / n) / 3
    assert integrated_score(ratios) == pytest.approx(numeric, abs=1e-4)
    assert integrated_score(ratios) == pytest.approx((3 + 2.75 + 2 + 1) / (5 * 3))


def test_median_over_studies_of_fastest_trial():
    assert median_over_studies([5, INF, 7]) == 7
    assert median_over_studies([5, INF]) == INF
    assert median_over_studies([5, 7]) == 6
    assert median_over_studies([INF, INF, 1]) == INF
    r = compute_scores(
        recs({
            ("A", "w"): [[9, 4, INF], [INF, INF, INF], [6, 8, 3]],  # study minima 4, inf, 3
            ("B", "w"): [[10], [12], [11]],
        })
    )  # fmt: skip
    assert r.study_times["A"]["w"] == {0: 4, 1: INF, 2: 3}
    assert r.times["A"]["w"] == 4 and r.times["B"]["w"] == 11
    assert r.ratios["B"]["w"] == pytest.approx(11 / 4)


def test_failed_variant_makes_the_base_workload_infinite():
    r = compute_scores(
        one({
            ("A", "w1"): 10, ("A", "w1:v"): INF, ("A", "w2"): 10,
            ("B", "w1"): 20, ("B", "w1:v"): 15, ("B", "w2"): 20,
        })
    )  # fmt: skip
    assert r.workloads == ["w1", "w2"]  # variants are not scored themselves
    assert r.times["A"]["w1"] == INF and r.raw_times["A"]["w1"] == 10
    assert r.variant_failures == {"A": {"w1": ["w1:v"]}}
    assert r.ratios["A"] == {"w1": INF, "w2": 1.0}
    assert r.ratios["B"] == {"w1": 1.0, "w2": 2.0}
    assert r.scores["A"] == pytest.approx(3 / 6) and r.scores["B"] == pytest.approx((3 + 2) / 6)


def test_variant_slower_than_r_max_fails_and_only_base_qualified_algorithms_set_the_pace():
    r = compute_scores(
        one({
            ("A", "w"): 10, ("A", "w:v"): 50,   # 5x the fastest qualified variant time: fails
            ("B", "w"): 12, ("B", "w:v"): 10,
            ("C", "w"): INF, ("C", "w:v"): 1,   # fastest on the variant, but not qualified
        })
    )  # fmt: skip
    assert r.times["A"]["w"] == INF and r.times["B"]["w"] == 12
    assert r.variant_failures["A"] == {"w": ["w:v"]}
    assert "B" not in r.variant_failures


def test_speedup_is_a_geometric_mean_over_workloads_both_reached():
    r = compute_scores(
        one({
            ("nadamw", "a"): 20, ("nadamw", "b"): 10, ("nadamw", "c"): INF,
            ("X", "a"): 10, ("X", "b"): 40, ("X", "c"): 5,
        })
    )  # fmt: skip
    assert r.reference == "nadamw"
    assert r.speedups["X"]["geomean"] == pytest.approx(math.sqrt(2 * 0.25))
    assert r.speedups["X"]["workloads"] == 2
    assert r.speedups["nadamw"]["geomean"] == pytest.approx(1.0)
    r2 = compute_scores(one({("nadamw", "a"): 20, ("X", "a"): 10}), reference="X")
    assert r2.speedups["nadamw"]["geomean"] == pytest.approx(0.5)
    with pytest.raises(TrainlabError, match="not among"):
        compute_scores(one({("nadamw", "a"): 20}), reference="nope")


def test_profile_points_without_workloads_and_beyond_r_max():
    assert profile_points([], 4.0) == [(1.0, 0.0), (4.0, 0.0)]
    assert profile_points([INF, 10.0], 4.0) == [(1.0, 0.0), (4.0, 0.0)]


# --------------------------------------------------------------------------------------------
# CSV


def test_times_csv_round_trip(tmp_path):
    records = recs(
        {("A", "w1"): [[1.5, INF], [2.25]], ("B", "w1:v"): [[INF]], ("B", "w1"): [[3.0]]}
    )
    path = tmp_path / "times.csv"
    write_times_csv(records, path)
    assert path.read_text().splitlines()[0] == "algorithm,workload,study,trial,time"
    assert read_times_csv(path) == records
    assert compute_scores(read_times_csv(path)).to_json() == compute_scores(records).to_json()


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty file"),
        ("algorithm,workload,study,time\nA,w,0,1\n", "missing column(s) trial"),
        ("algorithm,workload,study,trial,time\nA,w,0,0,fast\n", "csv:2: time 'fast' is not a"),
        ("algorithm,workload,study,trial,time\nA,w,zero,0,1\n", "csv:2: study and trial must"),
        ("algorithm,workload,study,trial,time\nA,w,0,0,1\nA,w,0,1,-1\n", "csv:3: time must be > 0"),
        ("algorithm,workload,study,trial,time\nA,w,0,0,1\nA,w,0,0,2\n", "csv:3: duplicate row"),
        ("algorithm,workload,study,trial,time\nA,w,0,0,0\n", "csv:2: time must be > 0"),
        ("algorithm,workload,study,trial,time\nA,w,0,0\n", "csv:2: expected 5 fields"),
        ("algorithm,workload,study,trial,time\n,w,0,0,1\n", "csv:2: empty algorithm"),
        ("algorithm,workload,study,trial,time\nA,w,0,0,nan\n", "> 0 or inf (a miss), got nan"),
        ("algorithm,workload,study,trial,time\n", "no rows"),
    ],
)
def test_bad_times_file_is_one_line_exit_2(tmp_path, capsys, text, words):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TrainlabError, match="bad.csv"):
        read_times_csv(path)
    assert main(["score", "--times", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1


def test_unreadable_times_file(tmp_path, capsys):
    assert main(["score", "--times", str(tmp_path / "missing.csv")]) == 2
    missing = tmp_path / "missing.csv"
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"cannot read {missing}: No such file or directory")
    )
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert main(["score", "--times", str(tmp_path / "bin.csv")]) == 2


def _store_with_results(path):
    """A benchmark with hand-written results: A fast on w, B slow, B misses w:v."""
    with Store(path) as store:
        bid, _ = store.get_or_create_benchmark("k", {"options": {"workloads": ["w"]}})
        cells = [("A", "w", "", 0, 0, 2.0, 20), ("A", "w", "", 0, 1, None, None),
                 ("B", "w", "", 0, 0, 5.0, 50), ("A", "w", "v", 0, 0, 3.0, 30),
                 ("B", "w", "v", 0, 0, None, None)]  # fmt: skip
        for algorithm, workload, variant, study, index, t, steps in cells:
            tid = store.create_trial(
                benchmark_id=bid, study=study, trial_index=index, workload=workload,
                variant=variant, algorithm=algorithm, hyperparameters={}, seed=index, mode="time",
            )  # fmt: skip
            store.start_trial(tid)
            store.finish_trial(
                tid, status="reached" if t is not None else "missed",
                time_to_target=t, steps_to_target=steps,
            )  # fmt: skip
        store.create_trial(
            benchmark_id=bid,
            study=1,
            trial_index=0,
            workload="w",
            variant="",
            algorithm="A",
            hyperparameters={},
            seed=9,
            mode="time",
        )  # fmt: skip  (pending: not scored)
    return bid


def test_store_scores_and_csv_round_trip_through_the_cli(tmp_path, capsys):
    db = tmp_path / "s.db"
    _store_with_results(db)
    with Store(db) as store:
        records = records_from_trials(store.trials())
    assert len(records) == 5  # the pending trial is skipped
    times = tmp_path / "t.csv"
    assert main(["score", "--store", str(db), "--json", "--save-times", str(times)]) == 0
    from_store = json.loads(capsys.readouterr().out)
    assert from_store["times"] == {"A": {"w": 2.0}, "B": {"w": None}}  # B failed w:v -> inf
    assert from_store["scores"] == {"A": 1.0, "B": 0.0}
    assert any("incomplete" in w for w in from_store["warnings"])
    # one study: no intervals (null), and the JSON says so
    assert from_store["score_intervals"] == {"A": None, "B": None} and from_store["n_boot"] == 0
    assert from_store["contended"] == {"A": {"w": 0, "w:v": 0}, "B": {"w": 0, "w:v": 0}}
    assert main(["score", "--times", str(times), "--json"]) == 0
    from_csv = json.loads(capsys.readouterr().out)
    for key in ("times", "ratios", "scores", "profiles", "speedups", "variant_failures"):
        assert from_csv[key] == from_store[key], key
    assert main(["score", "--store", str(db), "--by", "steps", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["raw_times"]["A"] == {"w": 20.0, "w:v": 30.0}
    assert main(["score", "--store", str(db)]) == 0  # the tables print
    out = capsys.readouterr().out
    assert "to target, by time" in out and "scores" in out


def test_store_studies_view_agrees_with_scoring(tmp_path):
    db = tmp_path / "s.db"
    bid = _store_with_results(db)
    with Store(db) as store:
        studies = store.studies(bid)
        result = compute_scores(records_from_trials(store.trials(benchmark_id=bid)))
    by_key = {(s["algorithm"], s["workload"] + (":" + s["variant"] if s["variant"] else ""),
               s["study"]): s for s in studies}  # fmt: skip
    assert by_key[("A", "w", 0)] == {
        "workload": "w", "variant": "", "algorithm": "A", "study": 0, "trials": 2, "finished": 2,
        "reached": 1, "time_to_target": 2.0, "steps_to_target": 20,
    }  # fmt: skip
    assert by_key[("A", "w", 1)]["finished"] == 0  # the pending trial's study
    for (a, w, s), row in by_key.items():
        if row["finished"]:
            t = row["time_to_target"]
            assert result.study_times[a][w][s] == (math.inf if t is None else t)


def test_score_errors(tmp_path, capsys):
    assert main(["score", "--store", str(tmp_path / "none.db")]) == 2
    assert "no results store" in capsys.readouterr().err
    db = tmp_path / "s.db"
    _store_with_results(db)
    assert main(["score", "--store", str(db), "--benchmark", "42"]) == 2
    assert "no benchmark 42" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Trial rows -> records, and the rules that mutation testing showed untested


def row(algorithm="A", workload="w", study=0, trial_index=0, status="reached", **columns):
    """A store trial row as :meth:`Store.trials` returns it (only the columns scoring reads)."""
    base = {"id": 100 + (trial_index or 0), "algorithm": algorithm, "workload": workload,
            "variant": "", "study": study, "trial_index": trial_index, "status": status,
            "time_to_target": None, "cpu_time_to_target": None, "ref_steps_to_target": None,
            "steps_to_target": None, "flops_to_target": None}  # fmt: skip
    return {**base, **columns}


def test_records_from_trial_rows_by_hand():
    rows = [
        row(study=0, trial_index=0, time_to_target=2.5),
        row(study=2, trial_index=1, time_to_target=4.0, variant="v", contended=1),
        row(study=1, trial_index=2, status="missed", time_to_target=1.0),  # a time, not reached
        row(study=1, trial_index=3, status="diverged"),
        row(study=1, trial_index=4, status="failed"),
        row(study=3, trial_index=None, id=7, time_to_target=9.0),
        row(study=None, trial_index=5, time_to_target=6.0),  # no study: study 0
        row(study=1, trial_index=6, status="pending"),
        row(study=1, trial_index=7, status="running", time_to_target=0.5),
    ]
    assert records_from_trials(rows) == [
        TimeRecord("A", "w", 0, 0, 2.5),
        TimeRecord("A", "w:v", 2, 1, 4.0, contended=True),
        TimeRecord("A", "w", 1, 2, INF),
        TimeRecord("A", "w", 1, 3, INF),
        TimeRecord("A", "w", 1, 4, INF),
        TimeRecord("A", "w", 3, 7, 9.0),
        TimeRecord("A", "w", 0, 5, 6.0),
    ]
    # studies 0 {2.5, 6.0} -> 2.5, 1 (all misses) -> inf, 3 -> 9: the median is 9
    r = compute_scores(records_from_trials(rows), n_boot=0)
    assert r.study_times["A"]["w"] == {0: 2.5, 1: INF, 3: 9.0}
    assert r.times["A"]["w"] == 9.0 and r.study_times["A"]["w:v"] == {2: 4.0}


@pytest.mark.parametrize(
    "by, expected",
    [("time", 3.0), ("cpu-time", 2.5), ("ref-steps", 90.0), ("steps", 40.0), ("flops", 7e12)],
)
def test_each_measure_reads_its_own_column(by, expected):
    trial = row(time_to_target=3.0, cpu_time_to_target=2.5, ref_steps_to_target=90.0,
                steps_to_target=40, flops_to_target=7e12)  # fmt: skip
    assert [r.time for r in records_from_trials([trial], by)] == [expected]
    assert records_from_trials([row(status="missed")], by)[0].time == INF


@pytest.mark.parametrize("by", ["cpu-time", "ref-steps", "flops"])
def test_a_measure_the_benchmark_predates_is_a_one_line_error(by):
    new = ("cpu_", "ref_", "flops_")
    old = {k: v for k, v in row(time_to_target=3.0).items() if not k.startswith(new)}
    with pytest.raises(TrainlabError, match="recorded before") as info:
        records_from_trials([old], by)
    assert "\n" not in str(info.value) and by in str(info.value)
    with pytest.raises(TrainlabError, match="recorded before"):
        records_from_trials([row(time_to_target=3.0)], by)  # present but None
    assert records_from_trials([old], "time")[0].time == 3.0
    with pytest.raises(TrainlabError, match="time, cpu-time, ref-steps, steps, flops"):
        records_from_trials([old], "seconds")


def test_a_non_default_r_max_moves_the_score():
    r = compute_scores(one({("F", "a"): 1, ("F", "b"): 1, ("S", "a"): 3, ("S", "b"): 5}),
                       r_max=6.0, n_boot=0)  # fmt: skip
    # S: ratios 3 and 5 inside [1, 6]: ((6-3) + (6-5)) / (2 * 5)
    assert r.scores["S"] == pytest.approx(0.4) and r.scores["F"] == 1.0
    assert r.r_max == 6.0 and r.profiles["S"][-1] == (6.0, 1.0)
    with pytest.raises(TrainlabError, match="r_max must be > 1"):
        compute_scores(one({("F", "a"): 1}), r_max=1.0)


def test_variant_exactly_r_max_times_slower_passes():
    r = compute_scores(one({("A", "w"): 1, ("A", "w:v"): 4, ("B", "w"): 2, ("B", "w:v"): 1}))
    assert r.times["A"]["w"] == 1 and r.variant_failures == {}


def test_zero_times_and_speedups_over_zero():
    r = compute_scores(one({("A", "w"): 0.0, ("B", "w"): 0.0, ("C", "w"): 2.0}), n_boot=0)
    assert r.ratios == {"A": {"w": 1.0}, "B": {"w": 1.0}, "C": {"w": INF}}
    assert r.speedups["C"] == {"geomean": None, "workloads": 0}
    assert median_over_studies([]) == INF


def test_missing_cells_warn_and_the_default_reference():
    r = compute_scores([TimeRecord("B", "w", 0, 0, 1.0), TimeRecord("A", "x", 0, 0, 2.0)])
    assert r.reference == "A"  # no nadamw: the first name
    assert r.times == {"A": {"w": INF, "x": 2.0}, "B": {"w": 1.0, "x": INF}}
    assert "B has no finished trial on x: counted as a miss" in r.warnings
    assert compute_scores(one({("z", "w"): 1, ("nadamw", "w"): 2})).reference == "nadamw"
    alone = compute_scores(one({("A", "w:v"): 1}))
    assert alone.workloads == ["w:v"] and "scored on its own" in alone.warnings[0]
    with pytest.raises(TrainlabError, match="nothing to score"):
        compute_scores([])


def test_scores_come_from_one_benchmark_of_the_store(tmp_path):
    from trainlab.bench.scoring import scores_from_store

    db = tmp_path / "s.db"
    first = _store_with_results(db)
    with Store(db) as store:
        other, _ = store.get_or_create_benchmark("other", {"options": {}})
        tid = store.create_trial(
            benchmark_id=other, study=0, trial_index=0, workload="w", variant="",
            algorithm="C", hyperparameters={}, seed=0, mode="time",
        )  # fmt: skip
        store.start_trial(tid)
        store.finish_trial(tid, status="reached", time_to_target=1.0)
        result, bench, records = scores_from_store(store, first)
        assert bench["id"] == first and result.algorithms == ["A", "B"] and len(records) == 5
        assert result.warnings[0] == "benchmark 1 is incomplete: 1 of 6 trials not finished"
        latest, bench, _ = scores_from_store(store)
        assert bench["id"] == other and latest.algorithms == ["C"] and not latest.warnings
        steps, _, _ = scores_from_store(store, first, by="steps", r_max=5.0, reference="B")
        assert steps.times == {"A": {"w": 20.0}, "B": {"w": INF}} and steps.by == "steps"
        assert steps.r_max == 5.0 and steps.reference == "B" and steps.n_boot == 0


def test_times_file_skips_blank_rows_and_reads_a_byte_order_mark(tmp_path):
    path = tmp_path / "t.csv"
    text = "algorithm,workload,study,trial,time\n\nA,w,0,0,2.5\n , , , , \nA,w,1,0,inf\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # what spreadsheet programs write
    assert read_times_csv(path) == [
        TimeRecord("A", "w", 0, 0, 2.5),
        TimeRecord("A", "w", 1, 0, INF),
    ]


def test_ratio_conventions_and_records_are_values():
    from trainlab.bench.scoring import ratio

    assert ratio(1.0, INF) == INF and ratio(INF, 1.0) == INF and ratio(3.0, 1.5) == 2.0
    assert ratio(0.0, 0.0) == 1.0 and ratio(1.0, 0.0) == INF
    # nobody qualified on the base sets a pace on the variant: a finite variant time fails
    r = compute_scores(one({("A", "w"): INF, ("A", "w:v"): 1, ("B", "w"): 10, ("B", "w:v"): INF}))
    assert r.variant_failures == {"A": {"w": ["w:v"]}, "B": {"w": ["w:v"]}}
    # records are frozen values: usable in sets, equal by content
    assert len({TimeRecord("A", "w", 0, 0, 1.0), TimeRecord("A", "w", 0, 0, 1.0)}) == 1


def test_empty_inputs_and_small_r_max():
    assert rho([], 2.0) == 0.0 and integrated_score([]) == 0.0
    assert profile_points([1.0, 1.5, INF], 4.0) == [(1.0, 1 / 3), (1.5, 2 / 3), (4.0, 2 / 3)]
    # times below 1 (seconds can be) still give speedups
    r = compute_scores(one({("A", "w"): 0.5, ("B", "w"): 0.25}), n_boot=0)
    assert r.speedups["B"] == {"geomean": 2.0, "workloads": 1}
    r = compute_scores(one({("A", "w"): 1, ("B", "w"): 1.25}), r_max=1.5)
    assert r.scores["B"] == pytest.approx(0.5)  # (1.5 - 1.25) / 0.5
    # nobody reached the base workload: its variant has no pace, every variant time fails
    r = compute_scores(one({("A", "w"): INF, ("A", "w:v"): 1, ("B", "w"): INF, ("B", "w:v"): 2}))
    assert r.variant_failures == {"A": {"w": ["w:v"]}, "B": {"w": ["w:v"]}}
    # a zero time against a reference's positive time: no defined speedup
    r = compute_scores(one({("A", "w"): 0.0, ("C", "w"): 2.0}), reference="C", n_boot=0)
    assert r.speedups["A"] == {"geomean": None, "workloads": 0}


def test_scores_from_store_passes_its_options_and_warns_incomplete_first(tmp_path):
    from trainlab.bench.scoring import scores_from_store

    with Store(tmp_path / "s.db") as store:
        bid, _ = store.get_or_create_benchmark("k", {"options": {}})
        cells = [("A", "w", 0, 1.0), ("A", "w", 1, 3.0), ("B", "x", 0, 2.0), ("B", "x", 1, None)]
        for algorithm, workload, study, t in cells:
            tid = store.create_trial(
                benchmark_id=bid, study=study, trial_index=0, workload=workload, variant="",
                algorithm=algorithm, hyperparameters={}, seed=study, mode="time",
            )  # fmt: skip
            store.start_trial(tid)
            status = "reached" if t is not None else "missed"
            store.finish_trial(tid, status=status, time_to_target=t, steps_to_target=7)
        store.create_trial(
            benchmark_id=bid, study=2, trial_index=0, workload="x", variant="", algorithm="B",
            hyperparameters={}, seed=2, mode="time",
        )  # fmt: skip
        result, _, records = scores_from_store(store, bid, n_boot=3, seed=4)
        assert result.warnings == [
            "benchmark 1 is incomplete: 1 of 5 trials not finished",
            "A has no finished trial on x: counted as a miss",
            "B has no finished trial on w: counted as a miss",
        ]
        # three replicates: A's interval on w depends on the seed ([3, 3] with seed 4)
        assert result.n_boot == 3 and result.time_intervals["A"]["w"] == (3.0, 3.0)
        assert result.time_intervals == compute_scores(records, n_boot=3, seed=4).time_intervals
        default_seed = scores_from_store(store, bid, n_boot=3)[0].time_intervals
        assert default_seed["A"]["w"] == (2.0, 3.0)  # seed 0
        assert scores_from_store(store, bid)[0].n_boot == 2000


def test_names_with_line_breaks_and_commas_survive_the_csv(tmp_path):
    records = [TimeRecord("a\r\nb", "w,1", 0, 0, 1.5), TimeRecord("é", "w", 1, 2, INF)]
    path = tmp_path / "t.csv"
    write_times_csv(records, path)
    assert read_times_csv(path) == records


def test_a_benchmark_where_nobody_reached_says_so():
    r = compute_scores(one({("A", "w"): INF, ("B", "w"): INF}), n_boot=0)
    assert all(score == 0.0 for score in r.scores.values())
    assert any("no algorithm reached its target" in w for w in r.warnings)
    r = compute_scores(one({("A", "w"): INF, ("B", "w"): 2.0}), n_boot=0)
    assert not any("no algorithm reached" in w for w in r.warnings)
