"""The Ray executor: a benchmark's stored trials as Ray tasks, on a local Ray started here or
on the cluster at ``RAY_ADDRESS``.

It runs the same worker function as the local pool (:func:`~trainlab.bench.executors.
run_stored_trial`), with the same semantics: workers write evaluations and final statuses to
the store themselves, a trial whose worker dies is marked ``failed`` and the others go on, and
a run that ends early leaves its in-flight trials unfinished for ``--resume``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainlab.bench.executors import (
    TICK_SECONDS,
    Claim,
    OnDone,
    OnTick,
    _describe,
    _fail,
    available_cores,
    init_worker,
    run_stored_trial,
)
from trainlab.errors import ClaimLost
from trainlab.spec import TrainlabError

#: how a trial whose Ray worker process died is marked (like the pool's sole suspect)
RAY_WORKER_DIED = (
    "WorkerDied: the Ray worker process running this trial died "
    "(killed, out of memory or crashed in native code)"
)


def _ray_task(
    worker: Callable[..., dict[str, Any]],
    store_path: str,
    trial_id: int,
    threads: int,
    full_curve: bool,
    device: str,
    owner: str | None,
) -> dict[str, Any]:
    """One trial in a Ray worker process, under the driver's claim (``owner``). Ray reuses a
    worker for many tasks, so the thread counts are set on every call (``init_worker``; its
    parent watchdog is a no-op there)."""
    init_worker(threads)
    return worker(store_path, trial_id, full_curve, device, None, owner)


def _worker_pythonpath() -> str:
    """``PYTHONPATH`` for Ray workers: this process's import path, minus the interpreter's own
    directories, as absolute paths (Ray only passes on the script's directory and the working
    directory), so workers on this machine import the same trainlab (a source checkout, an
    editable install) and the same helper modules as the driver. Paths that do not exist on a
    cluster node are ignored there; nodes need trainlab installed."""
    import trainlab

    own = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}

    def outside(path: str) -> bool:
        return not any(path == p or path.startswith(p + os.sep) for p in own)

    paths: list[str] = []
    for entry in [str(Path(trainlab.__file__).parent.parent), *sys.path]:
        path = os.path.realpath(entry or os.curdir)
        if os.path.isdir(path) and outside(path) and path not in paths:
            paths.append(path)
    return os.pathsep.join(paths)


def _start_ray(ray: Any) -> None:
    """Connect to ``RAY_ADDRESS`` when it is set, else start a private local Ray sized to this
    process's cores; no dashboard, no usage statistics, no worker logs copied to this terminal.
    Raises TrainlabError when Ray cannot start or the cluster cannot be reached."""
    import logging

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    if address is None:
        options.update(address="local", num_cpus=available_cores())
    else:
        options.update(address=address)
    try:
        ray.init(**options)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise TrainlabError(f"could not start or reach {where}: {first}") from None


class RayExecutor:
    """Trials as Ray tasks; at most ``jobs`` in flight (``jobs`` may exceed local cores on a
    cluster), each asking Ray for ``threads`` CPUs. Needs ``ray`` (``pip install
    'trainlab[ray]'``). Uses the Ray this process already joined (``ray.init``), else
    :func:`_start_ray`.

    Failure semantics match :class:`LocalExecutor`: every Ray task runs in its own worker
    process, so a worker that dies takes only its own trial down, which is marked ``failed``
    (never retried); an exception raised in a worker outside the runner's guard marks its trial
    ``failed`` too, except a :class:`TrainlabError`, which ends the run. When ``run`` ends early
    (an error, Ctrl-C) the tasks in flight are force-cancelled and waited for, so no worker is
    left writing to the store; their trials stay unfinished and ``--resume`` reruns them.
    """

    name = "ray"
    #: seconds ``run`` waits, on its way out, for cancelled tasks' workers to go away
    CANCEL_WAIT = 30.0

    def __init__(
        self,
        store_path: str | Path,
        jobs: int,
        threads: int,
        full_curve: bool = False,
        device: str = "cpu",
        worker: Callable[..., dict[str, Any]] | None = None,
        owner: str | None = None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise TrainlabError(
                "--executor ray needs the ray package (pip install 'trainlab[ray]')"
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            _start_ray(ray)
        # workers may run elsewhere (another working directory, another node)
        text = str(store_path)
        self.store_path = text if "://" in text else str(Path(text).resolve())
        #: the driver's claim token: it claims each trial and keeps its heartbeat
        self.owner = owner
        self.jobs = max(1, jobs)
        self.threads = max(1, threads)
        self.full_curve = full_curve
        self.device = device
        #: the function a Ray task runs per trial (a module-level function; tests swap it)
        self.worker = worker or run_stored_trial
        threads_env = str(self.threads)
        env = {"PYTHONPATH": _worker_pythonpath(), "OMP_NUM_THREADS": threads_env,
               "MKL_NUM_THREADS": threads_env}  # fmt: skip
        options = dict(num_cpus=self.threads, max_retries=0, runtime_env={"env_vars": env})
        self.task = ray.remote(**options)(_ray_task)

    def _outcome(self, ref: Any, trial_id: int) -> dict[str, Any] | None:
        """The outcome of a finished task; a failed one is recorded as ``failed``; ``None``
        when the trial was taken over by another process."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as exc:  # the worker function raised
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            if isinstance(cause, ClaimLost):  # another process took the trial over
                return None
            if isinstance(cause, TrainlabError):
                raise TrainlabError(str(cause)) from None
            if isinstance(cause, exceptions.RaySystemError):  # could not load the task
                raise _unusable_workers(cause) from None
            return _fail(self.store_path, trial_id, _describe(cause), self.owner)
        except (exceptions.RaySystemError, exceptions.RuntimeEnvSetupError) as exc:
            raise _unusable_workers(exc) from None
        except exceptions.RayError as exc:  # worker died: crash, OOM kill, node lost
            return _fail(self.store_path, trial_id, f"{RAY_WORKER_DIED}\n{_describe(exc)}",
                         self.owner)

    def run(self, claim: Claim, on_done: OnDone, on_tick: OnTick | None = None) -> None:
        ray = self.ray
        in_flight: dict[Any, int] = {}
        claiming = True
        try:
            while True:
                while claiming and len(in_flight) < self.jobs:
                    trial_id = claim()
                    if trial_id is None:
                        claiming = False
                        break
                    ref = self.task.remote(
                        self.worker, self.store_path, trial_id, self.threads, self.full_curve,
                        self.device, self.owner,
                    )  # fmt: skip
                    in_flight[ref] = trial_id
                if not in_flight:
                    return
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=TICK_SECONDS)
                for ref in ready:
                    trial_id = in_flight.pop(ref)
                    outcome = self._outcome(ref, trial_id)
                    if outcome is not None:
                        on_done(trial_id, outcome)
                if on_tick is not None:
                    on_tick()
        finally:
            if in_flight:  # an error or Ctrl-C: no worker may go on writing to the store
                refs = list(in_flight)
                with contextlib.suppress(Exception):  # Ray itself gone: keep the first error
                    for ref in refs:
                        ray.cancel(ref, force=True)
                    ray.wait(refs, num_returns=len(refs), timeout=self.CANCEL_WAIT)


def _unusable_workers(exc: BaseException) -> TrainlabError:
    """The error that ends a run whose Ray workers cannot run any trial (the worker function
    does not import there, the runtime environment failed): no trial is marked failed for it."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    detail = lines[-1].strip() if lines else type(exc).__name__
    return TrainlabError(
        f"Ray workers cannot run trials ({detail}); trainlab and the worker function must be "
        "importable on every node"
    )
