"""``trainlab list workloads|algorithms``: what the registry holds."""

from __future__ import annotations

import argparse

from trainlab.cli import common

NAME = "list"
HELP = "list workloads or algorithms"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=("workloads", "algorithms"))
    common.add_json(p)


def run(args: argparse.Namespace) -> int:
    from trainlab.registry import algorithm_names, get_algorithm, get_workload, workload_names

    if args.what == "workloads":
        rows = [get_workload(n).describe() for n in workload_names()]
        if args.json:
            common.print_json(rows)
        else:
            _print_workloads(rows)
        return 0

    from trainlab.algorithms.recipe import OPTIMIZERS, SCHEDULES

    rows = [get_algorithm(n).describe() for n in algorithm_names()]
    if args.json:
        common.print_json({
            "algorithms": rows,
            "optimizers": sorted(OPTIMIZERS),
            "schedules": sorted(SCHEDULES),
            "composition": "any OPTIMIZER+SCHEDULE, e.g. nadamw+cosine",
        })  # fmt: skip
        return 0
    from trainlab.cli import render

    table = render.Table(title="algorithms")
    for col in ("name", "hyperparameters", "description"):
        table.add_column(col)
    for r in rows:
        hps = ", ".join(p["name"] for p in r["search_space"]) or "(self-tuning)"
        table.add_row(render.escape(r["name"]), hps, render.escape(r["description"]))
    con = render.console()
    con.print(table)
    render.plain(
        con,
        f"Composable as OPTIMIZER+SCHEDULE: optimizers {', '.join(sorted(OPTIMIZERS))}; "
        f"schedules {', '.join(sorted(SCHEDULES))}",
    )
    return 0


def _print_workloads(rows: list[dict]) -> None:
    from trainlab.cli import render

    table = render.Table(title="workloads")
    for col in ("name", "target", "max_runtime", "eval_period", "step_hint", "variants"):
        table.add_column(col)
    for r in rows:
        t = r["target"]
        target = f"{t['metric']} {'>=' if t['higher_is_better'] else '<='} {t['value']:g}"
        table.add_row(
            r["name"], target, f"{r['max_runtime']:g} s", f"{r['eval_period']:g} s",
            str(r["step_hint"]), ", ".join(r["variants"]),
        )  # fmt: skip
    render.console().print(table)
