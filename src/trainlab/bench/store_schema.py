"""The results store's schema, its identity and its versions, for SQLite and PostgreSQL alike.

The tables are declared once with SQLAlchemy Core; SQLAlchemy renders them (and every query of
:mod:`trainlab.bench.store`) in the dialect of the store, which is why trainlab uses it rather
than two sets of hand-written SQL: placeholders, auto-increment keys, ``FOR UPDATE SKIP
LOCKED`` and boolean sums differ between the two databases, and a query written once cannot
drift between them.

**Identity.** A store says it is trainlab's before anything touches it: a SQLite file carries
:data:`APPLICATION_ID` in its header (``PRAGMA application_id``; ``file(1)`` shows it) and the
schema version in ``PRAGMA user_version``; a PostgreSQL database carries a ``trainlab_meta``
table with the same two facts. A file or database without them is not opened for writing.

**Versions.** :data:`SCHEMA_VERSION` is the version this trainlab writes. A store of an older
version is refused until ``trainlab migrate`` upgrades it (explicitly, after a backup); a store of
a newer version is refused. Version 1 is the schema of trainlab before stores were versioned
(recognised by its three tables and no application id); version 2 adds the trial claims
(``owner``, ``heartbeat``) and the data-parallel process count (``nproc``), and makes the
version explicit; version 3 adds what a trial's model costs to run (``model_cost``), why a
trial was stopped before its budget (``stop_reason``) and a searcher's record of the trial
(``search``: its rung, population member, parent trial), each a JSON object.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

#: ``PRAGMA application_id`` of a trainlab SQLite store: the bytes "TRLB"
APPLICATION_ID = 0x54524C42
#: the schema version this trainlab reads and writes
SCHEMA_VERSION = 3
#: the ``trainlab_meta`` value of ``application`` in a PostgreSQL store
APPLICATION_NAME = "trainlab"

metadata = MetaData()

benchmarks = Table(
    "benchmarks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, unique=True, nullable=False),
    Column("config", Text, nullable=False),
    Column("created", Float, nullable=False),
)

trials = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("benchmark_id", Integer, ForeignKey("benchmarks.id")),
    Column("study", Integer),
    Column("trial_index", Integer),
    Column("workload", Text, nullable=False),
    Column("variant", Text, nullable=False, server_default=""),
    Column("algorithm", Text, nullable=False),
    Column("hyperparameters", Text, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("mode", Text, nullable=False),
    Column("eval_every_steps", Integer),
    Column("max_runtime", Float),
    Column("max_steps", Integer),
    Column("target_metric", Text),
    Column("target_value", Float),
    Column("higher_is_better", Integer),
    Column("status", Text, nullable=False),
    Column("time_to_target", Float),
    Column("steps_to_target", Integer),
    Column("timed_seconds", Float),
    Column("eval_seconds", Float),
    Column("wall_seconds", Float),
    Column("n_evals", Integer),
    Column("steps", Integer),
    Column("best_metric", Float),
    Column("test_metrics", Text),
    Column("error", Text),
    Column("host", Text),
    Column("created", Float, nullable=False),
    Column("started", Float),
    Column("finished", Float),
    # the trial's resolved spec (planned once, read back by the worker)
    Column("eval_period", Float),
    Column("step_hint", Integer),
    Column("target_source", Text),
    # measures beside wall-clock time-to-target
    Column("cpu_seconds", Float),
    Column("cpu_time_to_target", Float),
    Column("ref_steps_to_target", Float),
    Column("reference_step_seconds", Float),
    Column("median_step_seconds", Float),
    Column("flops_per_step", Float),
    Column("flops_to_target", Float),
    Column("contended", Integer),
    # the claim (version 2): which process holds a running trial, and when it last said so
    Column("owner", Text),
    Column("heartbeat", Float),
    # data-parallel processes of the trial (version 2; 1 or NULL: one process)
    Column("nproc", Integer),
    # version 3, each a JSON object: the evaluated model's cost (parameters, non-zero
    # parameters, FLOPs per example, ...), why the trial stopped before its budget (the
    # prediction of an early-stopping rule, say), and a searcher's record of the trial
    Column("model_cost", Text),
    Column("stop_reason", Text),
    Column("search", Text),
)
Index("trials_by_benchmark", trials.c.benchmark_id, trials.c.status)

evaluations = Table(
    "evaluations",
    metadata,
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("timed_seconds", Float, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("train_loss", Float),
    Column("lr", Float),
)

meta = Table(
    "trainlab_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

#: the tables of a version-1 store (trainlab before versioning): how it is recognised
LEGACY_TABLES = frozenset({"benchmarks", "trials", "evaluations"})
#: columns a version-1 store may lack (it gained them one by one); SQL types for ALTER TABLE
LEGACY_OPTIONAL_COLUMNS = {
    "trials": ("eval_period", "step_hint", "target_source", "cpu_seconds", "cpu_time_to_target",
               "ref_steps_to_target", "reference_step_seconds", "median_step_seconds",
               "flops_per_step", "flops_to_target", "contended"),
    "evaluations": ("train_loss", "lr"),
}  # fmt: skip
#: columns version 2 adds to version 1
VERSION_2_COLUMNS = {"trials": ("owner", "heartbeat", "nproc")}
#: columns version 3 adds to version 2
VERSION_3_COLUMNS = {"trials": ("model_cost", "stop_reason", "search")}
#: what each version adds, in order: migrating from version N adds the entries after N
ADDED_COLUMNS = {1: LEGACY_OPTIONAL_COLUMNS, 2: VERSION_2_COLUMNS, 3: VERSION_3_COLUMNS}


def columns_since(version: int) -> list[tuple[str, str]]:
    """``(table, column)`` pairs a store of ``version`` may lack (version 1 gained some of its
    columns one by one, so a version-1 store is checked for all of them)."""
    first = 1 if version <= 1 else version + 1
    return [(table, name) for v in range(first, SCHEMA_VERSION + 1)
            for table, names in ADDED_COLUMNS[v].items() for name in names]  # fmt: skip


def column_ddl(table: Table, name: str, dialect) -> str:
    """``name TYPE`` of a column, in a dialect's words (for ``ALTER TABLE ... ADD COLUMN``)."""
    column = table.c[name]
    return f"{name} {column.type.compile(dialect=dialect)}"
