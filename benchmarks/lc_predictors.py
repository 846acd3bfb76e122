"""How well do the learning-curve predictors extrapolate real curves? Error and calibration.

Runs a small step-mode benchmark with ``full_curve`` (every trial trains to the end of its
budget, so its final metric is known) on a few default workloads, then replays each trial's
validation curve: at 25 % and 50 % of the budget each predictor (``lc-parametric``,
``lc-pfn``) predicts the metric at the budget's end from the evaluations so far. Printed per
workload, cut and predictor:

* ``mae``: mean |predicted mean - final metric| (metric units), and ``mae/range``: the same over
  the spread of the final metric across the trials (comparable between workloads);
* ``cover90``: the share of trials whose final metric lies in the predicted 90 % interval
  (calibrated: about 0.90);
* ``brier``: the Brier score of P(target met at the end) against whether the final metric met
  the target (0 is perfect; always answering the base rate scores base*(1-base));
* ``stop-wrong``: trials the rule (P < 0.05) would have stopped at that cut that did meet the
  target;

and the early-stopping rule replayed on every curve: how many trials it stops, how many of
those would have met the target, and the share of training steps it saves.

    PYTHONPATH=src python benchmarks/lc_predictors.py [--workloads mnist1d_mlp,forecast_gru]
        [--algorithm nadamw] [--trials 6] [--budget-scale 0.25] [--store PATH]

With ``--store`` an existing store's finished full-curve trials are replayed instead (no
training). One torch thread per trial; the trials run one at a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.early_stop import MIN_EVALS, MIN_FRACTION
from trainlab.bench.store import Store
from trainlab.curves import METHODS, predict_final

CUTS = (0.25, 0.50)


def curves(store: Store, benchmark_id: int | None) -> list[dict]:
    """Trials with a curve to the end of their step budget: target, fractions, values."""
    out = []
    for row in store.trials(benchmark_id=benchmark_id):
        if row["status"] not in ("reached", "missed") or row["mode"] != "steps":
            continue
        metric = row["target_metric"]
        evals = [e for e in store.evaluations(row["id"]) if metric in e.metrics]
        if not evals or evals[-1].step < row["max_steps"]:
            continue  # stopped at the target: no final value to check against
        out.append({
            "workload": row["workload"], "metric": metric,
            "target": float(row["target_value"]), "higher": bool(row["higher_is_better"]),
            "fractions": np.array([e.step / row["max_steps"] for e in evals]),
            "values": np.array([e.metrics[metric] for e in evals]),
        })  # fmt: skip
    return out


def evaluate(trials: list[dict], method: str, cut: float) -> dict:
    errors, covered, brier, wrong, seconds = [], [], [], 0, 0.0
    finals = np.array([t["values"][-1] for t in trials])
    for t in trials:
        seen = t["fractions"] <= cut + 1e-9
        if seen.sum() < 2:
            continue
        start = time.perf_counter()
        p = predict_final(method, t["fractions"][seen], t["values"][seen], target=t["target"],
                          metric=t["metric"], higher_is_better=t["higher"])  # fmt: skip
        seconds += time.perf_counter() - start
        final = t["values"][-1]
        met = final >= t["target"] if t["higher"] else final <= t["target"]
        errors.append(abs(p.mean - final))
        covered.append(p.lower <= final <= p.upper)
        brier.append((p.p_target - float(met)) ** 2)
        wrong += int(met and p.p_target < 0.05)
    spread = float(finals.max() - finals.min()) or 1.0
    n = len(errors)
    return {"n": n, "mae": np.mean(errors), "mae_range": np.mean(errors) / spread,
            "cover90": np.mean(covered), "brier": np.mean(brier), "stop_wrong": wrong,
            "ms": 1000 * seconds / max(1, n)}  # fmt: skip


def replay_rule(trials: list[dict], method: str, threshold: float = 0.05) -> dict:
    """The early-stopping rule (bench.early_stop: >= 5 evaluations, >= 10 % of the budget, only
    while the target is unmet) replayed on the curves: steps saved, trials stopped, and trials
    stopped that would have met the target (wrong stops)."""
    used = saved = stopped = wrong = 0.0
    for t in trials:
        met = t["values"] >= t["target"] if t["higher"] else t["values"] <= t["target"]
        end = int(np.argmax(met)) if met.any() else len(met) - 1  # where the trial would end
        used += t["fractions"][end]
        for k in range(MIN_EVALS, end + 1):
            if t["fractions"][k - 1] < MIN_FRACTION:
                continue
            p = predict_final(method, t["fractions"][:k], t["values"][:k], target=t["target"],
                              metric=t["metric"], higher_is_better=t["higher"])  # fmt: skip
            if p.p_target < threshold:
                stopped += 1
                saved += t["fractions"][end] - t["fractions"][k - 1]
                wrong += int(met.any())
                break
    return {"saved": saved / max(used, 1e-9), "stopped": int(stopped), "wrong": int(wrong)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mnist1d_mlp,forecast_gru,digits_cnn")
    parser.add_argument("--algorithm", default="nadamw")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--budget-scale", type=float, default=0.25)
    parser.add_argument("--store", default=None, help="replay this store's trials instead")
    parser.add_argument("--out", default=None, help="the new store (default: a temporary one)")
    parser.add_argument("--run-only", action="store_true", help="run, do not replay")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.store is None:
        root = Path(tempfile.mkdtemp(prefix="lc-predictors-"))
        store_path = Path(args.out) if args.out else root / "s.db"
        config = BenchmarkConfig(
            workloads=args.workloads.split(","), algorithms=[args.algorithm],
            n_trials=args.trials, n_studies=1, eval_every_steps="auto",
            budget_scale=args.budget_scale, full_curve=True, targets="class")  # fmt: skip
        start = time.perf_counter()
        run = run_benchmark(config, store_path, jobs=1, threads=1)
        print(f"benchmark: {run.total} trials in {time.perf_counter() - start:.0f} s "
              f"({store_path})")  # fmt: skip
        benchmark_id = run.benchmark_id
        if args.run_only:
            return
    else:
        store_path, benchmark_id = args.store, None
    with Store(store_path, readonly=True) as store:
        trials = curves(store, benchmark_id)
    print(f"{len(trials)} full curves; 90 % intervals; P(target) at the budget's end")
    head = (f"{'workload':14} {'cut':>4} {'method':14} {'n':>3} {'mae':>8} {'mae/range':>9} "
            f"{'cover90':>7} {'brier':>6} {'stop-wrong':>10} {'ms/pred':>8}")  # fmt: skip
    print(head)
    for workload in sorted({t["workload"] for t in trials}):
        group = [t for t in trials if t["workload"] == workload]
        for cut in CUTS:
            for method in METHODS:
                r = evaluate(group, method, cut)
                print(f"{workload:14} {cut:>4.0%} {method:14} {r['n']:>3} {r['mae']:>8.4g} "
                      f"{r['mae_range']:>9.3f} {r['cover90']:>7.2f} {r['brier']:>6.3f} "
                      f"{r['stop_wrong']:>10} {r['ms']:>8.1f}")  # fmt: skip
    for cut in CUTS:
        for method in METHODS:
            r = evaluate(trials, method, cut)
            print(f"{'all':14} {cut:>4.0%} {method:14} {r['n']:>3} {'':>8} {'':>9} "
                  f"{r['cover90']:>7.2f} {r['brier']:>6.3f} {r['stop_wrong']:>10} "
                  f"{r['ms']:>8.1f}")  # fmt: skip
    print("the rule P(target) < 0.05 replayed (steps saved: share of the steps the trials use "
          "without it, up to the target or the budget's end)")
    for method in METHODS:
        r = replay_rule(trials, method)
        print(f"{method:14} stopped {r['stopped']:>3} of {len(trials)}, of which would have met "
              f"the target {r['wrong']}; steps saved {r['saved']:.0%}")


if __name__ == "__main__":
    main()
