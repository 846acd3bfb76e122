"""Opening a results store: a SQLite file or a PostgreSQL database, checked before it is touched.

:func:`open_engine` turns ``--store`` (a path, or ``postgresql://USER[:PASSWORD]@HOST:PORT/DB``)
into a SQLAlchemy engine, and guarantees what the store promises its users:

* **A foreign file or database is never modified.** An existing SQLite file is first read
  through a read-only connection (``mode=ro``: SQLite writes nothing, not even its journal
  mode); unless its header carries trainlab's application id it is refused, byte for byte
  unchanged. A PostgreSQL database with tables but no ``trainlab_meta`` is refused likewise.
* **A new store appears whole.** A new SQLite store is built under a temporary name in the same
  folder (schema, application id, version, WAL mode) and then linked into place with
  ``os.link``, which fails if the name exists: two processes creating the same store at once
  both end up with the one that was linked first, and no process can see a half-made store. A
  new PostgreSQL store is built in one transaction under an advisory lock.
* **Versions are explicit.** A store of another schema version is refused, with
  ``trainlab migrate`` as the way forward for an older one (:func:`migrate`).
* **Read-only means read-only.** ``readonly=True`` opens PostgreSQL with
  ``default_transaction_read_only`` and SQLite with ``immutable=1`` when no write-ahead log
  lies beside the file (no writer at work: the file is the whole store, and nothing is created
  beside it) or when the file or its folder cannot be written (a read-only share), else with
  ``mode=ro``, which reads a live writer's log. The one gap: a writer that starts and
  checkpoints while an immutable reader reads may show that reader an inconsistent page (a
  one-line error; rerun the command).
* **Two writers wait, they do not fail.** SQLite runs in WAL mode with a 60 s busy timeout, and
  every write transaction starts with ``BEGIN IMMEDIATE`` (a deferred transaction that reads and
  then writes can fail at once with "database is locked" whatever the timeout: the failure
  Optuna's users reported in optuna#820 and #6036).
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlab.bench import store_schema as schema
from trainlab.errors import StoreError

#: seconds a SQLite writer waits for another one before giving up
BUSY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Location:
    """Where a store is: ``kind`` ``sqlite`` (``target`` a path) or ``postgresql`` (a URL)."""

    kind: str
    target: str

    @classmethod
    def parse(cls, text: str | os.PathLike) -> Location:
        text = os.fspath(text)
        if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            return cls("postgresql", text)
        if "://" in text:
            scheme = text.split("://", 1)[0]
            raise StoreError(f"unknown store URL scheme {scheme!r}; use a file path or "
                             "postgresql://USER@HOST:PORT/DB")  # fmt: skip
        return cls("sqlite", text)

    def __str__(self) -> str:
        """The location as a user may see it (a password is hidden)."""
        if self.kind != "postgresql":
            return self.target
        from sqlalchemy.engine import make_url

        return make_url(self.target).render_as_string(hide_password=True)


def describe_db_error(exc: BaseException) -> str:
    """The first line of a database driver's message, without SQLAlchemy's decorations."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def store_error(location: Location, exc: BaseException) -> StoreError:
    """A one-line :class:`StoreError` for a database failure, naming the common causes."""
    message = describe_db_error(exc)
    low = message.lower()
    if "malformed" in low or "not a database" in low or "file is encrypted" in low:
        return StoreError(f"the results store {location} is damaged ({message})")
    if "full" in low or "no space" in low:
        return StoreError(f"the results store {location} is full ({message}); free space and "
                          "rerun: finished trials are kept")  # fmt: skip
    if "readonly" in low or "read-only" in low:
        return StoreError(f"the results store {location} is read-only ({message})")
    return StoreError(f"the results store {location}: {message}")


# --------------------------------------------------------------------------------------------
# SQLite


def _sqlite_identity(path: Path, verify: bool = True) -> tuple[int, int, set[str]]:
    """``(application_id, user_version, table names)`` read without writing a byte.

    Only SQLite opens the file: closing any other descriptor of it (a plain ``open``) would
    drop every POSIX lock this process holds on the store through its SQLite connections, and
    another process could then checkpoint and delete the write-ahead log under them (SQLite's
    "how to corrupt" note, section 2.2)."""
    if path.stat().st_size == 0:
        raise StoreError(f"{path} is not a trainlab results store (an empty file); it was left "
                         "unchanged")  # fmt: skip
    conn = _sqlite_connect(path, readonly=True)
    try:
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if verify and (app == schema.APPLICATION_ID or schema.LEGACY_TABLES <= tables):
            # ours: damage anywhere (an index page, say) stops every command here
            if conn.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed (SQLite's "
                                            "quick_check failed)")  # fmt: skip
    finally:
        conn.close()
    return int(app), int(version), tables


def _sqlite_connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection with foreign keys on. A read-only one is ``immutable`` only when no
    write-ahead log lies beside the file: then no connection of this process is open on it
    (an immutable connection takes no locks, and closing its file would drop the POSIX locks
    this process holds through other connections), and nothing is created beside it."""
    uri = Path(path).resolve().as_uri()
    if readonly:
        # with no write-ahead log beside it the file holds the whole store and no writer is at
        # work: read it as immutable, which leaves no -wal/-shm files behind (a mode=ro reader
        # of a WAL database creates them); otherwise read the log too, where that is possible
        writable = os.access(path, os.W_OK) and os.access(Path(path).parent or ".", os.W_OK)
        live = Path(f"{path}-wal").exists()
        uri += "?mode=ro" if writable and live else "?immutable=1"
    else:
        uri += "?mode=rw"
    conn = sqlite3.connect(
        uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def check_sqlite(path: Path, version_wanted: int = schema.SCHEMA_VERSION,
                 verify: bool = True) -> int:  # fmt: skip
    """The schema version of the trainlab store at ``path``; :class:`StoreError` when it is not
    one, or not of ``version_wanted``."""
    try:
        app, version, tables = _sqlite_identity(path, verify)
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreError(f"{path} is not a trainlab results store (not a SQLite file); it "
                             "was left unchanged") from None  # fmt: skip
        raise store_error(Location("sqlite", str(path)), exc) from None
    if app == 0 and version == 0 and schema.LEGACY_TABLES <= tables:
        version = 1
    elif app != schema.APPLICATION_ID:
        raise StoreError(f"{path} is not a trainlab results store (a SQLite file of another "
                         "program); it was left unchanged")  # fmt: skip
    _check_version(str(path), version, version_wanted)
    return version


def _check_version(where: str, version: int, wanted: int) -> None:
    if version > schema.SCHEMA_VERSION:
        raise StoreError(f"the results store {where} was written by a newer trainlab (schema "
                         f"{version}, this trainlab reads {schema.SCHEMA_VERSION}); upgrade "
                         "trainlab")  # fmt: skip
    if version != wanted:
        raise StoreError(f"the results store {where} has schema {version}, this trainlab uses "
                         f"{schema.SCHEMA_VERSION}: run `trainlab migrate --store {where}` to "
                         "upgrade it (a backup copy is kept)")  # fmt: skip


def _sqlite_engine(path: Path, readonly: bool):
    from sqlalchemy import create_engine, event

    engine = create_engine(
"sqlite://", creator=lambda: _sqlite_connect(path, readonly))

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # see the module docstring: writers take the lock up front
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _create_sqlite(path: Path) -> None:
    """Build a new store beside ``path`` and link it into place (no-op if ``path`` appears)."""
    from sqlalchemy import create_engine

    path.parent.mkdir(exist_ok=True)  # one level (trainlab-runs/); a mistyped path fails
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.new")
    try:
        conn = sqlite3.connect(tmp)
        conn.execute(f"PRAGMA application_id={schema.APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        engine = create_engine(f"sqlite:///{tmp}")
        schema.metadata.create_all(engine)
        engine.dispose()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use that one
        except OSError:  # a filesystem without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# PostgreSQL


def _postgres_url(target: str) -> str:
    scheme, rest = target.split("://", 1)
    return "postgresql+psycopg://" + rest


def _postgres_engine(location: Location, readonly: bool, create: bool, check: bool = True):
    from sqlalchemy import create_engine, inspect, select, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(
            "a postgresql:// store needs psycopg 3 (pip install 'trainlab[postgres]')"
        ) from None
    args: dict[str, Any] = {"connect_timeout": 10}
    if readonly:
        args["options"] = "-c default_transaction_read_only=on"
    engine = create_engine(_postgres_url(location.target), connect_args=args, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            if schema.meta.name not in names and not names and create and not readonly:
                conn.commit()
                with engine.begin() as tx:
                    tx.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                               {"k": schema.APPLICATION_ID})  # fmt: skip
                    if not set(inspect(tx).get_table_names()):
                        schema.metadata.create_all(tx)
                        tx.execute(schema.meta.insert(), [
                            {"key": "application", "value": schema.APPLICATION_NAME},
                            {"key": "schema_version", "value": str(schema.SCHEMA_VERSION)},
                        ])  # fmt: skip
                names = set(inspect(conn).get_table_names())
            if schema.meta.name not in names:
                what = "an empty database" if not names else "a database of another program"
                raise StoreError(f"{location} is not a trainlab results store ({what}); it was "
                                 "left unchanged")  # fmt: skip
            facts = dict(conn.execute(select(schema.meta.c.key, schema.meta.c.value)).all())
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the results store {location}: "
                         f"{describe_db_error(exc)}") from None  # fmt: skip
    if facts.get("application") != schema.APPLICATION_NAME:
        engine.dispose()
        raise StoreError(f"{location} is not a trainlab results store; it was left unchanged")
    if check:
        _check_version(str(location), int(facts.get("schema_version", 0)), schema.SCHEMA_VERSION)
    return engine


# --------------------------------------------------------------------------------------------


def open_engine(
    location: Location, *, readonly: bool = False, create: bool = True, verify: bool = True
):
    """A SQLAlchemy engine on a checked trainlab store (see the module docstring).

    Raises :class:`StoreError` (one line) when the store is missing (and not to be created),
    not a trainlab store, of another schema version, damaged or unreachable."""
    if location.kind == "postgresql":
        return _postgres_engine(location, readonly, create)
    path = Path(location.target)
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a results store")
    if not path.exists():
        if readonly or not create:
            raise StoreError(f"no results store at {path} (run `trainlab run` or `trainlab bench`)")
        try:
            _create_sqlite(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot create the results store {path}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None  # fmt: skip
    check_sqlite(path, verify=verify)
    if not readonly and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        raise StoreError(f"the results store {path} is read-only (its file or folder cannot be "
                         "written); read commands (show, score, report) still work")  # fmt: skip
    return _sqlite_engine(path, readonly)


def migrate(location: Location) -> tuple[int, int, str | None]:
    """Upgrade an older store to :data:`~trainlab.bench.store_schema.SCHEMA_VERSION`, in one
    transaction that adds the columns of the versions in between. A SQLite store is first
    copied (``FILE.schemaN-TIMESTAMP.bak`` beside it, through SQLite's backup API, so a store in
    use is copied consistently); a PostgreSQL store is not (``pg_dump`` it first if you want a
    copy: the upgrade only adds columns). Returns ``(from, to, backup path or None)``."""
    if location.kind == "postgresql":
        return _migrate_postgres(location)
    path = Path(location.target)
    if not path.is_file():
        raise StoreError(f"no results store at {path}")
    try:
        app, version, tables = _sqlite_identity(path)
    except sqlite3.DatabaseError as exc:
        raise store_error(location, exc) from None
    if app == 0 and version == 0 and schema.LEGACY_TABLES <= tables:
        version = 1
    elif app != schema.APPLICATION_ID:
        raise StoreError(f"{path} is not a trainlab results store; it was left unchanged")
    if version >= schema.SCHEMA_VERSION:
        _check_version(str(path), version, version)  # a newer one is refused
        return version, version, None
    backup = path.with_name(f"{path.name}.schema{version}-{time.strftime('%Y%m%d-%H%M%S')}.bak")
    src = _sqlite_connect(path, readonly=False)
    try:
        dst = sqlite3.connect(backup)
        src.backup(dst)
        dst.close()
        src.execute("BEGIN IMMEDIATE")
        for table, name in schema.columns_since(version):
            have = {r[1] for r in src.execute(f"PRAGMA table_info({table})")}
            if name not in have:
                src.execute(f"ALTER TABLE {table} ADD COLUMN {_sqlite_column(table, name)}")
        src.execute(f"PRAGMA application_id={schema.APPLICATION_ID}")
        src.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION}")
        src.execute("COMMIT")
        src.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        if src.in_transaction:
            src.execute("ROLLBACK")
        raise store_error(location, exc) from None
    finally:
        src.close()
    return version, schema.SCHEMA_VERSION, str(backup)


def _migrate_postgres(location: Location) -> tuple[int, int, None]:
    from sqlalchemy import select, text, update
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.exc import SQLAlchemyError

    engine = _postgres_engine(location, readonly=False, create=False, check=False)
    try:
        with engine.begin() as tx:
            tx.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": schema.APPLICATION_ID})
            key = schema.meta.c.key
            version = int(tx.execute(select(schema.meta.c.value).where(
                key == "schema_version")).scalar_one())  # fmt: skip
            if version >= schema.SCHEMA_VERSION:
                _check_version(str(location), version, version)  # a newer one is refused
                return version, version, None
            for table, name in schema.columns_since(version):
                ddl = schema.column_ddl(schema.metadata.tables[table], name, postgresql.dialect())
                tx.execute(text(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {ddl}"))
            tx.execute(update(schema.meta).where(key == "schema_version").values(
                value=str(schema.SCHEMA_VERSION)))  # fmt: skip
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade the results store {location}: "
                         f"{describe_db_error(exc)}") from None  # fmt: skip
    finally:
        engine.dispose()
    return version, schema.SCHEMA_VERSION, None


def _sqlite_column(table: str, name: str) -> str:
    from sqlalchemy.dialects import sqlite

    return schema.column_ddl(schema.metadata.tables[table], name, sqlite.dialect())

