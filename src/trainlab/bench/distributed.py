"""Data-parallel trials: one trial on N local processes with ``torch.distributed``.

A trial with ``nproc > 1`` is launched like ``torchrun --standalone --nproc-per-node N``
(:func:`launch`, through torch's ``elastic_launch``); every rank calls
:func:`~trainlab.bench.runner.run_trial` with its :class:`Group`, gloo on the CPU, NCCL on CUDA.

* **Rank 0 leads.** It runs the runner's timed loop as in one process: it owns the clock, the
  evaluations, the progress output and the store (the other ranks only read their trial's row).
  Before every step, every ``prepare_for_eval`` and at the end it broadcasts a command
  (``STEP``, ``PREPARE``, ``STOP``) on a separate gloo group; the other ranks
  (:meth:`Group.follow`) only train: they build the same model and state and execute the
  commands, so every rank calls the algorithm in the same order. The command broadcast is runner
  bookkeeping, outside the timed sections; the gradient communication happens inside ``update``
  and is timed on rank 0.
* **Sharding.** Every rank draws the same global batches (the algorithm's ``select_data`` runs on
  every rank with the same seed) and trains on its contiguous shard: with a global batch of
  ``B`` rows, rank ``r`` gets rows ``r*B/N .. (r+1)*B/N`` (:meth:`Group.shard`). The seam is the
  output of ``select_data``, so data selection, curricula and fresh-example streams are sharded
  without knowing about it. ``B`` must divide by ``N`` (:func:`check_nproc`).
* **Gradient averaging.** Explicit, not a ``DistributedDataParallel`` wrapper: a post-accumulate
  hook on each parameter of the trial's model scales its gradient by the rank's share of the
  batch and starts an asynchronous ``all_reduce`` (sum); a callback queued on the autograd engine
  waits for them all when ``backward`` ends. So the gradients are the global batch's mean before
  anything reads them (clipping, the optimizer step, gradient statistics), the model stays the
  workload's own module (its attributes, ``evaluate`` and ``prepare_for_eval`` work unchanged,
  and rank 0 can evaluate alone: a forward pass has no collective), and models built for other
  purposes (teachers, scoring runs) are not touched. A DDP wrapper would broadcast buffers in
  every forward (rank 0's lone evaluation would hang) and hide the model's attributes.

Limits, said plainly: BatchNorm statistics are per rank (as DDP without SyncBatchNorm), so a
model with BatchNorm or dropout trains slightly differently from one process; an algorithm that
keeps per-example state updated in ``update`` (losses, predictions) sees only its shard's
examples; the CPU-time measures count rank 0's process only. A step-mode trial of a plain model
follows one process's curve up to float rounding: exactly in float64, while float32 rounding
differences grow with the steps (``tests/bench/test_distributed.py``).
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from trainlab.spec import Algorithm, Batch, TrainlabError, Workload

#: commands rank 0 broadcasts to the other ranks
START, STEP, PREPARE, STOP = 1, 2, 3, 4

#: how long a collective may wait (seconds): a rank that died mid-step leaves the others waiting
#: this long; rank 0's evaluations (the other ranks wait through them) must fit in it
TIMEOUT_SECONDS = 600


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def check_nproc(nproc: int, batch_size: int, device: str | torch.device = "cpu") -> None:
    """Refuse a process count this machine or this batch size cannot take.

    Raises :class:`TrainlabError` when ``nproc < 1``, when it exceeds the CPU cores (on the CPU)
    or the visible CUDA devices (on CUDA, one device per rank), or when the global batch size
    ``batch_size`` (rows) does not divide by it.
    """
    if nproc < 1:
        raise TrainlabError(f"--nproc must be >= 1, got {nproc}")
    device = torch.device(device)
    if device.type == "cuda":
        if device.index not in (None, 0) and nproc > 1:
            raise TrainlabError("--nproc: ranks use cuda:0..N-1; give --device cuda")
        if nproc > torch.cuda.device_count():
            raise TrainlabError(
                f"--nproc {nproc}: torch sees {torch.cuda.device_count()} CUDA devices"
            )
    elif device.type != "cpu" and nproc > 1:
        raise TrainlabError(f"--nproc: data-parallel trials run on cpu or cuda, not {device}")
    elif nproc > available_cores():
        raise TrainlabError(
            f"--nproc {nproc}: this machine has {available_cores()} CPU cores (one per rank)"
        )
    if batch_size % nproc:
        raise TrainlabError(
            f"--nproc {nproc}: the batch size {batch_size} does not divide into {nproc} shards"
        )


class Group:
    """This process's place in a data-parallel trial: rank, size, device, and the hooks that
    make a model's gradients the global batch's mean (see the module docstring).

    Build it with :meth:`from_env` in a process started by :func:`launch` (or ``torchrun``).
    """

    def __init__(self, rank: int, world_size: int, device: torch.device, control: Any) -> None:
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self._control = control  # a gloo group for the commands (CPU tensors, any backend)
        self._share = 1.0 / world_size  # this rank's fraction of the current global batch
        self._works: list[Any] = []
        self._queued = False
        self._stopped = False

    @classmethod
    def from_env(cls, device_type: str = "cpu") -> Group:
        """Join the process group described by torchrun's environment (``RANK``,
        ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``): gloo on the CPU, NCCL on CUDA
        with ``cuda:LOCAL_RANK`` as this rank's device."""
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        timeout = datetime.timedelta(seconds=TIMEOUT_SECONDS)
        if device_type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", timeout=timeout, device_id=device)
        else:
            device = torch.device("cpu")
            dist.init_process_group("gloo", timeout=timeout)
        control = dist.new_group(backend="gloo", timeout=timeout)
        return cls(dist.get_rank(), dist.get_world_size(), device, control)

    def close(self) -> None:
        """Leave the process group (every rank, at the end)."""
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    # -- the model ------------------------------------------------------------------------------
    def attach(self, model: nn.Module) -> None:
        """Make ``model`` data-parallel: rank 0's parameters and buffers are copied to every
        rank, and each parameter's gradient is averaged over the ranks as ``backward`` ends.
        Rank 0 first tells the others to start (they wait in :meth:`follow`)."""
        import torch.distributed as dist

        if self.rank == 0:
            self._send(START)
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                dist.broadcast(tensor.data, src=0)
        for param in model.parameters():
            if param.requires_grad:
                param.register_post_accumulate_grad_hook(self._reduce)

    def _reduce(self, param: Tensor) -> None:
        import torch.distributed as dist

        if not self._queued:  # once per backward: wait for every reduction at its end
            torch.autograd.Variable._execution_engine.queue_callback(self._wait)
            self._queued = True
        param.grad.mul_(self._share)
        self._works.append(dist.all_reduce(param.grad, async_op=True))

    def _wait(self) -> None:
        for work in self._works:
            work.wait()
        self._works.clear()
        self._queued = False

    # -- the data -------------------------------------------------------------------------------
    def shard(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """This rank's contiguous shard of every global batch: rows ``r*B/N .. (r+1)*B/N``.
        A batch whose rows do not divide evenly (an algorithm that changes its batch size) is
        split as evenly as possible; the gradient weights follow the shard sizes. Raises
        :class:`TrainlabError` for a batch with fewer rows than ranks."""
        for batch in batches:
            n = len(batch)
            if n < self.world_size:
                raise TrainlabError(f"a batch of {n} rows cannot be split over "
                                    f"{self.world_size} ranks")  # fmt: skip
            start = self.rank * n // self.world_size
            stop = (self.rank + 1) * n // self.world_size
            self._share = (stop - start) / n
            yield batch.subset(slice(start, stop))

    # -- the commands ---------------------------------------------------------------------------
    def _send(self, command: int) -> None:
        import torch.distributed as dist

        dist.broadcast(torch.tensor([command]), src=0, group=self._control)

    def _receive(self) -> int:
        import torch.distributed as dist

        box = torch.zeros(1, dtype=torch.long)
        dist.broadcast(box, src=0, group=self._control)
        return int(box.item())

    def _mean_loss(self, loss: Any) -> float:
        """The global batch's mean loss from each rank's shard mean (weighted by shard size)."""
        import torch.distributed as dist

        total = torch.tensor([float(loss) * self._share], dtype=torch.float64)
        dist.all_reduce(total, group=self._control)
        return float(total.item())

    def command(self, command: int, loss: Any = None) -> float | None:
        """Rank 0: tell the other ranks what comes next (untimed runner bookkeeping). With
        ``PREPARE``, ``loss`` (this rank's last training loss) is averaged over the ranks and the
        global batch's mean loss returned. ``STOP`` is sent once."""
        if self._stopped:
            return None
        self._stopped = command == STOP
        if self._stopped:
            try:
                self._send(STOP)
            except Exception:  # a follower is gone (interrupted, crashed): none to release
                pass
            return None
        self._send(command)
        if command == PREPARE:
            return self._mean_loss(loss)
        return None

    def follow(self, workload: Workload, algorithm: Algorithm, hp: dict[str, Any],
               seed: int) -> int:  # fmt: skip
        """A rank other than 0: build the trial's model and state as rank 0 does and execute its
        commands until ``STOP``; returns the number of updates run. An exception in the
        algorithm is held until rank 0 shows it did not fail the same way (it asks for another
        step): a deterministic crash is recorded by rank 0 alone, as in one process."""
        from trainlab.bench.runner import warm_up  # (the runner imports this module)

        warm_up(workload, seed)  # as rank 0 does: its first timed step would wait for ours
        if self._receive() != START:
            return 0
        batch_size = algorithm.batch_size(workload, hp)
        torch.manual_seed(seed)
        model = workload.init_model(seed)
        stream = workload.batches(batch_size, seed)
        self.attach(model)
        failure: BaseException | None = None
        step = 0
        loss: Any = float("nan")
        try:
            state = algorithm.init(workload, model, hp, seed)
            batches = self.shard(algorithm.select_data(state, stream))
        except Exception as exc:
            failure = exc
        while True:
            command = self._receive()
            if command == STOP:
                return step
            if failure is not None:
                raise failure
            try:
                if command == STEP:
                    loss = algorithm.update(state, next(batches), step)
                    step += 1
                elif command == PREPARE:
                    self._mean_loss(loss)
                    algorithm.prepare_for_eval(state)
            except Exception as exc:
                failure = exc


# --------------------------------------------------------------------------------------------
# Launching


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this rank when the process that launched it dies (a benchmark's
    pool worker exits at once when its parent is killed; its ranks must not linger in a
    collective). Elsewhere a rank still stops at the collective timeout."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - no libc.so.6
        pass


def _interrupt_once(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _entry(fn: Callable[..., Any], modules: Sequence[str], device_type: str, threads: int,
           args: tuple) -> Any:  # fmt: skip
    """What each launched process runs: import the modules that register the trial's workload
    and algorithm (a plugin or a test module), set the thread count, join the group, call
    ``fn(group, *args)``, leave the group. Returns ``fn``'s value."""
    from torch.distributed.elastic.multiprocessing.errors import record

    @record  # an exception here reaches the launcher's error as its message
    def body() -> Any:
        # Ctrl-C reaches every rank and, again, from the launcher as it shuts them down: the
        # first one interrupts (rank 0 records the trial as interrupted), later ones wait
        signal.signal(signal.SIGINT, _interrupt_once)
        _die_with_parent()
        for name in modules:
            if name not in sys.modules:
                importlib.import_module(name)
        torch.set_num_threads(threads)
        group = Group.from_env(device_type)
        try:
            return fn(group, *args)
        finally:
            group.close()

    return body()


def launch(fn: Callable[..., Any], nproc: int, *args: Any, device_type: str = "cpu",
           threads: int | None = None, modules: Sequence[str] = ()) -> Any:  # fmt: skip
    """Run ``fn(group, *args)`` on ``nproc`` local processes, as ``torchrun --standalone
    --nproc-per-node nproc`` would, and return rank 0's value.

    ``fn`` and ``args`` must pickle (a module-level function; names rather than objects).
    ``modules`` are imported in each process first (where the workload or algorithm is
    registered). ``threads`` is torch's intra-op thread count per rank (default: the cores
    shared out). Raises :class:`TrainlabError` with the first failure when a rank fails.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if threads is None:
        threads = max(1, available_cores() // nproc)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"trainlab-{uuid.uuid4().hex}",
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
        monitor_interval=0.1, start_method="spawn",
    )  # fmt: skip
    quiet = logging.getLogger("torch.distributed.elastic")  # its warnings repeat ours
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        values = elastic_launch(config, _entry)(fn, list(modules), device_type, threads, args)
    except SignalException as exc:  # Ctrl-C (SIGINT) or SIGTERM: the ranks are stopped
        raise KeyboardInterrupt from exc
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        message = failure.message
        if isinstance(message, dict):  # the error file of a recorded exception
            message = message.get("message", "")
        lines = str(message or "").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {failure.exitcode}"
        raise TrainlabError(f"--nproc: rank {rank} failed: {detail}") from None
    finally:
        quiet.setLevel(level)
    return values[0]
