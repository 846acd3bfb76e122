"""``trainlab worker``: claim planned trials from a store and run them until none remain.

Start any number of workers, on any machines that reach the store (a PostgreSQL URL, or a
SQLite file on a disk they share): each claims one trial at a time (atomically: no trial is
trained by two processes), keeps a heartbeat on it, and takes over the trials of workers whose
heartbeat stopped for ``--stale-after`` seconds. A benchmark is planned with ``trainlab bench
... --plan-only`` (or by a ``bench`` that is itself running).
"""

from __future__ import annotations

import argparse
import sys

from trainlab.cli import argtypes, common

NAME = "worker"
HELP = "claim planned trials from a store and run them until none remain"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", type=argtypes.trial_id, default=None, metavar="ID",
                   help="only this benchmark (default: every benchmark with trials left)")
    p.add_argument("--quiet", action="store_true", help="no line per finished trial")
    common.add_stale_after(p)
    common.add_jobs(p)
    common.add_store(p, must_exist=True)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.benchmark import run_benchmark
    from trainlab.bench.results import outcome_line
    from trainlab.spec import UNFINISHED

    with common.open_existing_store(args.store) as store:
        if args.benchmark is not None:
            common.benchmark_record(store, args.benchmark)
        ids = [args.benchmark] if args.benchmark is not None else [
            b["id"] for b in store.benchmarks()
        ]  # fmt: skip
        todo = [b for b in ids if any(
            t["status"] in UNFINISHED for t in store.trials(benchmark_id=b))]  # fmt: skip

    def done(row, outcome) -> None:
        if not args.quiet and not args.json:
            print(outcome_line(row, outcome), file=sys.stderr, flush=True)

    ran = {}
    for benchmark_id in todo:
        result = run_benchmark(
            None, args.store, jobs=args.jobs, threads=args.threads, executor=args.executor,
            benchmark_id=benchmark_id, stale_after=args.stale_after, on_trial_done=done,
        )  # fmt: skip
        ran[benchmark_id] = result.ran
    if args.json:
        common.print_json({"store": str(args.store), "ran": ran})
    else:
        total = sum(ran.values())
        print(f"worker: ran {total} trial{'s' * (total != 1)} of {len(todo)} "
              f"benchmark{'s' * (len(todo) != 1)}; none left to claim")
    return 0
