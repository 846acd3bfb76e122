"""The store interface, run against both backends: SQLite and a real PostgreSQL server.

Round trips, claims (atomic, fenced, taken over after a stale heartbeat, released), planning
a benchmark from two places at once, read-only opening, foreign databases and newer schemas.
"""

import threading
import time

import pytest
import sqlalchemy as sa

from trainlab.bench.store import Store
from trainlab.bench.store_schema import SCHEMA_VERSION
from trainlab.errors import ClaimLost, StoreError
from trainlab.spec import EvalRecord


def _row(k: int, **extra):
    return dict(workload="w", algorithm="a", hyperparameters={"lr": 0.1 * (k + 1)}, seed=k,
                mode="steps", study=0, trial_index=k, **extra)  # fmt: skip


def _slot(row):
    return (row["study"], row["trial_index"])


def test_round_trip_and_queries(location):
    with Store(location) as store:
        bid, created = store.plan_benchmark("key", {"options": {}}, [_row(0), _row(1)], _slot)
        assert created
        assert store.plan_benchmark("key", {"options": {}}, [_row(0), _row(1)], _slot) == (
            bid, False)  # fmt: skip
        t0, t1 = (t["id"] for t in store.trials(benchmark_id=bid))
        assert store.claim(t0)
        store.start_trial(t0)
        store.add_evaluation(t0, EvalRecord(10, 1.5, {"acc": 0.5}, 0.7, 0.1))
        store.add_evaluation(t0, EvalRecord(20, 3.0, {"acc": 0.9}, float("nan"), 0.05))
        store.finish_trial(t0, status="reached", time_to_target=3.0, steps_to_target=20,
                           wall_seconds=4.0, eval_seconds=1.0, best_metric=0.9,
                           test_metrics={"acc": 0.88})  # fmt: skip
        t = store.trial(t0)
        assert t["status"] == "reached" and t["test_metrics"] == {"acc": 0.88}
        assert t["hyperparameters"] == {"lr": 0.1}
        assert [(e.step, e.metrics, e.train_loss) for e in store.evaluations(t0)] == [
            (10, {"acc": 0.5}, 0.7), (20, {"acc": 0.9}, None)]  # fmt: skip
        assert store.latest_evaluations([t0, t1]) == {t0: store.evaluations(t0)[1]}
        assert store.status_counts(bid) == {"reached": 1, "pending": 1}
        assert store.eval_share(bid) == pytest.approx(0.25)
        (study,) = store.studies(bid)
        assert study["trials"] == 2 and study["finished"] == 1 and study["reached"] == 1
        assert study["time_to_target"] == 3.0 and study["steps_to_target"] == 20


def test_claims_are_exclusive_fenced_and_taken_over_when_stale(location):
    with Store(location, stale_after=1.0) as a, Store(location, stale_after=1.0) as b:
        bid, _ = a.plan_benchmark("k", {}, [_row(k) for k in range(3)], _slot)
        first, second = a.claim_next(bid), b.claim_next(bid)
        assert first != second and {first, second} <= {t["id"] for t in a.trials()}
        assert not b.claim(first)  # held by a live process
        with pytest.raises(ClaimLost):
            b.add_evaluation(first, EvalRecord(1, 0.1, {}))
        with pytest.raises(ClaimLost):
            b.finish_trial(first, status="missed")
        a._beating.set()  # a's heartbeat stops (its process hangs, say)
        time.sleep(1.6)
        c = Store(location, stale_after=1.0)
        try:
            taken = {c.claim_next(bid), c.claim_next(bid), c.claim_next(bid)}
            # a's trial went stale and was taken over; b's heartbeat kept its own; the third
            # was pending
            assert first in taken and second not in taken
            with pytest.raises(ClaimLost):  # a can no longer write about it
                a.add_evaluation(first, EvalRecord(1, 0.1, {}))
        finally:
            c.close()  # releases what c holds
        assert {t["status"] for t in b.trials() if t["id"] != second} == {"interrupted"}
        assert b.trial(second)["status"] == "running"


def test_the_trials_of_a_dead_local_process_are_given_back_at_once(location):
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:feed"
    with Store(location, owner=dead, heartbeat=False) as killed:  # its process is gone now
        bid, _ = killed.plan_benchmark("k", {}, [_row(0), _row(1)], _slot)
        held = killed.claim_next(bid)
    with Store(location) as live:
        mine = live.claim_next(bid)  # a live owner on this host: not reaped
        assert live.reap_dead_owners() == 1
        assert live.trial(held)["status"] == "interrupted"
        assert live.trial(mine)["status"] == "running"
        assert live.claim_next(bid) == held  # no wait for the heartbeat to go stale


def test_two_processes_planning_at_once_get_one_benchmark(location):
    rows = [_row(k) for k in range(20)]
    results, errors = [], []

    def plan() -> None:
        try:
            with Store(location) as store:
                results.append(store.plan_benchmark("same", {"x": 1}, rows, _slot))
        except Exception as exc:  # pragma: no cover - the failure this test is about
            errors.append(exc)

    threads = [threading.Thread(target=plan) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({bid for bid, _ in results}) == 1 and sum(c for _, c in results) == 1
    with Store(location) as store:
        assert len(store.benchmarks()) == 1 and len(store.trials()) == 20


def test_a_failed_plan_leaves_nothing(location, monkeypatch):
    with Store(location) as store:
        bad = [_row(0), {**_row(1), "no_such_column": 1}]
        with pytest.raises(ValueError):
            store.plan_benchmark("k", {}, bad, _slot)
        assert store.benchmarks() == [] and store.trials() == []


def test_read_only_store_reads_and_refuses_writes(location):
    with Store(location) as store:
        store.create_trial(**_row(0))
    with Store(location, readonly=True) as store:
        assert len(store.trials()) == 1
        with pytest.raises(StoreError, match="read-only"):
            store.create_trial(**_row(1))


def test_a_missing_store_is_not_created_by_a_reader(tmp_path):
    with pytest.raises(StoreError, match="no results store"):
        Store(tmp_path / "none.db", readonly=True)
    assert not (tmp_path / "none.db").exists()


def test_foreign_postgresql_database_is_refused_and_unchanged(postgres_url):
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id int primary key, total numeric)"))
        conn.execute(sa.text("INSERT INTO invoices VALUES (1, 9.5)"))
    for readonly in (False, True):
        with pytest.raises(StoreError, match="not a trainlab results store"):
            Store(postgres_url, readonly=readonly)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["invoices"]
        assert conn.execute(sa.text("SELECT total FROM invoices")).scalar() == 9.5
    engine.dispose()


def test_empty_postgresql_database_is_not_initialised_by_a_reader(postgres_url):
    with pytest.raises(StoreError, match="empty database"):
        Store(postgres_url, readonly=True)
    Store(postgres_url).close()  # a writer initialises it
    Store(postgres_url, readonly=True).close()


def test_newer_schema_is_refused(location):
    Store(location).close()
    if location.startswith("postgresql"):
        engine = sa.create_engine(location.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE trainlab_meta SET value = :v WHERE key = "
                                 "'schema_version'"), {"v": str(SCHEMA_VERSION + 1)})  # fmt: skip
        engine.dispose()
    else:
        import sqlite3

        conn = sqlite3.connect(location)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        conn.close()
    with pytest.raises(StoreError, match="newer trainlab"):
        Store(location, readonly=True)


def test_unreachable_and_wrong_credentials_are_one_line(postgres_url):
    from postgres import url_with

    with pytest.raises(StoreError, match="password authentication failed") as err:
        Store(url_with(postgres_url, password="wrong"))
    assert "\n" not in str(err.value) and "wrong" not in str(err.value)
    with pytest.raises(StoreError, match="cannot open the results store") as err:
        Store("postgresql://nobody@127.0.0.1:1/none")
    assert "\n" not in str(err.value)


def _downgrade_to_version_2(location):
    """A store as trainlab with schema 2 wrote it: without the version-3 columns."""
    dropped = ("model_cost", "stop_reason", "search")
    if location.startswith("postgresql"):
        engine = sa.create_engine(location.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            for name in dropped:
                conn.execute(sa.text(f"ALTER TABLE trials DROP COLUMN {name}"))
            conn.execute(sa.text("UPDATE trainlab_meta SET value = '2' WHERE key = "
                                 "'schema_version'"))  # fmt: skip
        engine.dispose()
    else:
        import sqlite3

        conn = sqlite3.connect(location)
        for name in dropped:
            conn.execute(f"ALTER TABLE trials DROP COLUMN {name}")
        conn.execute("PRAGMA user_version=2")
        conn.commit()
        conn.close()


def test_a_version_2_store_is_refused_then_migrated_keeping_its_trials(location):
    from trainlab.bench.store_backends import Location, migrate

    with Store(location) as store:
        trial_id = store.create_trial(**_row(1))
    _downgrade_to_version_2(location)
    with pytest.raises(StoreError, match="trainlab migrate"):
        Store(location, readonly=True)
    old, new, backup = migrate(Location.parse(location))
    assert (old, new) == (2, SCHEMA_VERSION) == (2, 3)
    assert (backup is None) == location.startswith("postgresql")
    with Store(location) as store:
        (trial,) = store.trials()
        assert trial["id"] == trial_id and trial["seed"] == 1 and trial["model_cost"] is None
        second = store.create_trial(**_row(2), model_cost='{"params": 10}')
        assert store.trial(second)["model_cost"] == {"params": 10}
    assert migrate(Location.parse(location))[:2] == (3, 3)  # nothing to do the second time
