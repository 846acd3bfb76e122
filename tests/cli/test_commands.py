"""What the commands print: version, run's curve and miss hint, show's table and single trial,
bench --resume from the stored plan, score of a CSV with a byte-order mark."""

import io
import json
import math

import pytest

from trainlab.bench.store import Store
from trainlab.spec import EvalRecord

RUN = ["run", "-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "5", "--max-steps",
       "10"]  # fmt: skip


def test_version_and_help(cli):
    from importlib.metadata import version

    code, out, err = cli("--version")
    assert code == 0 and out.strip() == f"trainlab {version('trainlab')}" and err == ""
    code, out, _ = cli("--help")
    assert code == 0 and "bench" in out and "score" in out
    code, out, _ = cli("bench", "--help")
    assert code == 0 and "--resume" in out


def test_run_json_has_the_curve(cli, tmp_path):
    code, out, err = cli(*RUN, "--json", "--full-curve", "--store", tmp_path / "s.db")
    assert code == 0, err
    doc = json.loads(out)
    assert [e["step"] for e in doc["evals"]] == [5, 10] and doc["n_evals"] == 2
    for e in doc["evals"]:
        assert set(e) >= {"step", "timed_seconds", "metrics", "train_loss", "lr"}
        assert "accuracy" in e["metrics"]


def test_a_missed_run_exits_0_with_a_hint(cli, tmp_path):
    # one step at the smallest learning rate misses the target
    args = [*RUN, "--max-steps", "1", "--eval-every-steps", "1", "--set", "learning_rate=0.001"]
    code, out, err = cli(*args, "--quiet", "--store", tmp_path / "s.db")
    assert code == 0, err
    lines = out.splitlines()
    assert "missed" in lines[0], lines
    assert lines[1].startswith("hint: missed the target") and "--set learning_rate=" in lines[1]
    assert "--max-steps" in lines[1] and lines[2].startswith("trial 1 saved in")


def test_show_newest_first_and_one_trial(cli, store, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = cli("show", "--store", store, "--json")
    ids = [t["id"] for t in json.loads(out)]
    assert ids == sorted(ids, reverse=True)
    code, out, _ = cli("show", "--store", store)
    assert code == 0 and "newest first" in out and "accuracy 0.9" in out
    assert out.index("│ 4 ") < out.index("│ 1 ")
    code, out, _ = cli("show", "1", "--store", store)
    assert code == 0 and "learning_rate" in out and "evaluations" in out and "1.2" in out
    code, out, _ = cli("show", "1", "--store", store, "--json")
    doc = json.loads(out)
    assert doc["id"] == 1 and doc["hyperparameters"] == {"learning_rate": 0.1}
    assert [e["step"] for e in doc["evals"]] == [5, 10, 15, 20]


def test_show_leaves_no_store_behind(cli, tmp_path):
    code, _, err = cli("show", "--store", tmp_path / "none.db")
    assert code == 2 and "no results store" in err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    "how", [["--resume"], ["--benchmark", "1"], ["--resume", "--benchmark", "1"]]
)
def test_bench_resume_takes_the_stored_plan(cli, store, how):
    code, out, err = cli("bench", *how, "--store", store, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["benchmark_id"] == 1 and doc["ran"] == 0 and doc["total"] == 4
    assert doc["scores"]["algorithms"] == ["tiny_selftuned", "tiny_sgd"]


def test_score_reads_a_csv_with_a_byte_order_mark(cli, tmp_path):
    path = tmp_path / "t.csv"
    text = "algorithm,workload,study,trial,time\nA,w,0,0,1.5\nB,w,0,0,3\nB,v,0,0,2\nA,v,0,0,inf\n"
    path.write_text(text, encoding="utf-8-sig")
    code, out, err = cli("score", "--times", path, "--json", "--reference", "A")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc["scores"]) == {"A", "B"} and all(
        math.isfinite(v) for v in doc["scores"].values()
    )
    code, out, _ = cli("score", "--times", path, "--r-max", "2")
    assert code == 0 and "variant failed" not in out


def test_score_and_report_references_are_checked(cli, store, tmp_path):
    code, out, err = cli("score", "--store", store, "--reference", "tiny_sgd", "--json")
    assert code == 0, err and json.loads(out)["reference"] == "tiny_sgd"
    code, _, err = cli("report", "--store", store, "--reference", "nope", "-o", tmp_path / "r")
    assert code == 2 and "no algorithm 'nope'" in err and not (tmp_path / "r").exists()


def test_benchmark_display_shows_running_trials_and_outcomes(tmp_path):
    from rich.console import Console

    from trainlab.cli.render import BenchmarkDisplay

    with Store(tmp_path / "s.db") as store:
        bid, _ = store.get_or_create_benchmark("k", {})
        tid = store.create_trial(
            benchmark_id=bid, study=0, trial_index=1, workload="w", variant="[red]v",
            algorithm="[bold]a", hyperparameters={}, seed=0, mode="steps", max_steps=100,
            target_metric="accuracy", target_value=0.9, higher_is_better=1,
        )  # fmt: skip
        store.start_trial(tid)
        store.add_evaluation(tid, EvalRecord(40, 1.5, {"accuracy": 0.5}, train_loss=0.7, lr=0.01))
        rows = {t["id"]: t for t in store.trials()}
        out = io.StringIO()
        display = BenchmarkDisplay(Console(file=out, width=200, force_terminal=False))
        display.start(store, bid, rows, 0)
        display.tick()
        assert list(display.lines) == [tid]
        task = display.progress.tasks[-1]
        assert task.completed == 40 and "accuracy 0.5" in task.fields["info"]
        outcome = {"status": "reached", "time_to_target": 1.5, "steps_to_target": 40}
        display.done(rows[tid], outcome)
        assert display.lines == {}
        display.stop()
    assert "#1 w:[red]v / [bold]a s0 t1: reached in 1.50 s (40 steps)" in out.getvalue()


def test_eval_status_prints_loss_and_lr_where_present():
    from trainlab.cli.render import eval_status

    assert eval_status(EvalRecord(1, 0.1, {"accuracy": 0.5}), "accuracy") == "accuracy 0.5"
    line = eval_status(EvalRecord(1, 0.1, {"accuracy": 0.5}, 0.25, 0.001), "accuracy", 0.9)
    assert line == "accuracy 0.5 (target 0.9), train loss 0.25, lr 0.001"
