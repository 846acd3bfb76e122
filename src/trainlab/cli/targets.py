"""``trainlab targets``: set workload targets by tuning the four baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "targets"
HELP = "set workload targets by tuning the four baselines"


def targets_file(text: str) -> Path:
    """A targets file to merge into: writable and, if it exists, a JSON object."""
    path = argtypes.writable_file(text)
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise argtypes.BadValue(f"{text} is not a readable JSON targets file ({exc})") from None
        if not isinstance(data, dict):
            raise argtypes.BadValue(f"{text} is not a targets file (not a JSON object)")
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-w", "--workloads", action="append", required=True, metavar="W1,W2",
                   type=argtypes.name_list(argtypes.workload_name))  # fmt: skip
    p.add_argument("--trials", type=argtypes.counts, default=16, metavar="N",
                   help="Halton points per baseline (default 16; AlgoPerf: 200)")  # fmt: skip
    p.add_argument("--seeds", type=argtypes.integer(1, 100, "a count"), default=5, metavar="K",
                   help="reruns of the best point (default 5; AlgoPerf: 20)")  # fmt: skip
    p.add_argument("--variants", action="store_true",
                   help="also set each workload's held-out variants' own targets")
    p.add_argument("--seed", type=argtypes.seed, default=0, help="0..2**31-1")
    p.add_argument(
        "--eval-every-steps",
        type=argtypes.eval_every,
        default=None,
        metavar="N|auto",
        help="step mode (recommended: deterministic); auto = each workload's period",
    )
    p.add_argument("--max-steps", type=argtypes.positive, default=None, metavar="N",
                   help="step budget override (step mode)")  # fmt: skip
    p.add_argument(
        "-o",
        "--output",
        type=targets_file,
        default=None,
        metavar="FILE.json",
        help="targets file to merge into (default: targets.json beside the store); measure "
        "against it with --targets FILE.json",
    )
    common.add_jobs(p)
    common.add_store(p, must_exist=False)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    import shlex

    from trainlab.bench.benchmark import expand_workloads
    from trainlab.bench.targets import machine_description, set_target
    from trainlab.cli import render
    from trainlab.workloads.targets import write_entries

    workloads = argtypes.joined(args.workloads)
    dupes = sorted({w for w in workloads if workloads.count(w) > 1})
    if dupes:
        raise TrainlabError(f"--workloads: {dupes[0]} is listed twice")
    if args.max_steps is not None and args.eval_every_steps is None:
        raise TrainlabError("--max-steps applies to step mode: add --eval-every-steps N|auto")
    # held-out variants get targets of their own, by the same procedure (AlgoPerf v0.5)
    workloads = [w.full_name for w in expand_workloads(workloads, args.variants)]
    output = args.output or Path(args.store).parent / "targets.json"
    err = render.console(stderr=True)
    command = "trainlab " + " ".join(shlex.quote(a) for a in (args.argv or []))
    entries = {}
    displays = None if args.json else _Displays(err)
    hooks = {} if displays is None else {
        "on_start": displays.start, "on_tick": displays.tick, "on_trial_done": displays.done
    }  # fmt: skip
    for workload in workloads:
        try:
            entry = set_target(
                workload, n_trials=args.trials, n_seeds=args.seeds, store_path=args.store,
                jobs=args.jobs, threads=args.threads, eval_every_steps=args.eval_every_steps,
                max_steps=args.max_steps, seed=args.seed, executor=args.executor,
                log=lambda s: render.plain(err, s), **hooks,
            )  # fmt: skip
        finally:
            if displays is not None:
                displays.stop()
        entry["command"] = command
        entries[workload] = entry
        # written after each workload, so a long run keeps what it finished
        write_entries({workload: entry}, output, command=command, machine=machine_description(),
                      date=entry["date"])  # fmt: skip
    if args.json:
        common.print_json({"output": str(output), "workloads": entries})
        return 0
    for name, e in entries.items():
        print(
            f"{name}: target {e['metric']} {'>=' if e['higher_is_better'] else '<='} "
            f"{e['value']:.5g}, max_runtime {e['max_runtime']:g} s, step_hint {e['step_hint']}"
        )
    print(f"written to {output}")
    return 0


class _Displays:
    """A fresh progress display for each of the procedure's benchmarks (defaults, tuning,
    reruns), the previous one closed when the next starts."""

    def __init__(self, err) -> None:
        self.err, self.current = err, None

    def start(self, *args) -> None:
        from trainlab.cli import render

        self.stop()
        self.current = render.BenchmarkDisplay(self.err)
        self.current.start(*args)

    def tick(self) -> None:
        if self.current is not None:
            self.current.tick()

    def done(self, row, outcome) -> None:
        if self.current is not None:
            self.current.done(row, outcome)

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None
