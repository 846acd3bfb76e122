"""``trainlab demo``: the four baselines on the default suite, scored and reported.

External tuning, small and bounded. It measures against each workload's class target (the bar
its baseline reaches with defaults), not the tuned targets of targets.json: those are the best
of a tuned baseline over seeds, and two Halton points per algorithm in a fraction of the budget
would miss them nearly always.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trainlab.algorithms.baselines import BASELINES
from trainlab.cli import argtypes, common

NAME = "demo"
HELP = "a small benchmark of the four baselines, scores and report"

DEMO_WORKLOADS = ("mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "charlm_gpt", "forecast_gru")
DEMO_ALGORITHMS = BASELINES
DEMO_TRIALS, DEMO_STUDIES, DEMO_BUDGET_SCALE = 1, 3, 0.3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=argtypes.output_dir,
                   default=Path("trainlab-runs") / "demo-report", metavar="DIR")  # fmt: skip
    common.add_jobs(p)
    common.add_store(p, must_exist=False)


def run(args: argparse.Namespace) -> int:
    return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
    from trainlab.bench.scoring import scores_from_store
    from trainlab.bench.store import Store
    from trainlab.cli import render
    from trainlab.report.html import build_report

    err = render.console(stderr=True)
    config = BenchmarkConfig(
        workloads=list(DEMO_WORKLOADS), algorithms=list(DEMO_ALGORITHMS), ruleset="external",
        n_trials=DEMO_TRIALS, n_studies=DEMO_STUDIES, budget_scale=DEMO_BUDGET_SCALE,
        targets="class",
    )  # fmt: skip
    render.plain(err, (
        f"trainlab demo: external tuning of {', '.join(DEMO_ALGORITHMS)} "
        f"on {', '.join(DEMO_WORKLOADS)}; "
        f"{DEMO_STUDIES} studies of {DEMO_TRIALS} Halton point per pair, time mode with each "
        f"workload's max_runtime x {DEMO_BUDGET_SCALE:g} and its class target (a quick look: "
        "not the full budget, not the tuned targets of targets.json); "
        f"results in {args.store} (re-running resumes)"
    ))  # fmt: skip
    display = render.BenchmarkDisplay(err)
    try:
        done = run_benchmark(
            config, args.store, jobs=args.jobs, threads=args.threads, executor=args.executor,
            on_note=lambda s: render.plain(err, s), on_start=display.start,
            on_tick=display.tick, on_trial_done=display.done,
        )  # fmt: skip
    except KeyboardInterrupt:
        display.stop(keep=False)  # leave nothing behind but the one line
        raise
    finally:
        display.stop()
    con = render.console()
    with Store(args.store) as store:
        result, _, _ = scores_from_store(store, done.benchmark_id)
    render.print_scores(result, con)
    index = build_report(args.store, args.output, done.benchmark_id)
    share = 100 * (done.eval_share or 0.0)
    render.plain(con, f"benchmark {done.benchmark_id}: {done.total} trials "
                      f"({done.ran} run now, {done.seconds:.0f} s); untimed evaluation "
                      f"{share:.1f} % of the trials' wall time")  # fmt: skip
    render.plain(con, f"report: {index}")
    return 0
