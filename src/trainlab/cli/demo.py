"""``trainlab demo``: the four baselines on the default suite, scored and reported.

The self-tuning ruleset (each baseline's defaults, budget x1.5), three studies (seeds), so that
every figure has an interval, at 0.3 of each budget: small and bounded. It measures against
each workload's class target (the bar its baseline reaches with defaults), not the tuned
targets of targets.json: those are the best of a tuned baseline over seeds, which defaults in
a fraction of the budget would miss nearly always.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trainlab.cli import argtypes, common

NAME = "demo"
HELP = "a small benchmark of the four baselines, scores and report"

DEMO_WORKLOADS = ("mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "charlm_gpt", "forecast_gru")
#: ``trainlab.algorithms.baselines.BASELINES`` (a test keeps them equal; written out so that
#: building the parser does not import torch)
DEMO_ALGORITHMS = ("adamw", "nadamw", "nesterov", "heavyball")
DEMO_STUDIES, DEMO_BUDGET_SCALE = 3, 0.3


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
        workloads=list(DEMO_WORKLOADS), algorithms=list(DEMO_ALGORITHMS), ruleset="self",
        n_studies=DEMO_STUDIES, budget_scale=DEMO_BUDGET_SCALE,
        targets="class",
    )  # fmt: skip
    render.plain(err, (
        f"trainlab demo: {', '.join(DEMO_ALGORITHMS)} with their defaults (self-tuning ruleset, "
        f"budget x1.5) on {', '.join(DEMO_WORKLOADS)}; {DEMO_STUDIES} studies (seeds) per pair, "
        f"time mode with each workload's max_runtime x {DEMO_BUDGET_SCALE:g} and its class "
        "target (a quick look: "
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
    with Store(args.store, readonly=True) as store:
        result, _, _ = scores_from_store(store, done.benchmark_id)
    render.print_scores(result, con)
    index = build_report(args.store, args.output, done.benchmark_id)
    share = 100 * (done.eval_share or 0.0)
    render.plain(con, f"benchmark {done.benchmark_id}: {done.total} trials "
                      f"({done.ran} run now, {done.seconds:.0f} s); untimed evaluation "
                      f"{share:.1f} % of the trials' wall time")  # fmt: skip
    render.plain(con, f"report: {index}")
    return 0
