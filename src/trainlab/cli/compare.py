"""``trainlab compare A B``: is A faster than B? Per workload and overall, A's speedup over B
with its 95 % bootstrap interval, a one-sided p-value from paired studies (Wilcoxon signed
rank, exact) and a verdict at p < 0.01 (the bar of modded-nanogpt's record rule)."""

from __future__ import annotations

import argparse

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "compare"
HELP = "A's speedup over B with an interval, a paired p-value and a verdict"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", type=argtypes.word, metavar="A", help="algorithm (as in the benchmark)")
    p.add_argument("b", type=argtypes.word, metavar="B", help="algorithm to compare against")
    p.add_argument("--benchmark", type=argtypes.trial_id, default=None, metavar="ID",
                   help="default: the latest")  # fmt: skip
    common.add_by(p, "what is compared")
    common.add_bootstrap(p)
    common.add_store(p, must_exist=True)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.compare import compare_from_store

    if args.a == args.b:
        raise TrainlabError(f"compare needs two different algorithms, got {args.a} twice")
    with common.open_existing_store(args.store) as store:
        bench = common.benchmark_record(store, args.benchmark)
        names = sorted({t["algorithm"] for t in store.trials(benchmark_id=bench["id"])})
        for flag, name in (("A", args.a), ("B", args.b)):
            if name not in names:
                raise TrainlabError(f"{flag}: no algorithm {name!r} in benchmark {bench['id']} "
                                    f"(algorithms: {', '.join(names) or 'none'})")  # fmt: skip
        comparison, bench = compare_from_store(
            store, args.a, args.b, bench["id"], by=args.by, n_boot=args.bootstrap
        )
    if args.json:
        common.print_json({**comparison.to_json(), "benchmark": bench["id"]})
        return 0
    from trainlab.cli import render
    from trainlab.report import cells

    con = render.console()
    title = f"{args.a} vs {args.b}, benchmark {bench['id']}, by {args.by}"
    rows = cells.comparison_rows(comparison)
    con.print(render.text_table(title, list(cells.COMPARISON_HEADER), rows))
    render.plain(con, comparison.summary())
    for note in comparison.notes:
        render.plain(con, f"note: {note}")
    return 0
