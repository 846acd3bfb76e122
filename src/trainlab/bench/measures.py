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
* **Reference steps to target** (``--by ref-steps``): CPU time to target divided by the CPU time
  of a *reference step* (a plain forward and backward pass of the workload's own model on a
  fixed batch, no update) measured beside the trial: before it starts and after each
  evaluation, untimed. Each stretch of training between two measurements is divided by the
  mean of the two. CPU time alone is immune to time-slicing but not to a busy sibling on a
  shared physical core (SMT) or a lower clock frequency, which slow every instruction; those
  slow the reference step as much as the trial's own steps, so the ratio cancels them. The unit
  is "plain training steps of this workload", so it also reads as a cost: an algorithm at 1200
  reference steps did the work of 1,200 plain steps. ``benchmarks/contention.py`` compares it
  with the others.
* **Contention flag**: a trial is flagged when, with one torch thread, it got less than 2/3 of a
  core over its timed sections (CPU / wall), when a stretch of at least 10 % of its steps (and
  20 steps) each took more than twice its own median step time, or when its reference step
  varied by more than 1.5x over the trial.
"""

from __future__ import annotations

import json
import math
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


#: the reference step may vary by this factor over a trial before the trial is flagged
MAX_REFERENCE_SPREAD = 1.5
#: reference steps per measurement (the median is kept)
REFERENCE_REPEATS = 3


class ReferenceStep:
    """A plain forward and backward pass of ``workload``'s model on a fixed batch of
    ``batch_size`` training examples, timed with ``cpu_clock`` (the median of
    :data:`REFERENCE_REPEATS`). Its model is its own: the trial's model, gradients and RNG
    are untouched."""

    def __init__(self, workload: Workload, batch_size: int, cpu_clock, sync) -> None:
        devices = [workload.device] if workload.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            self.model = workload.init_model(0)
            self.batch = next(workload.batches(batch_size, 0))
        self.workload, self.cpu_clock, self.sync = workload, cpu_clock, sync

    def measure(self) -> float:
        """CPU seconds of one reference step (the median of a few)."""
        times = []
        for _ in range(REFERENCE_REPEATS):
            self.model.zero_grad(set_to_none=True)
            self.sync()
            c0 = self.cpu_clock()
            self.workload.mean_loss(self.model, self.batch).backward()
            self.sync()
            times.append(self.cpu_clock() - c0)
        return statistics.median(times)


class ReferenceClock:
    """Accumulates CPU seconds of training in units of the reference step: each stretch
    between two reference measurements is divided by their mean."""

    def __init__(self, first: float) -> None:
        self.last_reference = first
        self.references = [first]
        self.last_cpu = 0.0
        self.steps = 0.0

    def advance(self, cpu_seconds: float, reference: float) -> float:
        """Training reached ``cpu_seconds`` (cumulative) and the reference step now takes
        ``reference`` seconds; returns the reference steps so far."""
        mean = 0.5 * (self.last_reference + reference)
        if mean > 0:
            self.steps += (cpu_seconds - self.last_cpu) / mean
        self.last_cpu, self.last_reference = cpu_seconds, reference
        self.references.append(reference)
        return self.steps

    @property
    def spread(self) -> float:
        """Slowest over fastest reference measurement."""
        fastest = min(self.references)
        return max(self.references) / fastest if fastest > 0 else math.inf


def is_contended(
    step_seconds: Sequence[float],
    timed_seconds: float,
    cpu_seconds: float,
    threads: int,
    reference_spread: float = 1.0,
) -> bool:
    """The contention rule of the module doc."""
    if threads == 1 and timed_seconds > 0 and cpu_seconds / timed_seconds < MIN_CORE_SHARE:
        return True
    if reference_spread > MAX_REFERENCE_SPREAD:
        return True
    need = max(20, 0.1 * len(step_seconds))
    return longest_slow_stretch(step_seconds) >= need
