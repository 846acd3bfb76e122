"""Throughput of the local executor: the same set of trials with ``--jobs 1`` and ``--jobs 2``.

Both runs plan the same benchmark (same configuration, so the same trials, hyperparameters and
seeds) in separate fresh stores, in step mode so every trial does exactly the same work in
both runs. ``jobs=1`` runs the trials in this process; ``jobs=2`` in a process pool, two at a
time. By default every trial gets one torch thread in both runs, so the figure is the
executor's scaling alone; ``--threads 0`` uses ``trainlab bench``'s defaults instead
(``cores // jobs`` threads: 2 per trial with one job on 2 cores). On a shared 2-core VM two
intra-op threads per trial are erratic (measured 0.5 s to 30 s for the same 50 steps when a
third process wants a core: OpenMP threads wait on each other), which would make jobs 1 look
much worse than it is. Printed: trials per second end to end (planning and pool start-up
included) and over the span of the trials themselves (first start to last finish), and their
ratios. Goal on 2 cores: jobs-2 / jobs-1 throughput >= 1.7.

    python benchmarks/parallel.py [--workload digits_cnn] [--trials 8] [--max-steps 100]
                                  [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.executors import available_cores
from trainlab.bench.store import Store


def measure(config: BenchmarkConfig, jobs: int, threads: int | None, root: Path) -> dict:
    db = root / f"jobs{jobs}.db"
    start = time.perf_counter()
    run = run_benchmark(config, db, jobs=jobs, threads=threads)
    wall = time.perf_counter() - start
    with Store(db) as store:
        trials = store.trials(benchmark_id=run.benchmark_id)
    span = max(t["finished"] for t in trials) - min(t["started"] for t in trials)
    steps = sum(t["steps"] for t in trials)
    return {"trials": len(trials), "wall": wall, "span": span, "steps": steps, "key": run.key}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="digits_cnn")
    parser.add_argument("--algorithms", default="adamw,nadamw")
    parser.add_argument("--trials", type=int, default=8, help="Halton points per algorithm")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per trial (0: cores // jobs)"
    )
    args = parser.parse_args()
    args.threads = args.threads or None
    config = BenchmarkConfig(
        workloads=[args.workload],
        algorithms=args.algorithms.split(","),
        n_trials=args.trials,
        eval_every_steps=args.max_steps,  # one evaluation, at the end: the work is training
        max_steps=args.max_steps,
    )
    cores = available_cores()
    print(
        f"{cores} cores, load average {os.getloadavg()[0]:.1f}; {args.workload}, "
        f"{args.algorithms}, {args.trials} trials each, {args.max_steps} steps per trial"
    )
    with tempfile.TemporaryDirectory() as tmp:
        one = measure(config, 1, args.threads, Path(tmp))
        two = measure(config, 2, args.threads, Path(tmp))
    assert one["key"] == two["key"] and one["steps"] == two["steps"], "not the same trials"
    rows = (
        ("jobs 1", one, args.threads or cores),
        ("jobs 2", two, args.threads or max(1, cores // 2)),
    )
    for name, r, threads in rows:
        print(
            f"{name} ({threads} thread(s) per trial): {r['trials']} trials, "
            f"{r['wall']:.1f} s end to end ({r['trials'] / r['wall']:.3f} trials/s), "
            f"{r['span']:.1f} s of trials ({r['trials'] / r['span']:.3f} trials/s)"
        )
    print(
        f"throughput ratio jobs 2 / jobs 1: {one['wall'] / two['wall']:.2f} end to end, "
        f"{one['span'] / two['span']:.2f} over the trials (goal >= 1.7); "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
