"""Benchmarks end to end on a tiny workload, in this process: planning, running, resuming,
crashes, variants, the local pool surviving a dying worker, and the CLI's one-line errors."""

import json
import math
import sqlite3

import benchfakes
import pytest

from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.executors import LocalExecutor, make_executor
from trainlab.bench.scoring import scores_from_store
from trainlab.bench.store import FINISHED, Store
from trainlab.cli import main
from trainlab.spec import TrainlabError


def config(**kw):
    base = dict(
        workloads=["tiny_blobs"], algorithms=["tiny_sgd", "tiny_selftuned"], n_trials=2,
        n_studies=2, eval_every_steps=5, max_steps=40,
    )  # fmt: skip
    return BenchmarkConfig(**{**base, **kw})


def test_run_score_and_rerun_runs_nothing(tmp_path):
    db = tmp_path / "s.db"
    run = run_benchmark(config(), db, jobs=1, threads=1)
    assert run.created and run.total == run.ran == 2 * 2 + 2 and run.already_finished == 0
    with Store(db) as store:
        trials = store.trials(benchmark_id=run.benchmark_id)
        assert all(t["status"] in FINISHED for t in trials)
        assert {t["status"] for t in trials} <= {"reached", "missed"}
        result, _, _ = scores_from_store(store, run.benchmark_id, by="steps")
    assert set(result.algorithms) == {"tiny_sgd", "tiny_selftuned"}
    assert max(result.scores.values()) == 1.0  # somebody was fastest on the only workload
    again = run_benchmark(config(), db, jobs=1, threads=1)
    assert (again.benchmark_id, again.created, again.ran) == (run.benchmark_id, False, 0)
    # another configuration is another benchmark in the same store
    other = run_benchmark(
        config(seed=5, algorithms=["tiny_sgd"]), db, jobs=1, threads=1
    )
    assert other.benchmark_id != run.benchmark_id and other.created


def test_step_mode_is_reproducible_across_benchmarks(tmp_path):
    a = run_benchmark(config(), tmp_path / "a.db", jobs=1, threads=1)
    b = run_benchmark(config(), tmp_path / "b.db", jobs=1, threads=1)
    assert a.key == b.key
    with Store(tmp_path / "a.db") as sa, Store(tmp_path / "b.db") as sb:
        ta, tb = sa.trials(), sb.trials()
        assert [t["steps_to_target"] for t in ta] == [t["steps_to_target"] for t in tb]
        assert [sa.evaluations(t["id"]) for t in ta][0] != []
        for x, y in zip(ta, tb, strict=True):
            ea = [(e.step, e.metrics) for e in sa.evaluations(x["id"])]
            assert ea == [(e.step, e.metrics) for e in sb.evaluations(y["id"])]


def test_resume_runs_exactly_the_unfinished_trials(tmp_path):
    db = tmp_path / "s.db"
    first = run_benchmark(config(), db, jobs=1, threads=1)
    with Store(db) as store:
        trials = store.trials(benchmark_id=first.benchmark_id)
    conn = sqlite3.connect(db, isolation_level=None)
    with conn:
        # pretend the process was killed: one trial mid-run (with a stale evaluation and no
        # heartbeat), one never started
        conn.execute(
            "UPDATE trials SET status='running', finished=NULL WHERE id=?", (trials[1]["id"],)
        )
        conn.execute(
            "UPDATE trials SET status='pending', started=NULL, finished=NULL WHERE id=?",
            (trials[4]["id"],),
        )
        conn.execute(
            "INSERT OR REPLACE INTO evaluations (trial_id, step, timed_seconds, metrics) "
                "VALUES (?, 999, 1.0, '{}')", (trials[1]["id"],)
        )
    conn.close()
    with Store(db) as store:
        before = {t["id"]: t for t in store.trials(benchmark_id=first.benchmark_id)}
    run = run_benchmark(None, db, jobs=1, threads=1)  # --resume (the latest)
    assert run.benchmark_id == first.benchmark_id and run.ran == 2
    with Store(db) as store:
        after = {t["id"]: t for t in store.trials(benchmark_id=first.benchmark_id)}
        assert 999 not in [e.step for e in store.evaluations(trials[1]["id"])]
    assert after.keys() == before.keys()
    for tid, t in after.items():
        assert t["status"] in FINISHED
        if tid in (trials[1]["id"], trials[4]["id"]):
            assert t["finished"] is not None
        else:  # untouched: not rerun
            old = before[tid]
            assert (t["started"], t["finished"]) == (old["started"], old["finished"])


def test_a_crashing_algorithm_fails_and_the_benchmark_goes_on(tmp_path):
    db = tmp_path / "s.db"
    run = run_benchmark(
        config(algorithms=["tiny_crash", "tiny_sgd"], n_studies=1), db, jobs=1, threads=1,
    )
    with Store(db) as store:
        trials = store.trials(benchmark_id=run.benchmark_id)
    crashed = [t for t in trials if t["algorithm"] == "tiny_crash"]
    assert crashed and all(t["status"] == "failed" and "boom" in t["error"] for t in crashed)
    assert all(t["status"] in ("reached", "missed") for t in trials if t["algorithm"] == "tiny_sgd")


def test_variants_run_alongside_and_time_mode_budgets(tmp_path):
    db = tmp_path / "s.db"
    cfg = BenchmarkConfig(
        workloads=["tiny_blobs"], algorithms=["tiny_sgd"], n_trials=1, n_studies=1,
        variants=True, max_runtime=0.3, ruleset="self",
    )  # fmt: skip
    run = run_benchmark(cfg, db, jobs=1, threads=1)
    with Store(db) as store:
        trials = store.trials(benchmark_id=run.benchmark_id)
    assert sorted(t["variant"] for t in trials) == ["", "mlp"]
    assert all(t["mode"] == "time" and t["max_runtime"] == pytest.approx(0.45) for t in trials)
    assert all(t["timed_seconds"] <= 0.45 + 0.2 for t in trials)


def test_local_pool_survives_a_dying_worker(tmp_path):
    """Trial 2 kills its worker (os._exit); it is marked failed, the others finish."""
    db = tmp_path / "s.db"
    with Store(db) as store:
        ids = [
            store.create_trial(
                workload="w", algorithm="a", hyperparameters={"die": k == 1}, seed=k, mode="steps"
            )
            for k in range(3)
        ]  # fmt: skip
        executor = LocalExecutor(
            db, jobs=2, threads=1, worker=benchfakes.dying_worker, owner=store.owner
        )
        left = iter(ids)
        outcomes = {}
        executor.run(lambda: next((t for t in left if store.claim(t)), None),
                     lambda tid, out: outcomes.__setitem__(tid, out))  # fmt: skip
    assert sorted(outcomes) == ids
    with Store(db) as store:
        status = {t["id"]: (t["status"], t["error"]) for t in store.trials()}
    assert status[ids[1]][0] == "failed" and "WorkerDied" in status[ids[1]][1]
    assert all(status[t][0] == "missed" for t in ids if t != ids[1])


def test_ray_executor_needs_ray(tmp_path, capsys):
    try:
        import ray  # noqa: F401
    except ImportError:
        with pytest.raises(TrainlabError, match="needs the ray package"):
            make_executor("ray", tmp_path / "s.db", jobs=2)
        code = main(["bench", "-w", "tiny_blobs", "-a", "tiny_sgd", "--executor", "ray",
                     "--store", str(tmp_path / "s.db")])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "needs the ray package" in err and len(err.strip().splitlines()) == 1
    else:  # pragma: no cover
        pytest.skip("ray is installed")


@pytest.mark.parametrize(
    "args, words",
    [
        (["-w", "nope", "-a", "tiny_sgd"], "unknown workload 'nope'"),
        (["-w", "tiny_blobs", "-a", "nope"], "unknown algorithm 'nope'"),
        (["-w", "tiny_blobs"], "needs -w WORKLOADS and -a ALGORITHMS"),
        (["-w", "tiny_blobs", "-a", "tiny_sgd", "--ruleset", "other"], "invalid choice"),
        (["-w", "tiny_blobs", "-a", "tiny_sgd", "--max-steps", "5"], "applies to step mode"),
        (["-w", "tiny_blobs", "-a", "tiny_sgd", "--trials", "0"], "must be >= 1"),
        (["-w", "tiny_blobs", "-a", "tiny_sgd", "--jobs", "0"], "--jobs must be >= 1"),
        (["-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "x"], "N or auto"),
    ],
)
def test_bench_cli_errors_are_one_line(tmp_path, capsys, args, words):
    code = main(["bench", *args, "--store", str(tmp_path / "s.db"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and words in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bench_cli_json_and_resume(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    args = ["bench", "-w", "tiny_blobs", "-a", "tiny_sgd,tiny_selftuned", "--trials", "2",
            "--studies", "1", "--eval-every-steps", "5", "--max-steps", "30", "--jobs", "1",
            "--threads", "1", "--store", db]  # fmt: skip
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ran"] == out["total"] == 3 and out["created"]
    assert set(out["scores"]["scores"]) == {"tiny_sgd", "tiny_selftuned"}
    assert main(["bench", "--resume", "--store", db, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["benchmark_id"] == out["benchmark_id"] and again["ran"] == 0
    assert main([*args, "--quiet"]) == 0  # the same command resumes too (nothing left)
    text = capsys.readouterr().out
    assert "3 already finished, ran 0" in text and "scores" in text
    assert not math.isnan(out["seconds"])
