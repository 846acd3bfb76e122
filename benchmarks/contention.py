"""How each measure of a trial moves when another process competes for the CPU.

The same small benchmark runs twice in this process, in two fresh stores (the store keys a
benchmark by its configuration, so one store would find the first run's trials done): run A
on the machine as it is, run B with ``--hogs`` busy-loop processes beside it (default: one per
core; started before the run, killed after it, whatever happens). By default
(``--interleave``) a third run A' repeats A once the hogs are gone, to show the drift of a
quiet machine between two runs: a measure's move under contention means something only where
it is well beyond that drift.

The benchmark: ``--algorithms`` on ``--workload`` in time mode (the benchmark's own mode, where
the clock decides when to evaluate and when to stop), the self-tuning ruleset (each algorithm's
defaults; budget x 1.5), ``--studies`` studies of one trial, ``--budget-scale`` x the budget,
one job and one torch thread per trial. The target and budget come from a targets file written
for the run: the workload's class metric, ``--target`` (default 0.72 accuracy on
``mnist1d_mlp``, which the four default algorithms' defaults reach in 600-1100 steps, 1-2
quiet seconds here; the class target 0.75 is missed by them within a small budget),
``--max-runtime`` timed seconds (evaluation every 1/50 of it) and ``--step-hint`` (the
schedule's length). ``--targets class|tuned|PATH`` uses that source instead. The three runs
plan the same trials (same hyperparameters and seeds), so each trial of B is paired with the
same trial of A.

Printed, for each measure (wall ``time_to_target``, ``cpu_time_to_target``,
``ref_steps_to_target``, ``steps_to_target``, ``flops_to_target``): per algorithm, the median over
its trials of the paired ratio B/A; over all trials, the median ratio; and Kendall's tau between
the algorithms' median values in A and in B (1: the same ranking). The same for A'/A (drift). Then
how many trials each run flagged ``contended``, and the goal line. Last, a calibration that needs
no runner: the CPU and wall seconds of a fixed piece of work (``--calibrate`` steps of a plain
AdamW loop on the workload's model, one thread) beside the hogs over the same work alone,
alternated three times: how much the machine itself charges extra CPU time under contention (cache
and TLB refills after each switch, a shared physical core behind the virtual ones), a floor that
no CPU-time measure can get under on that machine. Only ratios measured in this one run are
printed, never absolute thresholds. Goal: the robust measure (CPU time to target) moves < 10 %
where wall time to target moves > 50 %.

Steps and FLOPs to target in time mode depend on the clock too: evaluations come every
``eval_period`` timed seconds, so under contention they fall after fewer steps and the first
evaluation past the target overshoots it by fewer steps. Their ratio shows how much.

    python benchmarks/contention.py [--workload mnist1d_mlp] [--studies 2]
                                    [--algorithms adamw,nadamw,lion,heavyball] [--target 0.72]
                                    [--max-runtime 6] [--step-hint 1500] [--budget-scale 1]
                                    [--targets SOURCE] [--hogs N] [--no-interleave] [--keep DIR]
                                    [--calibrate 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from scipy.stats import kendalltau

from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.executors import available_cores
from trainlab.bench.store import Store
from trainlab.registry import get_workload

MEASURES = (
    ("time_to_target", "wall time"),
    ("cpu_time_to_target", "CPU time"),
    ("ref_steps_to_target", "ref steps"),
    ("steps_to_target", "steps"),
    ("flops_to_target", "FLOPs"),
)
HOG = "while True:\n    pass\n"


def start_hogs(n: int) -> list[subprocess.Popen]:
    """``n`` busy-loop Python processes (plain ``while True: pass``: one core each)."""
    return [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(n)]


def stop_hogs(hogs: list[subprocess.Popen]) -> None:
    for p in hogs:
        p.kill()
    for p in hogs:
        p.wait()


def run(config: BenchmarkConfig, db: Path, hogs: int) -> dict:
    """Run the benchmark into a fresh store ``db``, with ``hogs`` busy processes beside it."""
    procs: list[subprocess.Popen] = []
    try:
        if hogs:
            procs = start_hogs(hogs)
            time.sleep(1.0)  # let them start and take their cores
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        result = run_benchmark(config, db, jobs=1, threads=1)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
    finally:
        stop_hogs(procs)
    with Store(db) as store:
        trials = store.trials(benchmark_id=result.benchmark_id)
    by_trial = {(t["algorithm"], t["seed"]): t for t in trials}
    return {
        "trials": by_trial,
        "wall": wall,
        "load": (load_before, load_after),
        "key": result.key,
        "contended": sum(bool(t["contended"]) for t in trials),
        "reached": sum(t["status"] == "reached" for t in trials),
    }


def calibrate(workload_name: str, steps: int, hogs: int, repeats: int = 3) -> tuple[float, float]:
    """Median ratios (CPU, wall) of a fixed plain training loop beside ``hogs`` busy processes
    over the same loop alone, alternated ``repeats`` times."""
    workload = get_workload(workload_name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = workload.init_model(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = workload.splits.x_train[:128], workload.splits.y_train[:128]

    def work() -> tuple[float, float]:
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.process_time() - c0, time.perf_counter() - t0

    try:
        work()  # warm-up
        cpu, wall = [], []
        for _ in range(repeats):
            quiet = work()
            procs = start_hogs(hogs)
            try:
                time.sleep(1.0)
                busy = work()
            finally:
                stop_hogs(procs)
            cpu.append(busy[0] / quiet[0])
            wall.append(busy[1] / quiet[1])
    finally:
        torch.set_num_threads(threads)
    return statistics.median(cpu), statistics.median(wall)


def _value(trial: dict, measure: str) -> float | None:
    if trial["status"] != "reached":
        return None
    value = trial[measure]
    return None if value is None else float(value)


def compare(base: dict, other: dict, algorithms: list[str], measure: str) -> dict:
    """Per-algorithm and overall median of the paired ratios other/base, and Kendall's tau
    between the algorithms' median values in the two runs."""
    ratios: dict[str, list[float]] = {a: [] for a in algorithms}
    medians: dict[str, tuple[list[float], list[float]]] = {a: ([], []) for a in algorithms}
    for key, trial in base["trials"].items():
        algorithm = key[0]
        x, y = _value(trial, measure), _value(other["trials"][key], measure)
        if x is not None:
            medians[algorithm][0].append(x)
        if y is not None:
            medians[algorithm][1].append(y)
        if x is not None and y is not None and x > 0:
            ratios[algorithm].append(y / x)
    per_algorithm = {a: statistics.median(r) if r else None for a, r in ratios.items()}
    everything = [r for rs in ratios.values() for r in rs]
    overall = statistics.median(everything) if everything else None
    both = [a for a in algorithms if medians[a][0] and medians[a][1]]
    tau = None
    if len(both) >= 2:
        xs = [statistics.median(medians[a][0]) for a in both]
        ys = [statistics.median(medians[a][1]) for a in both]
        tau = float(kendalltau(xs, ys).statistic)
    return {
        "per_algorithm": per_algorithm,
        "overall": overall,
        "tau": tau,
        "pairs": len(everything),
    }


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or x != x else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mnist1d_mlp")
    parser.add_argument("--algorithms", default="adamw,nadamw,lion,heavyball")
    parser.add_argument("--studies", type=int, default=2, help="trials per algorithm (1 each)")
    parser.add_argument("--target", type=float, default=0.72, help="value of the class metric")
    parser.add_argument("--max-runtime", type=float, default=6.0, help="timed seconds")
    parser.add_argument("--step-hint", type=int, default=1500, help="the schedule's length")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="x the time budget")
    parser.add_argument(
        "--hogs", type=int, default=None, help="busy-loop processes beside run B (default: cores)"
    )
    parser.add_argument(
        "--interleave",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run A again after B, to show the drift between two quiet runs",
    )
    parser.add_argument(
        "--targets", default=None, help="class|tuned|PATH instead of --target/--max-runtime"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the stores in this folder")
    parser.add_argument(
        "--calibrate", type=int, default=1000, help="steps of the fixed-work calibration (0: none)"
    )
    args = parser.parse_args()
    cores = available_cores()
    hogs = cores if args.hogs is None else args.hogs
    algorithms = args.algorithms.split(",")
    root = Path(tempfile.mkdtemp(prefix="contention-"))
    targets = args.targets
    if targets is None:
        metric = get_workload(args.workload).class_spec().target
        entry = {
            "metric": metric.metric,
            "value": args.target,
            "higher_is_better": metric.higher_is_better,
            "max_runtime": args.max_runtime,
            "step_hint": args.step_hint,
        }
        targets = str(root / "targets.json")
        Path(targets).write_text(json.dumps({"workloads": {args.workload: entry}}))
        what = f"target {metric.metric} {args.target}, {args.max_runtime} s budget"
    else:
        what = f"targets {targets}"
    config = BenchmarkConfig(
        workloads=[args.workload],
        algorithms=algorithms,
        ruleset="self",
        n_trials=1,
        n_studies=args.studies,
        budget_scale=args.budget_scale,
        targets=targets,
    )
    print(
        f"{cores} cores, load average {os.getloadavg()[0]:.1f}; {args.workload}, "
        f"{','.join(algorithms)}, {args.studies} trials each, time mode, budget x "
        f"{args.budget_scale} (x 1.5 self-tuning), {what}, 1 job, 1 thread; "
        f"run B beside {hogs} busy process(es)"
    )
    try:
        plan = [("A", 0), ("B", hogs)] + ([("A'", 0)] if args.interleave else [])
        runs = {}
        for name, n in plan:
            db = root / f"run_{name.replace(chr(39), '2')}.db"
            runs[name] = run(config, db, n)
            r = runs[name]
            print(
                f"run {name}: {r['wall']:.1f} s, {len(r['trials'])} trials, {r['reached']} "
                f"reached, {r['contended']} flagged contended, load average "
                f"{r['load'][0]:.1f} -> {r['load'][1]:.1f} ({n} hogs)",
                flush=True,
            )
        assert all(r["key"] == runs["A"]["key"] for r in runs.values()), "not the same trials"
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for db in [*root.glob("*.db"), *root.glob("*.json")]:
                shutil.copy2(db, args.keep / db.name)
            print(f"stores kept in {args.keep}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    short = [a[:9] for a in algorithms]
    head = f"{'measure':<10}" + "".join(f"{s:>10}" for s in short)
    head += f"{'all B/A':>9}{'tau A,B':>9}"
    if args.interleave:
        head += f"{'all A2/A':>9}{'tau A,A2':>9}"
    print()
    print("median paired ratio B/A per algorithm (B: beside the hogs; A2: quiet again)")
    print(head)
    moves = {}
    for measure, label in MEASURES:
        busy = compare(runs["A"], runs["B"], algorithms, measure)
        line = f"{label:<10}" + "".join(f"{_fmt(busy['per_algorithm'][a]):>10}" for a in algorithms)
        line += f"{_fmt(busy['overall']):>9}{_fmt(busy['tau'], '.2f'):>9}"
        if args.interleave:
            drift = compare(runs["A"], runs["A'"], algorithms, measure)
            line += f"{_fmt(drift['overall']):>9}{_fmt(drift['tau'], '.2f'):>9}"
        print(line)
        moves[measure] = busy["overall"]
    contended = "  ".join(f"{n}: {r['contended']}/{len(r['trials'])}" for n, r in runs.items())
    print(f"trials flagged contended: {contended}")
    wall = moves["time_to_target"]
    for measure, label in MEASURES[1:3]:
        if wall is not None and moves[measure] is not None:
            print(
                f"{label} to target moved {abs(moves[measure] - 1) * 100:.1f} % where wall time "
                f"to target moved {abs(wall - 1) * 100:.1f} % (goal: < 10 % where wall > 50 %)"
            )
    if args.calibrate and hogs:
        cpu_ratio, wall_ratio = calibrate(args.workload, args.calibrate, hogs)
        print(
            f"calibration, {args.calibrate} plain steps beside {hogs} hogs / alone (median of 3): "
            f"CPU x{cpu_ratio:.3f}, wall x{wall_ratio:.3f} (the machine's own CPU-time floor)"
        )


if __name__ == "__main__":
    main()
