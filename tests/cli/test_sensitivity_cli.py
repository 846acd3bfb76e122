"""``trainlab sensitivity`` on a tiny sweep: what it prints is the metric recomputed by hand from
the stored final losses; the sweep is a resumable benchmark of full-length runs."""

import contextlib
import io
import json
import shutil
import sqlite3

import pytest

from trainlab.bench.sensitivity import bootstrap_interval, is_sweep
from trainlab.bench.store import Store
from trainlab.registry import get_workload

#: 3 and 1e39 leave tiny_sgd's tuning range [1e-3, 1]; 1e39 overflows float32: the run fails
#: (and counts l0)
LRS = [1e-2, 3.0, 1e39]
SWEEP = ["sensitivity", "-w", "tiny_blobs", "-a", "tiny_sgd", "--lrs", ",".join(map(str, LRS)),
         "--seeds", "2", "--max-steps", "12", "--jobs", "1", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A finished sweep: (store path, the command's JSON)."""
    from trainlab.cli import main

    root = tmp_path_factory.mktemp("sweep")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*SWEEP, "--store", str(root / "s.db"), "--json",
                     "--plot", str(root / "p.png")])  # fmt: skip
    assert code == 0
    return root / "s.db", json.loads(out.getvalue())


def _l0() -> float:
    """The loss of tiny_blobs' model at initialisation (seed 0), by hand."""
    w = get_workload("tiny_blobs")
    return w.evaluate(w.init_model(0), "valid")["loss"]


def test_the_printed_sensitivity_is_the_metric_of_the_stored_final_losses(sweep):
    path, out = sweep
    with Store(path, readonly=True) as store:
        trials = store.trials()
        last = {t["id"]: store.evaluations(t["id"])[-1] if store.evaluations(t["id"]) else None
                for t in trials}  # fmt: skip
    l0 = _l0()
    table = {}  # seed -> [capped final loss per lr]
    for t in trials:
        lr = t["hyperparameters"]["learning_rate"]
        assert lr == LRS[t["trial_index"]]
        if t["status"] in ("reached", "missed"):  # ran its whole budget, evaluated at its end
            assert t["steps"] == 12 and last[t["id"]].step == 12
            loss = min(last[t["id"]].metrics["loss"], l0)
        else:
            assert t["status"] == "failed" and "overflow" in t["error"]
            loss = l0
        table.setdefault(t["study"], [None] * len(LRS))[t["trial_index"]] = loss
    per_lr = [(table[0][i] + table[1][i]) / 2 for i in range(len(LRS))]
    expected = sum(per_lr) / len(per_lr) - min(per_lr)
    got = out["sweeps"][0]["algorithms"]["tiny_sgd"]
    assert got["sensitivity"] == pytest.approx(expected, rel=1e-9)
    assert got["losses"][str(1e39)] == pytest.approx(l0)  # failed: counts l0
    assert out["sweeps"][0]["failed"] == 2
    assert got["best_lr"] == LRS[per_lr.index(min(per_lr))]
    assert out["sweeps"][0]["initial_loss"] == pytest.approx(l0)
    low, high = got["interval"]
    assert low <= high
    assert [low, high] == pytest.approx(bootstrap_interval([table[0], table[1]], l0))
    assert (path.parent / "p.png").stat().st_size > 0


def test_a_sweep_is_a_benchmark_of_paired_seeds_and_full_length_runs(sweep):
    path, _ = sweep
    with Store(path, readonly=True) as store:
        bench = store.benchmark()
        trials = store.trials()
    assert is_sweep(bench) and bench["config"]["options"]["full_curve"] is True
    assert bench["config"]["options"]["sensitivity_lrs"] == LRS
    assert len(trials) == 2 * len(LRS)
    for study in (0, 1):  # every lr of a seed trains from the same seed
        assert len({t["seed"] for t in trials if t["study"] == study}) == 1
    assert len({t["seed"] for t in trials}) == 2
    # the target (accuracy 0.9) is met early at lr 3, yet the run goes on to its budget
    assert any(t["status"] == "reached" and t["steps_to_target"] < 12 and t["steps"] == 12
               for t in trials)  # fmt: skip


def test_rerunning_or_resuming_trains_only_unfinished_trials(tmp_path, cli, sweep):
    path = tmp_path / "s.db"
    shutil.copy(sweep[0], path)
    with Store(path, readonly=True) as store:
        before = {t["id"]: t["finished"] for t in store.trials()}
    code, out, _ = cli(*SWEEP, "--store", path, "--json")  # the same command: nothing to run
    assert code == 0 and json.loads(out)["benchmark"]["ran"] == 0
    victim = max(before)
    with sqlite3.connect(path) as conn:  # as if killed while it ran
        conn.execute("UPDATE trials SET status = 'pending' WHERE id = ?", (victim,))
    code, out, _ = cli("sensitivity", "--resume", "--store", path, "--json", "--quiet",
                       "--jobs", "1")  # fmt: skip
    assert code == 0, out
    done = json.loads(out)["benchmark"]
    assert done["ran"] == 1 and done["already_finished"] == len(before) - 1
    with Store(path, readonly=True) as store:
        after = {t["id"]: t["finished"] for t in store.trials()}
    assert {k: v for k, v in after.items() if k != victim} == {
        k: v for k, v in before.items() if k != victim
    }
    assert after[victim] != before[victim]


def test_the_printed_table(tmp_path, cli, sweep):
    path = tmp_path / "s.db"
    shutil.copy(sweep[0], path)
    code, out, _ = cli(*SWEEP, "--store", path)
    assert code == 0
    value = sweep[1]["sweeps"][0]["algorithms"]["tiny_sgd"]["sensitivity"]
    assert "sensitivity" in out and f"{value:.4f}" in out and "(l0)" in out
    assert "bootstrap over the 2 seeds" in out and "2 trial(s) failed" in out
    assert (tmp_path / "sensitivity.png").exists()  # beside the store
