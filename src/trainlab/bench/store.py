"""The results store: SQLite or PostgreSQL behind one interface, one transaction per change.

Tables (declared once in :mod:`trainlab.bench.store_schema`): ``benchmarks`` (one per planned
benchmark, with its full configuration), ``trials`` (algorithm, workload, hyperparameters, seed,
resolved spec, status, times, steps, and the claim: ``owner``, ``heartbeat``) and
``evaluations`` (trial, step, timed seconds, metrics as JSON). Every evaluation is committed
when it happens, so a killed process loses at most the trials it held.

Trial status: ``pending`` (planned) -> ``running`` -> ``reached`` | ``missed`` | ``diverged`` |
``stopped-early`` | ``failed``; ``interrupted`` (a benchmark trial stopped by Ctrl-C, a store
failure or a lost claim) is unfinished, like ``pending``.

**Claims.** A process runs a trial only after claiming it: one conditional ``UPDATE`` (or, for
"the next one", ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL and a ``BEGIN IMMEDIATE``
transaction on SQLite) moves it to ``running`` with the process's ``owner`` token, so no two
processes ever train the same trial. The claiming process refreshes ``heartbeat`` every
``stale_after / 4`` seconds from a thread; a ``running`` trial whose heartbeat is older than
``stale_after`` seconds belongs to a dead process and may be claimed again (Optuna's RDB
heartbeat is the model). Every write about a trial (start, evaluation, result) checks the owner,
so a process that lost its claim cannot overwrite its successor's results
(:class:`~trainlab.errors.ClaimLost`). Closing a store releases the trials it still holds as
``interrupted``, so a resume after Ctrl-C need not wait for the heartbeat to go stale.

Every database failure surfaces as one :class:`~trainlab.errors.StoreError` line.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from trainlab.bench.store_backends import Location, open_engine, store_error
from trainlab.bench.store_schema import benchmarks as B
from trainlab.bench.store_schema import evaluations as E
from trainlab.bench.store_schema import trials as T
from trainlab.errors import ClaimLost, StoreError
from trainlab.spec import FINISHED, EvalRecord, TrainlabError

DEFAULT_STORE = Path("trainlab-runs") / "trainlab.db"
#: seconds without a heartbeat after which a running trial is taken to be orphaned
STALE_AFTER = 60.0
#: statuses a claim may take a trial from (besides a ``running`` one gone stale)
CLAIMABLE = ("pending", "interrupted")
# JSON cannot hold inf/nan in strict mode; the store writes them as null in float columns
_JSON_COLUMNS = ("hyperparameters", "test_metrics", "search", "model_cost", "stop_reason")


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or x != x or x in (float("inf"), float("-inf")) else x


def _eval_record(row: Any) -> EvalRecord:
    return EvalRecord(
        row["step"], row["timed_seconds"], json.loads(row["metrics"]), row["train_loss"], row["lr"]
    )


def new_owner() -> str:
    """A claim token unique to this process and call: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _alive(owner: str) -> bool:
    """Whether the process of an owner token (``host:pid:random``) on this host still runs."""
    try:
        pid = int(owner.split(":")[1])
        os.kill(pid, 0)
    except (IndexError, ValueError):
        return True  # not a token this trainlab wrote: leave it to the heartbeat
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def open_store(location: str | os.PathLike = DEFAULT_STORE, **options: Any) -> Store:
    """A :class:`Store` (``options`` as its constructor's)."""
    return Store(location, **options)


class Store:
    """A results store (a SQLite path or a ``postgresql://`` URL).

    ``readonly`` opens it without write access (the read-only commands do); ``create=False``
    refuses a store that does not exist yet. ``owner`` is the claim token of this process (a
    new one by default; a pool worker is handed its parent's, and ``heartbeat=False``, since the
    parent keeps the claim alive). ``verify=False`` skips SQLite's integrity scan (``quick_check``,
    a pass over the whole file), for the workers of a command that has just verified the store.
    Raises :class:`~trainlab.errors.StoreError`.
    """

    def __init__(
        self,
        location: str | os.PathLike = DEFAULT_STORE,
        *,
        readonly: bool = False,
        create: bool = True,
        owner: str | None = None,
        heartbeat: bool = True,
        stale_after: float = STALE_AFTER,
        verify: bool = True,
    ) -> None:
        self.location = Location.parse(location)
        self.path = str(self.location)  # how messages name the store (a password hidden)
        self.readonly = readonly
        self.owner = owner or new_owner()
        self.stale_after = float(stale_after)
        self._beat = heartbeat and not readonly
        self._beating: threading.Event | None = None
        self.engine = open_engine(self.location, readonly=readonly, create=create, verify=verify)

    def close(self) -> None:
        if self._beating is not None:
            self._beating.set()
            with contextlib.suppress(StoreError):
                self.release()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise store_error(self.location, exc) from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on return."""
        if self.readonly:
            raise StoreError(f"the results store {self.path} was opened read-only")
        try:
            with self.engine.begin() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            raise store_error(self.location, exc) from None

    def _rows(self, query: Any) -> list[dict[str, Any]]:
        with self._read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- benchmarks ---------------------------------------------------------------------------
    def plan_benchmark(
        self, key: str, config: dict[str, Any], rows: list[dict[str, Any]], slot: Any
    ) -> tuple[int, bool]:
        """The benchmark with this key (its configuration's fingerprint), created if new, with
        every row of its plan present (``slot(row)`` identifies a planned trial), in one
        transaction: the benchmark and its plan appear together or not at all. Two processes
        planning the same benchmark at once end up with one benchmark and one plan."""
        for attempt in range(3):
            try:
                with self._tx() as conn:
                    found = conn.execute(select(B.c.id).where(B.c.key == key)).scalar()
                    created = found is None
                    if created:
                        found = conn.execute(
                            insert(B).values(key=key, config=json.dumps(config, sort_keys=True),
                                             created=time.time()).returning(B.c.id)
                        ).scalar_one()  # fmt: skip
                    have = {slot(dict(r)) for r in conn.execute(
                        select(T).where(T.c.benchmark_id == found)).mappings()}  # fmt: skip
                    missing = [{**r, "benchmark_id": found} for r in rows if slot(r) not in have]
                    if missing:
                        conn.execute(insert(T), [self._trial_fields(r) for r in missing])
                    return int(found), created
            except IntegrityError:  # PostgreSQL: the other planner committed first; read it
                if attempt == 2:
                    raise StoreError(f"cannot plan benchmark {key} in {self.path}") from None
        raise AssertionError("unreachable")

    def get_or_create_benchmark(self, key: str, config: dict[str, Any]) -> tuple[int, bool]:
        """The benchmark with this key, created (with no trials) if new."""
        return self.plan_benchmark(key, config, [], lambda row: None)

    def benchmarks(self) -> list[dict[str, Any]]:
        rows = self._rows(select(B).order_by(B.c.id))
        return [{**r, "config": json.loads(r["config"])} for r in rows]

    def benchmark(self, benchmark_id: int | None = None) -> dict[str, Any]:
        """A benchmark by id, or the latest one."""
        query = select(B).order_by(B.c.id.desc()).limit(1)
        if benchmark_id is not None:
            query = select(B).where(B.c.id == benchmark_id)
        rows = self._rows(query)
        if not rows:
            if benchmark_id is None:
                raise TrainlabError(
                    f"the store {self.path} has no benchmarks yet (run `trainlab bench` first)"
                )
            raise TrainlabError(f"the store {self.path} has no benchmark {benchmark_id}")
        return {**rows[0], "config": json.loads(rows[0]["config"])}

    # -- trials -------------------------------------------------------------------------------
    @staticmethod
    def _trial_fields(fields: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        fields = dict(fields)
        fields.setdefault("status", "pending")
        fields.setdefault("created", now or time.time())
        fields["hyperparameters"] = json.dumps(fields.get("hyperparameters", {}), sort_keys=True)
        if fields.get("search") is not None:
            fields["search"] = json.dumps(fields["search"], sort_keys=True)
        unknown = set(fields) - set(T.c.keys())
        if unknown:
            raise ValueError(f"unknown trial fields {sorted(unknown)}")
        return fields

    def create_trial(self, **fields: Any) -> int:
        """Insert a trial row (status ``pending`` unless given) and return its id."""
        with self._tx() as conn:
            query = insert(T).values(**self._trial_fields(fields)).returning(T.c.id)
            return int(conn.execute(query).scalar_one())

    def create_trials(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert several trial rows (as :meth:`create_trial`) in one transaction."""
        now = time.time()
        with self._tx() as conn:
            return [
                int(conn.execute(
                    insert(T).values(**self._trial_fields(r, now)).returning(T.c.id)
                ).scalar_one())
                for r in rows
            ]  # fmt: skip

    def _claimable(self, now: float) -> Any:
        stale = or_(T.c.heartbeat.is_(None), T.c.heartbeat < now - self.stale_after)
        return or_(T.c.status.in_(CLAIMABLE), and_(T.c.status == "running", stale))

    def _take(self, conn: Any, trial_id: int, now: float) -> bool:
        """Claim ``trial_id`` inside a transaction; evaluations of an earlier attempt go."""
        taken = conn.execute(
            update(T).where(T.c.id == trial_id, self._claimable(now))
            .values(status="running", owner=self.owner, heartbeat=now, started=None,
                    finished=None, host=socket.gethostname())
        ).rowcount  # fmt: skip
        if taken:
            conn.execute(delete(E).where(E.c.trial_id == trial_id))
            self._start_heartbeat()
        return bool(taken)

    def claim(self, trial_id: int) -> bool:
        """Claim one trial for this store's owner; ``False`` when it is finished or held by a
        live process."""
        with self._tx() as conn:
            return self._take(conn, trial_id, time.time())

    def claim_next(self, benchmark_id: int | None = None) -> int | None:
        """Claim the first claimable trial (of ``benchmark_id``, or of any benchmark), in plan
        order; ``None`` when none is left to claim."""
        now = time.time()
        query = select(T.c.id).where(self._claimable(now), T.c.benchmark_id.is_not(None))
        if benchmark_id is not None:
            query = query.where(T.c.benchmark_id == benchmark_id)
        query = query.order_by(T.c.id).limit(1).with_for_update(skip_locked=True)
        with self._tx() as conn:
            trial_id = conn.execute(query).scalar()
            if trial_id is None or not self._take(conn, trial_id, now):
                return None
            return int(trial_id)

    def claim_or_add(self, benchmark_id: int, choose: Any,
                     last_metrics: bool = False) -> int | None:  # fmt: skip
        """Claim the trial a searcher adds, else the next claimable one, in one transaction
        that no other process's ``claim_or_add`` of the benchmark interleaves with.

        ``choose(rows)`` sees every trial row of the benchmark (decoded; with ``last_metrics``
        each with its latest evaluation's metrics, or ``None``, as ``last_metrics``) and
        returns a new row to insert and claim (an ASHA promotion, say) or ``None``."""
        now = time.time()
        with self._tx() as conn:
            if self.location.kind == "postgresql":  # SQLite's BEGIN IMMEDIATE already is one
                conn.execute(select(func.pg_advisory_xact_lock(benchmark_id)))
            rows = [self._decode(dict(r)) for r in conn.execute(
                select(T).where(T.c.benchmark_id == benchmark_id).order_by(T.c.id)).mappings()]
            if last_metrics:
                last = select(E.c.trial_id, func.max(E.c.step).label("step")).join(
                    T, T.c.id == E.c.trial_id).where(T.c.benchmark_id == benchmark_id).group_by(
                    E.c.trial_id).subquery()  # fmt: skip
                found = {r.trial_id: json.loads(r.metrics) for r in conn.execute(select(E).join(
                    last, and_(E.c.trial_id == last.c.trial_id, E.c.step == last.c.step)))}
                for r in rows:  # fmt: skip
                    r["last_metrics"] = found.get(r["id"])
            added = choose(rows)
            if added is not None:
                trial_id = conn.execute(insert(T).values(**self._trial_fields(
                    {**added, "benchmark_id": benchmark_id}, now)).returning(T.c.id)).scalar_one()
                return int(trial_id) if self._take(conn, trial_id, now) else None
            query = select(T.c.id).where(self._claimable(now), T.c.benchmark_id == benchmark_id)
            trial_id = conn.execute(query.order_by(T.c.id).limit(1)).scalar()
            if trial_id is None or not self._take(conn, trial_id, now):
                return None
            return int(trial_id)

    def start_trial(self, trial_id: int) -> None:
        """Mark the trial started by this process: claimed now unless this owner holds it.
        Raises :class:`ClaimLost` when another live process holds it."""
        now = time.time()
        with self._tx() as conn:
            held = conn.execute(select(T.c.owner, T.c.status).where(T.c.id == trial_id)).first()
            if held is None:
                raise TrainlabError(f"no trial {trial_id} in {self.path}")
            if (held.owner != self.owner or held.status != "running") and not self._take(
                conn, trial_id, now
            ):
                raise ClaimLost(f"trial {trial_id} is held by another process ({held.owner})")
            conn.execute(update(T).where(T.c.id == trial_id).values(started=now, heartbeat=now))

    def _check_owner(self, conn: Any, trial_id: int) -> None:
        owner = conn.execute(
            select(T.c.owner).where(T.c.id == trial_id).with_for_update(read=True)
        ).first()
        if owner is None:
            raise TrainlabError(f"no trial {trial_id} in {self.path}")
        if owner[0] not in (None, self.owner):
            raise ClaimLost(f"trial {trial_id} was taken over by {owner[0]} (this process's "
                            f"heartbeat stopped for over {self.stale_after:g} s)")  # fmt: skip

    def add_evaluation(self, trial_id: int, record: EvalRecord) -> None:
        with self._tx() as conn:
            self._check_owner(conn, trial_id)
            conn.execute(delete(E).where(E.c.trial_id == trial_id, E.c.step == record.step))
            conn.execute(insert(E).values(
                trial_id=trial_id, step=record.step, timed_seconds=record.timed_seconds,
                metrics=json.dumps(record.metrics),
                train_loss=_finite_or_none(record.train_loss), lr=record.lr,
            ))  # fmt: skip

    def finish_trial(self, trial_id: int, **fields: Any) -> None:
        """Write the final status and figures of a trial (checked against the claim)."""
        if fields.get("status") not in FINISHED:
            raise ValueError(f"finish_trial needs a final status, got {fields.get('status')!r}")
        fields["finished"] = time.time()
        for key in ("time_to_target", "cpu_time_to_target", "ref_steps_to_target", "best_metric"):
            if key in fields:
                fields[key] = _finite_or_none(fields[key])
        for key in ("test_metrics", "model_cost", "stop_reason"):
            if fields.get(key) is not None:
                fields[key] = json.dumps(fields[key])
        with self._tx() as conn:
            self._check_owner(conn, trial_id)
            conn.execute(update(T).where(T.c.id == trial_id).values(**fields))

    def release(self) -> int:
        """Give back every trial this owner still holds, as ``interrupted`` (rerun by the next
        benchmark, resume or worker). Returns how many."""
        with self._tx() as conn:
            return conn.execute(
                update(T).where(T.c.owner == self.owner, T.c.status == "running")
                .values(status="interrupted", owner=None, heartbeat=None)
            ).rowcount  # fmt: skip

    def reap_dead_owners(self) -> int:
        """Give back, as ``interrupted``, the running trials of processes on this host that no
        longer exist (a SIGKILLed benchmark), so a resume need not wait ``stale_after`` for
        their heartbeat to go stale. Returns how many. (A reused pid looks alive: the heartbeat
        timeout still covers that case, and other hosts.)"""
        host = socket.gethostname()
        query = select(T.c.owner).distinct().where(T.c.status == "running",
                                                    T.c.owner.like(f"{host}:%"))  # fmt: skip
        dead = [r["owner"] for r in self._rows(query) if not _alive(r["owner"])]
        if not dead:
            return 0
        with self._tx() as conn:
            return conn.execute(
                update(T).where(T.c.owner.in_(dead), T.c.status == "running")
                .values(status="interrupted", owner=None, heartbeat=None)
            ).rowcount  # fmt: skip

    def _start_heartbeat(self) -> None:
        if not self._beat or self._beating is not None:
            return
        self._beating = stop = threading.Event()
        period = self.stale_after / 4

        def beat() -> None:
            while not stop.wait(period):
                with contextlib.suppress(StoreError):
                    with self._tx() as conn:
                        conn.execute(update(T).where(T.c.owner == self.owner,
                                                     T.c.status == "running")
                                     .values(heartbeat=time.time()))  # fmt: skip

        threading.Thread(target=beat, name="trainlab-heartbeat", daemon=True).start()

    def trial(self, trial_id: int) -> dict[str, Any]:
        rows = self._rows(select(T).where(T.c.id == trial_id))
        if not rows:
            raise TrainlabError(f"no trial {trial_id} in {self.path}")
        return self._decode(rows[0])

    def trials(
        self,
        benchmark_id: int | None = None,
        status: str | None = None,
        limit: int | None = None,
        latest_first: bool = False,
    ) -> list[dict[str, Any]]:
        query = select(T)
        if benchmark_id is not None:
            query = query.where(T.c.benchmark_id == benchmark_id)
        if status is not None:
            query = query.where(T.c.status == status)
        query = query.order_by(T.c.id.desc() if latest_first else T.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [self._decode(r) for r in self._rows(query)]

    def held_by_others(self, benchmark_id: int) -> int:
        """How many trials of a benchmark live processes other than this one are running."""
        now = time.time()
        query = select(func.count()).where(
            T.c.benchmark_id == benchmark_id, T.c.status == "running",
            T.c.owner != self.owner, T.c.heartbeat >= now - self.stale_after,
        )  # fmt: skip
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def evaluations(self, trial_id: int) -> list[EvalRecord]:
        rows = self._rows(select(E).where(E.c.trial_id == trial_id).order_by(E.c.step))
        return [_eval_record(r) for r in rows]

    # -- queries for benchmarks, scoring and reports (read-only) --------------------------------
    def latest_evaluations(self, trial_ids: Iterable[int]) -> dict[int, EvalRecord]:
        """The most recent evaluation of each of ``trial_ids`` that has one."""
        ids = [int(i) for i in trial_ids]
        if not ids:
            return {}
        last = (
            select(E.c.trial_id, func.max(E.c.step).label("step"))
            .where(E.c.trial_id.in_(ids)).group_by(E.c.trial_id).subquery()
        )  # fmt: skip
        query = select(E).join(last, and_(E.c.trial_id == last.c.trial_id,
                                          E.c.step == last.c.step))  # fmt: skip
        return {r["trial_id"]: _eval_record(r) for r in self._rows(query)}

    def status_counts(self, benchmark_id: int) -> dict[str, int]:
        """How many trials of a benchmark are in each status."""
        query = (select(T.c.status, func.count().label("n"))
                 .where(T.c.benchmark_id == benchmark_id).group_by(T.c.status))  # fmt: skip
        return {r["status"]: int(r["n"]) for r in self._rows(query)}

    def eval_share(self, benchmark_id: int) -> float | None:
        """Untimed evaluation seconds as a fraction of wall seconds, over a benchmark's
        finished trials (``None`` when none has finished)."""
        query = select(func.sum(T.c.eval_seconds).label("e"),
                       func.sum(T.c.wall_seconds).label("w")).where(
            T.c.benchmark_id == benchmark_id, T.c.wall_seconds > 0)  # fmt: skip
        row = self._rows(query)[0]
        return None if not row["w"] else float(row["e"]) / float(row["w"])

    def studies(self, benchmark_id: int) -> list[dict[str, Any]]:
        """One row per (workload, variant, algorithm, study) of a benchmark: its trial count,
        how many are finished and reached the target, and its fastest time and step count to
        the target (None when no trial reached it)."""

        def count_if(condition: Any) -> Any:
            return func.sum(case((condition, 1), else_=0))

        reached = T.c.status == "reached"
        keys = (T.c.workload, T.c.variant, T.c.algorithm, T.c.study)
        query = (
            select(*keys, func.count().label("trials"),
                   count_if(T.c.status.in_(sorted(FINISHED))).label("finished"),
                   count_if(reached).label("reached"),
                   func.min(case((reached, T.c.time_to_target))).label("time_to_target"),
                   func.min(case((reached, T.c.steps_to_target))).label("steps_to_target"))
            .where(T.c.benchmark_id == benchmark_id).group_by(*keys).order_by(*keys)
        )  # fmt: skip
        return [{**r, "finished": int(r["finished"]), "reached": int(r["reached"])}
                for r in self._rows(query)]  # fmt: skip

    @staticmethod
    def _decode(row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        for key in _JSON_COLUMNS:
            if out.get(key) is not None:
                out[key] = json.loads(out[key])
        return out
