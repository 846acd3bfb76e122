"""``trainlab targets``: set workload targets by tuning the four baselines."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.spec import TrainlabError

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
    p.add_argument("--trials", type=argtypes.counts, default=5, metavar="N",
                   help="Halton points per baseline")  # fmt: skip
    p.add_argument("--seeds", type=argtypes.integer(1, 100, "a count"), default=3, metavar="K",
                   help="reruns of the best point")  # fmt: skip
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
        "--output",
        type=targets_file,
        default=None,
        metavar="FILE.json",
        help="targets file to merge into (default: trainlab/workloads/targets.json)",
    )
    common.add_jobs(p)
    common.add_store(p, must_exist=False)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    import shlex

    from trainlab.bench.targets import machine_description, set_target
    from trainlab.cli import render
    from trainlab.workloads.targets import TARGETS_FILE, write_entries

    workloads = argtypes.joined(args.workloads)
    dupes = sorted({w for w in workloads if workloads.count(w) > 1})
    if dupes:
        raise TrainlabError(f"--workloads: {dupes[0]} is listed twice")
    if args.max_steps is not None and args.eval_every_steps is None:
        raise TrainlabError("--max-steps applies to step mode: add --eval-every-steps N|auto")
    output = args.output or TARGETS_FILE
    err = render.console(stderr=True)
    command = "trainlab " + " ".join(shlex.quote(a) for a in (args.argv or []))
    entries = {}
    for workload in workloads:
        entry = set_target(
            workload, n_trials=args.trials, n_seeds=args.seeds, store_path=args.store,
            jobs=args.jobs, threads=args.threads, eval_every_steps=args.eval_every_steps,
            max_steps=args.max_steps, seed=args.seed, executor=args.executor,
            show_progress=not args.json, console=err, log=lambda s: render.plain(err, s),
        )  # fmt: skip
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
