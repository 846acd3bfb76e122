"""A benchmark: algorithms x workloads under a tuning ruleset, planned up front, resumable.

A benchmark is a row in the results store keyed by a fingerprint (SHA-256) of its full
configuration: the ruleset, trial and study counts, the seed of the Halton sequence, the mode
and budgets, and, resolved, every workload's target and budget and every algorithm's search
space. All its trials are planned before any runs, as ``pending`` rows carrying everything a
worker needs (hyperparameters, training seed, study, index, budget, target). Running a
benchmark runs exactly its unfinished trials (``pending``, or ``running`` left by a killed
process: those are rerun from scratch, the store discards their partial evaluations), so
``--resume`` and re-running the same command are the same thing. One process should drive a
given benchmark at a time.

Budgets. Time mode (the default): each trial gets the workload's ``max_runtime`` (or
``max_runtime=``) seconds of timed training. Step mode (``eval_every_steps``): evaluations every
N steps and a step budget (the workload's, or ``max_steps=``); runs are bitwise reproducible.
The self-tuning ruleset multiplies either budget by 1.5.

Held-out variants (``variants=True``): every listed base workload brings its variants
(``name:variant``), tuned and run by the same protocol; scoring uses them only to penalize.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainlab.bench import searchers, sensitivity, tuning
from trainlab.bench.budgets import trial_spec
from trainlab.bench.checkpoints import remove_benchmark
from trainlab.bench.drain import drain
from trainlab.bench.early_stop import check_early_stop
from trainlab.bench.store import STALE_AFTER, Store
from trainlab.errors import OutOfRangeWarning
from trainlab.spec import UNFINISHED, TrainlabError, WorkloadSpec
from trainlab.workloads.targets import check_source

SEARCHERS = searchers.SEARCHERS
FINGERPRINT_VERSION = 2  # 2: trial specs (eval period, step hint, target source)


@dataclass
class BenchmarkConfig:
    """What a benchmark is; everything here (resolved) goes into its fingerprint."""

    workloads: list[str]
    algorithms: list[str]
    ruleset: str = "external"
    n_trials: int = 5
    n_studies: int = 3  # AlgoPerf v0.6: 3 studies x 5 trials
    seed: int = 0
    #: ``None``: time mode; an int: step mode, evaluate every N steps; ``"auto"``: step mode
    #: with each workload's own ``eval_every_steps``
    eval_every_steps: int | str | None = None
    #: step budget override (step mode), before the ruleset's multiplier
    max_steps: int | None = None
    #: timed-seconds budget override (time mode), before the ruleset's multiplier
    max_runtime: float | None = None
    #: multiply every workload's budget (``max_runtime`` or the step budget) by this, for quick
    #: looks (the demo); 1 is the benchmark proper
    budget_scale: float = 1.0
    variants: bool = False
    #: keep training after the target (target setting needs the best value)
    full_curve: bool = False
    #: ruleset ``fixed``: the hyperparameters of each algorithm; ``external``: values held fixed
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "cpu"
    #: where targets and budgets come from: ``tuned``, ``class`` or a targets file
    targets: str = "tuned"
    #: data-parallel processes per trial (``bench.distributed``); 1: one process
    nproc: int = 1
    #: how the hyperparameter points are searched (``bench.searchers``): ``halton`` (every
    #: point to the full budget), ``asha`` (successive halving) or ``pbt`` (population based)
    search: str = "halton"
    #: ASHA's reduction factor and number of rungs (``None``: ``asha.default_rungs``)
    eta: int = 3
    asha_rungs: int | None = None
    #: PBT (``bench.pbt``): population (``None``: ``n_trials``), steps per segment (``None``:
    #: ~8 rounds over the budget), truncation quantile, resampling probability
    population: int | None = None
    pbt_ready: int | None = None
    pbt_quantile: float = 0.25
    pbt_resample: float = 0.25
    #: learning-curve early stopping (``bench.early_stop``): ``none`` or a predictor, and the
    #: P(target) below which a trial is stopped
    early_stop: str = "none"
    early_stop_threshold: float = 0.05
    #: an LR-sensitivity sweep (``bench.sensitivity``): trial ``i`` of study ``s`` runs the
    #: i-th learning rate, seed ``s``, other hyperparameters at their defaults
    sensitivity_lrs: list[float] | None = None

    def __post_init__(self) -> None:
        check_early_stop(self.early_stop, self.early_stop_threshold)
        if self.ruleset not in tuning.ALL_RULESETS:
            raise TrainlabError(
                f"unknown ruleset {self.ruleset!r}; choose one of {', '.join(tuning.RULESETS)}"
            )
        if not self.workloads:
            raise TrainlabError("no workloads given (-w NAME[,NAME...])")
        if not self.algorithms:
            raise TrainlabError("no algorithms given (-a NAME[,NAME...])")
        for name, values in (("workload", self.workloads), ("algorithm", self.algorithms)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise TrainlabError(f"{name} {dupes[0]!r} is listed twice")
        if self.n_trials < 1 or self.n_studies < 1:
            raise TrainlabError("--trials and --studies must be >= 1")
        if isinstance(self.eval_every_steps, int) and self.eval_every_steps < 1:
            raise TrainlabError(f"--eval-every-steps must be >= 1, got {self.eval_every_steps}")
        if isinstance(self.eval_every_steps, str) and self.eval_every_steps != "auto":
            raise TrainlabError(
                f"--eval-every-steps takes N or auto, got {self.eval_every_steps!r}"
            )
        if self.max_steps is not None:
            if self.eval_every_steps is None:
                raise TrainlabError(
                    "--max-steps applies to step mode: add --eval-every-steps N|auto"
                )
            if self.max_steps < 1:
                raise TrainlabError(f"--max-steps must be >= 1, got {self.max_steps}")
        check_source(self.targets)
        if not (self.budget_scale > 0 and math.isfinite(self.budget_scale)):
            raise TrainlabError(f"--budget-scale must be > 0, got {self.budget_scale}")
        if self.max_runtime is not None:
            if self.eval_every_steps is not None:
                raise TrainlabError("--max-runtime applies to time mode: drop --eval-every-steps")
            if not self.max_runtime > 0:
                raise TrainlabError(f"--max-runtime must be > 0, got {self.max_runtime}")
        searchers.check(self)

    @property
    def step_mode(self) -> bool:
        return self.eval_every_steps is not None

    def options(self) -> dict[str, Any]:
        out = asdict(self)
        if out["nproc"] == 1:  # benchmarks planned before --nproc keep their keys
            del out["nproc"]
        searchers.options(self, out)  # and those planned before --search (and its kinds)
        if out["early_stop"] == "none":  # and those before --early-stop
            del out["early_stop"], out["early_stop_threshold"]
        if out["sensitivity_lrs"] is None:  # and every benchmark but an LR sweep
            del out["sensitivity_lrs"]
        return out

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> BenchmarkConfig:
        return cls(**options)


@dataclass
class ResolvedWorkload:
    """One workload of a benchmark (a base workload or a variant) with its trial spec."""

    name: str
    variant: str
    spec: WorkloadSpec

    @property
    def full_name(self) -> str:
        return f"{self.name}:{self.variant}" if self.variant else self.name

    def row_fields(self) -> dict[str, Any]:
        """The spec as trial-row columns (what the worker reads back with
        :func:`trainlab.bench.budgets.spec_of_row`)."""
        spec = self.spec
        return {
            "workload": self.name,
            "variant": self.variant,
            "mode": spec.mode,
            "eval_every_steps": spec.eval_every_steps,
            "max_runtime": spec.max_runtime,
            "max_steps": spec.max_steps,
            "eval_period": spec.eval_period,
            "step_hint": spec.step_hint,
            "target_source": spec.source,
            "target_metric": spec.target.metric,
            "target_value": spec.target.value,
            "higher_is_better": int(spec.target.higher_is_better),
        }


def expand_workloads(names: list[str], variants: bool, device: str = "cpu") -> list[Any]:
    """Workload objects for ``names`` and, with ``variants``, each base workload's variants
    right after it."""
    from trainlab.registry import get_workload

    options = {} if device == "cpu" else {"device": device}
    out, seen = [], set()
    for name in names:
        workload = get_workload(name, **options)
        group = [workload]
        if variants and not workload.variant_name:
            group += [get_workload(name, v, **options) for v in workload.variants]
        for w in group:
            if w.full_name not in seen:
                seen.add(w.full_name)
                out.append(w)
    return out


def resolve_workload(workload: Any, config: BenchmarkConfig) -> ResolvedWorkload:
    spec = trial_spec(
        workload,
        config.targets,
        eval_every_steps=config.eval_every_steps,
        max_steps=config.max_steps,
        max_runtime=config.max_runtime,
        budget_scale=config.budget_scale,
        multiplier=tuning.budget_multiplier(config.ruleset),
    )
    return ResolvedWorkload(workload.name, workload.variant_name or "", spec)


@dataclass
class Plan:
    """A resolved benchmark: its fingerprint, stored configuration and planned trial rows."""

    config: BenchmarkConfig
    key: str
    stored_config: dict[str, Any]
    rows: list[dict[str, Any]]
    notes: list[str]


def make_plan(config: BenchmarkConfig) -> Plan:
    """Resolve names, budgets and targets, draw the hyperparameter points, fingerprint it all."""
    from trainlab.registry import get_algorithm

    expanded = expand_workloads(config.workloads, config.variants, config.device)
    workloads = [resolve_workload(w, config) for w in expanded]
    algorithms = [get_algorithm(name) for name in config.algorithms]
    for algorithm in algorithms:  # refused pairs fail here, before anything is stored
        for w in expanded:
            algorithm.check_workload(w)
    notes = []
    for name, algorithm in zip(config.algorithms, algorithms, strict=True):
        searchers.check_algorithm(config, name, algorithm)
        if algorithm.self_tuning and config.ruleset == "external":
            notes.append(
                f"{name} has no hyperparameters (self-tuning): under the external ruleset it "
                "runs its defaults once per study, with the external budget"
            )
        if config.ruleset == "fixed" and name not in config.hyperparameters:
            raise TrainlabError(f"ruleset fixed: no hyperparameters given for {name}")
    resolved = {
        "version": FINGERPRINT_VERSION,
        "ruleset": config.ruleset,
        "n_trials": config.n_trials,
        "n_studies": config.n_studies,
        "seed": config.seed,
        "mode": "steps" if config.step_mode else "time",
        "full_curve": config.full_curve,
        "budget_scale": config.budget_scale,
        "targets": config.targets,
        "workloads": [w.row_fields() for w in workloads],
        "algorithms": [
            {"name": name, "search_space": a.search_space.to_json(),
             **({"source": a.source_digest} if a.source_digest else {})}
            for name, a in zip(config.algorithms, algorithms, strict=True)
        ],
        "hyperparameters": config.hyperparameters,
        "device": config.device,
    }
    if config.nproc > 1:
        resolved["nproc"] = config.nproc
    if config.search != "halton":
        resolved["search"] = searchers.resolved(config)
    search = {}
    if config.early_stop != "none":
        search["early_stop"] = resolved["early_stop"] = {
            "method": config.early_stop, "threshold": config.early_stop_threshold}
    if config.sensitivity_lrs:  # its learning rates may leave the tuning ranges
        resolved["sensitivity_lrs"] = config.sensitivity_lrs
        search["lr_sweep"] = True
    key = hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[
        :20
    ]
    stored = {"options": config.options(), "resolved": resolved}

    plans: list[tuple[tuple, dict[str, Any]]] = []
    for a_index, (name, algorithm) in enumerate(zip(config.algorithms, algorithms, strict=True)):
        trials = tuning.plan_algorithm(
            algorithm,
            config.ruleset,
            searchers.n_points(config),
            config.n_studies,
            config.seed,
            config.hyperparameters.get(name),
        ) if not config.sensitivity_lrs else sensitivity.sweep_trials(
            algorithm, config.sensitivity_lrs, config.n_studies, config.seed)
        for w_index, w in enumerate(workloads):
            for t in trials:
                # hp-dependent preconditions of every planned point, before anything is stored
                with warnings.catch_warnings():  # a sweep leaves the lr range on purpose
                    warnings.simplefilter("ignore", OutOfRangeWarning)
                    hp = algorithm.search_space.validate(
                        t.hyperparameters, allow_out_of_range=bool(config.sensitivity_lrs))
                algorithm.check_hyperparameters(expanded[w_index].with_spec(w.spec), hp)
                if config.nproc > 1:  # every global batch must split evenly over the ranks
                    from trainlab.bench.distributed import check_nproc

                    batch = algorithm.batch_size(expanded[w_index], hp)
                    check_nproc(config.nproc, batch, config.device)
                row = {
                    "study": t.study,
                    "trial_index": t.trial_index,
                    "algorithm": name,
                    "hyperparameters": t.hyperparameters,
                    "seed": t.seed,
                    "nproc": config.nproc,
                    **w.row_fields(),
                    **({"search": search} if search else {}),
                }
                plans.append(((t.study, t.trial_index, w_index, a_index), row))
    plans.sort(key=lambda item: item[0])  # study-major: early studies complete first
    rows = searchers.plan_rows(config, [row for _, row in plans])
    return Plan(config, key, stored, rows, notes)


def _slot(row: dict[str, Any]) -> tuple:
    return (
        row["algorithm"],
        row["workload"],
        row["variant"] or "",
        row["study"],
        row["trial_index"],
    )


def prepare(store: Store, plan: Plan) -> tuple[int, bool]:
    """The benchmark's id (created if new) with every planned trial present as a row, written
    in one transaction with the benchmark (so every kill point resumes)."""
    return store.plan_benchmark(plan.key, plan.stored_config, plan.rows, _slot)


def _check_cores(config: BenchmarkConfig, jobs: int, cores: int) -> None:
    if config.nproc > 1 and config.device == "cpu" and jobs * config.nproc > cores:
        raise TrainlabError(f"--jobs {jobs} x --nproc {config.nproc} processes need "
                            f"{jobs * config.nproc} cores; this machine has {cores}")


@dataclass
class BenchmarkRun:
    """What one invocation did."""

    benchmark_id: int
    key: str
    created: bool
    total: int
    already_finished: int
    ran: int
    counts: dict[str, int]
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: untimed evaluation seconds / wall seconds over the benchmark's finished trials (None
    #: before any finished): what the fine evaluation cadence costs
    eval_share: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_benchmark(
    config: BenchmarkConfig | None,
    store_path: str | Path,
    *,
    jobs: int | None = None,
    threads: int | None = None,
    executor: str = "local",
    benchmark_id: int | None = None,
    on_note: Callable[[str], None] | None = None,
    on_start: Callable[[Store, int, dict[int, dict], int], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    on_trial_done: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
    stale_after: float = STALE_AFTER,
    plan_only: bool = False,
) -> BenchmarkRun:
    """Plan (or find) the benchmark and run its unfinished trials.

    ``jobs`` trials run at once (default: one per core), each with ``threads`` torch threads
    (default: ``max(1, cores // jobs)``); ``jobs=1`` runs them in this process.

    With ``config=None`` the benchmark ``benchmark_id`` (or the store's latest) is resumed from
    its stored plan, without re-resolving anything.

    Progress goes to plain callbacks, called in this process, only when trials are left to run:
    ``on_start(store, benchmark_id, rows_by_id, finished_before)`` before the first,
    ``on_tick()`` about once a second while they run, ``on_trial_done(row, outcome)`` after
    each (the command line draws its display with them).

    Trials are claimed one at a time as executor slots free up (:meth:`Store.claim_next`), so
    any number of ``bench``, ``bench --resume`` and ``worker`` processes can share a benchmark
    and none trains a trial another live process holds; when nothing is left to claim, this
    waits for the trials other processes hold, and takes over those whose holder died (no
    heartbeat for ``stale_after`` seconds)."""
    from trainlab.bench.executors import available_cores, make_executor, threads_per_job

    start = time.perf_counter()
    cores = available_cores()
    default_jobs = jobs is None
    jobs = jobs if jobs is not None else cores
    if jobs < 1:
        raise TrainlabError(f"--jobs must be >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise TrainlabError(f"--threads must be >= 1, got {threads}")
    plan = None if config is None else make_plan(config)  # inputs checked before any write
    if config is not None and default_jobs:  # one data-parallel trial per nproc cores
        jobs = max(1, cores // config.nproc)
    if config is not None and not plan_only:
        _check_cores(config, jobs, cores)
    store = Store(store_path, create=config is not None, stale_after=stale_after)
    try:
        if config is None:
            record = store.benchmark(benchmark_id)
            benchmark_id, key, created = int(record["id"]), record["key"], False
            options = record["config"].get("options")
            if options is None:
                raise TrainlabError(
                    f"benchmark {benchmark_id} has no stored options to resume from"
                )
            config = BenchmarkConfig.from_options(options)
            if default_jobs:
                jobs = max(1, cores // config.nproc)
            notes: list[str] = []
        else:
            notes = plan.notes
            key = plan.key
        if not plan_only:
            _check_cores(config, jobs, cores)
        # the executor exists (ray importable, say) before the plan is written
        ex = None if plan_only else make_executor(
            executor,
            store.location.target,
            jobs,
            threads or threads_per_job(jobs * config.nproc, cores),
            config.full_curve,
            config.device,
            owner=store.owner,
        )
        if plan is not None:
            benchmark_id, created = prepare(store, plan)
        elif not store.trials(benchmark_id=benchmark_id):  # a plan lost by an older trainlab
            plan = make_plan(config)
            if plan.key != key:
                raise TrainlabError(
                    f"benchmark {benchmark_id} has no trials and its configuration changed "
                    "since (targets or search spaces); start it again with bench -w ... -a ..."
                )
            prepare(store, plan)
        for note in notes:
            (on_note or (lambda s: None))(f"note: {note}")

        rows = {r["id"]: r for r in store.trials(benchmark_id=benchmark_id)}
        todo = sorted(t for t, r in rows.items() if r["status"] in UNFINISHED)
        finished_before = len(rows) - len(todo)
        ran = 0

        def on_done(trial_id: int, outcome: dict[str, Any]) -> None:
            if trial_id not in rows:  # added while running (an ASHA promotion, a PBT segment)
                rows[trial_id] = store.trial(trial_id)
            if on_trial_done is not None:
                on_trial_done(rows[trial_id], outcome)

        if todo and on_start is not None and not plan_only:
            on_start(store, benchmark_id, rows, finished_before)
        if not plan_only:
            claim = searchers.claimer(store, benchmark_id, config)
            ran = drain(store, benchmark_id, ex, on_done, on_tick, claim)
        counts = store.status_counts(benchmark_id)
        eval_share = store.eval_share(benchmark_id)
        if not plan_only and config.search == "pbt" and not set(counts) & set(UNFINISHED):
            remove_benchmark(store.location, benchmark_id)  # no segment will load them again
    finally:
        store.close()
    return BenchmarkRun(
        benchmark_id=benchmark_id,
        key=key,
        created=created,
        total=sum(counts.values()) or len(rows),  # with the rows a searcher added
        already_finished=finished_before,
        ran=ran,
        counts=counts,
        seconds=time.perf_counter() - start,
        notes=notes,
        eval_share=eval_share,
    )
