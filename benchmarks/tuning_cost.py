"""How much training does each searcher spend to find a configuration that reaches the target?

Issue 13: NAdamW on the default suite, tuned by each searcher with the same trials, studies and
Halton seed (so the same configurations, in the same order): ``halton`` (every point to the
full budget), ``asha`` (successive halving, ``bench.asha``), ``halton+lc-parametric`` and
``halton+lc-pfn`` (Halton with learning-curve early stopping, ``bench.early_stop``) and ``pbt``
(when this trainlab has ``--search pbt``; skipped with a note otherwise). Each searcher is one
benchmark in its own store under ``--out`` (``<searcher>.db``); rerunning the command resumes
them and skips the finished ones.

Printed per searcher (:mod:`trainlab.bench.tuning_cost` defines the cost):

* ``saving``: the tuning-cost saving over Halton, ``cost(halton) / cost(searcher)`` to the first
  configuration that reaches the target, per (workload, study) where both found one; the
  geometric mean over them, with a 95 % percentile bootstrap interval over studies (a replicate
  draws the studies with replacement, every workload of a drawn study with it); ``pairs``: how
  many (workload, study) entered, ``found``: studies that found a configuration at all;
* ``whole``: the same ratio for the compute of the whole study (every trial trained): the
  saving the LC-PFN paper reports (Adriaensen et al., "Efficient Bayesian Learning Curve
  Extrapolation using Prior-Data Fitted Networks", NeurIPS 2023: 2-6x less compute for the
  same configurations, with little loss);
* ``score``: the time-to-target benchmark score (AlgoPerf's performance-profile integral,
  :mod:`trainlab.bench.scoring`) of the searchers scored against each other, with its 95 %
  bootstrap interval, and where it lies against Halton's interval (below, inside, above);

then one line on the issue's goal (a searcher with a saving of at least 2x whose score is not below
Halton's interval) and one on the paper's 2-6x claim. Step mode (``--eval-every-steps auto``),
one trial at a time with one torch thread, costs measured in reference steps by default
(``--by``), so a busy machine changes neither which trials reach nor the costs much.

    PYTHONPATH=src python benchmarks/tuning_cost.py [--workloads W,...] [--trials 8]
        [--studies 2] [--budget-scale 0.5] [--targets class] [--by ref-steps]
        [--out tuning-cost] [--save benchmarks/results/tuning_cost.txt]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.scoring import compute_scores, records_from_trials
from trainlab.bench.store import Store
from trainlab.bench.tuning_cost import study_costs
from trainlab.errors import TrainlabError

SUITE = ("mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "forecast_gru", "charlm_gpt")
#: searcher -> the benchmark options that make it
SEARCHERS = {
    "halton": {},
    "asha": {"search": "asha"},
    "halton+lc-parametric": {"early_stop": "lc-parametric"},
    "halton+lc-pfn": {"early_stop": "lc-pfn"},
    "pbt": {"search": "pbt"},
}
BASELINE = "halton"
#: the paper's range of savings
PAPER_SAVINGS = (2.0, 6.0)

Costs = Mapping[tuple[str, int], float]  # (workload, study) -> cost (inf: none found)


def saving_logs(base: Costs, other: Costs) -> dict[int, list[float]]:
    """study -> ``log(base / other)`` over the workloads where both found a configuration
    (finite, positive costs)."""
    out: dict[int, list[float]] = defaultdict(list)
    for key, b in sorted(base.items()):
        o = other.get(key, math.inf)
        if math.isfinite(b) and math.isfinite(o) and b > 0 and o > 0:
            out[key[1]].append(math.log(b / o))
    return dict(out)


def geomean_saving(logs: Mapping[int, list[float]]) -> float | None:
    """The geometric mean of the savings (``None`` when no pair entered)."""
    values = [v for vs in logs.values() for v in vs]
    return math.exp(sum(values) / len(values)) if values else None


def saving_interval(logs: Mapping[int, list[float]], n_boot: int = 2000, seed: int = 0,
                    confidence: float = 0.95) -> tuple[float, float] | None:  # fmt: skip
    """Percentile bootstrap interval of :func:`geomean_saving` over studies: each replicate
    draws as many studies as there are, with replacement, and pools their logs. ``None`` with
    fewer than two studies (nothing to resample)."""
    studies = sorted(logs)
    if len(studies) < 2:
        return None
    rng = np.random.default_rng(seed)
    sums = np.array([sum(logs[s]) for s in studies])
    counts = np.array([len(logs[s]) for s in studies])
    draws = rng.integers(0, len(studies), size=(n_boot, len(studies)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], method="inverted_cdf")
    return float(math.exp(low)), float(math.exp(high))


def versus(value: float, interval: tuple[float, float] | None) -> str | None:
    """Where ``value`` lies against ``interval``: ``"below"``, ``"inside"`` or ``"above"``
    (``None``: no interval). The goal asks for no loss, so "above" (a better score) passes."""
    if interval is None:
        return None
    if value < interval[0] - 1e-12:
        return "below"
    return "above" if value > interval[1] + 1e-12 else "inside"


def verdicts(rows: Mapping[str, dict]) -> tuple[str, str]:
    """The two closing lines: the issue's 2x goal and the LC-PFN paper's 2-6x claim. ``rows``:
    searcher -> ``{"saving", "whole", "in_interval"}`` and optionally ``"saving_low"`` (the
    saving interval's low end; savings may be None). The goal is judged on the point estimate;
    a searcher whose interval reaches below 2x is said to be so."""
    met = [n for n, r in rows.items() if n != BASELINE and (r["saving"] or 0) >= 2.0
           and r["in_interval"]]  # fmt: skip
    unsure = [n for n in met if rows[n].get("saving_low") is None or rows[n]["saving_low"] < 2]
    goal = ("2x goal: met by " + ", ".join(met) if met else
            "2x goal: not met (no searcher found a configuration for half of Halton's tuning "
            "cost with its score not below Halton's interval)")  # fmt: skip
    if unsure:
        goal += (f" (point estimate; the saving's interval of {', '.join(unsure)} reaches below "
                 "2x, so more studies are needed to be sure)")  # fmt: skip
    pfn = rows.get("halton+lc-pfn")
    if pfn is None:
        return goal, "LC-PFN claim: halton+lc-pfn was not run"
    low, high = PAPER_SAVINGS
    parts = []
    for what in ("saving", "whole"):
        value = pfn[what]
        shown = "n/a" if value is None else f"{value:.2f}x"
        inside = value is not None and low <= value <= high
        parts.append(f"{what} {shown} ({'inside' if inside else 'outside'} {low:g}-{high:g}x)")
    loss = ("score not below Halton's interval" if pfn["in_interval"]
            else "score below Halton's interval")
    holds = (any(low <= (pfn[w] or 0) <= high for w in ("saving", "whole"))
             and bool(pfn["in_interval"]))  # fmt: skip
    return goal, (f"LC-PFN claim (2-6x less compute, little loss): "
                  f"{'holds' if holds else 'does not hold'} here: {'; '.join(parts)}; {loss}")


def searcher_available(name: str) -> bool:
    """Whether this trainlab has the searcher (``--search pbt`` is added by another change)."""
    try:
        BenchmarkConfig(workloads=["mnist1d_mlp"], algorithms=["nadamw"], **SEARCHERS[name])
    except (TrainlabError, TypeError):
        return False
    return True


def run_all(args: argparse.Namespace, names: list[str]) -> dict[str, Path]:
    """Run (or resume) each searcher's benchmark; returns searcher -> store path."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stores = {}
    for name in names:
        config = BenchmarkConfig(
            workloads=args.workloads.split(","), algorithms=[args.algorithm],
            n_trials=args.trials, n_studies=args.studies, seed=args.seed,
            eval_every_steps="auto", budget_scale=args.budget_scale, targets=args.targets,
            **SEARCHERS[name],
        )  # fmt: skip
        stores[name] = out / f"{name}.db"
        start = time.perf_counter()

        def progress(row: dict, outcome: dict, name: str = name) -> None:
            print(f"  {name}: #{row['id']} {row['workload']} s{row['study']} "
                  f"t{row['trial_index']}: {outcome.get('status')}", file=sys.stderr, flush=True)

        run = run_benchmark(config, stores[name], jobs=1, threads=1, on_trial_done=progress)
        print(f"# {name}: {run.ran} trials run now, {run.already_finished} before "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    return stores


def measure(stores: Mapping[str, Path], by: str, n_boot: int) -> tuple[list[str], dict]:
    """The table's lines and the per-searcher numbers of :func:`verdicts`."""
    costs, wholes, found, records = {}, {}, {}, []
    for name, path in stores.items():
        with Store(path, readonly=True) as store:
            trials = store.trials(benchmark_id=store.benchmark()["id"])
        per = study_costs(trials, by)
        costs[name] = {(c.workload, c.study): c.cost for c in per}
        wholes[name] = {(c.workload, c.study): c.total for c in per}
        found[name] = (sum(c.found for c in per), len(per))
        records += [dataclasses.replace(r, algorithm=name)
                    for r in records_from_trials(trials, by)]  # fmt: skip
    scores = compute_scores(records, reference=BASELINE, by=by, n_boot=n_boot)
    base_interval = scores.score_intervals.get(BASELINE)
    head = (f"{'searcher':<22}{'saving to 1st reach':>26}{'pairs':>6}{'found':>7}"
            f"{'whole-study saving':>26}{'score':>24}  vs Halton's interval")  # fmt: skip
    lines, rows = [head], {}
    for name in stores:
        logs = saving_logs(costs[BASELINE], costs[name])
        whole_logs = saving_logs(wholes[BASELINE], wholes[name])
        saving, whole = geomean_saving(logs), geomean_saving(whole_logs)
        score = scores.scores[name]
        where = versus(score, base_interval)
        inside = None if where is None else where != "below"
        interval = saving_interval(logs, n_boot)
        rows[name] = {"saving": saving, "whole": whole, "in_interval": inside,
                      "saving_low": None if interval is None else interval[0]}  # fmt: skip
        hits = f"{found[name][0]}/{found[name][1]}"
        lines.append(
            f"{name:<22}{_with(saving, interval):>26}"
            f"{sum(map(len, logs.values())):>6}{hits:>7}"
            f"{_with(whole, saving_interval(whole_logs, n_boot)):>26}"
            f"{_with(score, scores.score_intervals.get(name), '.3f', ''):>24}  "
            f"{'n/a' if where is None else where}"
        )  # fmt: skip
    lines += [f"note: {w}" for w in scores.warnings]
    return lines, rows


def _with(value: float | None, interval, spec: str = ".2f", unit: str = "x") -> str:
    if value is None:
        return "n/a"
    shown = "n/a" if interval is None else f"{interval[0]:{spec}}-{interval[1]:{spec}}"
    return f"{value:{spec}}{unit} [{shown}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(SUITE))
    p.add_argument("--algorithm", default="nadamw")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--studies", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-scale", type=float, default=0.5)
    p.add_argument("--targets", default="class")
    p.add_argument("--by", default="ref-steps", choices=("ref-steps", "time", "cpu-time", "steps"))
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--searchers", default=",".join(SEARCHERS))
    p.add_argument("--out", default="tuning-cost", help="directory of the stores")
    p.add_argument("--save", default="benchmarks/results/tuning_cost.txt")
    p.add_argument("--score-only", action="store_true", help="measure the stores, run nothing")
    args = p.parse_args()
    torch.set_num_threads(1)
    names, notes = [], []
    for name in args.searchers.split(","):
        if name not in SEARCHERS:
            p.error(f"unknown searcher {name!r}; choose from {', '.join(SEARCHERS)}")
        if searcher_available(name):
            names.append(name)
        else:
            notes.append(f"note: --search {SEARCHERS[name].get('search')} is not in this "
                         f"trainlab: {name} skipped")  # fmt: skip
    if BASELINE not in names:
        p.error("the halton searcher is the baseline: keep it in --searchers")
    start = time.perf_counter()
    if args.score_only:
        stores = {n: Path(args.out) / f"{n}.db" for n in names
                  if (Path(args.out) / f"{n}.db").exists()}  # fmt: skip
    else:
        stores = run_all(args, names)
    lines, rows = measure(stores, args.by, args.bootstrap)
    goal, claim = verdicts(rows)
    text = [
        f"tuning cost of {args.algorithm} on {args.workloads}: {args.trials} trials x "
        f"{args.studies} studies, step mode, budget x{args.budget_scale:g}, targets "
        f"{args.targets}, Halton seed {args.seed}, costs in {args.by}; saving = cost(halton) / "
        "cost(searcher), geometric mean [95 % bootstrap over studies]",
        *notes, *lines, goal, claim,
        f"({time.perf_counter() - start:.0f} s in this process; stores in {args.out})",
    ]  # fmt: skip
    print("\n".join(text))
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save).write_text("\n".join(text) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
