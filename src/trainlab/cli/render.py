"""Everything drawn for people: rich consoles, progress bars and tables.

Commands print machine-readable output with ``common.print_json``; this module is the only one
that imports rich.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from trainlab.bench.results import describe_trial, outcome_line
from trainlab.bench.searchers import describe as searcher  # ASHA rung r1/3, PBT member m2 g3
from trainlab.bench.searchers import detail_lines
from trainlab.report.cells import cost_cells, cost_lines
from trainlab.report.cells import plain_value as fmt


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr)


def plain(con: Console, text: str) -> None:
    """Print ``text`` as is (no markup, no highlighting, no wrapping of long paths)."""
    con.print(text, markup=False, highlight=False, soft_wrap=True)


def eval_status(record, metric: str, target_value: float | None = None) -> str:
    """``accuracy 0.91 (target 0.95), loss 0.3, lr 0.001``: the last evaluation in a line."""
    value = record.metrics.get(metric, math.nan)
    text = f"{metric} {value:.4g}"
    if target_value is not None:
        text += f" (target {target_value:g})"
    if getattr(record, "train_loss", None) is not None:
        text += f", train loss {record.train_loss:.4g}"
    if getattr(record, "lr", None) is not None:
        text += f", lr {record.lr:.3g}"
    return text


# ------------------------------------------------------------------------------------------
# run


def run_progress(title: str, target) -> tuple[Progress, Any]:
    """A progress bar and the runner callback that feeds it (untimed)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=False,
    )
    task = progress.add_task(escape(title), total=None, status="")

    def report(p) -> None:
        unit = "steps" if p.mode == "steps" else "s"
        done = p.step if p.mode == "steps" else p.timed_seconds
        last = "no eval yet"
        if p.last_eval is not None:
            last = eval_status(p.last_eval, target.metric, target.value)
        status = f"step {p.step} | {p.timed_seconds:.1f} s timed of {p.budget:g} {unit} | {last}"
        progress.update(task, total=p.budget, completed=done, status=escape(status))

    return progress, report


def summary_line(r, spec) -> str:
    """One line per run; the parts add up: timed + eval + other = wall."""
    target = spec.target
    if r.status == "reached":
        head = (
            f"reached {target.describe()} in {r.time_to_target:.2f} s timed "
            f"({r.steps_to_target} steps)"
        )
    elif r.status == "failed":
        head = f"FAILED: {(r.error or '').splitlines()[0] if r.error else ''}"
    else:
        best = "none" if r.best_metric is None else f"{r.best_metric:.4g}"
        head = f"{r.status} {target.describe()} (best {target.metric} {best}, {r.steps} steps)"
    return (
        f"{r.workload} / {r.algorithm} seed {r.seed} ({spec.source} target): {head}; "
        f"{r.n_evals} evals; "
        f"timed {r.timed_seconds:.2f} s + eval {r.eval_seconds:.2f} s + other "
        f"{r.other_seconds:.2f} s = wall {r.wall_seconds:.2f} s"
    )


# ------------------------------------------------------------------------------------------
# show


def trials_table(trials: list[dict[str, Any]], title: str) -> Table:
    """Trials, newest first; ``best`` names each trial's target metric."""
    table = Table(title=escape(title))
    cols = ("id", "workload", "algorithm", "seed", "mode", "status", "time to target",
            "steps to target", "best", "timed s", "wall s", "params", "nnz", "MFLOPs/ex",
            "speedup")  # fmt: skip
    searched = any(searcher(t.get("search")) != "-" for t in trials)
    if searched:
        cols = (*cols[:6], "search", *cols[6:])
    for col in cols:
        table.add_column(col)
    flagged = 0
    for t in trials:
        workload = t["workload"] + (f":{t['variant']}" if t["variant"] else "")
        best = "-"
        if t["best_metric"] is not None:
            best = f"{t.get('target_metric') or ''} {t['best_metric']:.4g}".strip()
        status = t["status"]
        if t.get("contended"):
            status, flagged = f"{status} !", flagged + 1
        table.add_row(
            str(t["id"]), escape(workload), escape(t["algorithm"]), str(t["seed"]), t["mode"],
            status, *([searcher(t.get("search"))] if searched else []),
            fmt(t["time_to_target"], ".2f"), fmt(t["steps_to_target"]), escape(best),
            fmt(t["timed_seconds"], ".1f"), fmt(t["wall_seconds"], ".1f"), *cost_cells(t),
        )  # fmt: skip
    caption = ["params, nnz (non-zero params), MFLOPs per example (counted on non-zeros) of "
               "the evaluated model; speedup: its compact sub-network's CPU inference speedup"]
    if flagged:
        caption.append(
            f"! {flagged} trial(s) ran under heavy CPU contention: their wall-clock times are "
            "inflated; compare them --by cpu-time or --by steps"
        )
    table.caption = "\n".join(caption)
    return table


def text_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=escape(title))
    for i, col in enumerate(header):
        table.add_column(escape(col), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def print_trial(con: Console, trial: dict[str, Any], evals: list) -> None:
    """One trial: its settings, hyperparameters and evaluation curve."""
    workload = trial["workload"] + (f":{trial['variant']}" if trial["variant"] else "")
    metric = trial.get("target_metric") or ""
    ranks = f", {trial['nproc']} processes" if (trial.get("nproc") or 1) > 1 else ""
    plain(con, f"trial {trial['id']}: {workload} / {trial['algorithm']}, seed {trial['seed']}, "
               f"{trial['mode']} mode{ranks}, status {trial['status']}")  # fmt: skip
    if trial.get("target_value") is not None:
        sign = ">=" if trial.get("higher_is_better") else "<="
        source = trial.get("target_source") or "class"
        if trial["mode"] == "steps":
            cadence = f"every {fmt(trial.get('eval_every_steps'))} of {trial['max_steps']} steps"
        else:
            cadence = (f"every {fmt(trial.get('eval_period'), '.3g')} s of "
                       f"{fmt(trial.get('max_runtime'))} s")  # fmt: skip
        plain(con, f"target: {metric} {sign} {trial['target_value']:g} ({source} target); "
                   f"evaluated {cadence}; step_hint {fmt(trial.get('step_hint'))}")  # fmt: skip
    measures = [("time", "time_to_target", ".2f", " s"), ("cpu time", "cpu_time_to_target",
                 ".2f", " s"), ("steps", "steps_to_target", "", ""),
                ("FLOPs", "flops_to_target", ".3g", "")]  # fmt: skip
    got = [f"{name} {fmt(trial.get(key), spec)}{unit}" for name, key, spec, unit in measures
           if trial.get(key) is not None]  # fmt: skip
    if got:
        plain(con, "to target: " + ", ".join(got))
    for line in [*cost_lines(trial.get("model_cost")), *detail_lines(trial.get("search"))]:
        plain(con, line)
    if trial.get("stop_reason"):  # status stopped-early: the prediction that stopped it
        from trainlab.bench.early_stop import describe_reason

        plain(con, describe_reason(trial["stop_reason"]))
    if trial.get("contended"):
        plain(con, "! heavy CPU contention was detected during this trial: its wall-clock time "
                   "is inflated (cpu time and steps are not)")  # fmt: skip
    hps = trial.get("hyperparameters") or {}
    table = Table(title="hyperparameters")
    table.add_column("name")
    table.add_column("value", justify="right")
    for name, value in sorted(hps.items()):
        table.add_row(escape(name), escape(fmt(value, ".4g")))
    con.print(table if hps else "hyperparameters: (defaults)")
    names = sorted({k for e in evals for k in e.metrics})
    extras = [
        x for x in ("train_loss", "lr") if any(getattr(e, x, None) is not None for e in evals)
    ]
    table = Table(title="evaluations")
    for col in ("step", "timed s", *names, *(x.replace("_", " ") for x in extras)):
        table.add_column(escape(col), justify="right")
    for e in evals:
        cells = [fmt(e.metrics.get(n), ".4g") for n in names]
        cells += [fmt(getattr(e, x), ".4g") for x in extras]
        table.add_row(str(e.step), f"{e.timed_seconds:.2f}", *cells)
    con.print(table if evals else "evaluations: none")


# ------------------------------------------------------------------------------------------
# bench


class BenchmarkDisplay:
    """One overall bar (trials done / total, ETA) plus a line per running trial; its methods
    are ``run_benchmark``'s ``on_start``, ``on_tick`` and ``on_trial_done`` callbacks."""

    def __init__(self, con: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=con,
        )
        self.store, self.benchmark_id, self.lines = None, None, {}

    def start(self, store, benchmark_id: int, rows: dict[int, dict], done: int) -> None:
        self.store, self.benchmark_id, self.rows = store, benchmark_id, rows
        self.overall = self.progress.add_task(
            "[bold]trials", total=len(rows), completed=done, info=""
        )
        self.progress.start()
        self.started = True

    def stop(self, keep: bool = True) -> None:
        """Stop drawing; ``keep=False`` (Ctrl-C) leaves nothing behind; never started (an error
        before the first trial), it prints nothing."""
        if not getattr(self, "started", False):
            return
        if not keep:
            self.progress.live.transient = True
            self.progress.console.quiet = True
        self.progress.stop()

    def tick(self) -> None:
        running = {
            r["id"]: r for r in self.store.trials(benchmark_id=self.benchmark_id, status="running")
        }
        for trial_id in [t for t in self.lines if t not in running]:
            self.progress.remove_task(self.lines.pop(trial_id))
        last = self.store.latest_evaluations(running)
        for trial_id, row in running.items():
            budget = row["max_steps"] if row["mode"] == "steps" else row["max_runtime"]
            if trial_id not in self.lines:
                self.lines[trial_id] = self.progress.add_task(
                    "  " + escape(describe_trial(row)), total=budget, info="starting"
                )
            record = last.get(trial_id)
            if record is None:
                continue
            done = record.step if row["mode"] == "steps" else record.timed_seconds
            status = eval_status(record, row["target_metric"], row["target_value"])
            self.progress.update(
                self.lines[trial_id],
                completed=min(done, budget or done),
                info=escape(f"step {record.step}, {record.timed_seconds:.1f} s, {status}"),
            )

    def done(self, row: dict[str, Any], outcome: dict[str, Any]) -> None:
        # ``rows`` (run_benchmark's) takes in the rows a searcher adds as they finish
        self.progress.update(self.overall, total=len(self.rows), advance=1)
        trial_id = row["id"]
        if trial_id in self.lines:
            self.progress.remove_task(self.lines.pop(trial_id))
        plain(self.progress.console, outcome_line(row, outcome))


# ------------------------------------------------------------------------------------------
# scores


def print_scores(result, con: Console, title: str = "") -> None:
    """The time-to-target table and the scores table of a :class:`ScoreResult`, with their
    95 % bootstrap intervals (cells from :mod:`trainlab.report.cells`, as in the report)."""
    from trainlab.report import cells

    header, rows = cells.time_table(result)
    con.print(text_table(f"{title}to target, by {result.by} (median over studies; ratio to "
                         "the fastest [95 % interval])", header, rows))  # fmt: skip
    header, rows = cells.score_table(result)
    con.print(text_table(f"{title}scores (r_max = {result.r_max:g}, by {result.by})", header, rows))
    if result.by not in ("steps", "flops") and any(
        n for per in result.contended.values() for n in per.values()
    ):
        plain(con, cells.CONTENDED_NOTE)
    if result.n_boot and all(i is None for i in result.score_intervals.values()):
        plain(con, "note: no intervals: every algorithm has a single study on each workload "
                   "(run more --studies)")  # fmt: skip
    for warning in result.warnings:
        plain(con, f"note: {warning}")
