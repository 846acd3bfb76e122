"""What one trial under the timing rules gives back (:class:`TrialResult`), what the runner
(:mod:`trainlab.bench.runner`) reports to a progress callback (:class:`Progress`), and the
one-line text of a benchmark's trial and its outcome (:func:`describe_trial`,
:func:`outcome_line`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trainlab.spec import EvalRecord


@dataclass
class TrialResult:
    workload: str
    algorithm: str
    hyperparameters: dict[str, Any]
    seed: int
    mode: str
    status: str = "running"
    time_to_target: float | None = None
    steps_to_target: int | None = None
    timed_seconds: float = 0.0
    eval_seconds: float = 0.0
    wall_seconds: float = 0.0
    n_evals: int = 0
    steps: int = 0
    best_metric: float | None = None
    #: process CPU seconds in the timed sections, and up to the target (see bench.measures)
    cpu_seconds: float = 0.0
    cpu_time_to_target: float | None = None
    #: median timed seconds of one step (init and evaluation preparation excluded)
    median_step_seconds: float | None = None
    #: FLOPs of the steady-state step, and to the target (see bench.measures)
    flops_per_step: float | None = None
    flops_to_target: float | None = None
    #: CPU time to the target in units of the reference step (see bench.measures), and the
    #: median reference step (CPU seconds)
    ref_steps_to_target: float | None = None
    reference_step_seconds: float | None = None
    #: heavy CPU contention was detected during the trial
    contended: bool = False
    test_metrics: dict[str, float] | None = None
    #: what the evaluated model costs to run (see bench.model_cost), measured after training
    model_cost: dict[str, Any] | None = None
    error: str | None = None
    #: status ``stopped-early``: the prediction that stopped the trial (see bench.early_stop)
    stop_reason: dict[str, Any] | None = None
    trial_id: int | None = None
    evals: list[EvalRecord] = field(default_factory=list)

    @property
    def other_seconds(self) -> float:
        return self.wall_seconds - self.timed_seconds - self.eval_seconds

    @property
    def reached(self) -> bool:
        return self.status == "reached"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("evals")
        return out


@dataclass(frozen=True)
class Progress:
    """What the runner reports to a progress callback (untimed)."""

    step: int
    timed_seconds: float
    budget: float  # max_runtime (time mode) or max_steps (step mode)
    mode: str
    last_eval: EvalRecord | None


def describe_trial(row: dict[str, Any]) -> str:
    workload = row["workload"] + (f":{row['variant']}" if row.get("variant") else "")
    return f"#{row['id']} {workload} / {row['algorithm']} s{row['study']} t{row['trial_index']}"


def outcome_line(row: dict[str, Any], outcome: dict[str, Any]) -> str:
    status = outcome.get("status", "?")
    if status == "reached":
        t = outcome.get("time_to_target")
        s = outcome.get("steps_to_target")
        detail = f"reached in {t:.2f} s ({s} steps)" if t is not None else "reached"
    elif status == "failed":
        detail = (
            "FAILED: " + (outcome.get("error") or "").splitlines()[0][:120]
            if outcome.get("error")
            else "FAILED"
        )
    else:
        best = outcome.get("best_metric")
        detail = status + ("" if best is None else f" (best {row.get('target_metric')} {best:.4g})")
    return f"{describe_trial(row)}: {detail}"
