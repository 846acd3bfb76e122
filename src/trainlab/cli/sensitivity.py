"""``trainlab sensitivity``: Wortsman et al.'s learning-rate sensitivity of optimizers on a
workload (``trainlab.bench.sensitivity``).

The sweep is a benchmark in the results store (its options carry ``sensitivity_lrs``): each
learning rate x seed is one step-mode trial trained to the full budget (no stop at the target),
other hyperparameters at the algorithm's defaults; trial ``i`` of study ``s`` runs the i-th
learning rate with seed ``s``. So it runs through the executors (``--jobs``, workers, Ray),
survives a SIGKILL, and rerunning the command (or ``--resume``) finishes it. Evaluation runs
every ``E`` steps, ``E`` the largest divisor of the budget not above the ``auto`` cadence, so
each run's last evaluation is at its final step: that is its final loss.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "sensitivity"
HELP = "learning-rate sensitivity (Wortsman et al.): sweep the lr, compare final losses"
#: options that define the sweep (``--resume`` takes the stored ones)
PLAN = ("workload", "algorithms", "lrs", "seeds", "seed", "max_steps")
MIN_LRS = 3  # trainlab.bench.sensitivity.MIN_LRS (written out: the parser stays light)


def lr_list(text: str) -> list[float]:
    """``LO:HI:N`` (N log-spaced values from LO to HI, 4 significant digits) or ``A,B,C``:
    at least 3 distinct positive learning rates, in increasing order."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise argtypes.BadValue(f"expected LO:HI:N or A,B,C..., got {text!r}")
        low, high = (argtypes.real(0.0)(p) for p in parts[:2])
        try:
            n = argtypes.integer(MIN_LRS, 1000, "a count of learning rates")(parts[2])
        except argtypes.BadValue as exc:
            raise argtypes.BadValue(f"N in LO:HI:N (the number of learning rates) {exc}") from exc
        if not low < high:
            raise argtypes.BadValue(f"LO:HI:N needs LO < HI, got {text!r}")
        ratio = math.log(high / low)
        values = [float(f"{low * math.exp(ratio * i / (n - 1)):.4g}") for i in range(n)]
    else:
        values = [argtypes.real(0.0)(v) for v in text.split(",") if v.strip()]
    if len(set(values)) < MIN_LRS:
        raise argtypes.BadValue(f"a sweep needs at least {MIN_LRS} distinct learning rates, got "
                                f"{text!r}")  # fmt: skip
    if len(set(values)) != len(values):
        raise argtypes.BadValue(f"a learning rate is listed twice in {text!r}")
    return sorted(values)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workload", type=argtypes.workload_name, default=None,
                   help="the workload (name or name:variant)")  # fmt: skip
    p.add_argument("-a", "--algorithms", action="append", metavar="A1,A2",
                   type=argtypes.name_list(argtypes.algorithm_name),
                   help="algorithms with a learning_rate (or lr) hyperparameter")  # fmt: skip
    p.add_argument("--lrs", type=lr_list, default=None, metavar="LO:HI:N|A,B,C",
                   help="learning rates: N log-spaced from LO to HI, or a list (>= 3)")
    p.add_argument("--seeds", type=argtypes.counts, default=None, metavar="S",
                   help="seeds per learning rate (default 2; >= 2 gives an interval)")
    p.add_argument("--seed", type=argtypes.seed, default=None,
                   help="base seed of the trials (default 0)")
    p.add_argument("--max-steps", type=argtypes.positive, default=None, metavar="N",
                   help="step budget of each run (default: the workload's)")
    p.add_argument("--resume", action="store_true",
                   help="finish the latest stored sweep (or --benchmark ID) from its plan")
    p.add_argument("--benchmark", type=argtypes.trial_id, default=None, metavar="ID",
                   help="the sweep to resume (implies --resume)")
    p.add_argument("--plot", type=argtypes.writable_file, default=None, metavar="FILE.png",
                   help="where the plot goes (default: sensitivity.png beside the store)")
    p.add_argument("--bootstrap", type=argtypes.integer(0, 100_000, "a count"), default=2000,
                   metavar="N", help="bootstrap resamples of the seeds for the 95 %% "
                   "interval (0: none; default 2000)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress display")
    common.add_stale_after(p)
    common.add_jobs(p)
    common.add_store(p, must_exist=False)
    common.add_json(p)


def eval_cadence(workload_name: str, max_steps: int | None) -> int:
    """The largest divisor of the step budget not above the ``auto`` cadence: the last
    evaluation of a run is then at its final step."""
    from trainlab.bench.budgets import trial_spec
    from trainlab.registry import get_workload

    spec = trial_spec(get_workload(workload_name), eval_every_steps="auto", max_steps=max_steps)
    every, budget = int(spec.eval_every_steps), int(spec.max_steps)
    return max(d for d in range(1, every + 1) if budget % d == 0)


def check(args: argparse.Namespace):
    """The sweep's configuration, or ``None`` to resume (then ``args.benchmark`` is set)."""
    from trainlab.bench.benchmark import BenchmarkConfig

    if args.resume or args.benchmark is not None:
        plan = common.given(args, *PLAN)
        if plan:
            raise TrainlabError(f"{common.flag(plan[0])}: --resume takes the stored plan of the "
                                "sweep; drop the plan options")  # fmt: skip
        args.benchmark = latest_sweep(args.store, args.benchmark)
        return None
    for option, value in (("-w", args.workload), ("-a", args.algorithms), ("--lrs", args.lrs)):
        if not value:
            raise TrainlabError(f"sensitivity needs -w WORKLOAD, -a ALGORITHMS and --lrs "
                                f"(missing {option}), or --resume")  # fmt: skip
    from trainlab.bench.sensitivity import lr_name
    from trainlab.registry import get_algorithm

    algorithms = argtypes.joined(args.algorithms)
    for name in algorithms:
        lr_name(get_algorithm(name))
    return BenchmarkConfig(
        workloads=[args.workload], algorithms=algorithms, n_trials=len(args.lrs),
        n_studies=args.seeds or 2, seed=args.seed or 0,
        eval_every_steps=eval_cadence(args.workload, args.max_steps), max_steps=args.max_steps,
        full_curve=True, sensitivity_lrs=list(args.lrs),
    )  # fmt: skip


def latest_sweep(store_path, benchmark_id: int | None) -> int:
    """The id of the sweep to resume: ``benchmark_id`` (which must be a sweep) or the latest."""
    from trainlab.bench.sensitivity import is_sweep

    if not isinstance(store_path, str) and not Path(store_path).exists():
        raise TrainlabError(f"no results store at {store_path} to resume from")
    with common.open_existing_store(store_path) as store:
        sweeps = [b for b in store.benchmarks() if is_sweep(b)]
    if benchmark_id is None:
        if not sweeps:
            raise TrainlabError(f"the store {store_path} holds no learning-rate sweep")
        return int(sweeps[-1]["id"])
    if not any(b["id"] == benchmark_id for b in sweeps):
        ids = ", ".join(str(b["id"]) for b in sweeps) or "none"
        raise TrainlabError(f"--benchmark: no learning-rate sweep {benchmark_id} in "
                            f"{store_path} (sweeps: {ids})")  # fmt: skip
    return benchmark_id


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.benchmark import run_benchmark
    from trainlab.bench.sensitivity import read_sweeps
    from trainlab.bench.store import Store
    from trainlab.cli import render

    config = check(args)
    err = render.console(stderr=True)
    display = None if args.json or args.quiet else render.BenchmarkDisplay(err)
    hooks = {} if display is None else {
        "on_start": display.start, "on_tick": display.tick, "on_trial_done": display.done
    }  # fmt: skip
    try:
        done = run_benchmark(config, args.store, jobs=args.jobs, threads=args.threads,
                             executor=args.executor, benchmark_id=args.benchmark,
                             on_note=lambda s: render.plain(err, s),
                             stale_after=args.stale_after, **hooks)  # fmt: skip
    except KeyboardInterrupt:
        if display is not None:
            display.stop(keep=False)
        raise
    finally:
        if display is not None:
            display.stop()
    with Store(args.store, readonly=True) as store:
        sweeps = read_sweeps(store, done.benchmark_id, n_boot=args.bootstrap)
    plot = _plot_path(args)
    from trainlab.report import sensitivity as report

    paths = [plot if k == 0 else plot.with_name(f"{plot.stem}_{k + 1}{plot.suffix}")
             for k in range(len(sweeps))]  # fmt: skip
    for sweep, path in zip(sweeps, paths, strict=True):
        report.sweep_plot(sweep, path)
    if args.json:
        out = {"benchmark": done.to_json(), "store": str(args.store),
               "sweeps": [{**s.to_json(), "plot": str(p)} for s, p in zip(sweeps, paths,
                                                                           strict=True)]}
        common.print_json(out)
        return 0
    con = render.console()
    what = "new" if done.created else ("resumed" if done.already_finished else "found")
    render.plain(con, f"sweep {done.benchmark_id} ({what}): {done.total} trials, "
                      f"{done.already_finished} already finished, ran {done.ran} in "
                      f"{done.seconds:.0f} s")  # fmt: skip
    for sweep, path in zip(sweeps, paths, strict=True):
        title, header, rows = report.table(sweep)
        con.print(render.text_table(title, header, rows))
        for line in [*report.notes(sweep), f"plot: {path}"]:
            render.plain(con, line)
    return 0


def _plot_path(args: argparse.Namespace) -> Path:
    if args.plot is not None:
        return Path(args.plot)
    if "://" in str(args.store):
        return Path("sensitivity.png")
    return Path(str(args.store)).with_name("sensitivity.png")
