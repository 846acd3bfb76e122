"""Table cells shared by the terminal tables and the HTML report."""

import math

from trainlab.bench.compare import compare
from trainlab.bench.scoring import TimeRecord, compute_scores
from trainlab.report import cells

INF = math.inf


def test_plain_cells():
    assert cells.time(12.34) == "12.3 s" and cells.time(INF) == "inf" and cells.time(None) == "inf"
    assert cells.time(1234, "steps") == "1234 steps" and cells.time(2e12, "flops") == "2e+12 FLOPs"
    assert cells.ratio(1.5) == "1.50x" and cells.ratio(INF) == "inf"
    assert cells.interval(None) == "n/a" and cells.interval((1.0, INF), ".2f") == "[1.00, inf]"
    assert cells.with_interval(0.8125, (0.75, 0.9), ".3f") == "0.812 [0.750, 0.900]"
    assert cells.with_interval(1.0, None, ".3f") == "1.000 [n/a]"
    assert cells.p_value(0.0039) == "0.0039" and cells.p_value(1e-6) == "<1e-04"
    assert cells.p_value(None) == "n/a"
    assert cells.contended(0) == "" and cells.contended(2) == " *2"


def test_cells_of_a_score_result():
    records = [TimeRecord("A", "w", s, 0, t) for s, t in enumerate([1.0, 3.0])]
    records += [TimeRecord("B", "w", s, 0, 2.0, contended=s == 0) for s in range(2)]
    records += [TimeRecord("A", "w:v", 0, 0, INF), TimeRecord("B", "w:v", 0, 0, 1.0)]
    r = compute_scores(records, seed=3)
    assert cells.time_ratio(r, "B", "w") == "2 s (1.00x [1.00, 1.00]) *1"
    assert cells.time_ratio(r, "A", "w") == "2 s (variant failed)"
    assert cells.time_ratio(r, "A", "w:v") == "inf"
    assert (
        cells.score(r, "B") == "1.000 [1.000, 1.000]"
        and cells.score(r, "A") == "0.000 [0.000, 0.000]"
    )
    assert cells.speedup(r, "A") == "-"  # the reference A failed its variant: no workload
    one = compute_scores([TimeRecord("A", "w", 0, 0, 1.0), TimeRecord("B", "w", 0, 0, 2.0)])
    assert cells.speedup(one, "B") == "0.50x n/a (1 workload)"
    assert cells.time_ratio(one, "B", "w") == "2 s (2.00x n/a)"


def test_comparison_rows():
    records = [TimeRecord(a, "w", s, 0, t * (2 if a == "B" else 1))
               for a in ("A", "B") for s, t in enumerate([1.0, 2.0, 3.0])]  # fmt: skip
    rows = cells.comparison_rows(compare(records, "A", "B", n_boot=50))
    assert rows == [
        ["w", "2 s", "4 s", "2.00x", "[2.00, 2.00]", "3", "0.12"],
        ["overall", "", "", "2.00x", "[2.00, 2.00]", "3", "0.12"],
    ]


def test_tables_of_a_score_result():
    records = [TimeRecord("A", "w", 0, 0, 1.0), TimeRecord("B", "w", 0, 0, 2.0),
               TimeRecord("A", "w:v", 0, 0, 1.0), TimeRecord("B", "w:v", 0, 0, 1.0)]  # fmt: skip
    r = compute_scores(records)
    assert cells.time_table(r) == (
        ["workload", "A", "B"],
        [["w", "1 s (1.00x n/a)", "2 s (2.00x n/a)"], ["  w:v (held-out)", "1 s", "1 s"]],
    )
    assert cells.score_table(r) == (
        ["algorithm", "score [95 % interval]", "speedup vs A"],
        [["A", "1.000 [n/a]", "1.00x n/a (1 workload)"],
         ["B", "0.667 [n/a]", "0.50x n/a (1 workload)"]],
    )  # fmt: skip
