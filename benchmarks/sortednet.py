"""SortedNet's goal: four widths from one run, each as good as that width trained alone, for at
most 1.5x the cost of training the full model once.

On ``--workload`` (``mnist1d_cnn``: a 1-D CNN of 32 channels), for each seed:

* **alone**: the workload's CNN at 25, 50, 75 and 100 % of its channels (8, 16, 24, 32: the
  architectures SortedNet extracts), each trained by ``nadamw`` (its defaults) for ``--steps``
  updates with a cosine schedule of that length;
* **sortednet**: one ``sortednet`` run (the same NAdamW defaults and schedule, same steps;
  ``--variants``: ``always`` = the main model plus one sampled sub-model per update, the
  default; ``sampled`` = the paper's Algorithm 1, ``--n-sub`` sub-models drawn from the whole
  grid), after which each width is extracted (``SortedNet.extract``) and evaluated.

Timed, as the runner times a trial: ``init`` and every ``update`` (one torch thread, process
CPU seconds beside wall seconds, since the machine is shared). Printed: validation accuracy per
width (mean over seeds and a 95 % t-interval), the paired difference sortednet - alone per
width (mean, t-interval), the cost ratio (sortednet's timed seconds over the full-width alone
run's, same seed: median, and the CPU-seconds ratio), and the goal line: "each width within 2
points, <= 1.5x the cost", with whether it holds. Nothing here is a pass/fail threshold for
tests.

    python benchmarks/sortednet.py [--seeds 3] [--steps 1500] [--variants always,sampled]
                                   [--n-sub 1] [--workload mnist1d_cnn] [--alone FILE.json]

``--alone`` records the alone runs (accuracies and the full width's cost) in a file and reuses
them in a later invocation with the same workload and steps, to compare other SortedNet
settings against the same baselines (the cost ratio then divides by the recorded run's
seconds, measured under that run's machine load).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from trainlab.algorithms.sortednet import WIDTHS
from trainlab.registry import get_algorithm, get_workload
from trainlab.workloads.base import seeded_model
from trainlab.workloads.mnist1d import _CNN1D

#: two-sided 97.5 % quantiles of Student's t by degrees of freedom (95 % intervals)
T975 = {1: 12.71, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 9: 2.262}


def interval(values: list[float], spec: str = ".4f") -> str:
    """``mean [low, high]`` with a 95 % t-interval (``n/a`` for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:{spec}} [n/a]"
    half = T975.get(len(values) - 1, 2.0) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:{spec}} [{mean - half:{spec}}, {mean + half:{spec}}]"


def train(workload, algorithm, hp: dict, seed: int, steps: int, model=None):
    """``steps`` updates under the runner's timing rule; returns (state, wall s, cpu s)."""
    hp = algorithm.search_space.validate(hp)
    torch.manual_seed(seed)
    model = model if model is not None else workload.init_model(seed)
    batches = workload.batches(algorithm.batch_size(workload, hp), seed)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    state = algorithm.init(workload, model, hp, seed)
    for step in range(steps):
        algorithm.update(state, next(batches), step)
    return state, time.perf_counter() - wall0, time.process_time() - cpu0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="mnist1d_cnn")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--variants", default="always,sampled")
    p.add_argument("--n-sub", type=int, default=1)
    p.add_argument("--alone", default=None, metavar="FILE.json",
                   help="record the alone runs here, and reuse those recorded (same steps)")
    args = p.parse_args()
    torch.set_num_threads(1)
    base = get_workload(args.workload)
    base.step_hint = args.steps  # the cosine schedule spans the run (horizon 1 x step_hint)
    base.init_model(0)  # pay lazy set-up before any clock
    variants = args.variants.split(",")
    acc = {("alone", w): [] for w in WIDTHS}
    acc.update({(v, w): [] for v in variants for w in WIDTHS})
    cost = {v: {"wall": [], "cpu": []} for v in variants}
    full_cost = {}
    nadamw, sortednet = get_algorithm("nadamw"), get_algorithm("sortednet")
    cache = json.loads(Path(args.alone).read_text()) if args.alone and Path(args.alone).exists() \
        else {}  # fmt: skip
    key = f"{args.workload}:{args.steps}"
    for seed in range(args.seeds):
        done = cache.get(key, {}).get(str(seed))
        for w in WIDTHS:
            if done is not None:  # the same alone run, recorded by an earlier invocation
                acc[("alone", w)].append(done["acc"][str(w)])
                continue
            channels = round(32 * w)
            model = seeded_model(seed, lambda c=channels: _CNN1D(base.act, c), base.device)
            state, wall, cpu = train(base, nadamw, {}, seed, args.steps, model)
            acc[("alone", w)].append(base.evaluate(state.model, "valid")["accuracy"])
            if w == 1.0:
                full_cost[seed] = (wall, cpu)
            print(f"seed {seed} alone width {w}: acc {acc[('alone', w)][-1]:.4f} "
                  f"({wall:.2f} s, {cpu:.2f} cpu s)", flush=True)  # fmt: skip
        if done is not None:
            full_cost[seed] = tuple(done["full_cost"])
        elif args.alone:
            cache.setdefault(key, {})[str(seed)] = {
                "acc": {str(w): acc[("alone", w)][-1] for w in WIDTHS},
                "full_cost": full_cost[seed],
            }
            Path(args.alone).write_text(json.dumps(cache))
        for v in variants:
            hp = {"sortednet_main": v, "sortednet_n_sub": args.n_sub}
            state, wall, cpu = train(base, sortednet, hp, seed, args.steps)
            cost[v]["wall"].append(wall / full_cost[seed][0])
            cost[v]["cpu"].append(cpu / full_cost[seed][1])
            for w in WIDTHS:
                small = state.sortednet.extract(w)
                acc[(v, w)].append(base.evaluate(small, "valid")["accuracy"])
            print(f"seed {seed} sortednet[{v}]: "
                  + ", ".join(f"{w}: {acc[(v, w)][-1]:.4f}" for w in WIDTHS)
                  + f" ({wall:.2f} s, {cpu:.2f} cpu s)", flush=True)  # fmt: skip

    print(f"\n{args.workload}, {args.steps} steps, seeds 0..{args.seeds - 1}, nadamw defaults; "
          "validation accuracy, mean [95 % t-interval]")  # fmt: skip
    print(f"{'width':>6} | {'alone':>26} | " + " | ".join(f"{v:>26}" for v in variants))
    for w in WIDTHS:
        cells = [interval(acc[("alone", w)])] + [interval(acc[(v, w)]) for v in variants]
        print(f"{w:>6} | " + " | ".join(f"{c:>26}" for c in cells))
    print("\npaired difference sortednet - alone (accuracy points x 100), mean [95 % interval]")
    for v in variants:
        diffs = {w: [100 * (a - b) for a, b in zip(acc[(v, w)], acc[("alone", w)], strict=True)]
                 for w in WIDTHS}  # fmt: skip
        ratio_wall = statistics.median(cost[v]["wall"])
        ratio_cpu = statistics.median(cost[v]["cpu"])
        print(f"  {v}: " + "; ".join(f"{w}: {interval(d, '+.2f')}" for w, d in diffs.items()))
        print(f"  {v}: cost / full model alone: {ratio_wall:.2f}x timed seconds, "
              f"{ratio_cpu:.2f}x CPU seconds (median over seeds)")
        within = all(statistics.fmean(d) >= -2.0 for d in diffs.values())
        cheap = ratio_cpu <= 1.5
        print(f"  goal [{v}]: each width within 2 points (mean): {'yes' if within else 'NO'}; "
              f"<= 1.5x the cost (CPU seconds): {'yes' if cheap else 'NO'} -> "
              f"{'HOLDS' if within and cheap else 'does not hold'}")


if __name__ == "__main__":
    main()
