"""``trainlab bench``: plan a benchmark (algorithms x workloads under a ruleset) and run it.

``--resume`` (or ``--benchmark ID``, which implies it) finishes a stored benchmark from its
stored plan, so it takes no plan option: giving one is an error rather than a silent no-op.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from typing import Any

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "bench"
HELP = "run a benchmark: algorithms x workloads under a ruleset"

#: options that define the plan; their defaults are applied in :func:`config` so that
#: ``--resume`` can tell which ones were given
PLAN_DEFAULTS: dict[str, Any] = {
    "workloads": None, "algorithms": None, "ruleset": "external", "trials": 5, "studies": 3,
    "seed": 0, "variants": False, "eval_every_steps": None, "max_steps": None,
    "max_runtime": None, "budget_scale": 1.0, "targets": "tuned", "nproc": 1,
    "search": "halton", "eta": 3, "asha_rungs": None, "tuning_search_space": None,
    "early_stop": "none", "early_stop_threshold": 0.05, "population": None, "pbt_ready": None,
    "pbt_quantile": 0.25, "pbt_resample": 0.25,
}  # fmt: skip
#: the options of --search pbt
PBT_OPTIONS = ("population", "pbt_ready", "pbt_quantile", "pbt_resample")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workloads", action="append", metavar="W1,W2",
                   type=argtypes.name_list(argtypes.workload_name),
                   help="workloads (name or name:variant)")  # fmt: skip
    p.add_argument("-a", "--algorithms", action="append", metavar="A1,A2",
                   type=argtypes.name_list(argtypes.algorithm_name), help="algorithms")  # fmt: skip
    p.add_argument("--ruleset", choices=("external", "self"), default=None,
                   help="external (default): tune N Halton points per study; "
                        "self: defaults, budget x1.5")  # fmt: skip
    p.add_argument("--tuning-search-space", type=argtypes.search_space_file, default=None,
                   metavar="FILE", help="the AlgoPerf search space (JSON) of the algoperf:PATH "
                   "submissions; a list of points runs point i as trial i")  # fmt: skip
    p.add_argument("--trials", type=argtypes.counts, default=None, metavar="N",
                   help="trials per study (external; default 5)")  # fmt: skip
    p.add_argument("--studies", type=argtypes.counts, default=None, metavar="S",
                   help="studies, median over them (default 3, as AlgoPerf v0.6)")  # fmt: skip
    p.add_argument(
        "--seed",
        type=argtypes.seed,
        default=None,
        help="seed of the Halton scramble and the trials (0..2**31-1, default 0)",
    )
    p.add_argument("--variants", action="store_true", default=None,
                   help="also run each workload's held-out variants")  # fmt: skip
    p.add_argument("--targets", type=argtypes.targets_source, default=None,
                   metavar="tuned|class|PATH",
                   help="target source: the committed tuned targets (default), the workloads' "
                   "class targets, or a targets JSON file (trainlab targets -o)")  # fmt: skip
    p.add_argument(
        "--eval-every-steps",
        type=argtypes.eval_every,
        default=None,
        metavar="N|auto",
        help="step mode: evaluate every N steps (auto: each workload's own period)",
    )
    p.add_argument("--max-steps", type=argtypes.positive, default=None, metavar="N",
                   help="step budget (step mode)")  # fmt: skip
    p.add_argument("--max-runtime", type=argtypes.real(0.0), default=None, metavar="SECONDS",
                   help="timed budget of every workload (time mode)")  # fmt: skip
    p.add_argument(
        "--budget-scale",
        type=argtypes.real(0.0, 1000.0),
        default=None,
        metavar="F",
        help="multiply each workload's budget by F (quick looks; default 1)",
    )
    p.add_argument("--search", choices=("halton", "asha", "pbt"), default=None,
                   help="halton (default): every point to the full budget; asha: asynchronous "
                        "successive halving over rungs of budgets; pbt: population based "
                        "training: members exploit and explore every --pbt-ready "
                        "steps")  # fmt: skip
    p.add_argument("--eta", type=argtypes.integer(-10**6, 10**6), default=None, metavar="ETA",
                   help="asha: keep the top 1/ETA of each rung (>= 2; default 3)")  # fmt: skip
    p.add_argument("--asha-rungs", type=argtypes.positive, default=None, metavar="K",
                   help="asha: rungs, the bottom one at budget / ETA^(K-1) (default: as many "
                        "as leave >= 5 evaluations on it)")  # fmt: skip
    anything = argtypes.real(-math.inf, math.inf)  # checked with the plan, for one message
    p.add_argument("--population", type=argtypes.integer(-10**6, 10**6), default=None,
                   metavar="N", help="pbt: members per study (>= 4; default --trials), the "
                   "study's first N Halton points")  # fmt: skip
    p.add_argument("--pbt-ready", type=argtypes.integer(-10**9, 10**9), default=None,
                   metavar="STEPS", help="pbt: steps between exploit/explore decisions "
                   "(default: ~8 rounds over the budget)")  # fmt: skip
    p.add_argument("--pbt-quantile", type=anything, default=None, metavar="Q",
                   help="pbt: the bottom Q exploits the top Q, Q in (0, 0.5] "
                   "(default 0.25)")  # fmt: skip
    p.add_argument("--pbt-resample", type=anything, default=None, metavar="P",
                   help="pbt: probability of drawing a hyperparameter afresh instead of "
                   "perturbing it by 0.8 or 1.2, in [0, 1] (default 0.25)")  # fmt: skip
    p.add_argument("--early-stop", choices=("none", "lc-parametric", "lc-pfn"), default=None,
                   help="stop a trial when a learning-curve predictor gives P(target met by "
                   "the end of the budget) < the threshold (default none)")  # fmt: skip
    p.add_argument("--early-stop-threshold", type=argtypes.real(0.0, 1.0), default=None,
                   metavar="P", help="the threshold of --early-stop, in (0, 1) "
                   "(default 0.05)")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="finish the unfinished trials of a stored benchmark, from its stored plan "
                        "(default: the latest)")  # fmt: skip
    p.add_argument("--benchmark", type=argtypes.trial_id, default=None, metavar="ID",
                   help="the benchmark to resume (implies --resume)")  # fmt: skip
    p.add_argument("--nproc", type=argtypes.nproc, default=None, metavar="N",
                   help="data-parallel processes per trial (torch.distributed; default 1); "
                   "--jobs x N must not exceed the cores on the CPU")  # fmt: skip
    p.add_argument("--plan-only", action="store_true",
                   help="write the plan and stop: `trainlab worker` processes run it")  # fmt: skip
    common.add_stale_after(p)
    common.add_by(p, "what the scores printed at the end measure")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    common.add_jobs(p)
    common.add_store(p, must_exist=False)
    common.add_json(p)


def config(args: argparse.Namespace):
    """The benchmark configuration of the plan options (their defaults filled in)."""
    from trainlab.bench.benchmark import BenchmarkConfig

    o = {k: (d if getattr(args, k) is None else getattr(args, k)) for k, d in PLAN_DEFAULTS.items()}
    if o["max_steps"] is not None and o["eval_every_steps"] is None:
        raise TrainlabError("--max-steps applies to step mode: add --eval-every-steps N|auto")
    if o["max_runtime"] is not None and o["eval_every_steps"] is not None:
        raise TrainlabError("--max-runtime applies to time mode: drop --eval-every-steps")
    if o["search"] != "asha" and (args.eta is not None or args.asha_rungs is not None):
        raise TrainlabError("--eta and --asha-rungs apply to --search asha")
    if o["search"] != "pbt":
        given = [name for name in PBT_OPTIONS if getattr(args, name) is not None]
        if given:
            raise TrainlabError(f"{common.flag(given[0])} applies to --search pbt")
    if args.trials is not None and o["ruleset"] == "self":
        raise TrainlabError("--trials applies to the external ruleset (self runs defaults)")
    algorithms = argtypes.joined(o["algorithms"])
    if o["tuning_search_space"] is not None:
        algorithms = with_search_space(algorithms, o["tuning_search_space"])
    return BenchmarkConfig(
        workloads=argtypes.joined(o["workloads"]), algorithms=algorithms,
        ruleset=o["ruleset"], n_trials=o["trials"], n_studies=o["studies"], seed=o["seed"],
        eval_every_steps=o["eval_every_steps"], max_steps=o["max_steps"],
        max_runtime=o["max_runtime"], budget_scale=o["budget_scale"], variants=o["variants"],
        targets=o["targets"], nproc=o["nproc"], search=o["search"], eta=o["eta"],
        asha_rungs=o["asha_rungs"], early_stop=o["early_stop"],
        early_stop_threshold=o["early_stop_threshold"], population=o["population"],
        pbt_ready=o["pbt_ready"], pbt_quantile=o["pbt_quantile"], pbt_resample=o["pbt_resample"],
    )  # fmt: skip


def with_search_space(algorithms: list[str], space) -> list[str]:
    """The AlgoPerf submissions among ``algorithms`` carrying ``--tuning-search-space``: the
    space becomes part of each name, so it is in the benchmark's options and fingerprint, and
    ``--resume`` and workers read it again."""
    from trainlab.algoperf import names

    if not any(names.is_submission(a) for a in algorithms):
        raise TrainlabError("--tuning-search-space applies to AlgoPerf submissions "
                            "(-a algoperf:PATH)")  # fmt: skip
    return [names.with_file(a, "space", space) if names.is_submission(a) else a
            for a in algorithms]  # fmt: skip


@contextlib.contextmanager
def one_line_warnings():
    """Show an AlgoPerf submission's warnings (an unknown workload name) as one
    ``trainlab: warning:`` line each, as the command's own notes; others as Python does."""
    import warnings

    from trainlab.algoperf.algorithm import SubmissionWarning

    with warnings.catch_warnings():
        default = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, SubmissionWarning):
                print(f"trainlab: warning: {message}", file=sys.stderr)
            else:
                default(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def check(args: argparse.Namespace):
    """The configuration to plan, or ``None`` to resume a stored benchmark (which exists)."""
    resume = args.resume or args.benchmark is not None
    if not resume:
        if not args.workloads or not args.algorithms:
            raise TrainlabError("bench needs -w WORKLOADS and -a ALGORITHMS (or --resume)")
        return config(args)
    plan = common.given(args, *PLAN_DEFAULTS)
    if plan:
        raise TrainlabError(
            f"{common.flag(plan[0])}: --resume takes the stored plan of the benchmark; drop "
            "the plan options (rerunning the original bench command resumes too)"
        )
    if args.plan_only:
        raise TrainlabError("--plan-only plans a new benchmark: drop --resume/--benchmark")
    if not isinstance(args.store, str) and not args.store.exists():
        raise TrainlabError(f"no results store at {args.store} to resume from")
    with common.open_existing_store(args.store) as store:
        common.benchmark_record(store, args.benchmark)
    return None


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.benchmark import run_benchmark
    from trainlab.bench.scoring import scores_from_store
    from trainlab.bench.store import Store
    from trainlab.cli import render

    plan = check(args)
    err = render.console(stderr=True)
    display = None
    if not args.json and not args.quiet:
        display = render.BenchmarkDisplay(err)
    hooks = {} if display is None else {
        "on_start": display.start, "on_tick": display.tick, "on_trial_done": display.done
    }  # fmt: skip
    try:
        with one_line_warnings():
            done = run_benchmark(
                plan, args.store, jobs=args.jobs, threads=args.threads,
                executor=args.executor, benchmark_id=args.benchmark,
                on_note=lambda s: render.plain(err, s),
                plan_only=args.plan_only, stale_after=args.stale_after, **hooks,
            )  # fmt: skip
    except KeyboardInterrupt:
        if display is not None:
            display.stop(keep=False)  # leave nothing behind but the one line
        raise
    finally:
        if display is not None:
            display.stop()
    try:
        with Store(args.store, readonly=True) as store:
            result, _, _ = scores_from_store(store, done.benchmark_id, by=args.by)
    except TrainlabError:
        result = None
    if args.json:
        out = done.to_json()
        out["store"] = str(args.store)
        out["scores"] = None if result is None else result.to_json()
        common.print_json(out)
        return 0
    con = render.console()
    if args.plan_only:
        render.plain(con, f"benchmark {done.benchmark_id} planned ({done.total} trials, key "
                          f"{done.key}); run it with `trainlab worker --store {args.store}` "
                          "(any number of them)")  # fmt: skip
        return 0
    what = "new" if done.created else ("resumed" if done.already_finished else "found")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(done.counts.items()))
    render.plain(con, f"benchmark {done.benchmark_id} ({what}, key {done.key}): {done.total} "
                      f"trials, {done.already_finished} already finished, ran {done.ran} in "
                      f"{done.seconds:.0f} s; {counts}")  # fmt: skip
    if done.eval_share is not None:
        render.plain(con, f"untimed evaluation: {100 * done.eval_share:.1f} % of the trials' "
                          "wall time")  # fmt: skip
    if result is not None:
        render.print_scores(result, con)
    render.plain(con, f"store: {args.store}; see `trainlab score --store {args.store} "
                      f"--benchmark {done.benchmark_id}` and `trainlab report --store "
                      f"{args.store} --benchmark {done.benchmark_id} -o DIR`")  # fmt: skip
    return 0
