"""Does trainlab's CPU proxy rank the AlgoPerf winners as AlgoPerf did?

External tuning (AlgoPerf's rules: ``--studies`` studies of ``--trials`` Halton points each) of
the AlgoPerf baseline (``nadamw``), Schedule-Free AdamW (``schedule_free_adamw``, the v0.5
self-tuning winner, here tuned like the rest), Distributed Shampoo's algorithm (``shampoo``,
the v0.5 external-tuning winner) and Muon (``muon``, no AlgoPerf entry) on the default suite;
then the benchmark score of each, with its 95 % bootstrap interval over studies, beside the
published AlgoPerf v0.5 external-tuning scores, and whether the order of the three with a
published score agrees (Kendall's tau; 1 is the same order).

The run is a normal trainlab benchmark in ``--store`` (default ``algoperf-ranking/trainlab.db``):
rerunning the command resumes it, and ``trainlab score --store ... --by ...`` or ``trainlab
report`` read it like any other. By default it runs in step mode (``--eval-every-steps auto``:
each workload's step budget, an evaluation every 1/50 of it), so a busy machine does not
change which trials reach the target, and it is scored by reference steps to target (process
CPU time to target in units of a plain forward/backward of the same model: it charges each
optimizer's own cost per step, which steps alone would not, and holds up under contention);
``--by time`` and ``--by steps`` are printed too. ``--mode time`` runs AlgoPerf's own
wall-clock rules instead (meaningful on a quiet machine only).

    python benchmarks/algoperf_ranking.py [--workloads W,...] [--studies 3] [--trials 5]
                                          [--budget-scale 1] [--mode steps|time]
                                          [--targets tuned] [--jobs N] [--store FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scipy.stats import kendalltau

from trainlab.bench.benchmark import BenchmarkConfig, run_benchmark
from trainlab.bench.scoring import scores_from_store
from trainlab.bench.store import Store
from trainlab.report.cells import with_interval

#: AlgoPerf v0.5 external-tuning ruleset, benchmark scores (MLCommons results, 2024)
PUBLISHED = {"shampoo": 0.7784, "schedule_free_adamw": 0.7077, "nadamw": 0.5707}
ALGORITHMS = ("nadamw", "schedule_free_adamw", "shampoo", "muon")
SUITE = ("mnist1d_mlp", "mnist1d_cnn", "digits_cnn", "forecast_gru", "charlm_gpt")


def agreement(scores: dict[str, float]) -> tuple[float, bool]:
    """Kendall's tau between the proxy's and AlgoPerf's scores of the algorithms both have,
    and whether the two orders are the same."""
    names = sorted(PUBLISHED)
    tau = kendalltau([scores[n] for n in names], [PUBLISHED[n] for n in names]).statistic
    proxy = sorted(names, key=lambda n: -scores[n])
    return float(tau), proxy == sorted(names, key=lambda n: -PUBLISHED[n])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(SUITE))
    p.add_argument("--algorithms", default=",".join(ALGORITHMS))
    p.add_argument("--studies", type=int, default=3)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--budget-scale", type=float, default=1.0)
    p.add_argument("--mode", choices=("steps", "time"), default="steps")
    p.add_argument("--targets", default="tuned")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--store", default="algoperf-ranking/trainlab.db")
    a = p.parse_args()
    config = BenchmarkConfig(
        workloads=a.workloads.split(","), algorithms=a.algorithms.split(","),
        n_trials=a.trials, n_studies=a.studies, budget_scale=a.budget_scale,
        eval_every_steps="auto" if a.mode == "steps" else None, targets=a.targets,
    )  # fmt: skip
    Path(a.store).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = [0]

    def progress(row: dict, outcome: dict) -> None:
        done[0] += 1
        print(f"  [{done[0]}] {row['algorithm']} on {row['workload']} (study {row['study']}): "
              f"{outcome.get('status')}", file=sys.stderr, flush=True)  # fmt: skip

    run = run_benchmark(config, a.store, jobs=a.jobs, on_trial_done=progress)
    print(f"benchmark {run.benchmark_id} in {a.store}: {time.perf_counter() - start:.0f} s of "
          f"wall time in this process ({a.mode} mode, {a.studies} studies x {a.trials} trials, "
          f"budget x{a.budget_scale:g}, targets {a.targets})")  # fmt: skip
    measures = ("ref-steps", "time", "steps")
    results = {}
    with Store(a.store, readonly=True) as store:
        for by in measures:
            results[by], _, _ = scores_from_store(store, run.benchmark_id, by=by)
    head = f"{'algorithm':<22}" + "".join(f"{'score by ' + by:>28}" for by in measures)
    print(head + f"{'AlgoPerf v0.5':>15}")
    for name in results[measures[0]].ranking():
        cells = "".join(f"{with_interval(r.scores[name], r.score_intervals.get(name)):>28}"
                        for r in results.values())  # fmt: skip
        published = f"{PUBLISHED[name]:.4f}" if name in PUBLISHED else "-"
        print(f"{name:<22}{cells}{published:>15}")
    if set(PUBLISHED) <= set(config.algorithms):
        for by, result in results.items():
            tau, same = agreement(result.scores)
            if tau != tau:  # NaN: tied scores (all zero, say) have no order to compare
                print(f"by {by}: the proxy's scores are tied; no order to compare")
                continue
            print(f"by {by}: Kendall tau vs AlgoPerf {tau:+.2f}; order "
                  f"{'agrees' if same else 'differs'}")  # fmt: skip
    for warning in results[measures[0]].warnings:
        print(f"note: {warning}")


if __name__ == "__main__":
    main()
