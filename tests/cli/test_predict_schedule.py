"""``trainlab predict-schedule`` on real stored trials: the schedules are rebuilt exactly (the
recorded learning rates agree), the law is fitted on two schedules and predicts the others;
mistakes are one line."""

import json

import pytest

from trainlab.bench.schedule_prediction import curve_of_trial, recipe_of, schedule_lrs
from trainlab.bench.store import Store

RUN = ("run", "-w", "mnist1d_mlp", "--eval-every-steps", "20", "--max-steps", "200",
       "--targets", "class", "--full-curve", "--seed", "0")  # fmt: skip


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from trainlab.cli import main

    store = tmp_path_factory.mktemp("ps") / "s.db"
    for schedule in ("constant", "cosine"):
        assert main([*RUN, "-a", f"nadamw+{schedule}", "--store", str(store)]) == 0
    assert main([*RUN, "-a", "lion+cosine", "--store", str(store)]) == 0
    return store


def test_the_rebuilt_schedule_is_the_one_the_trial_recorded(fitted):
    with Store(fitted, readonly=True) as store:
        trial = store.trials()[1]  # nadamw+cosine
        records = store.evaluations(trial["id"])
        curve, row = curve_of_trial(store, trial["id"], "loss")
    lrs = schedule_lrs(recipe_of(trial["algorithm"]), row["hyperparameters"],
                       trial["step_hint"], 201)  # fmt: skip
    assert [r.lr for r in records if r.step > 0] == pytest.approx([lrs[r.step] for r in records
                                                                   if r.step > 0], rel=1e-6)
    assert lrs[0] < lrs[50] and lrs[150] < lrs[50]  # warm-up, then cosine decay
    assert len(curve.steps) == 10 and curve.losses[-1] < curve.losses[0]


def test_predicts_every_schedule_and_plots(fitted, cli, tmp_path):
    plot = tmp_path / "p.png"
    code, out, err = cli("predict-schedule", "-w", "mnist1d_mlp", "-a", "nadamw", "--fit", "1,2",
                         "--store", str(fitted), "--plot", str(plot), "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert set(result["final"]) == {"constant", "cosine", "linear_decay", "rex", "wsd"}
    assert result["best"] == min(result["final"], key=result["final"].get)
    assert result["steps"] == 200 and plot.stat().st_size > 1000
    # the fitted schedules' predicted ends lie on their measured ends (cosine decays to zero
    # by step 200, far from convergence: it ends above constant, in the law and in the runs)
    with Store(fitted, readonly=True) as store:
        measured = [store.evaluations(t)[-1].metrics["loss"] for t in (1, 2)]
    assert result["final"]["constant"] == pytest.approx(measured[0], abs=0.03)
    assert result["final"]["cosine"] == pytest.approx(measured[1], abs=0.03)
    code, out, _ = cli("predict-schedule", "-w", "mnist1d_mlp", "-a", "nadamw", "--fit", "1,2",
                       "--store", str(fitted), "--plot", str(plot), "--schedules", "wsd,rex")
    assert code == 0 and "best" in out and "S1^-" in out


@pytest.mark.parametrize("args, words", [
    (("-a", "nadamw", "--fit", "1,3"), "trained with lion"),
    (("-a", "nadamw", "--fit", "1", "--schedules", "nope"), "unknown schedule 'nope'"),
    (("-a", "nadamw", "--fit", "99"), "no trial 99"),
    (("-a", "autolrs", "--fit", "1"), "not an OPT+SCHED recipe"),
])  # fmt: skip
def test_mistakes_are_one_line(fitted, cli, args, words):
    code, _, err = cli("predict-schedule", "-w", "mnist1d_mlp", *args, "--store", str(fitted))
    assert code == 2 and words in err and err.count("\n") == 1, err


def test_a_trial_of_another_workload_is_refused(fitted, cli):
    code, _, err = cli("predict-schedule", "-w", "digits_cnn", "-a", "nadamw", "--fit", "1",
                       "--store", str(fitted))  # fmt: skip
    assert code == 2 and "is of mnist1d_mlp" in err


def test_a_method_built_on_the_recipe_is_refused(cli, tmp_path):
    """gmp is NAdamW + cosine plus pruning: its curve is not the schedule's alone."""
    store = tmp_path / "g.db"
    code, _, err = cli("run", "-w", "mnist1d_mlp", "-a", "gmp", "--eval-every-steps", "10",
                       "--max-steps", "30", "--full-curve", "--quiet", "--store", store)
    assert code == 0, err
    for optimizer in ("nadamw", "gmp"):
        code, _, err = cli("predict-schedule", "-w", "mnist1d_mlp", "-a", optimizer, "--fit",
                           "1", "--store", store, "--plot", tmp_path / "p.png")  # fmt: skip
        assert code == 2 and err.count("\n") == 1, err
        assert "gmp is a method built on the nadamw recipe (GMPAlgorithm)" in err
    assert not (tmp_path / "p.png").exists()
