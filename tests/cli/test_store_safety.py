"""A store that never harms data: every command against a file that is not a trainlab store,
an older or newer schema, a damaged, full or read-only store, an executor that cannot start, and
two benchmark processes on one SQLite file.

Each failure must be one ``trainlab: error:`` line with exit code 2, and leave every byte of the
user's file as it was."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from trainlab.bench import store_backends
from trainlab.bench.store import Store
from trainlab.bench.store_schema import SCHEMA_VERSION

# the schema of a store written by trainlab before stores were versioned (schema 1)
LEGACY_SCHEMA = """
CREATE TABLE benchmarks (id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL, config TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE trials (id INTEGER PRIMARY KEY, benchmark_id INTEGER REFERENCES benchmarks(id),
    study INTEGER, trial_index INTEGER, workload TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '',
    algorithm TEXT NOT NULL, hyperparameters TEXT NOT NULL, seed INTEGER NOT NULL,
    mode TEXT NOT NULL, eval_every_steps INTEGER, max_runtime REAL, max_steps INTEGER,
    target_metric TEXT, target_value REAL, higher_is_better INTEGER, status TEXT NOT NULL,
    time_to_target REAL, steps_to_target INTEGER, timed_seconds REAL, eval_seconds REAL,
    wall_seconds REAL, n_evals INTEGER, steps INTEGER, best_metric REAL, test_metrics TEXT,
    error TEXT, host TEXT, created REAL NOT NULL, started REAL, finished REAL);
CREATE TABLE evaluations (trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    step INTEGER NOT NULL, timed_seconds REAL NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (trial_id, step));
INSERT INTO trials (workload, algorithm, hyperparameters, seed, mode, status, created,
    steps_to_target) VALUES ('tiny_blobs', 'tiny_sgd', '{}', 0, 'steps', 'reached', 1.0, 15);
"""

RUN = ["run", "-w", "tiny_blobs", "-a", "tiny_sgd", "--eval-every-steps", "5", "--max-steps",
       "10", "--targets", "class", "--quiet"]  # fmt: skip
BENCH = ["bench", "-w", "tiny_blobs", "-a", "tiny_sgd", "--trials", "1", "--studies", "1",
         "--eval-every-steps", "5", "--max-steps", "10", "--targets", "class", "--jobs", "1",
         "--quiet"]  # fmt: skip


def commands(store, out):
    """Every command that opens a store, as argument lists."""
    s = ["--store", str(store)]
    return [RUN + s, BENCH + s, ["bench", "--resume", *s], ["show", *s], ["show", "1", *s],
            ["score", *s], ["compare", "tiny_sgd", "tiny_selftuned", *s],
            ["report", *s, "-o", str(out)], ["worker", *s]]


def files_of(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def assert_one_line_error(result, *words):
    code, out, err = result
    assert code == 2, (code, out, err)
    assert err.startswith("trainlab: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def test_another_programs_sqlite_file_is_refused_and_left_unchanged(tmp_path, cli):
    folder = tmp_path / "data"
    folder.mkdir()
    foreign = folder / "app.db"
    conn = sqlite3.connect(foreign)
    conn.executescript("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');")
    conn.close()
    before = files_of(folder)
    for args in commands(foreign, tmp_path / "report"):
        assert_one_line_error(cli(*args), "not a trainlab results store"), args
        assert files_of(folder) == before, args
    assert not (tmp_path / "report").exists()


def test_a_legacy_store_is_refused_until_migrated_with_a_backup(tmp_path, cli):
    legacy = tmp_path / "old.db"
    conn = sqlite3.connect(legacy)
    conn.executescript(LEGACY_SCHEMA)
    conn.close()
    original = legacy.read_bytes()
    assert_one_line_error(cli("show", "--store", str(legacy)), "trainlab migrate")
    assert legacy.read_bytes() == original
    code, out, _ = cli("migrate", "--store", str(legacy))
    assert code == 0 and f"schema 1 -> {SCHEMA_VERSION}" in out
    (backup,) = tmp_path.glob("old.db.schema1-*.bak")
    assert sqlite3.connect(backup).execute("SELECT steps_to_target FROM trials").fetchall() == [
        (15,)]  # fmt: skip
    with Store(legacy, readonly=True) as store:
        (trial,) = store.trials()
        assert trial["steps_to_target"] == 15 and trial["owner"] is None
    assert cli(*RUN, "--store", str(legacy))[0] == 0  # the migrated store is usable
    code, out, _ = cli("migrate", "--store", str(legacy))
    assert code == 0 and "nothing to do" in out


def test_a_damaged_store_is_one_line_for_every_command(tmp_path, cli, make_store):
    store = tmp_path / "s.db"
    make_store(store)
    data = bytearray(store.read_bytes())
    page = 4096
    data[page:] = b"\xff" * (len(data) - page)  # every page but the header page garbled
    store.write_bytes(bytes(data))
    before = store.read_bytes()
    for args in commands(store, tmp_path / "report"):
        assert_one_line_error(cli(*args), "damaged"), args
    assert store.read_bytes() == before


def test_a_damaged_index_is_found_before_anything_reads_or_writes(tmp_path, cli, make_store):
    store = tmp_path / "s.db"
    make_store(store)
    conn = sqlite3.connect(store)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = "
                           "'trials_by_benchmark'").fetchone()  # fmt: skip
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(store.read_bytes())
    data[(root - 1) * size + 8:root * size] = b"\x07" * (size - 8)  # the index page only
    store.write_bytes(bytes(data))
    before = store.read_bytes()
    for args in commands(store, tmp_path / "report") + [["migrate", "--store", str(store)]]:
        assert_one_line_error(cli(*args), "damaged"), args
    assert store.read_bytes() == before


def test_a_full_store_stops_the_run_without_blaming_the_algorithm(tmp_path, cli, monkeypatch):
    store = tmp_path / "s.db"
    Store(store).close()
    pages = sqlite3.connect(store).execute("PRAGMA page_count").fetchone()[0]
    connect = store_backends._sqlite_connect

    def full(path, readonly):  # the disk is full: the file may not grow
        conn = connect(path, readonly)
        conn.execute(f"PRAGMA max_page_count={pages}")
        return conn

    monkeypatch.setattr(store_backends, "_sqlite_connect", full)
    # a run's evaluations outgrow the file mid-run; a big plan outgrows it at once
    run = [*RUN, "--full-curve", "--eval-every-steps", "1", "--max-steps", "300"]
    plan = [*BENCH, "--trials", "300"]
    for args in (run, plan):
        assert_one_line_error(cli(*args, "--store", str(store)), "is full")
    monkeypatch.undo()
    with Store(store, readonly=True) as s:
        statuses = [t["status"] for t in s.trials()]
        assert s.benchmarks() == []  # the plan was written whole or not at all
    assert statuses == ["interrupted"]  # the run's trial: unfinished, not the algorithm's fault


def test_read_only_commands_work_on_a_store_that_cannot_be_written(tmp_path, cli, make_store,
                                                                   monkeypatch):  # fmt: skip
    store = tmp_path / "s.db"
    make_store(store)
    before = files_of(tmp_path)
    real_access = os.access
    # root ignores file modes: pretend the file and its folder are read-only, as on a share
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else
                        real_access(p, mode))  # fmt: skip
    for args in (["show"], ["show", "1"], ["score"], ["compare", "tiny_sgd", "tiny_selftuned"]):
        code, out, err = cli(*args, "--store", str(store))
        assert code == 0, (args, err)
    assert cli("report", "--store", str(store), "-o", str(tmp_path.parent / "r"))[0] == 0
    assert files_of(tmp_path) == before  # not a byte written, no journal left


def test_no_store_is_written_when_the_executor_cannot_start(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # ray is not installed
    store = tmp_path / "s.db"
    assert_one_line_error(cli(*BENCH, "--executor", "ray", "--store", str(store)), "ray")
    Store(store).close()
    before = store.read_bytes()
    assert_one_line_error(cli(*BENCH, "--executor", "ray", "--store", str(store)), "ray")
    assert store.read_bytes() == before
    with Store(store, readonly=True) as s:
        assert s.benchmarks() == []


@pytest.mark.slow
def test_two_bench_processes_share_one_sqlite_store(tmp_path):
    """Two `trainlab bench` processes on one file, at once: no "database is locked", and every
    trial is trained once (the two processes' `ran` add up to the plan)."""
    store = tmp_path / "s.db"
    args = [sys.executable, "-m", "trainlab.cli", "bench", "-w", "mnist1d_mlp", "-a",
            "nadamw,heavyball", "--trials", "3", "--studies", "2", "--eval-every-steps", "20",
            "--max-steps", "40", "--targets", "class", "--jobs", "1", "--quiet", "--json",
            "--store", str(store)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(2)]  # fmt: skip
    results = [p.communicate(timeout=600) for p in procs]
    for (_out, err), p in zip(results, procs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    runs = [json.loads(out) for out, _ in results]
    assert runs[0]["benchmark_id"] == runs[1]["benchmark_id"]
    assert runs[0]["ran"] + runs[1]["ran"] == runs[0]["total"] == 12
    with Store(store, readonly=True) as s:
        assert s.status_counts(runs[0]["benchmark_id"]).get("missed", 0) + s.status_counts(
            runs[0]["benchmark_id"]).get("reached", 0) == 12  # fmt: skip
