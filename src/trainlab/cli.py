"""The ``trainlab`` command line.

Every error a user can cause (unknown name, bad hyperparameter, unreadable file, bad option)
prints one line naming the problem and exits with code 2. Machine-readable output (``--json``)
goes to stdout; progress bars and tables for people go to stderr and stdout respectively.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trainlab.bench.budgets import trial_spec
from trainlab.spec import OutOfRangeWarning, TrainlabError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise TrainlabError(f"{self.prog}: {message}")


def _json_default(value: Any) -> Any:
    return str(value)


def _clean(value: Any) -> Any:
    """inf / nan -> None, recursively, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def print_json(obj: Any) -> None:
    print(json.dumps(_clean(obj), indent=2, default=_json_default, allow_nan=False))


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["lr=0.1", "beta1=0.9"]`` -> dict; values stay strings for the search space to parse."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise TrainlabError(f"--set expects name=value, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def setup_torch(threads: int | None, device: str) -> str:
    """Set torch's thread count and resolve ``auto`` to a device name."""
    import torch

    if threads is not None:
        if threads < 1:
            raise TrainlabError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainlabError("--device cuda asked for, but torch sees no CUDA device")
    return device


def build_workload(name: str, variant: str | None, device: str, text_file: str | None = None):
    from trainlab.registry import get_workload

    options: dict[str, Any] = {"device": device}
    if text_file is not None:
        if name.split(":")[0] != "charlm_gpt":
            raise TrainlabError("--text-file applies to the charlm_gpt workload only")
        options["text_file"] = text_file
    return get_workload(name, variant, **options)


# ------------------------------------------------------------------------------------------
# list


def cmd_list(args: argparse.Namespace) -> int:
    from trainlab.registry import algorithm_names, get_algorithm, get_workload, workload_names

    if args.what == "workloads":
        rows = [get_workload(n).describe() for n in workload_names()]
        if args.json:
            print_json(rows)
            return 0
        from rich.table import Table

        table = Table(title="workloads")
        for col in ("name", "target", "max_runtime", "eval_period", "step_hint", "variants"):
            table.add_column(col)
        for r in rows:
            t = r["target"]
            target = f"{t['metric']} {'>=' if t['higher_is_better'] else '<='} {t['value']:g}"
            table.add_row(
                r["name"], target, f"{r['max_runtime']:g} s", f"{r['eval_period']:g} s",
                str(r["step_hint"]), ", ".join(r["variants"]),
            )  # fmt: skip
        _console().print(table)
        return 0

    from trainlab.algorithms.recipe import OPTIMIZERS, SCHEDULES

    rows = [get_algorithm(n).describe() for n in algorithm_names()]
    if args.json:
        print_json(
            {
                "algorithms": rows,
                "optimizers": sorted(OPTIMIZERS),
                "schedules": sorted(SCHEDULES),
                "composition": "any OPTIMIZER+SCHEDULE, e.g. nadamw+cosine",
            }
        )
        return 0
    from rich.table import Table

    table = Table(title="algorithms")
    for col in ("name", "hyperparameters", "description"):
        table.add_column(col)
    for r in rows:
        hps = ", ".join(p["name"] for p in r["search_space"]) or "(self-tuning)"
        table.add_row(r["name"], hps, r["description"])
    console = _console()
    console.print(table)
    console.print(
        f"Composable as OPTIMIZER+SCHEDULE: optimizers {', '.join(sorted(OPTIMIZERS))}; "
        f"schedules {', '.join(sorted(SCHEDULES))}"
    )
    return 0


# ------------------------------------------------------------------------------------------
# run


def _progress_reporter(workload, algorithm_name: str, enabled: bool, target):
    """A rich progress bar fed by the runner's (untimed) progress callback."""
    if not enabled:
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=False,
    )
    task = progress.add_task(f"{workload.full_name} / {algorithm_name}", total=None, status="")

    def report(p) -> None:
        unit = "steps" if p.mode == "steps" else "s"
        done = p.step if p.mode == "steps" else p.timed_seconds
        last = "no eval yet"
        if p.last_eval is not None:
            value = p.last_eval.metrics.get(target.metric, float("nan"))
            last = f"{target.metric} {value:.4g} (target {target.value:g})"
        progress.update(
            task,
            total=p.budget,
            completed=done,
            status=f"step {p.step} | {p.timed_seconds:.1f} s timed of {p.budget:g} {unit} | {last}",
        )

    return progress, report


def summary_line(r, spec) -> str:
    target = spec.target
    if r.status == "reached":
        head = (
            f"reached {target.describe()} in {r.time_to_target:.2f} s timed "
            f"({r.steps_to_target} steps)"
        )
    elif r.status == "failed":
        head = f"FAILED: {(r.error or '').splitlines()[0]}"
    else:
        best = "none" if r.best_metric is None else f"{r.best_metric:.4g}"
        head = f"{r.status} {target.describe()} (best {target.metric} {best}, {r.steps} steps)"
    return (
        f"{r.workload} / {r.algorithm} seed {r.seed} ({spec.source} target): {head}; "
        f"{r.n_evals} evals; "
        f"timed {r.timed_seconds:.2f} s + eval {r.eval_seconds:.2f} s + other "
        f"{r.other_seconds:.2f} s = wall {r.wall_seconds:.2f} s"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from trainlab.bench.runner import run_trial
    from trainlab.bench.store import Store
    from trainlab.registry import get_algorithm

    device = setup_torch(args.threads, args.device)
    workload = build_workload(args.workload, args.variant, device, args.text_file)
    algorithm = get_algorithm(args.algorithm)
    algorithm.check_workload(workload)
    if args.text_file is not None and not args.json:
        d = workload.describe()
        print(f"{args.text_file}: {d['train_characters']:,} training characters, alphabet of "
              f"{d['alphabet_size']} characters", file=sys.stderr)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OutOfRangeWarning)
        hp = algorithm.search_space.validate(parse_assignments(args.set), allow_out_of_range=True)
    for w in caught:
        print(f"trainlab: warning: {w.message}", file=sys.stderr)
    spec = trial_spec(workload, args.targets, eval_every_steps=_eval_every(args.eval_every_steps),
                      max_steps=args.max_steps)  # fmt: skip
    store = Store(args.store)
    show = not args.json and not args.quiet
    progress, report = _progress_reporter(workload, algorithm.name, show, spec.target)
    try:
        if progress is not None:
            progress.start()
        result = run_trial(
            workload,
            algorithm,
            hp,
            args.seed,
            spec=spec,
            full_curve=args.full_curve,
            allow_out_of_range=True,
            store=store,
            on_progress=report,
        )
    finally:
        if progress is not None:
            progress.stop()
        store.close()
    if args.json:
        out = result.to_json()
        out["target"] = {"metric": spec.target.metric, "value": spec.target.value,
                         "source": spec.source}  # fmt: skip
        out["evals"] = [dataclasses.asdict(e) for e in result.evals]
        out["store"] = str(args.store)
        print_json(out)
    else:
        print(summary_line(result, spec))
        print(f"trial {result.trial_id} saved in {args.store}")
    return 1 if result.status == "failed" else 0


# ------------------------------------------------------------------------------------------
# show


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def cmd_show(args: argparse.Namespace) -> int:
    from trainlab.bench.store import Store

    if not args.store.exists():
        raise TrainlabError(f"no results store at {args.store} (run `trainlab run` first)")
    with Store(args.store) as store:
        trials = store.trials(limit=args.limit, latest_first=True)[::-1]
    if args.json:
        print_json(trials)
        return 0
    from rich.table import Table

    table = Table(title=f"recent trials in {args.store}")
    cols = ("id", "workload", "algorithm", "seed", "mode", "status", "time to target",
            "steps to target", "best", "timed s", "wall s")  # fmt: skip
    for col in cols:
        table.add_column(col)
    for t in trials:
        workload = t["workload"] + (f":{t['variant']}" if t["variant"] else "")
        table.add_row(
            str(t["id"]), workload, t["algorithm"], str(t["seed"]), t["mode"], t["status"],
            _fmt(t["time_to_target"], ".2f"), _fmt(t["steps_to_target"]),
            _fmt(t["best_metric"], ".4g"),
            _fmt(t["timed_seconds"], ".1f"), _fmt(t["wall_seconds"], ".1f"),
        )  # fmt: skip
    _console().print(table)
    return 0


# ------------------------------------------------------------------------------------------
# bench, score, report, targets, demo


def split_names(values: Sequence[str] | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (repeatable, comma-separated options)."""
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def _eval_every(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise TrainlabError(f"--eval-every-steps takes N or auto, got {value!r}") from None


def print_scores(result, console, title: str = "") -> None:
    """The time-to-target table and the scores table of a :class:`ScoreResult`."""
    from rich.markup import escape
    from rich.table import Table

    unit = " s" if result.by == "time" else " steps"
    table = Table(
        title=f"{title}time to target ({result.by}; median over studies; ratio to the fastest)"
    )
    table.add_column("workload")
    for a in result.algorithms:
        table.add_column(escape(a), justify="right")
    names = sorted({w for times in result.raw_times.values() for w in times})
    for w in names:
        cells = []
        for a in result.algorithms:
            t = result.raw_times[a][w]
            text = "inf" if math.isinf(t) else f"{t:.3g}{unit}"
            if w in result.ratios[a]:
                r = result.ratios[a][w]
                if math.isfinite(r):
                    text += f" ({r:.2f}x)"
                elif math.isfinite(t):
                    text += " (variant failed)"
            cells.append(text)
        table.add_row(escape(w if w in result.workloads else f"  {w} (held-out)"), *cells)
    console.print(table)
    table = Table(title=f"{title}scores (r_max = {result.r_max:g}, by {result.by})")
    table.add_column("algorithm")
    table.add_column("score", justify="right")
    table.add_column(f"speedup vs {escape(str(result.reference))}", justify="right")
    for a in result.ranking():
        s = result.speedups[a]
        speed = "-" if s["geomean"] is None else f"{s['geomean']:.2f}x ({s['workloads']} workloads)"
        table.add_row(escape(a), f"{result.scores[a]:.3f}", speed)
    console.print(table)
    for warning in result.warnings:
        console.print(f"note: {warning}", markup=False, highlight=False)


def _bench_config(args: argparse.Namespace):
    from trainlab.bench.benchmark import BenchmarkConfig

    return BenchmarkConfig(
        workloads=split_names(args.workloads),
        algorithms=split_names(args.algorithms),
        ruleset=args.ruleset,
        n_trials=args.trials,
        n_studies=args.studies,
        seed=args.seed,
        eval_every_steps=_eval_every(args.eval_every_steps),
        max_steps=args.max_steps,
        max_runtime=args.max_runtime,
        budget_scale=args.budget_scale,
        variants=args.variants,
        targets=args.targets,
    )


def _run_benchmark(config, args) -> Any:
    from trainlab.bench.benchmark import run_benchmark

    err = _console(stderr=True)
    run = run_benchmark(
        config,
        args.store,
        jobs=args.jobs,
        threads=args.threads,
        executor=args.executor,
        benchmark_id=getattr(args, "benchmark", None),
        show_progress=not args.json and not getattr(args, "quiet", False),
        console=err,
        on_note=lambda s: err.print(s, markup=False, highlight=False),
    )
    return run


def cmd_bench(args: argparse.Namespace) -> int:
    from trainlab.bench.scoring import scores_from_store
    from trainlab.bench.store import Store

    if args.resume and not args.workloads and not args.algorithms:
        config = None  # the stored plan of --benchmark ID (or the latest)
        if not args.store.exists():
            raise TrainlabError(f"no results store at {args.store} to resume from")
    else:
        if not args.workloads or not args.algorithms:
            raise TrainlabError("bench needs -w WORKLOADS and -a ALGORITHMS (or --resume)")
        config = _bench_config(args)
    run = _run_benchmark(config, args)
    result = None
    try:
        with Store(args.store) as store:
            result, _, _ = scores_from_store(store, run.benchmark_id, by=args.by)
    except TrainlabError:
        result = None
    if args.json:
        out = run.to_json()
        out["store"] = str(args.store)
        out["scores"] = None if result is None else result.to_json()
        print_json(out)
        return 0
    console = _console()
    what = "new" if run.created else ("resumed" if run.already_finished else "found")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items()))
    console.print(
        f"benchmark {run.benchmark_id} ({what}, key {run.key}): {run.total} trials, "
        f"{run.already_finished} already finished, ran {run.ran} in {run.seconds:.0f} s; {counts}",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    if result is not None:
        print_scores(result, console)
    console.print(
        f"store: {args.store}; see `trainlab score --store {args.store} --benchmark "
        f"{run.benchmark_id}` and `trainlab report --store {args.store} --benchmark "
        f"{run.benchmark_id} -o DIR`",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from trainlab.bench.scoring import (
        compute_scores,
        read_times_csv,
        scores_from_store,
        write_times_csv,
    )
    from trainlab.bench.store import Store

    if args.times is not None:
        if args.benchmark is not None:
            raise TrainlabError("--benchmark applies to --store, not to --times")
        records = read_times_csv(args.times)
        result = compute_scores(records, r_max=args.r_max, reference=args.reference, by=args.by)
        source = str(args.times)
    else:
        if not args.store.exists():
            raise TrainlabError(f"no results store at {args.store} (run `trainlab bench` first)")
        with Store(args.store) as store:
            result, bench, records = scores_from_store(
                store, args.benchmark, by=args.by, reference=args.reference, r_max=args.r_max
            )
        source = f"{args.store}, benchmark {bench['id']}"
    if args.save_times is not None:
        try:
            write_times_csv(records, args.save_times)
        except OSError as exc:
            raise TrainlabError(f"cannot write {args.save_times}: {exc.strerror or exc}") from None
    if args.json:
        out = result.to_json()
        out["source"] = source
        print_json(out)
        return 0
    console = _console()
    print_scores(result, console, title="")
    console.print(f"source: {source}", markup=False, highlight=False)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from trainlab.report.html import build_report

    index = build_report(args.store, args.output, args.benchmark, reference=args.reference)
    if args.json:
        print_json({"report": str(index)})
    else:
        print(f"report: {index}")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    import shlex

    from trainlab.bench.benchmark import expand_workloads
    from trainlab.bench.targets import machine_description, set_target
    from trainlab.workloads.targets import write_entries

    workloads = split_names(args.workloads)
    if not workloads:
        raise TrainlabError("targets needs -w WORKLOAD[,WORKLOAD...]")
    # held-out variants get targets of their own, by the same procedure (AlgoPerf v0.5)
    workloads = [w.full_name for w in expand_workloads(workloads, args.variants)]
    output = args.output or Path(args.store).parent / "targets.json"
    err = _console(stderr=True)
    command = "trainlab " + " ".join(shlex.quote(a) for a in (args.argv or []))
    entries = {}
    for workload in workloads:
        entry = set_target(
            workload,
            n_trials=args.trials,
            n_seeds=args.seeds,
            store_path=args.store,
            jobs=args.jobs,
            threads=args.threads,
            eval_every_steps=_eval_every(args.eval_every_steps),
            max_steps=args.max_steps,
            seed=args.seed,
            executor=args.executor,
            show_progress=not args.json,
            console=err,
            log=lambda s: err.print(s, markup=False, highlight=False),
        )
        entry["command"] = command
        entries[workload] = entry
        # write after each workload, so a long run keeps what it finished
        write_entries({workload: entry}, output, command=command, machine=machine_description(),
                      date=entry["date"])  # fmt: skip
    if args.json:
        print_json({"output": str(output), "workloads": entries})
    else:
        for name, e in entries.items():
            print(
                f"{name}: target {e['metric']} {'>=' if e['higher_is_better'] else '<='} "
                f"{e['value']:.5g}, max_runtime {e['max_runtime']:g} s, step_hint {e['step_hint']}"
            )
        print(f"written to {output}")
    return 0


#: the demo: the four baselines on the default suite, external tuning, small and bounded. It
#: measures against each workload's class target (the bar its baseline reaches with defaults),
#: not the tuned targets of targets.json: those are the best of a tuned baseline over seeds, and
#: two Halton points per algorithm in a fraction of the budget would miss them nearly always
DEMO_WORKLOADS = ("mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "charlm_gpt", "forecast_gru")
DEMO_ALGORITHMS = ("adamw", "nadamw", "nesterov", "heavyball")  # the baselines
DEMO_TRIALS, DEMO_STUDIES, DEMO_BUDGET_SCALE = 1, 3, 0.3


def cmd_demo(args: argparse.Namespace) -> int:
    return _demo(args, _console(stderr=True))


def _demo(args: argparse.Namespace, err) -> int:
    from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
    from trainlab.bench.scoring import scores_from_store
    from trainlab.bench.store import Store
    from trainlab.report.html import build_report

    config = BenchmarkConfig(
        workloads=list(DEMO_WORKLOADS),
        algorithms=list(DEMO_ALGORITHMS),
        ruleset="external",
        n_trials=DEMO_TRIALS,
        n_studies=DEMO_STUDIES,
        budget_scale=DEMO_BUDGET_SCALE,
        targets="class",
    )
    err.print(
        f"trainlab demo: external tuning of {', '.join(DEMO_ALGORITHMS)} "
        f"on {', '.join(DEMO_WORKLOADS)}; "
        f"{DEMO_TRIALS} Halton points x {DEMO_STUDIES} study per pair, time mode with each "
        f"workload's max_runtime x {DEMO_BUDGET_SCALE:g} and its class target (a quick look: "
        "not the full budget, not the tuned targets of targets.json); "
        f"results in {args.store} (re-running resumes)",
        markup=False, highlight=False,
    )  # fmt: skip
    run = run_benchmark(
        config, args.store, jobs=args.jobs, threads=args.threads, executor=args.executor,
        show_progress=True, console=err,
        on_note=lambda s: err.print(s, markup=False, highlight=False),
    )  # fmt: skip
    console = _console()
    with Store(args.store) as store:
        result, _, _ = scores_from_store(store, run.benchmark_id)
    print_scores(result, console)
    index = build_report(args.store, args.output, run.benchmark_id)
    console.print(
        f"benchmark {run.benchmark_id}: {run.total} trials "
        f"({run.ran} run now, {run.seconds:.0f} s)",
        markup=False, highlight=False,
    )  # fmt: skip
    console.print(f"report: {index}", markup=False, highlight=False)
    return 0


# ------------------------------------------------------------------------------------------
# parser


def _add_common(p: argparse.ArgumentParser) -> None:
    from trainlab.bench.store import DEFAULT_STORE

    p.add_argument("--store", type=Path, default=DEFAULT_STORE, help="SQLite results store")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _add_targets(p: argparse.ArgumentParser) -> None:
    p.add_argument("--targets", type=_targets_source, default="tuned", metavar="tuned|class|PATH",
                   help="target source: the committed tuned targets (default), the workloads' "
                   "class targets, or a targets JSON file")  # fmt: skip


def _targets_source(value: str) -> str:
    from trainlab.workloads.targets import check_source

    try:
        return check_source(value)
    except TrainlabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")


def _add_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=None, metavar="J",
                   help="trials in parallel (default: one per core; threads = cores // jobs)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch threads per trial (default: max(1, cores // jobs))")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or a Ray cluster (needs ray)")


def _add_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eval-every-steps", default=None, metavar="N|auto",
                   help="step mode: evaluate every N steps (auto: each workload's own period)")
    p.add_argument("--max-steps", type=int, default=None, help="step budget (step mode)")
    p.add_argument("--max-runtime", type=float, default=None, metavar="SECONDS",
                   help="timed budget of every workload (time mode)")
    p.add_argument("--budget-scale", type=float, default=1.0, metavar="F",
                   help="multiply each workload's budget by F (quick looks)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="trainlab", description="Train neural networks faster, and prove it.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list workloads or algorithms")
    p.add_argument("what", choices=("workloads", "algorithms"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="train one algorithm on one workload under the timing rules")
    p.add_argument("-w", "--workload", required=True, help="workload name (name:variant allowed)")
    p.add_argument("-a", "--algorithm", required=True, help="algorithm name or OPTIMIZER+SCHEDULE")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="hyperparameter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default=None, help="held-out variant of the workload")
    p.add_argument("--eval-every-steps", default=None, metavar="N|auto",
                   help="step mode: evaluate every N steps (deterministic)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=None, help="step budget in step mode")
    p.add_argument("--full-curve", action="store_true", help="keep training after the target")
    p.add_argument("--text-file", default=None, help="charlm_gpt: train on this UTF-8 text")
    _add_targets(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_common(p)
    _add_device(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("show", help="table of recent trials")
    p.add_argument("--limit", type=int, default=30)
    _add_common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("bench", help="run a benchmark: algorithms x workloads under a ruleset")
    p.add_argument("-w", "--workloads", action="append", metavar="W1,W2",
                   help="workloads (name or name:variant)")
    p.add_argument("-a", "--algorithms", action="append", metavar="A1,A2", help="algorithms")
    p.add_argument("--ruleset", choices=("external", "self"), default="external",
                   help="external: tune N Halton points per study; self: defaults, budget x1.5")
    p.add_argument("--trials", type=int, default=5, metavar="N", help="trials per study (external)")
    p.add_argument("--studies", type=int, default=3, metavar="S",
                   help="studies (median over them; AlgoPerf v0.6: 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Halton scramble and the trials")
    p.add_argument("--variants", action="store_true",
                   help="also run each workload's held-out variants")
    _add_targets(p)
    _add_budget(p)
    p.add_argument("--resume", action="store_true",
                   help="finish the unfinished trials of --benchmark ID (default: the latest)")
    p.add_argument("--benchmark", type=int, default=None, metavar="ID", help="with --resume")
    p.add_argument("--by", choices=("time", "steps"), default="time",
                   help="scores printed at the end")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    _add_jobs(p)
    _add_common(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("score", help="performance profiles and scores of a benchmark")
    p.add_argument("--times", type=Path, default=None, metavar="FILE.csv",
                   help="score a CSV (algorithm,workload,study,trial,time; inf for a miss) instead")
    p.add_argument("--benchmark", type=int, default=None, metavar="ID", help="default: the latest")
    p.add_argument("--by", choices=("time", "steps"), default="time")
    p.add_argument("--reference", default=None,
                   help="speedups over this algorithm (default: nadamw)")
    p.add_argument("--r-max", type=float, default=4.0, help="upper end of the profile integral")
    p.add_argument("--save-times", type=Path, default=None, metavar="FILE.csv",
                   help="also write the per-trial times as CSV")
    _add_common(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("report", help="HTML report with plots of a benchmark")
    p.add_argument("-o", "--output", type=Path, default=Path("trainlab-report"), metavar="DIR")
    p.add_argument("--benchmark", type=int, default=None, metavar="ID", help="default: the latest")
    p.add_argument("--reference", default=None,
                   help="speedups over this algorithm (default: nadamw)")
    _add_common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("targets", help="set workload targets by tuning the four baselines")
    p.add_argument("-w", "--workloads", action="append", metavar="W1,W2", required=True)
    p.add_argument("--trials", type=int, default=16, metavar="N",
                   help="Halton points per baseline (AlgoPerf: 200)")
    p.add_argument("--seeds", type=int, default=5, metavar="K",
                   help="reruns of the best point (AlgoPerf: 20)")
    p.add_argument("--variants", action="store_true",
                   help="also set each workload's held-out variants' own targets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every-steps", default=None, metavar="N|auto",
                   help="step mode (recommended: deterministic); auto = each workload's period")
    p.add_argument("--max-steps", type=int, default=None, help="step budget override (step mode)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="targets file to merge into (default: targets.json beside the store); "
                   "use it with --targets PATH")  # fmt: skip
    _add_jobs(p)
    _add_common(p)
    p.set_defaults(func=cmd_targets)

    p = sub.add_parser("demo", help="a small benchmark of the four baselines, scores and report")
    p.add_argument("-o", "--output", type=Path, default=Path("trainlab-runs") / "demo-report",
                   metavar="DIR")
    _add_jobs(p)
    _add_common(p)
    p.set_defaults(func=cmd_demo)

    for register in EXTRA_PARSERS:
        register(sub)
    return parser


#: functions ``(subparsers) -> None`` that add further commands (bench, score, report, ...)
EXTRA_PARSERS: list[Callable[[Any], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except TrainlabError as exc:
        print(f"trainlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trainlab: interrupted (finished results are in the store)", file=sys.stderr)
        return 130
