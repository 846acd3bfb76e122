"""Do grown models reach the target sooner than the same architecture trained from scratch?

For each workload (default ``mnist1d_cnn`` and ``charlm_gpt``) and seed, one trial per
algorithm (default ``nadamw``, the baseline on the workload's model from scratch, against
``grow_net2net`` and ``grow_mixture``, which start smaller and grow into that model), each with
its default hyperparameters, against the workload's class target, in step mode (an evaluation
every ``--eval-every`` updates, a budget of ``--max-steps`` updates, which is also the
schedules' length; default: the workload's ``step_hint`` x ``--budget-scale``), one torch
thread. The growth algorithms' evaluations see the workload's architecture (the small model
grown, function-preserving, to it).

Printed: per workload and algorithm, over the seeds, the median [min, max] of the timed seconds
to the target, of the reference steps to the target (CPU time over a plain step's CPU time:
less sensitive to a loaded machine), and of the updates to the target, with how many seeds
reached it; then each growth algorithm's median time ratio to the baseline (below 1: sooner).
Wall-clock figures depend on the machine's load; rerun on a quiet machine before concluding.

    python benchmarks/growth.py [--workloads mnist1d_cnn,charlm_gpt] [--seeds 3]
        [--algorithms nadamw,grow_net2net,grow_mixture] [--budget-scale 1] [--eval-every 50]
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

from trainlab.bench.runner import run_trial
from trainlab.registry import get_algorithm, get_workload


def summary(values: list[float]) -> str:
    """``median [min, max]`` of the finite values, or ``missed``."""
    done = [v for v in values if v is not None and math.isfinite(v)]
    if not done:
        return "missed"
    return f"{statistics.median(done):.4g} [{min(done):.4g}, {max(done):.4g}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="mnist1d_cnn,charlm_gpt")
    parser.add_argument("--algorithms", default="nadamw,grow_net2net,grow_mixture")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget-scale", type=float, default=1.0)
    parser.add_argument("--eval-every", type=int, default=50)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for wname in args.workloads.split(","):
        workload = get_workload(wname)
        max_steps = max(args.eval_every, round(workload.step_hint * args.budget_scale))
        for aname in args.algorithms.split(","):
            algorithm = get_algorithm(aname)
            try:
                algorithm.check_workload(workload)
            except Exception as exc:  # noqa: BLE001 - a method that does not apply: say so
                print(f"{wname} {aname}: skipped ({exc})", flush=True)
                continue
            results = []
            for seed in range(args.seeds):
                r = run_trial(workload, algorithm, {}, seed=seed, eval_every_steps=args.eval_every,
                              max_steps=max_steps)  # fmt: skip
                results.append(r)
                error = f" ({r.error.splitlines()[0]})" if r.error else ""
                print(f"{wname} {aname} seed {seed}: {r.status}, time {r.time_to_target}, "
                      f"steps {r.steps_to_target}, best {r.best_metric:.4f}{error}",
                      flush=True)  # fmt: skip
            rows.append((wname, aname, max_steps, results))
    print()
    print("| method | workload | budget (steps) | reached | time to target s | "
          "ref-steps to target | steps to target |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for wname, aname, max_steps, results in rows:
        reached = sum(r.status == "reached" for r in results)
        print(
            f"| {aname} | {wname} | {max_steps} | {reached}/{len(results)} | "
            f"{summary([r.time_to_target for r in results])} | "
            f"{summary([r.ref_steps_to_target for r in results])} | "
            f"{summary([r.steps_to_target for r in results])} |"
        )
    print()
    base = {w: res for w, a, _, res in rows if a == "nadamw"}
    for wname, aname, _, results in rows:
        if aname == "nadamw" or wname not in base:
            continue
        ratios = [
            r.time_to_target / b.time_to_target
            for r, b in zip(results, base[wname], strict=True)
            if r.time_to_target and b.time_to_target
        ]
        if ratios:
            print(f"{wname}: {aname} / nadamw time to target, median over the seeds both "
                  f"reached: {statistics.median(ratios):.2f} ({len(ratios)} seeds)")  # fmt: skip
        else:
            print(f"{wname}: {aname} / nadamw: no seed where both reached the target")


if __name__ == "__main__":
    main()
