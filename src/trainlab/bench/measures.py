"""Measures of a trial beside AlgoPerf's wall-clock time-to-target.

* **CPU time to target** (``--by cpu-time``): process CPU seconds (``time.process_time``) spent
  in the timed sections, up to the first evaluation that meets the target. Another process on
  the machine takes wall-clock time from a trial by time-slicing its cores; the trial's own CPU
  seconds are not counted while it waits, so this measure moves little when the machine is
  busy (``benchmarks/contention.py`` measures how little). It counts every thread of the
  process: with one torch thread per trial (the benchmark's default) it is the training
  thread's time; with several, spinning worker threads add to it. On CUDA the host spins while
  it waits for the device, so it follows wall time there.
* **FLOPs to target** (``--by flops``): floating-point operations counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products, convolutions, attention) on a
  throwaway copy, before the clock starts: the first step (``init``, the first batch drawn and
  the first update, which carry one-off work such as scoring a data set) plus the steady-state
  step times the remaining steps. Free of machine noise; blind to element-wise work, to
  periodic work after the first step, and to what a FLOP costs on a given machine.
* **Contention flag**: a trial is flagged when, with one torch thread, it got less than 2/3 of a
  core over its timed sections (CPU / wall), or when a stretch of at least 10 % of its steps
  (and 20 steps) each took more than twice its own median step time.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from trainlab.spec import Algorithm, Workload

#: below this share of a core (CPU seconds / wall seconds, one thread) a trial is contended
MIN_CORE_SHARE = 2 / 3
#: a step slower than this many times the trial's median counts toward a slow stretch
SLOW_STEP_FACTOR = 2.0

_FLOPS: dict[str, tuple[float, float]] = {}


def _count(fn) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def step_flops(
    workload: Workload, algorithm: Algorithm, hp: dict[str, Any], seed: int, batch_size: int
) -> tuple[float, float]:
    """``(first, steady)``: FLOPs of the first step (init, first batch, first update) and of a
    later step, measured on a throwaway model under a forked RNG so the trial itself is
    unaffected. Cached per (workload, algorithm, hyperparameters) within a process."""
    key = json.dumps([workload.full_name, algorithm.name, hp, batch_size], sort_keys=True,
                     default=str)  # fmt: skip
    if key not in _FLOPS:
        devices = [workload.device] if workload.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            model = workload.init_model(seed)
            stream = workload.batches(batch_size, seed)
            box: dict[str, Any] = {}

            def first() -> None:
                box["state"] = algorithm.init(workload, model, hp, seed)
                box["batches"] = algorithm.select_data(box["state"], stream)
                algorithm.update(box["state"], next(box["batches"]), 0)

            first_flops = _count(first)
            steady = _count(lambda: algorithm.update(box["state"], next(box["batches"]), 1))
        _FLOPS[key] = (first_flops, steady)
    return _FLOPS[key]


def flops_to(steps: int, first: float, steady: float) -> float:
    """FLOPs after ``steps`` updates: the first step, then steady ones."""
    return 0.0 if steps <= 0 else first + steady * (steps - 1)


def longest_slow_stretch(step_seconds: Sequence[float], factor: float = SLOW_STEP_FACTOR) -> int:
    """The longest run of consecutive steps each slower than ``factor`` x the median step."""
    if not step_seconds:
        return 0
    limit = factor * statistics.median(step_seconds)
    longest = current = 0
    for seconds in step_seconds:
        current = current + 1 if seconds > limit else 0
        longest = max(longest, current)
    return longest


def is_contended(
    step_seconds: Sequence[float], timed_seconds: float, cpu_seconds: float, threads: int
) -> bool:
    """The contention rule of the module doc."""
    if threads == 1 and timed_seconds > 0 and cpu_seconds / timed_seconds < MIN_CORE_SHARE:
        return True
    need = max(20, 0.1 * len(step_seconds))
    return longest_slow_stretch(step_seconds) >= need
