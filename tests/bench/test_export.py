"""``trainlab export``: a store with real trials (a tiny benchmark, a lone ``trainlab run``, one
trial still running, one pending) exported to MLflow and TensorBoard, then read back with
MLflow's client and TensorBoard's event reader and compared with what the store holds; and
re-exporting, which must not duplicate."""

import math
import sys

import benchfakes  # noqa: F401  (registers tiny_blobs and tiny_sgd)
import pytest

from trainlab.bench import export
from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.store import Store
from trainlab.cli import main
from trainlab.spec import EvalRecord, TrainlabError

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")
from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _make_store(path):
    config = BenchmarkConfig(
        workloads=["tiny_blobs"], algorithms=["tiny_sgd", "tiny_selftuned"], n_trials=1,
        n_studies=2, eval_every_steps=5, max_steps=20, targets="class",
    )  # fmt: skip
    bench = run_benchmark(config, path, jobs=1, threads=1)
    code = main(["run", "-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "5",
                 "--max-steps", "10", "--quiet", "--targets", "class", "--store", str(path),
                 "--threads", "1"])  # fmt: skip
    assert code == 0
    with Store(path, heartbeat=False) as store:  # its running trial stays running after close
        common = dict(workload="tiny_blobs", variant="mlp", algorithm="tiny_sgd", mode="steps",
                      seed=3, hyperparameters={"learning_rate": 0.05, "betas": [0.9, 0.99]},
                      eval_every_steps=5, max_steps=20, target_metric="accuracy",
                      target_value=0.9, higher_is_better=1)  # fmt: skip
        running = store.create_trial(**common)
        store.start_trial(running)
        store.add_evaluation(
            running,
            EvalRecord(5, 0.25, {"accuracy": 0.5, "loss": float("nan")}, train_loss=0.7, lr=0.05),
        )
        store.create_trial(**common)  # pending: no evaluations
    return bench.benchmark_id, running


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    bid, running = _make_store(root / "s.db")
    return root, bid, running


def _expected_series(store, trial):
    """{metric: [(step, value)]} as the store holds it (evaluations, then final figures)."""
    out = {}
    evals = store.evaluations(trial["id"])
    for e in evals:
        values = {**e.metrics, "train_loss": e.train_loss, "lr": e.lr,
                  "timed_seconds": e.timed_seconds}  # fmt: skip
        for name, value in values.items():
            if value is not None:
                out.setdefault(name, []).append((e.step, float(value)))
    last = trial["steps"] or (evals[-1].step if evals else 0)
    for name in export.FINAL_FIGURES:
        if trial.get(name) is not None:
            out.setdefault(name, []).append((last, float(trial[name])))
    for name, value in (trial.get("test_metrics") or {}).items():
        out.setdefault(f"test_{name}", []).append((last, float(value)))
    return out


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-6, abs=1e-7)


def _assert_series(got, want):
    assert set(got) == set(want)
    for name, points in want.items():
        assert [s for s, _ in got[name]] == [s for s, _ in points], name
        assert all(_same(g, w) for (_, g), (_, w) in zip(got[name], points, strict=True)), name


def _mlflow_runs(client, view=ViewType.ACTIVE_ONLY):
    """{trial id: [runs]} over every experiment."""
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = {}
    for run in client.search_runs(ids, run_view_type=view, max_results=1000):
        runs.setdefault(int(run.data.tags["trainlab.trial_id"]), []).append(run)
    return runs


def test_mlflow_runs_hold_what_the_store_holds(world):
    root, bid, running = world
    uri = f"sqlite:///{root / 'read-back.db'}"
    with Store(root / "s.db") as store:
        trials = store.trials()
        assert export.export_mlflow(store, uri) == len(trials) == 2 * 2 + 1 + 2
        client = MlflowClient(tracking_uri=uri)
        runs = _mlflow_runs(client)
        assert set(runs) == {t["id"] for t in trials} and all(len(r) == 1 for r in runs.values())
        names = {e.name for e in client.search_experiments()}
        assert {f"trainlab-benchmark-{bid}", "trainlab-runs"} <= names
        assert any(t["test_metrics"] for t in trials)  # the real trials have test metrics
        for trial in trials:
            run = runs[trial["id"]][0]
            experiment = client.get_experiment(run.info.experiment_id)
            assert experiment.name == export.experiment_name(trial["benchmark_id"])
            tags = run.data.tags
            for key in ("workload", "algorithm", "seed", "status", "target_metric"):
                assert tags[key] == str(trial[key])
            assert tags.get("benchmark_id") == (None if trial["benchmark_id"] is None
                                                else str(bid))  # fmt: skip
            assert tags["trainlab.store"] == str((root / "s.db").resolve())
            params = {k: str(v) for k, v in trial["hyperparameters"].items() if k != "betas"}
            params.update({k: str(trial[k]) for k in export.BUDGET_FIELDS if trial[k] is not None})
            if "betas" in trial["hyperparameters"]:
                params["betas"] = "[0.9, 0.99]"
            assert run.data.params == params
            want = _expected_series(store, trial)
            got = {
                name: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
                for name in run.data.metrics
            }
            _assert_series(got, want)
            status = {"running": "RUNNING", "pending": "SCHEDULED"}.get(trial["status"])
            assert run.info.status == (status or "FINISHED")
        assert math.isnan(runs[running][0].data.metrics["loss"])  # NaN goes as NaN


def test_mlflow_reexport_replaces_only_what_changed(world, tmp_path):
    root, bid, _ = world
    db = tmp_path / "s.db"
    db.write_bytes((root / "s.db").read_bytes())
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = MlflowClient(tracking_uri=uri)
    with Store(db) as store:
        n = export.export_mlflow(store, uri)
        first = {t: [r.info.run_id for r in runs] for t, runs in _mlflow_runs(client).items()}
        assert export.export_mlflow(store, uri) == n
        again = {t: [r.info.run_id for r in runs] for t, runs in _mlflow_runs(client).items()}
        assert again == first  # nothing changed: the same runs, none added
        # the running trial goes on and finishes: its run alone is replaced
        running = next(t for t in store.trials() if t["status"] == "running")
        # (written by the process that holds the trial's claim)
        with Store(db, owner=running["owner"], heartbeat=False) as holder:
            holder.add_evaluation(running["id"], EvalRecord(10, 0.5, {"accuracy": 0.95}))
            holder.finish_trial(running["id"], status="reached", steps=10, time_to_target=0.5,
                                steps_to_target=10, best_metric=0.95)  # fmt: skip
        export.export_mlflow(store, uri)
        runs = _mlflow_runs(client)
        assert set(runs) == set(first) and all(len(r) == 1 for r in runs.values())
        changed = {t for t in runs if [r.info.run_id for r in runs[t]] != first[t]}
        assert changed == {running["id"]}
        run = runs[running["id"]][0]
        assert run.data.tags["status"] == "reached" and run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "accuracy")
        assert [(m.step, m.value) for m in history] == [(5, 0.5), (10, 0.95)]
        # the replaced run is deleted, not left beside the new one
        every = _mlflow_runs(client, ViewType.ALL)
        assert len(every[running["id"]]) == 2
        assert sum(r.info.lifecycle_stage == "active" for r in every[running["id"]]) == 1
        # an export cut short leaves a run without its digest: the next one replaces it
        cut = min(runs)
        client.delete_tag(runs[cut][0].info.run_id, "trainlab.digest")
        export.export_mlflow(store, uri)
        after = _mlflow_runs(client)
        assert all(len(r) == 1 for r in after.values())
        assert {t for t in after if after[t][0].info.run_id != runs[t][0].info.run_id} == {cut}


def test_mlflow_one_benchmark_and_unknown_benchmark(world, tmp_path):
    root, bid, _ = world
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with Store(root / "s.db") as store:
        assert export.export_mlflow(store, uri, benchmark_id=bid) == 4
        with pytest.raises(TrainlabError, match="no benchmark 99"):
            export.export_mlflow(store, uri, benchmark_id=99)
    runs = _mlflow_runs(MlflowClient(tracking_uri=uri))
    assert len(runs) == 4
    assert {r[0].data.tags["benchmark_id"] for r in runs.values()} == {str(bid)}


def _tensorboard_series(path):
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_runs_hold_what_the_store_holds_and_reexport_rewrites(world, tmp_path):
    root, bid, _ = world
    out = tmp_path / "tb"
    with Store(root / "s.db") as store:
        trials = store.trials()
        assert export.export_tensorboard(store, out) == len(trials)
        dirs = {p.parent for p in out.rglob("events.out.tfevents.*")}
        assert dirs == {out / export.run_directory(t) for t in trials}
        lone = next(t for t in trials if t["benchmark_id"] is None)
        assert export.run_directory(lone).parts[0] == "runs"
        assert export.run_directory(trials[0]).parts[:2] == (f"benchmark-{bid}", "tiny_blobs")
        for trial in trials:
            path = out / export.run_directory(trial)
            _assert_series(_tensorboard_series(path), _expected_series(store, trial))
            acc = EventAccumulator(str(path))
            acc.Reload()
            plugins = acc.PluginTagToContent("hparams")
            assert "_hparams_/session_start_info" in plugins
            assert acc.Tensors("trial/text_summary")  # the tags, as a table
        before = {p: _tensorboard_series(p) for p in dirs}
        export.export_tensorboard(store, out)
        after = {p.parent for p in out.rglob("events.out.tfevents.*")}
        assert after == dirs
        assert all(len(list(p.glob("events.out.tfevents.*"))) == 1 for p in after)
        for path in after:  # rewritten, not appended to
            _assert_series(_tensorboard_series(path), before[path])


def test_tensorboard_leaves_a_folder_it_did_not_write(world, tmp_path):
    root, bid, _ = world
    with Store(root / "s.db") as store:
        trial = store.trials(benchmark_id=bid)[0]
        mine = tmp_path / export.run_directory(trial)
        mine.mkdir(parents=True)
        (mine / "notes.txt").write_text("keep me")
        with pytest.raises(TrainlabError, match="notes.txt"):
            export.export_tensorboard(store, tmp_path, benchmark_id=bid)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_run_directory_names_are_safe():
    trial = {"id": 3, "benchmark_id": None, "workload": "../w x", "variant": "a/b",
             "algorithm": ".hidden+cosine"}  # fmt: skip
    parts = export.run_directory(trial).parts
    assert parts == ("runs", "w_x-a_b", "hidden_cosine", "trial-3")


@pytest.mark.parametrize("missing, fn, arg", [
    (("mlflow",), export.export_mlflow, "sqlite:///x.db"),
    (("tensorboard", "torch.utils.tensorboard"), export.export_tensorboard, "tb"),
])  # fmt: skip
def test_missing_package_says_what_to_install(world, tmp_path, monkeypatch, missing, fn, arg):
    root, _, _ = world
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.chdir(tmp_path)
    with Store(root / "s.db") as store, pytest.raises(TrainlabError, match=r"pip install"):
        fn(store, arg)
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_both_ways(world, tmp_path, capsys):
    root, bid, _ = world
    store = str(root / "s.db")
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["export", "--mlflow", uri, "--benchmark", str(bid), "--store", store]) == 0
    out, err = capsys.readouterr()
    assert out == f"exported 4 trials to MLflow at {uri}\n" and err == ""
    assert len(_mlflow_runs(MlflowClient(tracking_uri=uri))) == 4
    assert main(["export", "--tensorboard", str(tmp_path / "tb"), "--store", store]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("exported 7 trials to TensorBoard under ") and err == ""
    assert len({p.parent for p in (tmp_path / "tb").rglob("events.out.tfevents.*")}) == 7
