"""The HTML report: produced from a store, self-contained, every plot present, every
user-provided name escaped."""

import base64
import html
import re

import pytest

from trainlab.bench.store import Store
from trainlab.cli import main
from trainlab.spec import EvalRecord

EVIL = '<script>alert("x")</script>&adam'
NAMES = [EVIL, "nadamw", "$lion_{2}$"]
WORKLOADS = [("digits_cnn", ""), ("digits_cnn", "gelu"), ("w<b>", "")]


def make_store(path, studies=1):
    """A finished benchmark written by hand: three algorithms, two workloads and a variant."""
    with Store(path) as store:
        options = {
            "workloads": ["digits_cnn", "w<b>"], "algorithms": NAMES, "ruleset": "external",
            "n_trials": 2, "n_studies": studies, "variants": True, "eval_every_steps": 10,
        }  # fmt: skip
        bid, _ = store.get_or_create_benchmark("key", {"options": options})
        cells = [
            (a_index, algorithm, workload, variant, study, index)
            for a_index, algorithm in enumerate(NAMES) for workload, variant in WORKLOADS
            for study in range(studies) for index in range(2)
        ]  # fmt: skip
        for a_index, algorithm, workload, variant, study, index in cells:
            tid = store.create_trial(
                benchmark_id=bid, study=study, trial_index=index, workload=workload,
                variant=variant, algorithm=algorithm, mode="steps",
                hyperparameters={"learning_rate": 0.01 * (index + 1), "note": "<i>"},
                seed=index, target_metric="error_rate", target_value=0.1,
                higher_is_better=0,
            )  # fmt: skip
            store.start_trial(tid)
            speed = 1 + a_index + index + study
            reached_at = None
            for k in range(1, 6):
                value = 1.0 / (k * speed)
                record = EvalRecord(10 * k, 0.5 * k, {"error_rate": value})
                store.add_evaluation(tid, record)
                if reached_at is None and value <= 0.1:
                    reached_at = k
            store.finish_trial(
                tid,
                status="reached" if reached_at else "missed",
                time_to_target=0.5 * reached_at if reached_at else None,
                steps_to_target=10 * reached_at if reached_at else None,
                timed_seconds=2.5, eval_seconds=0.1, wall_seconds=2.7, n_evals=5,
                steps=50, best_metric=1.0 / (5 * speed),
                error="ValueError: <bad> & worse" if algorithm == "nadamw" else None,
            )  # fmt: skip
    return bid


def test_report_has_every_plot_and_escapes_names(tmp_path, capsys):
    db = tmp_path / "s.db"
    bid = make_store(db)
    out = tmp_path / "report"
    assert main(["report", "--store", str(db), "--benchmark", str(bid), "-o", str(out)]) == 0
    assert "report:" in capsys.readouterr().out
    page = (out / "index.html").read_text(encoding="utf-8")

    pngs = sorted(p.name for p in out.glob("*.png"))
    # by time and by steps: profiles, ratio bars, score bars, speedup bars; and learning
    # curves for each workload and variant (no learning rates recorded: no lr plot)
    assert len(pngs) == 4 * 2 + len(WORKLOADS)
    for kind in ("profiles_", "ratios_", "scores_", "speedups_"):
        assert sum(p.startswith(kind) for p in pngs) == 2, kind
    assert not any(p.startswith("lr_") for p in pngs)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(pngs)  # every plot is inlined: the page stands alone
    on_disk = {(out / p).read_bytes() for p in pngs}
    assert {base64.b64decode(i) for i in images} == on_disk
    assert all(b.startswith(b"\x89PNG") for b in on_disk)
    assert 'src="http' not in page and "<link" not in page

    for name in NAMES + ["w<b>", "digits_cnn:gelu"]:
        assert html.escape(name) in page
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert html.escape("ValueError: <bad> & worse") in page
    sections = ("Scores", "Performance profiles", "Time to target", "Learning curves", "Trials")
    for section in sections:
        assert f"<h2>{section}" in page
    # one study: no intervals, shown as n/a; the untimed evaluation share 0.1 s of 2.7 s each
    assert "1.000 [n/a]" in page and "(1.00x n/a)" in page
    assert "3.7 % of wall time (1.8 s of evaluation in 48.6 s)" in page


def test_report_of_the_latest_benchmark_and_errors(tmp_path, capsys):
    db = tmp_path / "s.db"
    make_store(db)
    assert main(["report", "--store", str(db), "-o", str(tmp_path / "r"), "--json"]) == 0
    assert (tmp_path / "r" / "index.html").exists()
    capsys.readouterr()
    assert main(["report", "--store", str(tmp_path / "none.db"), "-o", str(tmp_path / "x")]) == 2
    assert "no results store" in capsys.readouterr().err
    assert main(["report", "--store", str(db), "--benchmark", "7", "-o", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "no benchmark 7" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["_hidden", "a$b$c", "plain"])
def test_legend_labels_show_names_literally(name):
    from trainlab.report.plots import label

    shown = label(name)
    assert not shown.startswith("_") and shown.count("$") == shown.count(r"\$")


def test_intervals_contention_training_loss_and_learning_rates(tmp_path, monkeypatch):
    """Three studies give intervals; contended trials are marked; evaluations with a training
    loss and a learning rate add a loss row and a learning-rate plot."""
    db = tmp_path / "s.db"
    bid = make_store(db, studies=3)
    plain_trials, plain_evals = Store.trials, Store.evaluations

    def trials(self, *args, **kwargs):
        rows = plain_trials(self, *args, **kwargs)
        for row in rows:
            row["contended"] = int(row["algorithm"] == "nadamw" and row["study"] == 1)
        return rows

    def evaluations(self, trial_id):
        records = plain_evals(self, trial_id)
        if trial_id % 2:  # odd trials record a learning rate and a training loss, even ones not
            return [EvalRecord(r.step, r.timed_seconds, r.metrics, 1.0 / r.step, 0.01 * r.step)
                    for r in records]  # fmt: skip
        return records

    monkeypatch.setattr(Store, "trials", trials)
    monkeypatch.setattr(Store, "evaluations", evaluations)
    out = tmp_path / "report"
    from trainlab.report.html import build_report

    page = build_report(db, out, bid, n_boot=200).read_text(encoding="utf-8")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert sum(p.startswith("lr_") for p in pngs) == len(WORKLOADS)
    assert "[n/a]" not in page and "200 replicates" in page
    # nadamw's trials of study 1 (2 per workload) are flagged: *2 in its time cells
    assert page.count(" *2") == len(WORKLOADS)  # by time only: contention cannot move steps
    assert '<tr><th class="l">contended trials</th><td class="l">6</td></tr>' in page


def test_plots_with_and_without_training_loss(tmp_path):
    from trainlab.report import plots
    from trainlab.spec import Target

    target = Target("error_rate", 0.1, higher_is_better=False)
    with_loss = {"a": [[EvalRecord(10, 1.0, {"error_rate": 0.5}, 2.0, 0.1),
                        EvalRecord(20, 2.0, {"error_rate": 0.05}, 1.0, 0.05)]]}  # fmt: skip
    without = {"a": [[EvalRecord(10, 1.0, {"error_rate": 0.5})]]}
    import matplotlib.image

    tall = plots.learning_curves("w", target, with_loss, tmp_path / "tall.png")
    flat = plots.learning_curves("w", target, without, tmp_path / "flat.png")
    # the training-loss row doubles the height
    assert matplotlib.image.imread(tall).shape[0] == 2 * matplotlib.image.imread(flat).shape[0]
    assert plots.has_lr(with_loss) and not plots.has_lr(without)
    plots.learning_rates("w", with_loss, tmp_path / "lr.png")
    inf = float("inf")
    plots.ratio_bars({"a": {"w": 1.0, "x": inf}, "b": {"w": 2.5, "x": 1.0}},
                     {"a": {"w": (1.0, 1.2), "x": (1.0, inf)}, "b": {"w": None, "x": None}},
                     4.0, tmp_path / "ratios.png")  # fmt: skip
    plots.score_bars({"a": 1.2, "b": None}, {"a": (0.9, 1.5), "b": None},
                     tmp_path / "speedups.png", reference_line=1.0)  # fmt: skip
    assert all((tmp_path / f).read_bytes().startswith(b"\x89PNG")
               for f in ("lr.png", "ratios.png", "speedups.png"))  # fmt: skip
