"""Model cost in the score table and the report: the metric-against-cost plot is drawn for the
algorithms whose model differs from the dense one (and only then), beside a table of medians
over the trials that reached the target."""

import json

from trainlab.bench.model_cost import cost_table
from trainlab.bench.store import Store
from trainlab.cli import main
from trainlab.report.html import build_report
from trainlab.spec import EvalRecord

DENSE = {"params": 1000, "nonzero_params": 1000, "flops_per_example": 2000.0,
         "nonzero_flops_per_example": 2000.0, "examples": 64}  # fmt: skip
SPARSE = {**DENSE, "nonzero_params": 100, "nonzero_flops_per_example": 200.0}
COMPACT = {**DENSE, "compact": {"params": 300, "nonzero_params": 300, "flops_per_example": 600.0,
                                "metrics": {"accuracy": 0.7}, "inference_speedup": 2.5,
                                "dense_ms": 1.0, "compact_ms": 0.4}}  # fmt: skip


def make_store(path, costs: dict) -> None:
    """Two trials per algorithm on digits_cnn: the first reaches accuracy 0.8, the second
    misses; ``costs``: algorithm -> model_cost of its trials (the missed one's is 5x larger)."""
    with Store(path) as store:
        options = {"workloads": ["digits_cnn"], "algorithms": list(costs), "n_trials": 2,
                   "n_studies": 1, "eval_every_steps": 10}  # fmt: skip
        bid, _ = store.get_or_create_benchmark("k", {"options": options})
        for algorithm, cost in costs.items():
            for index, reached in enumerate((True, False)):
                tid = store.create_trial(
                    benchmark_id=bid, study=0, trial_index=index, workload="digits_cnn",
                    variant="", algorithm=algorithm, mode="steps", hyperparameters={}, seed=index,
                    target_metric="accuracy", target_value=0.8, higher_is_better=1,
                )  # fmt: skip
                store.start_trial(tid)
                accuracy = 0.8 if reached else 0.5
                store.add_evaluation(tid, EvalRecord(10, 0.5, {"accuracy": accuracy}))
                bigger = {**cost, "nonzero_params": 5 * cost["nonzero_params"]}
                store.finish_trial(
                    tid, status="reached" if reached else "missed", n_evals=1, steps=10,
                    time_to_target=0.5 if reached else None,
                    steps_to_target=10 if reached else None, timed_seconds=0.5,
                    best_metric=accuracy, model_cost=cost if reached else bigger,
                )  # fmt: skip


def test_cost_table_takes_the_trials_that_reached():
    rows = [
        {"algorithm": a, "workload": "w", "variant": "", "status": status, "model_cost": cost}
        for a, status, cost in (("a", "reached", SPARSE), ("a", "missed", DENSE),
                                ("b", "missed", DENSE), ("b", "running", None))
    ]  # fmt: skip
    table = cost_table(rows)
    a, b = table["a"]["w"], table["b"]["w"]
    assert a["nnz"] == 100 and a["reached"] and a["n"] == 1
    assert b["nnz"] == 1000 and not b["reached"] and b["n"] == 1


def test_score_prints_the_model_cost_table(tmp_path, capsys):
    db = tmp_path / "s.db"
    make_store(db, {"nadamw": DENSE, "gmp": SPARSE})
    assert main(["score", "--store", str(db)]) == 0
    out = capsys.readouterr().out
    assert "model cost" in out and "100 nnz, 0.0002 MFLOPs" in out and "1k nnz" in out
    assert main(["score", "--store", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model_cost"]["gmp"]["digits_cnn"]["nnz"] == 100


def test_the_report_plots_metric_against_cost_for_sparse_algorithms(tmp_path):
    db = tmp_path / "s.db"
    make_store(db, {"nadamw": DENSE, "gmp": SPARSE, "sortednet": COMPACT})
    page = build_report(db, tmp_path / "r", n_boot=0).read_text()
    section = page[page.index("<h2>Model cost</h2>"):page.index("<h2>Trials</h2>")]
    assert "100 nnz, 0.0002 MFLOPs" in section and "1k nnz, 0.002 MFLOPs, 2.50x" in section
    assert 'alt="digits_cnn: metric against model cost"' in section
    assert section.count("<img") == 1
    assert (tmp_path / "r" / "cost_digits_cnn.png").stat().st_size > 1000


def test_no_plot_when_every_model_is_dense(tmp_path):
    db = tmp_path / "s.db"
    make_store(db, {"nadamw": DENSE, "adamw": DENSE})
    page = build_report(db, tmp_path / "r", n_boot=0).read_text()
    section = page[page.index("<h2>Model cost</h2>"):page.index("<h2>Trials</h2>")]
    assert "<img" not in section and "no plot" in section


ADAPT = {"name": "adapt", "layers": ["conv", "head"], "steps": [0, 30, 55],
         "weights": [[[8, 4], [8, 4]], [[6, 3], [9, 5]], [[5, 3], [9, 5]]],
         "gradients": [[[8, None], [8, None]], [[6, 12], [9, 14]], [[5, 11], [9, 13]]],
         "updates": 80, "switches": 4, "mean_bits": 7.0, "mean_bits_over_training": 7.4,
         "modelled_training_speedup": 1.5, "modelled_inference_speedup": 4.2,
         "model_size": 0.2, "paper_training_speedup": 1.27,
         "paper_inference_speedup": 2.33}  # fmt: skip


def test_the_report_plots_adapt_bit_widths_beside_the_papers_speedups(tmp_path):
    db = tmp_path / "s.db"
    make_store(db, {"nadamw": DENSE, "adapt": {**DENSE, "method": ADAPT}})
    page = build_report(db, tmp_path / "r", n_boot=0).read_text()
    section = page[page.index("<h2>Model cost</h2>"):page.index("<h2>Trials</h2>")]
    assert "Low precision (AdaPT)" in section
    assert "1.50x (paper 1.27x)" in section and "4.20x (paper 2.33x)" in section
    assert "emulation is not a CPU speedup" in section
    # dense model costs: no metric-against-cost plot, one bit-width plot (the best trial, 1)
    assert section.count("<img") == 1
    assert 'alt="adapt on digits_cnn, trial 3: bit-widths per layer"' in section


def test_show_prints_the_adapt_line(tmp_path, capsys):
    db = tmp_path / "s.db"
    make_store(db, {"adapt": {**DENSE, "method": ADAPT}})
    assert main(["show", "1", "--store", str(db)]) == 0
    out = capsys.readouterr().out
    assert "AdaPT: mean bit-width 7.00 at the end (7.40 averaged over 80 updates" in out
    assert "training 1.50x, inference 4.20x (paper: 1.27x, 2.33x)" in out
