"""The results store: SQLite in WAL mode, one transaction per state change.

Tables: ``benchmarks`` (one per ``trainlab bench`` invocation, with its full configuration),
``trials`` (algorithm, workload, hyperparameters, seed, status, times, steps; ``benchmark_id``,
``study`` and ``trial_index`` place a trial inside a benchmark) and ``evaluations`` (trial,
step, timed seconds, metrics as JSON). Every evaluation is committed when it happens, so a
killed process loses at most the trial in flight.

Trial status: ``pending`` (planned by a benchmark) -> ``running`` -> ``reached`` | ``missed`` |
``diverged`` | ``failed``. The :class:`Store` methods are the interface; a server database
behind the same methods is how several machines would share one study.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trainlab.spec import FINISHED, EvalRecord, Target, TrainlabError, WorkloadSpec

DEFAULT_STORE = Path("trainlab-runs") / "trainlab.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS benchmarks (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,
    config TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    benchmark_id INTEGER REFERENCES benchmarks(id),
    study INTEGER,
    trial_index INTEGER,
    workload TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    algorithm TEXT NOT NULL,
    hyperparameters TEXT NOT NULL,
    seed INTEGER NOT NULL,
    mode TEXT NOT NULL,
    eval_every_steps INTEGER,
    max_runtime REAL,
    max_steps INTEGER,
    target_metric TEXT,
    target_value REAL,
    higher_is_better INTEGER,
    status TEXT NOT NULL,
    time_to_target REAL,
    steps_to_target INTEGER,
    timed_seconds REAL,
    eval_seconds REAL,
    wall_seconds REAL,
    n_evals INTEGER,
    steps INTEGER,
    best_metric REAL,
    test_metrics TEXT,
    error TEXT,
    host TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS trials_by_benchmark ON trials(benchmark_id, status);
CREATE TABLE IF NOT EXISTS evaluations (
    trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    timed_seconds REAL NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (trial_id, step)
);
"""

#: columns added after the first schema: (table, column, type). Opening a store adds the ones
#: it lacks, so a store written by an earlier trainlab keeps working (its old rows read None).
ADDED_COLUMNS = (
    # the trial's resolved spec (planned once, read back by the worker)
    ("trials", "eval_period", "REAL"),
    ("trials", "step_hint", "INTEGER"),
    ("trials", "target_source", "TEXT"),
    # measures beside wall-clock time-to-target
    ("trials", "cpu_seconds", "REAL"),
    ("trials", "cpu_time_to_target", "REAL"),
    ("trials", "ref_steps_to_target", "REAL"),
    ("trials", "reference_step_seconds", "REAL"),
    ("trials", "median_step_seconds", "REAL"),
    ("trials", "flops_per_step", "REAL"),
    ("trials", "flops_to_target", "REAL"),
    ("trials", "contended", "INTEGER"),
    ("evaluations", "train_loss", "REAL"),
    ("evaluations", "lr", "REAL"),
)

# JSON cannot hold inf/nan in strict mode; the store writes them as null in float columns
_JSON_COLUMNS = ("hyperparameters", "test_metrics")


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or x != x or x in (float("inf"), float("-inf")) else x


def _eval_record(row: sqlite3.Row) -> EvalRecord:
    return EvalRecord(
        row["step"], row["timed_seconds"], json.loads(row["metrics"]), row["train_loss"], row["lr"]
    )


def spec_of_row(row: dict[str, Any]) -> WorkloadSpec | None:
    """The spec a trial row was planned with (``None`` for a row from before specs were
    stored: the worker then uses the workload's class spec with the row's target)."""
    if row.get("step_hint") is None or row.get("eval_period") is None:
        return None
    step_mode = row["mode"] == "steps"
    return WorkloadSpec(
        target=Target(row["target_metric"], float(row["target_value"]),
                      bool(row["higher_is_better"])),
        max_runtime=float(row["max_runtime"]),
        eval_period=float(row["eval_period"]),
        step_hint=int(row["step_hint"]),
        source=row.get("target_source") or "class",
        eval_every_steps=row["eval_every_steps"] if step_mode else None,
        max_steps=row["max_steps"] if step_mode else None,
    )  # fmt: skip


class Store:
    """A SQLite results store. Safe to open from several processes at once (WAL + busy wait)."""

    def __init__(self, path: str | Path = DEFAULT_STORE) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
            self._add_missing_columns()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise TrainlabError(f"cannot open results store {self.path}: {exc}") from None

    def _add_missing_columns(self) -> None:
        for table, column, kind in ADDED_COLUMNS:
            have = {r["name"] for r in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement in its own transaction (committed on return)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn.execute(sql, tuple(params))

    # -- benchmarks ---------------------------------------------------------------------------
    def get_or_create_benchmark(self, key: str, config: dict[str, Any]) -> tuple[int, bool]:
        """The benchmark with this key (its configuration's fingerprint); created if new."""
        row = self.conn.execute("SELECT id FROM benchmarks WHERE key = ?", (key,)).fetchone()
        if row:
            return int(row["id"]), False
        cur = self._write(
            "INSERT INTO benchmarks (key, config, created) VALUES (?, ?, ?)",
            (key, json.dumps(config, sort_keys=True), time.time()),
        )
        return int(cur.lastrowid), True

    def benchmarks(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM benchmarks ORDER BY id").fetchall()
        return [{**dict(r), "config": json.loads(r["config"])} for r in rows]

    def benchmark(self, benchmark_id: int | None = None) -> dict[str, Any]:
        """A benchmark by id, or the latest one."""
        if benchmark_id is None:
            row = self.conn.execute("SELECT * FROM benchmarks ORDER BY id DESC LIMIT 1").fetchone()
        else:
            row = self.conn.execute(
                "SELECT * FROM benchmarks WHERE id = ?", (benchmark_id,)
            ).fetchone()
        if row is None:
            if benchmark_id is None:
                raise TrainlabError(
                    f"the store {self.path} has no benchmarks yet (run `trainlab bench` first)"
                )
            raise TrainlabError(f"the store {self.path} has no benchmark {benchmark_id}")
        return {**dict(row), "config": json.loads(row["config"])}

    # -- trials -------------------------------------------------------------------------------
    def create_trial(self, **fields: Any) -> int:
        """Insert a trial row (status ``pending`` unless given) and return its id."""
        fields.setdefault("status", "pending")
        fields.setdefault("created", time.time())
        fields["hyperparameters"] = json.dumps(fields.get("hyperparameters", {}), sort_keys=True)
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self._write(f"INSERT INTO trials ({names}) VALUES ({marks})", fields.values())
        return int(cur.lastrowid)

    def create_trials(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert several trial rows (as :meth:`create_trial`) in one transaction: a benchmark's
        plan appears whole or not at all."""
        ids = []
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for fields in rows:
                fields = dict(fields)
                fields.setdefault("status", "pending")
                fields.setdefault("created", now)
                hp = fields.get("hyperparameters", {})
                fields["hyperparameters"] = json.dumps(hp, sort_keys=True)
                names = ", ".join(fields)
                marks = ", ".join("?" for _ in fields)
                cur = self.conn.execute(
                    f"INSERT INTO trials ({names}) VALUES ({marks})", tuple(fields.values())
                )
                ids.append(int(cur.lastrowid))
        return ids

    def start_trial(self, trial_id: int) -> None:
        """Mark running; evaluations left by an earlier, killed attempt are discarded."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM evaluations WHERE trial_id = ?", (trial_id,))
            self.conn.execute(
                "UPDATE trials SET status = 'running', started = ?, host = ? WHERE id = ?",
                (time.time(), socket.gethostname(), trial_id),
            )

    def add_evaluation(self, trial_id: int, record: EvalRecord) -> None:
        self._write(
            "INSERT OR REPLACE INTO evaluations "
            "(trial_id, step, timed_seconds, metrics, train_loss, lr) VALUES (?, ?, ?, ?, ?, ?)",
            (
                trial_id,
                record.step,
                record.timed_seconds,
                json.dumps(record.metrics),
                _finite_or_none(record.train_loss),
                record.lr,
            ),
        )

    def finish_trial(self, trial_id: int, **fields: Any) -> None:
        """Write the final status and figures of a trial."""
        if fields.get("status") not in FINISHED:
            raise ValueError(f"finish_trial needs a final status, got {fields.get('status')!r}")
        fields["finished"] = time.time()
        for key in ("time_to_target", "cpu_time_to_target", "ref_steps_to_target", "best_metric"):
            if key in fields:
                fields[key] = _finite_or_none(fields[key])
        if "test_metrics" in fields and fields["test_metrics"] is not None:
            fields["test_metrics"] = json.dumps(fields["test_metrics"])
        assignments = ", ".join(f"{k} = ?" for k in fields)
        self._write(f"UPDATE trials SET {assignments} WHERE id = ?", [*fields.values(), trial_id])

    def trial(self, trial_id: int) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        if row is None:
            raise TrainlabError(f"no trial {trial_id} in {self.path}")
        return self._decode(row)

    def trials(
        self,
        benchmark_id: int | None = None,
        status: str | None = None,
        limit: int | None = None,
        latest_first: bool = False,
    ) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM trials WHERE 1=1", []
        if benchmark_id is not None:
            sql += " AND benchmark_id = ?"
            params.append(benchmark_id)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY id DESC" if latest_first else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._decode(r) for r in self.conn.execute(sql, params).fetchall()]

    def evaluations(self, trial_id: int) -> list[EvalRecord]:
        rows = self.conn.execute(
            "SELECT * FROM evaluations WHERE trial_id = ? ORDER BY step", (trial_id,)
        ).fetchall()
        return [_eval_record(r) for r in rows]

    # -- queries for benchmarks, scoring and reports (read-only) --------------------------------
    def latest_evaluations(self, trial_ids: Iterable[int]) -> dict[int, EvalRecord]:
        """The most recent evaluation of each of ``trial_ids`` that has one."""
        ids = [int(i) for i in trial_ids]
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = self.conn.execute(
            "SELECT e.* FROM evaluations e "
            "JOIN (SELECT trial_id, MAX(step) AS step FROM evaluations "
            f"WHERE trial_id IN ({marks}) "
            "GROUP BY trial_id) last ON e.trial_id = last.trial_id AND e.step = last.step",
            ids,
        ).fetchall()
        return {r["trial_id"]: _eval_record(r) for r in rows}

    def status_counts(self, benchmark_id: int) -> dict[str, int]:
        """How many trials of a benchmark are in each status."""
        rows = self.conn.execute(
            "SELECT status, COUNT(*) AS n FROM trials WHERE benchmark_id = ? GROUP BY status",
            (benchmark_id,),
        ).fetchall()
        return {r["status"]: int(r["n"]) for r in rows}

    def eval_share(self, benchmark_id: int) -> float | None:
        """Untimed evaluation seconds as a fraction of wall seconds, over a benchmark's
        finished trials (``None`` when none has finished)."""
        row = self.conn.execute(
            "SELECT SUM(eval_seconds) AS e, SUM(wall_seconds) AS w FROM trials "
            "WHERE benchmark_id = ? AND wall_seconds > 0",
            (benchmark_id,),
        ).fetchone()
        return None if not row["w"] else float(row["e"]) / float(row["w"])

    def studies(self, benchmark_id: int) -> list[dict[str, Any]]:
        """One row per (workload, variant, algorithm, study) of a benchmark: its trial count,
        how many are finished and reached the target, and its fastest time and step count to
        the target (None when no trial reached it)."""
        rows = self.conn.execute(
            "SELECT workload, variant, algorithm, study, COUNT(*) AS trials, "
            f"SUM(status IN ({', '.join(repr(str(s)) for s in sorted(FINISHED))})) AS finished, "
            "SUM(status = 'reached') AS reached, "
            "MIN(CASE WHEN status = 'reached' THEN time_to_target END) AS time_to_target, "
            "MIN(CASE WHEN status = 'reached' THEN steps_to_target END) AS steps_to_target "
            "FROM trials WHERE benchmark_id = ? "
            "GROUP BY workload, variant, algorithm, study "
            "ORDER BY workload, variant, algorithm, study",
            (benchmark_id,),
        ).fetchall()
        return [dict(r) for r in rows]

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        for key in _JSON_COLUMNS:
            if out.get(key) is not None:
                out[key] = json.loads(out[key])
        return out
