"""Where a benchmark's trials run: in this process, in a local process pool, or on Ray.

Every executor runs *stored* trials: it is handed trial ids, and the worker reads everything
it needs (workload, variant, algorithm, hyperparameters, seed, budgets, target) from the trial's
row, opens its own :class:`~trainlab.bench.store.Store` on the same SQLite file and calls
:func:`~trainlab.bench.runner.run_trial` with ``store=`` and ``trial_id=``, so every evaluation
and the final status are committed by the worker as they happen. The parent only learns that a
trial ended (and writes ``failed`` itself when the worker could not).

* :class:`InlineExecutor` runs the trials one after the other in this process.
* :class:`LocalExecutor` keeps at most ``jobs`` trials in flight in a
  ``concurrent.futures.ProcessPoolExecutor`` (``spawn`` context). Each worker sets
  ``torch.set_num_threads(threads)`` and exits as soon as its parent dies, so a killed
  benchmark leaves no orphan writing to the store. A worker that dies (segfault, out of
  memory) breaks the pool: trials that had not started are requeued; a started one is marked
  ``failed`` when it is the only suspect, or when it was in flight at two breakages; the pool is
  rebuilt and the benchmark goes on.
* :class:`~trainlab.bench.ray_executor.RayExecutor` (in ``ray_executor``) submits the same
  worker function as Ray tasks (``num_cpus=threads``), on a local Ray it starts or on the
  cluster at ``RAY_ADDRESS`` (the store path must then be on a filesystem all nodes share).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import traceback
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from trainlab.errors import ClaimLost, OutOfRangeWarning
from trainlab.spec import FINISHED, TrainlabError

#: called with (trial_id, outcome) when a trial ends; outcome has at least ``status``
OnDone = Callable[[int, dict[str, Any]], None]
#: claims the next trial to run (its id), or ``None`` when none is left to claim
Claim = Callable[[], "int | None"]
#: called about twice a second while trials run (progress display)
OnTick = Callable[[], None]

TICK_SECONDS = 0.5


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    return max(1, (cores or available_cores()) // max(1, jobs))


# --------------------------------------------------------------------------------------------
# The worker side (runs in a pool process, a Ray worker, or this process)

_WORKLOADS: dict[tuple[str, str, str], Any] = {}


def _build_workload(name: str, variant: str, device: str) -> Any:
    """The workload of a trial row; built once per process (data building is untimed anyway)."""
    key = (name, variant, device)
    if key not in _WORKLOADS:
        from trainlab.registry import get_workload

        options = {} if device == "cpu" else {"device": device}
        _WORKLOADS[key] = get_workload(name, variant or None, **options)
    return _WORKLOADS[key]


def _legacy_spec(workload: Any, row: dict[str, Any]) -> Any:
    """The spec of a row planned before specs were stored: the workload's own budgets and
    cadence, with the row's target and budget."""
    from trainlab.spec import Target, WorkloadSpec

    step_mode = row["mode"] == "steps"
    return WorkloadSpec(
        target=Target(row["target_metric"], float(row["target_value"]),
                      bool(row["higher_is_better"])),
        max_runtime=float(row["max_runtime"] or workload.max_runtime),
        eval_period=float(workload.eval_period),
        step_hint=int(workload.step_hint),
        eval_every_steps=row["eval_every_steps"] if step_mode else None,
        max_steps=row["max_steps"] if step_mode else None,
    )  # fmt: skip


def run_stored_trial(
    store_path: str,
    trial_id: int,
    full_curve: bool = False,
    device: str = "cpu",
    on_progress=None,
    owner: str | None = None,
) -> dict[str, Any]:
    """Run the trial ``trial_id`` of the store at ``store_path`` and return its outcome.

    ``owner`` is the claim token of the process that claimed the trial (and keeps its heartbeat);
    without one, the trial is claimed here. A row with ``nproc > 1`` runs data-parallel on that
    many local processes (:mod:`trainlab.bench.distributed`), rank 0 writing the store."""
    from trainlab.bench.store import Store

    # a worker of a claiming process: the store was verified when that process opened it
    with Store(store_path, create=False, owner=owner, heartbeat=owner is None,
               verify=owner is None) as store:  # fmt: skip
        row = store.trial(trial_id)
        nproc = int(row.get("nproc") or 1)
        if nproc == 1:
            return _run_row(store, row, None, full_curve, device, on_progress)
    import torch

    from trainlab.bench.distributed import launch

    job = (store_path, trial_id, full_curve, device, owner)
    return launch(_stored_rank, nproc, job, device_type=torch.device(device).type,
                  threads=max(1, torch.get_num_threads() // nproc))  # fmt: skip


def _stored_rank(group: Any, job: tuple) -> dict[str, Any]:
    """One rank of a stored data-parallel trial: rank 0 runs it against the store, the others
    follow (they only read the trial's row)."""
    from trainlab.bench.store import Store

    store_path, trial_id, full_curve, device, owner = job
    leader = group.rank == 0
    with Store(store_path, create=False, owner=owner, heartbeat=leader and owner is None,
               readonly=not leader, verify=False) as store:  # fmt: skip
        return _run_row(store, store.trial(trial_id), group, full_curve, str(group.device), None)


def _run_row(store: Any, row: dict[str, Any], group: Any, full_curve: bool, device: str,
             on_progress: Any) -> dict[str, Any]:  # fmt: skip
    """Run a trial row under the timing rules; with a ``group``, only rank 0 writes."""
    from trainlab.bench.budgets import spec_of_row
    from trainlab.bench.checkpoints import segment_of_row
    from trainlab.bench.early_stop import rule_from_row
    from trainlab.bench.runner import run_trial
    from trainlab.registry import get_algorithm

    leader = group is None or group.rank == 0
    workload = _build_workload(row["workload"], row["variant"], device)
    # the row is the source of truth: the spec planned with the trial is the spec it runs
    spec = spec_of_row(row) or _legacy_spec(workload, row)
    sweep = bool((row.get("search") or {}).get("lr_sweep"))  # an LR sweep leaves the ranges
    with warnings.catch_warnings():
        if sweep:  # on purpose: no OutOfRangeWarning per learning rate
            warnings.filterwarnings("ignore", category=OutOfRangeWarning)
        result = run_trial(
            workload,
            get_algorithm(row["algorithm"]),
            row["hyperparameters"],
            int(row["seed"]),
            spec=spec,
            full_curve=full_curve,
            store=store if leader else None,
            trial_id=row["id"] if leader else None,
            on_progress=on_progress,
            group=group,
            stop_rule=rule_from_row(row),
            allow_out_of_range=sweep,
            segment=segment_of_row(store.location, row),  # a PBT segment resumes a checkpoint
        )
    return {
        "trial_id": row["id"],
        "status": result.status,
        "time_to_target": result.time_to_target,
        "steps_to_target": result.steps_to_target,
        "best_metric": result.best_metric,
        "wall_seconds": result.wall_seconds,
        "error": result.error,
    }


def _watch_parent() -> None:
    """Exit this worker as soon as the process that started it is gone."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        from multiprocessing.connection import wait as wait_ready

        wait_ready([sentinel])
        os._exit(3)

    threading.Thread(target=watch, name="trainlab-parent-watch", daemon=True).start()


def init_worker(threads: int) -> None:
    """Pool-process initializer: thread counts and the parent watchdog. (The runner warms
    torch up, untimed, before a process's first trial of each workload.)"""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    _watch_parent()


def _fail(store_path: str, trial_id: int, error: str, owner: str) -> dict[str, Any]:
    """Record in the store that a trial failed outside the runner (its worker crashed)."""
    from trainlab.bench.store import Store

    with Store(store_path, create=False, owner=owner, heartbeat=False) as store:
        if store.trial(trial_id)["status"] not in FINISHED:
            store.finish_trial(trial_id, status="failed", error=error)
    return {"trial_id": trial_id, "status": "failed", "error": error}


# --------------------------------------------------------------------------------------------
# Executors


class InlineExecutor:
    """Runs the trials one after the other in this process."""

    name = "inline"

    def __init__(
        self,
        store_path: str | Path,
        full_curve: bool = False,
        device: str = "cpu",
        threads: int | None = None,
        owner: str | None = None,
    ) -> None:
        self.store_path = str(store_path)
        self.full_curve = full_curve
        self.device = device
        self.threads = threads
        self.owner = owner

    def run(self, claim: Claim, on_done: OnDone, on_tick: OnTick | None = None) -> None:
        import time

        import torch

        if self.threads is not None:
            torch.set_num_threads(self.threads)

        last = [0.0]

        def progress(_p) -> None:
            now = time.monotonic()
            if on_tick is not None and now - last[0] >= TICK_SECONDS:
                last[0] = now
                on_tick()

        while (trial_id := claim()) is not None:
            try:
                outcome = run_stored_trial(
                    self.store_path, trial_id, self.full_curve, self.device, progress, self.owner
                )
            except ClaimLost:
                continue  # another process took it over: it is theirs now
            except TrainlabError:
                raise
            except Exception as exc:  # outside the runner's own guard (building the workload)
                outcome = _fail(self.store_path, trial_id, _describe(exc), self.owner)
            on_done(trial_id, outcome)


class LocalExecutor:
    """A local process pool with at most ``jobs`` trials in flight.

    The parent claims each trial (and keeps its heartbeat) before handing it to the pool. When a
    worker dies the pool breaks and every trial in flight fails with it. Trials that had not
    started go back to the queue; the started ones (the suspects) are rerun one at a time,
    alone in a fresh pool, so a trial that kills its worker again is then the only suspect and
    is marked ``failed``, while the innocent ones finish normally.
    """

    name = "local"
    #: consecutive pool breakages, with no trial finishing in between, before giving up
    MAX_BREAKAGES = 3

    def __init__(
        self,
        store_path: str | Path,
        jobs: int,
        threads: int,
        full_curve: bool = False,
        device: str = "cpu",
        start_method: str = "spawn",
        worker: Callable[..., dict[str, Any]] | None = None,
        owner: str | None = None,
    ) -> None:
        self.store_path = str(store_path)
        self.jobs = max(1, jobs)
        self.threads = max(1, threads)
        self.full_curve = full_curve
        self.device = device
        self.context = multiprocessing.get_context(start_method)
        #: the function a pool process runs per trial (a module-level function; tests swap it)
        self.worker = worker or run_stored_trial
        self.owner = owner

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=self.context,
            initializer=init_worker,
            initargs=(self.threads,),
        )

    def _settle_breakage(self, in_flight: dict[Future, int], queue: deque, isolate: deque,
                         on_done: OnDone) -> bool:  # fmt: skip
        """After a pool broke: finished trials are reported, a lone started one is failed,
        several started ones are isolated, unstarted ones requeued. True if one was failed."""
        from trainlab.bench.store import Store

        with Store(self.store_path, create=False, owner=self.owner, heartbeat=False) as store:
            rows = {t: store.trial(t) for t in in_flight.values()}
        started = [t for t, r in rows.items() if r["status"] == "running" and r["started"]]
        failed_one = False
        for trial_id, row in rows.items():
            if row["status"] in FINISHED:
                on_done(trial_id, {"trial_id": trial_id, "status": row["status"]})
            elif trial_id in started and len(started) == 1:
                message = (
                    "WorkerDied: the worker process running this trial died "
                    "(killed, out of memory or crashed in native code)"
                )
                on_done(trial_id, _fail(self.store_path, trial_id, message, self.owner))
                failed_one = True
            elif trial_id in started:
                isolate.append(trial_id)
            else:
                queue.appendleft(trial_id)
        return failed_one

    def run(self, claim: Claim, on_done: OnDone, on_tick: OnTick | None = None) -> None:
        queue: deque[int] = deque()  # claimed by us, to (re)submit
        first = claim()
        if first is None:
            return
        queue.append(first)
        isolate: deque[int] = deque()  # suspects of a broken pool, rerun one at a time
        breakages = 0
        claiming = True
        pool = self._pool()
        in_flight: dict[Future, int] = {}

        def submit(trial_id: int, back: deque) -> bool:
            """Hand a trial to the pool; a pool that broke since the last look (a worker died
            just now) refuses it, and the trial goes back to ``back`` (it never started)."""
            args = (self.store_path, trial_id, self.full_curve, self.device, None, self.owner)
            try:
                in_flight[pool.submit(self.worker, *args)] = trial_id
            except BrokenProcessPool:
                back.appendleft(trial_id)
                return False
            return True

        try:
            while True:
                refused = False
                if isolate:
                    if not in_flight:
                        refused = not submit(isolate.popleft(), isolate)
                else:
                    while len(in_flight) < self.jobs and not refused:
                        if queue:
                            refused = not submit(queue.popleft(), queue)
                        elif claiming and (trial_id := claim()) is not None:
                            refused = not submit(trial_id, queue)
                        else:
                            claiming = False
                            break
                if not in_flight and not queue and not isolate:
                    return
                done: set = set()
                if in_flight:
                    done, _ = wait(list(in_flight), timeout=None if refused else TICK_SECONDS,
                                   return_when=FIRST_COMPLETED)  # fmt: skip
                broken = refused
                for future in done:
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue  # settled below with everything else in flight
                    except ClaimLost:
                        in_flight.pop(future)
                        continue
                    except TrainlabError:
                        raise
                    except Exception as exc:
                        outcome = _fail(self.store_path, in_flight[future], _describe(exc),
                                        self.owner)  # fmt: skip
                    trial_id = in_flight.pop(future)
                    breakages = 0
                    on_done(trial_id, outcome)
                if broken:
                    breakages += 1
                    if breakages > self.MAX_BREAKAGES:
                        raise TrainlabError(
                            f"benchmark worker processes died {breakages} times in a row; "
                            "the finished trials are in the store (rerun to resume)"
                        )
                    if self._settle_breakage(in_flight, queue, isolate, on_done):
                        breakages = 0
                    in_flight.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._pool()
                if on_tick is not None:
                    on_tick()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def make_executor(
    kind: str,
    store_path: str | Path,
    jobs: int,
    threads: int | None = None,
    full_curve: bool = False,
    device: str = "cpu",
    owner: str | None = None,
):
    """``local`` (``jobs == 1`` runs inline, in this process), ``inline``, or ``ray``.
    ``owner`` is the claim token of the calling process (its store's), which holds the claims
    and their heartbeat while the trials run elsewhere."""
    threads = threads or threads_per_job(jobs)
    if kind == "ray":
        from trainlab.bench.ray_executor import RayExecutor

        return RayExecutor(store_path, jobs, threads, full_curve, device, owner=owner)
    if kind == "inline" or (kind == "local" and jobs == 1):
        return InlineExecutor(store_path, full_curve, device, threads, owner)
    if kind == "local":
        return LocalExecutor(store_path, jobs, threads, full_curve, device, owner=owner)
    raise TrainlabError(f"unknown executor {kind!r}; choose local or ray")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc, limit=8))}"
