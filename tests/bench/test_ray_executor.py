"""``--executor ray`` against a real local Ray (started once for this module, on loopback, with
its temporary files under pytest's): every trial finishes with the local pool's results, a
worker that dies fails only its trial, an interrupted benchmark resumes without rerunning
finished trials, and a run that ends on an error leaves no task behind."""

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import benchfakes
import pytest

from trainlab.bench import executors, ray_executor
from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.executors import make_executor
from trainlab.bench.scoring import scores_from_store
from trainlab.bench.store import FINISHED, Store
from trainlab.cli import main
from trainlab.spec import TrainlabError

ray = pytest.importorskip("ray")

CPUS = 2


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory):
    """One local Ray for the module: 2 CPUs, no dashboard, no usage statistics, loopback only.
    (The executor finds it initialized and uses it instead of starting its own.)"""
    saved = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Ray's socket paths must stay under the 107-byte limit of AF_UNIX addresses
    temp = tmp_path_factory.mktemp("ray")
    ray.init(
        address="local", num_cpus=CPUS, include_dashboard=False, log_to_driver=False,
        _temp_dir=str(temp), _node_ip_address="127.0.0.1",
    )  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
        else:
            os.environ["RAY_USAGE_STATS_ENABLED"] = saved


def free_cpus_settle() -> float:
    """Ray's free CPUs once it has taken back every task's (it frees them asynchronously)."""
    deadline = time.monotonic() + 60
    while (free := ray.available_resources().get("CPU", 0.0)) < CPUS:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return free


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def make_trials(db, hyperparameters: list[dict]) -> list[int]:
    with Store(db) as store:
        return [
            store.create_trial(
                workload="w", algorithm="a", hyperparameters=hp, seed=k, mode="steps"
            )
            for k, hp in enumerate(hyperparameters)
        ]


def test_make_executor_uses_the_running_ray(tmp_path):
    ex = make_executor("ray", tmp_path / "rel" / ".." / "s.db", jobs=2, threads=1)
    assert isinstance(ex, ray_executor.RayExecutor)
    assert ex.store_path == str((tmp_path / "s.db").resolve())  # absolute, for remote workers
    assert (ex.jobs, ex.threads, ex.worker) == (2, 1, ray_executor.run_stored_trial)
    # workers import what this process imports: pytest's tests/ (for the fake workers) and
    # this checkout's src/, ahead of any installed copy
    paths = ray_executor._worker_pythonpath().split(os.pathsep)
    assert os.path.dirname(os.path.realpath(benchfakes.__file__)) in paths
    import trainlab

    assert paths[0] == os.path.dirname(os.path.dirname(os.path.realpath(trainlab.__file__)))


@pytest.mark.slow
def test_ray_benchmark_scores_equal_the_local_pools(tmp_path, monkeypatch):
    """The same step-mode benchmark on the local pool and on Ray: every trial finishes, with
    identical evaluations and scores (a worker that imports the tiny workload's module)."""
    for module in (executors, ray_executor):  # both pools' default worker
        monkeypatch.setattr(module, "run_stored_trial", benchfakes.registering_worker)
    config = BenchmarkConfig(
        workloads=["tiny_blobs"], algorithms=["tiny_sgd", "tiny_selftuned"], n_trials=2,
        n_studies=2, eval_every_steps=5, max_steps=40, targets="class",
    )  # fmt: skip
    local = run_benchmark(config, tmp_path / "local.db", jobs=2, threads=1)
    ticks = []
    on_ray = run_benchmark(
        config, tmp_path / "ray.db", jobs=2, threads=1, executor="ray",
        on_tick=lambda: ticks.append(1),
    )  # fmt: skip
    assert on_ray.ran == on_ray.total == local.total == 6 and ticks
    with Store(tmp_path / "local.db") as sl, Store(tmp_path / "ray.db") as sr:
        tl, tr = sl.trials(), sr.trials()
        assert all(t["status"] in ("reached", "missed") for t in tr)
        assert any(t["status"] == "reached" for t in tr)  # the scores compare something
        for a, b in zip(tl, tr, strict=True):
            assert (a["status"], a["steps_to_target"]) == (b["status"], b["steps_to_target"])
            ea = [(e.step, e.metrics) for e in sl.evaluations(a["id"])]
            assert ea and ea == [(e.step, e.metrics) for e in sr.evaluations(b["id"])]
        score_local = scores_from_store(sl, by="steps")[0]
        score_ray = scores_from_store(sr, by="steps")[0]
    assert score_ray.scores == score_local.scores
    assert free_cpus_settle() == CPUS


def test_a_dying_worker_fails_only_its_trial(tmp_path):
    """Trial 2 kills its Ray worker (os._exit): it is marked failed, the others finish."""
    db = tmp_path / "s.db"
    ids = make_trials(db, [{"die": k == 1} for k in range(3)])
    ex = ray_executor.RayExecutor(db, jobs=2, threads=1, worker=benchfakes.dying_worker)
    outcomes = {}
    run_claimed(ex, db, ids, lambda tid, out: outcomes.__setitem__(tid, out))
    assert sorted(outcomes) == ids
    with Store(db) as store:
        status = {t["id"]: (t["status"], t["error"]) for t in store.trials()}
    assert status[ids[1]][0] == "failed" and "WorkerDied" in status[ids[1]][1]
    assert outcomes[ids[1]]["status"] == "failed"
    assert all(status[t][0] == "missed" for t in ids if t != ids[1])


def test_a_worker_exception_fails_its_trial(tmp_path):
    """A worker that raises outside the runner's guard marks its trial failed with the error,
    and the run goes on."""
    db = tmp_path / "s.db"
    ids = make_trials(db, [{"raise": True}, {}])
    outcomes = {}
    ex = ray_executor.RayExecutor(db, jobs=2, threads=1, worker=benchfakes.blocking_worker)
    run_claimed(ex, db, ids, lambda tid, out: outcomes.__setitem__(tid, out))
    assert [outcomes[t]["status"] for t in ids] == ["failed", "missed"]
    with Store(db) as store:
        rows = store.trials()
    assert rows[0]["status"] == "failed" and f"ValueError: bad row {ids[0]}" in rows[0]["error"]


def test_a_trainlab_error_in_a_worker_ends_the_run_in_one_line(tmp_path):
    """As with the local pool, a TrainlabError (here: a workload this store does not know)
    stops the run, with the worker's own message and no Ray traceback."""
    db = tmp_path / "s.db"
    ids = make_trials(db, [{}, {}])
    with pytest.raises(TrainlabError) as caught:
        run_claimed(ray_executor.RayExecutor(db, jobs=2, threads=1), db, ids,
                    lambda tid, out: None)
    assert str(caught.value).startswith("unknown workload 'w'")
    assert len(str(caught.value).splitlines()) == 1
    assert free_cpus_settle() == CPUS


def test_workers_that_cannot_load_the_task_end_the_run_in_one_line(tmp_path):
    """A worker function Ray's workers cannot import (a module only this process has) stops
    the run with one line, and marks no trial failed: a resume can run them once fixed."""
    module = types.ModuleType("trainlab_nowhere")
    exec("def worker(*args):\n    return {}", module.__dict__)
    sys.modules[module.__name__] = module  # so the function is sent by name, not by value
    try:
        db = tmp_path / "s.db"
        ids = make_trials(db, [{}, {}])
        ex = ray_executor.RayExecutor(db, jobs=2, threads=1, worker=module.worker)
        with pytest.raises(TrainlabError) as caught:
            run_claimed(ex, db, ids, lambda tid, out: None)
    finally:
        del sys.modules[module.__name__]
    message = str(caught.value)
    assert "Ray workers cannot run trials" in message and "trainlab_nowhere" in message
    assert len(message.splitlines()) == 1
    with Store(db) as store:
        assert {t["status"] for t in store.trials()} <= {"pending", "interrupted"}


def run_claimed(ex, db, ids, on_done):
    """``ex.run`` on the trials ``ids``, claimed one by one by a driver store (as a benchmark
    does), which keeps their heartbeat and gives back what is left when it closes."""
    with Store(db) as store:
        ex.owner = store.owner
        left = iter(ids)
        ex.run(lambda: next((t for t in left if store.claim(t)), None), on_done)


class Stop(Exception):
    pass


def test_an_error_in_run_leaves_no_task_behind(tmp_path):
    """``on_done`` raises after the first trial: the blocked trial in flight is cancelled (its
    worker process is gone when run() returns), Ray gets its CPUs back, and the trials left
    stay unfinished for a resume."""
    db = tmp_path / "s.db"
    ids = make_trials(db, [{"block": False}, {"block": True}, {"block": True}])
    ex = ray_executor.RayExecutor(db, jobs=2, threads=1, worker=benchfakes.blocking_worker)

    blocked = tmp_path / f"s.db.{ids[1]}.pid"

    def on_done(tid, out):
        deadline = time.monotonic() + 60  # let the blocking trial start first
        while not blocked.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise Stop(tid)

    with pytest.raises(Stop):
        run_claimed(ex, db, ids, on_done)
    with Store(db) as store:
        status = {t["id"]: t["status"] for t in store.trials()}
    # the driver's store gave back the trial it held (a resume reruns it)
    assert status == {ids[0]: "missed", ids[1]: "interrupted", ids[2]: "pending"}
    pid = int(blocked.read_text())
    assert gone(pid)
    assert free_cpus_settle() == CPUS


@pytest.mark.slow
def test_interrupted_ray_benchmark_resumes(tmp_path, capsys):
    """A real benchmark on Ray, interrupted after its first trial (as by Ctrl-C), is resumed
    from the command line with ``--executor ray``: the finished trial is not rerun, the others
    run once, and every trial has exactly its planned evaluations."""
    db = tmp_path / "s.db"
    config = BenchmarkConfig(
        workloads=["digits_cnn"], algorithms=["adamw", "nadamw"], n_trials=2, n_studies=1,
        eval_every_steps=5, max_steps=10, targets="class",
    )  # fmt: skip

    def stop(row, outcome):
        raise Stop(row["id"])

    with pytest.raises(Stop):
        run_benchmark(config, db, jobs=2, threads=1, executor="ray", on_trial_done=stop)
    with Store(db) as store:
        before = {t["id"]: t for t in store.trials()}
    finished = {i: t for i, t in before.items() if t["status"] in FINISHED}
    assert len(before) == 4 and 1 <= len(finished) < 4

    code = main(["bench", "--resume", "--store", str(db), "--executor", "ray", "--jobs", "2",
                 "--threads", "1", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with Store(db) as store:
        after = {t["id"]: t for t in store.trials()}
        steps = {i: [e.step for e in store.evaluations(i)] for i in after}
    assert after.keys() == before.keys()
    for trial_id, t in after.items():
        assert t["status"] == "missed", (t["status"], t["error"])  # 10 steps: far off
        assert steps[trial_id] == [5, 10]
        if trial_id in finished:
            old = finished[trial_id]
            assert (t["started"], t["finished"]) == (old["started"], old["finished"])


def ray_task_workers(sid: int) -> list[int]:
    """Processes of session ``sid`` that are Ray workers running a trial."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid and fields[0] != "Z" and b"_ray_task" in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_sigkill_under_ray_then_resume(tmp_path):
    """``trainlab bench --executor ray`` (starting its own local Ray) killed with SIGKILL after
    its first trial: its Ray workers stop running trials, and ``--resume`` on a new Ray runs
    exactly the unfinished trials."""
    db = tmp_path / "s.db"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
    base = [sys.executable, "-m", "trainlab", "bench", "--store", str(db), "--quiet", "--jobs",
            "2", "--threads", "1", "--executor", "ray"]  # fmt: skip
    # 8 trials on 2 jobs: the first finish leaves at least 6 to kill (with 4 a loaded machine
    # once saw every trial finish between two polls)
    plan = ["-w", "digits_cnn", "-a", "adamw,nadamw", "--trials", "4", "--studies", "1",
            "--eval-every-steps", "5", "--max-steps", "40", "--targets", "class"]  # fmt: skip
    proc = subprocess.Popen(
        [*base, *plan], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip

    def statuses() -> dict[int, str]:
        try:
            with Store(db) as store:
                return {t["id"]: t["status"] for t in store.trials()}
        except Exception:  # not created yet
            return {}

    deadline = time.monotonic() + 240
    while not any(s in FINISHED for s in statuses().values()):
        if proc.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"benchmark ended before the kill: {proc.stderr.read()!r}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60
    while ray_task_workers(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ray_task_workers(proc.pid) == [], "Ray workers ran on after the benchmark died"

    with Store(db) as store:
        before = {t["id"]: t for t in store.trials()}
    finished = {i: t for i, t in before.items() if t["status"] in FINISHED}
    assert len(before) == 8 and finished and len(finished) < 8
    resume = subprocess.run([*base, "--resume"], env=env, capture_output=True, text=True)
    assert resume.returncode == 0, resume.stderr
    with Store(db) as store:
        after = {t["id"]: t for t in store.trials()}
        steps = {i: [e.step for e in store.evaluations(i)] for i in after}
    for trial_id, t in after.items():
        assert t["status"] == "missed", (t["status"], t["error"])
        assert steps[trial_id] == list(range(5, 45, 5))  # no stale or duplicate evaluations
        if trial_id in finished:
            old = finished[trial_id]
            assert (t["started"], t["finished"]) == (old["started"], old["finished"])
