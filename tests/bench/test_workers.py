"""Workers on one PostgreSQL store: four of them, two SIGKILLed mid-trial, finish a 40-trial
benchmark with every trial finished once and the same results as one process (step mode)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from trainlab.bench.store import Store
from trainlab.spec import FINISHED

PLAN = ["-w", "mnist1d_mlp", "-a", "nadamw,heavyball", "--trials", "5", "--studies", "4",
        "--eval-every-steps", "10", "--max-steps", "40", "--targets", "class"]  # fmt: skip


def trainlab(*args, **popen):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "trainlab.cli", *args], env=env, **popen)


def results(store):
    """What each planned trial gave, by its place in the plan."""
    return {
        (t["algorithm"], t["study"], t["trial_index"]):
        (t["status"], t["steps_to_target"], t["best_metric"], t["test_metrics"],
         [(e.step, e.metrics) for e in store.evaluations(t["id"])])
        for t in store.trials()
    }  # fmt: skip


@pytest.mark.slow
def test_four_workers_two_killed_finish_every_trial_once(postgres_url, tmp_path):
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    plan = trainlab("bench", *PLAN, "--plan-only", "--store", postgres_url, **quiet)
    assert plan.wait(timeout=120) == 0, plan.stderr.read()
    workers = [trainlab("worker", "--store", postgres_url, "--jobs", "1", "--threads", "1",
                        "--stale-after", "3", "--quiet", **quiet) for _ in range(4)]  # fmt: skip
    victims = {w.pid: w for w in workers[:2]}
    killed: dict[int, int] = {}  # pid -> the trial it held when killed
    deadline = time.monotonic() + 300
    with Store(postgres_url, readonly=True) as store:
        while len(killed) < 2 and time.monotonic() < deadline:
            for t in store.trials(status="running"):
                pid = int((t["owner"] or "::0").split(":")[1])
                if pid in victims and t["started"] and pid not in killed:
                    victims[pid].send_signal(signal.SIGKILL)
                    killed[pid] = t["id"]
            time.sleep(0.05)
    assert len(killed) == 2, "the workers to kill never held a started trial"
    for w in workers[2:]:
        assert w.wait(timeout=600) == 0, w.stderr.read()
    for w in workers[:2]:
        assert w.wait(timeout=10) == -signal.SIGKILL

    single = tmp_path / "single.db"
    one = trainlab("bench", *PLAN, "--jobs", "1", "--threads", "1", "--quiet", "--store",
                   str(single), **quiet)  # fmt: skip
    assert one.wait(timeout=600) == 0, one.stderr.read()

    with Store(postgres_url, readonly=True) as store:
        trials = store.trials()
        assert len(trials) == 40
        assert all(t["status"] in FINISHED for t in trials)
        survivors = {str(w.pid) for w in workers[2:]}
        for trial_id in killed.values():  # taken over by a surviving worker, and finished
            assert store.trial(trial_id)["owner"].split(":")[1] in survivors
        shared = results(store)
    with Store(single, readonly=True) as store:
        alone = results(store)
    assert shared == alone
