"""One trial under the timing rules.

Timed: ``Algorithm.init``, drawing each batch (``select_data``), ``update`` and
``prepare_for_eval``. Untimed: building the model, evaluation, logging, the store, progress.
On CUDA the device is synchronized before every clock read. The clock is injectable, so tests
drive it by hand.

Two modes:

* **time mode** (the benchmark's): after each step, if ``eval_period`` seconds of timed training
  have passed since the last evaluation, ``prepare_for_eval`` (timed) and then, only if the timed
  total is still within ``max_runtime``, an untimed evaluation. Training stops when the timed
  total passes ``max_runtime``: no free evaluation past the budget.
* **step mode** (``eval_every_steps=N``): evaluate every N steps; the budget is ``max_steps``
  updates and wall-clock time plays no part in any decision, so with a fixed seed on CPU two
  runs give bitwise identical curves and steps-to-target is exact.

Time-to-target (steps-to-target) is the timed seconds (step count) at the first evaluation that
meets the target. A non-finite training loss ends the trial as ``diverged``; an exception in
the algorithm ends it as ``failed`` with its error. ``timed + eval + other == wall``, where
*other* is the untimed bookkeeping (model building, store writes, progress). After the test
evaluation the evaluated model's cost is measured once (:mod:`trainlab.bench.model_cost`,
counted in *eval*).
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch

from trainlab.bench import model_cost
from trainlab.bench.checkpoints import Segment, stream_seed
from trainlab.bench.distributed import PREPARE, STEP, STOP
from trainlab.bench.measures import (
    ReferenceClock,
    ReferenceStep,
    flops_to,
    is_contended,
    step_flops,
)
from trainlab.bench.results import Progress, TrialResult
from trainlab.errors import StoreError
from trainlab.spec import Algorithm, EvalRecord, Workload, WorkloadSpec

Clock = Callable[[], float]


_warmed_up: set[str] = set()


def warm_up(workload: Workload, seed: int) -> None:
    """Pay torch's one-time costs (lazy imports, first-call kernel setup) outside the clock.

    The first trial in a process would otherwise carry seconds that later trials do not, and an
    algorithm would look slow for running first. Done once per workload per process, untimed.
    A generative workload also builds (or loads from the cache) its pool of fresh examples here,
    so that the first one-pass trial on a new machine is not charged for it.
    """
    if workload.full_name in _warmed_up:
        return
    _warmed_up.add(workload.full_name)
    model = workload.init_model(seed)
    batch = next(workload.batches(8, seed))
    workload.loss(model, batch).mean().backward()
    torch.optim.SGD(model.parameters(), lr=0.0).step()
    if workload.generative:
        next(workload.fresh_batches(8, seed))


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def _lr_of(state: Any) -> float | None:
    optimizer = getattr(state, "optimizer", None)
    if optimizer is None or not optimizer.param_groups:
        return None
    return float(optimizer.param_groups[0]["lr"])


#: the training losses are summed every step (a NaN or inf stays in the sum); the sum is checked,
#: a device sync on an accelerator, only every this many steps and before each evaluation
NONFINITE_CHECK_EVERY = 16


def run_trial(
    workload: Workload,
    algorithm: Algorithm,
    hp: dict[str, Any] | None = None,
    seed: int = 0,
    *,
    spec: WorkloadSpec | None = None,
    eval_every_steps: int | None = None,
    max_steps: int | None = None,
    max_runtime: float | None = None,
    full_curve: bool = False,
    count_flops: bool = True,
    measure_cost: bool = True,
    calibrate: bool = True,
    clock: Clock = time.perf_counter,
    cpu_clock: Clock = time.process_time,
    store: Any = None,
    trial_id: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.25,
    allow_out_of_range: bool = False,
    group: Any = None,
    stop_rule: Callable[[WorkloadSpec, list[EvalRecord]], dict[str, Any] | None] | None = None,
    segment: Segment | None = None,
) -> TrialResult:
    """Train ``algorithm`` on ``workload`` until the target is met or the budget is spent.

    ``spec`` is the trial's resolved target, budget and cadence (see
    :func:`trainlab.bench.budgets.trial_spec`); without one, the workload's own attributes are
    used, with ``eval_every_steps``/``max_steps`` (step mode) or ``max_runtime`` overriding
    them. ``hp`` is validated against the algorithm's search space first (a bad name or value
    raises :class:`~trainlab.spec.HyperparameterError` before anything runs;
    ``allow_out_of_range`` accepts values outside a range, for a single exploratory run). With
    a ``store``, the trial row (created unless ``trial_id`` is given) and every evaluation are
    committed as they happen. ``count_flops`` measures FLOPs on a throwaway step and
    ``calibrate`` times a reference step beside the trial (both untimed; see
    :mod:`trainlab.bench.measures`); ``measure_cost`` measures the evaluated model's cost after
    the test split (untimed, counted in eval; :mod:`trainlab.bench.model_cost`). With a
    ``group`` (a data-parallel trial, see :mod:`trainlab.bench.distributed`) every rank calls
    this: rank 0 runs the trial as above, the others only follow its training steps and
    return a result with ``steps`` alone.
    ``stop_rule(spec, evals)``, called (untimed) after each evaluation while the target is
    unmet, ends the trial as ``stopped-early`` when it returns a reason (a JSON-able dict; see
    :mod:`trainlab.bench.early_stop`).
    With a ``segment`` (:mod:`trainlab.bench.checkpoints`; ``--search pbt``) the trial starts
    from the segment's checkpoint, restored untimed (``init`` then ``load_state_dict``), at its
    step, timed and CPU seconds, so evaluations and times to the target are cumulative along the
    lineage; the data stream is reseeded from ``(seed, start step)``; it stops at the segment's
    ``stop_step`` and saves its checkpoint there (untimed).
    """
    hp = algorithm.search_space.validate(hp, allow_out_of_range=allow_out_of_range)
    if spec is None:
        if eval_every_steps is not None and eval_every_steps < 1:
            raise ValueError("eval_every_steps must be >= 1")
        spec = WorkloadSpec(
            target=workload.target,
            max_runtime=float(max_runtime if max_runtime is not None else workload.max_runtime),
            eval_period=float(workload.eval_period),
            step_hint=int(workload.step_hint),
            eval_every_steps=eval_every_steps,
            max_steps=(max_steps or workload.step_budget) if eval_every_steps else None,
        )
    elif (eval_every_steps, max_steps, max_runtime) != (None, None, None):
        raise ValueError("give either spec or eval_every_steps/max_steps/max_runtime, not both")
    workload = workload.with_spec(spec)
    algorithm.check_workload(workload)
    algorithm.check_hyperparameters(workload, hp)
    step_mode = spec.step_mode
    budget_steps = spec.max_steps or 0
    budget_time = spec.max_runtime
    result = TrialResult(
        workload=workload.full_name,
        algorithm=algorithm.name,
        hyperparameters=hp,
        seed=seed,
        mode=spec.mode,
    )
    if group is not None and group.rank > 0:  # distributed: a follower (bench.distributed)
        if store is not None:
            raise ValueError("only rank 0 of a data-parallel trial opens the store")
        result.steps = group.follow(workload, algorithm, hp, seed)
        return result
    # a trial this call creates (a lone run) is closed as failed when interrupted; a trial
    # handed in by a benchmark stays unfinished, so that --resume runs it again
    owns_trial = trial_id is None
    interrupted = False
    if store is not None:
        if trial_id is None:
            trial_id = store.create_trial(
                workload=workload.name,
                variant=workload.variant_name,
                algorithm=algorithm.name,
                hyperparameters=hp,
                seed=seed,
                mode=spec.mode,
                eval_every_steps=spec.eval_every_steps,
                max_runtime=spec.max_runtime,
                max_steps=spec.max_steps,
                eval_period=spec.eval_period,
                step_hint=spec.step_hint,
                target_source=spec.source,
                target_metric=spec.target.metric,
                target_value=spec.target.value,
                higher_is_better=int(spec.target.higher_is_better),
                nproc=1 if group is None else group.world_size,
            )
        store.start_trial(trial_id)
    result.trial_id = trial_id

    sync = _synchronizer(workload.device)
    target = spec.target
    wall_start = clock()
    timed = cpu = 0.0
    eval_total = 0.0
    last_eval_at = 0.0
    last_report = wall_start
    step = prepared_at = 0
    step_seconds: list[float] = []
    last_eval: EvalRecord | None = None
    eval_model = None
    # a NaN or inf stays in a sum: on an accelerator the sum lives on the device (no sync per
    # step); on the CPU reading the loss is cheaper (~0.7 us) than a tensor op (~3 us)
    on_host = workload.device.type == "cpu"
    loss_sum: Any = 0.0 if on_host else torch.zeros((), device=workload.device)
    flops = (0.0, 0.0)
    reference = reference_clock = None
    try:
        # untimed: one-time warm-up, the model (and the data, already in memory)
        warm_up(workload, seed)
        batch_size = algorithm.batch_size(workload, hp)
        if count_flops:
            flops = step_flops(workload, algorithm, hp, seed, batch_size)
            result.flops_per_step = flops[1]
        if calibrate:
            reference = ReferenceStep(workload, workload.batch_size_hint, cpu_clock, sync)
            reference_clock = ReferenceClock(reference.measure())
        resume = None if segment is None else segment.load()
        data_seed = seed if segment is None else stream_seed(seed, segment.start_step)
        torch.manual_seed(data_seed)
        model = workload.init_model(seed)
        stream = workload.batches(batch_size, data_seed)
        if group is not None:  # distributed: average gradients over the ranks
            group.attach(model)

        sync()
        # the CPU clock costs ~2 us a read, so it is read once per step: ``cpu_mark`` is where
        # the last timed section ended, reset after every untimed section (evaluation, progress)
        t0, cpu_mark = clock(), cpu_clock()
        state = algorithm.init(workload, model, hp, seed)
        batches = algorithm.select_data(state, stream)
        if group is not None:  # distributed: this rank's shard of each global batch
            batches = group.shard(batches)
        sync()
        timed += clock() - t0
        if resume is not None:  # a segment: restored untimed (one long run would not restore)
            algorithm.load_state_dict(state, resume["algorithm"])
            step, timed, cpu = resume["step"], resume["timed_seconds"], resume["cpu_seconds"]
            last_eval_at = timed
            if reference_clock is not None:
                reference_clock.last_cpu, reference_clock.steps = cpu, resume["ref_steps"] or 0.0
            cpu_mark = cpu_clock()

        while True:
            if group is not None:  # distributed: the followers step too (untimed)
                group.command(STEP)
            t0 = clock()
            batch = next(batches)
            loss = algorithm.update(state, batch, step)
            if on_host:
                loss_sum += float(loss)
            else:
                loss_sum.add_(loss)
            sync()
            t1 = clock()
            cpu_now = cpu_clock()
            cpu, cpu_mark = cpu + cpu_now - cpu_mark, cpu_now
            timed += t1 - t0
            step_seconds.append(t1 - t0)
            step += 1
            if step % NONFINITE_CHECK_EVERY == 0 and not _finite(loss_sum):
                result.status = "diverged"
                break
            if not step_mode and timed > budget_time:
                break
            due = (
                (step % spec.eval_every_steps == 0)
                if step_mode
                else (timed - last_eval_at >= spec.eval_period)
            )
            if due:
                if not _finite(loss_sum):
                    result.status = "diverged"
                    break
                if group is not None:  # distributed: the global batch's loss (untimed)
                    loss = group.command(PREPARE, loss)
                t0 = clock()
                eval_model = algorithm.prepare_for_eval(state)
                sync()
                timed += clock() - t0
                cpu_now = cpu_clock()
                cpu, cpu_mark = cpu + cpu_now - cpu_mark, cpu_now
                prepared_at = step
                if not step_mode and timed > budget_time:
                    break
                if reference_clock is not None:
                    ref_steps = reference_clock.advance(cpu, reference.measure())
                t0 = clock()
                metrics = workload.evaluate(eval_model, "valid")
                eval_total += clock() - t0
                last_eval_at = timed
                last_eval = EvalRecord(step, timed, metrics, float(loss), _lr_of(state))
                result.evals.append(last_eval)
                algorithm.observe_evaluation(state, last_eval)
                if store is not None:
                    store.add_evaluation(trial_id, last_eval)
                value = metrics.get(target.metric, math.nan)
                if math.isfinite(value) and (
                    result.best_metric is None or target.better(value, result.best_metric)
                ):
                    result.best_metric = value
                cpu_mark = cpu_clock()  # the evaluation and the store write were untimed
                if not math.isfinite(metrics.get("loss", 0.0)):
                    result.status = "diverged"
                    break
                if result.time_to_target is None and target.is_met(metrics):
                    result.time_to_target, result.steps_to_target = timed, step
                    result.cpu_time_to_target = cpu
                    if reference_clock is not None:
                        result.ref_steps_to_target = ref_steps
                    if count_flops:
                        result.flops_to_target = flops_to(step, *flops)
                    if not full_curve:
                        break
                if stop_rule is not None and result.time_to_target is None:
                    result.stop_reason = stop_rule(spec, result.evals)
                    cpu_mark = cpu_clock()  # the benchmark's decision: untimed
                    if result.stop_reason is not None:
                        result.status = "stopped-early"
                        break
            if (step_mode and step >= budget_steps) or (segment and step >= segment.stop_step):
                break
            if on_progress is not None and (due or t1 - last_report >= progress_interval):
                last_report = t1
                budget = budget_steps if step_mode else budget_time
                on_progress(Progress(step, timed, budget, result.mode, last_eval))
                cpu_mark = cpu_clock()
        if result.status == "running" and not _finite(loss_sum):
            result.status = "diverged"
        if (segment is not None and result.status == "running" and step >= segment.stop_step
                and not (step_mode and step >= budget_steps)):  # fmt: skip
            ref = None if reference_clock is None else reference_clock.steps
            segment.save(algorithm.state_dict(state), step, timed, cpu, ref)
        if result.status == "running":
            result.status = "reached" if result.time_to_target is not None else "missed"
        if result.status != "diverged" and step > 0:
            # the test split is scored on the model as evaluated after the last update: when
            # updates ran after the last preparation, prepare again (untimed: the budget is over)
            t0 = clock()
            if eval_model is None or prepared_at < step:
                eval_model = algorithm.prepare_for_eval(state)
            result.test_metrics = workload.evaluate(eval_model, "test")
            if measure_cost:
                result.model_cost = model_cost.measure(workload, algorithm, state, eval_model)
            eval_total += clock() - t0
    except KeyboardInterrupt:
        if not owns_trial:
            raise
        interrupted = True
        result.status = "failed"
        result.error = f"interrupted (KeyboardInterrupt) after {step} steps"
    except StoreError:
        raise  # the store failed, not the algorithm: the trial stays unfinished, to be rerun
    except Exception as exc:  # the algorithm crashed: record it, the caller decides what next
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    result.steps = step
    result.timed_seconds = timed
    result.cpu_seconds = cpu
    result.eval_seconds = eval_total
    result.n_evals = len(result.evals)
    spread = 1.0
    if reference_clock is not None:
        result.reference_step_seconds = statistics.median(reference_clock.references)
        spread = reference_clock.spread
    if step_seconds:
        result.median_step_seconds = statistics.median(step_seconds)
        result.contended = is_contended(
            step_seconds, timed, cpu, torch.get_num_threads(), reference_spread=spread
        )
    result.wall_seconds = clock() - wall_start
    if store is not None:
        store.finish_trial(
            trial_id,
            status=result.status,
            time_to_target=result.time_to_target,
            steps_to_target=result.steps_to_target,
            timed_seconds=result.timed_seconds,
            eval_seconds=result.eval_seconds,
            wall_seconds=result.wall_seconds,
            n_evals=result.n_evals,
            steps=result.steps,
            best_metric=result.best_metric,
            cpu_seconds=result.cpu_seconds,
            cpu_time_to_target=result.cpu_time_to_target,
            ref_steps_to_target=result.ref_steps_to_target,
            reference_step_seconds=result.reference_step_seconds,
            median_step_seconds=result.median_step_seconds,
            flops_per_step=result.flops_per_step,
            flops_to_target=result.flops_to_target,
            contended=int(result.contended),
            test_metrics=result.test_metrics,
            model_cost=result.model_cost,
            error=result.error,
            stop_reason=result.stop_reason,
        )
    if group is not None:  # distributed: release the followers
        group.command(STOP)
    if interrupted:
        raise KeyboardInterrupt
    return result


def _finite(value: Any) -> bool:
    """Whether a number or 0-d tensor is finite; reads a tensor to the host (a device sync)."""
    return math.isfinite(float(value))
