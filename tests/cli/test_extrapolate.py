"""``trainlab extrapolate`` and ``trainlab show`` on a trial stopped early; the option
constants the light parser writes out."""

import json

import pytest

from trainlab.bench.store import Store
from trainlab.curves import METHODS, predict_final
from trainlab.spec import EvalRecord

REASON = {"method": "lc-parametric", "fraction": 0.25, "n_observed": 5, "mean": 0.61,
          "lower": 0.55, "upper": 0.67, "target": 0.9, "p_target": 0.01, "threshold": 0.05,
          "step": 25}  # fmt: skip
ACC = [0.30, 0.45, 0.52, 0.56, 0.58]


@pytest.fixture
def stopped(tmp_path):
    path = tmp_path / "s.db"
    with Store(path) as store:
        tid = store.create_trial(
            workload="tiny_blobs", variant="", algorithm="tiny_sgd", mode="steps", seed=0,
            eval_every_steps=5, max_steps=100, max_runtime=2.0, eval_period=0.02, step_hint=20,
            target_metric="accuracy", target_value=0.9, higher_is_better=1,
        )  # fmt: skip
        store.start_trial(tid)
        for k, acc in enumerate(ACC, 1):
            store.add_evaluation(tid, EvalRecord(5 * k, 0.01 * k, {"accuracy": acc}))
        store.finish_trial(tid, status="stopped-early", n_evals=5, steps=25, best_metric=0.58,
                           stop_reason=REASON)  # fmt: skip
        empty = store.create_trial(workload="tiny_blobs", algorithm="tiny_sgd", mode="steps",
                                   seed=0, max_steps=100, target_metric="accuracy",
                                   target_value=0.9, higher_is_better=1)  # fmt: skip
    return path, tid, empty


def test_extrapolate_prints_one_prediction_per_evaluation(cli, stopped):
    path, tid, _ = stopped
    code, out, err = cli("extrapolate", str(tid), "--method", "lc-parametric", "--json",
                         "--store", str(path))  # fmt: skip
    assert code == 0, err
    got = json.loads(out)["predictions"]
    assert [g["step"] for g in got] == [5, 10, 15, 20, 25]
    assert [g["value"] for g in got] == ACC
    fractions = [5 * k / 100 for k in range(1, 6)]
    want = predict_final("lc-parametric", fractions, ACC, target=0.9, metric="accuracy",
                         higher_is_better=True)  # fmt: skip
    assert got[-1]["mean"] == pytest.approx(want.mean)
    assert got[-1]["p_target"] == pytest.approx(want.p_target)
    assert all(g["lower"] <= g["mean"] <= g["upper"] for g in got)
    code, out, err = cli("extrapolate", str(tid), "--store", str(path))
    assert code == 0, err
    assert "P(accuracy >= 0.9)" in out and "stopped early at step 25" in out
    assert len([line for line in out.splitlines() if line.strip().startswith("25 ")]) == 1


def test_show_says_what_stopped_the_trial(cli, stopped):
    path, tid, _ = stopped
    code, out, err = cli("show", str(tid), "--store", str(path))
    assert code == 0, err
    assert "status stopped-early" in out
    assert "by lc-parametric: P(target 0.9) = 0.010 < 0.05" in out


def test_extrapolate_errors_are_one_line(cli, stopped):
    path, _, empty = stopped
    for args, words in ((["999"], "999"), ([str(empty)], "no evaluations"),
                        (["1", "--method", "lc-bogus"], "invalid choice")):  # fmt: skip
        code, out, err = cli("extrapolate", *args, "--store", str(path))
        assert code == 2 and err.startswith("trainlab: error:") and words in err
        assert len(err.splitlines()) == 1


def test_choices_written_out_for_the_light_parser_match_their_sources():
    from trainlab.bench.early_stop import EARLY_STOP_METHODS
    from trainlab.cli import build_parser

    assert EARLY_STOP_METHODS == ("none", *METHODS)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    bench = next(a for a in sub.choices["bench"]._actions if a.dest == "early_stop")
    method = next(a for a in sub.choices["extrapolate"]._actions if a.dest == "method")
    assert tuple(bench.choices) == EARLY_STOP_METHODS and tuple(method.choices) == METHODS
