"""``trainlab report``: an HTML report with plots of a stored benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "report"
HELP = "HTML report with plots of a benchmark"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=argtypes.output_dir, default=Path("trainlab-report"),
                   metavar="DIR", help="directory of index.html and the plots")  # fmt: skip
    p.add_argument("--benchmark", type=argtypes.trial_id, default=None, metavar="ID",
                   help="default: the latest")  # fmt: skip
    p.add_argument("--reference", type=argtypes.word, default=None, metavar="ALGORITHM",
                   help="speedups over this algorithm (default: nadamw)")  # fmt: skip
    common.add_bootstrap(p)
    common.add_store(p, must_exist=True)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from trainlab.report.html import build_report

    # everything is checked before the output directory is created
    with common.open_existing_store(args.store) as store:
        bench = common.benchmark_record(store, args.benchmark)
        trials = store.trials(benchmark_id=bench["id"])
    if not trials:
        raise TrainlabError(f"benchmark {bench['id']} has no trials")
    names = sorted({t["algorithm"] for t in trials})
    if args.reference is not None and args.reference not in names:
        raise TrainlabError(
            f"--reference: no algorithm {args.reference!r} in benchmark {bench['id']} "
            f"(algorithms: {', '.join(names)})"
        )
    index = build_report(args.store, args.output, bench["id"], reference=args.reference,
                         n_boot=args.bootstrap)  # fmt: skip
    if args.json:
        common.print_json({"report": str(index)})
    else:
        print(f"report: {index}")
    return 0
