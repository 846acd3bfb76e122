"""``trainlab score``: performance profiles and scores of a stored benchmark or a times CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainlab.cli import argtypes, common
from trainlab.errors import TrainlabError

NAME = "score"
HELP = "performance profiles and scores of a benchmark"


def times_csv(text: str) -> tuple[Path, list]:
    """A times file, read and checked whole as the option is parsed
    (:func:`~trainlab.bench.scoring.read_times_csv`). Returns the path and its rows."""
    from trainlab.bench.scoring import read_times_csv

    path = argtypes.readable_file(text)
    try:
        return path, read_times_csv(path)
    except TrainlabError as exc:
        raise argtypes.BadValue(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--times", type=times_csv, default=None, metavar="FILE.csv",
                   help="score a CSV (algorithm,workload,study,trial,time; inf for a miss) "
                        "instead of a store")  # fmt: skip
    p.add_argument("--benchmark", type=argtypes.trial_id, default=None, metavar="ID",
                   help="default: the latest")  # fmt: skip
    common.add_by(p)
    common.add_bootstrap(p)
    p.add_argument("--reference", type=argtypes.word, default=None, metavar="ALGORITHM",
                   help="speedups over this algorithm (default: nadamw)")  # fmt: skip
    p.add_argument(
        "--r-max",
        type=argtypes.real(1.0, 1e6),
        default=4.0,
        help="upper end of the profile integral (finite, > 1; default 4)",
    )
    p.add_argument("--tuning-cost", action="store_true",
                   help="also print the tuning cost (training spent until the first trial that "
                        "reached the target; always shown for a searcher other than halton or "
                        "with --early-stop)")  # fmt: skip
    p.add_argument("--save-times", type=argtypes.writable_file, default=None, metavar="FILE.csv",
                   help="also write the per-trial times as CSV")  # fmt: skip
    common.add_store(p, must_exist=True, default=False)
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from trainlab.bench.model_cost import cost_table
    from trainlab.bench.scoring import compute_scores, scores_from_store, write_times_csv
    from trainlab.bench.store import DEFAULT_STORE

    costs: dict = {}  # a times file has no model cost
    tuning: list | None = None  # the tuning-cost table, when shown
    if args.times is not None:
        for name in common.given(args, "benchmark", "store", "tuning_cost"):
            raise TrainlabError(f"{common.flag(name)} applies to a results store: --times "
                                "scores the file instead; give one of them")  # fmt: skip
        path, records = args.times
        if args.save_times is not None and args.save_times.resolve() == path.resolve():
            raise TrainlabError("--save-times would overwrite the --times file")
        if args.reference is not None and args.reference not in {r.algorithm for r in records}:
            raise TrainlabError(f"--reference: no algorithm {args.reference!r} in {path}")
        result = compute_scores(records, r_max=args.r_max, reference=args.reference, by=args.by,
                                n_boot=args.bootstrap)  # fmt: skip
        source = str(path)
    else:
        store_path = args.store or Path(DEFAULT_STORE)
        with common.open_existing_store(store_path) as store:
            bench = common.benchmark_record(store, args.benchmark)
            names = {t["algorithm"] for t in store.trials(benchmark_id=bench["id"])}
            if args.reference is not None and args.reference not in names:
                raise TrainlabError(
                    f"--reference: no algorithm {args.reference!r} in benchmark {bench['id']} "
                    f"(algorithms: {', '.join(sorted(names)) or 'none'})"
                )
            result, bench, records = scores_from_store(
                store, bench["id"], by=args.by, reference=args.reference, r_max=args.r_max,
                n_boot=args.bootstrap,
            )
            costs = cost_table(store.trials(benchmark_id=bench["id"]))
            tuning = tuning_cost_rows(store, bench, args.by, args.tuning_cost)
        source = f"{store_path}, benchmark {bench['id']}"
    if args.save_times is not None:
        try:
            write_times_csv(records, args.save_times)
        except OSError as exc:
            raise TrainlabError(f"cannot write {args.save_times}: {exc.strerror or exc}") from None
    if args.json:
        extra = {} if tuning is None else {"tuning_cost": [r.to_json() for r in tuning]}
        common.print_json({**result.to_json(), "model_cost": costs, **extra, "source": source})
        return 0
    from trainlab.cli import render

    con = render.console()
    render.print_scores(result, con)
    print_costs(costs, result.algorithms, con)
    if tuning is not None:
        print_tuning_cost(tuning, con)
    render.plain(con, f"source: {source}")
    return 0


def print_costs(costs: dict[str, dict[str, dict]], algorithms: list[str], con) -> None:
    """The model-cost table of ``trainlab score`` (one cell per algorithm and workload, see
    :func:`trainlab.bench.model_cost.cost_cell`); nothing when no trial recorded a cost."""
    from trainlab.bench.model_cost import COST_NOTE, cost_cell
    from trainlab.cli import render

    if not costs:
        return
    workloads = sorted({w for per in costs.values() for w in per})
    rows = [[w] + [cost_cell(costs.get(a, {}).get(w)) for a in algorithms] for w in workloads]
    con.print(render.text_table("model cost", ["workload", *algorithms], rows))
    render.plain(con, COST_NOTE)


def tuning_cost_rows(store, bench: dict, by: str, asked: bool) -> list | None:
    """The tuning-cost table of a benchmark (:mod:`trainlab.bench.tuning_cost`) when asked
    (``--tuning-cost``) or when its searcher is not plain Halton; else ``None``."""
    from trainlab.bench.tuning_cost import benchmark_cost_table, shown_by_default

    if not (asked or shown_by_default(bench["config"].get("options") or {})):
        return None
    return benchmark_cost_table(store, bench["id"], by)


def print_tuning_cost(rows: list, con) -> None:
    """The "Tuning cost" table of ``trainlab score``: per algorithm and workload, the searcher,
    the median over studies of the cost to the first configuration that reached the target,
    the studies that found one and the median cost of a whole study."""
    from trainlab.bench.tuning_cost import COST_NOTE
    from trainlab.cli import render
    from trainlab.report.cells import time

    body = [[r.algorithm, r.workload, r.searcher, time(r.median_cost, r.by),
             f"{r.found}/{r.studies}", time(r.median_total, r.by)] for r in rows]  # fmt: skip
    header = ["algorithm", "workload", "searcher", "to first reach", "found", "whole study"]
    con.print(render.text_table("Tuning cost", header, body))
    render.plain(con, COST_NOTE)
    if any(r.unfinished for r in rows):
        render.plain(con, "the benchmark is incomplete: unfinished trials are not counted yet")
