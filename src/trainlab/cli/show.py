"""``trainlab show [ID]``: recent trials, newest first, or one trial in full."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "show"
HELP = "table of recent trials (newest first), or one trial with its curve"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="?", type=argtypes.trial_id, default=None, metavar="ID",
                   help="one trial: its hyperparameters and evaluation curve")  # fmt: skip
    p.add_argument("--limit", type=argtypes.positive, default=None, metavar="N",
                   help="how many recent trials (default 30)")  # fmt: skip
    common.add_store(p, must_exist=True)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    if args.id is not None and args.limit is not None:
        raise TrainlabError("--limit applies to the table of trials, not to one trial (ID)")
    with common.open_existing_store(args.store) as store:
        if args.id is not None:
            trial = store.trial(args.id)
            evals = store.evaluations(args.id)
        else:
            trials = store.trials(limit=args.limit or 30, latest_first=True)
    if args.id is not None:
        if args.json:
            common.print_json({**trial, "evals": [asdict(e) for e in evals]})
        else:
            from trainlab.cli import render

            render.print_trial(render.console(), trial, evals)
        return 0
    if args.json:
        common.print_json(trials)
        return 0
    from trainlab.cli import render

    title = f"recent trials in {args.store} (newest first)"
    render.console().print(render.trials_table(trials, title))
    return 0
