"""Sparse training at 90 % sparsity against the dense model, same step budget (issue 16's goal).

For each seed, ``nadamw`` (dense, NAdamW + warmup/cosine) and the sparse algorithms ``gmp``,
``rigl``, ``granet`` and ``granet_sparse`` (the same recipe with a sparsifier; defaults, target
``sparsity`` 0.9) train on ``mnist1d_mlp`` for ``--steps`` updates (step mode: the budget is the
schedule's unit, so every schedule, learning rate and sparsity, fits in it). Each run follows
the runner's order (seeded model, the workload's seeded batch stream, ``init``,
``select_data``, ``update`` x steps) without its clock; the model returned by
``prepare_for_eval`` after the last update is evaluated on the validation split.

Table, per algorithm: the sparsity reached (zeros among the sparsified Linear weights), the
final validation accuracy (mean over seeds and its 95 % percentile-bootstrap interval, 2000
resamples of the seeds, numpy ``Generator`` seeded 0), the difference to the dense model
(paired by seed: same initialisation and data order; mean and interval from the same
resampling) and the non-zero parameter count of the whole model (biases included) against its
total. "Within 1 point" is read from the mean difference (>= -0.01) and, more strictly, from
the interval's lower end. With 3 seeds a percentile interval undercovers: read it as a rough
range. Unstructured zeros make no dense CPU kernel faster, so no time is reported.

    PYTHONPATH=src .venv/bin/python benchmarks/sparse.py                 # seeds 0,1,2; 2000 steps
    PYTHONPATH=src .venv/bin/python benchmarks/sparse.py --set learning_rate=0.01
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from trainlab.bench.budgets import trial_spec
from trainlab.bench.uncertainty import percentile_interval
from trainlab.registry import get_algorithm, get_workload
from trainlab.spec import OutOfRangeWarning

DENSE = "nadamw"
SPARSE = ("gmp", "rigl", "granet", "granet_sparse")
N_BOOT = 2000


def train(workload, name: str, seed: int, steps: int, overrides: dict) -> dict:
    """One run in step mode: the final validation accuracy and the model's zero counts."""
    algorithm = get_algorithm(name)
    mine = {k: v for k, v in overrides.items() if k in algorithm.search_space.names}
    with warnings.catch_warnings():  # --set may leave the tuning ranges (sparsity=0.8, say)
        warnings.simplefilter("ignore", OutOfRangeWarning)
        hp = algorithm.search_space.validate(mine, allow_out_of_range=True)
    torch.manual_seed(seed)
    model = workload.init_model(seed)
    stream = workload.batches(algorithm.batch_size(workload, hp), seed)
    state = algorithm.init(workload, model, hp, seed)
    batches = algorithm.select_data(state, stream)
    for step in range(steps):
        algorithm.update(state, next(batches), step)
    model = algorithm.prepare_for_eval(state)
    accuracy = workload.evaluate(model, "valid")["accuracy"]
    params = list(model.parameters())
    linear = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return {
        "accuracy": accuracy,
        "sparsity": sum(int((w == 0).sum()) for w in linear) / sum(w.numel() for w in linear),
        "nonzero": sum(int((p != 0).sum()) for p in params),
        "total": sum(p.numel() for p in params),
    }


def mean_interval(values: np.ndarray, picks: np.ndarray) -> tuple[float, float, float]:
    """Mean over seeds and the percentile-bootstrap interval of the mean."""
    low, high = percentile_interval(values[picks].mean(axis=1))
    return float(values.mean()), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", default="mnist1d_mlp")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a hyperparameter for every method that has it (learning_rate=0.01, sparsity=0.8)",
    )
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = get_workload(args.workload)
    workload = base.with_spec(
        trial_spec(base, "class", eval_every_steps=args.steps, max_steps=args.steps)
    )
    start = time.time()
    runs = {
        name: [train(workload, name, seed, args.steps, overrides) for seed in seeds]
        for name in (DENSE, *SPARSE)
    }
    picks = np.random.default_rng(0).integers(0, len(seeds), (N_BOOT, len(seeds)))
    dense = np.array([r["accuracy"] for r in runs[DENSE]])
    setting = ", ".join(args.set) or "defaults"
    print(f"{args.workload}, {args.steps} steps (step mode), seeds {args.seeds}, "
          f"{setting}, target sparsity {overrides.get('sparsity', 0.9)}; 95 % bootstrap "
          "intervals over seeds")  # fmt: skip
    print("| method | sparsity reached | final valid accuracy | delta vs dense | non-zero params |")
    print("|---|---|---|---|---|")
    verdicts = []
    for name in (DENSE, *SPARSE):
        acc = np.array([r["accuracy"] for r in runs[name]])
        m, lo, hi = mean_interval(acc, picks)
        sparsity = np.mean([r["sparsity"] for r in runs[name]])
        nonzero, total = np.mean([r["nonzero"] for r in runs[name]]), runs[name][0]["total"]
        if name == DENSE:
            delta = "-"
        else:
            d, dlo, dhi = mean_interval(acc - dense, picks)
            delta = f"{100 * d:+.2f} pts [{100 * dlo:+.2f}, {100 * dhi:+.2f}]"
            verdicts.append(
                f"{name}: within 1 point of dense: {'yes' if d >= -0.01 else 'no'} (mean); "
                f"{'shown' if dlo >= -0.01 else 'not shown'} by the interval"
            )
        print(f"| {name} | {sparsity:.4f} | {m:.4f} [{lo:.4f}, {hi:.4f}] | {delta} | "
              f"{nonzero:,.0f} / {total:,} |")  # fmt: skip
    print("\n".join(verdicts))
    print(f"wall {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
