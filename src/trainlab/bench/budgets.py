"""A trial's budget and evaluation cadence, resolved once from the workload's spec.

The rules, shared by ``trainlab run`` and every benchmark:

* **Target** from the target source (``tuned``, ``class`` or a file; see
  :mod:`trainlab.workloads.targets`).
* **Time mode.** The budget is ``max_runtime`` (or the user's ``--max-runtime``) x
  ``budget_scale`` x the ruleset's multiplier (1.5 for self-tuning). The evaluation period is
  that budget before the ruleset multiplier divided by 1.2 x ``EVALS_PER_RUN`` (50), so a full run,
  a scaled-down demo and a self-tuning run all evaluate at least 50 times with the same
  cadence.
* **Step mode.** The budget is ``max_steps`` (or the workload's step budget) x ``budget_scale``
  x the multiplier; ``eval_every_steps="auto"`` evaluates at least 50 times per budget.
* **A step budget sets the schedule.** In step mode ``step_hint``, the schedule unit that
  ``horizon`` multiplies, is ``--max-steps`` (x ``budget_scale``) when a step budget is given,
  and the workload's ``step_hint`` x ``budget_scale`` otherwise. So a 300-step run with
  ``horizon = 1`` decays fully by step 300, where it used to stop with the learning rate near
  its peak. In time mode the schedule keeps the workload's ``step_hint``: a time budget does
  not say how many steps it buys.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from trainlab.spec import (
    EVALS_PER_RUN,
    Target,
    TrainlabError,
    Workload,
    WorkloadSpec,
    eval_period_for,
)
from trainlab.workloads.targets import resolve_spec


def _positive(name: str, value: float | None) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise TrainlabError(f"{name} must be a finite number > 0, got {value}")


def trial_spec(
    workload: Workload,
    targets: str = "tuned",
    *,
    eval_every_steps: int | str | None = None,
    max_steps: int | None = None,
    max_runtime: float | None = None,
    budget_scale: float = 1.0,
    multiplier: float = 1.0,
) -> WorkloadSpec:
    """The spec one trial of ``workload`` runs under (see the module doc for the rules).

    ``eval_every_steps`` (an int or ``"auto"``) selects step mode; ``max_steps`` applies to step
    mode only and ``max_runtime`` to time mode only. Raises :class:`TrainlabError` on a
    non-positive or non-finite value or a budget of the other mode.
    """
    _positive("--budget-scale", budget_scale)
    _positive("--max-runtime", max_runtime)
    step_mode = eval_every_steps is not None
    if max_steps is not None and (not step_mode or max_steps < 1):
        raise TrainlabError(
            "--max-steps applies to step mode (--eval-every-steps N|auto) and must be >= 1"
        )
    if max_runtime is not None and step_mode:
        raise TrainlabError("--max-runtime applies to time mode: drop --eval-every-steps")
    full = resolve_spec(workload, targets)
    if not step_mode:
        # the schedule keeps its length in steps: a time budget says nothing of how many steps
        # it buys (a generous class max_runtime would otherwise cut a schedule short)
        base = (max_runtime if max_runtime is not None else full.max_runtime) * budget_scale
        return dataclasses.replace(
            full,
            max_runtime=base * multiplier,
            eval_period=eval_period_for(base, workload.eval_period),
        )
    if max_steps is not None:
        steps, hint = max_steps * budget_scale, max_steps * budget_scale
    else:
        default_budget = workload.max_steps or 3 * full.step_hint
        steps, hint = default_budget * budget_scale, full.step_hint * budget_scale
    if eval_every_steps == "auto":
        every = max(1, math.floor(steps / EVALS_PER_RUN))
        if workload.eval_every_steps:
            every = min(every, workload.eval_every_steps)
    elif isinstance(eval_every_steps, int) and eval_every_steps >= 1:
        every = eval_every_steps
    else:
        raise TrainlabError(f"--eval-every-steps takes N >= 1 or auto, got {eval_every_steps!r}")
    budget_steps = max(1, math.ceil(steps * multiplier - 1e-9))
    if every > budget_steps:
        raise TrainlabError(
            f"--eval-every-steps {every} is larger than the step budget ({budget_steps} steps): "
            "the run would never be evaluated"
        )
    return dataclasses.replace(
        full,
        step_hint=max(1, round(hint)),
        eval_every_steps=every,
        max_steps=budget_steps,
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
